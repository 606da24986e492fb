"""Cheap matrix features, the context of the SolverTuner (native O(nnz) passes).

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

from krylearn._validation import as_csr, as_kernel_matrix, is_symmetric

FEATURE_NAMES = ("log10_n", "log10_nnz_per_row", "diagonal_dominance", "symmetric", "positive_diagonal",
                 "off_diagonal_spread")


def matrix_features(A) -> np.ndarray:
    """The feature vector (order of ``FEATURE_NAMES``) of a square sparse or dense matrix: two
    native O(nnz) passes (``CsrMatrix.row_statistics`` and the symmetry test) on its canonical CSR."""
    csr = as_csr(A, copy=False)
    kernel = as_kernel_matrix(csr)
    dominance, spread, positive_diagonal = kernel.row_statistics()
    n = csr.shape[0]
    return np.array([
        np.log10(n),
        np.log10(max(csr.nnz, 1) / n),
        float(np.clip(dominance, 0.0, 2.0)),
        1.0 if is_symmetric(csr, rtol=1e-10, kernel=kernel) else 0.0,
        1.0 if positive_diagonal else 0.0,
        0.0 if np.isnan(spread) else float(np.clip(np.log10(spread), 0.0, 6.0)),
    ])
