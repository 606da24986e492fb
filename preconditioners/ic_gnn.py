"""Message-passing network that predicts an incomplete-Cholesky factor.

The graph is tril(A~) of the Jacobi-scaled matrix A~ = D^{-1/2} A D^{-1/2}
(unit diagonal): one node per unknown, one edge (i, j) per strictly-lower
nonzero (i > j). The network starts from the IC(0) factor L0 of A~ and
predicts a correction on exactly that pattern:

    l_ij = l0_ij + a~_ij c_ij          (i > j)
    l_ii = l0_ii exp(4 tanh(d_i / 4))  (> 0)

so L L^T is SPD by construction, and zero-initialised decoders reproduce IC(0)
exactly. Inputs (``FEATURE_LAYOUT``): edge [a~_ij, l0_ij]; node [l0_ii,
rho_i, s_i, t_i] with rho = L0 L0^T 1 - A~ 1 (the row sums of the fill IC(0)
drops, what modified IC compensates), s = A~ 1 and t = sum_{j != i} |a~_ij|.

Encode-process-decode: ``rounds`` rounds of an edge update from both end
points followed by a node update from the mean of the messages over the
lower (j < i) and the upper (k > i) neighbours separately (the passes over L
and L^T of NeuralIF), with the raw features re-injected each round and
LayerNorm on the node state. Every MLP is linear-activation-linear, the
activation SiLU or hard swish (x min(max(x + 3, 0), 6) / 6: a piecewise
quadratic with SiLU's shape, about a fifth cheaper per forward pass natively).
Everything is index_add over edge lists, so the network is equivariant to node
relabelling and works for any n.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

FEATURE_LAYOUT = "ic0-correction/v1: edge[a_ij, l0_ij] node[l0_ii, rho_i, rowsum_i, offdiag_abs_sum_i]; A Jacobi-scaled"
EDGE_FEATURES = 2
NODE_FEATURES = 4


@dataclass
class FactorGraph:
    """Tensors describing tril(A~) and its IC(0) factor for one matrix.

    ``rows``/``cols``: strictly-lower edges (rows > cols) in CSR order of tril;
    ``a_off``/``l0_off``: A~ and L0 on those edges; ``l0_diag``: diagonal of L0.
    """

    n: int
    rows: torch.Tensor
    cols: torch.Tensor
    a_off: torch.Tensor
    l0_off: torch.Tensor
    l0_diag: torch.Tensor
    node_features: torch.Tensor
    edge_features: torch.Tensor
    lower_mean: torch.Tensor = field(init=False, repr=False)
    upper_mean: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # (n, E) sparse averaging operators: (lower_mean @ e)_i = mean of e over edges (i, j < i),
        # (upper_mean @ e)_j = mean over edges (i > j, j); one SpMM each instead of scatter-add + divide
        self.lower_mean = _mean_operator(self.rows, self.n)
        self.upper_mean = _mean_operator(self.cols, self.n)


def _mean_operator(index: torch.Tensor, n: int) -> torch.Tensor:
    """CSR tensor S (n x E) with S[index[k], k] = 1 / #{k' : index[k'] = index[k]}."""
    idx = index.cpu().numpy()
    edges = np.arange(len(idx))
    S = sp.csr_array((np.ones(len(idx), dtype=np.float32), (idx, edges)), shape=(n, len(idx)))  # counting sort
    counts = np.diff(S.indptr)
    S.data /= np.repeat(np.maximum(counts, 1), counts).astype(np.float32)
    as_t = lambda a: torch.from_numpy(a).to(index.device)  # noqa: E731
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(as_t(S.indptr.astype(np.int64)), as_t(S.indices.astype(np.int64)),
                                       as_t(S.data), size=S.shape, check_invariants=False)


# name -> (module, in-place-capable function)
ACTIVATIONS = {"silu": (nn.SiLU, nn.functional.silu), "hardswish": (nn.Hardswish, nn.functional.hardswish)}


