// Sparse triangular solves with a CSR triangle (sequential by nature).
//
// General form (trsv): only the triangle selected by `lower` is referenced
// (entries of the other strict triangle are ignored, as in BLAS ?trsv), and
// with unit_diagonal the diagonal is not referenced either. diag_pos[i] gives
// the position of t_ii in row i (needed unless unit_diagonal). The transposed
// solves use the scatter (column) form on the rows of T.
//
// Unit forms with pre-scaled coefficients (unit_lower_solve, unit_upper_solve)
// are the building blocks of the IC, ILU and SSOR preconditioners. None of
// these kernels allocates.
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

// Unit triangular kernels for the preconditioners. The coefficients are
// pre-scaled at setup so that the sequential recurrence of each row is a
// chain of multiply-subtracts only (no division or extra multiplication on
// the critical path, which dominates the cost of a sparse triangular solve).
// Rows are given by indptr/indices and a half-open range per row:
// [indptr[i], end(i)) for the strictly lower part, [begin(i), indptr[i + 1])
// for the strictly upper part. scale(i) multiplies the right-hand side.

// y_i = scale(i) r_i - sum_{k in [indptr[i], end(i))} coef_k y_{indices_k},  i = 0..n-1
// (gather form). y may equal r.
template <class I, class T, class End, class Scale>
void unit_lower_solve(std::size_t n, const I* indptr, const I* indices, const T* coef, End end, Scale scale,
                      const T* r, T* y) {
    for (std::size_t i = 0; i < n; ++i) {
        double s = double(scale(i)) * double(r[i]);
        const std::ptrdiff_t stop = end(i);
        for (std::ptrdiff_t k = indptr[i]; k < stop; ++k) s -= double(coef[k]) * double(y[indices[k]]);
        y[i] = T(s);
    }
}

// z_i = scale(i) z_i - sum_{k in [begin(i), indptr[i + 1])} coef_k z_{indices_k},  i = n-1..0
// (gather form, in place).
template <class I, class T, class Begin, class Scale>
void unit_upper_solve(std::size_t n, const I* indptr, const I* indices, const T* coef, Begin begin, Scale scale,
                      T* z) {
    for (std::size_t i = n; i-- > 0;) {
        double s = double(scale(i)) * double(z[i]);
        // Descending columns: z_{i+1}, the value just computed, enters last.
        const std::ptrdiff_t first = begin(i);
        for (std::ptrdiff_t k = indptr[i + 1]; k-- > first;) s -= double(coef[k]) * double(z[indices[k]]);
        z[i] = T(s);
    }
}

}  // namespace krylearn
