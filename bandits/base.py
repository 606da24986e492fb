"""Common interface of the online learners over a finite set of arms.

A learner is asked for an arm (``select``), is told the loss of that arm
(``update``) and can be saved and restored (``state_dict`` /
``load_state_dict``, plain JSON-compatible values, so a saved state loads
without executing code). Losses are non-negative costs (iterations, seconds)
in any unit: every learner rescales them by the running mean of the losses it
has seen, so the same defaults work for 50 iterations and for 0.3 seconds.
"""
from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import warnings
from typing import Any

import numpy as np

from krylearn import _kernels


class Learner:
    """Base class: arm count, seeded generator, loss scale and state handling.

    Subclasses implement ``probabilities(context)`` and ``_learn(arm, loss,
    context)`` and extend ``state_dict``/``load_state_dict`` with their own
    statistics.
    """

    contextual = False

    def __init__(self, n_arms: int, *, seed: int | None = None) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, (int, np.integer)) or n_arms < 1:
            raise ValueError(f"a learner needs at least one arm, got n_arms={n_arms!r}")
        self.n_arms = int(n_arms)
        self.rng = np.random.default_rng(seed)
        self.t = 0  # number of updates so far
        self.loss_sum = 0.0

    # -- the interface ------------------------------------------------------
    def probabilities(self, context: float | None = None) -> np.ndarray:
        """Sampling distribution over the arms (non-negative, sums to 1)."""
        raise NotImplementedError

    def select(self, context: float | None = None) -> int:
        """Draw an arm from ``probabilities(context)``."""
        return sample(self.rng, self.probabilities(context))

    def greedy(self, context: float | None = None) -> int:
        """The arm the learner currently believes best (no exploration)."""
        return int(np.argmax(self.probabilities(context)))

    def update(self, arm: int, loss: float, context: float | None = None) -> None:
        """Feed back the loss of ``arm`` (played on ``context``)."""
        arm = self._check_arm(arm)
        loss = check_loss(loss)
        self._learn(arm, loss, context)
        self.t += 1
        self.loss_sum += loss

    def _learn(self, arm: int, loss: float, context: float | None) -> None:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Running mean of the losses seen (1 before the first positive loss)."""
        if self.t == 0 or self.loss_sum <= 0:
            return 1.0
        return self.loss_sum / self.t

    def _check_arm(self, arm: int) -> int:
        if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise ValueError(f"arm must be an integer in [0, {self.n_arms}), got {arm!r}")
        return int(arm)

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this learner is (JSON-compatible)."""
        return {
            "kind": type(self).__name__,
            "n_arms": self.n_arms,
            "t": self.t,
            "loss_sum": self.loss_sum,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from ``state_dict``; ValueError when it is corrupted or belongs to another learner."""
        with corrupted_state_errors(type(self).__name__):
            if not isinstance(state, dict):
                raise ValueError("the state must be a dict")
            if state["kind"] != type(self).__name__:
                raise ValueError(f"state of a {state['kind']!r}, not of a {type(self).__name__!r}")
            if int(state["n_arms"]) != self.n_arms:
                raise ValueError(f"state has {state['n_arms']} arms, this learner {self.n_arms}")
            t, loss_sum = int(state["t"]), float(state["loss_sum"])
            if t < 0 or not math.isfinite(loss_sum) or loss_sum < 0:
                raise ValueError("negative or non-finite counters")
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            self._load(state)
            self.t, self.loss_sum, self.rng = t, loss_sum, rng

    def _load(self, state: dict[str, Any]) -> None:
        """Subclasses restore their own statistics here (validated)."""


class corrupted_state_errors:
    """Context manager turning any error while reading a state into a clear ValueError."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError)):
            what = f"missing entry {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"corrupted or incompatible saved state for {self.owner}: {what}") from exc
        return False


def sample(rng: np.random.Generator, p) -> int:
    """Draw an index from the distribution ``p`` (inverse CDF: one uniform per draw).

    Plain Python over the K probabilities: for a tuner's few dozen arms that
    costs less than NumPy's per-call overhead, which a learner pays on every solve."""
    cdf = list(itertools.accumulate(p.tolist() if isinstance(p, np.ndarray) else p))
    return min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def check_loss(loss: float) -> float:
    """A loss must be a finite non-negative number."""
    try:
        value = float(loss)
    except (TypeError, ValueError):
        raise ValueError(f"loss must be a number, got {loss!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"loss must be finite and non-negative, got {loss!r}")
    return value


def state_array(state: dict[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read ``state[key]`` as a finite float array of the given shape (ValueError otherwise)."""
    array = np.asarray(state[key], dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{key!r} has shape {array.shape}, expected {shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{key!r} holds non-finite values")
    return array


class ContextRange:
    """Declared range [low, high] of a scalar context; values outside are clipped with a warning."""

    def __init__(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"context range must be finite with low < high, got ({low}, {high})")
        self.low, self.high = low, high

    def clip(self, context: float | None) -> float:
        if context is None:
            raise ValueError("this learner is contextual: pass context=<float in the declared range>")
        try:
            value = float(context)
        except (TypeError, ValueError):
            raise ValueError(f"context must be a real number, got {context!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"context must be finite, got {context!r}")
        if value < self.low or value > self.high:
            warnings.warn(
                f"context {value:g} outside the declared range [{self.low:g}, {self.high:g}]; clipped",
                RuntimeWarning,
                stacklevel=3,
            )
            value = min(max(value, self.low), self.high)
        return value

    def unit(self, context: float | None) -> float:
        """The clipped context mapped affinely to [-1, 1]."""
        value = self.clip(context)
        return 2.0 * (value - self.low) / (self.high - self.low) - 1.0


def inverse_gap_weights(predicted, gamma: float, available=None) -> np.ndarray:
    """SquareCB sampling (Foster & Rakhlin 2020): p_a = 1 / (K + gamma (yhat_a - yhat_best)) for
    every arm but the best, which takes the remaining mass. ``available`` masks arms out (K counts
    the available ones). Native (``_kernels.inverse_gap_weights``, shared with ChebCB's distribution)."""
    mask = None if available is None else np.ascontiguousarray(available, dtype=bool)
    return _kernels.inverse_gap_weights(np.ascontiguousarray(predicted, dtype=np.float64), float(gamma), mask)


def save_state(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj.state_dict()`` as JSON (atomically: a crash never leaves half a file)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as fh:
        json.dump(obj.state_dict(), fh, default=_json_default)
    os.replace(tmp, path)


def load_state(obj: Any, path: str | os.PathLike) -> Any:
    """Restore ``obj`` from a JSON file written by ``save_state``; ValueError when the file is corrupted."""
    try:
        with open(path) as fh:
            state = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupted saved state in {os.fspath(path)}: {exc}") from exc
    obj.load_state_dict(state)
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
