"""The outcome of a krylearn solve."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SolveResult:
    """Solution of A x = b and how it was obtained.

    x: the solution (1-D, the system's float type).
    converged: True when ||b - A x|| <= max(atol, rtol ||b||) was reached.
    iterations: iterations of the method that produced ``x`` (0 for a direct solve).
    residuals: residual norms per iteration, starting with ||r0|| (float64).
    info: SciPy convention: 0 converged, > 0 iteration limit reached, < 0 breakdown.
    seconds: wall time of the whole call.
    method, preconditioner: what was actually used (e.g. "cg", "ic0").
    details: anything else; ``krylearn.solve`` lists every attempt under "attempts".
    """

    x: np.ndarray
    converged: bool
    iterations: int
    residuals: np.ndarray
    info: int
    seconds: float
    method: str
    preconditioner: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def residual_norm(self) -> float:
        """Last recorded residual norm (NaN when none was recorded)."""
        return float(self.residuals[-1]) if len(self.residuals) else float("nan")

    def __repr__(self) -> str:
        return (
            f"SolveResult(converged={self.converged}, method={self.method!r}, "
            f"preconditioner={self.preconditioner!r}, iterations={self.iterations}, info={self.info}, "
            f"residual_norm={self.residual_norm:.3e}, seconds={self.seconds:.3g}, n={self.x.shape[0]})"
        )
