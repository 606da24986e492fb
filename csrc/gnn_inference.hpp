// Inference of the learned-IC network (preconditioners/ic_gnn.py, ICGNN) on
// the CPU in float32: the node features from tril(A~) and its IC(0) factor,
// and the forward pass, fused so that every edge's MLP runs in registers, on
// tiles of 4, 8 or 16 edges (or nodes) transposed to one item per vector lane.
//
// Graph: n nodes, E strictly-lower edges (i, j), j < i, in CSR order: the
// edges of row i are [lower_ptr[i], lower_ptr[i+1]) with columns cols[k].
// Inputs: a_k = a~_ij, l0_k = L0_ij (edge features [a_k, l0_k]) and the node
// features x_i = [l0_ii, rho_i, s_i, t_i] (n x 4, row-major).
//
// Network (width w, R rounds; linear(u) = W u + b, mlp = linear o act o linear, act = SiLU
// x / (1 + exp(-x)) or hard swish x min(max(x + 3, 0), 6) / 6, one for the whole network):
//   h_i = node_encoder(x_i),  e_k = edge_encoder([a_k, l0_k])
//   R times:  e_k += edge_update([e_k, h_i, h_j, a_k, l0_k])
//             lo_i = mean of e_k over row i's edges (i, j < i),  up_j = mean over column j's edges (i > j, j)
//             h_i = LayerNorm(h_i + node_update([h_i, lo_i, up_i, x_i]))      (eps 1e-5; empty mean = 0)
//   c_k = edge_decoder([e_k, h_i, h_j]),  d_i = node_decoder(h_i)
//   l_off_k = l0_k + a_k c_k,  l_diag_i = l0_ii exp(4 tanh(d_i / 4))
//
// Parameters: one flat float32 array, modules in the order node_encoder,
// edge_encoder, then per round edge_update, node_update, norm, then
// edge_decoder, node_decoder; each Linear as its weight (out x in, row-major,
// PyTorch's layout) followed by its bias, each LayerNorm as weight then bias.
// The first layers' node blocks are applied once per node (h W^T), then
// gathered per edge, as ICGNN does. Every loop is over independent rows or
// nodes (column means gather through a column-sorted edge list), so results
// do not depend on the number of threads.
//
// The vectorised pass (gnn_forward.inc) is compiled for 4-float SSE vectors
// (every x86-64) and, on x86-64 with GCC (`#pragma GCC target`), for 8-float AVX2
// vectors with fused multiply-adds (namespace gnn_avx2) and 16-float AVX-512
// vectors (gnn_avx512, GCC >= 12), chosen at run time by gnn_max_lanes(). All run the same
// per-lane operations except that AVX2 and AVX-512 fuse a*b + c into one
// rounding and refine a more accurate reciprocal estimate, so they agree with SSE
// to float32 rounding (not bitwise).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <immintrin.h>
#include <memory>
#include <type_traits>
#include <vector>

namespace krylearn {

constexpr std::size_t kGnnNodeFeatures = 4;
constexpr std::size_t kGnnEdgeFeatures = 2;
constexpr std::size_t kGnnMaxWidth = 256;
constexpr std::size_t kGnnMaxRounds = 8;
constexpr float kGnnLayerNormEps = 1e-5f;

// The activation between an MLP's two layers (ICGNN's `activation`).
enum class GnnActivation { silu, hardswish };

// Number of floats in the flat parameter array of a width-w, R-round network.
inline std::size_t gnn_parameter_count(std::size_t w, std::size_t rounds) {
    const auto linear = [](std::size_t in, std::size_t out) { return in * out + out; };
    const auto mlp = [&](std::size_t in, std::size_t out) { return linear(in, w) + linear(w, out); };
    const std::size_t per_round = mlp(3 * w + kGnnEdgeFeatures, w) + mlp(3 * w + kGnnNodeFeatures, w) + 2 * w;
    return mlp(kGnnNodeFeatures, w) + mlp(kGnnEdgeFeatures, w) + rounds * per_round + mlp(3 * w, 1) + mlp(w, 1);
}

// One Linear layer with its weight transposed (in x out) for loops over the outputs.
struct GnnLinear {
    const float* wt = nullptr;  // in x out, row-major
    const float* bias = nullptr;
    std::size_t in = 0, out = 0;
};

// The network's layers unpacked from the flat parameter array (weights transposed into `storage`).
struct GnnWeights {
    struct Mlp {
        GnnLinear first, second;
    };
    struct Round {
        Mlp edge, node;
        const float* norm_weight = nullptr;
        const float* norm_bias = nullptr;
    };
    std::size_t width = 0;
    GnnActivation activation = GnnActivation::silu;
    Mlp node_encoder, edge_encoder, edge_decoder, node_decoder;
    std::vector<Round> rounds;
    std::vector<float> storage;

