"""Model problems (seeded) and the real SuiteSparse matrices.

Every generator returns a ``scipy.sparse.csr_array`` in float64 with sorted
indices. Grids use Dirichlet boundaries, so the Laplacians are SPD.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp


def _second_difference(m: int) -> sp.csr_array:
    return sp.csr_array(sp.diags_array([-np.ones(m - 1), 2.0 * np.ones(m), -np.ones(m - 1)], offsets=[-1, 0, 1]))


def _canonical(A) -> sp.csr_array:
    A = sp.csr_array(A, dtype=np.float64)
    A.sum_duplicates()
    A.sort_indices()
    return A


def poisson2d(m: int) -> sp.csr_array:
    """5-point Laplacian on an m x m grid (n = m^2), unscaled stencil [-1, 4, -1]."""
    t, eye = _second_difference(m), sp.eye_array(m)
    return _canonical(sp.kron(t, eye) + sp.kron(eye, t))


def poisson3d(m: int) -> sp.csr_array:
    """7-point Laplacian on an m x m x m grid (n = m^3)."""
    t, eye = _second_difference(m), sp.eye_array(m)
    return _canonical(
        sp.kron(sp.kron(t, eye), eye) + sp.kron(sp.kron(eye, t), eye) + sp.kron(sp.kron(eye, eye), t)
    )


def anisotropic2d(m: int, epsilon: float = 1e-2) -> sp.csr_array:
    """-u_xx - epsilon u_yy on an m x m grid: strong coupling along x only."""
    t, eye = _second_difference(m), sp.eye_array(m)
    return _canonical(sp.kron(eye, t) + epsilon * sp.kron(t, eye))


def diffusion2d(kappa: np.ndarray) -> sp.csr_array:
    """-div(kappa grad u) on the cell grid of ``kappa`` (shape m x m), 5-point
    finite volumes with harmonic face averages and Dirichlet walls."""
    kappa = np.asarray(kappa, dtype=np.float64)
    if kappa.ndim != 2 or kappa.shape[0] != kappa.shape[1] or np.any(kappa <= 0) or not np.all(np.isfinite(kappa)):
        raise ValueError("kappa must be a square 2-D array of positive finite values")
    m = kappa.shape[0]
    idx = np.arange(m * m).reshape(m, m)
    harmonic = lambda a, b: 2.0 * a * b / (a + b)  # noqa: E731
    kx = harmonic(kappa[:-1, :], kappa[1:, :])  # faces between rows i and i+1
    ky = harmonic(kappa[:, :-1], kappa[:, 1:])
    diag = np.zeros((m, m))
    diag[:-1, :] += kx
    diag[1:, :] += kx
    diag[:, :-1] += ky
    diag[:, 1:] += ky
    # Dirichlet walls: a face to the boundary with the cell's own kappa (half cell -> factor 2).
    diag[0, :] += 2 * kappa[0, :]
    diag[-1, :] += 2 * kappa[-1, :]
    diag[:, 0] += 2 * kappa[:, 0]
    diag[:, -1] += 2 * kappa[:, -1]
    rows = np.concatenate([idx.ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    cols = np.concatenate([idx.ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()])
    vals = np.concatenate([diag.ravel(), -kx.ravel(), -kx.ravel(), -ky.ravel(), -ky.ravel()])
    return _canonical(sp.coo_array((vals, (rows, cols)), shape=(m * m, m * m)))


def high_contrast2d(m: int, contrast: float = 1e4, inclusions: int = 12, seed: int = 0) -> sp.csr_array:
    """Diffusion with square inclusions of conductivity ``contrast`` in a unit background."""
    rng = np.random.default_rng(seed)
    kappa = np.ones((m, m))
    for _ in range(inclusions):
        size = max(1, int(rng.integers(m // 16 + 1, m // 6 + 2)))
        i, j = rng.integers(0, m - size + 1, size=2)
        kappa[i : i + size, j : j + size] = contrast
    return diffusion2d(kappa)


def shared_matrices_dir() -> Path:
    """Folder of the real matrices: $KRYLEARN_MATRICES, else ``<repo>/../shared/matrices``, else ``./../shared/matrices``."""
    if os.environ.get("KRYLEARN_MATRICES"):
        return Path(os.environ["KRYLEARN_MATRICES"])
    candidates = [Path(__file__).resolve().parents[1].parent / "shared" / "matrices", Path.cwd().parent / "shared" / "matrices"]
    for path in candidates:
        if path.is_dir():
            return path
    return candidates[0]


def suitesparse_manifest() -> list[dict[str, str]]:
    """Rows of MANIFEST.tsv (name, n, nnz, kind) of the real matrices; empty if absent."""
    manifest = shared_matrices_dir() / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    lines = manifest.read_text().strip().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def load_suitesparse(name: str) -> sp.csr_array:
    """Read ``<name>.mtx.gz`` from the real-matrix folder as a canonical float64 CSR array."""
    path = shared_matrices_dir() / f"{name}.mtx.gz"
    if not path.is_file():
        raise FileNotFoundError(f"no real matrix {name!r} at {path}")
    with gzip.open(path, "rb") as fh:
        return _canonical(scipy.io.mmread(fh))
