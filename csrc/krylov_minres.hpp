// Preconditioned MINRES (Paige & Saunders 1975) for (A - shift I) x = b with
// A symmetric (possibly indefinite) and M SPD (M applies M^{-1}).
//
// Lanczos on (A - shift I) in the M-inner product,
//   beta_{k+1} y_{k+1} = (A - shift I) v_k - alpha_k y_k - beta_k y_{k-1},
//   v_k = M^{-1} y_k / beta_k, beta_k^2 = y_k . M^{-1} y_k,
// and Givens rotations on the tridiagonal matrix give the update
//   w_k = (v_k - eps_k w_{k-2} - delta_k w_{k-1}) / gamma_k,  x += phi_k w_k.
// Without M, |phibar_k| is ||r_k||_2. With M, |phibar_k| is the
// M^{-1}-norm, so the 2-norm residual is carried along instead:
//   A w_k from the same recurrence (A v_k is at hand), r -= phi_k A w_k.
// The vector updates of one step are a single fused pass. info -2 when
// y . M^{-1} y < 0 (M not SPD); -3 on non-finite values, or when the Lanczos
// space is exhausted (beta_{k+1} <= eps ||T_k||) without reaching the
// tolerance, or the projected problem is singular (gamma_k <= eps ||T_k||):
// a singular, inconsistent system.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "krylov_common.hpp"

namespace krylearn {

namespace detail {

// ynew = av - c1 y1 - c2 y2; returns ynew . ynew
template <class T>
double lanczos_step(const T* av, double c1, const T* y1, double c2, const T* y2, T* ynew, std::size_t n) {
    const T t1 = T(c1), t2 = T(c2);
    return chunked_sum(n, [=](std::size_t b, std::size_t e) {
        double s0 = 0.0, s1 = 0.0;
        std::size_t i = b;
        for (; i + 2 <= e; i += 2) {
            const T a = av[i] - t1 * y1[i] - t2 * y2[i];
            const T c = av[i + 1] - t1 * y1[i + 1] - t2 * y2[i + 1];
            ynew[i] = a, ynew[i + 1] = c;
            s0 += double(a) * double(a);
            s1 += double(c) * double(c);
        }
        for (; i < e; ++i) {
            ynew[i] = av[i] - t1 * y1[i] - t2 * y2[i];
            s0 += double(ynew[i]) * double(ynew[i]);
        }
        return s0 + s1;
    });
}

// The fused MINRES update, with g = 1 / gamma:
//   w_old2 <- (v - eps w_old2 - delta w_old1) g;  x += phi w_old2  (w_old2 now holds w_k)
// and when aw != nullptr (preconditioned case) likewise for A w with av, and
//   r -= phi A w_k; returns r . r (0 without aw). *x_ok = false if a step of
// x would overflow.
template <class T>
double minres_update(double g, double eps, double delta, double phi, const T* v, T* w2, const T* w1, T* x,
                     const T* av, T* aw2, const T* aw1, T* r, std::size_t n, ReductionScratch& s, bool* x_ok) {
    const T tg = T(g), te = T(eps), td = T(delta), tp = T(phi);
    unsigned char* ovf = s.overflow.data();
    const double rr = chunked_sum(n, [=](std::size_t b, std::size_t e) {
        bool ok = true;
        double acc = 0.0;
        for (std::size_t i = b; i < e; ++i) {
            const T wk = (v[i] - te * w2[i] - td * w1[i]) * tg;
            w2[i] = wk;
            ok &= detail::add_finite(x[i], tp * wk);
        }
        if (aw2)
            for (std::size_t i = b; i < e; ++i) {
                const T awk = (av[i] - te * aw2[i] - td * aw1[i]) * tg;
                aw2[i] = awk;
                r[i] -= tp * awk;
                acc += double(r[i]) * double(r[i]);
            }
        ovf[b / kChunk] = !ok;
        return acc;
    });
    *x_ok = !s.any_overflow(n);
    return rr;
}

// y = s x
template <class T>
void scaled_copy(double s, const T* x, T* y, std::size_t n) {
    const T ts = T(s);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) y[i] = ts * x[i];
}

}  // namespace detail

