"""Learned incomplete Cholesky: M = L L^T with L predicted by a GNN on tril(A).

For an SPD matrix A with diagonal D, the network (:mod:`.ic_gnn`) reads the
Jacobi-scaled A~ = D^{-1/2} A D^{-1/2} and its IC(0) factor and predicts L~ on
tril(A)'s pattern with a positive diagonal; the factor handed to the native
triangular solves is L = D^{1/2} L~, so M = L L^T is SPD by construction and
one PCG iteration costs exactly what IC(0) costs. The network runs once per
matrix (float32); L is assembled in the matrix's float type.

Safety: a non-finite or non-positive predicted factor, or a matrix whose
features are mostly outside the model's training range, falls back to IC(0)
with a warning (IC(0) of A is part of the network's input, so the fallback
costs nothing more); :func:`cg_with_fallback` re-runs a learned PCG
that does not converge with IC(0)/SSOR from its last iterate and returns the
better answer. Weights are stored as a plain state_dict plus a JSON header
(format, version, family, feature layout, architecture, SHA-256 checksum)
and read with ``torch.load(weights_only=True)``: loading executes no code.

Model names: ``from_pretrained("diffusion2d" | "diffusion3d" | "heat_fem" |
"synthetic")`` gives the model trained on that family
(:mod:`krylearn.bench.spd_families`); ``from_pretrained()`` (what
``M="learned"`` uses) gives ``"general"``, trained on a mix of the three PDE
families (diffusion2d, diffusion3d, heat_fem).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from krylearn._validation import as_csr, as_kernel_matrix, is_symmetric

from .base import Preconditioner
from .classical import IC0, SSOR
from .ic_gnn import FEATURE_LAYOUT, FactorGraph, ICGNN

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "general"
FORMAT = "krylearn.learned_ic"
FORMAT_VERSION = 1
# Widest network run natively by default: the fused pass costs O(w^2) per edge in 8-float (AVX2) or
# 4-float vectors; at width 16 torch's GEMMs are ~25% faster, at width 8 the native pass is ~2.4x faster
# than torch (heat_fem n = 65536, one thread, AVX2).
NATIVE_MAX_WIDTH = 8


class ModelFileError(ValueError):
    """A weights file that is not a valid krylearn learned-IC model (or is for another family/layout)."""


class OutOfDistributionError(RuntimeError):
    """The matrix's features lie outside the model's training range (the model is not trusted there)."""


def out_of_range_fraction(node_features: np.ndarray, ranges: dict | None, extremes=None) -> float:
    """Fraction of nodes (rows of the (n, 4) ``node_features``) with a feature outside the training
    [0.1%, 99.9%] quantile range (widened by 5% of its width) stored in the model metadata; 0.0 without ranges.
    ``extremes``: each feature's (min, max) if known (NaN ignored), to skip the per-node test when all are in range."""
    if not ranges or len(node_features) == 0:
        return 0.0
    lo, hi = (np.asarray(v, dtype=np.float32) for v in ranges["node"])
    margin = 0.05 * (hi - lo)
    if extremes is not None and np.all(extremes[0] >= lo - margin) and np.all(extremes[1] <= hi + margin):
        return 0.0
    x = node_features
    return float(((x < lo - margin) | (x > hi + margin)).any(axis=1).mean())


