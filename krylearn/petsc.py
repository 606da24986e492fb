"""PETSc plugin: krylearn preconditioners as petsc4py Python PCs, a recycling
Python KSP, and ``solve`` for PETSc matrices.

Selected from the options database::

    -pc_type python -pc_python_type krylearn.petsc.LearnedIC   [-krylearn_model NAME]
    -pc_type python -pc_python_type krylearn.petsc.DCDM        [-krylearn_model NAME -krylearn_grid 64,64 | -krylearn_mask F.npy]
    -pc_type python -pc_python_type krylearn.petsc.TunedSOR    [-krylearn_omega_grid 1.0:1.95:20 -krylearn_bandit tsallis -krylearn_seed 0]
    -ksp_type python -ksp_python_type krylearn.petsc.GCRODR    [-krylearn_recycle 20 -krylearn_restart 40]

Parallel semantics (PETSc over MPI is how krylearn scales): with an MPIAIJ
operator every rank builds its preconditioner from its local diagonal block
and applies it to its local part of the vector, i.e. block Jacobi with a
krylearn preconditioner per block. The same contexts work as sub-PCs of
``-pc_type bjacobi -sub_pc_type python -sub_pc_python_type ...``.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ._extras import require

require("petsc4py", "petsc")
from petsc4py import PETSc  # noqa: E402

OPTION_PREFIX = "krylearn_"


def _require_real_scalars() -> None:
    if np.iscomplexobj(np.zeros(1, dtype=PETSc.ScalarType)):
        raise NotImplementedError(
            "krylearn's PETSc plugin needs a real PETSc build (PetscScalar = real); this petsc4py uses complex scalars"
        )


def local_block_csr(mat: "PETSc.Mat") -> sp.csr_array:
    """The rank-local diagonal block of an AIJ matrix as a SciPy CSR array
    (the whole matrix on one rank)."""
    _require_real_scalars()
    block = mat.getDiagonalBlock() if mat.getComm().getSize() > 1 else mat
    if block.getType() not in ("seqaij", "aij", "seqaijperm"):
        block = block.convert("seqaij")
    indptr, indices, data = block.getValuesCSR()
    n_rows, n_cols = block.getSize()
    csr = sp.csr_array((data.copy(), indices.copy(), indptr.copy()), shape=(n_rows, n_cols))
    csr.sort_indices()
    return csr


def _options(pc_or_ksp) -> "PETSc.Options":
    return PETSc.Options(pc_or_ksp.getOptionsPrefix() or "")


def _get_string(options, name: str, default: str | None) -> str | None:
    """Option ``-<prefix>krylearn_<name>`` or ``default`` when it is not set."""
    key = OPTION_PREFIX + name
    return options.getString(key) if options.hasName(key) else default


class _LocalBlockPC:
    """Common part of the Python PC contexts: build a krylearn preconditioner
    on the local diagonal block in ``setUp``, apply it in ``apply``."""

    name = "krylearn"

    def __init__(self) -> None:
        self.preconditioner = None
        self.block_shape: tuple[int, int] | None = None

    # petsc4py protocol -------------------------------------------------
    def setFromOptions(self, pc) -> None:  # noqa: N802 - petsc4py protocol name
        self.read_options(_options(pc))

    def setUp(self, pc) -> None:  # noqa: N802
        _, P = pc.getOperators()
        local = local_block_csr(P)
        self.block_shape = local.shape
        self.preconditioner = self.build(local)

    def apply(self, pc, x, y) -> None:
        if self.preconditioner is None:
            raise RuntimeError(f"{type(self).__name__}: apply() called before setUp(); call KSPSetUp/PCSetUp first")
        # z = M^{-1} r written straight into y's local array (real PetscScalar = float64): no temporary per apply
        self.preconditioner.apply(x.getArray(readonly=True), out=y.getArray())

    def view(self, pc, viewer) -> None:
        viewer.printfASCII(f"  krylearn {type(self).__name__}: {self.describe()}\n")
        if self.block_shape is not None:
            viewer.printfASCII(f"  local block {self.block_shape[0]} x {self.block_shape[1]}\n")

    # for subclasses ------------------------------------------------------
    def read_options(self, options) -> None:
        pass

    def build(self, local: sp.csr_array):
        raise NotImplementedError

    def describe(self) -> str:
        return ""


class LearnedIC(_LocalBlockPC):
    """M = L L^T with L predicted by krylearn's graph network on the local
    block (``-krylearn_model``: a shipped model name; default: chosen by
    ``LearnedIC.from_pretrained``)."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None

    def read_options(self, options) -> None:
        self.model = _get_string(options, "model", self.model)

    def build(self, local):
        from krylearn.preconditioners.learned_ic import LearnedIC as _LearnedIC

        return _LearnedIC.from_pretrained(self.model).setup(local)

    def describe(self) -> str:
        return f"learned incomplete Cholesky, model={self.model or 'default'}"


