"""ChebCB: contextual bandit for a scalar context (Khodak et al., ICLR 2024).

Each arm a keeps a penalised regression of its loss on Chebyshev features
phi(c) = (T_0(z), ..., T_d(z)) of the context mapped to z in [-1, 1]:

    theta_a = (P + sum phi phi^T)^{-1} sum phi * loss,   P = diag(lambda + s k^4), k = 0..d.

The k^4 weights are a smoothness prior (the Chebyshev coefficients of a smooth
loss curve decay; sum k^4 theta_k^2 measures its curvature): with few
observations of an arm its fit is a low-order polynomial, and the high orders
enter as the data supports them. So a high degree (12) resolves a loss curve
that is steep in part of the range without paying for 13 free coefficients
per arm early on. s is in units of observations (the data term grows with
their count), so it is independent of the loss's unit.

Arms are sampled by inverse-gap weighting (SquareCB, Foster & Rakhlin 2020)
of optimistic predicted losses, in units of the running mean loss m_t,

    l_a(c) = theta_a . phi(c) / m_t - o sqrt(phi^T (P + sum phi phi^T)^{-1} phi),

with gamma_t = exploration * sqrt(K t). The optimism o (0.02) shrinks an arm's
predicted loss where it has few observations near c: without it, a smooth fit
that never saw an arm near c extrapolates a confident "bad" there, and the
arm is never explored where it is best. Untried arms predict 0, i.e.
optimistically.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from krylearn import _kernels

from .base import ContextRange, Learner, state_array


def _check_settings(ridge: float, smoothness: float, optimism: float, exploration: float) -> None:
    """ValueError unless ridge and exploration are positive and smoothness and optimism are >= 0 (all finite)."""
    if not (math.isfinite(ridge) and ridge > 0) or not (math.isfinite(exploration) and exploration > 0):
        raise ValueError("ridge and exploration must be positive")
    for name, value in (("smoothness", smoothness), ("optimism", optimism)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


class ChebCB(Learner):
    """Per-arm penalised Chebyshev regression + optimistic inverse-gap-weighted sampling."""

    contextual = True

    def __init__(
        self,
        n_arms: int,
        context_range: tuple[float, float],
        *,
        degree: int = 12,
        ridge: float = 1e-3,
        smoothness: float = 2e-5,
        optimism: float = 0.02,
        exploration: float = 30.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, seed=seed)
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 0 <= degree <= 20:
            raise ValueError(f"degree must be an integer in [0, 20], got {degree!r}")
        _check_settings(ridge, smoothness, optimism, exploration)
        self.range = ContextRange(*context_range)
        self.degree, self.exploration, self.optimism = int(degree), float(exploration), float(optimism)
        d = self.degree + 1
        self.gram = np.zeros((self.n_arms, d, d))
        self.moment = np.zeros((self.n_arms, d))
        self._set_penalty(ridge, smoothness)

    def _set_penalty(self, ridge: float, smoothness: float) -> None:
        """P = diag(ridge + smoothness k^4); resets every arm's fit to the prior (theta 0, covariance P^-1)."""
        self.ridge, self.smoothness = float(ridge), float(smoothness)
        self._penalty = self.ridge + self.smoothness * np.arange(self.degree + 1.0) ** 4  # P's diagonal
        self._theta = np.zeros((self.n_arms, self.degree + 1))  # penalised solution per arm, refreshed on update
        self._covariance = np.repeat(np.diag(1.0 / self._penalty)[None], self.n_arms, axis=0)
        self._last_unit: tuple = (None, None)  # (context, z) of the last unit() call; the range may be new

    def unit(self, context: float | None) -> float:
        """The context clipped to the range (with a warning) and mapped to z in [-1, 1]; remembered for the
        last context, so a tuner's select and update on one context warn once."""
        if context is None or context != self._last_unit[0]:
            self._last_unit = (context, self.range.unit(context))
        return self._last_unit[1]

    def features(self, context: float | None) -> np.ndarray:
        """phi(context) = (T_0(z), ..., T_degree(z))."""
        return _kernels.chebyshev_features(self.unit(context), self.degree)

    def _refit(self, arm: int) -> None:
        """theta_arm = (P + G_arm)^{-1} m_arm and (P + G_arm)^{-1} itself, natively (one Cholesky
        factorisation; the learner runs once per solve, so its own overhead counts against the solves it
        saves). P + G_arm fails to be positive definite only through a corrupted state; lstsq still answers."""
        if not _kernels.chebcb_refit(self.gram, self.moment, self._penalty, self._theta, self._covariance, arm):
            self._refit_lstsq(arm)

    def _refit_lstsq(self, arm: int) -> None:
        precision = self.gram[arm] + np.diag(self._penalty)
        rhs = np.hstack([self.moment[arm][:, None], np.eye(self.degree + 1)])
        solution = np.linalg.lstsq(precision, rhs, rcond=None)[0]
        self._theta[arm], self._covariance[arm] = solution[:, 0], solution[:, 1:]

    def predict(self, context: float | None) -> np.ndarray:
        """Predicted loss of every arm on ``context`` (in the loss's own unit)."""
        return self._theta @ self.features(context)

    def gamma(self) -> float:
        return self.exploration * math.sqrt(self.n_arms * (self.t + 1))

    def probabilities(self, context: float | None = None) -> np.ndarray:
        """Inverse-gap weights of the optimistic predictions (module doc), natively in one call."""
        return _kernels.chebcb_probabilities(self._theta, self._covariance, self.unit(context), self.scale,
                                             self.optimism, self.gamma())

    def greedy(self, context: float | None = None) -> int:
        return int(np.argmin(self.predict(context)))

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        """gram_arm += phi phi^T, moment_arm += loss phi and the refit, natively in one call."""
        if not _kernels.chebcb_learn(self.gram, self.moment, self._penalty, self._theta, self._covariance, arm,
                                     self.unit(context), loss):
            self._refit_lstsq(arm)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "context_range": [self.range.low, self.range.high],
            "degree": self.degree,
            "ridge": self.ridge,
            "smoothness": self.smoothness,
            "optimism": self.optimism,
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
        ridge, exploration = float(state["ridge"]), float(state["exploration"])
        smoothness, optimism = (float(state.get(key, 0.0)) for key in ("smoothness", "optimism"))  # 0: older states
        _check_settings(ridge, smoothness, optimism, exploration)
        self.range = ContextRange(*state["context_range"])
        self._set_penalty(ridge, smoothness)
        self.exploration, self.optimism = exploration, optimism
        self.gram, self.moment = gram, moment
        for arm in range(self.n_arms):
            self._refit(arm)
