"""Fuzzing the core kernels with raw, mostly malformed CSR arrays.

Every example either raises a clean ValueError/TypeError or returns a result
that agrees with an independent NumPy reference. The fuzz runs in-process:
a crash (segfault, abort) kills pytest, which is the failure signal.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from krylearn import _kernels as K

VALUES = [-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]
INDEX_DTYPES = [np.int32, np.int64]
ODD_INDEX_DTYPES = [np.uint32, np.int16, np.float64]
ODD_VALUE_DTYPES = [np.complex128, np.int64, np.float16]


@st.composite
def raw_csr(draw):
    """(indptr, indices, data, n_cols): valid CSR, valid-then-perturbed, or random arrays, with random dtypes."""
    square = draw(st.booleans()) or draw(st.booleans())
    n_rows = draw(st.integers(0, 6))
    n_cols = n_rows if square else draw(st.integers(0, 6))
    mode = draw(st.sampled_from(["valid", "valid", "perturbed", "perturbed", "random"]))
    if mode == "random":
        indptr = draw(st.lists(st.integers(-2, 12), min_size=0, max_size=8))
        nnz = draw(st.integers(0, 12))
        indices = draw(st.lists(st.integers(-2, 8), min_size=nnz, max_size=nnz))
        data = draw(st.lists(st.sampled_from(VALUES), min_size=0, max_size=12))
    else:
        mask = draw(st.lists(st.lists(st.booleans(), min_size=n_cols, max_size=n_cols), min_size=n_rows, max_size=n_rows))
        with_diagonal = draw(st.booleans())
        indptr, indices, data = [0], [], []
        for i in range(n_rows):
            for j in range(n_cols):
                if mask[i][j] or (with_diagonal and i == j):
                    indices.append(j)
                    value = draw(st.sampled_from(VALUES + [0.0]))
                    data.append(value + (10.0 if i == j and draw(st.booleans()) else 0.0))
            indptr.append(len(indices))
        if mode == "perturbed":
            indptr, indices, data, n_cols = perturb(draw, indptr, indices, data, n_cols)
    index_dtype = draw(st.sampled_from(INDEX_DTYPES + ([draw(st.sampled_from(ODD_INDEX_DTYPES))] if draw(st.integers(0, 9)) == 0 else [])))
    other_index_dtype = index_dtype if draw(st.integers(0, 9)) else draw(st.sampled_from(INDEX_DTYPES))
    value_dtype = draw(st.sampled_from([np.float32, np.float64] * 10 + ODD_VALUE_DTYPES))
    with np.errstate(invalid="ignore"):  # odd dtypes wrap or truncate: still arrays to reject
        arrays = [
            np.asarray(indptr, dtype=np.int64).astype(index_dtype),
            np.asarray(indices, dtype=np.int64).astype(other_index_dtype),
            np.asarray(data, dtype=np.float64).astype(value_dtype),
        ]
    layout = draw(st.sampled_from(["contiguous"] * 8 + ["2d", "strided"]))
    if layout != "contiguous":
        k = draw(st.integers(0, 2))
        arrays[k] = arrays[k].reshape(1, -1) if layout == "2d" else np.repeat(arrays[k], 2)[::2]
    return arrays[0], arrays[1], arrays[2], n_cols


def perturb(draw, indptr, indices, data, n_cols):
    kind = draw(st.sampled_from(["indptr", "index", "swap", "duplicate", "nonfinite", "truncate", "n_cols"]))
    indptr, indices, data = list(indptr), list(indices), list(data)
    if kind == "indptr" and indptr:
        indptr[draw(st.integers(0, len(indptr) - 1))] += draw(st.sampled_from([-2, -1, 1, 2]))
    elif kind == "index" and indices:
        indices[draw(st.integers(0, len(indices) - 1))] = draw(st.sampled_from([-1, n_cols, n_cols + 5, -(2**31) + 1]))
    elif kind == "swap" and len(indices) > 1:
        k = draw(st.integers(0, len(indices) - 2))
        indices[k], indices[k + 1] = indices[k + 1], indices[k]
    elif kind == "duplicate" and indices:
        k = draw(st.integers(1, len(indices) - 1)) if len(indices) > 1 else 0
        indices[k] = indices[k - 1] if k else indices[k]
    elif kind == "nonfinite" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "truncate":
        which = draw(st.sampled_from(["indptr", "indices", "data"]))
        if which == "indptr":
            indptr = indptr[:-1]
        elif which == "indices":
            indices = indices[:-1]
        else:
            data = data[:-1]
    elif kind == "n_cols":
        n_cols = draw(st.sampled_from([-1, max(n_cols - 1, 0), n_cols + 1]))
    return indptr, indices, data, n_cols


def expected_error(indptr, indices, data, n_cols):
    """Independent validator: the exception type the kernels must raise, or None for valid CSR."""
    p, i, d = indptr, indices, data
    if d.dtype.kind == "c":
        return TypeError
    if p.dtype not in (np.int32, np.int64) or i.dtype not in (np.int32, np.int64) or p.dtype != i.dtype:
        return TypeError
    if d.dtype not in (np.float32, np.float64):
        return TypeError
    if any(a.ndim != 1 or not a.flags.c_contiguous for a in (p, i, d)):
        return ValueError
    if len(p) < 1 or n_cols < 0 or len(i) != len(d) or p[0] != 0 or np.any(np.diff(p) < 0) or p[-1] != len(i):
        return ValueError
    if len(i) and (i.min() < 0 or i.max() >= n_cols):
        return ValueError
    for r in range(len(p) - 1):
        if np.any(np.diff(i[p[r] : p[r + 1]]) <= 0):
            return ValueError
    if not np.all(np.isfinite(d)):
        return ValueError
    return None


def dense(M) -> np.ndarray:
    out = np.zeros(M.shape)
    for r in range(M.shape[0]):
        for k in range(M.indptr[r], M.indptr[r + 1]):
            out[r, M.indices[k]] = M.data[k]
    return out


def stored(M) -> np.ndarray:
    """Boolean mask of the stored entries (explicit zeros included)."""
    out = np.zeros(M.shape, bool)
    for r in range(M.shape[0]):
        out[r, M.indices[M.indptr[r] : M.indptr[r + 1]]] = True
    return out


def tolerance(M) -> float:
    return 1e-3 if M.dtype == np.float32 else 1e-9


def reference_sweep(A: np.ndarray, x: np.ndarray, b: np.ndarray, method: str, omega: float) -> np.ndarray:
    """One sweep in matrix form: (D/omega + L) x+ = b - (U + (1 - 1/omega) D) x, etc."""
    D = np.diag(np.diag(A))
    L, U = np.tril(A, -1), np.triu(A, 1)
    if method == "jacobi":
        return x + omega * (b - A @ x) / np.diag(A)
    if method == "sor_forward":
        return sla.solve_triangular(D / omega + L, b - (U + (1 - 1 / omega) * D) @ x, lower=True)
    if method == "sor_backward":
        return sla.solve_triangular(D / omega + U, b - (L + (1 - 1 / omega) * D) @ x, lower=False)
    return reference_sweep(A, reference_sweep(A, x, b, "sor_forward", omega), b, "sor_backward", omega)


def check_relax(M, A, data):
    n = A.shape[0]
    method = data.draw(st.sampled_from(["jacobi", "sor_forward", "sor_backward", "ssor"]))
    omega = data.draw(st.sampled_from([0.5, 1.0, 1.5]))
    b = np.asarray(data.draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n)), dtype=M.dtype)
    x0 = np.asarray(data.draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n)), dtype=M.dtype)
    x = x0.copy()
    if np.any(np.diag(A) == 0):
        with pytest.raises(ValueError, match="diagonal"):
            K.relax(M, x, b, method, omega=omega)
        return
    K.relax(M, x, b, method, omega=omega)
    ref = reference_sweep(A, x0.astype(np.float64), b.astype(np.float64), method, omega)
    np.testing.assert_allclose(x, ref, rtol=tolerance(M), atol=tolerance(M) * max(1.0, np.abs(ref).max(initial=0.0)))


def check_ic0(M, A):
    n = A.shape[0]
    if np.any(np.diag(A) <= 0):
        with pytest.raises(ValueError, match="diagonal"):
            K.ic0(M)
        return
    try:
        L, shift = K.ic0(M)
    except ValueError as exc:
        assert "broke down" in str(exc)
        return
    Ld = dense(L)
    assert np.all(np.triu(Ld, 1) == 0) and np.all(np.diag(Ld) > 0)
    pattern = np.tril(stored(M))
    shifted = A + shift * np.diag(np.diag(A))
    scale = np.abs(Ld) @ np.abs(Ld).T + np.abs(shifted)
    err = np.abs(Ld @ Ld.T - shifted)
    assert np.all(err[pattern] <= tolerance(M) * (scale[pattern] + 1)), (err, shift)
    assert L.nnz == int(pattern.sum()) and n == L.shape[0]


def has_full_diagonal(M) -> bool:
    return bool(np.all(np.diag(stored(M))))


def check_ilu0(M, A):
    if not has_full_diagonal(M):
        with pytest.raises(ValueError, match="diagonal"):
            K.ilu0(M)
        return
    try:
        LU, shift = K.ilu0(M)
    except ValueError as exc:
        assert "broke down" in str(exc)
        return
    F = dense(LU)
    Lm, Um = np.tril(F, -1) + np.eye(A.shape[0]), np.triu(F)
    shifted = A + shift * np.diag(np.diag(A))
    pattern = stored(M)
    scale = np.abs(Lm) @ np.abs(Um) + np.abs(shifted)
    err = np.abs(Lm @ Um - shifted)
    assert np.all(err[pattern] <= tolerance(M) * (scale[pattern] + 1)), (err, shift)


def check_trsv(M, A, data):
    n = A.shape[0]
    lower, transpose, unit = (data.draw(st.booleans()) for _ in range(3))
    b = np.asarray(data.draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n)), dtype=M.dtype)
    x = np.empty(n, M.dtype)
    tri = np.tril(A) if lower else np.triu(A)
    if unit:
        np.fill_diagonal(tri, 1.0)
    elif np.any(np.diag(A) == 0):
        with pytest.raises(ValueError, match="diagonal"):
            K.trsv(M, b, x, lower, transpose=transpose, unit_diagonal=unit)
        return
    K.trsv(M, b, x, lower, transpose=transpose, unit_diagonal=unit)
    system = tri.T if transpose else tri
    residual = np.abs(system @ x.astype(np.float64) - b)
    assert np.all(residual <= tolerance(M) * (np.abs(system) @ np.abs(x) + np.abs(b) + 1e-300) * n)


def check_preconditioners(M, A):
    n = A.shape[0]
    r = np.linspace(-1, 1, n).astype(M.dtype)
    factories = [lambda: K.jacobi_preconditioner(M), lambda: K.ssor_preconditioner(M, 1.2), lambda: K.ilu_preconditioner(M), lambda: K.ic_preconditioner(M)]
    for make in factories:
        try:
            P = make()
        except ValueError:
            continue
        try:
            z = P.apply(r)
        except ValueError as exc:
            assert "overflow" in str(exc)
            continue
        assert z.shape == (n,) and np.all(np.isfinite(z))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(arrays=raw_csr(), data=st.data())
def test_fuzzed_csr_arrays_never_crash(arrays, data):
    indptr, indices, values, n_cols = arrays
    error = expected_error(indptr, indices, values, n_cols)
    event(f"rejected with {error.__name__}" if error else "valid CSR")
    if error is not None:
        with pytest.raises(error):
            K.CsrMatrix(indptr, indices, values, n_cols)
        return
    M = K.CsrMatrix(indptr, indices, values, n_cols)
    A = dense(M)
    x_len = data.draw(st.sampled_from([n_cols] * 4 + [n_cols + 1, max(n_cols - 1, 0)]))
    x_dtype = data.draw(st.sampled_from([M.dtype] * 4 + [np.float32, np.float64, np.complex64]))
    x = np.linspace(-2, 2, x_len).astype(x_dtype)
    if x_dtype != M.dtype:
        with pytest.raises(TypeError):
            M.matvec(x)
    elif x_len != n_cols:
        with pytest.raises(ValueError, match="length"):
            M.matvec(x)
    else:
        np.testing.assert_allclose(M.matvec(x), A @ x.astype(np.float64), rtol=tolerance(M), atol=tolerance(M) * 10)
    if M.shape[0] != M.shape[1]:
        with pytest.raises(ValueError, match="square"):
            K.ic0(M)
        return
    event("square: relax, ic0, ilu0, trsv, preconditioners checked")
    check_relax(M, A, data)
    check_ic0(M, A)
    check_ilu0(M, A)
    check_trsv(M, A, data)
    check_preconditioners(M, A)