class DCDM(_LocalBlockPC):
    """The DCDM network as a (nonlinear, so flexible) preconditioner: use it
    under ``-ksp_type fcg`` or ``fgmres``. The local unknowns are either every
    cell of a grid, ``-krylearn_grid nx,ny[,nz]``, or the True cells (C order)
    of a boolean fluid mask saved with ``numpy.save``, ``-krylearn_mask
    FILE.npy`` (``{rank}`` in FILE is replaced by the MPI rank, so every rank
    reads the mask of its own block). ``-krylearn_model`` names the network;
    ``-krylearn_scale s`` runs it on the grid coarsened by s (see
    :class:`krylearn.solvers.dcdm.NetworkPreconditioner`), so a multiplicative
    composite of DCDM PCs at scales 1, 2, 4, ... is the multiscale iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self.grid: tuple[int, ...] | np.ndarray | None = None
        self.mask_file: str | None = None
        self.scale = 1

    def read_options(self, options) -> None:
        self.model = _get_string(options, "model", self.model)
        grid = _get_string(options, "grid", None)
        self.mask_file = _get_string(options, "mask", self.mask_file)
        if grid and self.mask_file:
            raise ValueError(f"krylearn.petsc.DCDM: give -{OPTION_PREFIX}grid or -{OPTION_PREFIX}mask, not both")
        if grid:
            try:
                self.grid = tuple(int(v) for v in grid.split(","))
            except ValueError as exc:
                raise ValueError(f"-{OPTION_PREFIX}grid must be integers separated by commas, got {grid!r}") from exc
        scale = _get_string(options, "scale", None)
        if scale is not None:
            try:
                value = int(scale)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"-{OPTION_PREFIX}scale (grid coarsening factor) must be a positive integer, "
                                 f"got {scale!r}")
            self.scale = value

    def setUp(self, pc) -> None:  # noqa: N802
        if self.mask_file:
            self.grid = _load_mask(self.mask_file.replace("{rank}", str(pc.getComm().getRank())))
        super().setUp(pc)

    def build(self, local):
        from krylearn.solvers.dcdm import NetworkPreconditioner, load_model

        if self.grid is None:
            raise ValueError(f"krylearn.petsc.DCDM needs the local unknowns: -{OPTION_PREFIX}grid nx,ny[,nz] "
                             f"or -{OPTION_PREFIX}mask FILE.npy")
        dim = self.grid.ndim if isinstance(self.grid, np.ndarray) else len(self.grid)
        model = load_model(self.model or f"dcdm_{dim}d")
        return NetworkPreconditioner(model, self.grid, scale=self.scale).setup(local)

    def describe(self) -> str:
        where = f"mask={self.mask_file}" if self.mask_file else f"grid={self.grid}"
        return f"DCDM network preconditioner, model={self.model or 'default'}, {where}, scale={self.scale}"


def _load_mask(path: str) -> np.ndarray:
    """A boolean fluid mask from a ``.npy`` file (no pickles: loading runs no code)."""
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"-{OPTION_PREFIX}mask: cannot read a boolean .npy array from {path!r}: {exc}") from exc
    if not isinstance(mask, np.ndarray):  # an .npz archive
        raise ValueError(f"-{OPTION_PREFIX}mask: {path!r} is not a single .npy array")
    if mask.dtype != bool:
        raise ValueError(f"-{OPTION_PREFIX}mask: {path!r} holds a {mask.dtype} array; save the fluid mask as bool")
    return mask


def _parse_grid(text: str) -> np.ndarray:
    """``lo:hi:count`` or a comma list of omegas."""
    try:
        if ":" in text:
            lo, hi, count = text.split(":")
            return np.linspace(float(lo), float(hi), int(count))
        return np.array([float(v) for v in text.split(",")])
    except ValueError as exc:
        raise ValueError(f"-{OPTION_PREFIX}omega_grid must be 'lo:hi:count' or a comma list, got {text!r}") from exc


class TunedSOR(_LocalBlockPC):
    """SSOR on the local block whose omega is chosen per KSPSolve by a bandit
    (Tsallis-INF by default) that learns from the iteration count in
    ``postSolve``. As the top-level PC it learns across solves (in parallel
    every rank runs the same seeded learner on the same global iteration
    counts, so all ranks pick the same omega). As a bjacobi sub-PC it only
    sees its preonly sub-KSP: it then draws omega at each setUp and cannot
    learn; use it at the top level to tune."""

    def __init__(self) -> None:
        super().__init__()
        self.omega_grid = np.linspace(1.0, 1.95, 20)
        self.bandit = "tsallis"
        self.seed = 0
        self.learner = None
        self.arm: int | None = None
        self.local: sp.csr_array | None = None
        self.history: list[tuple[float, int]] = []

    def read_options(self, options) -> None:
        grid = _get_string(options, "omega_grid", None)
        if grid:
            self.omega_grid = _parse_grid(grid)
        self.bandit = _get_string(options, "bandit", self.bandit)
        self.seed = options.getInt(OPTION_PREFIX + "seed", self.seed)
        self.learner = None

    def _make_learner(self):
        from krylearn.bandits.omega_tuner import CONTEXT_FREE_LEARNERS as learners

        if self.bandit not in learners:
            raise ValueError(f"-{OPTION_PREFIX}bandit must be one of {sorted(learners)}, got {self.bandit!r}")
        if len(self.omega_grid) == 0 or np.any(self.omega_grid <= 0) or np.any(self.omega_grid >= 2):
            raise ValueError(f"omega grid must be non-empty and inside (0, 2), got {self.omega_grid}")
        return learners[self.bandit](len(self.omega_grid), seed=self.seed)

    def build(self, local):
        from krylearn.preconditioners import SSOR

        if self.learner is None:
            self.learner = self._make_learner()
        self.local = local
        self.arm = int(self.learner.select())
        return SSOR(omega=float(self.omega_grid[self.arm])).setup(local)

    @staticmethod
    def _learns_from(ksp) -> bool:
        """Only an iterating KSP gives feedback; as a sub-PC (bjacobi's preonly
        KSP, one call per outer iteration) omega must stay fixed between setUps."""
        return ksp.getType() != "preonly"

    def preSolve(self, pc, ksp, b, x) -> None:  # noqa: N802
        from krylearn.preconditioners import SSOR

        if self.learner is None or self.local is None or not self._learns_from(ksp):
            return
        self.arm = int(self.learner.select())
        self.preconditioner = SSOR(omega=float(self.omega_grid[self.arm])).setup(self.local)

    def postSolve(self, pc, ksp, b, x) -> None:  # noqa: N802
        if self.learner is None or self.arm is None or not self._learns_from(ksp):
            return
        iterations = ksp.getIterationNumber()
        # A diverged or capped solve costs the cap (never NaN, never a crash).
        cost = iterations if ksp.getConvergedReason() > 0 else max(iterations, ksp.getTolerances()[3])
        self.learner.update(self.arm, float(cost))
        self.history.append((float(self.omega_grid[self.arm]), int(iterations)))

    def describe(self) -> str:
        current = "unset" if self.arm is None else f"{self.omega_grid[self.arm]:.4g}"
        return (
            f"bandit-tuned SSOR, learner={self.bandit}, omega grid [{self.omega_grid[0]:.3g}, "
            f"{self.omega_grid[-1]:.3g}] x {len(self.omega_grid)}, current omega={current}, solves={len(self.history)}"
        )


class GCRODR:
    """Recycling Krylov method as a Python KSP (one process): GCRO-DR(m, k)
    keeping its recycle space across KSPSolve calls. Options
    ``-krylearn_restart`` (m, default 40), ``-krylearn_recycle`` (k, default 20).
    The KSP's own PC is applied as a right preconditioner."""

    def __init__(self) -> None:
        self.restart = 40
        self.recycle = 20
        self.solver = None

    def setFromOptions(self, ksp) -> None:  # noqa: N802
        options = _options(ksp)
        self.restart = options.getInt(OPTION_PREFIX + "restart", self.restart)
        self.recycle = options.getInt(OPTION_PREFIX + "recycle", self.recycle)
        self.solver = None

    def setUp(self, ksp) -> None:  # noqa: N802
        from krylearn.solvers.recycling import RecyclingSolver

        if ksp.getComm().getSize() > 1:
            raise NotImplementedError(
                "krylearn.petsc.GCRODR runs on one process; in parallel use a krylearn PC under a PETSc KSP"
            )
        if self.solver is None:
            A, _ = ksp.getOperators()
            pc = ksp.getPC()
            rin, zout = A.createVecRight(), A.createVecLeft()

            def apply_pc(r: np.ndarray) -> np.ndarray:
                rin.getArray()[:] = r
                pc.apply(rin, zout)
                return zout.getArray(readonly=True).copy()

            precondition = pc.getType() not in ("none", None)
            self.solver = RecyclingSolver("gcrodr", k=self.recycle, m=self.restart, M=apply_pc if precondition else None)

    def solve(self, ksp, b, x) -> None:
        A, _ = ksp.getOperators()
        rtol, atol, _, maxiter = ksp.getTolerances()
        x0 = x.getArray(readonly=True).copy() if ksp.getInitialGuessNonzero() else None
        result = self.solver.solve(
            local_block_csr(A), b.getArray(readonly=True).copy(), x0=x0, rtol=rtol, atol=atol, maxiter=maxiter
        )
        x.getArray()[:] = result.x
        ksp.setIterationNumber(int(result.iterations))
        ksp.setResidualNorm(float(result.residuals[-1]) if len(result.residuals) else 0.0)
        reason = PETSc.KSP.ConvergedReason
        ksp.setConvergedReason(reason.CONVERGED_RTOL if result.converged else reason.DIVERGED_ITS)

    def view(self, ksp, viewer) -> None:
        kept = 0 if self.solver is None else self.solver.recycle_dim
        viewer.printfASCII(f"  krylearn GCRO-DR(m={self.restart}, k={self.recycle}), recycled vectors kept: {kept}\n")


