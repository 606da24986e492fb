// Restarted GMRES(m) with right preconditioning, and flexible GMRES (FGMRES).
//
// A cycle starts from the true residual r = b - A x, v_0 = r / ||r||, and
// builds the Arnoldi relation A Z_k = V_{k+1} H_k with z_j = M^{-1} v_j. The
// basis V is one contiguous n x (m+1) column-major block; each new vector is
// orthogonalised by classical Gram-Schmidt applied twice (CGS2: h = V^T w,
// w -= V h, then c = V^T w, w -= V c, h += c), each sweep one pass for all
// inner products and one for the update, with the inner products of the
// second sweep fused into the first update. The second update is skipped when
// ||c|| <= 16 eps ||w|| (it would move w by less than its rounding; w is then
// orthogonal to V to that level), so the basis is streamed 2 or 3 times per
// step instead of once per basis vector with w re-read each time as in MGS
// (gram_schmidt.hpp). CGS2 keeps ||I - V^T V|| at O(eps) whatever the conditioning of A M^{-1}.
// Givens rotations reduce H_k to triangular form, so |g_k| is the residual
// norm of min_y ||beta e_1 - H_k y|| = ||b - A (x + Z_k y)|| without forming it.
// The cycle ends after m inner steps, on convergence of that estimate, on
// maxiter, or on a (near-)invariant Krylov space; then x += Z_k y (FGMRES
// stores Z; plain GMRES forms M^{-1} (V_k y) with one more M application) and
// the next cycle restarts from the true residual, which also replaces the
// last estimate in the history.
// When A M^{-1} is numerically singular on the Krylov space (cond(H_k) near
// 1/eps, e.g. ILU(0) with tiny pivots), y and hence the estimate lose their
// accuracy: the true residual can then stay above the cycle's start although
// the estimate fell. Such a cycle is not stagnation; the restart from the true
// residual recovers, and only kMaxUnproductiveCycles of them in a row end the
// solve (not converged, info > 0). info -3 when a cycle's own estimate makes
// no progress (stagnation), or on non-finite values.
// Reductions use fixed chunks reduced in a fixed order (common.hpp): the bits
// do not depend on the number of threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gram_schmidt.hpp"
#include "krylov_common.hpp"

namespace krylearn {

namespace detail {

// out = sum_{i<k} y_i basis_i (basis_i = basis + i n), accumulated in double
// in a fixed order.
template <class T>
void combine_basis(std::size_t k, const double* y, const T* basis, std::size_t n, T* out) {
    const auto blocks = static_cast<std::ptrdiff_t>((n + kGsBlock - 1) / kGsBlock);
#pragma omp parallel for schedule(static) if (n * std::max<std::size_t>(k, 1) >= kParallelMin)
    for (std::ptrdiff_t blk = 0; blk < blocks; ++blk) {
        const std::size_t b = std::size_t(blk) * kGsBlock, e = std::min(n, b + kGsBlock);
        double acc[kGsBlock] = {};
        for (std::size_t i = 0; i < k; ++i) {
            const double yi = y[i];
            const T* v = basis + i * n;
            for (std::size_t j = b; j < e; ++j) acc[j - b] += yi * double(v[j]);
        }
        for (std::size_t j = b; j < e; ++j) out[j] = T(acc[j - b]);
    }
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
    std::vector<double> H((m + 1) * m), cs(m), sn(m), g(m + 1), y(m), correction(m + 1);
    GramSchmidt<T> gs(n, m + 1);
    ReductionScratch scratch(n);
    auto v = [&](std::size_t i) { return V.data() + i * n; };
    auto h = [&](std::size_t i, std::size_t j) -> double& { return H[j * (m + 1) + i]; };
    const double happy_tol = std::numeric_limits<T>::epsilon();
    const double negligible_correction = 16 * std::numeric_limits<T>::epsilon();  // relative ||c|| below which w -= V c is skipped

    A.residual(x, b, v(0));
    double beta = nrm2(v(0), n);
    mon.record_initial(beta);
    if (!std::isfinite(beta)) return mon.finish(kBreakdown);
    if (mon.meets(beta)) return mon.finish(kConverged);

    // A cycle whose estimate falls by less than this fraction made no progress; this many
    // cycles in a row that lower the estimate but not the true residual end the solve.
    constexpr double kStagnation = 1e-12;
    constexpr int kMaxUnproductiveCycles = 3;
    int unproductive_cycles = 0;
    while (true) {
        if (mon.exhausted()) return mon.finish_not_converged();
        scal(T(1.0 / beta), v(0), n);
        std::fill(g.begin(), g.end(), 0.0);
        g[0] = beta;
        std::size_t k = 0;  // columns of H in the least-squares problem
        bool breakdown = false, estimate_met = false;
        double estimate = beta;  // |g_k|, the cycle's least-squares residual
        for (std::size_t j = 0; j < m && !mon.exhausted(); ++j) {
            T* zj = flexible ? Z.data() + j * n : (M ? work.data() : v(j));
            if (M) M->apply(v(j), zj);
            T* w = v(j + 1);
            A.apply(zj, w);

            double* hj = &h(0, j);
            std::fill(hj, hj + m + 1, 0.0);
            // CGS2: h = V^T w, w -= V h and c = V^T w (fused), then w -= V c unless negligible.
            const double w0 = detail::norm_from_sumsq(gs.project(V.data(), j + 1, w, hj), w, n);
            double ww = gs.subtract(V.data(), j + 1, hj, w, correction.data());
            double cc = 0.0;
            for (std::size_t i = 0; i <= j; ++i) cc += correction[i] * correction[i];
            if (!(cc <= negligible_correction * negligible_correction * ww)) {
                ww = gs.subtract(V.data(), j + 1, correction.data(), w, nullptr);
                for (std::size_t i = 0; i <= j; ++i) hj[i] += correction[i];
            }
            const double hn = detail::norm_from_sumsq(ww, w, n);
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

            estimate = std::fabs(g[j + 1]);
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
        if (!(true_norm < beta)) {
            // No progress even in the cycle's own least-squares estimate: stagnation.
            if (!(estimate < beta * (1.0 - kStagnation))) return mon.finish(kBreakdown);
            // The estimate dropped but the true residual did not: y lost its accuracy to an
            // ill-conditioned H (A M^{-1} numerically singular on the Krylov space). A restart
            // from the true residual usually recovers; stop when it keeps failing.
            if (++unproductive_cycles >= kMaxUnproductiveCycles) return mon.finish_not_converged();
        } else {
            unproductive_cycles = 0;
        }
        beta = true_norm;
        mon.poll();
    }
}

}  // namespace krylearn
