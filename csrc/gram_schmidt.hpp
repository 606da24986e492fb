// Classical Gram-Schmidt sweeps against a basis of k columns, the
// orthogonalisation of GMRES/FGMRES (krylov_gmres.hpp) and of the GCRO-DR
// Arnoldi loop (recycling.hpp); T in {float, double}, sums in double.
//
// The basis is column-major with leading dimension n (column i is V + i n).
// One sweep of CGS is two passes over V:
//   project:  h = V^T w and w . w;
//   subtract: w -= V h and, while each row block of V is still in cache,
//             h_next = V^T w and w . w for the new w (the inner products of
//             CGS2's second sweep fused into the first update).
// Each pass streams four columns per pass over w, in row blocks of kGsBlock
// kept in double, so w is read k / 4 times instead of k times.
//
// Determinism: rows are split into the fixed chunks of common.hpp; each chunk
// reduces into its own slots, and the slots are summed in chunk order, so the
// bits do not depend on the number of OpenMP threads. Inside a chunk the loops
// are vectorised (`omp simd` reductions), and on x86-64 an AVX2+FMA build of
// the chunk kernels is selected at run time: results are deterministic for a
// given build and CPU, and differ from a scalar loop's at rounding level.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "common.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#define KRYLEARN_GS_AVX2 1
#endif

namespace krylearn {

namespace detail {

// Rows per block of the fused subtract-and-project pass: the block of every
// basis column stays in L2 between its two uses (kChunk is a multiple).
constexpr std::size_t kGsBlock = 512;

// p[i] += V_i[b, e) . w[b, e) for i < k, four columns per pass over w.
template <class T>
__attribute__((always_inline)) inline void gs_add_dots(const T* V, std::size_t n, std::size_t k, const T* w,
                                                       std::size_t b, std::size_t e, double* p) {
    std::size_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const T *v0 = V + i * n, *v1 = v0 + n, *v2 = v1 + n, *v3 = v2 + n;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (std::size_t r = b; r < e; ++r) {
            const double x = double(w[r]);
            a0 += double(v0[r]) * x;
            a1 += double(v1[r]) * x;
            a2 += double(v2[r]) * x;
            a3 += double(v3[r]) * x;
        }
        p[i] += a0, p[i + 1] += a1, p[i + 2] += a2, p[i + 3] += a3;
    }
    for (; i < k; ++i) {
        const T* v = V + i * n;
        double a = 0.0;
#pragma omp simd reduction(+ : a)
        for (std::size_t r = b; r < e; ++r) a += double(v[r]) * double(w[r]);
        p[i] += a;
    }
}

template <class T>
__attribute__((always_inline)) inline double gs_sumsq(const T* w, std::size_t b, std::size_t e) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (std::size_t r = b; r < e; ++r) s += double(w[r]) * double(w[r]);
    return s;
}

// acc[0, e - b) -= sum_{i<k} h_i V_i[b, e), four columns per pass over acc.
template <class T>
__attribute__((always_inline)) inline void gs_subtract_rows(const T* V, std::size_t n, std::size_t k, const double* h,
                                                            std::size_t b, std::size_t e, double* acc) {
    const std::size_t len = e - b;
    std::size_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const T *v0 = V + i * n + b, *v1 = v0 + n, *v2 = v1 + n, *v3 = v2 + n;
        const double h0 = h[i], h1 = h[i + 1], h2 = h[i + 2], h3 = h[i + 3];
#pragma omp simd
        for (std::size_t r = 0; r < len; ++r)
            acc[r] -= (h0 * double(v0[r]) + h1 * double(v1[r])) + (h2 * double(v2[r]) + h3 * double(v3[r]));
    }
    for (; i < k; ++i) {
        const T* v = V + i * n + b;
        const double hi = h[i];
#pragma omp simd
        for (std::size_t r = 0; r < len; ++r) acc[r] -= hi * double(v[r]);
    }
}

// Chunk [b, e): p[i] = V_i . w (i < k), p[k] = w . w.
template <class T>
__attribute__((always_inline)) inline void gs_project_chunk_impl(const T* V, std::size_t n, std::size_t k, const T* w,
                                                                 std::size_t b, std::size_t e, double* p) {
    std::fill(p, p + k, 0.0);
    gs_add_dots(V, n, k, w, b, e, p);
    p[k] = gs_sumsq(w, b, e);
}

// Chunk [b, e): w -= V h; then p[i] = V_i . w for the new w when `again`
// (else p[0, k) = 0), and p[k] = the new w . w.
template <class T>
__attribute__((always_inline)) inline void gs_subtract_chunk_impl(const T* V, std::size_t n, std::size_t k,
                                                                  const double* h, T* w, std::size_t b, std::size_t e,
                                                                  double* p, bool again) {
    std::fill(p, p + k + 1, 0.0);
    alignas(64) double acc[kGsBlock];
    for (std::size_t sb = b; sb < e; sb += kGsBlock) {
        const std::size_t se = std::min(e, sb + kGsBlock);
        T* ws = w + sb;
#pragma omp simd
        for (std::size_t r = 0; r < se - sb; ++r) acc[r] = double(ws[r]);
        gs_subtract_rows(V, n, k, h, sb, se, acc);
#pragma omp simd
        for (std::size_t r = 0; r < se - sb; ++r) ws[r] = T(acc[r]);
        if (again) gs_add_dots(V, n, k, w, sb, se, p);
        p[k] += gs_sumsq(w, sb, se);
    }
}

