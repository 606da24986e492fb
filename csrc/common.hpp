// Shared building blocks of the kernels: the deterministic chunked reduction
// and the thresholds that decide when a loop is worth running in parallel.
//
// Determinism contract: every reduction splits [0, n) into fixed chunks of
// kChunk elements, reduces each chunk sequentially in double precision and
// sums the chunk partials in chunk order. The chunking does not depend on the
// number of OpenMP threads, so results are bit-identical for any thread count.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace krylearn {

// Elements (or rows) per reduction chunk.
constexpr std::size_t kChunk = 4096;
// Loops over fewer elements (or nonzeros) than this run on one thread: the
// fork/join cost of an OpenMP region exceeds the work below it.
constexpr std::size_t kParallelMin = 32768;

inline std::size_t num_chunks(std::size_t n) { return (n + kChunk - 1) / kChunk; }

// sum over c in [0, num_chunks(n)) of partial(begin_c, end_c), where the chunk
// partials are computed in parallel (when n >= parallel_min) and added in
// chunk order. `partial(begin, end) -> double` must not throw.
template <class F>
double chunked_sum(std::size_t n, F&& partial, std::size_t parallel_min = kParallelMin) {
    const std::size_t chunks = num_chunks(n);
    if (chunks == 0) return 0.0;
    if (chunks == 1) return partial(std::size_t(0), n);
    // Per-thread scratch, grown once; no allocation in steady state.
    thread_local std::vector<double> scratch;
    if (scratch.size() < chunks) scratch.resize(chunks);
    double* out = scratch.data();
    const auto count = static_cast<std::ptrdiff_t>(chunks);
#pragma omp parallel for schedule(static) if (n >= parallel_min)
    for (std::ptrdiff_t c = 0; c < count; ++c) {
        const std::size_t begin = static_cast<std::size_t>(c) * kChunk;
        out[c] = partial(begin, std::min(n, begin + kChunk));
    }
    double total = 0.0;
    for (std::size_t c = 0; c < chunks; ++c) total += out[c];
    return total;
}

}  // namespace krylearn
