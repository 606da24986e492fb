"""Input checking shared by every public entry point.

Everything that reaches the native kernels goes through here: matrices become
canonical CSR (sorted column indices, no duplicates, contiguous arrays, int32
indices when they fit, float32/float64 finite values) and vectors become fresh
1-D contiguous copies of the system's float type. Bad input raises a clear
``ValueError`` / ``TypeError`` / ``NotImplementedError`` here, never deep in C++.
"""
from __future__ import annotations

import numbers
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

_INT32_MAX = np.iinfo(np.int32).max


def float_dtype(*dtypes) -> np.dtype:
    """The float type of a system (SciPy's rule): float32 only if every input is float32."""
    for dt in dtypes:
        if dt is not None and np.issubdtype(np.dtype(dt), np.complexfloating):
            raise NotImplementedError(
                "complex systems are not supported by krylearn (real float32/float64 only); "
                "use scipy.sparse.linalg for complex matrices"
            )
    known = [np.dtype(dt) for dt in dtypes if dt is not None]
    if known and all(dt == np.float32 for dt in known):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _reject_complex(dtype, what: str) -> None:
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        raise NotImplementedError(
            f"{what} is complex ({np.dtype(dtype)}); krylearn supports real float32/float64 systems only"
        )


def check_square(shape, what: str = "A") -> int:
    """Return n for an (n, n) shape with n >= 1, else ValueError."""
    if len(shape) != 2:
        raise ValueError(f"{what} must be 2-D, got shape {tuple(shape)}")
    if shape[0] != shape[1]:
        raise ValueError(f"{what} must be square, got shape {tuple(shape)}")
    if shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {tuple(shape)}); there is no system to solve")
    return int(shape[0])


def as_csr(A, dtype=None, copy: bool = True) -> sp.csr_array:
    """Canonical CSR of a square sparse or dense matrix.

    Sorted column indices, duplicates summed, contiguous arrays, int32 indices
    when nnz and n fit (else int64), values float32 (if ``A`` is float32 and no
    ``dtype`` is given) or float64, all finite. The input is never modified.
    With ``copy=False`` an input that already is canonical (CSR whose dtypes
    and SciPy's canonical-format flag say so) is returned without copying its
    arrays (a ``csr_array`` is returned itself): for callers that read A only
    during a call, not for state that outlives it.
    """
    if isinstance(A, LinearOperator):
        raise TypeError("a LinearOperator has no entries; this operation needs an explicit matrix")
    if sp.issparse(A):
        _reject_complex(A.dtype, "A")
        if not copy and A.format == "csr":
            shared = _canonical_view(A, dtype)
            if shared is not None:
                return shared
        csr = sp.csr_array(A, copy=True)
    else:
        arr = np.asarray(A)
        if arr.dtype == object:
            raise TypeError(f"A must be a SciPy sparse matrix, a dense array or a LinearOperator, got {type(A).__name__}")
        _reject_complex(arr.dtype, "A")
        if arr.ndim != 2:
            raise ValueError(f"A must be 2-D, got shape {arr.shape}")
        csr = sp.csr_array(arr)
    check_square(csr.shape)
    target = _target_dtype(csr.dtype, dtype)
    csr.sum_duplicates()  # also sorts indices
    index_dtype = _index_dtype(*csr.shape, csr.nnz)
    data = np.ascontiguousarray(csr.data, dtype=target)
    _check_finite(data)
    out = sp.csr_array(
        (data, np.ascontiguousarray(csr.indices, dtype=index_dtype), np.ascontiguousarray(csr.indptr, dtype=index_dtype)),
        shape=csr.shape,
    )
    out.has_canonical_format = True
    return out


def _target_dtype(input_dtype, dtype) -> np.dtype:
    target = np.dtype(dtype) if dtype is not None else float_dtype(input_dtype)
    if target not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {target}")
    return target


def _index_dtype(n_rows: int, n_cols: int, nnz: int):
    return np.int32 if max(n_rows, n_cols, nnz) <= _INT32_MAX else np.int64


