// Right-preconditioned BiCGStab (van der Vorst 1992) for general square A:
//
//   r = b - A x, r~ = r, p = r
//   repeat:  p^ = M^{-1} p;  v = A p^;  alpha = (r~.r) / (r~.v)
//            s = r - alpha v                  (stop here if ||s|| passes: x += alpha p^)
//            s^ = M^{-1} s;  t = A s^;  omega = (t.s) / (t.t)
//            x += alpha p^ + omega s^;  r = s - omega t
//            beta = (r~.r_new / r~.r) (alpha / omega);  p = r + beta (p - omega v)
//
// The residual r is the true unpreconditioned residual recurrence, so the
// stopping test needs no extra work. A half step that converges counts as an
// iteration. info -3 when r~.r vanishes (relative to ||r~|| ||r||, eps^2),
// r~.v = 0, t = 0, omega = 0, or on non-finite values.
#pragma once
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "krylov_common.hpp"

namespace krylearn {

namespace detail {

// p = r + beta (p - omega v)
template <class T>
void bicgstab_direction(const T* r, double beta, double omega, const T* v, T* p, std::size_t n) {
    const T tb = T(beta), to = T(omega);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) p[i] = r[i] + tb * (p[i] - to * v[i]);
}

}  // namespace detail

template <class T>
KrylovResult bicgstab(const LinearOperator<T>& op, const LinearOperator<T>* M, const T* b, T* x,
                      const KrylovParams& params, const KrylovHooks<T>& hooks) {
    const std::size_t n = op.size();
    const double bnorm = nrm2(b, n);
    if (bnorm == 0.0) return zero_rhs_solution(x, n);
    const GenericOperator<T> A{op};
    KrylovMonitor<T> mon(params, hooks, bnorm);

    std::vector<T> r_buf(n), rt_buf(n), p_buf(n), v_buf(n), t_buf(n), ph_buf(M ? n : 0), sh_buf(M ? n : 0);
    ReductionScratch scratch(n);
    T *r = r_buf.data(), *rt = rt_buf.data(), *p = p_buf.data(), *v = v_buf.data(), *t = t_buf.data();
    const double eps2 = std::pow(double(std::numeric_limits<T>::epsilon()), 2);

    A.residual(x, b, r);
    double rnorm = nrm2(r, n);
    mon.record_initial(rnorm);
    if (!std::isfinite(rnorm)) return mon.finish(kBreakdown);

    bool residual_is_true = true, restart = true;
    double rho = 0.0, rho_prev = 0.0, alpha = 0.0, omega = 0.0, rt_norm = 0.0;
    while (true) {
        if (mon.meets(rnorm)) {
            if (residual_is_true) return mon.finish(kConverged);
            A.residual(x, b, v);
            const double true_norm = nrm2(v, n);
            const auto verdict = mon.judge_true_residual(true_norm);
            if (verdict != TrueResidualVerdict::restart) return mon.finish(verdict);
            std::swap(r, v);
            rnorm = true_norm;
            residual_is_true = restart = true;
        }
        if (mon.exhausted()) return mon.finish_not_converged();
        if (restart) {
            copy(r, rt, n);
            rt_norm = rnorm;
            rho = rnorm * rnorm;
        }
        if (!(std::fabs(rho) > eps2 * rt_norm * rnorm)) return mon.finish(kBreakdown);
        if (restart)
            copy(r, p, n);
        else
            detail::bicgstab_direction(r, (rho / rho_prev) * (alpha / omega), omega, v, p, n);
        restart = false;

        const T* ph = p;
        if (M) {
            M->apply(p, ph_buf.data());
            ph = ph_buf.data();
        }
        A.apply(ph, v);
        const double rv = dot(rt, v, n);
        if (rv == 0.0 || !std::isfinite(rv)) return mon.finish(kBreakdown);
        alpha = rho / rv;
        if (!detail::finite_value(T(alpha))) return mon.finish(kBreakdown);

        // s = r - alpha v, in place
        const double snorm = detail::norm_from_sumsq(axpy_norm(alpha, v, r, n, static_cast<const T*>(nullptr),
                                                               nullptr, scratch),
                                                     r, n);
        residual_is_true = false;
        if (!std::isfinite(snorm)) return mon.finish(kBreakdown);
        if (mon.meets(snorm)) {
            const bool x_ok = update_iterate(x, alpha, ph, 0.0, static_cast<const T*>(nullptr), n, scratch);
            rnorm = snorm;
            mon.record_iteration(snorm, x);
            if (!x_ok) return mon.finish(kBreakdown);
            continue;  // verified at the top of the loop
        }

        const T* sh = r;
        if (M) {
            M->apply(r, sh_buf.data());
            sh = sh_buf.data();
        }
        A.apply(sh, t);
        const auto [ts, tt] = dot_pair(t, r, t, n, scratch);
        if (!(tt > 0.0) || !std::isfinite(ts) || !std::isfinite(tt)) {
            // t = 0 (or garbage): keep the valid half step, then stop.
            update_iterate(x, alpha, ph, 0.0, static_cast<const T*>(nullptr), n, scratch);
            mon.record_iteration(snorm, x);
            return mon.finish(kBreakdown);
        }
        omega = ts / tt;
        const bool x_ok = update_iterate(x, alpha, ph, omega, sh, n, scratch);
        rho_prev = rho;
        const double rr = axpy_norm(omega, t, r, n, rt, &rho, scratch);  // r = s - omega t; rho = r~.r
        rnorm = detail::norm_from_sumsq(rr, r, n);
        mon.record_iteration(rnorm, x);
        if (!x_ok || !std::isfinite(rnorm) || !std::isfinite(rho)) return mon.finish(kBreakdown);
        if (omega == 0.0 && !mon.meets(rnorm)) return mon.finish(kBreakdown);
    }
}

}  // namespace krylearn
