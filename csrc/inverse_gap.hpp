// Inverse-gap weighting (SquareCB, Foster & Rakhlin 2020), the sampling rule of the contextual
// learners (ChebCB, ClusteredIGW): over the available arms,
//   p_a = 1 / (count + gamma (v_a - v_best)) for every arm but the first minimiser v_best,
//   which takes 1 - (the others' sum) >= 1 / count; unavailable arms get 0.
// Plain array-plus-size signature; callers validate (at least one arm available).
#pragma once
#include <cstddef>

namespace krylearn {

// values, p: n entries; available: n flags, or nullptr for all arms.
inline void inverse_gap_weights(const double* values, const bool* available, std::size_t n, double gamma,
                                double* p) {
    std::size_t best = n, count = 0;
    for (std::size_t a = 0; a < n; ++a) {
        if (available && !available[a]) continue;
        ++count;
        if (best == n || values[a] < values[best]) best = a;
    }
    const double low = values[best];
    double others = 0.0, compensation = 0.0;  // Neumaier sum of the other arms' mass
    for (std::size_t a = 0; a < n; ++a) {
        const bool weighted = a != best && (!available || available[a]);
        p[a] = weighted ? 1.0 / (static_cast<double>(count) + gamma * (values[a] - low)) : 0.0;
        const double t = others + p[a];
        compensation += (others >= p[a]) ? (others - t) + p[a] : (p[a] - t) + others;
        others = t;
    }
    p[best] = 1.0 - (others + compensation);
}

}  // namespace krylearn
