"""krylearn: learned and accelerated iterative linear solvers.

``krylearn.solve(A, b)`` for "just give me x" (robust automatic choice, see
:mod:`krylearn.api`); ``krylearn.cg/gmres/bicgstab/minres`` as drop-in
replacements for ``scipy.sparse.linalg``; ``krylearn.preconditioners`` and
``krylearn.io`` for the pieces.
"""
import os as _os

# The native kernels run many short OpenMP regions per Krylov iteration; with the
# default (spinning) wait policy an oversubscribed machine made them ~30x slower
# (msc04515 CG+IC(0): 25.7 s vs 0.78 s passive, 2 cores under load). Must be set
# before the kernels' OpenMP runtime loads; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from ._extras import MissingExtraError  # noqa: E402
from .api import solve  # noqa: E402
from .preconditioners import AMG, IC0, ILU0, SSOR, CholeskyFactor, Jacobi, Preconditioner, make_preconditioner  # noqa: E402
from .result import SolveResult  # noqa: E402
from .solvers.krylov import bicgstab, cg, gmres, minres  # noqa: E402
from .solvers.relaxation import sor  # noqa: E402

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
