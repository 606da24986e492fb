"""SolverTuner: learn which solver configuration is fastest over a stream of systems.

An arm is a ``Configuration`` (method x preconditioner x omega); the loss is
the wall time to tolerance, preconditioner setup included; the context is the
vector of cheap matrix features (``krylearn.bandits.features``). Arms that
cannot apply are masked (CG, IC(0) and SSOR-PCG need a symmetric matrix). If
the chosen configuration fails (iteration limit, breakdown, a factorisation
that cannot be built) the tuner tries the next one it predicts best, up to
``max_attempts``, and charges the failed arm its own time plus
``failure_penalty`` times the time of the solve that succeeded. An exploratory
attempt (not the arm predicted best among those already tried on this kind of
matrix) gets a time budget of ``budget_factor`` times that arm's predicted
time; a Krylov solve still running when the budget is spent is stopped (no
answer is taken from it), so exploring a configuration that is 10x slower, or
never converges, on an expensive matrix costs the budget, not its full run. A
stopped attempt is a censored observation (slower than the budget), not a
failure: it is charged ``STOPPED_COST_FACTOR`` times the time it spent. Used
through ``krylearn.solve(A, b, method="auto", tuner=t)`` or ``t.solve(A, b)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import corrupted_state_errors
from .clustered import ClusteredIGW
from .features import FEATURE_NAMES, matrix_features

SOLVER_METHODS = ("cg", "gmres", "bicgstab", "sor", "ssor")
KRYLOV_METHODS = ("cg", "gmres", "bicgstab")  # the ones that take a callback, so a time budget can stop them
# A budget-stopped attempt is charged this multiple of the time it spent. Charging it the failure
# penalty instead (11x the successful solve) told the learner that a configuration merely slower than
# 2x the best here was 11x slower, and that figure then steered the untried-arm priors of every
# similar kind of matrix (replays of two measured stream tables: mean over 8 orderings x 3 seeds
# 1.250 -> 1.219 / 1.221 of the oracle with 2; 1.5 and 3 give 1.20-1.24).
STOPPED_COST_FACTOR = 2.0


def _checked_budget_factor(value) -> float | None:
    """``value`` as a float >= 1, or None (no exploration budget); ValueError otherwise."""
    if value is None:
        return None
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"budget_factor must be None or a number >= 1, got {value!r}")
    return float(value)


class _BudgetSpent(Exception):
    """Raised from a solver callback when an exploratory attempt has used up its time budget."""


@dataclass(frozen=True)
class Configuration:
    """One arm: ``method`` in SOLVER_METHODS, ``preconditioner`` a name understood by
    ``krylearn.preconditioners.make_preconditioner`` ("none", "jacobi", "ssor",
    "ic0", "ilu0", "amg"), ``omega`` for SSOR/SOR."""

    method: str
    preconditioner: str = "none"
    omega: float | None = None

    def __post_init__(self) -> None:
        if self.method not in SOLVER_METHODS:
            raise ValueError(f"method must be one of {SOLVER_METHODS}, got {self.method!r}")
        if self.omega is not None and not 0.0 < float(self.omega) < 2.0:
            raise ValueError(f"omega must lie in (0, 2), got {self.omega!r}")
        if self.method in ("sor", "ssor") and self.preconditioner != "none":
            raise ValueError("SOR/SSOR as a solver takes no preconditioner")
        if self.preconditioner == "ssor" and self.method != "cg":
            raise ValueError("the SSOR preconditioner is tuned for CG only")

    @property
    def label(self) -> str:
        omega = f"({self.omega:g})" if self.omega is not None else ""
        if self.method in ("sor", "ssor"):
            return f"{self.method}{omega}"
        return f"{self.method}+{self.preconditioner}{omega}"

    @property
    def needs_symmetric(self) -> bool:
        return self.method == "cg" or self.preconditioner in ("ic0", "ssor")


# A preference order: where the learner has no evidence (its predictions tie, as in a new kind of
# matrix early in a stream) it tries configurations in this order. Incomplete factorisations first
# (CG + IC(0) for SPD matrices, BiCGStab + ILU(0), a short recurrence without restarts, for the
# rest), then SSOR-CG (omega = 1, the parameter-free symmetric Gauss-Seidel, before 1.5), GMRES +
# ILU(0), AMG (a costly setup) and Jacobi last (cheap per iteration, but it hit the iteration cap on
# the hard matrices). Listed in storage order (Jacobi first) it made the tuner open most new kinds
# of SPD matrix with a CG + Jacobi solve that failed there; replays of three measured stream tables
# x 9 orderings x 3 seeds: 1.19-1.22 -> 1.08-1.10 of the per-system oracle, worst 1.40-1.55 -> 1.15-1.18.
DEFAULT_CONFIGURATIONS = (
    Configuration("cg", "ic0"),
    Configuration("bicgstab", "ilu0"),
    Configuration("cg", "ssor", 1.0),
    Configuration("cg", "ssor", 1.5),
    Configuration("gmres", "ilu0"),
    Configuration("cg", "amg"),
    Configuration("bicgstab", "amg"),
    Configuration("cg", "jacobi"),
    Configuration("gmres", "jacobi"),
)


def run_configuration(system, config: Configuration, *, rtol: float = 1e-8, atol: float = 0.0,
                      maxiter: int | None = None, x0=None, callback=None):
    """Solve a validated ``LinearSystem`` with one configuration; seconds include the setup."""
    from .omega_tuner import run_with_omega

    if config.method in ("sor", "ssor") or config.preconditioner == "ssor":
        method = config.method if config.method in ("sor", "ssor") else "cg"
        return run_with_omega(system, method, float(config.omega or 1.0), rtol=rtol, atol=atol, maxiter=maxiter,
                              x0=x0, callback=callback)
    from krylearn.preconditioners import make_preconditioner
    from krylearn.solvers import krylov

    start = time.perf_counter()
    pc = make_preconditioner(config.preconditioner, system.csr)
    runner = {"cg": krylov.run_cg, "gmres": krylov.run_gmres, "bicgstab": krylov.run_bicgstab}[config.method]
    result = runner(system, None, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=pc, callback=callback)
    result.seconds = time.perf_counter() - start
    return result


class SolverTuner:
    """Contextual bandit over solver configurations, loss = wall time to tolerance.

    configurations: the arms (default ``DEFAULT_CONFIGURATIONS``).
    radius, exploration, bandwidth: of the ``ClusteredIGW`` learner
    (feature-space cluster radius; inverse-gap-weighting strength; width of
    the similarity weights that transfer what other clusters learned).
    failure_penalty: a failed arm (no convergence, breakdown, no factorisation; not
    a budget stop) is charged its own time plus this factor times the time of
    the solve that finally succeeded.
    max_attempts: configurations tried per system before giving up.
    maxiter: iteration cap of every attempt when ``solve`` gets none (bounds
    what exploring a poor configuration can cost).
    budget_factor: time budget of an exploratory attempt, in units of the
    predicted time of the best configuration tried so far on similar matrices
    (None: no budget).
    """

    def __init__(self, configurations=DEFAULT_CONFIGURATIONS, *, radius: float = 0.3, exploration: float = 100.0,
                 bandwidth: float = 1.0, failure_penalty: float = 10.0, max_attempts: int = 3, maxiter: int = 2000,
                 budget_factor: float | None = 2.0, seed: int | None = None) -> None:
        self.configurations = tuple(configurations)
        if not self.configurations:
            raise ValueError("SolverTuner needs at least one configuration")
        if not all(isinstance(c, Configuration) for c in self.configurations):
            raise TypeError("configurations must be krylearn.bandits.Configuration objects")
        if len(set(self.configurations)) != len(self.configurations):
            raise ValueError("repeated configuration")
        if not (math.isfinite(failure_penalty) and failure_penalty >= 0) or int(max_attempts) < 1:
            raise ValueError("failure_penalty must be >= 0 and max_attempts >= 1")
        if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        self.budget_factor = _checked_budget_factor(budget_factor)
        self.failure_penalty, self.max_attempts, self.maxiter = float(failure_penalty), int(max_attempts), int(maxiter)
        self.learner = ClusteredIGW(len(self.configurations), len(FEATURE_NAMES), radius=radius,
                                    exploration=exploration, bandwidth=bandwidth, seed=seed)
        self.history: list[dict[str, Any]] = []

    def available(self, symmetric: bool, method: str = "auto", M="auto") -> np.ndarray:
        """Mask of the arms allowed for a system (symmetry, and the user's method/M if not "auto")."""
        mask = np.array([symmetric or not c.needs_symmetric for c in self.configurations])
        if method not in (None, "auto"):
            mask &= np.array([c.method == method for c in self.configurations])
        if isinstance(M, str) and M != "auto":
            mask &= np.array([c.preconditioner == M for c in self.configurations])
        if not mask.any():
            raise ValueError(f"no configuration of this tuner fits method={method!r}, M={M!r}"
                             f"{'' if symmetric else ' for a nonsymmetric matrix'}")
        return mask

    def solve(self, A, b, *, method: str = "auto", M="auto", rtol: float = 1e-8, atol: float = 0.0,
              maxiter: int | None = None, x0=None, callback=None, context=None):
        """Solve with the configuration the tuner picks; returns the successful (or the last)
        ``SolveResult``; ``details["tuner"]`` lists every attempt."""
        from krylearn.solvers.krylov import linear_system

        if M is not None and not isinstance(M, str):
            raise ValueError("SolverTuner chooses the preconditioner; pass M as 'auto' or a name")
        system = linear_system(A, b)
        if system.csr is None:
            raise TypeError("SolverTuner needs the entries of A (a sparse or dense matrix)")
        features = matrix_features(system.csr) if context is None else np.asarray(context, dtype=np.float64).ravel()
        if features.shape != (len(FEATURE_NAMES),) or not np.all(np.isfinite(features)):
            raise ValueError(f"SolverTuner's context is the feature vector {FEATURE_NAMES}; got {context!r}")
        mask = self.available(bool(features[FEATURE_NAMES.index("symmetric")]), method, M)
        results: dict[int, Any] = {}

        def attempt(arm: int, budget: float) -> tuple[float, bool, int]:
            start = time.perf_counter()
            config = self.configurations[arm]
            watched = callback
            if math.isfinite(budget) and config.method in KRYLOV_METHODS:
                iterations = [0]

                def watched(*args):
                    iterations[0] += 1
                    if callback is not None:
                        callback(*args)
                    if time.perf_counter() - start > budget:
                        raise _BudgetSpent

            try:
                result = run_configuration(system, config, rtol=rtol, atol=atol,
                                           maxiter=self.maxiter if maxiter is None else maxiter, x0=x0,
                                           callback=watched)
            except _BudgetSpent:
                return time.perf_counter() - start, False, iterations[0]
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):  # e.g. IC(0) cannot be built
                return time.perf_counter() - start, False, 0
            results[arm] = result
            return result.seconds, result.converged, result.iterations

        attempts = self.play(features, mask, attempt)
        if not results:
            raise RuntimeError(f"every configuration tried failed on this system: {[a['configuration'] for a in attempts]}")
        result = results[attempts[-1]["arm"]] if attempts[-1]["arm"] in results else next(reversed(results.values()))
        result.details["tuner"] = {"attempts": attempts, "configuration": attempts[-1]["configuration"]}
        return result

    def play(self, features: np.ndarray, mask: np.ndarray, attempt) -> list[dict[str, Any]]:
        """One round: pick an arm for ``features`` among ``mask``, run ``attempt(arm, budget) ->
        (seconds, converged, iterations)`` (an attempt that runs past ``budget`` seconds is stopped
        there and reported as not converged, with seconds >= budget), fall back on failure, feed every
        attempt's loss to the learner and record the round in ``history``. Separated from ``solve`` so that a benchmark can
        replay measured costs."""
        attempts: list[dict[str, Any]] = []
        mask = np.asarray(mask, dtype=bool).copy()
        for _ in range(min(self.max_attempts, int(mask.sum()))):
            arm = self.learner.select(features, mask) if not attempts else self.learner.greedy(features, mask)
            budget = self.exploration_budget(features, mask, arm) if not attempts else math.inf
            seconds, converged, iterations = attempt(arm, budget)
            attempts.append({"arm": arm, "configuration": self.configurations[arm].label, "seconds": float(seconds),
                             "converged": bool(converged), "iterations": int(iterations),
                             "stopped": bool(not converged and seconds >= budget)})
            if converged:
                break
            mask[arm] = False
        success = attempts[-1]["seconds"] if attempts[-1]["converged"] else 0.0
        for record in attempts:
            if record["converged"]:
                record["loss"] = record["seconds"]
            elif record["stopped"]:
                record["loss"] = STOPPED_COST_FACTOR * record["seconds"]
            else:
                record["loss"] = record["seconds"] + self.failure_penalty * max(success, record["seconds"])
            self.learner.update(record["arm"], record["loss"], features)
        self.history.append({"t": len(self.history), "features": np.asarray(features).tolist(), "attempts": attempts,
                             "seconds": float(sum(a["seconds"] for a in attempts))})
        return attempts

    def exploration_budget(self, features: np.ndarray, mask: np.ndarray, arm: int) -> float:
        """Seconds ``arm`` may take on a matrix with ``features``: ``budget_factor`` times the
        predicted time of the best arm already tried in its cluster, unless ``arm`` is that arm
        (inf then, and when nothing was tried there yet or the budget is off)."""
        cluster = self.learner.cluster_of(features)
        if self.budget_factor is None or cluster < 0:
            return math.inf
        tried = np.flatnonzero((self.learner.counts[cluster] > 0) & mask)
        if not tried.size:
            return math.inf
        predicted = self.learner.predict(features)
        best = int(tried[np.argmin(predicted[tried])])
        return math.inf if arm == best else self.budget_factor * math.exp(predicted[best])

    def best_configuration(self, A) -> Configuration:
        """The configuration currently believed fastest for matrix ``A``."""
        from krylearn._validation import as_csr

        features = matrix_features(as_csr(A))
        mask = self.available(bool(features[FEATURE_NAMES.index("symmetric")]))
        return self.configurations[self.learner.greedy(features, mask)]

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "SolverTuner",
                "configurations": [[c.method, c.preconditioner, c.omega] for c in self.configurations],
                "failure_penalty": self.failure_penalty, "max_attempts": self.max_attempts, "maxiter": self.maxiter,
                "budget_factor": self.budget_factor, "learner": self.learner.state_dict(),
                "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict``; ValueError when corrupted or made for other configurations.
        The same configurations in another order (e.g. a state saved before the default order
        changed) are mapped onto this tuner's order."""
        with corrupted_state_errors("SolverTuner"):
            if not isinstance(state, dict) or state.get("kind") != "SolverTuner":
                raise ValueError("not a SolverTuner state")
            configs = tuple(Configuration(m, p, None if o is None else float(o)) for m, p, o in state["configurations"])
            if sorted(configs, key=repr) != sorted(self.configurations, key=repr):
                raise ValueError("the saved configurations differ from this tuner's")
            if configs != self.configurations:
                state = self._reordered_state(state, [configs.index(c) for c in self.configurations])
            failure_penalty, max_attempts = float(state["failure_penalty"]), int(state["max_attempts"])
            maxiter = int(state["maxiter"])
            budget_factor = state.get("budget_factor", self.budget_factor)  # absent in states saved before it existed
            budget_factor = _checked_budget_factor(None if budget_factor is None else float(budget_factor))
            if not (math.isfinite(failure_penalty) and failure_penalty >= 0 and max_attempts >= 1 and maxiter >= 1):
                raise ValueError("invalid failure_penalty, max_attempts or maxiter")
            history = [dict(h) for h in state["history"]]
            self.learner.load_state_dict(state["learner"])  # validates everything before changing anything
            self.failure_penalty, self.max_attempts, self.maxiter = failure_penalty, max_attempts, maxiter
            self.budget_factor, self.history = budget_factor, history

    def _reordered_state(self, state: dict[str, Any], saved_index: list[int]) -> dict[str, Any]:
        """``state`` with its arms renumbered: arm j of the result is arm saved_index[j] of ``state``
        (in the learner's state, by the learner, and in the arms recorded in the history)."""
        new_arm = {old: new for new, old in enumerate(saved_index)}
        history = [{**h, "attempts": [{**a, "arm": new_arm[int(a["arm"])]} for a in h["attempts"]]}
                   for h in state["history"]]
        return {**state, "learner": self.learner.reorder_arms(state["learner"], saved_index), "history": history}
