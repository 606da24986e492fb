"""Cheap matrix features, the context of the SolverTuner (one O(nnz) pass).

    log10 n, log10 (nnz / n), diagonal dominance, symmetry, positive diagonal,
    off-diagonal spread

diagonal dominance is the median over rows of |a_ii| / sum_{j != i} |a_ij|
(clipped to [0, 2]; 1 = weakly dominant); symmetry is 1 when
max |A - A^T| <= 1e-10 max |A| (krylearn's one symmetry test), else 0; positive diagonal is 1 when every
a_ii > 0; off-diagonal spread is log10 of the median over rows of
max_j |a_ij| / min_j |a_ij| (j != i, nonzeros; clipped to [0, 6]), which
separates anisotropic and high-contrast operators from isotropic ones.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from krylearn._validation import as_csr, is_symmetric

FEATURE_NAMES = ("log10_n", "log10_nnz_per_row", "diagonal_dominance", "symmetric", "positive_diagonal",
                 "off_diagonal_spread")


def matrix_features(csr: sp.csr_array) -> np.ndarray:
    """The feature vector (order of ``FEATURE_NAMES``) of a square sparse matrix."""
    n = csr.shape[0]
    diag = csr.diagonal()
    off = np.abs(csr).sum(axis=1) - np.abs(diag)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(off > 0, np.abs(diag) / np.where(off > 0, off, 1.0), 2.0)
    return np.array([
        np.log10(max(n, 1)),
        np.log10(max(csr.nnz, 1) / max(n, 1)),
        float(np.clip(np.median(ratio), 0.0, 2.0)),
        1.0 if is_symmetric(as_csr(csr, copy=False), rtol=1e-10) else 0.0,
        1.0 if np.all(diag > 0) else 0.0,
        off_diagonal_spread(csr),
    ])


def off_diagonal_spread(csr: sp.csr_array) -> float:
    """log10 of the median row ratio max |a_ij| / min |a_ij| over the nonzero off-diagonal entries."""
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    keep = (csr.indices != rows) & (csr.data != 0)
    if not keep.any():
        return 0.0
    values, rows = np.abs(csr.data[keep]), rows[keep]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ratio = np.maximum.reduceat(values, starts) / np.minimum.reduceat(values, starts)
    return float(np.clip(np.log10(np.median(ratio)), 0.0, 6.0))