def _mlp(n_in: int, width: int, n_out: int, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), ACTIVATIONS[activation][0](), nn.Linear(width, n_out))


class ICGNN(nn.Module):
    """Predicts (l_off, l_diag), the values of L on tril(A~)'s pattern."""

    def __init__(self, width: int = 8, rounds: int = 3, activation: str = "silu") -> None:
        super().__init__()
        if not 1 <= rounds <= 8 or not 2 <= width <= 256:
            raise ValueError(f"need 1 <= rounds <= 8 and 2 <= width <= 256, got rounds={rounds}, width={width}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.width, self.rounds, self.activation = int(width), int(rounds), activation
        w = self.width
        mlp = lambda n_in, n_out: _mlp(n_in, w, n_out, activation)  # noqa: E731
        self.node_encoder = mlp(NODE_FEATURES, w)
        self.edge_encoder = mlp(EDGE_FEATURES, w)
        self.edge_updates = nn.ModuleList(mlp(3 * w + EDGE_FEATURES, w) for _ in range(rounds))
        self.node_updates = nn.ModuleList(mlp(3 * w + NODE_FEATURES, w) for _ in range(rounds))
        self.norms = nn.ModuleList(nn.LayerNorm(w) for _ in range(rounds))
        self.edge_decoder = mlp(3 * w, 1)
        self.node_decoder = mlp(w, 1)
        for decoder in (self.edge_decoder, self.node_decoder):
            nn.init.zeros_(decoder[-1].weight)
            nn.init.zeros_(decoder[-1].bias)

    def native_parameters(self) -> np.ndarray:
        """All parameters as one flat float32 array in the layout of ``_kernels.ic_gnn_forward``:
        node_encoder, edge_encoder, then per round edge_update, node_update, norm, then
        edge_decoder, node_decoder; each Linear as weight (out x in, row-major) then bias,
        each LayerNorm as weight then bias."""
        for norm in self.norms:
            if norm.eps != 1e-5 or not norm.elementwise_affine:
                raise ValueError("the native forward pass needs LayerNorm(eps=1e-5) with an affine transform")
        modules = [self.node_encoder, self.edge_encoder]
        for r in range(self.rounds):
            modules += [self.edge_updates[r], self.node_updates[r], self.norms[r]]
        modules += [self.edge_decoder, self.node_decoder]
        flat = [p.detach().to("cpu", torch.float32).reshape(-1) for m in modules for p in m.parameters()]
        return torch.cat(flat).numpy()

    def _pair_mlp(self, mlp: nn.Sequential, e, h, rows, cols, extra=None) -> torch.Tensor:
        """mlp(cat([e, h[rows], h[cols], extra])) without materialising the (E, 3w+k) concatenation:
        the first layer's node blocks are applied on the n nodes, then gathered (accumulated in place:
        no edge-sized temporaries beyond the gathers; autograd-safe, linear does not save its output)."""
        w = self.width
        first = mlp[0]
        W = first.weight
        pre = nn.functional.linear(e, W[:, :w], first.bias)
        pre += nn.functional.linear(h, W[:, w:2 * w]).index_select(0, rows)
        pre += nn.functional.linear(h, W[:, 2 * w:3 * w]).index_select(0, cols)
        if extra is not None:
            pre.addmm_(extra, W[:, 3 * w:].t())
        return mlp[2](ACTIVATIONS[self.activation][1](pre, inplace=not torch.is_grad_enabled()))

    def forward(self, g: FactorGraph) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = g.rows, g.cols
        h = self.node_encoder(g.node_features)
        e = self.edge_encoder(g.edge_features)
        for edge_update, node_update, norm in zip(self.edge_updates, self.node_updates, self.norms):
            e = e + self._pair_mlp(edge_update, e, h, rows, cols, g.edge_features)
            # means over node i's edges (i, j < i) (a row of L) and over node j's edges (i > j, j) (a column)
            from_lower = g.lower_mean @ e
            from_upper = g.upper_mean @ e
            h = norm(h + node_update(torch.cat([h, from_lower, from_upper, g.node_features], dim=1)))
        c = self._pair_mlp(self.edge_decoder, e, h, rows, cols).squeeze(1)
        d = self.node_decoder(h).squeeze(1)
        l_off = g.l0_off + g.a_off * c
        l_diag = g.l0_diag * torch.exp(4.0 * torch.tanh(d / 4.0))
        return l_off, l_diag


def factor_transpose_matvec(g: FactorGraph, l_off: torch.Tensor, l_diag: torch.Tensor,
                            x: torch.Tensor) -> torch.Tensor:
    """L^T x for a block of vectors x (shape (n, k)), L given by its values on ``g``'s pattern."""
    return (l_diag[:, None] * x).index_add(0, g.cols, l_off[:, None] * x[g.rows])


def factor_matvec(g: FactorGraph, l_off: torch.Tensor, l_diag: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L L^T x for a block of vectors x (shape (n, k)), L given by its values on ``g``'s pattern."""
    u = factor_transpose_matvec(g, l_off, l_diag, x)
    y = l_diag[:, None] * u
    return y.index_add(0, g.rows, l_off[:, None] * u[g.cols])  # y = L u


def scaled_matvec(g: FactorGraph, x: torch.Tensor) -> torch.Tensor:
    """A~ x for a block of vectors x (unit diagonal plus the symmetric off-diagonal edges); float64 for a
    float64 x (the float32 edge values are promoted exactly)."""
    y = x.index_add(0, g.rows, g.a_off[:, None] * x[g.cols])
    return y.index_add(0, g.cols, g.a_off[:, None] * x[g.rows])


def data_loss(g: FactorGraph, l_off, l_diag, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Li et al.: mean_k ||L L^T x_k - b_k||^2 / ||b_k||^2 for pairs A~ x_k = b_k."""
    residual = factor_matvec(g, l_off, l_diag, x) - b
    return (residual.square().sum(0) / b.square().sum(0).clamp_min(1e-30)).mean()


def frobenius_loss(g: FactorGraph, l_off, l_diag, z: torch.Tensor) -> torch.Tensor:
    """NeuralIF: sketched ||(L L^T - A~) z||^2 / ||z||^2 with z ~ N(0, I), no solutions needed."""
    residual = factor_matvec(g, l_off, l_diag, z) - scaled_matvec(g, z)
    return (residual.square().sum(0) / z.square().sum(0).clamp_min(1e-30)).mean()


CONDITION_LOSS_MAX_N = 4096


def condition_loss(g: FactorGraph, l_off, l_diag) -> torch.Tensor:
    """log(lambda_max / lambda_min) of L^{-1} A~ L^{-T}: the log spectral condition number of the
    preconditioned matrix, dense in float64 (O(n^3): training matrices of n <= 4096 only)."""
    n = g.n
    if n > CONDITION_LOSS_MAX_N:
        raise ValueError(f"the condition loss is dense: n <= {CONDITION_LOSS_MAX_N}, got n = {n}")
    eye = torch.arange(n, device=g.rows.device)
    L = torch.zeros(n, n, dtype=torch.float64, device=g.rows.device)
    L = L.index_put((g.rows, g.cols), l_off.double()).index_put((eye, eye), l_diag.double())
    A = torch.eye(n, dtype=torch.float64, device=g.rows.device)
    A = A.index_put((g.rows, g.cols), g.a_off.double()).index_put((g.cols, g.rows), g.a_off.double())
    half = torch.linalg.solve_triangular(L, A, upper=False)  # L^{-1} A
    S = torch.linalg.solve_triangular(L, half.T, upper=False)  # L^{-1} A L^{-T}
    eigenvalues = torch.linalg.eigvalsh(0.5 * (S + S.T))
    return torch.log(eigenvalues[-1] / eigenvalues[0])
