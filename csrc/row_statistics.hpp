// Row statistics of a square CSR matrix behind the SolverTuner's matrix
// features (bandits/features.py), in one O(nnz) pass plus two medians:
//
//   dominance_i = |a_ii| / sum_{j != i} |a_ij|   (2 when row i has no nonzero off-diagonal sum)
//   spread_i    = max_{j != i} |a_ij| / min_{j != i} |a_ij|  over the nonzero off-diagonals
//                 (rows without one are left out)
//
// Medians as NumPy's: the middle value, or the mean of the two middle values
// for an even count. Preconditions (the CsrMatrix contract, checked by the
// bindings): A square, indptr non-decreasing, column indices of each row
// strictly increasing and in range; values finite.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "spmv.hpp"

namespace krylearn {

struct RowStatistics {
    double median_dominance;   // median over all rows of dominance_i
    double median_spread;      // median over rows with a nonzero off-diagonal of spread_i; NaN if none has one
    bool positive_diagonal;    // every a_ii > 0 (a missing diagonal entry is 0)
};

// Median of `values` (reordered; NaN when empty).
inline double median_of(std::vector<double>& values) {
    const std::size_t m = values.size();
    if (m == 0) return std::numeric_limits<double>::quiet_NaN();
    const auto middle = values.begin() + static_cast<std::ptrdiff_t>(m / 2);
    std::nth_element(values.begin(), middle, values.end());
    if (m % 2 == 1) return *middle;
    const double below = *std::max_element(values.begin(), middle);
    return (below + *middle) / 2.0;
}

template <class I, class T>
RowStatistics csr_row_statistics(const CsrView<I, T>& A) {
    const std::size_t n = A.n_rows;
    std::vector<double> dominance(n), spread;
    spread.reserve(n);
    bool positive_diagonal = true;
    for (std::size_t i = 0; i < n; ++i) {
        double diagonal = 0.0, off_sum = 0.0;
        double largest = 0.0, smallest = std::numeric_limits<double>::infinity();
        for (I k = A.indptr[i]; k < A.indptr[i + 1]; ++k) {
            const double value = static_cast<double>(A.data[k]);
            if (static_cast<std::size_t>(A.indices[k]) == i) {
                diagonal = value;
                continue;
            }
            const double magnitude = std::abs(value);
            off_sum += magnitude;
            if (magnitude > 0.0) {
                largest = std::max(largest, magnitude);
                smallest = std::min(smallest, magnitude);
            }
        }
        positive_diagonal = positive_diagonal && diagonal > 0.0;
        dominance[i] = off_sum > 0.0 ? std::abs(diagonal) / off_sum : 2.0;
        if (largest > 0.0) spread.push_back(largest / smallest);
    }
    return {median_of(dominance), median_of(spread), positive_diagonal};
}

}  // namespace krylearn
