"""Solver runners measured one way for every library: krylearn, SciPy, PyAMG, PETSc KSP.

A :class:`Runner` is a pair of callables, ``setup(A) -> state`` (everything
that depends on A only: format conversion, preconditioner, AMG hierarchy,
KSPSetUp) and ``solve(state, b, rtol, maxiter, trace) -> Outcome``. The
harness :func:`measure` times both separately (best of a few repetitions for
fast runs), always starts from x0 = 0, and judges every library by the same
TRUE relative residual ``||b - A x|| / ||b||`` computed here with SciPy, not
by what the solver reports.

All iterative runners stop on ``||r_k|| <= rtol ||b||`` (atol = 0) in their
own recurrence; GMRES restarts every :data:`RESTART` inner iterations for all
libraries, and ``maxiter`` counts inner iterations everywhere.
"""
from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from krylearn._extras import MissingExtraError, require

RESTART = 30


def _openblas_libraries() -> list[tuple[Callable, Callable]]:
    """(get_num_threads, set_num_threads) of every OpenBLAS loaded in this
    process (NumPy's and SciPy's bundled copies), found like threadpoolctl
    does: through /proc/self/maps. Empty where that is unavailable."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line and ".so" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        lib = ctypes.CDLL(path)
        for suffix in ("64_", "_64_", ""):
            prefix = "scipy_openblas" if hasattr(lib, f"scipy_openblas_set_num_threads{suffix}") else "openblas"
            get, put = (getattr(lib, f"{prefix}_{verb}_num_threads{suffix}", None) for verb in ("get", "set"))
            if get is not None and put is not None:
                found.append((get, put))
                break
    return found


@contextmanager
def blas_threads(count: int | None) -> Iterator[None]:
    """Run the block with NumPy/SciPy's OpenBLAS limited to ``count`` threads
    (None: unchanged), restoring the previous counts afterwards. The suites use
    1 by default: SciPy's Krylov loops do BLAS-1 work on short vectors, where a
    threaded OpenBLAS only adds synchronisation (and on a loaded machine its
    spinning threads make SciPy many times slower)."""
    libraries = _openblas_libraries() if count is not None else []
    previous = [get() for get, _ in libraries]
    for _, put in libraries:
        put(int(count))
    try:
        yield
    finally:
        for (_, put), n in zip(libraries, previous):
            put(n)


@dataclass
class Outcome:
    """What one solve produced: the iterate, the iteration count and the
    relative residual history ``||r_k|| / ||b||`` as the solver reports it
    (None when the library exposes none at no cost; then the harness asks for a
    separate untimed ``trace=True`` run)."""

    x: np.ndarray
    iterations: int
    history: np.ndarray | None = None
    setup_inside: float = 0.0  # seconds of setup the solve call did internally (krylearn.solve auto)
    label: str = ""  # refined preconditioner/method label chosen inside the solve (auto)
    note: str = ""


@dataclass(frozen=True)
class Runner:
    library: str
    method: str
    preconditioner: str
    setup: Callable[[sp.csr_array], Any]
    solve: Callable[[Any, np.ndarray, float, int, bool], Outcome]
    spd_only: bool = False

    @property
    def label(self) -> str:
        pc = "" if self.preconditioner in ("", "-") else f"+{self.preconditioner}"
        return f"{self.library} {self.method}{pc}"


@dataclass
class Measurement:
    row: dict[str, Any]
    x: np.ndarray | None
    history: np.ndarray | None = field(default=None, repr=False)


def true_relative_residual(A, b: np.ndarray, x: np.ndarray) -> float:
    """``||b - A x||_2 / ||b||_2`` (plain SciPy SpMV; NaN for a non-finite x)."""
    if x is None or not np.all(np.isfinite(x)):
        return math.nan
    bnorm = float(np.linalg.norm(b))
    return float(np.linalg.norm(b - A @ x)) / (bnorm if bnorm > 0 else 1.0)


def measure(
    runner: Runner,
    A: sp.csr_array,
    b: np.ndarray,
    *,
    rtol: float,
    maxiter: int,
    x_reference: np.ndarray | None = None,
    min_seconds: float = 0.25,
    max_repeats: int = 3,
    trace: bool = False,
) -> Measurement:
    """Time ``runner`` on ``A x = b``: setup and solve separately, best of up to
    ``max_repeats`` runs while the total stays under ``min_seconds``. Returns a
    table row with the true relative residual, ``converged`` (true residual
    <= rtol), the relative error against ``x_reference`` if given, and the
    residual history (from a separate untimed run when ``trace`` is set and
    the timed run had none)."""
    row: dict[str, Any] = {
        "solver": runner.label,
        "library": runner.library,
        "method": runner.method,
        "preconditioner": runner.preconditioner,
    }
    setup_times, solve_times = [], []
    outcome: Outcome | None = None
    started = time.perf_counter()
    try:
        while True:
            t0 = time.perf_counter()
            state = runner.setup(A)
            t1 = time.perf_counter()
            outcome = runner.solve(state, b, rtol, maxiter, False)
            t2 = time.perf_counter()
            setup_times.append(t1 - t0 + outcome.setup_inside)
            solve_times.append(t2 - t1 - outcome.setup_inside)
            if len(solve_times) >= max_repeats or time.perf_counter() - started >= min_seconds:
                break
        history = outcome.history
        if trace and history is None:
            history = runner.solve(runner.setup(A), b, rtol, maxiter, True).history
    except Exception as exc:  # a failing library is a result, not a crash of the suite
        row.update(iterations=-1, setup_s=math.nan, solve_s=math.nan, total_s=math.nan,
                   relres=math.nan, converged=False, error=math.nan,
                   note=f"{type(exc).__name__}: {exc}".splitlines()[0][:120])
        return Measurement(row, None)
    relres = true_relative_residual(A, b, outcome.x)
    error = math.nan
    if x_reference is not None and np.all(np.isfinite(outcome.x)):
        error = float(np.linalg.norm(outcome.x - x_reference) / max(np.linalg.norm(x_reference), 1e-300))
    if outcome.label:
        row["preconditioner"] = outcome.label
        row["solver"] = f"{runner.library} {runner.method} ({outcome.label})"
    setup_s, solve_s = min(setup_times), min(solve_times)
    row.update(
        iterations=int(outcome.iterations), setup_s=setup_s, solve_s=solve_s, total_s=setup_s + solve_s,
        relres=relres, converged=bool(relres <= rtol), error=error,
        note=outcome.note or ("" if relres <= rtol or outcome.iterations < maxiter else "hit maxiter"),
    )
    return Measurement(row, outcome.x, history)


# --------------------------------------------------------------------------- SciPy

def _counter():
    count = [0]

    def tick(*_):
        count[0] += 1

    return count, tick


def _scipy_iterative(solver: Callable, *, restarted: bool) -> Callable:
    def solve(state, b, rtol, maxiter, trace):
        A, precond = state
        count, tick = _counter()
        history: list[float] = []
        bnorm = np.linalg.norm(b)
        kwargs: dict[str, Any] = {"rtol": rtol, "atol": 0.0, "M": precond}
        if restarted:
            # SciPy counts restart cycles; its left-preconditioned inner residual is what
            # pr_norm reports (relative to ||b||); rescale to start at 1 for the curves.
            mb = np.linalg.norm(precond @ b) if precond is not None else bnorm
            kwargs.update(restart=RESTART, maxiter=max(1, math.ceil(maxiter / RESTART)), callback_type="pr_norm")

            def callback(prn):
                tick()
                history.append(prn * bnorm / mb)

            x, _ = solver(A, b, callback=callback, **kwargs)
            return Outcome(x, count[0], np.array([1.0] + history))

        def callback(xk):
            tick()
            if trace:
                history.append(np.linalg.norm(b - A @ xk) / bnorm)

        x, _ = solver(A, b, maxiter=maxiter, callback=callback, **kwargs)
        return Outcome(x, count[0], np.array([1.0] + history) if trace else None)

    return solve


def _spilu(A):
    """SuperLU threshold ILU with SciPy's defaults (drop_tol 1e-4, fill_factor 10): what a
    SciPy user calls; SciPy has no ILU(0), and its defaults are the stronger baseline."""
    ilu = spla.spilu(sp.csc_matrix(A))
    return A, spla.LinearOperator(A.shape, matvec=ilu.solve, dtype=A.dtype)


def _splu_solve(lu, b, rtol, maxiter, trace):
    x = lu.solve(b)
    return Outcome(x, 0, None)


def scipy_runners(spd: bool) -> list[Runner]:
    """SciPy: unpreconditioned CG (SciPy ships no IC/SSOR/AMG) on SPD problems;
    GMRES(30)/BiCGStab with spilu (default options) on the others; SuperLU
    direct (splu, COLAMD) on every problem."""
    runners = [Runner("scipy", "splu", "-", lambda A: spla.splu(sp.csc_matrix(A)), _splu_solve)]
    if spd:
        runners.insert(0, Runner("scipy", "cg", "none", lambda A: (A, None), _scipy_iterative(spla.cg, restarted=False)))
    else:
        runners[:0] = [
            Runner("scipy", "gmres", "spilu", _spilu, _scipy_iterative(spla.gmres, restarted=True)),
            Runner("scipy", "bicgstab", "spilu", _spilu, _scipy_iterative(spla.bicgstab, restarted=False)),
        ]
    return runners


# --------------------------------------------------------------------------- PyAMG

def _pyamg_solve(ml, b, rtol, maxiter, trace):
    residuals: list[float] = []
    x = ml.solve(b, x0=np.zeros_like(b), tol=rtol, maxiter=maxiter, accel="cg", residuals=residuals)
    bnorm = np.linalg.norm(b)
    return Outcome(x, len(residuals) - 1, np.asarray(residuals) / bnorm)


def pyamg_runners(spd: bool) -> list[Runner]:
    """PyAMG smoothed-aggregation AMG (V-cycle) as preconditioner of PyAMG's CG, SPD problems only."""
    if not spd:
        return []
    try:
        pyamg = require("pyamg", "amg")
    except MissingExtraError:
        return []
    from krylearn.preconditioners.classical import seeded_global_random

    def setup(A):  # reproducible hierarchies, as krylearn's own AMG
        with seeded_global_random(0):
            return pyamg.smoothed_aggregation_solver(sp.csr_matrix(A))

    return [Runner("pyamg", "cg", "sa-amg", setup, _pyamg_solve, True)]


