// Stationary relaxation on a square CSR matrix A = L + D + U:
//   Jacobi        x <- x + omega D^{-1} (b - A x)                (parallel over rows)
//   forward SOR   for i = 0..n-1:  x_i <- x_i + omega (b_i - (A x)_i) / a_ii
//   backward SOR  the same for i = n-1..0
//   SSOR          one forward then one backward sweep
// and SOR/SSOR as a stand-alone solver. All sweeps take the diagonal
// positions and inverses of A (DiagonalInfo, spmv.hpp) and never allocate;
// callers validate the inputs first (every a_ii present and invertible).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "blas1.hpp"
#include "spmv.hpp"

namespace krylearn {

enum class RelaxMethod { jacobi, sor_forward, sor_backward, ssor };

// One SOR sweep, rows i = 0..n-1 (Forward) or n-1..0. Row i splits at its diagonal:
// the entries of the already-updated side (lower for forward, upper for
// backward) form the sequential dependency, so they are applied last, as
// multiply-subtracts with coefficients w_i a_ij (w_i = omega / a_ii), in an order that leaves the
// neighbour computed just before (x_{i-1} or x_{i+1}) for the end:
//   x_i <- x_i + w_i (b_i - sum_{other side and diagonal} a_ij x_j) - sum_{updated side} (w_i a_ij) x_j
template <bool Forward, class I, class T>
void sor_sweep(const CsrView<I, T>& A, const I* diag_pos, const T* inv_diag, double omega, const T* b, T* x) {
    const I* Ap = A.indptr;
    const I* Ai = A.indices;
    const T* Ax = A.data;
    const std::size_t n = A.n_rows;
    for (std::size_t step = 0; step < n; ++step) {
        const std::size_t i = Forward ? step : n - 1 - step;
        const double w = omega * double(inv_diag[i]);
        const std::ptrdiff_t d = diag_pos[i], begin = Ap[i], end = Ap[i + 1];
        double rest = 0.0;
        if constexpr (Forward) {
            for (std::ptrdiff_t k = d; k < end; ++k) rest += double(Ax[k]) * double(x[Ai[k]]);
            double xi = double(x[i]) + w * (double(b[i]) - rest);
            for (std::ptrdiff_t k = begin; k < d; ++k) xi -= (w * double(Ax[k])) * double(x[Ai[k]]);
            x[i] = T(xi);
        } else {
            for (std::ptrdiff_t k = begin; k <= d; ++k) rest += double(Ax[k]) * double(x[Ai[k]]);
            double xi = double(x[i]) + w * (double(b[i]) - rest);
            for (std::ptrdiff_t k = end; k-- > d + 1;) xi -= (w * double(Ax[k])) * double(x[Ai[k]]);
            x[i] = T(xi);
        }
    }
}

// x_new = x + omega D^{-1} (b - A x); x and x_new must not overlap.
template <class I, class T>
void jacobi_sweep(const CsrView<I, T>& A, const T* inv_diag, double omega, const T* b, const T* x, T* x_new) {
    const auto n = static_cast<std::ptrdiff_t>(A.n_rows);
#pragma omp parallel for schedule(static) if (A.parallel())
    for (std::ptrdiff_t i = 0; i < n; ++i)
        x_new[i] = T(double(x[i]) + omega * double(inv_diag[i]) * (double(b[i]) - detail::row_dot(A, i, x)));
}

// `sweeps` sweeps of `method` on x in place; work (length n) is used by Jacobi
// only. poll() runs after every sweep and may throw to abort.
template <class I, class T, class Poll>
void relax(const CsrView<I, T>& A, const I* diag_pos, const T* inv_diag, double omega, const T* b, T* x,
           RelaxMethod method, std::size_t sweeps, T* work, Poll&& poll) {
    for (std::size_t s = 0; s < sweeps; ++s) {
        if (s > 0) poll();
        switch (method) {
            case RelaxMethod::jacobi:
                jacobi_sweep(A, inv_diag, omega, b, x, work);
                copy(work, x, A.n_rows);
                break;
            case RelaxMethod::sor_forward:
                sor_sweep<true>(A, diag_pos, inv_diag, omega, b, x);
                break;
            case RelaxMethod::sor_backward:
                sor_sweep<false>(A, diag_pos, inv_diag, omega, b, x);
                break;
            case RelaxMethod::ssor:
                sor_sweep<true>(A, diag_pos, inv_diag, omega, b, x);
                sor_sweep<false>(A, diag_pos, inv_diag, omega, b, x);
                break;
        }
    }
}

struct SorResult {
    std::size_t iterations;
    double residual_norm;  // ||b - A x|| of the returned x
    std::int64_t info;     // 0 converged, > 0 maxiter reached, < 0 non-finite iterate
};

// SOR (or SSOR when symmetric) iterations from x until ||b - A x|| <=
// max(atol, rtol ||b||), at most maxiter. info = max(maxiter, 1) when not
// converged; info = -1 when an iterate became non-finite, in which case x is
// restored to the last finite iterate (kept in backup, length n). poll() runs
// after every unconverged iteration and may throw to abort the solve.
template <class I, class T, class Poll>
SorResult sor_solve(const CsrView<I, T>& A, const I* diag_pos, const T* inv_diag, double omega, const T* b, T* x,
                    bool symmetric, double rtol, double atol, std::size_t maxiter, T* backup, Poll&& poll) {
    const std::size_t n = A.n_rows;
    const double target = std::max(atol, rtol * nrm2(b, n));
    double res = csr_residual_nrm2(A, x, b);
    if (res <= target) return {0, res, 0};
    const RelaxMethod method = symmetric ? RelaxMethod::ssor : RelaxMethod::sor_forward;
    for (std::size_t it = 1; it <= maxiter; ++it) {
        copy(x, backup, n);
        relax(A, diag_pos, inv_diag, omega, b, x, method, 1, static_cast<T*>(nullptr), [] {});
        const double r = csr_residual_nrm2(A, x, b);
        if (!std::isfinite(r)) {
            copy(backup, x, n);
            return {it - 1, res, -1};
        }
        res = r;
        if (res <= target) return {it, res, 0};
        poll();
    }
    return {maxiter, res, static_cast<std::int64_t>(std::max<std::size_t>(maxiter, 1))};
}

}  // namespace krylearn
