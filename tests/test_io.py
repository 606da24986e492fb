"""krylearn.io: Matrix Market and .npz round trips, vectors, clear errors."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from krylearn.bench.problems import poisson2d

from krylearn import cli, io


@pytest.mark.parametrize("suffix", [".mtx", ".mtx.gz", ".npz"])
def test_matrix_round_trip(tmp_path, suffix, rng):
    A = sp.csr_array(poisson2d(6) + sp.diags_array(rng.uniform(0, 1, 35), offsets=1))
    path = tmp_path / f"A{suffix}"
    io.write_matrix(path, A)
    B = io.read_matrix(path)
    assert isinstance(B, sp.csr_array) and B.has_sorted_indices
    assert B.shape == A.shape and abs(B - A).max() == 0.0


def test_symmetric_matrix_market_is_expanded(tmp_path):
    A = poisson2d(4)
    path = tmp_path / "sym.mtx"
    scipy.io.mmwrite(path, sp.coo_matrix(A), symmetry="symmetric")
    assert "symmetric" in path.read_text().splitlines()[0]
    B = io.read_matrix(path)
    assert B.nnz == A.nnz and abs(B - A).max() == 0.0


def test_shared_matrix_reads(shared_matrices):
    path = shared_matrices / "1138_bus.mtx.gz"
    A = io.read_matrix(path)
    assert A.shape == (1138, 1138) and A.nnz == 4054
    assert abs(A - A.T).max() == 0.0


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".mtx", ".npz"])
def test_read_vector(tmp_path, suffix, rng):
    v = rng.standard_normal(9)
    path = tmp_path / f"v{suffix}"
    if suffix == ".npy":
        np.save(path, v)
    elif suffix == ".txt":
        np.savetxt(path, v)
    elif suffix == ".npz":
        np.savez(path, b=v)
    else:
        scipy.io.mmwrite(path, v.reshape(-1, 1))
    np.testing.assert_allclose(io.read_vector(path), v, rtol=1e-12)


def test_unknown_extension(tmp_path):
    path = tmp_path / "A.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match="unknown extension"):
        io.read_matrix(path)
    with pytest.raises(ValueError, match="unknown extension"):
        io.write_matrix(path, np.eye(2))
    with pytest.raises(ValueError, match="unknown extension"):
        io.read_vector(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.read_matrix(tmp_path / "nope.mtx")


@pytest.mark.parametrize("suffix,content", [
    (".mtx", b"%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n"),
    (".mtx", b"this is not a matrix\n"),
    (".mtx.gz", b"not gzip at all"),
    (".npz", b"PK\x03\x04 broken zip"),
])
def test_corrupt_files(tmp_path, suffix, content):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        io.read_matrix(path)


def test_corrupt_vector(tmp_path):
    path = tmp_path / "v.npy"
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError):
        io.read_vector(path)
    np.save(path, np.ones((3, 3)))
    with pytest.raises(ValueError, match="expected a vector"):
        io.read_vector(path)


def test_non_square_file_rejected(tmp_path):
    path = tmp_path / "rect.mtx"
    scipy.io.mmwrite(path, sp.coo_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="square"):
        io.read_matrix(path)


def test_cli_solve_round_trip(tmp_path, capsys):
    A = poisson2d(10)
    path = tmp_path / "A.mtx.gz"
    io.write_matrix(path, A)
    with gzip.open(path, "rt") as fh:
        assert fh.readline().startswith("%%MatrixMarket")
    out = tmp_path / "x.npy"
    assert cli.main(["solve", str(path), "--output", str(out)]) == 0
    assert "converged       True" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(out), np.ones(100), rtol=1e-6)
