// Inference of the learned-IC network (preconditioners/ic_gnn.py, ICGNN) on
// the CPU in float32: the node features from tril(A~) and its IC(0) factor,
// and the forward pass, fused so that every edge's MLP runs in registers.
//
// Graph: n nodes, E strictly-lower edges (i, j), j < i, in CSR order: the
// edges of row i are [lower_ptr[i], lower_ptr[i+1]) with columns cols[k].
// Inputs: a_k = a~_ij, l0_k = L0_ij (edge features [a_k, l0_k]) and the node
// features x_i = [l0_ii, rho_i, s_i, t_i] (n x 4, row-major).
//
// Network (width w, R rounds; linear(u) = W u + b, mlp = linear o SiLU o linear):
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
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace krylearn {

constexpr std::size_t kGnnNodeFeatures = 4;
constexpr std::size_t kGnnEdgeFeatures = 2;
constexpr std::size_t kGnnMaxWidth = 256;
constexpr std::size_t kGnnMaxRounds = 8;
constexpr float kGnnLayerNormEps = 1e-5f;

// Number of floats in the flat parameter array of a width-w, R-round network.
inline std::size_t gnn_parameter_count(std::size_t w, std::size_t rounds) {
    const auto linear = [](std::size_t in, std::size_t out) { return in * out + out; };
    const auto mlp = [&](std::size_t in, std::size_t out) { return linear(in, w) + linear(w, out); };
    const std::size_t per_round = mlp(3 * w + kGnnEdgeFeatures, w) + mlp(3 * w + kGnnNodeFeatures, w) + 2 * w;
    return mlp(kGnnNodeFeatures, w) + mlp(kGnnEdgeFeatures, w) + rounds * per_round + mlp(3 * w, 1) + mlp(w, 1);
}

// exp(x) in float32 for x in [-87, 88] (clamped outside), within ~2 ulp: Cody-Waite
// reduction x = k ln2 + r, a degree-6 polynomial for exp(r), 2^k by the exponent
// bits. F is float or a GCC vector of floats (Int the matching integer type), so
// the same branch-free code runs on 4 lanes at a time (std::exp does not vectorise).
template <class F, class Int>
inline F gnn_exp(F x) {
    x = x < -87.0f ? F{} - 87.0f : x;
    x = x > 88.0f ? F{} + 88.0f : x;
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
    const F t = x * 1.44269504088896341f + magic;
    const F k = t - magic;
    const F r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    F p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const F y = p * r * r + r + 1.0f;
    Int bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23;  // k + 127 in the exponent field
    F scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

typedef float gnn_f4 __attribute__((vector_size(16)));
typedef std::int32_t gnn_i4 __attribute__((vector_size(16)));

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
    Mlp node_encoder, edge_encoder, edge_decoder, node_decoder;
    std::vector<Round> rounds;
    std::vector<float> storage;

    // `params` must hold gnn_parameter_count(width, n_rounds) floats.
    GnnWeights(const float* params, std::size_t w, std::size_t n_rounds)
        : width(w), rounds(n_rounds), storage(gnn_parameter_count(w, n_rounds)) {
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

// Dense building blocks on a block of G rows (G nodes or G edges processed together: their
// independent chains keep the FP units busy). W is the compile-time width (0: runtime width w);
// W a multiple of 4 keeps the rows in 4-float GCC vectors (SSE registers without -march).
template <std::size_t W, std::size_t G>
struct GnnBlock {
    static constexpr std::size_t kBuffer = W > 0 ? W : kGnnMaxWidth;
    static constexpr std::size_t kLanes = W % 4 == 0 ? W / 4 : 0;  // 4-float vectors per row (0: scalar loops)
    using Rows = float[G][kBuffer];

    // y[g] += rows [row0, row0 + m) of the layer's W^T applied to x + g * x_stride (m inputs), g < G.
    static void accumulate(const GnnLinear& layer, std::size_t row0, const float* x, std::size_t x_stride,
                           std::size_t m, Rows& y, std::size_t w) {
        if constexpr (kLanes > 0) {
            gnn_f4 acc[G][kLanes];
            for (std::size_t g = 0; g < G; ++g) std::memcpy(acc[g], y[g], sizeof acc[g]);
            for (std::size_t i = 0; i < m; ++i) {
                gnn_f4 wc[kLanes];
                std::memcpy(wc, layer.wt + (row0 + i) * W, sizeof wc);
                for (std::size_t g = 0; g < G; ++g) {
                    const float xi = x[g * x_stride + i];
                    for (std::size_t c = 0; c < kLanes; ++c) acc[g][c] += wc[c] * xi;
                }
            }
            for (std::size_t g = 0; g < G; ++g) std::memcpy(y[g], acc[g], sizeof acc[g]);
        } else {
            for (std::size_t i = 0; i < m; ++i) {
                const float* col = layer.wt + (row0 + i) * w;
                for (std::size_t g = 0; g < G; ++g) {
                    const float xi = x[g * x_stride + i];
                    for (std::size_t o = 0; o < w; ++o) y[g][o] += col[o] * xi;
                }
            }
        }
    }

    // y[g] = bias + the node blocks' contributions are added by the caller; this sets y[g] = bias.
    static void set_bias(const GnnLinear& layer, Rows& y) {
        for (std::size_t g = 0; g < G; ++g) std::copy(layer.bias, layer.bias + layer.out, y[g]);
    }

    // y = y / (1 + exp(-y)), four lanes at a time.
    static void silu(Rows& y, std::size_t w) {
        const std::size_t n = W > 0 ? W : w;
        for (std::size_t g = 0; g < G; ++g) {
            std::size_t o = 0;
            for (; o + 4 <= n; o += 4) {
                gnn_f4 v;
                std::memcpy(&v, y[g] + o, sizeof v);
                v = v / (1.0f + gnn_exp<gnn_f4, gnn_i4>(-v));
                std::memcpy(y[g] + o, &v, sizeof v);
            }
            for (; o < n; ++o) y[g][o] = y[g][o] / (1.0f + gnn_exp<float, std::int32_t>(-y[g][o]));
        }
    }

    // y = second(silu(pre)) where pre holds the first layer's output and second has w outputs.
    static void finish_mlp(const GnnLinear& second, Rows& pre, Rows& y, std::size_t w) {
        silu(pre, w);
        set_bias(second, y);
        accumulate(second, 0, pre[0], kBuffer, W > 0 ? W : w, y, w);
    }

    // out[g] = second(silu(pre[g])) for a second layer with one output.
    static void finish_scalar_mlp(const GnnLinear& second, Rows& pre, float* out, std::size_t w) {
        silu(pre, w);
        for (std::size_t g = 0; g < G; ++g) {
            float s = 0.0f;
            for (std::size_t i = 0; i < (W > 0 ? W : w); ++i) s += second.wt[i] * pre[g][i];
            out[g] = second.bias[0] + s;
        }
    }

    static void layer_norm(float* y, const float* gamma, const float* beta, std::size_t w) {
        const std::size_t n = W > 0 ? W : w;
        float mean = 0.0f;
        for (std::size_t o = 0; o < n; ++o) mean += y[o];
        mean /= float(n);
        float var = 0.0f;
        for (std::size_t o = 0; o < n; ++o) var += (y[o] - mean) * (y[o] - mean);
        const float inv = 1.0f / std::sqrt(var / float(n) + kGnnLayerNormEps);
        for (std::size_t o = 0; o < n; ++o) y[o] = (y[o] - mean) * inv * gamma[o] + beta[o];
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

// Inside a parallel region: body(first, std::integral_constant<size_t, G>) for the full blocks of
// G items of [0, count), body(k, std::integral_constant<size_t, 1>) for the items of the last,
// partial block; blocks are shared out statically among the threads.
template <std::size_t G, class F>
void gnn_for_blocks(std::size_t count, F&& body) {
    const auto blocks = static_cast<std::ptrdiff_t>((count + G - 1) / G);
#pragma omp for schedule(static)
    for (std::ptrdiff_t b = 0; b < blocks; ++b) {
        const std::size_t first = static_cast<std::size_t>(b) * G;
        if (first + G <= count) {
            body(first, std::integral_constant<std::size_t, G>{});
        } else {
            for (std::size_t k = first; k < count; ++k) body(k, std::integral_constant<std::size_t, 1>{});
        }
    }
}

// The forward pass (see the header comment). Writes l_off (E) and l_diag (n).
// The graph must be valid (lower_ptr non-decreasing from 0, 0 <= cols < row).
template <std::size_t W, class I>
void gnn_forward(const GnnWeights& net, std::size_t n, const I* lower_ptr, const I* cols, const float* a_off,
                 const float* l0_off, const float* node_features, float* l_off, float* l_diag, int threads) {
    constexpr std::size_t G = W == 0 ? 1 : (W <= 8 ? 4 : 2);  // rows per block: 2 W/4-vector rows fill the registers
    const std::size_t w = W > 0 ? W : net.width;
    const std::size_t E = static_cast<std::size_t>(lower_ptr[n]);
    std::vector<std::size_t> col_ptr, col_edges;
    gnn_column_edges(n, lower_ptr, cols, col_ptr, col_edges);
    std::vector<I> edge_rows(E);
    for (std::size_t i = 0; i < n; ++i)
        std::fill(edge_rows.begin() + lower_ptr[i], edge_rows.begin() + lower_ptr[i + 1], static_cast<I>(i));

    std::vector<float> e(E * w), h(n * w), from_row(n * w), from_col(n * w), pre_row(n * w), pre_col(n * w);
    // pre_row_i / pre_col_i = the node blocks of `first` (inputs [w, 2w) and [2w, 3w)) applied to h_i, i = i0 + g
    const auto node_blocks = [&](const GnnLinear& first, std::size_t i0, auto block) {
        using B = GnnBlock<W, decltype(block)::value>;
        typename B::Rows pr = {}, pc = {};
        B::accumulate(first, w, &h[i0 * w], w, w, pr, w);
        B::accumulate(first, 2 * w, &h[i0 * w], w, w, pc, w);
        for (std::size_t g = 0; g < decltype(block)::value; ++g) {
            std::copy(pr[g], pr[g] + w, &pre_row[(i0 + g) * w]);
            std::copy(pc[g], pc[g] + w, &pre_col[(i0 + g) * w]);
        }
    };
    // pre[g] = first's bias + the gathered node blocks of edge k0 + g's end points
    const auto edge_start = [&](const GnnLinear& first, std::size_t k0, auto& pre, std::size_t count) {
        for (std::size_t g = 0; g < count; ++g) {
            const auto i = static_cast<std::size_t>(edge_rows[k0 + g]), j = static_cast<std::size_t>(cols[k0 + g]);
            for (std::size_t o = 0; o < w; ++o) pre[g][o] = first.bias[o] + pre_row[i * w + o] + pre_col[j * w + o];
        }
    };
    const GnnLinear& first_edge_layer = net.rounds.empty() ? net.edge_decoder.first : net.rounds[0].edge.first;

#pragma omp parallel num_threads(threads)
    {
        gnn_for_blocks<G>(n, [&](std::size_t i0, auto block) {
            using B = GnnBlock<W, decltype(block)::value>;
            typename B::Rows pre, out;
            B::set_bias(net.node_encoder.first, pre);
            B::accumulate(net.node_encoder.first, 0, &node_features[i0 * kGnnNodeFeatures], kGnnNodeFeatures,
                          kGnnNodeFeatures, pre, w);
            B::finish_mlp(net.node_encoder.second, pre, out, w);
            for (std::size_t g = 0; g < decltype(block)::value; ++g) std::copy(out[g], out[g] + w, &h[(i0 + g) * w]);
            node_blocks(first_edge_layer, i0, block);
        });
        gnn_for_blocks<G>(E, [&](std::size_t k0, auto block) {
            using B = GnnBlock<W, decltype(block)::value>;
            typename B::Rows pre, out;
            float x[2 * decltype(block)::value];
            for (std::size_t g = 0; g < decltype(block)::value; ++g) x[2 * g] = a_off[k0 + g], x[2 * g + 1] = l0_off[k0 + g];
            B::set_bias(net.edge_encoder.first, pre);
            B::accumulate(net.edge_encoder.first, 0, x, kGnnEdgeFeatures, kGnnEdgeFeatures, pre, w);
            B::finish_mlp(net.edge_encoder.second, pre, out, w);
            for (std::size_t g = 0; g < decltype(block)::value; ++g) std::copy(out[g], out[g] + w, &e[(k0 + g) * w]);
        });
        for (std::size_t r = 0; r < net.rounds.size(); ++r) {
            const auto& round = net.rounds[r];
            const GnnLinear& next_first = r + 1 < net.rounds.size() ? net.rounds[r + 1].edge.first
                                                                    : net.edge_decoder.first;
            // edge update
            gnn_for_blocks<G>(E, [&](std::size_t k0, auto block) {
                constexpr std::size_t count = decltype(block)::value;
                using B = GnnBlock<W, count>;
                typename B::Rows pre, delta;
                edge_start(round.edge.first, k0, pre, count);
                B::accumulate(round.edge.first, 0, &e[k0 * w], w, w, pre, w);
                float x[2 * count];
                for (std::size_t g = 0; g < count; ++g) x[2 * g] = a_off[k0 + g], x[2 * g + 1] = l0_off[k0 + g];
                B::accumulate(round.edge.first, 3 * w, x, kGnnEdgeFeatures, kGnnEdgeFeatures, pre, w);
                B::finish_mlp(round.edge.second, pre, delta, w);
                for (std::size_t g = 0; g < count; ++g)
                    for (std::size_t o = 0; o < w; ++o) e[(k0 + g) * w + o] += delta[g][o];
            });
            // means of the new edge states over each row (contiguous) and each column (gathered in edge order)
#pragma omp for schedule(static)
            for (std::ptrdiff_t ii = 0; ii < static_cast<std::ptrdiff_t>(n); ++ii) {
                const auto i = static_cast<std::size_t>(ii);
                const auto begin = static_cast<std::size_t>(lower_ptr[i]), end = static_cast<std::size_t>(lower_ptr[i + 1]);
                float sum[GnnBlock<W, 1>::kBuffer] = {};
                for (std::size_t k = begin; k < end; ++k)
                    for (std::size_t o = 0; o < w; ++o) sum[o] += e[k * w + o];
                const float row_scale = end > begin ? 1.0f / float(end - begin) : 0.0f;
                for (std::size_t o = 0; o < w; ++o) from_row[i * w + o] = sum[o] * row_scale, sum[o] = 0.0f;
                for (std::size_t p = col_ptr[i]; p < col_ptr[i + 1]; ++p)
                    for (std::size_t o = 0; o < w; ++o) sum[o] += e[col_edges[p] * w + o];
                const std::size_t count = col_ptr[i + 1] - col_ptr[i];
                const float col_scale = count > 0 ? 1.0f / float(count) : 0.0f;
                for (std::size_t o = 0; o < w; ++o) from_col[i * w + o] = sum[o] * col_scale;
            }
            // node update, LayerNorm, and the node blocks of the next edge layer
            gnn_for_blocks<G>(n, [&](std::size_t i0, auto block) {
                constexpr std::size_t count = decltype(block)::value;
                using B = GnnBlock<W, count>;
                typename B::Rows pre, delta;
                B::set_bias(round.node.first, pre);
                B::accumulate(round.node.first, 0, &h[i0 * w], w, w, pre, w);
                B::accumulate(round.node.first, w, &from_row[i0 * w], w, w, pre, w);
                B::accumulate(round.node.first, 2 * w, &from_col[i0 * w], w, w, pre, w);
                B::accumulate(round.node.first, 3 * w, &node_features[i0 * kGnnNodeFeatures], kGnnNodeFeatures,
                              kGnnNodeFeatures, pre, w);
                B::finish_mlp(round.node.second, pre, delta, w);
                for (std::size_t g = 0; g < count; ++g) {
                    float* hi = &h[(i0 + g) * w];
                    for (std::size_t o = 0; o < w; ++o) hi[o] += delta[g][o];
                    B::layer_norm(hi, round.norm_weight, round.norm_bias, w);
                }
                node_blocks(next_first, i0, block);
            });
        }
        // decoders
        gnn_for_blocks<G>(E, [&](std::size_t k0, auto block) {
            constexpr std::size_t count = decltype(block)::value;
            using B = GnnBlock<W, count>;
            typename B::Rows pre;
            edge_start(net.edge_decoder.first, k0, pre, count);
            B::accumulate(net.edge_decoder.first, 0, &e[k0 * w], w, w, pre, w);
            float c[count];
            B::finish_scalar_mlp(net.edge_decoder.second, pre, c, w);
            for (std::size_t g = 0; g < count; ++g) l_off[k0 + g] = l0_off[k0 + g] + a_off[k0 + g] * c[g];
        });
        gnn_for_blocks<G>(n, [&](std::size_t i0, auto block) {
            constexpr std::size_t count = decltype(block)::value;
            using B = GnnBlock<W, count>;
            typename B::Rows pre;
            B::set_bias(net.node_decoder.first, pre);
            B::accumulate(net.node_decoder.first, 0, &h[i0 * w], w, w, pre, w);
            float d[count];
            B::finish_scalar_mlp(net.node_decoder.second, pre, d, w);
            for (std::size_t g = 0; g < count; ++g)
                l_diag[i0 + g] = node_features[(i0 + g) * kGnnNodeFeatures] * std::exp(4.0f * std::tanh(d[g] / 4.0f));
        });
    }
}

}  // namespace krylearn
