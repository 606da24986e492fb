"""Deep Conjugate Direction Method (Kaneda, Akar, Chen, Kim, Teran, ICML 2023).

DCDM solves an SPD grid system A x = b with search directions from a
convolutional network f that approximates A^{-1} r up to scale:

    r = b - A x;  repeat:
        z = f(r)                                          (float32 network)
        p = z - sum_{j in last k} (z.A p_j)/(p_j.A p_j) p_j   (k = 2 default)
        alpha = (p.r)/(p.A p);  x += alpha p;  r -= alpha A p  (float64)
    until ||r|| <= max(atol, rtol ||b||), confirmed on the true residual b - A x.

This is the flexible CG of Notay (FCG(k)) with the network as a nonlinear
preconditioner, so :func:`flexible_cg` takes any preconditioner and
:class:`NetworkPreconditioner` is also a valid ``M`` for FGMRES
(``krylearn.solvers.krylov.run_gmres(A, b, M=net, flexible=True)``) where DCDM
alone stalls. When the network returns a zero or non-finite direction (or one
with p.A p <= 0), the step falls back to the smoother's direction (Jacobi,
D^{-1} r, when there is no smoother) and the iteration continues
(``details["fallback_steps"]``). With a ``smoother`` (a classical
preconditioner S: "ic0", the default of :func:`solve_dcdm`, "ssor" or
"jacobi") every iteration also takes a second step along S^{-1} r on the
updated residual, A-orthogonal to the directions kept: the network removes the
smooth error, the smoother the rough error it misses, so a weak network cannot
make the iteration stagnate (one extra mat-vec and S solve, no extra network
call). ``smoother=None`` is the paper's DCDM exactly.

Multiscale directions: the network is also applied to the residual
restricted to the grid coarsened by 2, 4, ... down to about 8 cells per axis
(block sums over s^d cells, a coarse cell is fluid when any of its cells is;
the coarse direction is prolonged (bi/tri)linearly), and each scale
contributes one A-orthogonalised step per iteration, like the levels of a
multigrid cycle. A network trained at 64^2 sees the whole domain of a 256^2
grid only at scale 4, so with one scale its iteration count grows with the
grid like a one-level method's. ``scales="all"`` runs the network at every
scale, the fine grid included; ``scales="auto"``, the default, leaves the fine
grid to the smoother's step (the fine network call costs 3x (2D) / 7x (3D) all
the coarse ones together and, next to the IC(0) step, buys few iterations:
README), ``scales="trained"`` stops at about the training size, and
``scales=(1,)`` is the single-scale iteration.

Grids: ``grid`` is a shape (every cell an unknown, C order) or a boolean
fluid mask (the unknowns are its True cells in C order, as produced by
``krylearn.bench.obstacle_poisson``). A must couple each cell only with itself
and its face neighbours (5-point in 2D, 7-point in 3D) and be symmetric.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from krylearn._validation import as_csr, check_maxiter, check_tolerances, check_vector
from krylearn.preconditioners.base import Preconditioner, make_preconditioner
from krylearn.preconditioners.classical import Jacobi
from krylearn.result import SolveResult

from .dcdm_unet import ResidualUNet

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_FORMAT = "krylearn-dcdm"
MODEL_VERSION = 1


# ----------------------------------------------------------------------------- models

def save_model(model: ResidualUNet, path, metadata: dict | None = None) -> Path:
    """Write ``model`` as a plain state_dict plus a JSON header (format, version,
    architecture, ``metadata``); loadable with ``torch.load(weights_only=True)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "config": model.config(), "metadata": metadata or {}}
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    torch.save({"header": json.dumps(header), "state_dict": state}, path)
    return path


def model_path(name) -> Path:
    """A shipped model name (``dcdm_2d``, ``dcdm_3d``) or a path to a ``.pt`` file."""
    path = Path(name)
    if path.suffix != ".pt":
        path = MODEL_DIR / f"{name}.pt"
    if not path.is_file():
        shipped = sorted(p.stem for p in MODEL_DIR.glob("dcdm_*.pt"))
        raise FileNotFoundError(f"no DCDM model {str(name)!r} (looked for {path}); shipped models: {shipped}")
    return path


