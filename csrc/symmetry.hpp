// Symmetry of a square CSR matrix, in one pass over its entries: for every
// stored a_ij (i != j) the transposed entry a_ji is found by binary search in
// row j (0 when not stored), so the cost is O(nnz log(row length)) and no
// transpose is formed. max |a_ij - a_ji| and max |a_ij| are order-independent
// reductions, so the result does not depend on the thread count.
//
// Preconditions (the CsrMatrix contract, checked once by the bindings): A is
// square, indptr is non-decreasing, and the column indices of each row are
// strictly increasing and in range.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "spmv.hpp"

namespace krylearn {

struct Asymmetry {
    double max_difference;  // max over (i, j) of |a_ij - a_ji|
    double max_abs;         // max over (i, j) of |a_ij|
};

// a_ij, or 0 when row i stores no entry in column j.
template <class I, class T>
T csr_entry(const CsrView<I, T>& A, std::size_t i, I j) {
    const I* first = A.indices + A.indptr[i];
    const I* last = A.indices + A.indptr[i + 1];
    const I* it = std::lower_bound(first, last, j);
    return (it != last && *it == j) ? A.data[it - A.indices] : T(0);
}

template <class I, class T>
Asymmetry csr_asymmetry(const CsrView<I, T>& A) {
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(A.n_rows);
    double max_difference = 0.0, max_abs = 0.0;
#pragma omp parallel for schedule(static) reduction(max : max_difference, max_abs) if (A.parallel())
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        for (I k = A.indptr[i]; k < A.indptr[i + 1]; ++k) {
            const double value = static_cast<double>(A.data[k]);
            max_abs = std::max(max_abs, std::abs(value));
            const I j = A.indices[k];
            if (static_cast<std::ptrdiff_t>(j) == i) continue;
            const double transposed = static_cast<double>(csr_entry(A, static_cast<std::size_t>(j), static_cast<I>(i)));
            max_difference = std::max(max_difference, std::abs(value - transposed));
        }
    }
    return {max_difference, max_abs};
}

}  // namespace krylearn
