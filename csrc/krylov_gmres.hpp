// Restarted GMRES(m) with right preconditioning, and flexible GMRES (FGMRES).
//
// A cycle starts from the true residual r = b - A x, v_0 = r / ||r||, and
// builds the Arnoldi relation A Z_k = V_{k+1} H_k with z_j = M^{-1} v_j:
// modified Gram-Schmidt, repeated once when the new vector lost more than
// 1 - 1/sqrt(2) of its norm ("twice is enough", Kahan/Parlett). Givens
// rotations reduce H_k to triangular form, so |g_{k}| is the residual norm of
// min_y ||beta e_1 - H_k y|| = ||b - A (x + Z_k y)|| without forming it.
// The cycle ends after m inner steps, on convergence of that estimate, on
// maxiter, or on a (near-)invariant Krylov space; then x += Z_k y (FGMRES
// stores Z; plain GMRES forms M^{-1} (V_k y) with one more M application) and
// the next cycle restarts from the true residual, which also replaces the
// last estimate in the history. info -3 when a full cycle leaves the true
// residual unchanged (stagnation), or on non-finite values.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "krylov_common.hpp"

namespace krylearn {

namespace detail {

// out = sum_{i<k} y_i basis_i (basis_i = basis + i n), accumulated in double
// in a fixed order.
template <class T>
void combine_basis(std::size_t k, const double* y, const T* basis, std::size_t n, T* out) {
    constexpr std::size_t kBlock = 256;
    const auto blocks = static_cast<std::ptrdiff_t>((n + kBlock - 1) / kBlock);
#pragma omp parallel for schedule(static) if (n * std::max<std::size_t>(k, 1) >= kParallelMin)
    for (std::ptrdiff_t blk = 0; blk < blocks; ++blk) {
        const std::size_t b = std::size_t(blk) * kBlock, e = std::min(n, b + kBlock);
        double acc[kBlock] = {};
        for (std::size_t i = 0; i < k; ++i) {
            const double yi = y[i];
            const T* v = basis + i * n;
            for (std::size_t j = b; j < e; ++j) acc[j - b] += yi * double(v[j]);
        }
        for (std::size_t j = b; j < e; ++j) out[j] = T(acc[j - b]);
    }
}

// One (re)orthogonalisation sweep of w against v_0..v_j (modified
// Gram-Schmidt), adding the coefficients to h[0..j]; each subtraction is fused
// with the next inner product. Returns ||w||^2 after the sweep and, in
// *ww_before, ||w||^2 before it.
template <class T>
double mgs_sweep(T* w, const T* V, std::size_t j, std::size_t n, double* h, double* ww_before, ReductionScratch& s) {
    const auto [first, before] = dot_pair(w, V, w, n, s);
    *ww_before = before;
    double coef = first;
    double ww = 0.0;
    for (std::size_t i = 0; i <= j; ++i) {
        h[i] += coef;
        double next = 0.0;
        ww = axpy_norm(coef, V + i * n, w, n, i < j ? V + (i + 1) * n : nullptr, &next, s);
        coef = next;
    }
    return ww;
}

}  // namespace detail

template <class T>
KrylovResult gmres(const LinearOperator<T>& op, const LinearOperator<T>* M, const T* b, T* x, const KrylovParams& params,
                   std::size_t restart, bool flexible, const KrylovHooks<T>& hooks) {
    const std::size_t n = op.size();
    const double bnorm = nrm2(b, n);
    if (bnorm == 0.0) return zero_rhs_solution(x, n);
    const GenericOperator<T> A{op};
    const std::size_t m = std::max<std::size_t>(1, std::min(restart, n));
    flexible = flexible && M != nullptr;  // FGMRES without M is GMRES
    KrylovMonitor<T> mon(params, hooks, bnorm);

    std::vector<T> V((m + 1) * n), Z(flexible ? m * n : 0), work(n), update(M && !flexible ? n : 0);
    std::vector<double> H((m + 1) * m), cs(m), sn(m), g(m + 1), y(m);
    ReductionScratch scratch(n);
    auto v = [&](std::size_t i) { return V.data() + i * n; };
    auto h = [&](std::size_t i, std::size_t j) -> double& { return H[j * (m + 1) + i]; };
    const double happy_tol = std::numeric_limits<T>::epsilon();

    A.residual(x, b, v(0));
    double beta = nrm2(v(0), n);
    mon.record_initial(beta);
    if (!std::isfinite(beta)) return mon.finish(kBreakdown);
    if (mon.meets(beta)) return mon.finish(kConverged);

    while (true) {
        if (mon.exhausted()) return mon.finish_not_converged();
        scal(T(1.0 / beta), v(0), n);
        std::fill(g.begin(), g.end(), 0.0);
        g[0] = beta;
        std::size_t k = 0;  // columns of H in the least-squares problem
        bool breakdown = false, estimate_met = false;
        for (std::size_t j = 0; j < m && !mon.exhausted(); ++j) {
            T* zj = flexible ? Z.data() + j * n : (M ? work.data() : v(j));
            if (M) M->apply(v(j), zj);
            T* w = v(j + 1);
            A.apply(zj, w);

            double* hj = &h(0, j);
            std::fill(hj, hj + m + 1, 0.0);
            double ww0 = 0.0, ww1 = 0.0;
            double hn = std::sqrt(detail::mgs_sweep(w, V.data(), j, n, hj, &ww0, scratch));
            const double w0 = std::sqrt(ww0);
            if (hn < w0 * (1.0 / std::sqrt(2.0))) hn = std::sqrt(detail::mgs_sweep(w, V.data(), j, n, hj, &ww1, scratch));
            if (!std::isfinite(w0) || !std::isfinite(hn)) {
                breakdown = true;
                break;
            }

            for (std::size_t i = 0; i < j; ++i) {
                const double a = h(i, j), c = h(i + 1, j);
                h(i, j) = cs[i] * a + sn[i] * c;
                h(i + 1, j) = -sn[i] * a + cs[i] * c;
            }
            const double rho = std::hypot(h(j, j), hn);
            if (rho == 0.0) break;  // singular H: A z_j adds nothing; the cycle ends without column j
            cs[j] = h(j, j) / rho;
            sn[j] = hn / rho;
            h(j, j) = rho;
            h(j + 1, j) = 0.0;
            g[j + 1] = -sn[j] * g[j];
            g[j] = cs[j] * g[j];
            k = j + 1;

            const double estimate = std::fabs(g[j + 1]);
            mon.record_iteration(estimate, nullptr);
            if (mon.meets(estimate)) {
                estimate_met = true;
                break;
            }
            if (hn <= happy_tol * w0) break;  // (near-)invariant Krylov space: the cycle's solution is final
            scal(T(1.0 / hn), w, n);
        }

        // y = R_k^{-1} g_k by back substitution; x += Z_k y.
        for (std::size_t i = k; i-- > 0;) {
            double s = g[i];
            for (std::size_t l = i + 1; l < k; ++l) s -= h(i, l) * y[l];
            y[i] = s / h(i, i);
        }
        bool x_ok = std::all_of(y.begin(), y.begin() + k, [](double t) { return std::isfinite(t); });
        if (x_ok && k > 0) {
            if (flexible) {
                detail::combine_basis(k, y.data(), Z.data(), n, work.data());
            } else if (M) {
                detail::combine_basis(k, y.data(), V.data(), n, update.data());
                M->apply(update.data(), work.data());
            } else {
                detail::combine_basis(k, y.data(), V.data(), n, work.data());
            }
            x_ok = update_iterate(x, 1.0, work.data(), 0.0, static_cast<const T*>(nullptr), n, scratch);
        }

        A.residual(x, b, v(0));
        const double true_norm = nrm2(v(0), n);
        if (k > 0) mon.replace_last(true_norm);
        mon.callback_x(x);
        if (mon.meets(true_norm)) return mon.finish(kConverged);
        if (breakdown || !x_ok || !std::isfinite(true_norm)) return mon.finish(kBreakdown);
        if (mon.exhausted()) return mon.finish_not_converged();
        if (estimate_met && mon.judge_true_residual(true_norm) == TrueResidualVerdict::stalled)
            return mon.finish_not_converged();
        if (!(true_norm < beta)) return mon.finish(kBreakdown);  // a whole cycle without progress
        beta = true_norm;
        mon.poll();
    }
}

}  // namespace krylearn
