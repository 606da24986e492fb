"""Binned Tsallis-INF: the declared context range is cut into equal bins and
each bin runs its own Tsallis-INF (a simple contextual baseline to ChebCB)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import ContextRange, Learner
from .tsallis import TsallisINF


class BinnedTsallisINF(Learner):
    """One independent ``TsallisINF`` per context bin."""

    contextual = True

    def __init__(self, n_arms: int, context_range: tuple[float, float], *, bins: int = 10, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.range = ContextRange(*context_range)
        self.bins = int(bins)
        self.learners = [TsallisINF(self.n_arms) for _ in range(self.bins)]

    def bin_of(self, context: float | None) -> int:
        z = (self.range.unit(context) + 1.0) / 2.0
        return min(int(z * self.bins), self.bins - 1)

    def probabilities(self, context: float | None = None) -> np.ndarray:
        return self.learners[self.bin_of(context)].probabilities()

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        self.learners[self.bin_of(context)].update(arm, loss)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "context_range": [self.range.low, self.range.high],
            "bins": self.bins,
            "learners": [learner.state_dict() for learner in self.learners],
        }

    def _load(self, state: dict[str, Any]) -> None:
        if int(state["bins"]) != self.bins or len(state["learners"]) != self.bins:
            raise ValueError(f"state has {state['bins']} bins, this learner {self.bins}")
        learners = [TsallisINF(self.n_arms) for _ in range(self.bins)]
        for learner, sub in zip(learners, state["learners"]):
            learner.load_state_dict(sub)
        self.range = ContextRange(*state["context_range"])
        self.learners = learners