# ---------------------------------------------------------------- input graph
class TrilPattern:
    """tril(A~)'s CSR pattern (sorted, diagonal last in each row), the IC(0) factor L0~ of A~ on it,
    and sqrt(diag A): where the network's values of L~ go, and what L = D^{1/2} L~ is assembled from."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, l0: np.ndarray, sqrt_diag: np.ndarray) -> None:
        self.indptr, self.indices, self.l0, self.sqrt_diag = indptr, indices, l0, sqrt_diag
        self.shape = (len(indptr) - 1,) * 2

    def ic0_factor(self, dtype=np.float64) -> sp.csr_array:
        """IC(0) of A itself, D^{1/2} L0~ (IC(0) commutes with the diagonal scaling, pivot shifts included)."""
        data = self.l0 * np.repeat(self.sqrt_diag, np.diff(self.indptr))
        return self._csr(data.astype(dtype, copy=False))

    def assemble(self, l_off: np.ndarray, l_diag: np.ndarray, dtype=np.float64) -> sp.csr_array:
        """L = D^{1/2} L~ as CSR from L~'s float32 values (strictly-lower in CSR order, diagonal);
        FloatingPointError when an entry is not finite or a diagonal entry is not positive."""
        from krylearn import _kernels

        data, bad = _kernels.ic_gnn_assemble(self.indptr, l_off, l_diag, self.sqrt_diag)
        if bad:
            raise FloatingPointError("the network produced a non-finite or non-positive factor")
        return self._csr(data.astype(dtype, copy=False))

    def _csr(self, data: np.ndarray) -> sp.csr_array:
        """L on the pattern; it shares the pattern's index arrays (neither is written to)."""
        L = sp.csr_array((data, self.indices, self.indptr), shape=self.shape)
        L.has_canonical_format = True  # tril of a canonical A~: sorted, no duplicates
        return L


def check_symmetric_input(csr: sp.csr_array, kernel) -> None:
    """ValueError unless the square ``csr`` (from ``as_csr``) is non-empty and symmetric (necessary for
    SPD; the diagonal is checked by the native input kernel). ``kernel``: ``csr`` wrapped by ``as_kernel_matrix``."""
    if csr.shape[0] == 0:
        raise ValueError("learned IC needs a non-empty matrix")
    if not is_symmetric(csr, rtol=100 * np.finfo(csr.dtype).eps, kernel=kernel):
        max_difference, _ = kernel.asymmetry()
        raise ValueError("learned IC is for symmetric positive definite matrices; A is not symmetric "
                         f"(max |A - A^T| = {max_difference:.3e})")


@dataclass
class FactorInputs:
    """The network's input for one matrix as NumPy arrays (float32 values): the strictly-lower
    edges of tril(A~) in CSR order (row i's edges are ``lower_ptr[i]:lower_ptr[i+1]``, columns
    ``cols``), A~ and L0 on them, the (n, 4) node features of ``FEATURE_LAYOUT``, and each
    feature's (min, max) when known."""

    lower_ptr: np.ndarray
    cols: np.ndarray
    a_off: np.ndarray
    l0_off: np.ndarray
    node_features: np.ndarray
    feature_extremes: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.lower_ptr) - 1

    def graph(self, device=None) -> FactorGraph:
        """The same input as torch tensors on ``device`` (what :class:`ICGNN` reads)."""
        as_t = lambda v: torch.from_numpy(v).to(device)  # noqa: E731
        rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.lower_ptr))
        return FactorGraph(n=self.n, rows=as_t(rows), cols=as_t(self.cols.astype(np.int64)), a_off=as_t(self.a_off),
                           l0_off=as_t(self.l0_off), l0_diag=as_t(np.ascontiguousarray(self.node_features[:, 0])),
                           node_features=as_t(self.node_features),
                           edge_features=as_t(np.stack([self.a_off, self.l0_off], axis=1)))


def factor_inputs(A) -> tuple[FactorInputs, TrilPattern, float]:
    """The network's input for SPD ``A``: (inputs in float32, tril pattern, IC(0) shift of A~).
    One native pass (``_kernels.ic_gnn_inputs``) after the symmetry check."""
    from krylearn import _kernels

    csr = as_csr(A, dtype=np.float64, copy=False)  # square (ValueError), only read: a canonical input is not copied
    kernel = as_kernel_matrix(csr)
    check_symmetric_input(csr, kernel)
    out = _kernels.ic_gnn_inputs(kernel)
    inputs = FactorInputs(lower_ptr=out["lower_ptr"], cols=out["cols"], a_off=out["a_off"], l0_off=out["l0_off"],
                          node_features=out["node_features"], feature_extremes=(out["feature_min"], out["feature_max"]))
    pattern = TrilPattern(out["indptr"], out["indices"], out["l0"], out["sqrt_diag"])
    return inputs, pattern, out["shift"]


