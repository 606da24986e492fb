// Bindings of the bandit learners' per-solve arithmetic (chebcb.hpp, inverse_gap.hpp, tsallis.hpp). Every array is
// checked (dtype, shape, contiguity, writeability, no shared memory) and
// every scalar range-checked before a kernel reads anything.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "chebcb.hpp"
#include "inverse_gap.hpp"
#include "tsallis.hpp"

namespace py = pybind11;
using namespace krylearn;

namespace {

constexpr std::size_t kMaxCoefficients = 21;  // ChebCB's degree is at most 20

// (n_arms, d) of a theta array, validated against the supported sizes.
std::pair<std::size_t, std::size_t> fit_shape(const py::array& theta) {
    if (theta.ndim() != 2)
        throw py::value_error("theta must be 2-D (n_arms, degree + 1), got shape " + shape_str(theta));
    const auto n_arms = static_cast<std::size_t>(theta.shape(0)), d = static_cast<std::size_t>(theta.shape(1));
    if (n_arms < 1) throw py::value_error("theta needs at least one arm");
    if (d < 1 || d > kMaxCoefficients)
        throw py::value_error("theta must have 1 to " + std::to_string(kMaxCoefficients) +
                              " coefficients per arm, got " + std::to_string(d));
    return {n_arms, d};
}

double unit_context(double z) {
    if (!(z >= -1.0 && z <= 1.0))
        throw py::value_error("z must lie in [-1, 1] (the context mapped to the unit interval)");
    return z;
}

std::size_t arm_index(long long arm, std::size_t n_arms) {
    if (arm < 0 || static_cast<std::size_t>(arm) >= n_arms)
        throw py::value_error("arm must be in [0, " + std::to_string(n_arms) + "), got " + std::to_string(arm));
    return static_cast<std::size_t>(arm);
}

py::array_t<double> chebyshev_features_py(double z, long long degree) {
    if (degree < 0 || degree + 1 > static_cast<long long>(kMaxCoefficients))
        throw py::value_error("degree must be in [0, " + std::to_string(kMaxCoefficients - 1) + "], got " +
                              std::to_string(degree));
    py::array_t<double> phi(static_cast<py::ssize_t>(degree + 1));
    chebyshev_features(unit_context(z), static_cast<std::size_t>(degree), phi.mutable_data());
    return phi;
}

py::array_t<double> chebcb_probabilities_py(py::array theta, py::array covariance, double z, double scale,
                                            double optimism, double gamma) {
    const auto [n_arms, d] = fit_shape(theta);
    const double* th = array_data<double>(theta, {n_arms, d}, "theta", false);
    const double* cov = array_data<double>(covariance, {n_arms, d, d}, "covariance", false);
    if (!(std::isfinite(scale) && scale > 0.0)) throw py::value_error("scale must be finite and positive");
    if (!(std::isfinite(optimism) && optimism >= 0.0)) throw py::value_error("optimism must be finite and >= 0");
    if (!(std::isfinite(gamma) && gamma >= 0.0)) throw py::value_error("gamma must be finite and >= 0");
    double phi[kMaxCoefficients];
    chebyshev_features(unit_context(z), d - 1, phi);
    std::vector<double> work(n_arms);
    py::array_t<double> p(static_cast<py::ssize_t>(n_arms));
    if (!chebcb_probabilities(th, cov, n_arms, d, phi, scale, optimism, gamma, work.data(), p.mutable_data()))
        throw py::value_error("ChebCB predicted a non-finite loss: the learner's state is corrupted");
    return p;
}

struct FitArrays {
    double *gram, *moment, *theta, *covariance;
    const double* penalty;
    std::size_t n_arms, d;
};

FitArrays fit_arrays(py::array& gram, py::array& moment, py::array& penalty, py::array& theta, py::array& covariance) {
    const auto [n_arms, d] = fit_shape(theta);
    FitArrays f{array_data<double>(gram, {n_arms, d, d}, "gram", true),
                array_data<double>(moment, {n_arms, d}, "moment", true),
                array_data<double>(theta, {n_arms, d}, "theta", true),
                array_data<double>(covariance, {n_arms, d, d}, "covariance", true),
                array_data<double>(penalty, {d}, "penalty", false), n_arms, d};
    const py::array* arrays[] = {&gram, &moment, &penalty, &theta, &covariance};
    const char* names[] = {"gram", "moment", "penalty", "theta", "covariance"};
    for (int i = 0; i < 5; ++i)
        for (int j = i + 1; j < 5; ++j) require_no_overlap(*arrays[i], names[i], *arrays[j], names[j]);
    for (std::size_t i = 0; i < d; ++i)
        if (!(std::isfinite(f.penalty[i]) && f.penalty[i] > 0.0))
            throw py::value_error("penalty must be finite and positive");
    return f;
}

bool refit(const FitArrays& f, std::size_t arm) {
    double factor[kMaxCoefficients * kMaxCoefficients];
    const std::size_t dd = f.d * f.d;
    return chebcb_refit(f.gram + arm * dd, f.moment + arm * f.d, f.penalty, f.d, factor, f.theta + arm * f.d,
                        f.covariance + arm * dd);
}

bool chebcb_refit_py(py::array gram, py::array moment, py::array penalty, py::array theta, py::array covariance,
                     long long arm) {
    const FitArrays f = fit_arrays(gram, moment, penalty, theta, covariance);
    return refit(f, arm_index(arm, f.n_arms));
}

bool chebcb_learn_py(py::array gram, py::array moment, py::array penalty, py::array theta, py::array covariance,
                     long long arm, double z, double loss) {
    const FitArrays f = fit_arrays(gram, moment, penalty, theta, covariance);
    const std::size_t a = arm_index(arm, f.n_arms);
    if (!std::isfinite(loss)) throw py::value_error("loss must be finite");
    double phi[kMaxCoefficients];
    chebyshev_features(unit_context(z), f.d - 1, phi);
    chebcb_accumulate(phi, loss, f.d, f.gram + a * f.d * f.d, f.moment + a * f.d);
    return refit(f, a);
}

py::array_t<double> tsallis_weights_py(py::array cumulative, double eta, double tol, long long max_steps) {
    require_dtype<double>(cumulative, "cumulative");
    require_1d_contiguous(cumulative, "cumulative");
    const auto n = static_cast<std::size_t>(cumulative.shape(0));
    if (n == 0) throw py::value_error("cumulative needs at least one arm");
    const double* losses = static_cast<const double*>(cumulative.data());
    require_finite(losses, n, "cumulative");
    if (!(std::isfinite(eta) && eta > 0.0)) throw py::value_error("eta must be finite and positive");
    if (!(std::isfinite(tol) && tol >= 0.0)) throw py::value_error("tol must be finite and >= 0");
    if (max_steps < 1) throw py::value_error("max_steps must be >= 1");
    py::array_t<double> w(static_cast<py::ssize_t>(n));
    tsallis_weights(losses, n, eta, tol, static_cast<std::size_t>(max_steps), w.mutable_data());
    return w;
}

py::array_t<double> inverse_gap_weights_py(py::array values, double gamma, py::object available_obj) {
    require_dtype<double>(values, "values");
    require_1d_contiguous(values, "values");
    const auto n = static_cast<std::size_t>(values.shape(0));
    if (n == 0) throw py::value_error("values needs at least one arm");
    if (!(std::isfinite(gamma) && gamma >= 0.0)) throw py::value_error("gamma must be finite and >= 0");
    const bool* available = nullptr;
    if (!available_obj.is_none()) {
        py::array mask = as_ndarray(available_obj, "available");
        if (mask.dtype().kind() != 'b') throw py::type_error("available must have dtype bool, got " + dtype_str(mask));
        require_1d_contiguous(mask, "available");
        if (static_cast<std::size_t>(mask.shape(0)) != n)
            throw py::value_error("available has " + std::to_string(mask.shape(0)) + " entries for " +
                                  std::to_string(n) + " arms");
        available = static_cast<const bool*>(mask.data());
        bool any = false;
        for (std::size_t a = 0; a < n && !any; ++a) any = available[a];
        if (!any) throw py::value_error("no arm is available");
    }
    py::array_t<double> p(static_cast<py::ssize_t>(n));
    inverse_gap_weights(static_cast<const double*>(values.data()), available, n, gamma, p.mutable_data());
    return p;
}

}  // namespace

