// Incomplete factorizations with zero fill, on raw CSR arrays.
//
// IC(0): A ~ L L^T with L on the pattern of tril(A) (diagonal stored last in
// every row). Row-oriented: for each row i and each k < i in its pattern,
//   l_ik = (a_ik - sum_{j<k} l_ij l_kj) / l_kk,   l_ii = sqrt(a_ii - sum_{j<i} l_ij^2),
// with the sums restricted to the pattern (a scatter map of row i makes each
// inner product one pass over row k).
// ILU(0): A ~ L U on A's pattern, L unit lower (stored strictly below the
// diagonal), U on and above it, both in one array (IKJ variant).
//
// Breakdown is reported, not repaired, here: the numeric phase returns the
// failing row and the caller retries with a diagonal shift
// a_ii -> (1 + shift) a_ii (factorize_with_shift).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "spmv.hpp"

namespace krylearn {

// Shifts tried by factorize_with_shift: 0, then 1e-3 growing 4x per try.
inline double breakdown_shift(std::size_t attempt) {
    return attempt == 0 ? 0.0 : 1e-3 * std::pow(4.0, double(attempt - 1));
}

// Runs numeric(shift) -> bool for shift = breakdown_shift(0..max_tries-1) until
// it succeeds; returns the shift used, or -1 when every try failed.
template <class F>
double factorize_with_shift(std::size_t max_tries, F&& numeric) {
    for (std::size_t t = 0; t < max_tries; ++t) {
        const double shift = breakdown_shift(t);
        if (numeric(shift)) return shift;
    }
    return -1.0;
}

// Counts the entries of tril(A) row by row into L_indptr (length n + 1).
// Returns n on success, else the first row whose diagonal entry is missing.
template <class I, class T>
std::size_t ic0_symbolic_count(const CsrView<I, T>& A, I* L_indptr) {
    L_indptr[0] = 0;
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const std::ptrdiff_t d = csr_diagonal_position(A, i);
        if (d < 0) return i;
        L_indptr[i + 1] = L_indptr[i] + static_cast<I>(d + 1 - A.indptr[i]);
    }
    return A.n_rows;
}

// Copies the column indices of tril(A) (L_indptr from ic0_symbolic_count).
template <class I, class T>
void ic0_symbolic_fill(const CsrView<I, T>& A, const I* L_indptr, I* L_indices) {
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const I len = L_indptr[i + 1] - L_indptr[i];
        for (I k = 0; k < len; ++k) L_indices[L_indptr[i] + k] = A.indices[A.indptr[i] + k];
    }
}

// Numeric IC(0) of A + shift diag(A) into L_data. `marker` has length n and
// holds -1 on entry and on exit. Returns n on success, else the row whose
// pivot was not positive (or not finite).
template <class I, class T>
std::size_t ic0_numeric(const CsrView<I, T>& A, const I* Lp, const I* Li, T* Lx, double shift, I* marker) {
    const std::size_t n = A.n_rows;
    for (std::size_t i = 0; i < n; ++i) {
        const I begin = Lp[i], diag = Lp[i + 1] - 1;
        const I a_begin = A.indptr[i];
        for (I k = begin; k <= diag; ++k) {
            marker[Li[k]] = k;
            Lx[k] = A.data[a_begin + (k - begin)];
        }
        double sumsq = 0.0;
        for (I k = begin; k < diag; ++k) {
            const I c = Li[k];
            double s = double(Lx[k]);
            const I c_diag = Lp[c + 1] - 1;
            for (I kk = Lp[c]; kk < c_diag; ++kk) {
                const I p = marker[Li[kk]];
                if (p >= 0) s -= double(Lx[p]) * double(Lx[kk]);
            }
            const T l = T(s / double(Lx[c_diag]));
            Lx[k] = l;
            sumsq += double(l) * double(l);
        }
        for (I k = begin; k <= diag; ++k) marker[Li[k]] = -1;
        const double a_ii = double(Lx[diag]) * (1.0 + shift);
        const double pivot = a_ii - sumsq;
        // A pivot below eps * a_ii has lost all significant digits.
        if (!(pivot > std::numeric_limits<T>::epsilon() * a_ii) || !std::isfinite(pivot)) return i;
        const T l_ii = T(std::sqrt(pivot));
        if (!std::isfinite(l_ii) || l_ii == T(0)) return i;
        Lx[diag] = l_ii;
    }
    return n;
}

// Numeric ILU(0) of A (with a_ii -> (1 + shift) a_ii) into LU_data, on A's
// pattern. diag_pos[i] is the position of a_ii; `marker` (length n) holds -1
// on entry and on exit. Returns n on success, else the row whose pivot
// vanished (|u_ii| <= eps max_j |a_ij|) or became non-finite.
template <class I, class T>
std::size_t ilu0_numeric(const CsrView<I, T>& A, const I* diag_pos, T* LUx, double shift, I* marker) {
    const std::size_t n = A.n_rows;
    const I* Ap = A.indptr;
    const I* Ai = A.indices;
    for (std::size_t i = 0; i < n; ++i) {
        const I begin = Ap[i], end = Ap[i + 1], diag = diag_pos[i];
        double row_max = 0.0;
        for (I k = begin; k < end; ++k) {
            marker[Ai[k]] = k;
            LUx[k] = A.data[k];
            row_max = std::max(row_max, std::fabs(double(A.data[k])));
        }
        LUx[diag] = T(double(LUx[diag]) * (1.0 + shift));
        for (I k = begin; k < diag; ++k) {
            const I c = Ai[k];
            const T l = T(double(LUx[k]) / double(LUx[diag_pos[c]]));
            LUx[k] = l;
            for (I kk = diag_pos[c] + 1; kk < Ap[c + 1]; ++kk) {
                const I p = marker[Ai[kk]];
                if (p >= 0) LUx[p] = T(double(LUx[p]) - double(l) * double(LUx[kk]));
            }
        }
        for (I k = begin; k < end; ++k) marker[Ai[k]] = -1;
        bool finite = true;
        for (I k = begin; k < end; ++k) finite &= std::isfinite(LUx[k]);
        const double pivot = std::fabs(double(LUx[diag]));
        if (!finite || !(pivot > std::numeric_limits<T>::epsilon() * row_max)) return i;
    }
    return n;
}

}  // namespace krylearn
