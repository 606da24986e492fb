"""Shared fixtures: small model problems and the path of the real matrices."""
from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.fixture(scope="session")
def digests_per_thread_count():
    """``run(script)``: the distinct outputs (digests) of ``script`` run with 1 and with 2 OpenMP threads."""

    def run(script: str) -> set[str]:
        digests = set()
        for threads in ("1", "2"):
            env = dict(os.environ, OMP_NUM_THREADS=threads)
            proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            digests.add(proc.stdout.strip())
        return digests

    return run