def load_model(name="dcdm_2d", device="cpu") -> ResidualUNet:
    """Load a model saved by :func:`save_model` without executing code; the
    header is checked (format, version, architecture) before the weights."""
    path = model_path(name)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or set(payload) != {"header", "state_dict"}:
        raise ValueError(f"{path} is not a krylearn DCDM model file")
    header = json.loads(payload["header"])
    if header.get("format") != MODEL_FORMAT or header.get("version") != MODEL_VERSION:
        raise ValueError(f"{path}: expected format {MODEL_FORMAT!r} version {MODEL_VERSION}, "
                         f"got {header.get('format')!r} version {header.get('version')!r}")
    config = header["config"]
    model = ResidualUNet(dim=int(config["dim"]), channels=int(config["channels"]), blocks=tuple(config["blocks"]),
                         levels=int(config.get("levels", 1)))
    model.load_state_dict(payload["state_dict"], strict=True)
    model.metadata = header.get("metadata", {})
    return model.to(device).eval()


# ----------------------------------------------------------------------------- grids

def grid_mask(grid, n: int) -> np.ndarray:
    """The boolean unknown mask of ``grid`` (a shape or a fluid mask) for n unknowns."""
    if isinstance(grid, np.ndarray) and grid.dtype == bool:
        mask = grid
    else:
        try:
            shape = tuple(int(s) for s in grid)
        except TypeError:
            raise TypeError(f"grid must be a shape tuple or a boolean fluid mask, got {type(grid).__name__}") from None
        if any(s < 1 for s in shape):
            raise ValueError(f"grid shape must be positive, got {shape}")
        mask = np.ones(shape, dtype=bool)
    if mask.ndim not in (2, 3):
        raise ValueError(f"DCDM needs a 2-D or 3-D grid, got {mask.ndim} axes (shape {mask.shape})")
    if not mask.any():
        raise ValueError("the grid has no unknown (fluid) cells: an all-solid domain has nothing to solve")
    if int(mask.sum()) != n:
        raise ValueError(f"the grid has {int(mask.sum())} unknown cells (shape {mask.shape}) but A has n={n}; "
                         "pass grid=<shape> for a full grid or grid=<boolean fluid mask>")
    return mask


def check_grid_matrix(A: sp.csr_array, mask: np.ndarray) -> None:
    """ValueError unless A is symmetric with a positive diagonal and couples each
    unknown only with itself and its face neighbours on the grid of ``mask``."""
    coords = np.argwhere(mask)
    coo = A.tocoo()
    distance = np.abs(coords[coo.row] - coords[coo.col]).sum(axis=1)
    if np.any(distance > 1):
        i = int(np.argmax(distance > 1))
        raise ValueError(
            "DCDM requires a grid matrix: every nonzero must couple a cell with itself or a face neighbour "
            f"(5-point stencil in 2D, 7-point in 3D) on the grid {mask.shape}; entry ({coo.row[i]}, {coo.col[i]}) "
            f"couples cells {tuple(coords[coo.row[i]])} and {tuple(coords[coo.col[i]])}")
    scale = float(np.abs(A.data).max()) if A.nnz else 0.0
    if A.nnz and float(np.abs(A - A.T).max()) > 1e-12 * scale:
        raise ValueError("DCDM requires a symmetric (SPD) matrix; A is not symmetric")
    if np.any(A.diagonal() <= 0):
        raise ValueError("DCDM requires an SPD matrix; A has a non-positive diagonal entry")


# ----------------------------------------------------------------------------- network as a preconditioner