template <class T>
KrylovResult minres(const LinearOperator<T>& op, const LinearOperator<T>* M, const T* b, T* x, double shift,
                    const KrylovParams& params, const KrylovHooks<T>& hooks) {
    const std::size_t n = op.size();
    const double bnorm = nrm2(b, n);
    if (bnorm == 0.0) return zero_rhs_solution(x, n);
    const GenericOperator<T> A{op};
    KrylovMonitor<T> mon(params, hooks, bnorm);
    const std::size_t nm = M ? n : 0;

    // y_{k-1}, y_k, y_{k+1} rotate through ybuf; w_{k-2}, w_{k-1} through wbuf.
    std::vector<T> ybuf(3 * n), v(n), av(n), wbuf(2 * n), z(nm), awbuf(2 * nm), r(nm);
    ReductionScratch scratch(n);
    const double eps = std::numeric_limits<T>::epsilon();

    // out = b - (A - shift I) x
    auto shifted_residual = [&](T* out) {
        A.residual(x, b, out);
        if (shift != 0.0) axpy(T(shift), x, out, n);
    };

    T* y_prev = ybuf.data();  // holds the current true residual at a (re)start
    shifted_residual(y_prev);
    double rnorm = nrm2(y_prev, n);
    mon.record_initial(rnorm);
    if (!std::isfinite(rnorm)) return mon.finish(kBreakdown);
    if (mon.meets(rnorm)) return mon.finish(kConverged);

    while (true) {  // one pass per (re)start from the true residual in y_prev
        if (mon.exhausted()) return mon.finish_not_converged();
        const std::size_t slot = static_cast<std::size_t>(y_prev - ybuf.data()) / n;
        T* y_cur = ybuf.data() + (slot + 1) % 3 * n;
        T* y_next = ybuf.data() + (slot + 2) % 3 * n;
        copy(y_prev, y_cur, n);  // y_1 = r; y_prev is only read with weight 0 in the first step
        T *w2 = wbuf.data(), *w1 = wbuf.data() + n;  // w_{k-2}, w_{k-1}
        std::fill(wbuf.begin(), wbuf.end(), T(0));
        T *aw2 = M ? awbuf.data() : nullptr, *aw1 = M ? awbuf.data() + n : nullptr;
        std::fill(awbuf.begin(), awbuf.end(), T(0));
        if (M) copy(y_prev, r.data(), n);

        const T* my = y_cur;  // M^{-1} y_k
        double beta_sq = rnorm * rnorm;
        if (M) {
            M->apply(y_cur, z.data());
            my = z.data();
            beta_sq = dot(y_cur, my, n);
        }
        if (!std::isfinite(beta_sq)) return mon.finish(kBreakdown);
        if (beta_sq <= 0.0) return mon.finish(kPreconditionerNotSpd);  // y != 0 here
        double beta = std::sqrt(beta_sq), oldb = 0.0;
        double dbar = 0.0, epsln = 0.0, phibar = beta, cs = -1.0, sn = 0.0;
        double tnorm = 0.0;  // max row sum of the Lanczos matrix: the scale of (A - shift I)

        while (true) {
            if (mon.exhausted()) return mon.finish_not_converged();
            detail::scaled_copy(1.0 / beta, my, v.data(), n);
            A.apply(v.data(), av.data());
            double alpha = 0.0;  // v . (A - shift I) v, with av -= shift v fused
            axpy_norm(shift, v.data(), av.data(), n, v.data(), &alpha, scratch);
            const double ynorm_sq = detail::lanczos_step(av.data(), oldb > 0.0 ? beta / oldb : 0.0, y_prev,
                                                         alpha / beta, y_cur, y_next, n);
            std::swap(y_prev, y_cur);
            std::swap(y_cur, y_next);  // y_prev = y_k, y_cur = y_{k+1}, y_next free
            oldb = beta;
            beta_sq = ynorm_sq;
            my = y_cur;
            if (M) {
                M->apply(y_cur, z.data());
                my = z.data();
                beta_sq = dot(y_cur, my, n);
            }
            if (!std::isfinite(alpha) || !std::isfinite(beta_sq)) return mon.finish(kBreakdown);
            if (beta_sq < 0.0) return mon.finish(kPreconditionerNotSpd);
            beta = std::sqrt(beta_sq);

            // Previous rotation on the new column, then the new rotation.
            tnorm = std::max(tnorm, std::fabs(alpha) + beta + oldb);
            const double oldeps = epsln;
            const double delta = cs * dbar + sn * alpha;
            const double gbar = sn * dbar - cs * alpha;
            epsln = sn * beta;
            dbar = -cs * beta;
            const double gamma = std::hypot(gbar, beta);
            if (gamma <= eps * tnorm) {
                // Exhausted Lanczos space with a singular tridiagonal matrix:
                // (A - shift I) is singular and b has a component outside its
                // range. No step can reduce the residual any further.
                shifted_residual(y_next);
                const auto verdict = mon.judge_true_residual(nrm2(y_next, n));
                return mon.finish(verdict == TrueResidualVerdict::converged ? kConverged : kBreakdown);
            }
            cs = gbar / gamma;
            sn = beta / gamma;
            const double phi = cs * phibar;
            phibar = sn * phibar;

            bool x_ok = true;
            const double rr = detail::minres_update(1.0 / gamma, oldeps, delta, phi, v.data(), w2, w1, x, av.data(),
                                                    aw2, aw1, r.data(), n, scratch, &x_ok);
            std::swap(w1, w2);  // w1 = w_k, w2 = w_{k-1}
            if (M) std::swap(aw1, aw2);
            rnorm = M ? detail::norm_from_sumsq(rr, r.data(), n) : std::fabs(phibar);
            mon.record_iteration(rnorm, x);
            if (!x_ok || !std::isfinite(rnorm)) return mon.finish(kBreakdown);

            const bool exhausted_space = beta <= eps * tnorm;
            if (mon.meets(rnorm) || exhausted_space) {
                shifted_residual(y_next);
                const double true_norm = nrm2(y_next, n);
                const auto verdict = mon.judge_true_residual(true_norm);
                if (verdict == TrueResidualVerdict::stalled && exhausted_space && !mon.exhausted())
                    return mon.finish(kBreakdown);
                if (verdict != TrueResidualVerdict::restart) return mon.finish(verdict);
                y_prev = y_next;
                rnorm = true_norm;
                break;
            }
        }
    }
}

}  // namespace krylearn
