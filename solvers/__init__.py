"""Solvers: Python drivers of the native Krylov loops and the SOR solver,
Krylov recycling (GCRO-DR, recycled CG) with system sorting. DCDM lives in
``krylearn.solvers.dcdm`` (imported on demand: it needs torch)."""
from .krylov import StopSolve, bicgstab, cg, gmres, minres, run_bicgstab, run_cg, run_gmres, run_minres
from .recycling import RecyclingSolver
from .relaxation import sor
from .sorting import solve_many, sort_systems

__all__ = [
    "RecyclingSolver", "StopSolve", "bicgstab", "cg", "gmres", "minres", "run_bicgstab", "run_cg", "run_gmres",
    "run_minres", "solve_many", "sor", "sort_systems",
]
