// Shared pieces of the Krylov loops (CG, GMRES/FGMRES, BiCGStab, MINRES):
// the result and parameter records, the hooks into Python, the stopping
// test, the residual-replacement guard, the operator adaptors and the fused
// vector kernels.
//
// Conventions of every loop (docs/architecture.md, "Krylov loops"):
//  * stop when ||r|| <= max(atol, rtol ||b||); b = 0 gives x = 0 at once;
//  * when the recursive residual passes the test, the true residual b - A x
//    is computed; if it fails, the recurrence restarts from it (bounded by
//    maxiter, and abandoned when a restart no longer improves the true
//    residual: the attainable accuracy has been reached);
//  * info 0 converged, > 0 not converged (the iterations done, at least 1),
//    -1 CG operator not SPD, -2 preconditioner not SPD, -3 other breakdown;
//  * x is only ever moved by finite steps and never holds NaN or inf (an
//    element whose update would overflow keeps its value, and the loop stops
//    with -3);
//  * residuals[k] is ||r_k||_2 (residuals[0] = ||r_0||); an entry whose
//    recursive value was checked against the true residual holds the latter.
// Reductions use the deterministic chunked scheme of common.hpp (bitwise
// identical results for any thread count); scalars are kept in double, also
// for float32 vectors.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "blas1.hpp"
#include "common.hpp"
#include "linear_operator.hpp"
#include "spmv.hpp"

namespace krylearn {

enum KrylovInfo : int {
    kConverged = 0,
    kOperatorNotSpd = -1,
    kPreconditionerNotSpd = -2,
    kBreakdown = -3,
};

struct KrylovParams {
    double rtol = 1e-5;
    double atol = 0.0;
    std::size_t maxiter = 0;
};

struct KrylovResult {
    std::size_t iterations = 0;
    int info = 0;
    std::vector<double> residuals;
};

// What a loop does after its recursive residual passed the stopping test and
// the true residual was computed (KrylovMonitor::judge_true_residual).
enum class TrueResidualVerdict { converged, restart, stalled, nonfinite };

// Calls out of the loop; every member may be empty. They are invoked outside
// any OpenMP region and may throw (the exception ends the solve).
template <class T>
struct KrylovHooks {
    std::function<void(const T*)> on_iterate;  // callback(x_k)
    std::function<void(double)> on_residual;   // callback(||r_k|| / ||b||) (GMRES "pr_norm")
    std::function<void()> poll;                // e.g. raise on a pending KeyboardInterrupt
};

// ------------------------------------------------------------------ operators

// A LinearOperator seen through the interface the loops use.
template <class T>
struct GenericOperator {
    const LinearOperator<T>& op;

    std::size_t size() const { return op.size(); }
    void apply(const T* x, T* y) const { op.apply(x, y); }
    // y = A x; returns x . y
    double apply_dot(const T* x, T* y) const {
        op.apply(x, y);
        return dot(x, y, op.size());
    }
    // r = b - A x
    void residual(const T* x, const T* b, T* r) const {
        op.apply(x, r);
        xpay(b, T(-1), r, op.size());
    }
};

// A CSR matrix seen through the same interface, without virtual dispatch and
// with the fused matvec-dot pass (the CG fast path).
template <class I, class T>
struct CsrFusedOperator {
    CsrView<I, T> A;

    std::size_t size() const { return A.n_rows; }
    void apply(const T* x, T* y) const { csr_matvec(A, x, y); }
    double apply_dot(const T* x, T* y) const { return csr_matvec_dot(A, x, y); }
    void residual(const T* x, const T* b, T* r) const { csr_residual(A, x, b, r); }
};

// ------------------------------------------------------------- loop bookkeeping

// The stopping threshold max(atol, rtol ||b||), the residual history, the
// callbacks and the residual-replacement guard of one solve.
template <class T>
class KrylovMonitor {
public:
    KrylovMonitor(const KrylovParams& params, const KrylovHooks<T>& hooks, double bnorm)
        : params_(params), hooks_(hooks), bnorm_(bnorm), tol_(std::max(params.atol, params.rtol * bnorm)) {
        result_.residuals.reserve(std::min<std::size_t>(params.maxiter, 4095) + 1);
    }

    bool meets(double rnorm) const { return rnorm <= tol_; }
    bool exhausted() const { return result_.iterations >= params_.maxiter; }

    void record_initial(double rnorm) { result_.residuals.push_back(rnorm); }
    // One iteration done with residual norm rnorm: record it, run the hooks.
    void record_iteration(double rnorm, const T* x) {
        ++result_.iterations;
        result_.residuals.push_back(rnorm);
        if (hooks_.on_residual) hooks_.on_residual(bnorm_ > 0 ? rnorm / bnorm_ : rnorm);
        if (hooks_.on_iterate && x) hooks_.on_iterate(x);
        poll();
    }
    // Checks for a user interrupt at most every few milliseconds.
    void poll() {
        if (!hooks_.poll) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_poll_ < std::chrono::milliseconds(50)) return;
        last_poll_ = now;
        hooks_.poll();
    }
    void callback_x(const T* x) const {
        if (hooks_.on_iterate) hooks_.on_iterate(x);
    }
    // The last recorded norm was recursive; store the true one instead.
    void replace_last(double true_norm) { result_.residuals.back() = true_norm; }

