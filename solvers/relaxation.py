"""SOR / SSOR as stand-alone solvers on the native ``sor_solve`` loop."""
from __future__ import annotations

import time

import numpy as np

from krylearn import _kernels
from krylearn._validation import check_maxiter, check_tolerances
from krylearn.result import SolveResult

from .krylov import LinearSystem, initial_guess, linear_system


def sor(A, b, x0=None, *, omega=1.0, symmetric=False, rtol=1e-8, atol=0.0, maxiter=10000) -> SolveResult:
    """Solve A x = b by SOR sweeps x <- x + omega D^{-1} (b - A x) (Gauss-Seidel order;
    forward then backward sweeps, i.e. SSOR, when ``symmetric``), 0 < omega < 2.

    Stops when ||b - A x|| <= max(atol, rtol ||b||). info 0 converged, > 0
    maxiter reached, < 0 the iterate became non-finite (divergence).
    ``residuals`` holds ||r0|| and the final residual norm.
    """
    start = time.perf_counter()
    rtol, atol = check_tolerances(rtol, atol)
    omega = float(omega)
    if not 0.0 < omega < 2.0:
        raise ValueError(f"SOR needs 0 < omega < 2, got {omega}")
    maxiter = check_maxiter(maxiter, 10000)
    system = A if isinstance(A, LinearSystem) else linear_system(A, b)
    if system.csr is None:
        raise TypeError("SOR needs the entries of A; a LinearOperator is not supported")
    x = initial_guess(system, x0)
    method = "ssor" if symmetric else "sor"
    r0 = system.residual_norm(x)
    if not np.any(system.b):
        x[:] = 0
        return SolveResult(x, True, 0, np.zeros(1), 0, time.perf_counter() - start, method, "none", {"omega": omega})
    iterations, residual, info = _kernels.sor_solve(system.operator, system.b, x, omega, bool(symmetric), rtol, atol,
                                                    maxiter)
    return SolveResult(x, int(info) == 0, int(iterations), np.array([r0, residual], dtype=np.float64), int(info),
                       time.perf_counter() - start, method, "none", {"omega": omega})
