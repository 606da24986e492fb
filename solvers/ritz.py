"""Ritz vectors of an SPD matrix and DCDM's training right-hand sides.

Lanczos with full reorthogonalisation builds an orthonormal basis V_m of the
Krylov space K_m(A, v0) and the tridiagonal T_m = V_m^T A V_m; the Ritz pairs
(theta_i, y_i = V_m s_i) from T_m s_i = theta_i s_i are A-orthogonal
(y_i^T A y_j = theta_i delta_ij) and approximate the extreme eigenpairs,
the low end first among the smooth modes that CG resolves worst.
DCDM trains on b = sum_i c_i y_i with c_i ~ N(0, 1) and the coefficients of
the lowest Ritz values weighted up (the paper: about 9x), normalised.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from krylearn._validation import as_csr


def lanczos(A, m: int, v0: np.ndarray | None = None, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m steps of Lanczos with full (twice-applied Gram-Schmidt) reorthogonalisation.

    Returns (alpha, beta, V): T = tridiag(beta, alpha, beta) of size k <= m and
    V (n x k) with orthonormal columns, V^T A V = T. Stops early (k < m) when
    the Krylov space is invariant."""
    A = as_csr(A, dtype=np.float64)
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"A must be square, got shape {A.shape}")
    m = int(m)
    if not 1 <= m <= n:
        raise ValueError(f"the number of Lanczos steps must be in [1, n={n}], got {m}")
    v = np.random.default_rng(seed).standard_normal(n) if v0 is None else np.array(v0, dtype=np.float64).ravel()
    if v.shape != (n,) or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValueError(f"v0 must be a finite non-zero vector of length {n}")
    V = np.zeros((n, m))
    alpha, beta = np.zeros(m), np.zeros(m)
    V[:, 0] = v / np.linalg.norm(v)
    scale = 0.0
    for j in range(m):
        w = A @ V[:, j]
        alpha[j] = V[:, j] @ w
        for _ in range(2):  # classical Gram-Schmidt twice: orthogonal to working precision
            w -= V[:, : j + 1] @ (V[:, : j + 1].T @ w)
        norm = np.linalg.norm(w)
        scale = max(scale, abs(alpha[j]), norm)
        if j + 1 == m:
            break
        if norm <= 1e-12 * scale:  # invariant subspace found
            return alpha[: j + 1], beta[:j], V[:, : j + 1]
        beta[j] = norm
        V[:, j + 1] = w / norm
    return alpha, beta[: m - 1], V


def ritz_pairs(A, m: int, *, method: str = "lanczos", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values (ascending) and A-orthogonal Ritz vectors (unit 2-norm columns).

    ``method="lanczos"``: the m Ritz pairs of an m-step Lanczos run;
    ``method="eigsh"``: the m smallest eigenpairs from ARPACK (shift-invert at
    0, for small n), which are exact Ritz pairs of the space they span."""
    A = as_csr(A, dtype=np.float64)
    if method == "lanczos":
        alpha, beta, V = lanczos(A, m, seed=seed)
        theta, S = sla.eigh_tridiagonal(alpha, beta)
        return theta, V @ S
    if method == "eigsh":
        n = A.shape[0]
        if not 1 <= m < n:
            raise ValueError(f"eigsh needs 1 <= m < n={n}, got {m}")
        v0 = np.random.default_rng(seed).standard_normal(n)
        theta, Y = spla.eigsh(A.tocsc(), k=m, sigma=0.0, which="LM", v0=v0)
        order = np.argsort(theta)
        return theta[order], Y[:, order]
    raise ValueError(f"method must be 'lanczos' or 'eigsh', got {method!r}")


def training_rhs(ritz_vectors: np.ndarray, count: int, *, low_fraction: float = 0.5, low_weight: float = 9.0,
                 seed: int = 0) -> np.ndarray:
    """``count`` unit right-hand sides (rows) b = sum_i c_i y_i, c_i ~ N(0, 1),
    with the coefficients of the lowest ``low_fraction`` of the Ritz vectors
    (columns, sorted by ascending Ritz value) multiplied by ``low_weight``."""
    Y = np.asarray(ritz_vectors, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] < 1:
        raise ValueError("ritz_vectors must be an n x m array with m >= 1")
    if not 0.0 <= low_fraction <= 1.0 or low_weight <= 0:
        raise ValueError("low_fraction must be in [0, 1] and low_weight positive")
    rng = np.random.default_rng(seed)
    weights = np.ones(Y.shape[1])
    weights[: int(round(low_fraction * Y.shape[1]))] = low_weight
    B = (rng.standard_normal((int(count), Y.shape[1])) * weights) @ Y.T
    return B / np.linalg.norm(B, axis=1, keepdims=True)
