"""Read and write matrices and vectors: Matrix Market (``.mtx``, ``.mtx.gz``) and NumPy/SciPy ``.npz``/``.npy``.

Matrices come back as ``scipy.sparse.csr_array`` in canonical form (see
:func:`krylearn._validation.as_csr`); unknown extensions and corrupt files
raise ``ValueError`` naming the file.
"""
from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._validation import as_csr

MATRIX_EXTENSIONS = (".mtx", ".mtx.gz", ".npz")
VECTOR_EXTENSIONS = (".mtx", ".mtx.gz", ".npy", ".npz", ".txt")


def _extension(path: Path, allowed: tuple[str, ...], what: str) -> str:
    name = path.name.lower()
    for ext in sorted(allowed, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise ValueError(f"cannot read {what} from {str(path)!r}: unknown extension; supported: {', '.join(allowed)}")


def _read_mtx(path: Path):
    try:
        return scipy.io.mmread(path)
    except (ValueError, OSError, EOFError, IndexError, TypeError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{str(path)!r} is not a valid Matrix Market file: {exc}") from exc


def read_matrix(path: str | os.PathLike) -> sp.csr_array:
    """Read a square real matrix from ``.mtx``, ``.mtx.gz`` (symmetric storage expanded) or ``.npz``
    (written by ``scipy.sparse.save_npz`` or :func:`write_matrix`) as canonical CSR."""
    path = Path(path)
    ext = _extension(path, MATRIX_EXTENSIONS, "a matrix")
    if not path.is_file():
        raise FileNotFoundError(f"no such matrix file: {str(path)!r}")
    if ext == ".npz":
        try:
            A = sp.load_npz(path)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{str(path)!r} is not a SciPy sparse .npz file: {exc}") from exc
    else:
        A = _read_mtx(path)
    return as_csr(A)


def write_matrix(path: str | os.PathLike, A) -> None:
    """Write a matrix as Matrix Market (``.mtx``; gzipped for ``.mtx.gz``) or SciPy ``.npz``."""
    path = Path(path)
    ext = _extension(path, MATRIX_EXTENSIONS, "a matrix")
    csr = as_csr(A)
    if ext == ".npz":
        sp.save_npz(path, csr, compressed=True)
    elif ext == ".mtx.gz":
        with gzip.open(path, "wb") as fh:
            scipy.io.mmwrite(fh, sp.coo_matrix(csr))
    else:
        scipy.io.mmwrite(path, sp.coo_matrix(csr))


def read_vector(path: str | os.PathLike) -> np.ndarray:
    """Read a 1-D float vector from ``.npy``, ``.npz`` (its only array), ``.txt`` (whitespace
    separated) or a Matrix Market n x 1 array/matrix."""
    path = Path(path)
    ext = _extension(path, VECTOR_EXTENSIONS, "a vector")
    if not path.is_file():
        raise FileNotFoundError(f"no such vector file: {str(path)!r}")
    try:
        if ext == ".npy":
            v = np.load(path, allow_pickle=False)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise ValueError(f"expected exactly one array, found {archive.files}")
                v = archive[archive.files[0]]
        elif ext == ".txt":
            v = np.loadtxt(path, dtype=np.float64)
        else:
            v = _read_mtx(path)
            v = v.toarray() if sp.issparse(v) else np.asarray(v)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read a vector from {str(path)!r}: {exc}") from exc
    v = np.asarray(v)
    if np.issubdtype(v.dtype, np.complexfloating):
        raise NotImplementedError(f"{str(path)!r} holds a complex vector; krylearn supports real systems only")
    if not np.issubdtype(v.dtype, np.number):
        raise ValueError(f"{str(path)!r} does not hold a numeric vector (dtype {v.dtype})")
    if v.ndim == 2 and 1 in v.shape:
        v = v.reshape(-1)
    if v.ndim != 1:
        raise ValueError(f"{str(path)!r} holds an array of shape {v.shape}, expected a vector")
    return v.astype(np.float32 if v.dtype == np.float32 else np.float64, copy=False)
