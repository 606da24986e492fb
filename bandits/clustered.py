"""Clustered inverse-gap-weighted bandit over a vector context (the learner of
the SolverTuner).

Contexts (feature vectors) are grouped online: a context joins the nearest
existing cluster within ``radius`` (Euclidean), else opens a new one. Each
cluster keeps the mean log-loss of every arm it has tried; an arm not yet
tried in a cluster is predicted from the other clusters: the cluster's best
mean plus that arm's gap to the best in the other clusters, averaged with
Gaussian weights exp(-d^2 / (2 bandwidth^2)) of the distance d between the
cluster centres, so similar matrices count most (the median of those gaps
for an arm no other cluster has tried). Such transferred predictions are only a prior: in each
cluster every available arm is tried once, most promising first, unless its
prediction is more than ``skip_factor`` times the best (so a configuration
that was 100x slower everywhere is not retried on every new kind of matrix).
After that, sampling is SquareCB's inverse-gap weighting with
gamma_c = exploration * sqrt(K t_c), t_c the cluster's count; gaps are in log
units, i.e. relative costs. ``available`` masks arms out (e.g. CG on a
nonsymmetric matrix).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .base import Learner, inverse_gap_weights, sample, state_array


class ClusteredIGW(Learner):
    """Per-cluster mean log-loss per arm, transfer across clusters, inverse-gap weighting."""

    contextual = True

    def __init__(self, n_arms: int, n_features: int, *, radius: float = 0.3, exploration: float = 20.0,
                 skip_factor: float = 1.5, bandwidth: float = 1.0, seed: int | None = None) -> None:
        super().__init__(n_arms, seed=seed)
        if not all(math.isfinite(v) and v > 0 for v in (radius, exploration, bandwidth)):
            raise ValueError("radius, exploration and bandwidth must be positive")
        if not (math.isfinite(skip_factor) and skip_factor >= 1):
            raise ValueError("skip_factor must be >= 1")
        self.n_features, self.radius, self.exploration = int(n_features), float(radius), float(exploration)
        self.skip_factor, self.bandwidth = float(skip_factor), float(bandwidth)
        self.centers = np.zeros((0, self.n_features))
        self.counts = np.zeros((0, self.n_arms))
        self.log_sums = np.zeros((0, self.n_arms))

    def _context(self, context) -> np.ndarray:
        if context is None:
            raise ValueError("ClusteredIGW needs a feature vector as context")
        z = np.asarray(context, dtype=np.float64).ravel()
        if z.shape != (self.n_features,) or not np.all(np.isfinite(z)):
            raise ValueError(f"context must be {self.n_features} finite features, got {context!r}")
        return z

    def cluster_of(self, context, create: bool = False) -> int:
        """Index of the cluster of ``context`` (-1 when none is within the radius and not ``create``)."""
        z = self._context(context)
        if len(self.centers):
            dist = np.linalg.norm(self.centers - z, axis=1)
            nearest = int(np.argmin(dist))
            if dist[nearest] <= self.radius:
                return nearest
        if not create:
            return -1
        self.centers = np.vstack([self.centers, z])
        self.counts = np.vstack([self.counts, np.zeros(self.n_arms)])
        self.log_sums = np.vstack([self.log_sums, np.zeros(self.n_arms)])
        return len(self.centers) - 1

    def predict(self, context) -> np.ndarray:
        """Predicted log-loss of every arm: its own mean in this cluster, else a prior (see the module doc)."""
        c = self.cluster_of(context)
        means = np.full((len(self.counts), self.n_arms), np.nan)
        np.divide(self.log_sums, self.counts, out=means, where=self.counts > 0)
        own = means[c] if c >= 0 else np.full(self.n_arms, np.nan)
        others = np.delete(np.arange(len(means)), c) if c >= 0 else np.arange(len(means))
        gaps = np.full(self.n_arms, np.nan)
        if len(others):
            with warnings.catch_warnings():  # a cluster with no arm tried yet has no best
                warnings.simplefilter("ignore", RuntimeWarning)
                gap = means[others] - np.nanmin(means[others], axis=1, keepdims=True)
            distance = np.linalg.norm(self.centers[others] - self._context(context), axis=1)
            weight = np.where(np.isnan(gap), 0.0, np.exp(-0.5 * (distance / self.bandwidth) ** 2)[:, None])
            total = weight.sum(axis=0)
            np.divide((np.nan_to_num(gap) * weight).sum(axis=0), total, out=gaps, where=total > 0)
        if np.all(np.isnan(gaps)):
            gaps = np.zeros(self.n_arms)
        gaps = np.where(np.isnan(gaps), np.nanmedian(gaps), gaps)  # an arm never tried elsewhere: a typical arm
        base = np.nanmin(own) if np.any(~np.isnan(own)) else 0.0
        return np.where(np.isnan(own), base + gaps, own)

    def probabilities(self, context=None, available=None) -> np.ndarray:
        mask = np.ones(self.n_arms, dtype=bool) if available is None else np.asarray(available, dtype=bool)
        if mask.shape != (self.n_arms,) or not mask.any():
            raise ValueError("available must mask at least one of the arms")
        predicted = self.predict(context)
        c = self.cluster_of(context)
        tried_here = self.counts[c] > 0 if c >= 0 else np.zeros(self.n_arms, dtype=bool)
        best_here = predicted[mask & tried_here].min() if np.any(mask & tried_here) else predicted[mask].min()
        to_try = mask & ~tried_here & (predicted <= best_here + math.log(self.skip_factor))
        if to_try.any():  # the most promising arm not yet tried in this cluster
            p = np.zeros(self.n_arms)
            p[np.flatnonzero(to_try)[np.argmin(predicted[to_try])]] = 1.0
            return p
        t_c = self.counts[c].sum() if c >= 0 else 0.0
        return inverse_gap_weights(predicted, self.exploration * math.sqrt(self.n_arms * (t_c + 1)), mask)

    def select(self, context=None, available=None) -> int:
        return sample(self.rng, self.probabilities(context, available))

    def greedy(self, context=None, available=None) -> int:
        predicted = self.predict(context)
        if available is not None:
            predicted = np.where(np.asarray(available, dtype=bool), predicted, np.inf)
        return int(np.argmin(predicted))

    def _learn(self, arm: int, loss: float, context) -> None:
        c = self.cluster_of(context, create=True)
        self.counts[c, arm] += 1
        self.log_sums[c, arm] += math.log(loss + 1e-12)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_features": self.n_features, "radius": self.radius,
                "exploration": self.exploration, "skip_factor": self.skip_factor, "bandwidth": self.bandwidth,
                "centers": self.centers.tolist(), "counts": self.counts.tolist(),
                "log_sums": self.log_sums.tolist()}

    @staticmethod
    def reorder_arms(state: dict[str, Any], saved_index: list[int]) -> dict[str, Any]:
        """A ``state_dict`` with its arms renumbered: arm j of the result is arm saved_index[j] of ``state``."""
        return {**state, **{key: [[row[old] for old in saved_index] for row in state[key]]
                            for key in ("counts", "log_sums")}}

    def _load(self, state: dict[str, Any]) -> None:
        if int(state["n_features"]) != self.n_features:
            raise ValueError(f"state has {state['n_features']} features, this learner {self.n_features}")
        k = len(state["centers"])
        centers = state_array(state, "centers", (k, self.n_features)) if k else np.zeros((0, self.n_features))
        counts = state_array(state, "counts", (k, self.n_arms)) if k else np.zeros((0, self.n_arms))
        log_sums = state_array(state, "log_sums", (k, self.n_arms)) if k else np.zeros((0, self.n_arms))
        if np.any(counts < 0):
            raise ValueError("negative counts")
        self.radius, self.exploration = float(state["radius"]), float(state["exploration"])
        self.skip_factor, self.bandwidth = float(state["skip_factor"]), float(state["bandwidth"])
        self.centers, self.counts, self.log_sums = centers, counts, log_sums
