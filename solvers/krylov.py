"""Krylov solvers on the native loops of ``krylearn._kernels``.

``run_cg``, ``run_gmres``, ``run_bicgstab``, ``run_minres`` return a
:class:`~krylearn.result.SolveResult`; ``cg``, ``gmres``, ``bicgstab``,
``minres`` are drop-in replacements for ``scipy.sparse.linalg`` (same
arguments, defaults and ``(x, info)`` return; info 0 converged, > 0 iteration
limit, < 0 breakdown). All stop when ||b - A x|| <= max(atol, rtol ||b||)
for the recursively updated residual; unlike SciPy, the true residual is
checked once at the end, and a "converged" result whose true residual is more
than ``TRUE_RESIDUAL_SLACK`` times the tolerance is reported as not converged.

A may be any SciPy sparse matrix/array, a dense array or a LinearOperator
(matrix-free: its matvec is called from the native loop); the ``run_*``
drivers also take an already validated :class:`LinearSystem` (b ignored). M follows SciPy's
convention (it applies M^{-1} ~ A^{-1}) and may also be a krylearn
preconditioner or a name ("jacobi", "ic0", ...). A native preconditioner runs
inside C++ without the GIL; anything else is called back into Python.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from krylearn import _kernels
from krylearn._validation import (
    as_csr,
    as_kernel_matrix,
    check_maxiter,
    check_square,
    check_tolerances,
    check_vector,
    MatrixProperties,
    float_dtype,
)
from krylearn.preconditioners.base import Preconditioner, make_preconditioner
from krylearn.result import SolveResult


class StopSolve(Exception):
    """Raised by a callback to end the iteration early; the ``run_*`` driver then returns
    the current iterate as not converged (info = ``iterations`` given here, at least 1)."""

    def __init__(self, message: str = "", iterations: int = 0) -> None:
        super().__init__(message)
        self.iterations = int(iterations)


# The loops stop on the recursively updated residual; a result is reported as
# converged only if the true residual ||b - A x|| is within this factor of the
# tolerance too (rounding lets the two drift apart on ill-conditioned systems).
TRUE_RESIDUAL_SLACK = 10.0


@dataclass
class LinearSystem:
    """A validated system ready for the native loops.

    ``properties`` (symmetry, diagonal) of an explicit A are computed on first
    use and shared by ``dataclasses.replace`` copies, so a chain of attempts
    on one matrix pays for them once.
    """

    n: int
    dtype: np.dtype
    b: np.ndarray
    operator: Any  # _kernels.CsrMatrix or callable x -> A x
    csr: sp.csr_array | None  # None for a LinearOperator A
    properties: MatrixProperties | None = field(default=None, repr=False)  # None for a LinearOperator A

    def __post_init__(self) -> None:
        if self.properties is None and self.csr is not None:
            self.properties = MatrixProperties(self.csr, self.operator)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.csr @ x if self.csr is not None else self.operator(x)

    def residual(self, x: np.ndarray) -> np.ndarray:
        """b - A x in float64 (the native SpMV for a float64 explicit A: deterministic, thread-consistent)."""
        if self.dtype == np.float64 and isinstance(self.operator, _kernels.CsrMatrix):
            r = self.b.copy()
            _kernels.spmv(self.operator, np.ascontiguousarray(x, dtype=np.float64), r, -1.0, 1.0)
            return r
        return self.b.astype(np.float64) - np.asarray(self.matvec(x), dtype=np.float64)

    def residual_norm(self, x: np.ndarray, shift: float = 0.0) -> float:
        """True residual ||b - (A - shift I) x|| in float64."""
        r = self.residual(x)
        if shift:
            r += shift * x
        return _kernels.nrm2(r)


def _input_dtype(A):
    if isinstance(A, LinearOperator) or sp.issparse(A):
        return A.dtype
    return np.asarray(A).dtype


def _callable_operator(linop: LinearOperator, n: int, dtype) -> Callable[[np.ndarray], np.ndarray]:
    def matvec(x: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(linop.matvec(x), dtype=dtype)
        return y.reshape(n)

    return matvec


def linear_system(A, b) -> LinearSystem:
    """Validate A (sparse, dense or LinearOperator) and b; pick the float type like SciPy."""
    if isinstance(A, LinearOperator):
        n = check_square(A.shape)
        b_arr = np.asarray(b)
        dtype = float_dtype(A.dtype, b_arr.dtype)
        return LinearSystem(n, dtype, check_vector(b_arr, n, "b", dtype), _callable_operator(A, n, dtype), None)
    b_arr = b if sp.issparse(b) else np.asarray(b)
    dtype = float_dtype(_input_dtype(A), b_arr.dtype)
    csr = as_csr(A, dtype=dtype, copy=False)  # the system lives for one call: share a canonical input's arrays
    n = csr.shape[0]
    return LinearSystem(n, dtype, check_vector(b_arr, n, "b", dtype), as_kernel_matrix(csr), csr)


def initial_guess(system: LinearSystem, x0) -> np.ndarray:
    """Fresh writable x0 (zeros when None)."""
    if x0 is None:
        return np.zeros(system.n, dtype=system.dtype)
    return check_vector(x0, system.n, "x0", system.dtype)


def _loop_preconditioner(pc: Preconditioner | None, dtype):
    """What the native loop receives for M: the native object, a callable, or None."""
    if pc is None:
        return None
    if pc.native is not None and pc.dtype == dtype:
        return pc.native
    return lambda r: np.ascontiguousarray(pc.apply(r), dtype=dtype)


def _run(method: str, loop, A, b, x0, M, rtol, atol, maxiter, default_maxiter, shift=0.0) -> SolveResult:
    start = time.perf_counter()
    rtol, atol = check_tolerances(rtol, atol)
    system = A if isinstance(A, LinearSystem) else linear_system(A, b)  # wrappers validate once
    maxiter = check_maxiter(maxiter, default_maxiter(system.n))
    x = initial_guess(system, x0)
    bnorm = _kernels.nrm2(system.b)
    pc = _preconditioner_for(system, M)
    pc_name = pc.name if pc is not None else "none"
    setup_seconds = time.perf_counter() - start
    if bnorm == 0.0:  # SciPy: x = 0 exactly, converged, whatever x0 was
        return SolveResult(np.zeros(system.n, dtype=system.dtype), True, 0, np.zeros(1), 0,
                           time.perf_counter() - start, method, pc_name, {"setup_seconds": setup_seconds})
    stopped = None
    if maxiter == 0:  # nothing to iterate; SciPy would report info 0 even when x0 is not a solution
        r0 = system.residual_norm(x, shift)
        iterations, info, residuals = 0, int(r0 > max(atol, rtol * bnorm)), [r0]
    else:
        try:
            iterations, info, residuals = loop(system, x, _loop_preconditioner(pc, system.dtype), rtol, atol, maxiter)
        except StopSolve as stop:  # x holds the loop's last accepted iterate (GMRES: the last restart)
            stopped = str(stop) or "stopped by the callback"
            iterations, residuals = stop.iterations, [bnorm, system.residual_norm(x, shift)]
            info = max(iterations, 1)
    true_residual = system.residual_norm(x, shift)
    details = {"setup_seconds": setup_seconds, "bnorm": bnorm, "true_residual": true_residual}
    if stopped is not None:
        details["stopped"] = stopped
    if int(info) == 0 and true_residual > TRUE_RESIDUAL_SLACK * max(atol, rtol * bnorm):
        info = max(int(iterations), 1)  # the recursive residual converged, the true one did not
    if pc is not None and getattr(pc, "shift", None):
        details["shift"] = pc.shift
    return SolveResult(x, int(info) == 0, int(iterations), np.asarray(residuals, dtype=np.float64), int(info),
                       time.perf_counter() - start, method, pc_name, details)


def _as_shape(system: LinearSystem) -> LinearOperator:
    return LinearOperator((system.n, system.n), matvec=system.operator, dtype=system.dtype)


def run_cg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None) -> SolveResult:
    """Preconditioned CG for SPD A (and SPD M). info -1: A not symmetric (checked up front for explicit
    matrices; no iterations are done) or p^T A p <= 0 (A not SPD),
    -2: r^T M^{-1} r <= 0 (M not SPD), -3: other breakdown. maxiter default 10 n."""

    def loop(system, x, m, rtol, atol, maxiter):
        if system.csr is not None and not system.properties.symmetric:
            return 0, -1, [system.residual_norm(x)]  # CG's theory needs A = A^T; do not iterate
        return _kernels.cg(system.operator, system.b, x, m, rtol, atol, maxiter, callback)

    return _run("cg", loop, A, b, x0, M, rtol, atol, maxiter, lambda n: 10 * n)


def run_bicgstab(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None) -> SolveResult:
    """Right-preconditioned BiCGStab for general A; info -3 on rho/omega breakdown. maxiter default 10 n."""

    def loop(system, x, m, rtol, atol, maxiter):
        return _kernels.bicgstab(system.operator, system.b, x, m, rtol, atol, maxiter, callback)

    return _run("bicgstab", loop, A, b, x0, M, rtol, atol, maxiter, lambda n: 10 * n)


def run_gmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, restart=20, maxiter=None, M=None, callback=None,
              callback_type="pr_norm", flexible=False) -> SolveResult:
    """Restarted right-preconditioned GMRES(restart) (FGMRES when ``flexible``).

    Here ``maxiter`` counts inner iterations (default 10 n); :func:`gmres`
    converts SciPy's restart cycles.
    """
    if isinstance(restart, bool) or not isinstance(restart, (int, np.integer)) or restart < 1:
        raise ValueError(f"restart must be a positive integer, got {restart!r}")
    if callback_type not in ("x", "pr_norm", "legacy"):
        raise ValueError(f"Unknown callback_type: {callback_type!r}")

    def loop(system, x, m, rtol, atol, maxiter):
        native_type = "x" if callback_type == "x" else "pr_norm"  # "legacy" only changes maxiter's unit
        return _kernels.gmres(system.operator, system.b, x, m, min(int(restart), system.n), rtol, atol, maxiter,
                              callback, native_type, bool(flexible))

    result = _run("fgmres" if flexible else "gmres", loop, A, b, x0, M, rtol, atol, maxiter, lambda n: 10 * n)
    result.details["restart"] = int(restart)
    return result


def run_minres(A, b, x0=None, *, rtol=1e-5, shift=0.0, maxiter=None, M=None, callback=None) -> SolveResult:
    """MINRES for symmetric (possibly indefinite) A - shift I with SPD M; maxiter default 5 n."""
    shift = float(shift)
    if not np.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")

    def loop(system, x, m, rtol, atol, maxiter):
        return _kernels.minres(system.operator, system.b, x, m, shift, rtol, maxiter, callback)

    return _run("minres", loop, A, b, x0, M, rtol, 0.0, maxiter, lambda n: 5 * n, shift)


# ---------------------------------------------------------------- SciPy-compatible


def _scipy_setup(A, b, x0, M):
    """Validate once; build M once; resolve SciPy's x0="Mb" (start from M^{-1} b)."""
    system = linear_system(A, b)
    pc = _preconditioner_for(system, M)
    if isinstance(x0, str):
        if x0 != "Mb":
            raise ValueError(f"x0 must be an array, None or 'Mb', got {x0!r}")
        x0 = system.b if pc is None else pc.apply(system.b)
    return system, x0, pc


