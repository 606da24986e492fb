"""Classical preconditioners on the native kernels (Jacobi, SSOR, IC(0), ILU(0),
a given Cholesky factor) and algebraic multigrid through PyAMG."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from krylearn._extras import require
from krylearn._validation import as_csr, as_kernel_matrix, is_symmetric

from .base import Preconditioner


class Jacobi(Preconditioner):
    """M^{-1} = omega D^{-1} with D = diag(A); needs a nonzero diagonal."""

    name = "jacobi"
    keeps_matrix = False

    def __init__(self, omega: float = 1.0) -> None:
        super().__init__()
        self.omega = float(omega)

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        self.native = _kernels.jacobi_preconditioner(as_kernel_matrix(csr), self.omega)  # keeps omega D^{-1} only


class SSOR(Preconditioner):
    """Symmetric SOR: M = (D/w + L) (D/w)^{-1} (D/w + U) / (2 - w), 0 < omega < 2."""

    name = "ssor"

    def __init__(self, omega: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < omega < 2.0:
            raise ValueError(f"SSOR needs 0 < omega < 2, got {omega}")
        self.omega = float(omega)

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        self._A = as_kernel_matrix(csr)
        self.native = _kernels.ssor_preconditioner(self._A, self.omega)


class IC0(Preconditioner):
    """Zero-fill incomplete Cholesky M = L L^T on tril(A)'s pattern (A symmetric).

    On a non-positive pivot the factorisation is retried on A + shift diag(A)
    with a growing shift; ``shift`` records the one used (0.0 when none).
    """

    name = "ic0"
    keeps_matrix = False

    def __init__(self, max_tries: int = 12) -> None:
        super().__init__()
        self.max_tries = int(max_tries)
        self.shift: float | None = None
        self.L = None

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        self.L, self.shift = _kernels.ic0(as_kernel_matrix(csr), self.max_tries)
        self.native = _kernels.ic_preconditioner(self.L)


class ILU0(Preconditioner):
    """Zero-fill incomplete LU on A's pattern; same pivot-shift strategy as :class:`IC0`."""

    name = "ilu0"
    keeps_matrix = False

    def __init__(self, max_tries: int = 12) -> None:
        super().__init__()
        self.max_tries = int(max_tries)
        self.shift: float | None = None
        self.LU = None

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        self.LU, self.shift = _kernels.ilu0(as_kernel_matrix(csr), self.max_tries)
        self.native = _kernels.ilu_preconditioner(self.LU)


class CholeskyFactor(Preconditioner):
    """M = L L^T for a given sparse lower-triangular L with positive diagonal
    (what a learned incomplete-Cholesky model predicts)."""

    name = "cholesky-factor"
    keeps_matrix = False

    def __init__(self, L) -> None:
        super().__init__()
        self._L_input = L

    def _build(self, csr: sp.csr_array) -> None:
        from krylearn import _kernels

        L = as_csr(self._L_input, dtype=csr.data.dtype)
        if L.shape != csr.shape:
            raise ValueError(f"factor L has shape {L.shape}, A has shape {csr.shape}")
        self.L = L
        self._L_kernel = as_kernel_matrix(L)
        self.native = _kernels.ic_preconditioner(self._L_kernel)


@contextmanager
def seeded_global_random(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded with ``seed`` inside the block and the caller's state restored
    after it: PyAMG draws the start vectors of its spectral-radius estimates from that generator, so
    a hierarchy built inside is reproducible and the caller's random stream is left alone."""
    caller_state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(caller_state)


class AMG(Preconditioner):
    """One V-cycle of PyAMG's smoothed aggregation (``kind="sa"``) or classical
    Ruge-Stuben (``kind="rs"``) hierarchy. Extra keyword arguments go to the
    PyAMG solver constructor. Needs the ``amg`` extra. PyAMG draws random start
    vectors (spectral-radius estimates) from NumPy's global generator; the setup
    runs under :func:`seeded_global_random` with ``seed``."""

    name = "amg"

    def __init__(self, kind: str = "sa", cycle: str = "V", seed: int = 0, **options) -> None:
        super().__init__()
        if kind not in ("sa", "rs"):
            raise ValueError(f"AMG kind must be 'sa' or 'rs', got {kind!r}")
        self.kind, self.cycle, self.seed, self.options = kind, cycle, int(seed), options
        self.name = "amg" if kind == "sa" else "amg-rs"
        self.hierarchy = None

    def _build(self, csr: sp.csr_array) -> None:
        pyamg = require("pyamg", "amg")
        A64 = sp.csr_matrix(csr, dtype=np.float64)
        with seeded_global_random(self.seed):
            if self.kind == "sa":
                options = dict(self.options)
                if "symmetry" not in options and not is_symmetric(csr):
                    options["symmetry"] = "nonsymmetric"
                self.hierarchy = pyamg.smoothed_aggregation_solver(A64, **options)
            else:
                self.hierarchy = pyamg.ruge_stuben_solver(A64, **self.options)
        self._op = self.hierarchy.aspreconditioner(cycle=self.cycle)

    def _apply(self, r: np.ndarray, out: np.ndarray) -> None:
        out[:] = self._op.matvec(r.astype(np.float64, copy=False))