class NetworkPreconditioner(Preconditioner):
    """z = alpha q, q = f(r / rms(r)) on the grid, alpha = q.r / q.A q: the DCDM
    network as a (nonlinear) preconditioner. The residual is scattered onto the
    grid, normalised to unit RMS per unknown (so inputs look alike at every
    grid size), passed through the float32 network on ``device`` and gathered
    back as float64; alpha (one mat-vec) makes z the A-norm-optimal step along
    q, so z has the magnitude of A^{-1} r and the network composes with other
    preconditioners (e.g. PETSc's multiplicative ``-pc_type composite``).
    Where q.A q <= 0 or is not finite, z = q unscaled (callers such as
    :func:`flexible_cg` detect such a direction).

    ``scale`` s > 1 applies the network on the grid coarsened by s: the
    residual is summed over blocks of s^d cells (the grid padded with solid
    cells to a multiple of s; a block with any fluid cell is a fluid coarse
    cell) and the coarse direction is interpolated back (bilinear / trilinear,
    cell-centred) onto the fluid cells."""

    name = "dcdm-net"

    def __init__(self, model: ResidualUNet, grid, device="cpu", scale: int = 1) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ValueError(f"scale (grid coarsening factor) must be a positive integer, got {scale!r}")
        # 2D convolutions run ~1.5x faster channels-last on the CPU (oneDNN, one thread, 128^2-256^2);
        # 3D ones run slower that way, so they keep the default layout
        self._layout = torch.channels_last if model.dim == 2 else torch.contiguous_format
        self.model = model.to(device, memory_format=self._layout).eval()
        self.grid, self.device, self.scale = grid, torch.device(device), int(scale)
        if self.scale > 1:
            self.name = f"dcdm-net/{self.scale}"

    def _build(self, csr: sp.csr_array) -> None:
        self.mask = grid_mask(self.grid, csr.shape[0])
        if self.mask.ndim != self.model.dim:
            raise ValueError(f"the grid has {self.mask.ndim} axes but the network is {self.model.dim}-D; "
                             f"use a dcdm_{self.mask.ndim}d model")
        check_grid_matrix(csr, self.mask)
        self._A = csr
        self.dtype = np.dtype(np.float64)
        self._prepare_scale()

    def at_scale(self, scale: int) -> NetworkPreconditioner:
        """The same network, grid and A (this preconditioner, set up) at coarsening factor ``scale``,
        set up without validating A and the grid again."""
        if self.shape is None:
            raise RuntimeError("NetworkPreconditioner.at_scale needs a set-up preconditioner; call setup(A) first")
        other = NetworkPreconditioner(self.model, self.mask, self.device, scale)
        other.shape, other.dtype, other.mask, other._A = self.shape, self.dtype, self.mask, self._A
        other._prepare_scale()
        return other

    def _prepare_scale(self) -> None:
        """The padded grid, crop and (coarse) fluid masks of this scale for the validated mask."""
        s = self.scale
        self._padded = tuple(-(-size // s) * s for size in self.mask.shape)
        self._crop = tuple(slice(0, size) for size in self.mask.shape)
        self._mask_t = torch.from_numpy(self.mask).to(self.device)
        fluid = torch.zeros(self._padded, dtype=torch.float32, device=self.device)
        fluid[self._crop] = self._mask_t.to(torch.float32)
        if s > 1:
            pool = F.avg_pool2d if self.mask.ndim == 2 else F.avg_pool3d
            fluid = (pool(fluid[None, None], s)[0, 0] > 0).to(torch.float32)
        self._coarse_fluid = fluid > 0
        self._mask_in = fluid[None, None].contiguous(memory_format=self._layout)

    def _apply(self, r: np.ndarray, out: np.ndarray) -> None:
        rms = float(np.sqrt(np.mean(r * r)))
        if rms == 0.0 or not np.isfinite(rms):
            out[:] = 0.0 if rms == 0.0 else np.nan
            return
        grid = torch.zeros(self._padded, dtype=torch.float32, device=self.device)
        grid[self._crop][self._mask_t] = torch.from_numpy(r / rms).to(self.device, torch.float32)
        h = grid[None, None]
        s = self.scale
        if s > 1:  # block sums, renormalised to unit RMS on the coarse fluid cells
            pool = F.avg_pool2d if self.mask.ndim == 2 else F.avg_pool3d
            h = pool(h, s)
            coarse_rms = float(torch.sqrt(torch.mean(h[0, 0][self._coarse_fluid] ** 2)))
            if coarse_rms == 0.0 or not np.isfinite(coarse_rms):  # r has no component at this scale
                out[:] = 0.0
                return
            h = h / coarse_rms
        with torch.inference_mode():
            q = self.model(h.contiguous(memory_format=self._layout), self._mask_in)
            if s > 1:
                q = F.interpolate(q, scale_factor=s, mode="bilinear" if self.mask.ndim == 2 else "trilinear",
                                  align_corners=False)
        out[:] = q[0, 0][self._crop][self._mask_t].to("cpu", torch.float64).numpy()
        qAq = float(out @ (self._A @ out))
        if qAq > 0.0 and np.isfinite(qAq):
            out *= float(out @ r) / qAq


# ----------------------------------------------------------------------------- the iteration

def flexible_cg(A, b, M, *, x0=None, rtol: float = 1e-8, atol: float = 0.0, maxiter: int | None = None,
                k: int = 2, callback=None, smoother=None, method: str = "fcg") -> SolveResult:
    """Flexible CG, FCG(k): the preconditioned residual z = M(r) is A-orthogonalised
    against the directions of the last k iterations, the step is the exact line
    search along it.

    ``M`` is any callable r -> z (may be nonlinear or change between calls), or
    a sequence of them: each iteration then takes one step per member, in
    order, each on the residual the previous step left (the multiscale
    directions of :func:`solve_dcdm`).
    ``smoother``: None, or any ``make_preconditioner`` spec ("ic0", "ssor",
    "jacobi", a Preconditioner, a callable): a further step along its
    direction after the M steps (see module doc). A direction that is zero,
    non-finite, or has p.A p <= 0 is skipped (``fallback_steps``); when no M
    direction of an iteration is usable, the smoother's direction (Jacobi's
    D^{-1} r without a smoother) is taken instead, and if that is unusable too,
    info = -1 (A not SPD). Convergence is declared only when the true residual
    b - A x meets the tolerance. Returns a SolveResult in float64; ``details``
    holds ``fallback_steps``, ``smoother_steps``, ``true_residual`` and ``k``."""
    start = time.perf_counter()
    csr = as_csr(A, dtype=np.float64)
    n = csr.shape[0]
    b = check_vector(b, n, "b", np.float64)
    x = np.zeros(n) if x0 is None else check_vector(x0, n, "x0", np.float64)
    rtol, atol = check_tolerances(rtol, atol)
    maxiter = check_maxiter(maxiter, min(10 * n, 10000))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (iterations whose directions are kept) must be a positive integer, got {k!r}")
    generators = tuple(M) if isinstance(M, (list, tuple)) else (M,)
    if not generators or not all(callable(g) for g in generators):
        raise TypeError("M must be a callable r -> z or a non-empty sequence of them")
    smoother = make_preconditioner(smoother, csr)  # None for None or "none"
    smooth_every_step = smoother is not None
    fallback = smoother if smooth_every_step else Jacobi().setup(csr)
    name = "+".join(getattr(g, "name", type(g).__name__) for g in generators)
    if smooth_every_step:
        name += "+" + getattr(smoother, "name", type(smoother).__name__)
    bnorm = float(np.linalg.norm(b))
    details = {"k": int(k), "fallback_steps": 0, "smoother_steps": 0}
    if bnorm == 0.0:  # SciPy's convention: x = 0 solves b = 0 exactly
        details["true_residual"] = 0.0
        return SolveResult(np.zeros(n), True, 0, np.zeros(1), 0, time.perf_counter() - start, method, name, details)
    tol = max(atol, rtol * bnorm)
    r = b - csr @ x
    rnorm = float(np.linalg.norm(r))
    residuals = [rnorm]
    directions = _DirectionStore(k * (len(generators) + smooth_every_step), n)

    def take(step) -> None:
        p, Ap, pAp = step
        alpha = float(p @ r) / pAp
        x[:] += alpha * p
        r[:] -= alpha * Ap
        directions.append(p, Ap, pAp)

    info, iterations = maxiter, 0
    while iterations < maxiter:
        if rnorm <= tol:  # confirm on the true residual; continue from it if the recurrence drifted
            r = b - csr @ x
            rnorm = float(np.linalg.norm(r))
            residuals[-1] = rnorm
            if rnorm <= tol:
                info = 0
                break
        taken = 0
        for generator in generators:
            step = _conjugate(csr, np.asarray(generator(r), dtype=np.float64), directions)
            if step is None:
                details["fallback_steps"] += 1
            else:
                take(step)
                taken += 1
        if not taken or smooth_every_step:
            smooth = _conjugate(csr, np.asarray(fallback(r), dtype=np.float64), directions)
            if smooth is None and not taken:
                info = -1
                break
            if smooth is not None:
                take(smooth)
                details["smoother_steps"] += int(taken > 0)
        iterations += 1
        rnorm = float(np.linalg.norm(r))
        residuals.append(rnorm)
        if callback is not None:
            callback(x)
    else:
        r = b - csr @ x
        rnorm = float(np.linalg.norm(r))
        residuals[-1] = rnorm
        if rnorm <= tol:
            info = 0
    details["true_residual"] = float(np.linalg.norm(b - csr @ x))
    return SolveResult(x, info == 0, iterations, np.asarray(residuals), int(info), time.perf_counter() - start,
                       method, name, details)


class _DirectionStore:
    """The last ``capacity`` directions p_j with A p_j and p_j.A p_j, as rows of two preallocated
    arrays (a ring: the newest overwrites the oldest), so that conjugating against all of them is
    three matrix-vector products instead of a loop of vector updates."""

    def __init__(self, capacity: int, n: int) -> None:
        self.P, self.AP = np.empty((capacity, n)), np.empty((capacity, n))
        self.pAp = np.empty(capacity)
        self.count = self.head = 0

    def append(self, p: np.ndarray, Ap: np.ndarray, pAp: float) -> None:
        self.P[self.head], self.AP[self.head], self.pAp[self.head] = p, Ap, pAp
        self.head = (self.head + 1) % len(self.pAp)
        self.count = min(self.count + 1, len(self.pAp))


def _conjugate(csr, z: np.ndarray, directions: _DirectionStore) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(p, A p, p.A p) for z A-orthogonalised against ``directions`` (classical Gram-Schmidt in the
    A inner product: p = z - sum_j (z.A p_j / p_j.A p_j) p_j); None when unusable."""
    if z.shape != (csr.shape[0],) or not np.all(np.isfinite(z)) or not np.any(z):
        return None
    Az = csr @ z
    m = directions.count
    if m:
        coef = (directions.AP[:m] @ z) / directions.pAp[:m]
        p, Ap = z - coef @ directions.P[:m], Az - coef @ directions.AP[:m]
    else:
        p, Ap = z.copy(), Az
    pAp = float(p @ Ap)
    if not np.isfinite(pAp) or pAp <= 0.0:
        return None
    return p, Ap, pAp


COARSEST_EXTENT = 8  # scales="auto": coarsen while the coarse grid keeps about this many cells per axis


def multiscale_factors(shape, coarsest_extent: int) -> tuple[int, ...]:
    """Coarsening factors 1, 2, 4, ... for a grid of ``shape``: every power of two s whose coarsened
    extent max(shape) / s is at least coarsest_extent / sqrt(2) (``coarsest_extent`` rounded in log2)."""
    if isinstance(coarsest_extent, bool) or not isinstance(coarsest_extent, (int, np.integer)) or coarsest_extent < 1:
        raise ValueError(f"coarsest_extent must be a positive integer, got {coarsest_extent!r}")
    extent, factors = max(int(e) for e in shape), [1]
    while extent / (2 * factors[-1]) >= coarsest_extent / np.sqrt(2.0):
        factors.append(2 * factors[-1])
    return tuple(factors)


def resolve_scales(scales, net: ResidualUNet, shape, *, smoother: bool = True) -> tuple[int, ...]:
    """The coarsening factors that ``solve_dcdm(scales=...)`` uses on a grid of ``shape``:
    "all": 1, 2, 4, ... down to about COARSEST_EXTENT cells per axis; "auto": the same without the
    fine scale 1 when there is a ``smoother`` to take the fine grid's step and the grid has coarser
    scales; "trained": 1, 2, ... down to about the largest grid the network was trained on (model
    metadata ``grid``; (1,) when it is not recorded); or a sequence of distinct positive integers,
    returned as a tuple."""
    if isinstance(scales, str) and scales in ("auto", "all"):
        factors = multiscale_factors(shape, COARSEST_EXTENT)
        return factors[1:] if scales == "auto" and smoother and len(factors) > 1 else factors
    if isinstance(scales, str) and scales == "trained":
        grid = getattr(net, "metadata", {}).get("grid")
        sizes = grid if isinstance(grid, (list, tuple)) else [grid]
        sizes = [int(g) for g in sizes if isinstance(g, (int, np.integer)) and not isinstance(g, bool) and g > 0]
        return multiscale_factors(shape, max(sizes)) if sizes else (1,)
    if isinstance(scales, (str, bytes, dict)) or not hasattr(scales, "__iter__"):
        raise ValueError(f'scales must be "auto", "all", "trained" or a sequence of coarsening factors, '
                         f'got {scales!r}')
    factors = tuple(scales)
    if not factors or len(set(factors)) != len(factors):
        raise ValueError(f"scales must be distinct coarsening factors, at least one, got {scales!r}")
    return factors


def solve_dcdm(A, b, *, grid, rtol: float = 1e-8, atol: float = 0.0, maxiter: int | None = None, x0=None,
               callback=None, model=None, k: int = 2, smoother="ic0", scales="auto", device="cpu") -> SolveResult:
    """Solve the SPD grid system A x = b with DCDM (see module doc).

    ``grid``: grid shape or boolean fluid mask matching A's unknowns.
    ``model``: a :class:`ResidualUNet`, a shipped name (``"dcdm_2d"``,
    ``"dcdm_3d"``) or a ``.pt`` path; default: the shipped model of the grid's
    dimension. ``k``: iterations whose directions are kept for the
    A-orthogonalisation; ``smoother``: the classical step of the hybrid
    network + smoother iteration of the module doc ("ic0", "ssor", "jacobi"
    or any ``make_preconditioner`` spec; None: the paper's DCDM).
    ``scales``: the grid coarsening factors at which the network gives a
    direction each iteration (:func:`resolve_scales`): "auto" (2, 4, ... down
    to about 8 cells per axis, the fine grid getting only the smoother's step;
    1 as well without a smoother or on a grid too small to coarsen), "all"
    (1, 2, 4, ...), "trained" (1, 2, ... down to about the network's training
    grid), or a sequence of distinct positive integers, (1,) being the
    single-scale iteration."""
    csr = as_csr(A, dtype=np.float64)
    mask = grid_mask(grid, csr.shape[0])
    if model is None:
        model = f"dcdm_{mask.ndim}d"
    net = model if isinstance(model, ResidualUNet) else load_model(model, device=device)
    smoother = make_preconditioner(smoother, csr)  # None for None or "none"; flexible_cg takes it as built
    factors = resolve_scales(scales, net, mask.shape, smoother=smoother is not None)
    first = NetworkPreconditioner(net, mask, device=device, scale=factors[0]).setup(csr)
    M = [first, *(first.at_scale(s) for s in factors[1:])]  # A and the grid validated once
    result = flexible_cg(csr, b, M, x0=x0, rtol=rtol, atol=atol, maxiter=maxiter, k=k, callback=callback,
                         smoother=smoother, method="dcdm")
    result.details["model"] = getattr(net, "metadata", {}).get("name", type(net).__name__)
    result.details["scales"] = list(factors)
    return result