    // Verdict on the true residual norm ||b - A x|| computed after the
    // recursive one passed the test; it replaces the recursive entry. Restart
    // (from the true residual) only while restarts pay off: a restart that did
    // not halve the true residual of the previous failed check means the
    // recurrence has reached its attainable accuracy.
    using Verdict = TrueResidualVerdict;
    Verdict judge_true_residual(double true_norm) {
        replace_last(true_norm);
        if (meets(true_norm)) return Verdict::converged;
        if (!std::isfinite(true_norm)) return Verdict::nonfinite;
        const bool pays = !(true_norm >= 0.5 * last_failed_true_);
        last_failed_true_ = std::min(last_failed_true_, true_norm);
        return pays && !exhausted() ? Verdict::restart : Verdict::stalled;
    }
    KrylovResult finish(Verdict verdict) {
        if (verdict == Verdict::converged) return finish(kConverged);
        if (verdict == Verdict::nonfinite) return finish(kBreakdown);
        return finish_not_converged();
    }

    KrylovResult finish(int info) {
        result_.info = info;
        return std::move(result_);
    }
    // info > 0: not converged after the iterations done (at least 1, so that
    // maxiter = 0 with an unmet test is not mistaken for convergence).
    KrylovResult finish_not_converged() {
        return finish(static_cast<int>(std::min<std::size_t>(std::max<std::size_t>(result_.iterations, 1),
                                                             std::numeric_limits<int>::max())));
    }

private:
    KrylovParams params_;
    const KrylovHooks<T>& hooks_;
    double bnorm_, tol_;
    double last_failed_true_ = std::numeric_limits<double>::infinity();
    KrylovResult result_;
    std::chrono::steady_clock::time_point last_poll_ = std::chrono::steady_clock::now();
};

// The b = 0 case shared by all loops: x = 0 is the exact solution.
template <class T>
inline KrylovResult zero_rhs_solution(T* x, std::size_t n) {
    std::fill(x, x + n, T(0));
    KrylovResult res;
    res.residuals.push_back(0.0);
    return res;
}

// ------------------------------------------------------------- fused kernels
//
// Each kernel is one pass over its vectors; reductions follow the chunked
// scheme of common.hpp. A kernel that reduces two quantities returns the first
// through chunked_sum and parks the second per chunk in `extra` (num_chunks(n)
// doubles, owned by the loop), summed afterwards in chunk order.

namespace detail {

template <class T>
inline bool finite_value(T v) {
    return std::abs(v) <= std::numeric_limits<T>::max();
}

inline double sum_in_order(const std::vector<double>& extra, std::size_t n) {
    double s = 0.0;
    for (std::size_t c = 0, k = num_chunks(n); c < k; ++c) s += extra[c];
    return s;
}

// x_i += step_i where finite; returns false if some step would overflow
// (those x_i keep their value).
template <class T>
inline bool add_finite(T& xi, T step) {
    const T next = xi + step;
    const bool ok = finite_value(next);
    xi = ok ? next : xi;
    return ok;
}

}  // namespace detail

// Scratch for two-valued reductions: one double per chunk.
struct ReductionScratch {
    std::vector<double> extra;
    std::vector<unsigned char> overflow;
    explicit ReductionScratch(std::size_t n) : extra(num_chunks(n) + 1), overflow(num_chunks(n) + 1) {}

    bool any_overflow(std::size_t n) const {
        for (std::size_t c = 0, k = num_chunks(n); c < k; ++c)
            if (overflow[c]) return true;
        return false;
    }
};

namespace detail {

// One chunk [b, e) of update_direction (restrict: z, p and x never alias, so the loop vectorises);
// even and odd rows sum p . p separately, as the scalar loop this replaces did. Returns the sum;
// *bad = true if a step of x would overflow.
template <class T>
double direction_chunk(const T* __restrict z, T tb, T* __restrict p, T* __restrict x, T ta, std::size_t b,
                       std::size_t e, bool* bad) {
    double s0 = 0.0, s1 = 0.0;
    int overflow = 0;
    std::size_t i = b;
    for (; i + 2 <= e; i += 2) {  // the x test is loop-invariant (unswitched by the compiler)
        if (x) overflow |= !add_finite(x[i], ta * p[i]) | !add_finite(x[i + 1], ta * p[i + 1]);
        const T p0 = z[i] + tb * p[i], p1 = z[i + 1] + tb * p[i + 1];
        p[i] = p0, p[i + 1] = p1;
        s0 += double(p0) * double(p0);
        s1 += double(p1) * double(p1);
    }
    for (; i < e; ++i) {
        if (x) overflow |= !add_finite(x[i], ta * p[i]);
        p[i] = z[i] + tb * p[i];
        s0 += double(p[i]) * double(p[i]);
    }
    *bad = overflow != 0;
    return s0 + s1;
}

}  // namespace detail

