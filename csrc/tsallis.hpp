// The 1/2-Tsallis-INF distribution (bandits/tsallis.py holds the learner):
//   w_i = 4 / (eta (L_i - x))^2 with x < min_i L_i such that sum_i w_i = 1,
// by Newton's method on x from x = min L - 2 / eta (the sum is increasing and convex in x, so the
// iterates increase monotonically to the root). A tuner computes it on every solve; in NumPy it was
// ~40 calls per distribution. Plain array-plus-size signature; the binding validates.
#pragma once
#include <cmath>
#include <cstddef>

namespace krylearn {

// losses: n cumulative loss estimates (finite), eta > 0; w: n outputs (normalised to sum 1).
inline void tsallis_weights(const double* losses, std::size_t n, double eta, double tol, std::size_t max_steps,
                            double* w) {
    double low = losses[0];
    for (std::size_t i = 1; i < n; ++i) low = losses[i] < low ? losses[i] : low;
    double x = low - 2.0 / eta;
    auto evaluate = [&](double& sum, double& slope) {
        sum = 0.0, slope = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const double r = 2.0 / (eta * (losses[i] - x));
            w[i] = r * r;
            sum += w[i];
            slope += w[i] * r;  // w^1.5 = w * 2 / (eta (L - x)): sum w^1.5 = (d/dx sum w) / eta
        }
    };
    double sum, slope;
    for (std::size_t step = 0; step < max_steps; ++step) {
        evaluate(sum, slope);
        const double excess = sum - 1.0;
        if (std::fabs(excess) <= tol) break;
        x -= excess / (eta * slope);
    }
    evaluate(sum, slope);
    for (std::size_t i = 0; i < n; ++i) w[i] /= sum;
}

}  // namespace krylearn