def _check_finite(data: np.ndarray) -> None:
    if not np.isfinite(data).all():
        raise ValueError("A contains NaN or Inf entries")


def _canonical_view(A, dtype) -> sp.csr_array | None:
    """``A`` itself (for a csr_matrix: a csr_array sharing its arrays) if it is canonical, else None."""
    check_square(A.shape)
    target = _target_dtype(A.dtype, dtype)
    index_dtype = _index_dtype(*A.shape, A.nnz)
    arrays = (A.data, A.indices, A.indptr)
    if (A.data.dtype != target or A.indices.dtype != index_dtype or A.indptr.dtype != index_dtype
            or not all(a.ndim == 1 and a.flags.c_contiguous for a in arrays)
            or len(A.indptr) != A.shape[0] + 1 or not len(A.indices) == len(A.data) == A.indptr[-1]
            or not A.has_canonical_format):  # SciPy's cached flag, else one O(nnz) sortedness check
        return None
    _check_finite(A.data)
    if isinstance(A, sp.csr_array):
        return A
    view = sp.csr_array((A.data, A.indices, A.indptr), shape=A.shape, copy=False)
    view.has_canonical_format = True
    return view


class MatrixProperties:
    """Symmetry and diagonal of a canonical CSR A, each computed once, on first use.
    ``kernel``: the ``_kernels.CsrMatrix`` already wrapping ``csr``, if any (saves its validation)."""

    def __init__(self, csr: sp.csr_array, kernel=None) -> None:
        self._csr, self._kernel = csr, kernel

    @cached_property
    def symmetric(self) -> bool:
        return is_symmetric(self._csr, kernel=self._kernel)

    @cached_property
    def diagonal(self) -> np.ndarray:
        return self._csr.diagonal()

    @property
    def positive_diagonal(self) -> bool:
        return bool(np.all(self.diagonal > 0))

    @property
    def zero_free_diagonal(self) -> bool:
        return bool(np.all(self.diagonal != 0))


def is_symmetric(csr: sp.csr_array, rtol: float = 1e-12, kernel=None) -> bool:
    """max |A - A^T| <= rtol max |A| for a canonical CSR, by the native one-pass check
    (``kernel``: ``csr`` already wrapped by :func:`as_kernel_matrix`)."""
    max_difference, max_abs = (as_kernel_matrix(csr) if kernel is None else kernel).asymmetry()
    return max_difference <= rtol * max_abs


def as_kernel_matrix(csr: sp.csr_array):
    """Wrap a canonical CSR (from :func:`as_csr`) as a ``_kernels.CsrMatrix`` sharing its arrays."""
    from . import _kernels

    return _kernels.CsrMatrix(csr.indptr, csr.indices, csr.data, csr.shape[1])


def check_vector(v, n: int, name: str, dtype) -> np.ndarray:
    """A fresh 1-D contiguous copy of ``v`` in ``dtype``; shape (n,) or (n, 1) as SciPy accepts."""
    if sp.issparse(v):
        v = v.toarray()
    arr = np.asarray(v)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got {type(v).__name__}")
    _reject_complex(arr.dtype, name)
    if arr.shape not in ((n,), (n, 1)):
        raise ValueError(f"{name} must have shape ({n},) or ({n}, 1) to match A, got {arr.shape}")
    out = np.array(arr.reshape(n), dtype=dtype, order="C", copy=True)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or Inf")
    return out


def check_tolerances(rtol, atol) -> tuple[float, float]:
    """rtol, atol as non-negative finite floats (ValueError otherwise)."""
    for value, label in ((rtol, "rtol"), (atol, "atol")):
        if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{label} must be a finite non-negative number, got {value!r}")
    return float(rtol), float(atol)


def check_maxiter(maxiter, default: int) -> int:
    """``maxiter`` as a non-negative int, ``default`` when None."""
    if maxiter is None:
        return int(default)
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer or None, got {maxiter!r}")
    return int(maxiter)