template <class T>
struct GsChunkKernels {
    void (*project)(const T*, std::size_t, std::size_t, const T*, std::size_t, std::size_t, double*);
    void (*subtract)(const T*, std::size_t, std::size_t, const double*, T*, std::size_t, std::size_t, double*, bool);
};

template <class T>
void gs_project_chunk_generic(const T* V, std::size_t n, std::size_t k, const T* w, std::size_t b, std::size_t e,
                              double* p) {
    gs_project_chunk_impl(V, n, k, w, b, e, p);
}
template <class T>
void gs_subtract_chunk_generic(const T* V, std::size_t n, std::size_t k, const double* h, T* w, std::size_t b,
                               std::size_t e, double* p, bool again) {
    gs_subtract_chunk_impl(V, n, k, h, w, b, e, p, again);
}
#ifdef KRYLEARN_GS_AVX2
template <class T>
__attribute__((target("avx2,fma"))) void gs_project_chunk_avx2(const T* V, std::size_t n, std::size_t k, const T* w,
                                                               std::size_t b, std::size_t e, double* p) {
    gs_project_chunk_impl(V, n, k, w, b, e, p);
}
template <class T>
__attribute__((target("avx2,fma"))) void gs_subtract_chunk_avx2(const T* V, std::size_t n, std::size_t k,
                                                                const double* h, T* w, std::size_t b, std::size_t e,
                                                                double* p, bool again) {
    gs_subtract_chunk_impl(V, n, k, h, w, b, e, p, again);
}
#endif

// The chunk kernels for this CPU: AVX2+FMA where available, else generic.
template <class T>
GsChunkKernels<T> gs_chunk_kernels() {
#ifdef KRYLEARN_GS_AVX2
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) return {gs_project_chunk_avx2<T>, gs_subtract_chunk_avx2<T>};
#endif
    return {gs_project_chunk_generic<T>, gs_subtract_chunk_generic<T>};
}

}  // namespace detail

// CGS sweeps against the first k <= max_k columns of an n-row basis.
template <class T>
class GramSchmidt {
public:
    GramSchmidt(std::size_t n, std::size_t max_k)
        : n_(n), stride_(max_k + 1), partial_(num_chunks(n) * stride_), kernels_(detail::gs_chunk_kernels<T>()) {}

    // h[i] = V_i . w (i < k); returns w . w. One pass over w and V.
    double project(const T* V, std::size_t k, const T* w, double* h) {
        const auto kernel = kernels_.project;
        const std::size_t n = n_;
        run_chunks(k, [=](std::size_t b, std::size_t e, double* p) { kernel(V, n, k, w, b, e, p); });
        return reduce(k, h);
    }

    // w -= V h; then, when h_next is given, h_next[i] = V_i . w for the new w.
    // Returns the new w . w. One pass over V.
    double subtract(const T* V, std::size_t k, const double* h, T* w, double* h_next) {
        const auto kernel = kernels_.subtract;
        const std::size_t n = n_;
        const bool again = h_next != nullptr;
        run_chunks(k, [=](std::size_t b, std::size_t e, double* p) { kernel(V, n, k, h, w, b, e, p, again); });
        return reduce(k, h_next);
    }

private:
    // body(begin, end, slots) for every chunk, each with its own k + 1 slots.
    template <class F>
    void run_chunks(std::size_t k, const F& body) {
        const auto chunks = static_cast<std::ptrdiff_t>(num_chunks(n_));
        double* partial = partial_.data();
        const std::size_t stride = stride_, n = n_;
#pragma omp parallel for schedule(static) if (chunks > 1 && n * (k + 1) >= kParallelMin)
        for (std::ptrdiff_t c = 0; c < chunks; ++c) {
            const std::size_t b = std::size_t(c) * kChunk;
            body(b, std::min(n, b + kChunk), partial + std::size_t(c) * stride);
        }
    }
    // out[i] = sum over chunks of slot i (i < k), in chunk order; returns the
    // sum of slot k.
    double reduce(std::size_t k, double* out) const {
        const std::size_t chunks = num_chunks(n_);
        if (out)
            for (std::size_t i = 0; i < k; ++i) {
                double s = 0.0;
                for (std::size_t c = 0; c < chunks; ++c) s += partial_[c * stride_ + i];
                out[i] = s;
            }
        double s = 0.0;
        for (std::size_t c = 0; c < chunks; ++c) s += partial_[c * stride_ + k];
        return s;
    }

    std::size_t n_, stride_;
    std::vector<double> partial_;
    detail::GsChunkKernels<T> kernels_;
};

}  // namespace krylearn