def factor_graph(A, device=None) -> tuple[FactorGraph, TrilPattern, float]:
    """The network's input for SPD ``A`` as torch tensors: (graph in float32, tril pattern, IC(0) shift of A~)."""
    inputs, pattern, shift = factor_inputs(A)
    return inputs.graph(device), pattern, shift


# ---------------------------------------------------------------- model files
def _state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.digest()


def _checksum(metadata_json: str, state: dict[str, torch.Tensor]) -> str:
    return hashlib.sha256(metadata_json.encode() + _state_bytes(state)).hexdigest()


def _read_model_file(path) -> tuple[dict, dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no learned-IC model file at {path}")
    try:
        payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, not a torch file at all
        raise ModelFileError(f"{path} is not a readable krylearn learned-IC model file (truncated, tampered "
                             f"or not a weights file): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a krylearn learned-IC model file (format header missing)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {payload.get('format_version')!r}; "
                             f"this krylearn reads version {FORMAT_VERSION}")
    metadata_json, state = payload.get("metadata"), payload.get("state_dict")
    if not isinstance(metadata_json, str) or not isinstance(state, dict) or \
            not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: malformed metadata or state_dict")
    if payload.get("sha256") != _checksum(metadata_json, state):
        raise ModelFileError(f"{path}: checksum mismatch, the file was modified or corrupted")
    metadata = json.loads(metadata_json)
    if metadata.get("feature_layout") != FEATURE_LAYOUT:
        raise ModelFileError(f"{path} was trained for feature layout {metadata.get('feature_layout')!r}, "
                             f"this krylearn computes {FEATURE_LAYOUT!r}")
    return metadata, state


# ---------------------------------------------------------------- preconditioner
class LearnedIC(Preconditioner):
    """M = L L^T with L on tril(A)'s pattern predicted by :class:`ICGNN` (SPD A only).

    ``setup(A)`` validates A (symmetric, positive diagonal), runs the network
    once and builds the native triangular-solve preconditioner. After setup:
    ``L`` (SciPy CSR, the factor used), ``fallback`` (None or "ic0"),
    ``inference_seconds`` (features + network + assembly). When more than
    ``ood_threshold`` of the rows have input features outside the model's
    training range (``metadata["feature_ranges"]``), the network is not
    trusted and IC(0) is used with a warning (``fallback == "ic0"``). On the
    CPU a network of width <= ``NATIVE_MAX_WIDTH`` runs as one fused native
    pass (``_kernels.ic_gnn_forward``, float32) with ``threads`` OpenMP threads
    (default 1); otherwise, and on other devices (``device=``), it runs in torch
    with ``threads`` torch CPU threads, the global torch setting restored
    (:meth:`network_output`).
    """

    name = "learned"
    keeps_matrix = False  # the factor is all that is kept

    def __init__(self, model: ICGNN, metadata: dict | None = None, device="cpu", threads: int = 1,
                 ood_threshold: float = 0.25) -> None:
        super().__init__()
        self.threads = max(1, int(threads))
        self.ood_threshold = float(ood_threshold)
        if not isinstance(model, ICGNN):
            raise TypeError(f"model must be an ICGNN, got {type(model).__name__}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.metadata = dict(metadata or {})
        self.metadata.setdefault("family", "custom")
        self.metadata.update(feature_layout=FEATURE_LAYOUT, width=model.width, rounds=model.rounds,
                             activation=model.activation)
        self.L: sp.csr_array | None = None
        self.fallback: str | None = None
        self.inference_seconds = 0.0
        self._native_cache: tuple | None = None  # (parameter versions, flat native parameters)

    @property
    def family(self) -> str:
        return self.metadata["family"]

    # ---- construction
    @classmethod
    def from_pretrained(cls, name: str | None = None, device="cpu") -> LearnedIC:
        """A shipped model: a family name (see module doc) or None for the default ("general")."""
        name = name or DEFAULT_MODEL
        available = sorted(p.stem for p in MODELS_DIR.glob("*.pt"))
        if name not in available:
            raise ValueError(f"no shipped learned-IC model {name!r}; available: {', '.join(available) or 'none'}")
        return cls.load(MODELS_DIR / f"{name}.pt", family=name, device=device)

    @classmethod
    def load(cls, path, family: str | None = None, device="cpu") -> LearnedIC:
        """Read a model file written by :meth:`save` (no code execution). With ``family``,
        ModelFileError unless the file was trained for that family."""
        metadata, state = _read_model_file(path)
        if family is not None and metadata.get("family") != family:
            raise ModelFileError(f"{path} is a model for family {metadata.get('family')!r}, not {family!r}")
        try:
            # files from before the activation was recorded hold SiLU networks
            model = ICGNN(width=int(metadata["width"]), rounds=int(metadata["rounds"]),
                          activation=metadata.get("activation", "silu"))
            model.load_state_dict(state, strict=True)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelFileError(f"{path}: weights do not match the recorded architecture: {exc}") from exc
        return cls(model, metadata, device=device)

    def save(self, path) -> Path:
        """Write state_dict + JSON metadata + checksum (read back bit-exactly by :meth:`load`)."""
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        metadata_json = json.dumps(self.metadata, sort_keys=True)
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": metadata_json,
                   "state_dict": state, "sha256": _checksum(metadata_json, state)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
        return path

    @classmethod
    def fit(cls, matrices, *, validation=None, family: str = "custom", loss: str = "data", epochs: int = 20,
            lr: float = 3e-3, width: int = 8, rounds: int = 3, activation: str = "silu", seed: int = 0,
            device="cpu", show_progress: bool = False) -> LearnedIC:
        """Train a new model on the user's SPD ``matrices`` (see
        :func:`krylearn.preconditioners.learned_ic_train.train`); the training
        record is in ``metadata["training"]``."""
        from .learned_ic_train import train

        return train(matrices, validation=validation, family=family, loss=loss, epochs=epochs, lr=lr, width=width,
                     rounds=rounds, activation=activation, seed=seed, device=device, show_progress=show_progress)

    # ---- prediction
    def predict_factor(self, A, dtype=np.float64, check_distribution: bool = False) -> sp.csr_array:
        """L (CSR, lower, positive diagonal last in each row) with M = L L^T ~ A.
        With ``check_distribution``, OutOfDistributionError when A is outside the training range."""
        inputs, pattern, _ = factor_inputs(A)
        return self._factor(inputs, pattern, dtype, check_distribution)

    def _factor(self, inputs: FactorInputs, pattern: TrilPattern, dtype, check_distribution: bool) -> sp.csr_array:
        if check_distribution:
            fraction = out_of_range_fraction(inputs.node_features, self.metadata.get("feature_ranges"),
                                             inputs.feature_extremes)
            if fraction > self.ood_threshold:
                raise OutOfDistributionError(
                    f"A is outside the training distribution of model {self.family!r} ({100 * fraction:.0f}% "
                    f"of the rows have features outside its training range)")
        return pattern.assemble(*self.network_output(inputs), dtype=dtype)

    def network_output(self, inputs: FactorInputs, backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(l_off, l_diag) in float32: the network's factor of A~ on ``inputs``' pattern. ``backend``
        "native" (the fused C++ forward pass, CPU only), "torch" (the module itself) or None: native
        on the CPU up to width ``NATIVE_MAX_WIDTH``, else torch. Both run with ``threads`` threads."""
        if backend is None:
            backend = "native" if self.device.type == "cpu" and self.model.width <= NATIVE_MAX_WIDTH else "torch"
        if backend == "native":
            from krylearn import _kernels

            if self.device.type != "cpu":
                raise ValueError(f"the native forward pass runs on the CPU; this model is on {self.device}")
            return _kernels.ic_gnn_forward(inputs.lower_ptr, inputs.cols, inputs.a_off, inputs.l0_off,
                                           inputs.node_features, self._native_parameters(), self.model.width,
                                           self.model.rounds, activation=self.model.activation,
                                           threads=self.threads)
        if backend != "torch":
            raise ValueError(f"backend must be 'native', 'torch' or None, got {backend!r}")
        saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                l_off, l_diag = self.model(inputs.graph(self.device))
        finally:
            torch.set_num_threads(saved_threads)
        return l_off.cpu().numpy(), l_diag.cpu().numpy()

    def _native_parameters(self) -> np.ndarray:
        """``model.native_parameters()``, re-flattened only when a parameter changed (torch bumps a
        tensor's version on every in-place write, e.g. an optimiser step or load_state_dict)."""
        versions = tuple((p.data_ptr(), p._version) for p in self.model.parameters())
        if self._native_cache is None or self._native_cache[0] != versions:
            self._native_cache = (versions, self.model.native_parameters())
        return self._native_cache[1]

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        start = time.perf_counter()
        self.fallback = None
        inputs, pattern, _ = factor_inputs(csr)  # ValueError: not SPD
        try:
            self.L = self._factor(inputs, pattern, csr.data.dtype, check_distribution=True)
        except (FloatingPointError, OutOfDistributionError) as exc:  # IC(0) of A, already computed for the input
            warnings.warn(f"learned IC: {exc}; falling back to ic0", RuntimeWarning, stacklevel=3)
            self.L, self.fallback = pattern.ic0_factor(csr.data.dtype), "ic0"
        self.native = _kernels.ic_preconditioner(as_kernel_matrix(self.L))  # L is canonical and finite
        self.inference_seconds = time.perf_counter() - start

    def __repr__(self) -> str:
        return f"LearnedIC(family={self.family!r}, " + super().__repr__().split("(", 1)[1]


def fallback_preconditioner(A, reason: str) -> Preconditioner:
    """IC(0) for A (SSOR if IC(0) fails), with a warning naming ``reason``."""
    try:
        pc: Preconditioner = IC0().setup(A)
    except ValueError:
        pc = SSOR(1.0).setup(A)
    warnings.warn(f"learned IC: {reason}; falling back to {pc.name}", RuntimeWarning, stacklevel=3)
    return pc


def cg_with_fallback(A, b, x0=None, *, M: LearnedIC | str = "learned", rtol=1e-8, atol=0.0, maxiter=None,
                     callback=None):
    """PCG with a learned IC; if it does not converge (stagnation up to ``maxiter``
    or breakdown) it is re-run from its last iterate with IC(0) (SSOR if IC(0)
    fails), with a warning. ValueError when CG proves A indefinite (p^T A p <= 0). Returns the SolveResult with the smaller true residual
    (iterations of both runs counted, ``details["fallback"]`` naming the second)."""
    from krylearn.solvers.krylov import run_cg

    from .base import make_preconditioner

    csr = as_csr(A)
    b = np.asarray(b)
    pc = make_preconditioner(M, csr)
    first = run_cg(csr, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=pc, callback=callback)
    if first.converged:
        return first
    if first.info == -1:
        raise ValueError("A is not positive definite (CG found a direction with p^T A p <= 0); the learned IC "
                         "preconditioner and CG are for symmetric positive definite matrices")
    second = run_cg(csr, b, first.x, rtol=rtol, atol=atol, maxiter=maxiter, callback=callback,
                    M=fallback_preconditioner(csr, f"PCG did not converge (info={first.info})"))
    true_residual = lambda res: float(np.linalg.norm(b - csr @ res.x))  # noqa: E731
    best = second if true_residual(second) <= true_residual(first) else first
    best.iterations = first.iterations + second.iterations
    best.details["fallback"] = second.preconditioner
    return best