    // `params` must hold gnn_parameter_count(width, n_rounds) floats.
    GnnWeights(const float* params, std::size_t w, std::size_t n_rounds, GnnActivation act)
        : width(w), activation(act), rounds(n_rounds), storage(gnn_parameter_count(w, n_rounds)) {
        const float* src = params;
        float* dst = storage.data();
        const auto linear = [&](std::size_t in, std::size_t out) {
            GnnLinear layer{dst, dst + in * out, in, out};
            for (std::size_t o = 0; o < out; ++o)
                for (std::size_t i = 0; i < in; ++i) dst[i * out + o] = src[o * in + i];
            std::copy(src + in * out, src + in * out + out, dst + in * out);
            src += in * out + out;
            dst += in * out + out;
            return layer;
        };
        const auto mlp = [&](std::size_t in, std::size_t out) {
            Mlp m;
            m.first = linear(in, w);
            m.second = linear(w, out);
            return m;
        };
        node_encoder = mlp(kGnnNodeFeatures, w);
        edge_encoder = mlp(kGnnEdgeFeatures, w);
        for (Round& r : rounds) {
            r.edge = mlp(3 * w + kGnnEdgeFeatures, w);
            r.node = mlp(3 * w + kGnnNodeFeatures, w);
            std::copy(src, src + 2 * w, dst);
            r.norm_weight = dst;
            r.norm_bias = dst + w;
            src += 2 * w;
            dst += 2 * w;
        }
        edge_decoder = mlp(3 * w, 1);
        node_decoder = mlp(w, 1);
    }
};

// Column-sorted edge list: the edges with column j are col_edges[col_ptr[j] .. col_ptr[j+1]),
// in increasing edge order (counting sort).
template <class I>
void gnn_column_edges(std::size_t n, const I* lower_ptr, const I* cols, std::vector<std::size_t>& col_ptr,
                      std::vector<std::size_t>& col_edges) {
    const std::size_t E = static_cast<std::size_t>(lower_ptr[n]);
    col_ptr.assign(n + 1, 0);
    for (std::size_t k = 0; k < E; ++k) ++col_ptr[static_cast<std::size_t>(cols[k]) + 1];
    for (std::size_t j = 0; j < n; ++j) col_ptr[j + 1] += col_ptr[j];
    col_edges.resize(E);
    std::vector<std::size_t> next(col_ptr.begin(), col_ptr.end() - 1);
    for (std::size_t k = 0; k < E; ++k) col_edges[next[static_cast<std::size_t>(cols[k])]++] = k;
}

namespace gnn_sse {
#define KRYLEARN_GNN_LANES 4
#include "gnn_forward.inc"
#undef KRYLEARN_GNN_LANES
}  // namespace gnn_sse

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)  // `#pragma GCC target` is GCC's
#define KRYLEARN_GNN_AVX 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace gnn_avx2 {
#define KRYLEARN_GNN_LANES 8
#include "gnn_forward.inc"
#undef KRYLEARN_GNN_LANES
}  // namespace gnn_avx2
#pragma GCC pop_options
#if __GNUC__ >= 12  // __builtin_shufflevector joins and splits the 16-float vectors
#define KRYLEARN_GNN_AVX512 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace gnn_avx512 {
#define KRYLEARN_GNN_LANES 16
#include "gnn_forward.inc"
#undef KRYLEARN_GNN_LANES
}  // namespace gnn_avx512
#pragma GCC pop_options
#endif
#endif

// Widest vectors this CPU runs (and this build has): 16 floats (AVX-512F), 8 (AVX2 with FMA) or 4 (SSE).
inline std::size_t gnn_max_lanes() {
#ifdef KRYLEARN_GNN_AVX
#ifdef KRYLEARN_GNN_AVX512
    static const bool avx512 = __builtin_cpu_supports("avx512f");
#else
    static const bool avx512 = false;
#endif
    static const std::size_t lanes = avx512 ? 16 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 4;
    return lanes;
#else
    return 4;
#endif
}

// The forward pass (see the header comment) with `lanes` floats per vector (4, or 8 or 16 where
// gnn_max_lanes() allows it; equal to float32 rounding). Writes l_off (E) and l_diag (n).
// The graph must be valid (lower_ptr non-decreasing from 0, 0 <= cols < row).
template <std::size_t W, class I>
void gnn_forward(const GnnWeights& net, std::size_t n, const I* lower_ptr, const I* cols, const float* a_off,
                 const float* l0_off, const float* node_features, float* l_off, float* l_diag, int threads,
                 std::size_t lanes) {
#ifdef KRYLEARN_GNN_AVX512
    if (lanes == 16) {
        gnn_avx512::gnn_forward<W>(net, n, lower_ptr, cols, a_off, l0_off, node_features, l_off, l_diag, threads);
        return;
    }
#endif
#ifdef KRYLEARN_GNN_AVX
    if (lanes == 8) {
        gnn_avx2::gnn_forward<W>(net, n, lower_ptr, cols, a_off, l0_off, node_features, l_off, l_diag, threads);
        return;
    }
#endif
    (void)lanes;
    gnn_sse::gnn_forward<W>(net, n, lower_ptr, cols, a_off, l0_off, node_features, l_off, l_diag, threads);
}

}  // namespace krylearn
