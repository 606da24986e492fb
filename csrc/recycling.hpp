// The Arnoldi part of one GCRO-DR cycle (Parks, de Sturler, Mackey, Johnson,
// Maiti, SISC 2006) with right preconditioning, in one native loop.
//
// basis is an n x (kc + s + 1) column-major block W = [C, v_0, v_1, ...]
// whose first kc + 1 columns are given and orthonormal: C (n x kc) spans the
// image of the recycle space, v_0 the normalised residual projected off C.
// Step j (j < s) computes z_j = M^{-1} v_j (stored in Z[:, j]; without M,
// z_j = v_j and Z is not used), w = A z_j, orthogonalises w against all
// kc + j + 1 columns of W by classical Gram-Schmidt with a second pass when
// the first one cancelled (DGKS: ||w|| fell below ||A z_j|| / sqrt 2), and
// stores v_{j+1} = w / ||w|| as column kc + j + 1. So
//     A Z_j = W_{kc+j+1} H[0 : kc+j+2, 0 : j+1]
// with H column-major (leading dimension ldh): rows [0, kc) of H are
// B = C^T A Z_j, rows [kc, kc + j + 2) the Arnoldi Hessenberg Hbar_j.
// Givens rotations reduce Hbar to triangular form, so |g_{j+1}| is the
// residual norm min_y ||beta e_0 - Hbar_j y|| of the cycle (after the
// projection onto range(C), which the caller handles through B).
//
// The loop stops after s steps, when that estimate is <= tol, on a
// (near-)invariant Krylov space (||w|| <= eps ||A z_j||: column kc + j + 1 is
// then zeroed) or on breakdown (a non-finite value or a singular Hbar). On
// return y holds the least-squares solution for the completed steps and
// estimates[j] the estimate after step j.
//
// The block products go through BLAS dgemv (Fortran interface, passed in by
// the binding): the Gram-Schmidt sweeps over up to m columns dominate the
// cost, and an optimised dgemv streams them at memory speed. Not
// bit-reproducible across BLAS thread counts (unlike the krylov_*.hpp loops).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "blas1.hpp"
#include "linear_operator.hpp"