# --------------------------------------------------------------------------- PETSc

def petsc_or_reason() -> tuple[Any, str]:
    """``(PETSc, "")`` when petsc4py imports, else ``(None, reason)``."""
    try:
        petsc4py = require("petsc4py", "petsc")
        petsc4py.init([])
        from petsc4py import PETSc
    except (MissingExtraError, ImportError) as exc:
        return None, str(exc)
    return PETSc, ""


def petsc_matrix(PETSc, A: sp.csr_array):
    """A sequential AIJ copy of a CSR matrix."""
    A = sp.csr_array(A)
    indptr = A.indptr.astype(PETSc.IntType)
    indices = A.indices.astype(PETSc.IntType)
    return PETSc.Mat().createAIJ(size=A.shape, csr=(indptr, indices, A.data.astype(PETSc.ScalarType)), comm=PETSc.COMM_SELF)


def petsc_ksp(PETSc, mat, ksp_type: str, pc_type: str, *, rtol: float, maxiter: int, norm: str = "unpreconditioned"):
    """A KSP on ``mat`` with the given types, x0 = 0, stopping on ``||r|| <= rtol ||b||``
    (unpreconditioned norm: left-preconditioned CG, right-preconditioned GMRES(30)),
    or exactly ``maxiter`` iterations with ``norm="none"``."""
    ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
    ksp.setOperators(mat)
    ksp.setType(ksp_type)
    pc = ksp.getPC()
    pc.setType(pc_type)
    # pc_type "sor": PETSc's default is SOR_LOCAL_SYMMETRIC_SWEEP with omega = 1, i.e. SSOR on one rank.
    if ksp_type == "gmres":
        ksp.setGMRESRestart(RESTART)
        ksp.setPCSide(PETSc.PC.Side.RIGHT)
    ksp.setTolerances(rtol=rtol, atol=0.0, max_it=maxiter)
    ksp.setNormType({"unpreconditioned": PETSc.KSP.NormType.UNPRECONDITIONED, "none": PETSc.KSP.NormType.NONE}[norm])
    ksp.setInitialGuessNonzero(False)
    return ksp


