// Symmetry of a square CSR matrix, without forming a transpose. On one thread
// (or a small matrix) a merge walk pairs every stored a_ij with a_ji in
// O(nnz); with OpenMP threads on a large matrix every row searches its
// partners by binary search in row j (O(nnz log(row length)), rows
// independent). max |a_ij - a_ji| (0 for a missing partner) and max |a_ij|
// are maxima over the same values either way, so the result does not depend
// on the thread count.
//
// Preconditions (the CsrMatrix contract, checked once by the bindings): A is
// square, indptr is non-decreasing, and the column indices of each row are
// strictly increasing and in range.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

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

// One thread: a merge walk in O(nnz). Rows are visited in order; the strictly-upper
// entries of row j are met in increasing column order exactly when the rows of their
// lower partners are, so cursor[j] (the next unmatched upper entry of row j) finds
// a_ji for every lower a_ij without a search; upper entries it skips, and those left
// at the end, have no stored partner (a_ji = 0). Same maxima as the parallel search.
template <class I, class T>
Asymmetry csr_asymmetry_walk(const CsrView<I, T>& A) {
    const std::size_t n = A.n_rows;
    std::vector<I> cursor(n);
    for (std::size_t j = 0; j < n; ++j)
        cursor[j] = static_cast<I>(std::upper_bound(A.indices + A.indptr[j], A.indices + A.indptr[j + 1],
                                                    static_cast<I>(j)) - A.indices);
    double max_difference = 0.0, max_abs = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        for (I k = A.indptr[i]; k < A.indptr[i + 1]; ++k) {
            const double value = static_cast<double>(A.data[k]);
            max_abs = std::max(max_abs, std::abs(value));
            const I j = A.indices[k];
            if (static_cast<std::size_t>(j) >= i) continue;  // upper entries are met from their partners
            I& c = cursor[static_cast<std::size_t>(j)];
            const I end = A.indptr[static_cast<std::size_t>(j) + 1];
            for (; c < end && static_cast<std::size_t>(A.indices[c]) < i; ++c)  // a_jm whose a_mj is not stored
                max_difference = std::max(max_difference, std::abs(static_cast<double>(A.data[c])));
            double transposed = 0.0;
            if (c < end && static_cast<std::size_t>(A.indices[c]) == i) transposed = static_cast<double>(A.data[c++]);
            max_difference = std::max(max_difference, std::abs(value - transposed));
        }
    }
    for (std::size_t j = 0; j < n; ++j)  // upper entries after the last lower partner
        for (I c = cursor[j]; c < A.indptr[j + 1]; ++c)
            max_difference = std::max(max_difference, std::abs(static_cast<double>(A.data[c])));
    return {max_difference, max_abs};
}

template <class I, class T>
Asymmetry csr_asymmetry(const CsrView<I, T>& A) {
#ifdef _OPENMP
    if (!A.parallel() || omp_get_max_threads() == 1) return csr_asymmetry_walk(A);
#else
    return csr_asymmetry_walk(A);
#endif
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
