"""Solvers: Python drivers of the native Krylov loops and the SOR solver
(plus DCDM and Krylov recycling, imported from their own modules)."""
from .krylov import StopSolve, bicgstab, cg, gmres, minres, run_bicgstab, run_cg, run_gmres, run_minres
from .relaxation import sor

__all__ = ["StopSolve", "bicgstab", "cg", "gmres", "minres", "run_bicgstab", "run_cg", "run_gmres", "run_minres", "sor"]