def _preconditioner_for(system: LinearSystem, M) -> Preconditioner | None:
    # a preconditioner named here lives for this solve only: it may share the system's arrays
    return make_preconditioner(M, system.csr if system.csr is not None else _as_shape(system), dtype=system.dtype,
                               share=True)


def _scipy_return(name: str, result: SolveResult, info_on_limit: int) -> tuple[np.ndarray, int]:
    info = result.info
    if info > 0:
        info = info_on_limit
    elif info < 0:
        reason = {
            -1: "the matrix is not symmetric positive definite (A != A^T or p^T A p <= 0); use gmres or bicgstab",
            -2: "the preconditioner is not symmetric positive definite (r^T M r <= 0)",
        }.get(info, "breakdown (division by ~0 or non-finite values)")
        warnings.warn(f"krylearn.{name} stopped at iteration {result.iterations}: {reason}; "
                      f"returning the last finite iterate (info={info})", RuntimeWarning, stacklevel=3)
    return result.x, info


def cg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """Drop-in for ``scipy.sparse.linalg.cg``: PCG, ``callback(xk)`` per iteration; returns (x, info)."""
    system, x0, pc = _scipy_setup(A, b, x0, M)
    result = run_cg(system, None, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=pc, callback=callback)
    return _scipy_return("cg", result, result.info)


