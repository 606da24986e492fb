// BLAS-1 kernels on raw pointers, T in {float, double}.
//
// Reductions (dot, nrm2) accumulate in double and are deterministic: fixed
// chunks of kChunk elements, each reduced with a fixed 4-way unrolled pattern,
// chunk partials summed in order (common.hpp). Element-wise kernels run
// OpenMP-parallel above kParallelMin elements.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "common.hpp"

namespace krylearn {

namespace detail {

template <class T>
double dot_range(const T* x, const T* y, std::size_t begin, std::size_t end) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    std::size_t i = begin;
    for (; i + 4 <= end; i += 4) {
        s0 += double(x[i]) * double(y[i]);
        s1 += double(x[i + 1]) * double(y[i + 1]);
        s2 += double(x[i + 2]) * double(y[i + 2]);
        s3 += double(x[i + 3]) * double(y[i + 3]);
    }
    for (; i < end; ++i) s0 += double(x[i]) * double(y[i]);
    return (s0 + s1) + (s2 + s3);
}

// max |x_i| over [0, n) (NaN-propagating is not needed: callers handle NaN first).
template <class T>
double max_abs(const T* x, std::size_t n) {
    double m = 0.0;
#pragma omp parallel for schedule(static) reduction(max : m) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) m = std::max(m, std::fabs(double(x[i])));
    return m;
}

// True when a sum of squares lost range (overflow to inf or underflow below
// the smallest safely representable value) and must be recomputed scaled.
inline bool sumsq_out_of_range(double s) {
    return s == std::numeric_limits<double>::infinity() || s < 1e-280;
}

}  // namespace detail

// x . y, accumulated in double.
template <class T>
double dot(const T* x, const T* y, std::size_t n) {
    return chunked_sum(n, [x, y](std::size_t b, std::size_t e) { return detail::dot_range(x, y, b, e); });
}

// ||x||_2 in double, without spurious overflow or underflow (a scaled second
// pass runs only when the plain sum of squares leaves double's safe range).
template <class T>
double nrm2(const T* x, std::size_t n) {
    const double s = dot(x, x, n);
    if (std::isnan(s)) return s;
    if (!detail::sumsq_out_of_range(s)) return std::sqrt(s);
    const double scale = detail::max_abs(x, n);
    if (scale == 0.0 || !std::isfinite(scale)) return scale;
    const double inv = 1.0 / scale;
    const double t = chunked_sum(n, [x, inv](std::size_t b, std::size_t e) {
        double acc = 0.0;
        for (std::size_t i = b; i < e; ++i) {
            const double v = double(x[i]) * inv;
            acc += v * v;
        }
        return acc;
    });
    return scale * std::sqrt(t);
}

namespace detail {

// sqrt of a sum of squares of v, recomputed overflow/underflow-safe by nrm2
// when the plain sum left double's range.
template <class T>
double norm_from_sumsq(double sumsq, const T* v, std::size_t n) {
    if (std::isnan(sumsq) || !sumsq_out_of_range(sumsq) || sumsq == 0.0) return std::sqrt(sumsq);
    return nrm2(v, n);
}

}  // namespace detail

// y += alpha x
template <class T>
void axpy(T alpha, const T* x, T* y, std::size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) y[i] += alpha * x[i];
}

// y = x + beta y
template <class T>
void xpay(const T* x, T beta, T* y, std::size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) y[i] = x[i] + beta * y[i];
}

// x *= alpha
template <class T>
void scal(T alpha, T* x, std::size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) x[i] *= alpha;
}

// y = x (x and y must not overlap unless equal)
template <class T>
void copy(const T* x, T* y, std::size_t n) {
    if (x != y && n) std::memcpy(y, x, n * sizeof(T));
}

// True when every x_i is finite (no NaN, no +-inf): x_i * 0 is (+-)0 for a
// finite x_i and NaN otherwise, so the sum of them is 0 exactly when all are
// finite, in any summation order (a vectorised reduction).
template <class T>
bool all_finite(const T* x, std::size_t n) {
    T s = T(0);
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n >= kParallelMin)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) s += x[i] * T(0);
    return s == T(0);
}

}  // namespace krylearn
