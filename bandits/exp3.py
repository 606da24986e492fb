"""Exp3 (Auer et al. 2002), the classical adversarial bandit, as a baseline.

p_i proportional to exp(-eta_t L_i) with importance-weighted cumulative loss
estimates L_i (divided by the running mean loss) and the anytime rate
eta_t = sqrt(2 ln K / (K t)).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Learner, state_array


class Exp3(Learner):
    """Exponential weights on importance-weighted loss estimates."""

    def __init__(self, n_arms: int, *, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        self.cumulative = np.zeros(self.n_arms)

    def eta(self) -> float:
        k = max(self.n_arms, 2)
        return math.sqrt(2.0 * math.log(k) / (k * (self.t + 1)))

    def probabilities(self, context: float | None = None) -> np.ndarray:
        logits = -self.eta() * (self.cumulative - self.cumulative.min()) / self.scale
        w = np.exp(logits)
        return w / w.sum()

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        w = self.probabilities()[arm]
        self.cumulative[arm] += loss / w

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "cumulative": self.cumulative.tolist()}

    def _load(self, state: dict[str, Any]) -> None:
        self.cumulative = state_array(state, "cumulative", (self.n_arms,))