namespace krylearn {

// Fortran BLAS dgemv: y = alpha op(A) x + beta y.
using DgemvFn = void(const char* trans, const int* m, const int* n, const double* alpha, const double* a,
                     const int* lda, const double* x, const int* incx, const double* beta, double* y,
                     const int* incy);

enum class ArnoldiStop : int { steps = 0, converged = 1, invariant = 2, breakdown = -1 };

struct ArnoldiResult {
    std::size_t steps = 0;  // completed steps (columns of H / entries of y)
    ArnoldiStop stop = ArnoldiStop::steps;
};

namespace detail {

// h = W[:, 0:p]^T w (beta = 0) or h += ... (beta = 1).
inline void block_dots(DgemvFn* gemv, const double* W, std::size_t n, std::size_t p, const double* w, double* h,
                       double beta) {
    const int rows = int(n), cols = int(p), one = 1;
    const double alpha = 1.0;
    gemv("T", &rows, &cols, &alpha, W, &rows, w, &one, &beta, h, &one);
}

// w -= W[:, 0:p] h.
inline void block_subtract(DgemvFn* gemv, const double* W, std::size_t n, std::size_t p, const double* h, double* w) {
    const int rows = int(n), cols = int(p), one = 1;
    const double alpha = -1.0, beta = 1.0;
    gemv("N", &rows, &cols, &alpha, W, &rows, h, &one, &beta, w, &one);
}

}  // namespace detail

// See the header comment. Requirements (checked by the binding): basis holds
// n x (kc + s + 1) values, Z n x s when M is given, H ldh x s with
// ldh >= kc + s + 1, y and estimates s values; n, kc + s + 1 < 2^31; beta > 0.
inline ArnoldiResult gcrodr_arnoldi(const LinearOperator<double>& A, const LinearOperator<double>* M,
                                    DgemvFn* gemv, std::size_t n, std::size_t kc, std::size_t s, double beta,
                                    double tol, double* basis, double* Z, double* H, std::size_t ldh, double* y,
                                    double* estimates) {
    constexpr double kReorth = 0.7071067811865476;  // DGKS: second pass when ||w|| < ||A z|| / sqrt(2)
    const double happy_tol = std::numeric_limits<double>::epsilon();
    ArnoldiResult result;
    std::vector<double> R((s + 1) * std::max<std::size_t>(s, 1), 0.0), cs(s), sn(s), g(s + 1, 0.0), c(kc + s + 1);
    auto col = [&](std::size_t i) { return basis + i * n; };
    auto r = [&](std::size_t i, std::size_t j) -> double& { return R[j * (s + 1) + i]; };
    g[0] = beta;
    for (std::size_t j = 0; j < s; ++j) {
        const std::size_t p = kc + j + 1;  // columns to orthogonalise against
        const double* vj = col(p - 1);
        const double* zj = vj;
        if (M) {
            M->apply(vj, Z + j * n);
            zj = Z + j * n;
        }
        double* w = col(p);
        A.apply(zj, w);
        double* hj = H + j * ldh;
        std::fill(hj, hj + ldh, 0.0);
        const double w0 = nrm2(w, n);
        detail::block_dots(gemv, basis, n, p, w, hj, 0.0);
        detail::block_subtract(gemv, basis, n, p, hj, w);
        double hn = nrm2(w, n);
        if (hn < kReorth * w0) {
            detail::block_dots(gemv, basis, n, p, w, c.data(), 0.0);
            detail::block_subtract(gemv, basis, n, p, c.data(), w);
            for (std::size_t i = 0; i < p; ++i) hj[i] += c[i];
            hn = nrm2(w, n);
        }
        hj[p] = hn;
        if (!std::isfinite(w0) || !std::isfinite(hn)) {
            result.stop = ArnoldiStop::breakdown;
            break;
        }
        // Givens: the Hbar part of column j (rows kc .. kc + j + 1).
        for (std::size_t i = 0; i <= j + 1; ++i) r(i, j) = hj[kc + i];
        for (std::size_t i = 0; i < j; ++i) {
            const double a = r(i, j), b = r(i + 1, j);
            r(i, j) = cs[i] * a + sn[i] * b;
            r(i + 1, j) = -sn[i] * a + cs[i] * b;
        }
        const double rho = std::hypot(r(j, j), r(j + 1, j));
        if (!(rho > 0.0) || !std::isfinite(rho)) {
            result.stop = ArnoldiStop::breakdown;
            break;
        }
        cs[j] = r(j, j) / rho;
        sn[j] = r(j + 1, j) / rho;
        r(j, j) = rho;
        r(j + 1, j) = 0.0;
        g[j + 1] = -sn[j] * g[j];
        g[j] = cs[j] * g[j];
        result.steps = j + 1;
        estimates[j] = std::fabs(g[j + 1]);
        if (hn <= happy_tol * w0) {  // (near-)invariant: the basis stays finite for the caller's update
            std::fill(w, w + n, 0.0);
            result.stop = ArnoldiStop::invariant;
            break;
        }
        scal(1.0 / hn, w, n);
        if (!std::isfinite(estimates[j])) {
            result.stop = ArnoldiStop::breakdown;
            break;
        }
        if (estimates[j] <= tol) {
            result.stop = ArnoldiStop::converged;
            break;
        }
    }
    // y = R^{-1} g by back substitution over the completed steps.
    const std::size_t k = result.steps;
    for (std::size_t i = k; i-- > 0;) {
        double t = g[i];
        for (std::size_t l = i + 1; l < k; ++l) t -= r(i, l) * y[l];
        y[i] = t / r(i, i);
    }
    return result;
}

}  // namespace krylearn
