// Preconditioned conjugate gradients for SPD A and SPD M (M applies M^{-1}):
//
//   r = b - A x,  z = M^{-1} r,  p = z
//   repeat:  alpha = r.z / p.A p;  x += alpha p;  r -= alpha A p
//            z = M^{-1} r;  beta = r.z_new / r.z_old;  p = z + beta p
//
// Per iteration without M: one fused SpMV+dot pass (q = A p, p.q) when A is a
// CSR matrix, one pass r -= alpha q reducing r.r, and one pass
// p = r + beta p reducing p.p that also applies the previous step x += alpha p
// (x lags one step behind unless a callback needs every iterate; it is brought
// up to date before any exit, so the results equal those of eager updates).
// No allocation inside the loop.
// info -1 when p.Ap <= 0 or p.Ap / p.p <= eps max_k(p_k.Ap_k / p_k.p_k)
// (A not SPD, or singular along p), -2 when r.z <= 0 (M not SPD), -3 on
// non-finite values; x then holds the last iterate.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "krylov_common.hpp"

namespace krylearn {

// Op: GenericOperator<T> or CsrFusedOperator<I, T> (size, apply_dot, residual).
template <class T, class Op>
KrylovResult cg(const Op& A, const LinearOperator<T>* M, const T* b, T* x, const KrylovParams& params,
                const KrylovHooks<T>& hooks) {
    const std::size_t n = A.size();
    const double bnorm = nrm2(b, n);
    if (bnorm == 0.0) return zero_rhs_solution(x, n);
    KrylovMonitor<T> mon(params, hooks, bnorm);

    std::vector<T> r_buf(n), q_buf(n), p_buf(n), z_buf(M ? n : 0);
    ReductionScratch scratch(n);
    T *r = r_buf.data(), *q = q_buf.data(), *p = p_buf.data();
    T* z = M ? z_buf.data() : r;  // z = M^{-1} r, or r itself

    A.residual(x, b, r);
    double rr = dot(r, r, n);
    double rnorm = detail::norm_from_sumsq(rr, r, n);
    mon.record_initial(rnorm);
    if (!std::isfinite(rnorm)) return mon.finish(kBreakdown);

    bool residual_is_true = true;  // r was computed as b - A x (no recurrence drift)
    bool restart = true;           // next direction is p = z
    double rz_old = 0.0, max_rayleigh = 0.0;
    const double eps = std::numeric_limits<T>::epsilon();
    const bool eager_x = static_cast<bool>(hooks.on_iterate);  // the callback sees every x_k
    double lag = 0.0;  // x_k = x + lag p (the step not yet applied)
    // Applies the pending step; false if it would overflow x.
    auto catch_up = [&] {
        const double a = std::exchange(lag, 0.0);
        return a == 0.0 || update_iterate(x, a, p, 0.0, static_cast<const T*>(nullptr), n, scratch);
    };
    auto finish = [&](int info) { return mon.finish(catch_up() ? info : int(kBreakdown)); };
    // A raising operator, preconditioner, callback or interrupt leaves x at the
    // last iterate.
    try {
        while (true) {
            if (mon.meets(rnorm)) {
                if (!catch_up()) return mon.finish(kBreakdown);
                if (residual_is_true) return mon.finish(kConverged);
                A.residual(x, b, q);
                const double true_norm = nrm2(q, n);
                const auto verdict = mon.judge_true_residual(true_norm);
                if (verdict != TrueResidualVerdict::restart) return mon.finish(verdict);
                std::swap(r, q);
                if (!M) z = r;
                rr = dot(r, r, n);
                rnorm = true_norm;
                residual_is_true = restart = true;
            }
            if (mon.exhausted()) return catch_up() ? mon.finish_not_converged() : mon.finish(kBreakdown);

            double rz = rr;
            if (M) {
                M->apply(r, z);
                rz = dot(r, z, n);
                if (!std::isfinite(rz)) return finish(kBreakdown);
                if (rz <= 0.0) return finish(kPreconditionerNotSpd);
            }
            double pp;
            if (restart) {
                if (!catch_up()) return mon.finish(kBreakdown);
                copy(z, p, n);
                pp = dot(p, p, n);
            } else {
                bool x_ok = true;
                pp = update_direction(z, rz / rz_old, p, n, lag != 0.0 ? x : nullptr, lag, &scratch, &x_ok);
                lag = 0.0;
                if (!x_ok) return mon.finish(kBreakdown);
            }
            restart = false;

            const double pq = A.apply_dot(p, q);
            if (std::isnan(pq) || std::isinf(pq)) return finish(kBreakdown);
            // p.Ap <= 0, or a Rayleigh quotient at rounding level of the largest
            // one seen (A singular along p: CG would only amplify noise).
            if (pq <= 0.0 || pq <= eps * max_rayleigh * pp) return finish(kOperatorNotSpd);
            max_rayleigh = std::max(max_rayleigh, pq / pp);
            const double alpha = rz / pq;
            if (!detail::finite_value(T(alpha))) return finish(kBreakdown);

            rr = axpy_norm(alpha, q, r, n, static_cast<const T*>(nullptr), nullptr, scratch);  // r -= alpha q
            rnorm = detail::norm_from_sumsq(rr, r, n);
            residual_is_true = false;
            rz_old = rz;
            lag = alpha;
            const bool x_ok = !eager_x || catch_up();
            mon.record_iteration(rnorm, x);
            if (!x_ok) return mon.finish(kBreakdown);
            if (!std::isfinite(rnorm)) return finish(kBreakdown);
        }
    } catch (...) {
        catch_up();
        throw;
    }
}

}  // namespace krylearn