// CG direction update p = z + beta p, returning p . p (the new p). When x is
// given, the step of the previous iteration is applied in the same pass:
// x += alpha p with the old p (CG keeps x one step behind, which saves a
// separate pass reading p); *x_ok = false if a step of x would overflow (x
// then stays finite). x_i and p_i get exactly the values of two separate
// passes.
template <class T>
double update_direction(const T* z, double beta, T* p, std::size_t n, T* x = nullptr, double alpha = 0.0,
                        ReductionScratch* s = nullptr, bool* x_ok = nullptr) {
    const T tb = T(beta), ta = T(alpha);
    unsigned char* ovf = x ? s->overflow.data() : nullptr;
    const double pp = chunked_sum(n, [=](std::size_t b, std::size_t e) {
        bool bad = false;
        const double sum = detail::direction_chunk(z, tb, p, x, ta, b, e, &bad);
        if (x) ovf[b / kChunk] = bad;
        return sum;
    });
    if (x) *x_ok = !s->any_overflow(n);
    return pp;
}

namespace detail {

// One chunk [b, e) of update_iterate (restrict: x never aliases u or w, so the loop vectorises);
// true if a step would overflow.
template <class T>
bool iterate_chunk(T* __restrict x, T ta, const T* __restrict u, T tc, const T* __restrict w, std::size_t b,
                   std::size_t e) {
    int overflow = 0;
    if (w)
        for (std::size_t i = b; i < e; ++i) overflow |= !add_finite(x[i], ta * u[i] + tc * w[i]);
    else
        for (std::size_t i = b; i < e; ++i) overflow |= !add_finite(x[i], ta * u[i]);
    return overflow != 0;
}

}  // namespace detail

// x += a u + c w (c may be 0 with w unread when w == nullptr); false if a step
// would overflow somewhere (x stays finite).
template <class T>
bool update_iterate(T* x, double a, const T* u, double c, const T* w, std::size_t n, ReductionScratch& s) {
    const T ta = T(a), tc = T(c);
    unsigned char* ovf = s.overflow.data();
    const auto chunks = static_cast<std::ptrdiff_t>(num_chunks(n));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t c_ = 0; c_ < chunks; ++c_) {
        const std::size_t b = std::size_t(c_) * kChunk;
        ovf[c_] = detail::iterate_chunk(x, ta, u, tc, w, b, std::min(n, b + kChunk));
    }
    return !s.any_overflow(n);
}

namespace detail {

// One chunk [b, e) of axpy_norm (restrict: the vectors never alias, so the loops vectorise); even and
// odd rows sum y . y separately. Returns y . y; y . z in *yz when z is given.
template <class T>
double axpy_norm_chunk(T ta, const T* __restrict x, T* __restrict y, const T* __restrict z, std::size_t b,
                       std::size_t e, double* yz) {
    double s0 = 0.0, s1 = 0.0, t = 0.0;
    std::size_t i = b;
    for (; i + 2 <= e; i += 2) {
        const T y0 = y[i] - ta * x[i], y1 = y[i + 1] - ta * x[i + 1];
        y[i] = y0, y[i + 1] = y1;
        s0 += double(y0) * double(y0);
        s1 += double(y1) * double(y1);
    }
    for (; i < e; ++i) {
        y[i] -= ta * x[i];
        s0 += double(y[i]) * double(y[i]);
    }
    if (z)
        for (i = b; i < e; ++i) t += double(y[i]) * double(z[i]);
    *yz = t;
    return s0 + s1;
}

}  // namespace detail

// y -= a x; returns y . y of the new y and, when z is given, y . z in *yz.
template <class T>
double axpy_norm(double a, const T* x, T* y, std::size_t n, const T* z, double* yz, ReductionScratch& s) {
    const T ta = T(a);
    double* extra = s.extra.data();
    const double yy = chunked_sum(n, [=](std::size_t b, std::size_t e) {
        return detail::axpy_norm_chunk(ta, x, y, z, b, e, extra + b / kChunk);
    });
    if (yz) *yz = detail::sum_in_order(s.extra, n);
    return yy;
}

// Returns (x . y, x . z) in one pass.
template <class T>
std::pair<double, double> dot_pair(const T* x, const T* y, const T* z, std::size_t n, ReductionScratch& s) {
    double* extra = s.extra.data();
    const double xy = chunked_sum(n, [=](std::size_t b, std::size_t e) {
        double s0 = 0.0, s1 = 0.0, t0 = 0.0, t1 = 0.0;
        std::size_t i = b;
        for (; i + 2 <= e; i += 2) {
            s0 += double(x[i]) * double(y[i]);
            s1 += double(x[i + 1]) * double(y[i + 1]);
            t0 += double(x[i]) * double(z[i]);
            t1 += double(x[i + 1]) * double(z[i + 1]);
        }
        for (; i < e; ++i) {
            s0 += double(x[i]) * double(y[i]);
            t0 += double(x[i]) * double(z[i]);
        }
        extra[b / kChunk] = t0 + t1;
        return s0 + s1;
    });
    return {xy, detail::sum_in_order(s.extra, n)};
}

}  // namespace krylearn
