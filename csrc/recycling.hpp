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
// Cost: the Gram-Schmidt sweeps over up to m columns dominate, and W does not
// fit in a core's L2 cache at the sizes recycling is used for, so the sweeps
// are organised to stream W twice per step: one pass for h = W^T w and w . w,
// one row-blocked pass that subtracts W h and, while the block of W is still
// in cache, accumulates c = W^T w and the new w . w (a third, plain
// subtraction only when c is not negligible). The loops are written for the
// compiler's vectoriser (`omp simd` reductions); on x86-64 an AVX2+FMA clone
// is selected at run time. Single-threaded and deterministic for a given
// build and CPU (the vector reduction order differs from a scalar loop).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "blas1.hpp"
#include "linear_operator.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#define KRYLEARN_RECYCLING_AVX2 1
#endif

namespace krylearn {

enum class ArnoldiStop : int { steps = 0, converged = 1, invariant = 2, breakdown = -1 };

struct ArnoldiResult {
    std::size_t steps = 0;  // completed steps (columns of H / entries of y)
    ArnoldiStop stop = ArnoldiStop::steps;
};

namespace detail {

// Rows per block of the fused subtract-and-project pass: the block of all
// (<= a few hundred) basis columns stays in L2 between its two uses.
constexpr std::size_t kGsRows = 512;

// h[i] (+)= W_i[b, e) . w[b, e) for i < p, four columns per pass over w.
__attribute__((always_inline)) inline void gs_dots(const double* W, std::size_t n, std::size_t p, const double* w,
                                                   std::size_t b, std::size_t e, double* h) {
    std::size_t i = 0;
    for (; i + 4 <= p; i += 4) {
        const double *v0 = W + i * n, *v1 = v0 + n, *v2 = v1 + n, *v3 = v2 + n;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (std::size_t r = b; r < e; ++r) {
            const double x = w[r];
            a0 += v0[r] * x;
            a1 += v1[r] * x;
            a2 += v2[r] * x;
            a3 += v3[r] * x;
        }
        h[i] += a0, h[i + 1] += a1, h[i + 2] += a2, h[i + 3] += a3;
    }
    for (; i < p; ++i) {
        const double* v = W + i * n;
        double a = 0.0;
#pragma omp simd reduction(+ : a)
        for (std::size_t r = b; r < e; ++r) a += v[r] * w[r];
        h[i] += a;
    }
}

__attribute__((always_inline)) inline double gs_sumsq(const double* w, std::size_t b, std::size_t e) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (std::size_t r = b; r < e; ++r) s += w[r] * w[r];
    return s;
}

// w[b, e) -= sum_i h_i W_i[b, e), four columns per pass over w.
__attribute__((always_inline)) inline void gs_subtract(const double* W, std::size_t n, std::size_t p, const double* h,
                                                       double* w, std::size_t b, std::size_t e) {
    std::size_t i = 0;
    for (; i + 4 <= p; i += 4) {
        const double *v0 = W + i * n, *v1 = v0 + n, *v2 = v1 + n, *v3 = v2 + n;
        const double h0 = h[i], h1 = h[i + 1], h2 = h[i + 2], h3 = h[i + 3];
#pragma omp simd
        for (std::size_t r = b; r < e; ++r) w[r] -= (h0 * v0[r] + h1 * v1[r]) + (h2 * v2[r] + h3 * v3[r]);
    }
    for (; i < p; ++i) {
        const double* v = W + i * n;
        const double hi = h[i];
#pragma omp simd
        for (std::size_t r = b; r < e; ++r) w[r] -= hi * v[r];
    }
}

// h = W^T w; returns w . w. One pass over W.
__attribute__((always_inline)) inline double gs_project_impl(const double* W, std::size_t n, std::size_t p,
                                                             const double* w, double* h) {
    std::fill(h, h + p, 0.0);
    gs_dots(W, n, p, w, 0, n, h);
    return gs_sumsq(w, 0, n);
}

// w -= W h; then, when c is given, c = W^T w for the new w. Returns the new
// w . w. One pass over W: each row block is updated and (c) projected again
// while it is in cache.
__attribute__((always_inline)) inline double gs_subtract_impl(const double* W, std::size_t n, std::size_t p,
                                                              const double* h, double* w, double* c) {
    if (c) std::fill(c, c + p, 0.0);
    double ww = 0.0;
    for (std::size_t b = 0; b < n; b += kGsRows) {
        const std::size_t e = std::min(n, b + kGsRows);
        gs_subtract(W, n, p, h, w, b, e);
        if (c) gs_dots(W, n, p, w, b, e, c);
        ww += gs_sumsq(w, b, e);
    }
    return ww;
}

inline double gs_project_generic(const double* W, std::size_t n, std::size_t p, const double* w, double* h) {
    return gs_project_impl(W, n, p, w, h);
}
inline double gs_subtract_generic(const double* W, std::size_t n, std::size_t p, const double* h, double* w,
                                  double* c) {
    return gs_subtract_impl(W, n, p, h, w, c);
}
#ifdef KRYLEARN_RECYCLING_AVX2
__attribute__((target("avx2,fma"))) inline double gs_project_avx2(const double* W, std::size_t n, std::size_t p,
                                                                  const double* w, double* h) {
    return gs_project_impl(W, n, p, w, h);
}
__attribute__((target("avx2,fma"))) inline double gs_subtract_avx2(const double* W, std::size_t n, std::size_t p,
                                                                   const double* h, double* w, double* c) {
    return gs_subtract_impl(W, n, p, h, w, c);
}
#endif

struct GsKernels {
    double (*project)(const double*, std::size_t, std::size_t, const double*, double*);
    double (*subtract)(const double*, std::size_t, std::size_t, const double*, double*, double*);
};

inline GsKernels gs_kernels() {
#ifdef KRYLEARN_RECYCLING_AVX2
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) return {gs_project_avx2, gs_subtract_avx2};
#endif
    return {gs_project_generic, gs_subtract_generic};
}

// sqrt(sumsq), recomputed by the scaled nrm2 when the plain sum lost range.
inline double norm_of(double sumsq, const double* v, std::size_t n) {
    if (std::isnan(sumsq) || sumsq == 0.0 || !sumsq_out_of_range(sumsq)) return std::sqrt(sumsq);
    return nrm2(v, n);
}

}  // namespace detail

// See the header comment. Requirements (checked by the binding): basis holds
// n x (kc + s + 1) values, Z n x s when M is given, H ldh x s with
// ldh >= kc + s + 1, y and estimates s values; beta > 0.
inline ArnoldiResult gcrodr_arnoldi(const LinearOperator<double>& A, const LinearOperator<double>* M,
                                    std::size_t n, std::size_t kc, std::size_t s, double beta, double tol,
                                    double* basis, double* Z, double* H, std::size_t ldh, double* y,
                                    double* estimates) {
    const detail::GsKernels gs = detail::gs_kernels();
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
        const double w0 = detail::norm_of(gs.project(basis, n, p, w, hj), w, n);
        double ww = gs.subtract(basis, n, p, hj, w, c.data());
        double cc = 0.0;
        for (std::size_t i = 0; i < p; ++i) cc += c[i] * c[i];
        if (!(cc <= negligible * negligible * ww)) {
            ww = gs.subtract(basis, n, p, c.data(), w, nullptr);
            for (std::size_t i = 0; i < p; ++i) hj[i] += c[i];
        }
        const double hn = detail::norm_of(ww, w, n);
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
