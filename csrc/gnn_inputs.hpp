// Input of the learned-IC network (preconditioners/ic_gnn.py) from an SPD
// matrix A, and assembly of the factor it predicts, in a few passes over A.
//
// With D = diag(A), A~ = D^{-1/2} A D^{-1/2} (unit diagonal, entries that
// scale to exactly 0 dropped) and L0 = IC(0) of A~ on tril(A~)'s pattern:
//   Lp, Li       tril(A~)'s pattern (CSR, sorted, diagonal last in each row)
//   At, Lx       A~ and L0 on that pattern
//   s_i = sum_j a~_ij,  t_i = sum_{j != i} |a~_ij|,  rho = L0 (L0^T 1) - s
// The network's factor L~ comes back as strictly-lower values (CSR order)
// and a diagonal; the factor of A is L = D^{1/2} L~ on the same pattern.
// Sums run in storage order, so the results equal SciPy's A~ @ 1 and the
// products of the NumPy formulation bit for bit.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "spmv.hpp"

namespace krylearn {

// Pass 1: sqrt_diag (n) and the row pointer Lp (n + 1) of tril(A~) without
// the entries that scale to 0. Returns n on success, else the first row whose
// diagonal entry is missing, not positive or not finite.
template <class I, class T>
std::size_t gnn_scaled_lower_count(const CsrView<I, T>& A, double* sqrt_diag, double* inv_sqrt, I* Lp) {
    Lp[0] = 0;
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const std::ptrdiff_t d = csr_diagonal_position(A, i);
        if (d < 0) return i;
        const double a_ii = double(A.data[d]);
        if (!(a_ii > 0.0) || !std::isfinite(a_ii)) return i;
        sqrt_diag[i] = std::sqrt(a_ii);
        inv_sqrt[i] = 1.0 / sqrt_diag[i];
        I count = 1;
        for (auto k = static_cast<std::ptrdiff_t>(A.indptr[i]); k < d; ++k)
            count += (double(A.data[k]) * inv_sqrt[i]) * inv_sqrt[A.indices[k]] != 0.0;
        Lp[i + 1] = Lp[i] + count;
    }
    return A.n_rows;
}

// Pass 2: Li and At on tril(A~) (Lp from pass 1), and the row sums s and
// off-diagonal absolute sums t of A~ (whole rows).
template <class I, class T>
void gnn_scaled_lower_fill(const CsrView<I, T>& A, const double* inv_sqrt, const I* Lp, I* Li, double* At,
                           double* rowsum, double* offdiag_abs) {
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        I out = Lp[i];
        double s = 0.0, t = 0.0;
        for (auto k = static_cast<std::size_t>(A.indptr[i]); k < static_cast<std::size_t>(A.indptr[i + 1]); ++k) {
            const auto j = static_cast<std::size_t>(A.indices[k]);
            const double v = j == i ? 1.0 : (double(A.data[k]) * inv_sqrt[i]) * inv_sqrt[j];
            s += v;
            if (j != i) t += std::fabs(v);
            if (j <= i && v != 0.0) {
                Li[out] = static_cast<I>(j);
                At[out++] = v;
            }
        }
        rowsum[i] = s;
        offdiag_abs[i] = t;
    }
}

// rho = L0 (L0^T 1) - s for the factor L0; colsum is scratch (n).
template <class I>
void gnn_fill_residual(const CsrView<I, double>& L0, const double* rowsum, double* colsum, double* rho) {
    const std::size_t n = L0.n_rows;
    std::fill(colsum, colsum + n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (I k = L0.indptr[i]; k < L0.indptr[i + 1]; ++k) colsum[L0.indices[k]] += L0.data[k];
    std::copy(rowsum, rowsum + n, rho);
    csr_matvec_axpby(1.0, L0, colsum, -1.0, rho);
}

// The network's float32 input (gnn_inference.hpp): the strictly-lower edges
// (lower_ptr: n + 1, cols, a_off, l0_off: Lp[n] - n), the node features
// x_i = [l0_ii, rho_i, s_i, t_i] (n x 4, row-major), and each feature's
// smallest and largest value (x_min, x_max: 4 each; NaN ignored; +inf and -inf
// for n = 0).
template <class I>
void gnn_export_inputs(std::size_t n, const I* Lp, const I* Li, const double* At, const double* Lx,
                       const double* rho, const double* rowsum, const double* offdiag_abs, I* lower_ptr, I* cols,
                       float* a_off, float* l0_off, float* node_features, float* x_min, float* x_max) {
    std::size_t e = 0;
    lower_ptr[0] = 0;
    std::fill(x_min, x_min + 4, std::numeric_limits<float>::infinity());
    std::fill(x_max, x_max + 4, -std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < n; ++i) {
        const I diag = Lp[i + 1] - 1;
        for (I k = Lp[i]; k < diag; ++k, ++e) {
            cols[e] = Li[k];
            a_off[e] = float(At[k]);
            l0_off[e] = float(Lx[k]);
        }
        lower_ptr[i + 1] = static_cast<I>(e);
        float* x = node_features + 4 * i;
        x[0] = float(Lx[diag]);
        x[1] = float(rho[i]);
        x[2] = float(rowsum[i]);
        x[3] = float(offdiag_abs[i]);
        for (std::size_t f = 0; f < 4; ++f) {
            if (x[f] < x_min[f]) x_min[f] = x[f];
            if (x[f] > x_max[f]) x_max[f] = x[f];
        }
    }
}

// L = D^{1/2} L~ on the pattern (Lp, diagonal last per row) from the network's
// strictly-lower values l_off (CSR order, Lp[n] - n of them) and diagonal
// l_diag. Returns the number of entries that are not finite plus the diagonal
// entries that are not positive (0: a valid factor).
template <class I>
std::size_t gnn_assemble_factor(std::size_t n, const I* Lp, const float* l_off, const float* l_diag,
                                const double* sqrt_diag, double* Lx) {
    std::size_t bad = 0, e = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const I diag = Lp[i + 1] - 1;
        for (I k = Lp[i]; k < diag; ++k) {
            Lx[k] = double(l_off[e++]) * sqrt_diag[i];
            bad += !std::isfinite(Lx[k]);
        }
        Lx[diag] = double(l_diag[i]) * sqrt_diag[i];
        bad += !(Lx[diag] > 0.0) || !std::isfinite(Lx[diag]);
    }
    return bad;
}

}  // namespace krylearn