def _petsc_runner(PETSc, ksp_type: str, pc_type: str, spd_only: bool) -> Runner:
    def setup(A):
        return A, petsc_matrix(PETSc, A)

    # The KSP needs rtol/maxiter, so KSPSetUp (the preconditioner build) happens in solve
    # and is reported back as setup time through Outcome.setup_inside.
    def solve(state, b, rtol, maxiter, trace):
        A, mat = state
        t0 = time.perf_counter()
        ksp = petsc_ksp(PETSc, mat, ksp_type, pc_type, rtol=rtol, maxiter=maxiter)
        ksp.setConvergenceHistory(length=maxiter + 1)
        ksp.setUp()
        bv, xv = mat.createVecs()
        bv.setArray(b)
        setup_inside = time.perf_counter() - t0
        ksp.solve(bv, xv)
        reason = ksp.getConvergedReason()
        note = f"KSPConvergedReason {reason}" if reason < 0 and reason != PETSc.KSP.ConvergedReason.DIVERGED_ITS else ""
        x = xv.getArray().copy()
        history = np.asarray(ksp.getConvergenceHistory()) / np.linalg.norm(b)
        its = ksp.getIterationNumber()
        for obj in (ksp, bv, xv):
            obj.destroy()
        return Outcome(x, its, history, setup_inside=setup_inside, note=note)

    return Runner("petsc", ksp_type, pc_type, setup, solve, spd_only)


def petsc_runners(spd: bool) -> list[Runner]:
    """PETSc KSP: cg+icc, cg+sor (SSOR), cg+gamg on SPD problems; gmres(30)+ilu and
    bcgs+ilu (ILU(0)) on the others; none when petsc4py is missing."""
    PETSc, _ = petsc_or_reason()
    if PETSc is None:
        return []
    if spd:
        return [_petsc_runner(PETSc, "cg", pc, True) for pc in ("icc", "sor", "gamg")]
    return [_petsc_runner(PETSc, ksp, "ilu", False) for ksp in ("gmres", "bcgs")]
