"""Tsallis-INF: online mirror descent with the 1/2-Tsallis entropy
(Zimmert & Seldin, JMLR 2021), the bandit of "Learning to Relax".

With cumulative loss estimates L_i and learning rate eta_t = 2 / sqrt(t), the
played distribution is

    w_i = 4 / (eta_t (L_i - x))^2,   x < min_i L_i chosen so that sum_i w_i = 1,

found by Newton's method on x (monotone from x = min L - 2 / eta_t). The
loss of the played arm enters as the importance-weighted estimate
(loss - B) / w_arm (the reduced-variance estimator of the paper: the
baseline B shifts every arm's estimate by the same amount in expectation, so
only the variance changes). Losses are rescaled by their running mean m_t, so
iteration counts and seconds work alike: estimates accumulate in the loss's
own unit (B = ``baseline`` * m_t at the time of the update) and the
distribution is computed from L / m_t, which keeps every past estimate in the
current unit even while m_t moves.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from krylearn import _kernels

from .base import Learner, state_array


def tsallis_weights(cumulative: np.ndarray, eta: float, tol: float = 1e-12, max_steps: int = 100) -> np.ndarray:
    """The 1/2-Tsallis-INF distribution for cumulative losses ``cumulative`` and rate ``eta`` (module doc),
    natively (``_kernels.tsallis_weights``: the learner runs once per solve)."""
    return _kernels.tsallis_weights(np.ascontiguousarray(cumulative, dtype=np.float64), eta, tol, max_steps)


class TsallisINF(Learner):
    """1/2-Tsallis-INF over ``n_arms`` arms, eta_t = rate / sqrt(t) (rate 2 as in the paper)."""

    def __init__(self, n_arms: int, *, rate: float = 2.0, baseline: float = 1.0, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be positive, got {rate!r}")
        if not (math.isfinite(baseline) and 0 <= baseline <= 1):
            raise ValueError(f"baseline must lie in [0, 1], got {baseline!r}")
        self.rate, self.baseline = float(rate), float(baseline)
        self.cumulative = np.zeros(self.n_arms)  # importance-weighted loss estimates, in the loss's unit

    def eta(self) -> float:
        return self.rate / math.sqrt(self.t + 1)

    def probabilities(self, context: float | None = None) -> np.ndarray:
        return tsallis_weights(self.cumulative / self.scale, self.eta())

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        w = self.probabilities()[arm]
        scale = (self.loss_sum + loss) / (self.t + 1) or 1.0  # running mean including this loss
        self.cumulative[arm] += (loss - self.baseline * scale) / w

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rate": self.rate, "baseline": self.baseline,
                "cumulative": self.cumulative.tolist()}

    def _load(self, state: dict[str, Any]) -> None:
        rate, baseline = float(state["rate"]), float(state["baseline"])
        if not (math.isfinite(rate) and rate > 0 and 0 <= baseline <= 1):
            raise ValueError("rate must be positive and baseline in [0, 1]")
        self.cumulative = state_array(state, "cumulative", (self.n_arms,))
        self.rate, self.baseline = rate, baseline
