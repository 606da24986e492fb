"""Shared fixtures: small model problems and the path of the real matrices."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED_MATRICES = Path(os.environ.get("KRYLEARN_MATRICES", Path(__file__).resolve().parents[1].parent / "shared" / "matrices"))


@pytest.fixture(scope="session")
def shared_matrices() -> Path:
    if not SHARED_MATRICES.is_dir():
        pytest.skip(f"real matrices not found at {SHARED_MATRICES}")
    return SHARED_MATRICES


def poisson2d(m: int, dtype=np.float64) -> sp.csr_array:
    """5-point Laplacian on an m x m grid, Dirichlet boundary, n = m^2."""
    t = sp.diags_array([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(t, eye) + sp.kron(eye, t), dtype=dtype)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
