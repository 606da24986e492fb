"""Bad input through the public API: a clear exception or SciPy's info convention, never a crash or NaN."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from krylearn.bench.problems import poisson2d

import krylearn
from krylearn._validation import as_csr

SOLVERS = ["cg", "gmres", "bicgstab", "minres"]


def call(name, A, b, **kwargs):
    if name == "solve":
        return krylearn.solve(A, b, **kwargs)
    return getattr(krylearn, name)(A, b, **kwargs)


@pytest.mark.parametrize("name", SOLVERS + ["solve", "sor"])
def test_non_square(name):
    with pytest.raises(ValueError, match="square"):
        call(name, sp.random_array((4, 5), density=0.5, random_state=0), np.ones(4))


@pytest.mark.parametrize("name", SOLVERS + ["solve"])
def test_wrong_b_shape(name):
    A = poisson2d(4)
    for b in (np.ones(15), np.ones((16, 2)), np.ones((4, 4)), np.ones((1, 16))):
        with pytest.raises(ValueError, match="shape"):
            call(name, A, b)


@pytest.mark.parametrize("name", SOLVERS + ["solve"])
def test_column_b_is_accepted_like_scipy(name):
    A = poisson2d(4)
    out = call(name, A, np.ones((16, 1)))
    x = out.x if name == "solve" else out[0]
    assert x.shape == (16,)
    assert np.linalg.norm(A @ x - 1) <= 1e-4


@pytest.mark.parametrize("name", SOLVERS + ["solve", "sor"])
def test_nan_inf_rejected(name):
    A = poisson2d(4)
    bad = A.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        call(name, bad, np.ones(16))
    with pytest.raises(ValueError, match="NaN or Inf"):
        call(name, A, np.r_[np.ones(15), np.inf])
    with pytest.raises(ValueError, match="NaN or Inf"):
        call(name, A, np.ones(16), x0=np.full(16, np.nan))


@pytest.mark.parametrize("name", SOLVERS + ["solve"])
def test_empty_system(name):
    with pytest.raises(ValueError, match="empty"):
        call(name, sp.csr_array((0, 0)), np.ones(0))


def test_unsorted_duplicate_entries_are_canonicalised():
    A = poisson2d(5)
    coo = sp.coo_array(A)
    rng = np.random.default_rng(0)
    order = rng.permutation(coo.nnz)
    half = coo.data[order] / 2  # every entry stored twice, in random order
    rows = np.r_[coo.row[order], coo.row[order]]
    cols = np.r_[coo.col[order], coo.col[order]]
    dup = sp.csr_matrix((np.r_[half, half], (rows, cols)), shape=A.shape)
    # build an unsorted, duplicated CSR by hand (csr_matrix from COO already sums, so do it raw)
    indptr = np.zeros(26, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    indptr = np.cumsum(indptr)
    by_row = np.argsort(rows, kind="stable")
    raw = sp.csr_matrix((np.r_[half, half][by_row], cols[by_row], indptr), shape=A.shape)
    assert not raw.has_sorted_indices or raw.nnz > A.nnz
    b = A @ np.ones(25)
    for M in (raw, dup):
        x, info = krylearn.cg(M, b, rtol=1e-10)
        assert info == 0 and np.linalg.norm(A @ x - b) <= 1e-9 * np.linalg.norm(b)
    assert raw.nnz == 2 * A.nnz  # the caller's matrix is not modified


def test_int64_indices_and_int_values():
    A = poisson2d(5)
    A64 = sp.csr_array((A.data.astype(np.int64), A.indices.astype(np.int64), A.indptr.astype(np.int64)), shape=A.shape)
    x, info = krylearn.cg(A64, np.ones(25, dtype=np.int32), rtol=1e-10)
    assert info == 0 and x.dtype == np.float64
    assert np.linalg.norm(A @ x - 1) <= 1e-9 * 5


def test_non_contiguous_and_read_only_arrays():
    A = poisson2d(5)
    data = A.data.copy()
    data.flags.writeable = False
    ro = sp.csr_array((data, A.indices, A.indptr), shape=A.shape)
    b = np.ones(50)[::2]  # strided view
    x0 = np.zeros(25)
    x0.flags.writeable = False
    for name in SOLVERS:
        x, info = getattr(krylearn, name)(ro, b, x0=x0, rtol=1e-10)
        assert info == 0 and np.linalg.norm(A @ x - b) <= 1e-9 * 5
    assert np.all(x0 == 0)
    dense_f = np.asfortranarray(A.toarray())
    assert krylearn.solve(dense_f, b).converged


@pytest.mark.parametrize("name", SOLVERS + ["solve"])
def test_complex_not_implemented(name):
    A = poisson2d(4)
    with pytest.raises(NotImplementedError, match="complex"):
        call(name, A.astype(np.complex128), np.ones(16))
    with pytest.raises(NotImplementedError, match="complex"):
        call(name, A, np.ones(16) * 1j)


@pytest.mark.parametrize("name", SOLVERS)
def test_zero_b_returns_zero_immediately(name):
    A = poisson2d(4)
    x, info = call(name, A, np.zeros(16), x0=np.ones(16))
    assert info == 0 and np.all(x == 0)


def test_zero_b_solve_and_sor():
    A = poisson2d(4)
    for result in (krylearn.solve(A, np.zeros(16), x0=np.ones(16)), krylearn.sor(A, np.zeros(16))):
        assert result.converged and result.iterations == 0 and np.all(result.x == 0)


def test_singular_matrix_never_returns_nan():
    A = poisson2d(6).tolil()
    A[7, :] = 0  # a zero row: singular
    A = sp.csr_array(A)
    b = np.ones(36)  # inconsistent with the zero row
    for name in SOLVERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = getattr(krylearn, name)(A, b, maxiter=200)
        assert info != 0 and np.all(np.isfinite(x))
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = krylearn.solve(A, b)
    assert not result.converged and result.info != 0 and np.all(np.isfinite(result.x))
    assert any(a["method"] == "direct" for a in result.details["attempts"])


@pytest.mark.parametrize("case", ["nonsymmetric", "indefinite"])
def test_cg_on_non_spd_warns_and_stays_finite(case):
    A = poisson2d(8)
    if case == "nonsymmetric":
        A = sp.csr_array(A + sp.diags_array(3.0 * np.ones(63), offsets=1) - sp.diags_array(3.0 * np.ones(63), offsets=-1))
    else:
        A = sp.csr_array(A - 4.0 * sp.eye_array(64))  # zero diagonal, eigenvalues on both sides of 0
    b = np.random.default_rng(3).standard_normal(64)
    with pytest.warns(RuntimeWarning, match="krylearn.cg"):
        x, info = krylearn.cg(A, b, maxiter=500)
    assert info < 0 and np.all(np.isfinite(x))


@pytest.mark.parametrize("name", SOLVERS + ["solve", "sor"])
def test_negative_tolerances(name):
    A = poisson2d(4)
    with pytest.raises(ValueError, match="rtol"):
        call(name, A, np.ones(16), rtol=-1e-3)
    with pytest.raises(ValueError, match="atol"):
        call(name, A, np.ones(16), atol=-1.0) if name != "minres" else krylearn.solve(A, np.ones(16), atol=-1.0)


@pytest.mark.parametrize("name", SOLVERS)
def test_maxiter_zero(name):
    A = poisson2d(4)
    x0 = np.full(16, 0.5)
    x, info = call(name, A, np.ones(16), x0=x0, maxiter=0)
    assert info == 1 and np.array_equal(x, x0)  # not converged (SciPy would say info=0)
    x, info = call(name, A, np.ones(16), x0=np.linalg.solve(A.toarray(), np.ones(16)), maxiter=0)
    assert info == 0
    with pytest.raises(ValueError, match="maxiter"):
        call(name, A, np.ones(16), maxiter=-1)


def test_maxiter_zero_solve_reports_x0():
    A = poisson2d(4)
    with pytest.warns(RuntimeWarning):
        result = krylearn.solve(A, np.ones(16), maxiter=0)
    assert not result.converged and np.all(result.x == 0)


def test_bad_method_and_preconditioner_names():
    A = poisson2d(4)
    with pytest.raises(ValueError, match="unknown method"):
        krylearn.solve(A, np.ones(16), method="lsqr")
    with pytest.raises(ValueError, match="unknown preconditioner"):
        krylearn.cg(A, np.ones(16), M="ilu9")
    with pytest.raises(TypeError, match="unexpected"):
        krylearn.solve(A, np.ones(16), tolerance=1e-3)
    with pytest.raises(TypeError):
        krylearn.cg(A, np.ones(16), M=object())
    with pytest.raises(ValueError, match="shapes|match"):
        krylearn.cg(A, np.ones(16), M=sp.eye_array(3))


def test_zero_pivots_shift_or_clear_error():
    A = sp.csr_array(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]))
    pc = krylearn.ILU0().setup(A)
    assert pc.shift > 0
    zero_diag = sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    zero_diag.eliminate_zeros()
    with pytest.raises(ValueError):
        krylearn.ILU0().setup(zero_diag)
    result = krylearn.solve(zero_diag, np.array([1.0, 2.0]))  # permuted to a zero-free diagonal
    assert result.converged and np.allclose(result.x, [2.0, 1.0])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_as_csr_canonical_form_property(n, nnz, seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, nnz), rng.integers(0, n, nnz)  # duplicates likely
    vals = rng.standard_normal(nnz)
    coo = sp.coo_array((vals, (rows, cols)), shape=(n, n))
    csr = as_csr(coo)
    assert csr.indices.dtype == csr.indptr.dtype == np.int32 and csr.data.dtype == np.float64
    for i in range(n):
        row = csr.indices[csr.indptr[i]:csr.indptr[i + 1]]
        assert np.all(np.diff(row) > 0)  # sorted, no duplicates
    dense = np.zeros((n, n))
    np.add.at(dense, (rows, cols), vals)
    np.testing.assert_allclose(csr.toarray(), dense, atol=1e-12)


def test_as_csr_shares_only_when_asked_and_canonical():
    A = poisson2d(6)
    assert as_csr(A, copy=False) is A
    assert not np.shares_memory(as_csr(A).data, A.data)  # default: a copy
    shared = as_csr(sp.csr_matrix(A), copy=False)
    assert isinstance(shared, sp.csr_array) and np.shares_memory(shared.data, A.data)
    unsorted = sp.csr_array((A.data[::-1].copy(), A.indices[::-1].copy(), A.indptr.copy()), shape=A.shape)
    unsorted.has_sorted_indices = False
    fixed = as_csr(unsorted, copy=False)  # not canonical: a sorted copy
    assert fixed is not unsorted and fixed.has_canonical_format
    assert np.array_equal(np.diff(fixed.indptr), np.diff(A.indptr))
    assert as_csr(A, dtype=np.float32, copy=False).dtype == np.float32  # other dtype: a copy
    bad = A.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        as_csr(bad, copy=False)


def test_is_symmetric_with_asymmetric_pattern_and_explicit_zeros():
    from krylearn._validation import is_symmetric

    A = sp.csr_array(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
    assert is_symmetric(A)
    with_zero = sp.csr_array((np.array([2.0, 1.0, 0.0, 1.0, 2.0, 1.0]), np.array([0, 1, 2, 0, 1, 2]),
                              np.array([0, 3, 5, 6])), shape=(3, 3))  # explicit (0, 2) zero, no (2, 0) entry
    assert is_symmetric(with_zero)
    assert not is_symmetric(sp.csr_array(np.array([[2.0, 1.0], [0.0, 2.0]])))
    assert not is_symmetric(sp.csr_array(np.array([[2.0, 1.0], [1.0 + 1e-9, 2.0]])))