_KSP_TYPES = {"cg": "cg", "gmres": "gmres", "bicgstab": "bcgs", "minres": "minres", "fgmres": "fgmres", "fcg": "fcg"}
_PC_TYPES = {"none": "none", "jacobi": "jacobi", "ssor": "sor", "ic0": "icc", "ilu0": "ilu", "amg": "gamg"}
_PYTHON_PCS = {"learned": "krylearn.petsc.LearnedIC", "tunedsor": "krylearn.petsc.TunedSOR", "dcdm": "krylearn.petsc.DCDM"}


def solve(A, b, *, method: str = "auto", M: str = "auto", rtol: float = 1e-8, atol: float = 0.0,
          maxiter: int | None = None, x0=None, callback=None):
    """Solve a PETSc system with a PETSc KSP configured from krylearn names.

    ``A``: a petsc4py Mat; ``b``: a Vec or an array of the local rows.
    ``method`` in cg, gmres, bicgstab, minres, fgmres, fcg ("auto": cg when
    A is flagged symmetric, else gmres); ``M`` a krylearn preconditioner name
    (none, jacobi, ssor, ic0, ilu0, amg, learned, tunedsor, dcdm; "auto": icc
    when symmetric, else ilu). Returns a SolveResult whose ``x`` is a PETSc
    Vec; further PETSc options (prefix-free) still apply via setFromOptions.
    """
    from krylearn.result import SolveResult

    _require_real_scalars()
    if rtol < 0 or atol < 0:
        raise ValueError("rtol and atol must be non-negative")
    if method != "auto" and method not in _KSP_TYPES:
        raise ValueError(f"unknown method {method!r} for PETSc; choose from {sorted(_KSP_TYPES)}")
    if M != "auto" and M not in _PC_TYPES and M not in _PYTHON_PCS:
        raise ValueError(f"unknown preconditioner {M!r} for PETSc; choose from {sorted(_PC_TYPES) + sorted(_PYTHON_PCS)}")
    if "auto" in (method, M):
        known, flag = A.isSymmetricKnown()
        symmetric = flag if known else A.isSymmetric(1e-12)
        method = ("cg" if symmetric else "gmres") if method == "auto" else method
        M = ("ic0" if symmetric else "ilu0") if M == "auto" else M

    if not isinstance(b, PETSc.Vec):
        values = np.asarray(b, dtype=PETSc.ScalarType)
        vec = A.createVecLeft()
        if values.shape != (vec.getLocalSize(),):
            raise ValueError(f"b has shape {values.shape}, expected ({vec.getLocalSize()},) local rows")
        vec.getArray()[:] = values
        b = vec
    x = A.createVecRight()
    if x0 is not None:
        x.getArray()[:] = x0.getArray(readonly=True) if isinstance(x0, PETSc.Vec) else np.asarray(x0)

    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setType(_KSP_TYPES[method])
    pc = ksp.getPC()
    if M in _PYTHON_PCS:
        pc.setType("python")
        pc.setPythonType(_PYTHON_PCS[M])
    elif M in ("ic0", "ilu0") and A.getComm().getSize() > 1:
        pc.setType("bjacobi")  # PETSc's icc/ilu are sequential: one block per rank
    else:
        pc.setType(_PC_TYPES[M])
    ksp.setTolerances(rtol=rtol, atol=atol, max_it=maxiter if maxiter is not None else 10 * A.getSize()[0])
    ksp.setInitialGuessNonzero(x0 is not None)
    # Converge on the true residual ||b - A x||, as krylearn and SciPy do.
    if method in ("gmres", "fgmres", "bicgstab"):
        ksp.setPCSide(PETSc.PC.Side.RIGHT)
    elif method == "cg":
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    residuals: list[float] = []

    def monitor(_ksp, _iteration, rnorm):
        residuals.append(float(rnorm))
        if callback is not None:
            callback(float(rnorm))

    ksp.setMonitor(monitor)
    ksp.setFromOptions()
    if M in ("ic0", "ilu0") and A.getComm().getSize() > 1:
        ksp.setUp()
        for sub in pc.getBJacobiSubKSP():
            sub.getPC().setType(_PC_TYPES[M])
    start = time.perf_counter()
    ksp.solve(b, x)
    seconds = time.perf_counter() - start
    reason = ksp.getConvergedReason()
    r = b.duplicate()
    A.mult(x, r)
    r.aypx(-1.0, b)
    true_norm, bnorm = r.norm(), b.norm()
    converged = reason > 0 and true_norm <= max(atol, rtol * bnorm) * (1 + 1e-6)
    return SolveResult(
        x=x, converged=bool(converged), iterations=int(ksp.getIterationNumber()),
        residuals=np.asarray(residuals), info=0 if converged else (int(reason) if reason < 0 else int(ksp.getIterationNumber())),
        seconds=seconds, method=f"petsc-{ksp.getType()}", preconditioner=M,
        details={"petsc_reason": int(reason), "true_residual": float(true_norm)},
    )