def bicgstab(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None):
    """Drop-in for ``scipy.sparse.linalg.bicgstab``; returns (x, info)."""
    system, x0, pc = _scipy_setup(A, b, x0, M)
    result = run_bicgstab(system, None, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=pc, callback=callback)
    return _scipy_return("bicgstab", result, result.info)


def gmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, restart=None, maxiter=None, M=None, callback=None,
          callback_type=None):
    """Drop-in for ``scipy.sparse.linalg.gmres``: GMRES(restart), restart default 20.

    ``maxiter`` counts restart cycles (default 10 n), except with
    ``callback_type="legacy"`` (the default when a callback is given) where it
    counts inner iterations. ``callback`` receives the relative residual norm
    per inner iteration ("pr_norm", "legacy") or x per restart ("x").
    Returns (x, info) with info = maxiter when not converged.
    """
    if callback is not None and callback_type is None:
        warnings.warn("krylearn.gmres called without specifying `callback_type` (as in SciPy, the default "
                      "'legacy' makes maxiter count inner iterations); pass callback_type='pr_norm' or 'legacy'",
                      DeprecationWarning, stacklevel=2)
    callback_type = callback_type or "legacy"
    if callback_type not in ("x", "pr_norm", "legacy"):
        raise ValueError(f"Unknown callback_type: {callback_type!r}")
    restart = 20 if restart is None else restart
    system, x0, pc = _scipy_setup(A, b, x0, M)
    cycles = check_maxiter(maxiter, 10 * system.n)
    legacy = callback is not None and callback_type == "legacy"
    inner = cycles if legacy else cycles * min(int(restart), system.n)
    result = run_gmres(system, None, x0, rtol=rtol, atol=atol, restart=restart, maxiter=inner, M=pc, callback=callback,
                       callback_type=callback_type)
    return _scipy_return("gmres", result, max(cycles, 1))


