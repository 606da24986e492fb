"""OmegaTuner: learn the relaxation parameter omega over a stream of solves.

For each system it asks a learner for an arm of the omega grid, solves with
SOR / SSOR as the solver (``method="sor"``/``"ssor"``) or with
SSOR-preconditioned CG (``method="cg"``), and feeds back the cost: the
iteration count (default) or the wall time. A solve that does not converge
(iteration limit or divergence) costs what it would have cost at the cap:
cost * maxiter / iterations, i.e. exactly ``maxiter`` iterations. Used
through ``krylearn.solve(A, b, method="sor", omega="bandit", tuner=t)`` or
directly (``t.solve``, ``t.solve_sequence``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .base import Learner, corrupted_state_errors
from .binned import BinnedTsallisINF
from .chebcb import ChebCB
from .exp3 import Exp3
from .thompson import ThompsonSampling
from .tsallis import TsallisINF

DEFAULT_OMEGAS = tuple(np.round(np.linspace(1.0, 1.95, 20), 10))
# learners by name: the ones without a context (also what the PETSc plugin's -krylearn_bandit takes), then all
CONTEXT_FREE_LEARNERS = {"tsallis": TsallisINF, "exp3": Exp3, "thompson": ThompsonSampling}
LEARNERS = {**CONTEXT_FREE_LEARNERS, "chebcb": ChebCB, "binned": BinnedTsallisINF}
METHODS = ("sor", "ssor", "cg")
COSTS = ("iterations", "seconds")


def check_omegas(omegas) -> np.ndarray:
    """A non-empty 1-D grid of distinct values in (0, 2)."""
    grid = np.asarray(omegas, dtype=np.float64).ravel() if omegas is not None else np.array(DEFAULT_OMEGAS)
    if grid.size == 0:
        raise ValueError("the omega grid is empty")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0) or np.any(grid >= 2):
        raise ValueError(f"every omega must lie in (0, 2) for SOR/SSOR to converge, got {grid.tolist()}")
    if np.unique(grid).size != grid.size:
        raise ValueError("the omega grid has repeated values")
    return grid


def make_learner(spec: str | Learner, n_arms: int, context_range, seed) -> Learner:
    """A learner from a name ("tsallis", "exp3", "thompson", "chebcb", "binned") or an instance."""
    if isinstance(spec, Learner):
        if spec.n_arms != n_arms:
            raise ValueError(f"the learner has {spec.n_arms} arms but the grid {n_arms} values")
        return spec
    if spec not in LEARNERS:
        raise ValueError(f"unknown learner {spec!r}; choose from {', '.join(LEARNERS)} or pass a Learner")
    cls = LEARNERS[spec]
    if cls.contextual:
        if context_range is None:
            raise ValueError(f"the contextual learner {spec!r} needs context_range=(low, high)")
        return cls(n_arms, context_range, seed=seed)
    return cls(n_arms, seed=seed)


def capped_cost(cost: float, converged: bool, iterations: int, maxiter: int) -> float:
    """The cost fed to the learner: ``cost`` when converged, else extrapolated to the iteration cap."""
    if converged:
        return cost
    return cost * maxiter / max(iterations, 1)


class OmegaTuner:
    """Bandit choice of omega for SOR, SSOR or SSOR-PCG over a sequence of systems.

    omegas: the arm grid (default 20 values in [1, 1.95]).
    learner: "tsallis" (default without context), "chebcb" (default with
    ``context_range``), "exp3", "thompson" (stationary sequences), "binned", or a ``Learner``.
    method: "sor", "ssor" (stand-alone solvers) or "cg" (SSOR-PCG).
    cost: "iterations" or "seconds".
    context_range: (low, high) of the scalar context passed to ``solve``.
    maxiter: iteration cap of every solve (default 10,000 for SOR/SSOR, 10 n for CG).
    """

    def __init__(self, omegas=None, *, learner: str | Learner | None = None, method: str = "sor",
                 cost: str = "iterations", context_range: tuple[float, float] | None = None,
                 maxiter: int | None = None, seed: int | None = None) -> None:
        self.omegas = check_omegas(omegas)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
        if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1):
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        if learner is None:
            learner = "chebcb" if context_range is not None else "tsallis"
        self.learner = make_learner(learner, len(self.omegas), context_range, seed)
        self.method, self.cost, self.maxiter = method, cost, maxiter
        self.history: list[dict[str, Any]] = []

    # -- solving ---------------------------------------------------------------
    def solve(self, A, b, *, method: str | None = None, M=None, rtol: float = 1e-8, atol: float = 0.0,
              maxiter: int | None = None, x0=None, callback=None, context: float | None = None):
        """Solve A x = b with a learned omega; returns the solver's ``SolveResult``
        (``details["tuner"]`` holds the arm, omega and the loss fed back)."""
        from krylearn.solvers.krylov import linear_system

        method = self._method(method, M)
        if self.learner.contextual and context is None:
            raise ValueError("this tuner's learner is contextual: pass context=<value> to solve()")
        system = linear_system(A, b)
        try:
            context_value = None if context is None else float(context)
        except (TypeError, ValueError):
            raise ValueError(f"context must be a real number, got {context!r}") from None
        arm = self.learner.select(context_value if self.learner.contextual else None)
        omega = float(self.omegas[arm])
        cap = maxiter if maxiter is not None else self.maxiter
        result = run_with_omega(system, method, omega, rtol=rtol, atol=atol, maxiter=cap, x0=x0, callback=callback)
        used_cap = cap if cap is not None else default_maxiter(method, system.n)
        raw = float(result.iterations) if self.cost == "iterations" else result.seconds
        loss = capped_cost(raw, result.converged, result.iterations, used_cap)
        self.learner.update(arm, loss, context_value if self.learner.contextual else None)
        record = {"t": len(self.history), "arm": arm, "omega": omega, "context": context_value,
                  "iterations": result.iterations, "seconds": result.seconds, "converged": result.converged,
                  "info": result.info, "loss": loss}
        self.history.append(record)
        result.details["tuner"] = dict(record)
        return result

    def solve_sequence(self, systems: Iterable, *, warm_start: bool = False, **options) -> list:
        """Solve each system of ``systems`` ((A, b) or (A, b, context) tuples) in order.
        ``warm_start`` starts every solve from the previous solution; ``options`` go to ``solve``."""
        results, previous = [], None
        for item in systems:
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise ValueError("every system must be a tuple (A, b) or (A, b, context)")
            A, b, context = item if len(item) == 3 else (*item, None)
            x0 = previous if warm_start and previous is not None and previous.shape == (A.shape[0],) else None
            result = self.solve(A, b, x0=x0, context=context, **options)
            previous = result.x
            results.append(result)
        return results

    def best_omega(self, context: float | None = None) -> float:
        """The omega the learner currently believes best (for ``context`` if contextual)."""
        return float(self.omegas[self.learner.greedy(context if self.learner.contextual else None)])

    def total_cost(self) -> float:
        return float(sum(h["loss"] for h in self.history))

    def _method(self, method: str | None, M) -> str:
        if method in (None, "auto"):
            method = self.method
        if method not in METHODS:
            raise ValueError(f"OmegaTuner solves with {METHODS}, not {method!r}")
        if method == "cg" and M not in (None, "auto", "ssor"):
            raise ValueError(f"OmegaTuner tunes the SSOR preconditioner of CG; M={M!r} is not supported")
        if method != "cg" and M not in (None, "auto", "none"):
            raise ValueError(f"SOR/SSOR as a solver takes no preconditioner, got M={M!r}")
        return method

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"kind": "OmegaTuner", "omegas": self.omegas.tolist(), "method": self.method, "cost": self.cost,
                "maxiter": self.maxiter, "learner": self.learner.state_dict(), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict``; ValueError when corrupted or made for another grid/learner."""
        with corrupted_state_errors("OmegaTuner"):
            if not isinstance(state, dict) or state.get("kind") != "OmegaTuner":
                raise ValueError("not an OmegaTuner state")
            omegas = check_omegas(state["omegas"])
            if omegas.shape != self.omegas.shape or not np.allclose(omegas, self.omegas):
                raise ValueError("the saved omega grid differs from this tuner's")
            if state["method"] not in METHODS or state["cost"] not in COSTS:
                raise ValueError("unknown method or cost")
            history = [dict(h) for h in state["history"]]
            if any(not math.isfinite(float(h["loss"])) for h in history):
                raise ValueError("non-finite loss in the history")
            self.learner.load_state_dict(state["learner"])
            self.method, self.cost, self.maxiter, self.history = state["method"], state["cost"], state["maxiter"], history


