// The Arnoldi part of one GCRO-DR cycle (Parks, de Sturler, Mackey, Johnson,
// Maiti, SISC 2006) with right preconditioning, in one native loop.
//
// basis is an n x (kc + s + 1) column-major block W = [C, v_0, v_1, ...]
// whose first kc + 1 columns are given and orthonormal: C (n x kc) spans the
// image of the recycle space, v_0 the normalised residual projected off C.
// Step j (j < s) computes z_j = M^{-1} v_j (stored in Z[:, j]; without M,
// z_j = v_j and Z is not used), w = A z_j, orthogonalises w against all
// p = kc + j + 1 columns of W by classical Gram-Schmidt applied twice (CGS2:
// h = W^T w, w -= W h, c = W^T w, w -= W c, h += c; the second subtraction is
// skipped when ||c|| <= 16 eps ||w||, i.e. when it would move w by less than
// its rounding) and stores v_{j+1} = w / ||w|| as column p. So
//     A Z_j = W_{p+1} H[0 : p+1, 0 : j+1]
// with H column-major (leading dimension ldh): rows [0, kc) of H are
// B = C^T A Z_j, rows [kc, kc + j + 2) the Arnoldi Hessenberg Hbar_j.
// Givens rotations reduce Hbar to triangular form, so |g_{j+1}| is the
// residual norm min_y ||beta e_0 - Hbar_j y|| of the cycle (after the
// projection onto range(C), which the caller handles through B).
//
// The loop stops after s steps, when that estimate is <= tol, on a
// (near-)invariant Krylov space (||w|| <= eps ||A z_j||: column p is then
// zeroed) or on breakdown (a non-finite value or a singular Hbar). On return
// y holds the least-squares solution for the completed steps and
// estimates[j] the estimate after step j.
//
// Cost: the Gram-Schmidt sweeps over up to m columns dominate; they stream
// W two or three times per step (gram_schmidt.hpp: vectorised, an AVX2+FMA
// build selected at run time, OpenMP over fixed row chunks, so the bits do not
// depend on the thread count).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "blas1.hpp"
#include "gram_schmidt.hpp"
#include "linear_operator.hpp"

namespace krylearn {

enum class ArnoldiStop : int { steps = 0, converged = 1, invariant = 2, breakdown = -1 };

struct ArnoldiResult {
    std::size_t steps = 0;  // completed steps (columns of H / entries of y)
    ArnoldiStop stop = ArnoldiStop::steps;
};

// See the header comment. Requirements (checked by the binding): basis holds
// n x (kc + s + 1) values, Z n x s when M is given, H ldh x s with
// ldh >= kc + s + 1, y and estimates s values; beta > 0.
inline ArnoldiResult gcrodr_arnoldi(const LinearOperator<double>& A, const LinearOperator<double>* M,
                                    std::size_t n, std::size_t kc, std::size_t s, double beta, double tol,
                                    double* basis, double* Z, double* H, std::size_t ldh, double* y,
                                    double* estimates) {
    GramSchmidt<double> gs(n, kc + s + 1);
    const double happy_tol = std::numeric_limits<double>::epsilon();
    const double negligible = 16 * std::numeric_limits<double>::epsilon();  // relative ||c|| below which w -= W c is skipped
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
        const double w0 = detail::norm_from_sumsq(gs.project(basis, p, w, hj), w, n);
        double ww = gs.subtract(basis, p, hj, w, c.data());
        double cc = 0.0;
        for (std::size_t i = 0; i < p; ++i) cc += c[i] * c[i];
        if (!(cc <= negligible * negligible * ww)) {
            ww = gs.subtract(basis, p, c.data(), w, nullptr);
            for (std::size_t i = 0; i < p; ++i) hj[i] += c[i];
        }
        const double hn = detail::norm_from_sumsq(ww, w, n);
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
