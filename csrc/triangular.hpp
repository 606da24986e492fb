// Sparse triangular solves with a CSR triangle (sequential by nature).
//
// General form (trsv): only the triangle selected by `lower` is referenced
// (entries of the other strict triangle are ignored, as in BLAS ?trsv), and
// with unit_diagonal the diagonal is not referenced either. diag_pos[i] gives
// the position of t_ii in row i (needed unless unit_diagonal). The transposed
// solves use the scatter (column) form on the rows of T.
//
// Factor forms (used by the preconditioners, tight inner loops):
//   lower_solve_diag_last   L y = r  with the diagonal last in every row
//   lower_transpose_solve_diag_last   L^T z = y  (in place)
//   unit_lower_solve / upper_solve    on a combined ILU(0) LU array
// All take precomputed inverse diagonals and never allocate.
#pragma once
#include <cstddef>

#include "spmv.hpp"

namespace krylearn {

// Solves T x = b (transpose = false) or T^T x = b with the selected triangle of
// T. diag_pos may be null when unit_diagonal. x may equal b (in-place solve).
template <class I, class T>
void trsv(const CsrView<I, T>& A, const I* diag_pos, const T* b, T* x, bool lower, bool transpose,
          bool unit_diagonal) {
    const std::size_t n = A.n_rows;
    const I* Ap = A.indptr;
    const I* Ai = A.indices;
    const T* Ax = A.data;
    auto pivot = [&](std::size_t i) { return unit_diagonal ? 1.0 : double(Ax[diag_pos[i]]); };
    if (!transpose) {
        // Gather form: x_i = (b_i - sum_{j in triangle, j != i} t_ij x_j) / t_ii.
        auto solve_row = [&](std::size_t i) {
            double s = double(b[i]);
            if (lower) {
                for (I k = Ap[i]; k < Ap[i + 1] && static_cast<std::size_t>(Ai[k]) < i; ++k) s -= double(Ax[k]) * double(x[Ai[k]]);
            } else {
                for (I k = Ap[i + 1]; k-- > Ap[i] && static_cast<std::size_t>(Ai[k]) > i;) s -= double(Ax[k]) * double(x[Ai[k]]);
            }
            x[i] = T(s / pivot(i));
        };
        if (lower) for (std::size_t i = 0; i < n; ++i) solve_row(i);
        else for (std::size_t i = n; i-- > 0;) solve_row(i);
        return;
    }
    // Scatter form: T^T x = b. Once x_i is final, remove column i of T^T
    // (= row i of T) from the remaining right-hand side.
    copy(b, x, n);
    auto eliminate_row = [&](std::size_t i) {
        const T xi = T(double(x[i]) / pivot(i));
        x[i] = xi;
        if (lower) {
            for (I k = Ap[i]; k < Ap[i + 1] && static_cast<std::size_t>(Ai[k]) < i; ++k) x[Ai[k]] -= Ax[k] * xi;
        } else {
            for (I k = Ap[i + 1]; k-- > Ap[i] && static_cast<std::size_t>(Ai[k]) > i;) x[Ai[k]] -= Ax[k] * xi;
        }
    };
    if (lower) for (std::size_t i = n; i-- > 0;) eliminate_row(i);
    else for (std::size_t i = 0; i < n; ++i) eliminate_row(i);
}

// y = L^{-1} r, L lower with its diagonal last in each row, inv_diag = 1 / l_ii.
// y may equal r.
template <class I, class T>
void lower_solve_diag_last(const CsrView<I, T>& L, const T* inv_diag, const T* r, T* y) {
    const I* Lp = L.indptr;
    const I* Li = L.indices;
    const T* Lx = L.data;
    for (std::size_t i = 0; i < L.n_rows; ++i) {
        double s = double(r[i]);
        const I end = Lp[i + 1] - 1;
        for (I k = Lp[i]; k < end; ++k) s -= double(Lx[k]) * double(y[Li[k]]);
        y[i] = T(s * double(inv_diag[i]));
    }
}

// z = L^{-T} z in place, L as in lower_solve_diag_last.
template <class I, class T>
void lower_transpose_solve_diag_last(const CsrView<I, T>& L, const T* inv_diag, T* z) {
    const I* Lp = L.indptr;
    const I* Li = L.indices;
    const T* Lx = L.data;
    for (std::size_t i = L.n_rows; i-- > 0;) {
        const T zi = z[i] * inv_diag[i];
        z[i] = zi;
        const I end = Lp[i + 1] - 1;
        for (I k = Lp[i]; k < end; ++k) z[Li[k]] -= Lx[k] * zi;
    }
}

// y = L^{-1} r with L the unit lower part of a combined LU array (entries
// before diag_pos[i] in row i). y may equal r.
template <class I, class T>
void unit_lower_solve(const CsrView<I, T>& LU, const I* diag_pos, const T* r, T* y) {
    const I* Ai = LU.indices;
    const T* Ax = LU.data;
    for (std::size_t i = 0; i < LU.n_rows; ++i) {
        double s = double(r[i]);
        const I end = diag_pos[i];
        for (I k = LU.indptr[i]; k < end; ++k) s -= double(Ax[k]) * double(y[Ai[k]]);
        y[i] = T(s);
    }
}

// z = U^{-1} z in place with U the upper part (from diag_pos[i] on) of a
// combined LU array, inv_diag = 1 / u_ii.
template <class I, class T>
void upper_solve(const CsrView<I, T>& LU, const I* diag_pos, const T* inv_diag, T* z) {
    const I* Ai = LU.indices;
    const T* Ax = LU.data;
    for (std::size_t i = LU.n_rows; i-- > 0;) {
        double s = double(z[i]);
        const I end = LU.indptr[i + 1];
        for (I k = diag_pos[i] + 1; k < end; ++k) s -= double(Ax[k]) * double(z[Ai[k]]);
        z[i] = T(s * double(inv_diag[i]));
    }
}

}  // namespace krylearn
