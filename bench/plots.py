"""Convergence curves of a benchmark run as one PNG (matplotlib, extra ``plot``)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from krylearn._extras import require


def convergence_plot(
    curves: Mapping[str, Sequence[tuple[str, np.ndarray]]],
    path: str | Path,
    *,
    rtol: float | None = None,
    title: str = "Convergence",
) -> Path:
    """One log-scale panel per problem: relative residual ``||r_k|| / ||b||``
    against iteration k for each labelled history, the target ``rtol`` dashed.
    ``curves`` maps a problem name to ``(label, history)`` pairs; empty
    histories are skipped. Writes and returns ``path``."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = [name for name, series in curves.items() if any(len(h) > 1 for _, h in series)]
    if not names:
        raise ValueError("no convergence history to plot")
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for label, history in curves[name]:
            history = np.asarray(history, dtype=float)
            if len(history) > 1:
                ax.semilogy(np.arange(len(history)), np.maximum(history, 1e-300), label=label, linewidth=1.2)
        if rtol is not None:
            ax.axhline(rtol, color="k", linestyle="--", linewidth=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel("||r|| / ||b||", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