def minres(A, b, x0=None, *, rtol=1e-5, shift=0.0, maxiter=None, M=None, callback=None, show=False,
           check=False):
    """Drop-in for ``scipy.sparse.linalg.minres`` on A - shift I; ``check`` tests the symmetry of
    A and M (ValueError if not), ``show`` prints a summary. Returns (x, info)."""
    system, x0, pc = _scipy_setup(A, b, x0, M)
    if check:
        _check_symmetric(system, pc)
    result = run_minres(system, None, x0, rtol=rtol, shift=shift, maxiter=maxiter, M=pc, callback=callback)
    if show:
        print(f"krylearn.minres: n={result.x.shape[0]} iterations={result.iterations} info={result.info} "
              f"||r||={result.residual_norm:.3e}")
    return _scipy_return("minres", result, result.info)


def _check_symmetric(system: LinearSystem, pc: Preconditioner | None) -> None:
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(system.n), rng.standard_normal(system.n)
    operators = [("matrix", lambda z: system.matvec(z.astype(system.dtype)))]
    if pc is not None:
        operators.append(("preconditioner", lambda z: pc.apply(z.astype(system.dtype))))
    eps = np.finfo(system.dtype).eps
    for label, op in operators:
        Au, Av = np.asarray(op(u), dtype=np.float64), np.asarray(op(v), dtype=np.float64)
        s, t = v @ Au, u @ Av
        if abs(s - t) > eps ** (1 / 3) * (np.linalg.norm(Au) * np.linalg.norm(v) + np.linalg.norm(Av) * np.linalg.norm(u)):
            raise ValueError(f"non-symmetric {label}")
