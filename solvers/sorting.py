"""Order a batch of related systems so that neighbours are similar, then solve them in that order.

SKR (Wang et al., ICLR 2024): recycling pays off most when consecutive systems
are close, so the batch is ordered by a greedy nearest-neighbour chain over
the systems' parameters. Distances are Euclidean between feature vectors:

- ``features="frobenius"`` (default): the flattened parameter fields, so the
  distance is the Frobenius norm ||P_i - P_j||_F;
- ``features="fft"``: the low-frequency 2-D FFT coefficients of each field
  (|k_x|, |k_y| < n_modes), reduced by PCA to ``n_components`` dimensions;
  cheap and robust to small-scale noise.

For large batches (``group_size``), the systems are first split into groups
of consecutive systems along the first principal direction and chained
within each group; each group's chain starts next to the previous group's end.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from krylearn.result import SolveResult

from .recycling import RecyclingSolver


def parameter_features(params: Sequence, features: str = "frobenius", *, n_modes: int = 8, n_components: int = 16) -> np.ndarray:
    """Feature matrix (one row per system) whose Euclidean distances define similarity."""
    arrays = [np.asarray(p, dtype=np.float64) for p in params]
    if not arrays:
        return np.zeros((0, 0))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"all parameter fields must have the same shape, got {sorted(shapes)}")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("parameter fields contain NaN or Inf")
    stacked = np.stack(arrays)
    if features == "frobenius":
        return stacked.reshape(len(arrays), -1)
    if features != "fft":
        raise ValueError(f"features must be 'frobenius' or 'fft', got {features!r}")
    if n_modes < 1 or n_components < 1:
        raise ValueError("n_modes and n_components must be >= 1")
    if stacked.ndim == 2:  # 1-D fields
        coeffs = np.fft.rfft(stacked, axis=1)[:, :n_modes]
    elif stacked.ndim == 3:
        spec = np.fft.rfft2(stacked)
        rows = np.r_[0:n_modes, -n_modes + 1 : 0] % stacked.shape[1]
        coeffs = spec[:, np.unique(rows)][:, :, :n_modes]
    else:
        raise ValueError("FFT features need 1-D or 2-D parameter fields")
    feats = np.concatenate([coeffs.real.reshape(len(arrays), -1), coeffs.imag.reshape(len(arrays), -1)], axis=1)
    feats = feats - feats.mean(axis=0)
    _, s, vt = np.linalg.svd(feats, full_matrices=False)
    keep = min(n_components, int(np.sum(s > 1e-12 * max(s[0], np.finfo(float).tiny))) if s.size else 0)
    return feats @ vt[: max(keep, 1)].T


def _squared_distances(F: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", F, F)
    D = sq[:, None] + sq[None, :] - 2.0 * (F @ F.T)
    np.maximum(D, 0.0, out=D)
    return D


def greedy_order(F: np.ndarray, start: int | None = None) -> np.ndarray:
    """Greedy nearest-neighbour chain through the rows of F; returns a permutation.

    ``start`` defaults to the row farthest from the centroid (an end of the cloud).
    """
    F = np.asarray(F, dtype=np.float64)
    n = F.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    if start is None:
        start = int(np.argmax(np.sum((F - F.mean(axis=0)) ** 2, axis=1)))
    if not 0 <= start < n:
        raise ValueError(f"start must be in [0, {n}), got {start}")
    D = _squared_distances(F)
    visited = np.zeros(n, dtype=bool)
    order = np.empty(n, dtype=np.intp)
    current = start
    for pos in range(n):
        order[pos] = current
        visited[current] = True
        if pos + 1 < n:
            row = np.where(visited, np.inf, D[current])
            current = int(np.argmin(row))
    return order


def sort_systems(
    params: Sequence,
    *,
    features: str = "frobenius",
    group_size: int | None = None,
    start: int | None = None,
    n_modes: int = 8,
    n_components: int = 16,
) -> np.ndarray:
    """Permutation that orders the systems by similarity of their parameter fields.

    ``order[i]`` is the index (in the input) of the i-th system to solve.
    """
    F = parameter_features(params, features, n_modes=n_modes, n_components=n_components)
    n = F.shape[0]
    if group_size is None or group_size >= n:
        return greedy_order(F, start)
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size}")
    centred = F - F.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    along = np.argsort(centred @ vt[0], kind="stable")
    order: list[np.ndarray] = []
    for lo in range(0, n, group_size):
        members = along[lo : lo + group_size]
        if order:  # start next to where the previous group ended
            last = F[order[-1][-1]]
            first = int(np.argmin(np.sum((F[members] - last) ** 2, axis=1)))
        else:
            first = None
        order.append(members[greedy_order(F[members], first)])
    return np.concatenate(order)


def _unpack(system) -> tuple:
    if hasattr(system, "A") and hasattr(system, "b"):
        return system.A, system.b, getattr(system, "params", None)
    if isinstance(system, (tuple, list)) and len(system) in (2, 3):
        return (system[0], system[1], system[2] if len(system) == 3 else None)
    raise TypeError("each system must be (A, b), (A, b, params) or have attributes A, b[, params]")


def _matrix_values(matrices: list) -> list[np.ndarray]:
    """Matrix entries as parameter vectors (Frobenius distance of the matrices); same pattern required."""
    csrs = [sp.csr_array(A) for A in matrices]
    for A in csrs:
        A.sum_duplicates()
    ref = csrs[0]
    for A in csrs[1:]:
        if A.nnz != ref.nnz or not (np.array_equal(A.indptr, ref.indptr) and np.array_equal(A.indices, ref.indices)):
            raise ValueError("matrices have different sparsity patterns: pass params to compare the systems")
    return [A.data for A in csrs]


def solve_many(
    systems: Sequence,
    *,
    sort: bool = True,
    solver: RecyclingSolver | None = None,
    features: str = "frobenius",
    group_size: int | None = None,
    **solver_options,
) -> list[SolveResult]:
    """Solve a batch of systems with Krylov recycling, sorted by similarity; results in input order.

    ``systems``: items (A, b), (A, b, params) or objects with ``A``, ``b`` and
    optionally ``params`` (e.g. ``krylearn.bench.sequences.LinearSystem``).
    Without params the matrices' own entries are compared (same sparsity
    pattern required). ``solver``: a ``RecyclingSolver`` to use (its state is
    kept and extended), else one is made from ``solver_options`` (k, m, M,
    rtol, ...). Result ``i`` belongs to ``systems[i]``; its
    ``details["sequence_position"]`` says when it was solved.
    """
    items = [_unpack(s) for s in systems]
    if not items:
        return []
    sizes = sorted({A.shape for A, _, _ in items})
    if len(sizes) != 1:
        raise ValueError(f"all systems in one batch must have the same size, got shapes {sizes}")
    if solver is None:
        solver = RecyclingSolver(**solver_options)
    elif solver_options:
        raise TypeError("pass either a solver or solver options, not both")
    if sort and len(items) > 1:
        params = [p for _, _, p in items]
        if any(p is None for p in params):
            if not all(p is None for p in params):
                raise ValueError("give params for every system or for none")
            params = _matrix_values([A for A, _, _ in items])
        order = sort_systems(params, features=features, group_size=group_size)
    else:
        order = np.arange(len(items))
    results: list[SolveResult | None] = [None] * len(items)
    for position, idx in enumerate(order):
        A, b, _ = items[idx]
        result = solver.solve(A, b)
        result.details["sequence_position"] = position
        results[idx] = result
    return results  # type: ignore[return-value]
