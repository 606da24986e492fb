"""Every real SuiteSparse matrix in the shared folder is solved by ``krylearn.solve`` with
defaults to a TRUE relative residual <= 1e-8, for b = A @ ones and for a seeded random b."""
from __future__ import annotations

import numpy as np
import pytest

import krylearn
from krylearn import io
from krylearn.bench.problems import shared_matrices_dir


def _names() -> list[str]:
    manifest = shared_matrices_dir() / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    rows = [line.split("\t") for line in manifest.read_text().splitlines()[1:] if line.strip()]
    return [row[0] for row in rows]


@pytest.mark.parametrize("name", _names() or ["<none>"])
def test_solve_real_matrix_with_defaults(name, shared_matrices):
    path = shared_matrices / f"{name}.mtx.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    A = io.read_matrix(path)
    rng = np.random.default_rng(2024)
    for b in (A @ np.ones(A.shape[0]), rng.standard_normal(A.shape[0])):
        result = krylearn.solve(A, b)
        relative = np.linalg.norm(b - A @ result.x) / np.linalg.norm(b)
        assert result.converged, result.details["attempts"]
        assert relative <= 1e-8, (name, result.method, result.preconditioner, relative)
        assert result.details["true_residual"] <= 1e-8 * np.linalg.norm(b)
