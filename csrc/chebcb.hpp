// ChebCB's per-solve arithmetic (bandits/chebcb.py holds the method and its
// state): Chebyshev features of a scalar context, the optimistic
// inverse-gap-weighted sampling distribution over the arms, and the per-arm
// penalised regression refit. A tuner calls these once per solve, so they
// are here to keep the learner's cost far below the solve's (~95 us per solve
// as ~25 NumPy calls on cold caches, against a ~2 ms SSOR-PCG solve).
// Plain array-plus-size signatures; the binding validates every argument.
#pragma once
#include <cmath>
#include <cstddef>

#include "inverse_gap.hpp"

namespace krylearn {

// phi[k] = T_k(z), k = 0..degree (three-term recurrence), z in [-1, 1].
inline void chebyshev_features(double z, std::size_t degree, double* phi) {
    phi[0] = 1.0;
    if (degree >= 1) phi[1] = z;
    for (std::size_t k = 2; k <= degree; ++k) phi[k] = 2.0 * z * phi[k - 1] - phi[k - 2];
}

// ChebCB's sampling distribution for n_arms fits of d coefficients: inverse-gap weights
// (inverse_gap.hpp, gamma) of the optimistic predictions
//   l_a = theta_a . phi / scale - optimism sqrt(max(phi^T C_a phi, 0)).
// theta: n_arms x d, covariance: n_arms x d x d (row-major), phi: d, work: n_arms.
// Returns false (p untouched) when a prediction is not finite.
inline bool chebcb_probabilities(const double* theta, const double* covariance, std::size_t n_arms, std::size_t d,
                                 const double* phi, double scale, double optimism, double gamma, double* work,
                                 double* p) {
    for (std::size_t a = 0; a < n_arms; ++a) {
        double predicted = 0.0;
        for (std::size_t i = 0; i < d; ++i) predicted += theta[a * d + i] * phi[i];
        predicted /= scale;
        if (optimism > 0.0) {
            const double* c = covariance + a * d * d;
            double width = 0.0;
            for (std::size_t i = 0; i < d; ++i) {
                double row = 0.0;
                for (std::size_t j = 0; j < d; ++j) row += c[i * d + j] * phi[j];
                width += row * phi[i];
            }
            predicted -= optimism * std::sqrt(width > 0.0 ? width : 0.0);
        }
        if (!std::isfinite(predicted)) return false;
        work[a] = predicted;
    }
    inverse_gap_weights(work, nullptr, n_arms, gamma, p);
    return true;
}

// One arm's fit from its sufficient statistics: with H = diag(penalty) + gram (d x d, SPD),
//   theta = H^{-1} moment,  covariance = H^{-1}
// by a Cholesky factorisation of H in `factor` (d x d work). Returns false (theta and
// covariance untouched) when H is not numerically positive definite.
inline bool chebcb_refit(const double* gram, const double* moment, const double* penalty, std::size_t d,
                         double* factor, double* theta, double* covariance) {
    for (std::size_t i = 0; i < d; ++i) {  // lower Cholesky factor L of H, row by row
        for (std::size_t j = 0; j <= i; ++j) {
            double s = gram[i * d + j] + (i == j ? penalty[i] : 0.0);
            for (std::size_t k = 0; k < j; ++k) s -= factor[i * d + k] * factor[j * d + k];
            if (i == j) {
                if (!(s > 0.0) || !std::isfinite(s)) return false;
                factor[i * d + i] = std::sqrt(s);
            } else {
                factor[i * d + j] = s / factor[j * d + j];
            }
        }
    }
    // H^{-1} e_c for every column c, then H^{-1} moment: forward then backward substitution.
    auto solve = [&](double* x, std::size_t stride) {
        for (std::size_t i = 0; i < d; ++i) {
            double s = x[i * stride];
            for (std::size_t k = 0; k < i; ++k) s -= factor[i * d + k] * x[k * stride];
            x[i * stride] = s / factor[i * d + i];
        }
        for (std::size_t i = d; i-- > 0;) {
            double s = x[i * stride];
            for (std::size_t k = i + 1; k < d; ++k) s -= factor[k * d + i] * x[k * stride];
            x[i * stride] = s / factor[i * d + i];
        }
    };
    for (std::size_t i = 0; i < d * d; ++i) covariance[i] = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        covariance[c * d + c] = 1.0;
        solve(covariance + c, d);  // column c of the identity, strided
    }
    for (std::size_t i = 0; i < d; ++i) theta[i] = moment[i];
    solve(theta, 1);
    return true;
}

// Adds one observation (features phi of the context, loss) to an arm's statistics:
// gram += phi phi^T, moment += loss phi.
inline void chebcb_accumulate(const double* phi, double loss, std::size_t d, double* gram, double* moment) {
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < d; ++j) gram[i * d + j] += phi[i] * phi[j];
        moment[i] += loss * phi[i];
    }
}

}  // namespace krylearn