def default_maxiter(method: str, n: int) -> int:
    """Iteration cap when none is given (the solvers' own defaults)."""
    return 10000 if method in ("sor", "ssor") else 10 * n


def run_with_omega(system, method: str, omega: float, *, rtol: float = 1e-8, atol: float = 0.0,
                   maxiter: int | None = None, x0=None, callback=None):
    """One solve of a validated ``LinearSystem`` with relaxation parameter ``omega``:
    SOR/SSOR as the solver, or CG preconditioned by SSOR(omega)."""
    cap = maxiter if maxiter is not None else default_maxiter(method, system.n)
    if method in ("sor", "ssor"):
        if callback is not None:
            raise ValueError("SOR/SSOR as a solver does not take a callback; use method='cg'")
        from krylearn.solvers.relaxation import sor

        return sor(system, None, x0, omega=omega, symmetric=method == "ssor", rtol=rtol, atol=atol, maxiter=cap)
    from krylearn.preconditioners import SSOR
    from krylearn.solvers.krylov import run_cg

    if system.csr is None:
        raise TypeError("SSOR needs the entries of A; a LinearOperator is not supported")
    start = time.perf_counter()
    pc = SSOR(omega).setup(system.csr, share=True)  # built for this solve only
    result = run_cg(system, None, x0, rtol=rtol, atol=atol, maxiter=cap, M=pc, callback=callback)
    result.seconds = time.perf_counter() - start  # include the preconditioner setup
    return result