void bind_bandits(py::module_& m) {
    m.def("inverse_gap_weights", &inverse_gap_weights_py, py::arg("values"), py::arg("gamma"),
          py::arg("available") = py::none(),
          "SquareCB sampling over the available arms (bool mask, None = all): p_a = 1 / (count + gamma (v_a - "
          "v_best)) for every arm but the first minimiser, which takes the remaining mass.");
    m.def("tsallis_weights", &tsallis_weights_py, py::arg("cumulative"), py::arg("eta"), py::arg("tol") = 1e-12,
          py::arg("max_steps") = 100,
          "The 1/2-Tsallis-INF distribution w_i = 4 / (eta (L_i - x))^2, sum 1, for cumulative losses L and rate "
          "eta (Newton on x). ValueError on non-finite input.");
    m.def("chebyshev_features", &chebyshev_features_py, py::arg("z"), py::arg("degree"),
          "(T_0(z), ..., T_degree(z)) for z in [-1, 1].");
    m.def("chebcb_probabilities", &chebcb_probabilities_py, py::arg("theta"), py::arg("covariance"), py::arg("z"),
          py::arg("scale"), py::arg("optimism"), py::arg("gamma"),
          "ChebCB's sampling distribution at z: inverse-gap weights (gamma) of theta_a . phi(z) / scale - "
          "optimism sqrt(phi^T C_a phi). ValueError on bad shapes or a non-finite prediction.");
    m.def("chebcb_refit", &chebcb_refit_py, py::arg("gram"), py::arg("moment"), py::arg("penalty"), py::arg("theta"),
          py::arg("covariance"), py::arg("arm"),
          "theta[arm], covariance[arm] = H^-1 moment[arm], H^-1 with H = diag(penalty) + gram[arm] (Cholesky), in "
          "place; False (nothing written) when H is not positive definite.");
    m.def("chebcb_learn", &chebcb_learn_py, py::arg("gram"), py::arg("moment"), py::arg("penalty"), py::arg("theta"),
          py::arg("covariance"), py::arg("arm"), py::arg("z"), py::arg("loss"),
          "Adds the observation (phi(z), loss) to arm's statistics and refits it (see chebcb_refit), in place.");
}
