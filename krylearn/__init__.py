"""krylearn: learned and accelerated iterative linear solvers.

``krylearn.solve(A, b)`` for "just give me x" (robust automatic choice, see
:mod:`krylearn.api`); ``krylearn.cg/gmres/bicgstab/minres`` as drop-in
replacements for ``scipy.sparse.linalg``; ``krylearn.preconditioners`` and
``krylearn.io`` for the pieces.
"""
from ._extras import MissingExtraError
from .api import solve
from .preconditioners import AMG, IC0, ILU0, SSOR, CholeskyFactor, Jacobi, Preconditioner, make_preconditioner
from .result import SolveResult
from .solvers.krylov import bicgstab, cg, gmres, minres
from .solvers.relaxation import sor

__version__ = "0.1.0"

__all__ = [
    "AMG",
    "CholeskyFactor",
    "IC0",
    "ILU0",
    "Jacobi",
    "MissingExtraError",
    "Preconditioner",
    "SSOR",
    "SolveResult",
    "bicgstab",
    "cg",
    "gmres",
    "make_preconditioner",
    "minres",
    "solve",
    "sor",
]
