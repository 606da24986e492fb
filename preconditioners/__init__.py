"""Preconditioners: the protocol, classical ones on the native kernels, AMG via PyAMG.

Every preconditioner applies z = M^{-1} r and can be passed as ``M`` to
``krylearn.solve``, ``krylearn.cg`` etc. or, via ``as_linear_operator()``, to SciPy.
"""
from .base import OperatorPreconditioner, Preconditioner, make_preconditioner
from .classical import AMG, IC0, ILU0, SSOR, CholeskyFactor, Jacobi

__all__ = [
    "AMG",
    "CholeskyFactor",
    "IC0",
    "ILU0",
    "Jacobi",
    "OperatorPreconditioner",
    "Preconditioner",
    "SSOR",
    "make_preconditioner",
]
