"""ChebCB: contextual bandit for a scalar context (Khodak et al., ICLR 2024).

Each arm a keeps a ridge regression of its loss on Chebyshev features
phi(c) = (T_0(z), ..., T_d(z)) of the context mapped to z in [-1, 1]:

    theta_a = (lambda I + sum phi phi^T)^{-1} sum phi * loss.

Arms are sampled by inverse-gap weighting (SquareCB, Foster & Rakhlin 2020)
of the predicted losses, with gamma_t = exploration * sqrt(K t) and gaps in
units of the running mean loss. Untried arms predict 0, i.e. optimistically.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from scipy.linalg import lapack

from .base import ContextRange, Learner, inverse_gap_weights, state_array


def chebyshev_features(z: float, degree: int) -> np.ndarray:
    """(T_0(z), ..., T_degree(z)) for z in [-1, 1] (three-term recurrence)."""
    phi = [1.0, z][: degree + 1]
    for _ in range(2, degree + 1):
        phi.append(2.0 * z * phi[-1] - phi[-2])
    return np.array(phi)


class ChebCB(Learner):
    """Per-arm Chebyshev ridge regression + inverse-gap-weighted sampling."""

    contextual = True

    def __init__(
        self,
        n_arms: int,
        context_range: tuple[float, float],
        *,
        degree: int = 5,
        ridge: float = 1e-3,
        exploration: float = 30.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, seed=seed)
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 <= degree <= 20:
            raise ValueError(f"degree must be an integer in [0, 20], got {degree!r}")
        if not (math.isfinite(ridge) and ridge > 0) or not (math.isfinite(exploration) and exploration > 0):
            raise ValueError("ridge and exploration must be positive")
        self.range = ContextRange(*context_range)
        self.degree, self.ridge, self.exploration = int(degree), float(ridge), float(exploration)
        d = self.degree + 1
        self.gram = np.zeros((self.n_arms, d, d))
        self.moment = np.zeros((self.n_arms, d))
        self._theta = np.zeros((self.n_arms, d))  # ridge solution per arm, refreshed on update
        self._eye = np.eye(d)

    def features(self, context: float | None) -> np.ndarray:
        return chebyshev_features(self.range.unit(context), self.degree)

    def _refit(self, arm: int) -> None:
        """theta_arm = (lambda I + G_arm)^{-1} m_arm by Cholesky (LAPACK dposv: one call, no Python-side
        checks; the learner runs once per solve, so its own overhead counts against the solves it saves)."""
        precision = self.gram[arm] + self.ridge * self._eye  # ridge read here: load_state_dict may change it
        _, theta, info = lapack.dposv(precision, self.moment[arm])
        if info != 0:  # not positive definite only through a corrupted state; lstsq still answers
            theta = np.linalg.lstsq(precision, self.moment[arm], rcond=None)[0]
        self._theta[arm] = theta

    def predict(self, context: float | None) -> np.ndarray:
        """Predicted loss of every arm on ``context`` (in the loss's own unit)."""
        return self._theta @ self.features(context)

    def gamma(self) -> float:
        return self.exploration * math.sqrt(self.n_arms * (self.t + 1))

    def probabilities(self, context: float | None = None) -> np.ndarray:
        return inverse_gap_weights(self.predict(context) / self.scale, self.gamma())

    def greedy(self, context: float | None = None) -> int:
        return int(np.argmin(self.predict(context)))

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        phi = self.features(context)
        self.gram[arm] += phi[:, None] * phi
        self.moment[arm] += loss * phi
        self._refit(arm)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "context_range": [self.range.low, self.range.high],
            "degree": self.degree,
            "ridge": self.ridge,
            "exploration": self.exploration,
            "gram": self.gram.tolist(),
            "moment": self.moment.tolist(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        if int(state["degree"]) != self.degree:
            raise ValueError(f"state has degree {state['degree']}, this learner {self.degree}")
        d = self.degree + 1
        gram = state_array(state, "gram", (self.n_arms, d, d))
        moment = state_array(state, "moment", (self.n_arms, d))
        self.range = ContextRange(*state["context_range"])
        self.ridge, self.exploration = float(state["ridge"]), float(state["exploration"])
        self.gram, self.moment = gram, moment
        for arm in range(self.n_arms):
            self._refit(arm)
