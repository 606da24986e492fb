"""Core kernels of krylearn._kernels against SciPy/NumPy and dense references.

Covers CsrMatrix, BLAS-1, SpMV, relaxation, the SOR solver, IC(0)/ILU(0),
triangular solves and the native preconditioners, their determinism, and the
rejection of every kind of bad input with ValueError/TypeError.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from krylearn import _kernels as K

INDEX_DTYPES = [np.int32, np.int64]
VALUE_DTYPES = [np.float32, np.float64]
COMBOS = [(i, v) for i in INDEX_DTYPES for v in VALUE_DTYPES]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def poisson2d(m: int) -> sp.csr_array:
    t = sp.diags_array([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(t, eye) + sp.kron(eye, t))


def convection_diffusion(m: int, wind: float = 0.4) -> sp.csr_array:
    """Nonsymmetric upwind-free 1-D-per-direction convection-diffusion, diagonally dominant."""
    t = sp.diags_array([-(1 + wind) * np.ones(m - 1), 2.5 * np.ones(m), -(1 - wind) * np.ones(m - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(t, eye) + sp.kron(eye, t))


def random_dominant(n: int, density: float, rng, symmetric: bool = False) -> sp.csr_array:
    """Random sparse matrix with a strictly dominant positive diagonal."""
    R = sp.random_array((n, n), density=density, rng=rng, format="csr")
    R.data -= 0.5
    if symmetric:
        R = R + R.T
    d = abs(R).sum(axis=1) + 1.0
    A = sp.csr_array(R + sp.diags_array(d))
    A.sum_duplicates()
    return A


def kmat(A, index_dtype=np.int32, dtype=np.float64) -> K.CsrMatrix:
    A = sp.csr_array(A)
    A.sum_duplicates()
    return K.CsrMatrix(A.indptr.astype(index_dtype), A.indices.astype(index_dtype), A.data.astype(dtype), A.shape[1])


def to_scipy(M: K.CsrMatrix) -> sp.csr_array:
    return sp.csr_array((M.data, M.indices, M.indptr), shape=M.shape)


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_csr_matrix_attributes_and_matvec(index_dtype, dtype, rng):
    A = random_dominant(300, 0.03, rng)
    M = kmat(A, index_dtype, dtype)
    assert M.shape == (300, 300) and M.nnz == A.nnz
    assert M.dtype == np.dtype(dtype) and M.index_dtype == np.dtype(index_dtype)
    x = rng.standard_normal(300).astype(dtype)
    ref = A.astype(np.float64) @ x.astype(np.float64)
    y = M.matvec(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(ref).max())
    out = np.empty(300, dtype)
    assert M.matvec(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    np.testing.assert_array_equal(M.diagonal(), A.diagonal().astype(dtype))


def test_rectangular_matvec_and_diagonal(rng):
    A = sp.random_array((7, 11), density=0.4, rng=rng, format="csr")
    A.sum_duplicates()
    M = kmat(A)
    x = rng.standard_normal(11)
    np.testing.assert_allclose(M.matvec(x), A @ x, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(M.diagonal(), A.diagonal())


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_asymmetry_matches_the_dense_transpose(index_dtype, dtype, rng):
    one_sided = sp.csr_array(np.array([[1.0, 0, 0, 5.0], [0, 2.0, 0, 0], [0, 7.0, 3.0, 0], [0, 0, 0, 4.0]]))
    for A in (random_dominant(120, 0.05, rng), random_dominant(120, 0.05, rng, symmetric=True),
              sp.csr_array(sp.random_array((50, 50), density=0.1, rng=rng)), sp.csr_array((5, 5)), one_sided):
        A.sum_duplicates()
        dense = A.toarray().astype(dtype).astype(np.float64)
        difference, largest = kmat(A, index_dtype, dtype).asymmetry()
        assert difference == np.abs(dense - dense.T).max() and largest == np.abs(dense).max()
    with pytest.raises(ValueError, match="square"):
        kmat(sp.csr_array(np.ones((2, 3))), index_dtype, dtype).asymmetry()


def dense_row_statistics(dense: np.ndarray) -> tuple[float, float, bool]:
    """NumPy reference of CsrMatrix.row_statistics on a dense matrix (stored zeros are zeros)."""
    diagonal = np.diag(dense)
    off = np.abs(dense) - np.diag(np.abs(diagonal))
    off_sum = off.sum(axis=1)
    dominance = np.where(off_sum > 0, np.abs(diagonal) / np.where(off_sum > 0, off_sum, 1.0), 2.0)
    spreads = [row[row > 0].max() / row[row > 0].min() for row in off if (row > 0).any()]
    return float(np.median(dominance)), float(np.median(spreads)) if spreads else np.nan, bool(np.all(diagonal > 0))


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_row_statistics_match_numpy(index_dtype, dtype, rng):
    no_diagonal = sp.csr_array(np.array([[0.0, 2.0, 0], [1.0, 3.0, 0], [0, 0, 0]]))  # row 0: no a_00; row 2 empty
    stored_zero = sp.csr_array((np.array([4.0, 0.0, 1.0, 2.0]), np.array([0, 1, 0, 1]), np.array([0, 2, 4])), shape=(2, 2))
    for A in (random_dominant(121, 0.05, rng), random_dominant(120, 0.05, rng, symmetric=True),  # odd / even n
              sp.csr_array(sp.random_array((50, 50), density=0.1, rng=rng)) - 0.5 * sp.eye_array(50),
              sp.csr_array(sp.eye_array(4)), no_diagonal, stored_zero):
        dense = A.toarray().astype(dtype).astype(np.float64)
        dominance, spread, positive = kmat(A, index_dtype, dtype).row_statistics()
        expected = dense_row_statistics(dense)
        np.testing.assert_allclose([dominance, spread], expected[:2], rtol=1e-12)  # NaN spread when no off-diagonals
        assert positive == expected[2]
    with pytest.raises(ValueError, match="square"):
        kmat(sp.csr_array(np.ones((2, 3))), index_dtype, dtype).row_statistics()


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_spmv_alpha_beta(index_dtype, dtype, rng):
    A = random_dominant(200, 0.05, rng)
    M = kmat(A, index_dtype, dtype)
    x = rng.standard_normal(200).astype(dtype)
    y0 = rng.standard_normal(200).astype(dtype)
    y = y0.copy()
    K.spmv(M, x, y, alpha=-0.5, beta=2.0)
    ref = -0.5 * (A @ x.astype(np.float64)) + 2.0 * y0
    np.testing.assert_allclose(y, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(ref).max())
    y[:] = np.nan  # beta == 0: y is write-only
    K.spmv(M, x, y)
    np.testing.assert_allclose(y, A @ x.astype(np.float64), rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", VALUE_DTYPES)
def test_blas1_against_numpy(dtype, rng):
    for n in (0, 1, 5, 4097, 70_001):
        x = rng.standard_normal(n).astype(dtype)
        y = rng.standard_normal(n).astype(dtype)
        exact = float(np.dot(x.astype(np.float64), y.astype(np.float64)))
        assert K.dot(x, y) == pytest.approx(exact, rel=1e-12, abs=1e-12)
        assert K.nrm2(x) == pytest.approx(float(np.linalg.norm(x.astype(np.float64))), rel=1e-12, abs=0)
        y2 = y.copy()
        K.axpy(0.75, x, y2)
        np.testing.assert_allclose(y2, y + dtype(0.75) * x, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_nrm2_does_not_overflow_or_underflow():
    big = np.full(10, 1e200)
    tiny = np.full(10, 1e-200)
    assert K.nrm2(big) == pytest.approx(1e200 * np.sqrt(10), rel=1e-14)
    assert K.nrm2(tiny) == pytest.approx(1e-200 * np.sqrt(10), rel=1e-14)
    assert K.nrm2(np.zeros(3)) == 0.0


def test_axpy_in_place_alias():
    y = np.arange(5.0)
    K.axpy(2.0, y, y)
    np.testing.assert_array_equal(y, 3 * np.arange(5.0))


# --------------------------------------------------------------------------- determinism

_DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import hashlib, numpy as np, scipy.sparse as sp
    from krylearn import _kernels as K
    rng = np.random.default_rng(7)
    n = 250_000
    x = rng.standard_normal(n); y = rng.standard_normal(n)
    x32 = x.astype(np.float32); y32 = y.astype(np.float32)
    A = sp.random_array((n, n), density=8 / n, rng=rng, format="csr") + sp.eye_array(n) * 9
    A = sp.csr_array(A); A.sum_duplicates()
    M = K.CsrMatrix(A.indptr, A.indices, A.data, n)
    z = M.matvec(x)
    b = np.ones(n); xs = np.zeros(n)
    it = K.sor_solve(M, b, xs, 1.1, True, 1e-6, 0.0, 3)
    h = hashlib.sha256()
    for v in (K.dot(x, y), K.nrm2(x), K.dot(x32, y32), K.nrm2(y32), it[1]):
        h.update(np.float64(v).tobytes())
    h.update(z.tobytes()); h.update(xs.tobytes())
    S = sp.csr_array(A + A.T); S.sum_duplicates()
    for B in (A, S):  # one thread: the merge walk; more: the parallel search (same maxima)
        h.update(np.array(K.CsrMatrix(B.indptr, B.indices, B.data, n).asymmetry()).tobytes())
    print(h.hexdigest())
    """
)


def _digest(threads: str) -> str:
    import os

    env = dict(os.environ, OMP_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_reductions_bit_identical_across_thread_counts():
    assert _digest("1") == _digest("2")


def test_reductions_bit_identical_across_calls(rng):
    x = rng.standard_normal(100_000)
    y = rng.standard_normal(100_000)
    assert len({K.dot(x, y) for _ in range(20)}) == 1
    assert len({K.nrm2(x) for _ in range(20)}) == 1


# --------------------------------------------------------------------------- relaxation


def dense_relax(A: np.ndarray, x: np.ndarray, b: np.ndarray, method: str, omega: float, sweeps: int) -> np.ndarray:
    """Textbook element-by-element Jacobi/SOR/SSOR."""
    x = x.astype(np.float64).copy()
    n = len(b)

    def sor(order):
        for i in order:
            s = b[i] - A[i] @ x + A[i, i] * x[i]
            x[i] = (1 - omega) * x[i] + omega * s / A[i, i]

    for _ in range(sweeps):
        if method == "jacobi":
            x = x + omega * (b - A @ x) / np.diag(A)
        elif method == "sor_forward":
            sor(range(n))
        elif method == "sor_backward":
            sor(reversed(range(n)))
        else:
            sor(range(n))
            sor(reversed(range(n)))
    return x


@pytest.mark.parametrize("method", ["jacobi", "sor_forward", "sor_backward", "ssor"])
@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_relax_matches_dense_reference(method, index_dtype, dtype, rng):
    A = random_dominant(60, 0.1, rng)
    M = kmat(A, index_dtype, dtype)
    b = rng.standard_normal(60).astype(dtype)
    x0 = rng.standard_normal(60).astype(dtype)
    for omega, sweeps in ((1.0, 1), (0.7, 3), (1.4, 2)):
        x = x0.copy()
        K.relax(M, x, b, method, omega=omega, sweeps=sweeps)
        ref = dense_relax(A.toarray(), x0, b.astype(np.float64), method, omega, sweeps)
        np.testing.assert_allclose(x, ref, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)


def test_relax_zero_sweeps_is_identity(rng):
    M = kmat(poisson2d(5))
    x = rng.standard_normal(25)
    x0 = x.copy()
    K.relax(M, x, np.ones(25), "ssor", omega=1.2, sweeps=0)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype", VALUE_DTYPES)
def test_sor_solve_converges_on_poisson(symmetric, dtype):
    A = poisson2d(24)
    n = A.shape[0]
    M = kmat(A, np.int32, dtype)
    b = (A @ np.linspace(0, 1, n)).astype(dtype)
    x = np.zeros(n, dtype)
    rtol = 1e-8 if dtype == np.float64 else 1e-4
    iterations, residual, info = K.sor_solve(M, b, x, omega=1.75, symmetric=symmetric, rtol=rtol, atol=0.0, maxiter=5000)
    assert info == 0 and 0 < iterations < 5000
    true_res = np.linalg.norm(b.astype(np.float64) - A @ x.astype(np.float64))
    assert residual <= rtol * np.linalg.norm(b)
    assert true_res == pytest.approx(residual, rel=1e-2 if dtype == np.float32 else 1e-6)
    # the optimal omega beats Gauss-Seidel on the model problem
    x_gs = np.zeros(n, dtype)
    gs_iterations = K.sor_solve(M, b, x_gs, 1.0, symmetric, rtol, 0.0, 20000)[0]
    assert iterations < gs_iterations


def test_sor_solve_maxiter_and_initial_guess():
    A = poisson2d(10)
    M = kmat(A)
    b = np.ones(100)
    x = np.zeros(100)
    iterations, residual, info = K.sor_solve(M, b, x, 1.0, False, 1e-12, 0.0, 5)
    assert (iterations, info) == (5, 5) and residual > 1e-12
    x_exact = spla.spsolve(A.tocsc(), b)
    it0, res0, info0 = K.sor_solve(M, b, x_exact.copy(), 1.0, False, 1e-8, 0.0, 100)
    assert (it0, info0) == (0, 0) and res0 < 1e-8
    assert K.sor_solve(M, b, np.zeros(100), 1.0, False, 1e-8, 0.0, 0)[2] > 0
    assert K.sor_solve(M, np.zeros(100), np.zeros(100), 1.0, False, 1e-8, 0.0, 10)[:3:2] == (0, 0)


def test_sor_solve_reports_divergence_with_finite_x():
    # SOR diverges on this symmetric indefinite matrix; x must stay finite.
    A = sp.csr_array(np.array([[1.0, 3.0], [3.0, 1.0]]))
    x = np.zeros(2)
    iterations, residual, info = K.sor_solve(kmat(A), np.ones(2), x, 1.0, False, 1e-8, 0.0, 100_000)
    assert info == -1 and np.all(np.isfinite(x)) and np.isfinite(residual)


@pytest.mark.parametrize("call", ["sor_solve", "relax"])
def test_long_loops_can_be_interrupted(call):
    """A signal handler's exception (as Ctrl-C's KeyboardInterrupt) ends a long solve."""
    import signal

    def handler(signum, frame):
        raise RuntimeError("interrupted by the test")

    M = kmat(poisson2d(40))
    b, x = np.ones(1600), np.zeros(1600)
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(RuntimeError, match="interrupted by the test"):
            if call == "sor_solve":
                K.sor_solve(M, b, x, 1.0, False, 0.0, 0.0, 10**9)
            else:
                K.relax(M, x, b, "ssor", omega=1.0, sweeps=10**9)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_concurrent_python_threads_share_a_matrix_safely():
    """Kernels release the GIL; threads relaxing the same CsrMatrix (whose diagonal
    is cached on first use) give the same answers as one thread."""
    import threading

    A = poisson2d(60)
    n = A.shape[0]
    b = np.ones(n)
    expected = np.zeros(n)
    K.relax(kmat(A), expected, b, "ssor", omega=1.2, sweeps=3)
    for _ in range(10):
        M = kmat(A)
        results = [np.zeros(n) for _ in range(4)]
        threads = [threading.Thread(target=K.relax, args=(M, x, b, "ssor", 1.2, 3)) for x in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for x in results:
            np.testing.assert_array_equal(x, expected)


# --------------------------------------------------------------------------- factorizations


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_ic0_tridiagonal_is_exact_cholesky(index_dtype, dtype):
    n = 40
    A = sp.csr_array(sp.diags_array([-np.ones(n - 1), 2.5 * np.ones(n), -np.ones(n - 1)], offsets=[-1, 0, 1]))
    L, shift = K.ic0(kmat(A, index_dtype, dtype))
    assert shift == 0.0 and L.dtype == dtype and L.index_dtype == index_dtype
    exact = np.linalg.cholesky(A.toarray())
    np.testing.assert_allclose(to_scipy(L).toarray(), exact, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    # diagonal stored last in every row
    assert np.all(L.indices[L.indptr[1:] - 1] == np.arange(n))


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_ic0_reproduces_a_on_its_pattern(index_dtype, dtype):
    A = poisson2d(15)
    L, shift = K.ic0(kmat(A, index_dtype, dtype))
    assert shift == 0.0
    Ls = to_scipy(L).astype(np.float64)
    assert sp.tril(A).nnz == L.nnz and (sp.triu(Ls, 1)).nnz == 0
    LLt = (Ls @ Ls.T).toarray()
    mask = A.toarray() != 0
    np.testing.assert_allclose(LLt[mask], A.toarray()[mask], rtol=0, atol=RTOL[dtype] * 40)


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_ilu0_reproduces_a_on_its_pattern(index_dtype, dtype):
    A = convection_diffusion(12)
    LU, shift = K.ilu0(kmat(A, index_dtype, dtype))
    assert shift == 0.0
    F = to_scipy(LU).astype(np.float64)
    Lm = sp.tril(F, -1) + sp.eye_array(A.shape[0])
    Um = sp.triu(F)
    prod = (Lm @ Um).toarray()
    mask = A.toarray() != 0
    np.testing.assert_allclose(prod[mask], A.toarray()[mask], rtol=0, atol=RTOL[dtype] * 40)
    np.testing.assert_array_equal(LU.indices, A.indices)


def test_ilu0_of_tridiagonal_is_exact_lu():
    A = sp.csr_array(sp.diags_array([-1.3 * np.ones(29), 3.0 * np.ones(30), -0.6 * np.ones(29)], offsets=[-1, 0, 1]))
    LU, _ = K.ilu0(kmat(A))
    F = to_scipy(LU)
    P, Lref, Uref = sla.lu(A.toarray())
    assert np.allclose(P, np.eye(30))  # no pivoting needed: diagonally dominant
    np.testing.assert_allclose(sp.tril(F, -1).toarray() + np.eye(30), Lref, atol=1e-13)
    np.testing.assert_allclose(sp.triu(F).toarray(), Uref, atol=1e-13)


KERSHAW = np.array([[3.0, -2.0, 0.0, 2.0], [-2.0, 3.0, -2.0, 0.0], [0.0, -2.0, 3.0, -2.0], [2.0, 0.0, -2.0, 3.0]])


def test_ic0_breakdown_shift_on_kershaw_matrix():
    assert np.all(np.linalg.eigvalsh(KERSHAW) > 0)  # SPD, yet IC(0) breaks down
    A = sp.csr_array(KERSHAW)
    L, shift = K.ic0(kmat(A))
    assert shift > 0.0
    Ls = to_scipy(L).toarray()
    shifted = KERSHAW + shift * np.diag(np.diag(KERSHAW))
    mask = KERSHAW != 0
    np.testing.assert_allclose((Ls @ Ls.T)[mask], shifted[mask], atol=1e-12)
    with pytest.raises(ValueError, match="broke down"):
        K.ic0(kmat(A), max_tries=1)


def test_ilu0_breakdown_shift_and_failure():
    # a_11 - a_10 a_01 / a_00 = 1 - 1 = 0: zero pivot, cured by a shift
    A = sp.csr_array(np.array([[1.0, 1.0], [1.0, 1.0]]))
    LU, shift = K.ilu0(kmat(A))
    assert shift > 0.0
    F = to_scipy(LU).toarray()
    Lm, Um = np.tril(F, -1) + np.eye(2), np.triu(F)
    np.testing.assert_allclose(Lm @ Um, A.toarray() + shift * np.eye(2), atol=1e-14)
    # a stored zero on the diagonal cannot be shifted away
    with pytest.raises(ValueError, match="broke down"):
        K.ilu0(K.CsrMatrix(np.array([0, 2, 4], np.int32), np.array([0, 1, 0, 1], np.int32), np.array([0.0, 1.0, 1.0, 0.0]), 2))


# --------------------------------------------------------------------------- triangular solves


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("unit_diagonal", [False, True])
@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_trsv_matches_spsolve_triangular(lower, transpose, unit_diagonal, index_dtype, dtype, rng):
    A = random_dominant(80, 0.08, rng)  # the full matrix: trsv must ignore the other triangle
    M = kmat(A, index_dtype, dtype)
    tri = sp.tril(A) if lower else sp.triu(A)
    if unit_diagonal:
        tri = sp.csr_array(tri - sp.diags_array(tri.diagonal()) + sp.eye_array(80))
    system = sp.csr_array(tri.T if transpose else tri)
    b = rng.standard_normal(80).astype(dtype)
    ref = spla.spsolve_triangular(system, b.astype(np.float64), lower=(lower != transpose))
    x = np.empty(80, dtype)
    K.trsv(M, b, x, lower, transpose=transpose, unit_diagonal=unit_diagonal)
    np.testing.assert_allclose(x, ref, rtol=RTOL[dtype] * 20, atol=RTOL[dtype] * 20)
    K.trsv(M, b, b, lower, transpose=transpose, unit_diagonal=unit_diagonal)  # in place
    np.testing.assert_array_equal(b, x)


# --------------------------------------------------------------------------- preconditioners


def dense_ssor(A: np.ndarray, omega: float) -> np.ndarray:
    D = np.diag(np.diag(A))
    L, U = np.tril(A, -1), np.triu(A, 1)
    return omega * (2 - omega) * np.linalg.solve(D + omega * U, D @ np.linalg.solve(D + omega * L, np.eye(len(A))))


@pytest.mark.parametrize("index_dtype,dtype", COMBOS)
def test_preconditioners_match_dense_references(index_dtype, dtype, rng):
    A = random_dominant(50, 0.1, rng, symmetric=True)
    Ad = A.toarray()
    M = kmat(A, index_dtype, dtype)
    r = rng.standard_normal(50).astype(dtype)
    r64 = r.astype(np.float64)
    tol = dict(rtol=RTOL[dtype] * 20, atol=RTOL[dtype] * 20)

    P = K.jacobi_preconditioner(M, omega=0.8)
    assert (P.kind, P.size, P.dtype) == ("jacobi", 50, np.dtype(dtype))
    np.testing.assert_allclose(P.apply(r), 0.8 * r64 / np.diag(Ad), **tol)

    for omega in (1.0, 1.6):
        P = K.ssor_preconditioner(M, omega)
        z = P.apply(r)
        np.testing.assert_allclose(z, dense_ssor(Ad, omega) @ r64, **tol)
        x = np.zeros(50, dtype)  # one SSOR sweep from zero
        K.relax(M, x, r, "ssor", omega=omega, sweeps=1)
        np.testing.assert_allclose(z, x, **tol)

    L, _ = K.ic0(M)
    P = K.ic_preconditioner(L)
    Ld = to_scipy(L).toarray().astype(np.float64)
    np.testing.assert_allclose(P.apply(r), np.linalg.solve(Ld @ Ld.T, r64), **tol)

    LU, _ = K.ilu0(M)
    P = K.ilu_preconditioner(LU)
    F = to_scipy(LU).toarray().astype(np.float64)
    ref = np.linalg.solve(np.triu(F), np.linalg.solve(np.tril(F, -1) + np.eye(50), r64))
    z = np.empty(50, dtype)
    assert P.apply(r, z) is z
    np.testing.assert_allclose(z, ref, **tol)
    P.apply(r, r)  # in place
    np.testing.assert_array_equal(r, z)


def test_ic_preconditioner_of_a_predicted_factor(rng):
    """A factor built outside ic0 (as the learned preconditioner does) is accepted and applied."""
    A = poisson2d(6)
    low = sp.tril(A).tocsr()
    low.data = low.data * (1 + 0.1 * rng.random(low.nnz))
    low.data[low.indices == np.repeat(np.arange(36), np.diff(low.indptr))] = 2.0
    P = K.ic_preconditioner(kmat(low))
    r = rng.standard_normal(36)
    Ld = low.toarray()
    np.testing.assert_allclose(P.apply(r), np.linalg.solve(Ld @ Ld.T, r), rtol=1e-10)


# --------------------------------------------------------------------------- empty matrices


def test_empty_matrix_everywhere():
    E = K.CsrMatrix(np.zeros(1, np.int32), np.zeros(0, np.int32), np.zeros(0), 0)
    x = np.zeros(0)
    assert E.shape == (0, 0) and E.nnz == 0
    assert E.matvec(x).shape == (0,) and E.diagonal().shape == (0,)
    K.spmv(E, x, np.zeros(0))
    K.relax(E, x, np.zeros(0), "ssor")
    assert K.sor_solve(E, np.zeros(0), x, 1.0, False, 1e-8, 0.0, 10) == (0, 0.0, 0)
    assert K.ic0(E)[0].shape == (0, 0) and K.ilu0(E)[0].shape == (0, 0)
    K.trsv(E, x, np.zeros(0), True)
    for P in (K.jacobi_preconditioner(E), K.ssor_preconditioner(E, 1.0), K.ic_preconditioner(E), K.ilu_preconditioner(E)):
        assert P.apply(x).shape == (0,)
    assert K.dot(x, x) == 0.0 and K.nrm2(x) == 0.0


# --------------------------------------------------------------------------- bad input


def csr_parts(dtype=np.float64):
    A = sp.csr_array(np.array([[4.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 4.0]]))
    return A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data.astype(dtype)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda p, i, d: (p, i, d[:-1]), "same length"),
        (lambda p, i, d: (p[:-1], i, d), "indptr"),
        (lambda p, i, d: (p + 1, i, d), r"indptr\[0\]"),
        (lambda p, i, d: (np.array([0, 3, 2, 7], np.int32), i, d), "non-decreasing"),
        (lambda p, i, d: (p, np.where(np.arange(7) == 1, 0, i).astype(np.int32), d), "strictly increasing"),
        (lambda p, i, d: (p, i[[1, 0, 2, 3, 4, 5, 6]], d), "strictly increasing"),
        (lambda p, i, d: (p, np.where(np.arange(7) == 6, 3, i).astype(np.int32), d), "out of range"),
        (lambda p, i, d: (p, np.where(np.arange(7) == 0, -1, i).astype(np.int32), d), "out of range"),
        (lambda p, i, d: (p, i, np.where(np.arange(7) == 3, np.nan, d)), "NaN or Inf"),
        (lambda p, i, d: (p, i, np.where(np.arange(7) == 3, np.inf, d)), "NaN or Inf"),
        (lambda p, i, d: (p.reshape(1, -1), i, d), "1-D"),
        (lambda p, i, d: (p, np.repeat(i, 2)[::2], d), "contiguous"),
        (lambda p, i, d: (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)), "length"),
    ],
)
def test_csr_matrix_rejects_malformed_arrays(mutate, match):
    p, i, d = mutate(*csr_parts())
    with pytest.raises(ValueError, match=match):
        K.CsrMatrix(p, i, d, 3)


def test_csr_structure_check_agrees_with_a_reference_on_random_patterns():
    # Random patterns with empty rows, drops across row boundaries (valid) and inside rows (invalid):
    # the native check's branch-free passes accept exactly the arrays a row-by-row reference accepts.
    rng = np.random.default_rng(7)
    outcomes = set()
    for trial in range(400):
        n_rows, n_cols = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        indptr = np.concatenate([[0], np.cumsum(rng.integers(0, 4, n_rows))]).astype(np.int32)
        indices = rng.integers(-1, n_cols + 1, int(indptr[-1])).astype(np.int32)
        if trial % 2:  # mostly valid rows: sorted and unique where possible
            for a, b in zip(indptr[:-1], indptr[1:]):
                row = np.unique(indices[a:b])
                indices[a:b] = np.concatenate([row, np.full(b - a - len(row), row[-1] if len(row) else 0)])
        rows = [indices[a:b] for a, b in zip(indptr[:-1], indptr[1:])]
        valid = all(np.all(np.diff(r) > 0) and np.all((r >= 0) & (r < n_cols)) for r in rows)
        outcomes.add(valid)
        if valid:
            K.CsrMatrix(indptr, indices, np.ones(len(indices)), n_cols)
        else:
            with pytest.raises(ValueError, match="strictly increasing|out of range"):
                K.CsrMatrix(indptr, indices, np.ones(len(indices)), n_cols)
    assert outcomes == {True, False}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_csr_matrix_finiteness_check_finds_one_bad_value_anywhere(dtype, bad):
    n = 70_000  # above kParallelMin: the vectorised, threaded reduction
    indptr = np.arange(n + 1, dtype=np.int32)
    indices = np.arange(n, dtype=np.int32)
    K.CsrMatrix(indptr, indices, np.full(n, -3.0, dtype), n)
    for position in (0, n // 2 + 1, n - 1):
        data = np.full(n, -3.0, dtype)
        data[position] = bad
        with pytest.raises(ValueError, match="NaN or Inf"):
            K.CsrMatrix(indptr, indices, data, n)


def test_csr_matrix_rejects_bad_dtypes_and_types():
    p, i, d = csr_parts()
    with pytest.raises(TypeError, match="same dtype"):
        K.CsrMatrix(p.astype(np.int64), i, d, 3)
    with pytest.raises(TypeError, match="int32 or int64"):
        K.CsrMatrix(p.astype(np.uint32), i.astype(np.uint32), d, 3)
    with pytest.raises(TypeError, match="complex"):
        K.CsrMatrix(p, i, d.astype(np.complex128), 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.CsrMatrix(p, i, d.astype(np.int64), 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.CsrMatrix(p, i, d.astype(np.float16), 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.CsrMatrix(p, i, d.astype(">f8"), 3)  # non-native byte order
    with pytest.raises(TypeError, match="ndarray"):
        K.CsrMatrix(list(p), i, d, 3)
    with pytest.raises(ValueError, match="n_cols"):
        K.CsrMatrix(p, i, d, -1)
    with pytest.raises(ValueError, match="out of range"):
        K.CsrMatrix(p, i, d, 2)
    with pytest.raises(TypeError):
        K.Preconditioner()


def test_read_only_matrix_arrays_are_fine():
    p, i, d = csr_parts()
    for a in (p, i, d):
        a.flags.writeable = False
    M = K.CsrMatrix(p, i, d, 3)
    np.testing.assert_allclose(M.matvec(np.ones(3)), [3.0, 2.0, 3.0])


def test_non_square_is_rejected_where_square_is_needed():
    R = kmat(sp.csr_array(np.ones((2, 3))))
    for call in (
        lambda: K.relax(R, np.zeros(2), np.ones(2), "jacobi"),
        lambda: K.sor_solve(R, np.ones(2), np.zeros(2), 1.0, False, 1e-8, 0.0, 10),
        lambda: K.ic0(R),
        lambda: K.ilu0(R),
        lambda: K.trsv(R, np.ones(2), np.zeros(2), True),
        lambda: K.jacobi_preconditioner(R),
        lambda: K.ssor_preconditioner(R, 1.0),
        lambda: K.ic_preconditioner(R),
        lambda: K.ilu_preconditioner(R),
    ):
        with pytest.raises(ValueError, match="square"):
            call()


def vector_calls(M):
    """Every vector-taking entry point, as f(x_in, y_out) on an n = 3 float64 system."""
    P = K.ssor_preconditioner(M, 1.0)
    return {
        "matvec": lambda u, v: M.matvec(u, out=v),
        "dot": lambda u, v: K.dot(u, v),
        "nrm2": lambda u, v: K.nrm2(u),
        "axpy": lambda u, v: K.axpy(1.0, u, v),
        "spmv": lambda u, v: K.spmv(M, u, v, 1.0, 1.0),
        "relax": lambda u, v: K.relax(M, v, u, "sor_forward"),
        "sor_solve": lambda u, v: K.sor_solve(M, u, v, 1.0, False, 1e-8, 0.0, 10),
        "trsv": lambda u, v: K.trsv(M, u, v, True),
        "apply": lambda u, v: P.apply(u, v),
    }


@pytest.mark.parametrize("name", list(vector_calls(kmat(sp.eye_array(3)))))
def test_vector_arguments_are_validated(name):
    M = kmat(sp.csr_array(np.array([[4.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 4.0]])))
    call = vector_calls(M)[name]
    good = np.ones(3)
    call(good.copy(), np.zeros(3))  # sanity: the good call works
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    cases = [] if name == "nrm2" else [(np.ones(4), np.zeros(3), ValueError, "length")]
    cases += [
        (np.ones((3, 1)), np.zeros(3), ValueError, "1-D"),
        (np.array([1.0, np.nan, 1.0]), np.zeros(3), ValueError, "NaN or Inf"),
        (np.array([1.0, np.inf, 1.0]), np.zeros(3), ValueError, "NaN or Inf"),
        (np.ones(6)[::2], np.zeros(3), ValueError, "contiguous"),
        (np.ones(3, np.complex128), np.zeros(3), TypeError, "complex"),
        (np.ones(3, np.int64), np.zeros(3), TypeError, "float"),
        ([1.0, 1.0, 1.0], np.zeros(3), TypeError, "ndarray"),
    ]
    if name != "nrm2":
        cases.append((np.ones(3, np.float32), np.zeros(3), TypeError, "float"))
    if name not in ("dot", "nrm2"):
        cases += [
            (good, read_only, ValueError, "read-only"),
            (good, np.zeros(6)[::2], ValueError, "contiguous"),
            (good, np.zeros(3, np.float32), TypeError, "float64"),
            (good, np.zeros(4), ValueError, "length"),
        ]
    for u, v, error, match in cases:
        with pytest.raises(error, match=match):
            call(u, v)


def test_output_aliasing_is_rejected():
    M = kmat(poisson2d(3))
    x = np.ones(9)
    with pytest.raises(ValueError, match="share memory"):
        K.spmv(M, x, x)
    with pytest.raises(ValueError, match="share memory"):
        M.matvec(x, out=x)
    with pytest.raises(ValueError, match="share memory"):
        K.relax(M, x, x, "jacobi")
    buf = np.ones(10)
    with pytest.raises(ValueError, match="share memory"):
        K.trsv(M, buf[:9], buf[1:], True)  # partial overlap (identical arrays are allowed)


def test_scalar_arguments_are_validated():
    M = kmat(poisson2d(3))
    x, b = np.zeros(9), np.ones(9)
    for omega in (0.0, 2.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="omega"):
            K.relax(M, x, b, "ssor", omega=omega)
        with pytest.raises(ValueError, match="omega"):
            K.ssor_preconditioner(M, omega)
        with pytest.raises(ValueError, match="omega"):
            K.sor_solve(M, b, x, omega, False, 1e-8, 0.0, 10)
    with pytest.raises(ValueError, match="omega"):
        K.jacobi_preconditioner(M, omega=0.0)
    with pytest.raises(ValueError, match="sweeps"):
        K.relax(M, x, b, "ssor", sweeps=-1)
    with pytest.raises(ValueError, match="method"):
        K.relax(M, x, b, "gauss")
    with pytest.raises(ValueError, match="rtol"):
        K.sor_solve(M, b, x, 1.0, False, -1e-8, 0.0, 10)
    with pytest.raises(ValueError, match="atol"):
        K.sor_solve(M, b, x, 1.0, False, 1e-8, np.inf, 10)
    with pytest.raises(ValueError, match="maxiter"):
        K.sor_solve(M, b, x, 1.0, False, 1e-8, 0.0, -1)
    for tries in (0, 65):
        with pytest.raises(ValueError, match="max_tries"):
            K.ic0(M, max_tries=tries)
        with pytest.raises(ValueError, match="max_tries"):
            K.ilu0(M, max_tries=tries)
    with pytest.raises(ValueError, match="alpha"):
        K.axpy(np.nan, b, x)
    with pytest.raises(ValueError, match="alpha"):
        K.axpy(1e300, b.astype(np.float32), x.astype(np.float32))  # not finite in float32
    with pytest.raises(TypeError, match="CsrMatrix"):
        K.jacobi_preconditioner(sp.eye_array(3))


def test_dtype_mismatch_between_matrix_and_vectors():
    M32 = kmat(poisson2d(3), np.int32, np.float32)
    with pytest.raises(TypeError, match="float32"):
        M32.matvec(np.ones(9))
    P = K.jacobi_preconditioner(M32)
    with pytest.raises(TypeError, match="float32"):
        P.apply(np.ones(9))
    with pytest.raises(TypeError, match="float64"):
        K.dot(np.ones(3), np.ones(3, np.float32))


def test_zero_pivots_and_missing_diagonals():
    zero_diag = kmat(sp.csr_array(np.array([[1.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 1.0]])))
    missing = K.CsrMatrix(np.array([0, 2, 3, 5], np.int32), np.array([0, 1, 0, 1, 2], np.int32), np.ones(5), 3)
    b, x = np.ones(3), np.zeros(3)
    for M in (zero_diag, missing):
        with pytest.raises(ValueError, match="row 1"):
            K.relax(M, x, b, "sor_forward")
        with pytest.raises(ValueError, match="row 1"):
            K.sor_solve(M, b, x, 1.0, False, 1e-8, 0.0, 10)
        with pytest.raises(ValueError, match="row 1"):
            K.jacobi_preconditioner(M)
        with pytest.raises(ValueError, match="row 1"):
            K.ssor_preconditioner(M, 1.0)
        with pytest.raises(ValueError, match="row 1"):
            K.ilu_preconditioner(M)
        with pytest.raises(ValueError, match="row 1"):
            K.trsv(M, b, x, True)
        with pytest.raises(ValueError, match="row 1"):
            K.ic0(M)
    K.trsv(zero_diag, b, x, True, unit_diagonal=True)  # diagonal not referenced
    with pytest.raises(ValueError, match="row 1"):
        K.ilu0(missing)
    with pytest.raises(ValueError, match="not positive"):
        K.ic0(kmat(sp.csr_array(np.diag([1.0, -2.0, 3.0]))))


def test_ic_preconditioner_validates_its_factor():
    full = kmat(poisson2d(3))
    with pytest.raises(ValueError, match="lower triangular"):
        K.ic_preconditioner(full)
    no_diag = kmat(sp.csr_array(np.array([[1.0, 0.0], [1.0, 0.0]])))
    with pytest.raises(ValueError, match="lower triangular"):
        K.ic_preconditioner(no_diag)
    negative = kmat(sp.csr_array(np.array([[1.0, 0.0], [1.0, -2.0]])))
    with pytest.raises(ValueError, match="not positive"):
        K.ic_preconditioner(negative)


def test_trsv_and_relax_report_overflow_instead_of_returning_inf():
    T = kmat(sp.csr_array(np.array([[1e-300, 0.0], [1e300, 1e-300]])))
    with pytest.raises(ValueError, match="overflow"):
        K.trsv(T, np.ones(2), np.zeros(2), True)
    A = kmat(sp.csr_array(np.array([[1.0, 1e200], [1e200, 1.0]])))
    with pytest.raises(ValueError, match="diverged"):
        K.relax(A, np.zeros(2), np.ones(2), "jacobi", sweeps=5)


# --------------------------------------------------------------------------- real matrices


def _manifest(directory):
    lines = (directory / "MANIFEST.tsv").read_text().split("\n")[1:]
    return [line.split("\t") for line in lines if line.strip()]


def test_factorizations_and_preconditioners_on_real_matrices(shared_matrices):
    """Every SuiteSparse matrix: SpMV vs SciPy; IC(0) (SPD) or ILU(0) (nonsymmetric)
    reproduces A on its pattern; the preconditioner equals SciPy's triangular solves."""
    import scipy.io

    rng = np.random.default_rng(5)
    for name, n, _nnz, kind in _manifest(shared_matrices):
        A = sp.csr_array(scipy.io.mmread(shared_matrices / f"{name}.mtx.gz"))
        A.sum_duplicates()
        A.sort_indices()
        M = kmat(A)
        assert M.shape == (int(n), int(n)), name
        x = rng.standard_normal(A.shape[0])
        ref = A @ x
        np.testing.assert_allclose(M.matvec(x), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max(), err_msg=name)
        r = rng.standard_normal(A.shape[0])
        if kind == "spd":
            L, shift = K.ic0(M)
            Ls = to_scipy(L)
            target = sp.tril(A + shift * sp.diags_array(A.diagonal())).tocsr()
            product = (Ls @ Ls.T).tocsr()
            rows, cols = target.nonzero()
            scale = (abs(Ls) @ abs(Ls).T).tocsr()[rows, cols] + abs(target[rows, cols])
            assert np.all(np.abs(product[rows, cols] - target[rows, cols]) <= 1e-10 * scale), name
            z = K.ic_preconditioner(L).apply(r)
            y = spla.spsolve_triangular(Ls, r, lower=True)
            np.testing.assert_allclose(z, spla.spsolve_triangular(sp.csr_array(Ls.T), y, lower=False), rtol=1e-8,
                                       atol=1e-10 * np.abs(z).max(), err_msg=name)
        else:
            try:
                LU, shift = K.ilu0(M)
            except ValueError as exc:  # a structurally missing diagonal entry is reported, not guessed
                assert "no diagonal entry" in str(exc) and np.any(sp.csr_array(A != 0).diagonal() == 0), name
                continue
            F = to_scipy(LU)
            Lm = sp.tril(F, -1) + sp.eye_array(A.shape[0])
            Um = sp.triu(F)
            target = sp.csr_array(A + shift * sp.diags_array(A.diagonal()))
            rows, cols = target.nonzero()
            product = (Lm @ Um).tocsr()
            scale = (abs(Lm) @ abs(Um)).tocsr()[rows, cols] + abs(target[rows, cols])
            assert np.all(np.abs(product[rows, cols] - target[rows, cols]) <= 1e-10 * scale), name
            z = K.ilu_preconditioner(LU).apply(r)
            y = spla.spsolve_triangular(sp.csr_array(Lm), r, lower=True, unit_diagonal=True)
            np.testing.assert_allclose(z, spla.spsolve_triangular(sp.csr_array(Um), y, lower=False), rtol=1e-6,
                                       atol=1e-9 * np.abs(z).max(), err_msg=name)


# --------------------------------------------------------------------------- Python operator adapters


def test_callable_operator_results_are_checked():
    """python_operators.hpp: what a matrix-free A or M returns is validated (seen through K.cg)."""
    A = poisson2d(4)
    M = kmat(A)
    b = np.ones(16)

    def solve(op, precond=None):
        x = np.zeros(16)
        K.cg(op, b, x, precond, 1e-10, 0.0, 100, None)
        return x

    exact = solve(M)
    np.testing.assert_allclose(solve(lambda v: A @ v), exact, rtol=1e-10)
    np.testing.assert_allclose(solve(lambda v: list(A @ v)), exact, rtol=1e-10)  # array-like results convert
    np.testing.assert_allclose(solve(M, lambda r: r.astype(np.float32)), exact, rtol=1e-6)  # any real dtype converts
    for bad, error, match in [
        (lambda v: (A @ v)[:-1], ValueError, "length 16"),
        (lambda v: np.outer(v, v), ValueError, "1-D"),
        (lambda v: (A @ v).astype(np.complex128), TypeError, "complex"),
        (lambda v: None, TypeError, "NumPy array"),
        (lambda v: np.array(["a"] * 16), TypeError, "real numeric"),
        (lambda v: np.full(16, np.inf), ValueError, "NaN or Inf"),
    ]:
        with pytest.raises(error, match=match):
            solve(bad)
        with pytest.raises(error, match=match):
            solve(M, bad)
    with pytest.raises(TypeError, match="callable"):
        solve(M, "jacobi")
    with pytest.raises(TypeError, match="float64"):
        solve(M, K.jacobi_preconditioner(kmat(A, np.int32, np.float32)))
    with pytest.raises(ValueError, match="size"):
        solve(M, K.jacobi_preconditioner(kmat(poisson2d(3))))
    with pytest.raises(ValueError, match="shape"):
        solve(M, kmat(poisson2d(3)))  # a CsrMatrix used as the operator M


# --------------------------------------------------------------------------- benchmark suite


def test_core_suite_quick_runs_and_agrees_with_petsc(tmp_path, monkeypatch):
    """bench/suite_core.py (quick): every kernel timed, and native outputs equal PETSc's/SciPy's."""
    import json

    from krylearn.bench import suite_core

    monkeypatch.setenv("KRYLEARN_RESULTS", str(tmp_path))
    assert suite_core.main(["--quick", "--repeats", "1"]) == 0
    rows = json.loads((tmp_path / "core" / "per_application.json").read_text())["rows"]
    kernels = {row["kernel"] for row in rows}
    assert {"spmv", "ssor sweep", "jacobi apply", "ssor apply", "ic0 apply", "ilu0 apply", "ic0 setup"} <= kernels
    assert all(row["ms"] > 0 for row in rows)
    assert all(row["max_rel_diff"] < 1e-12 for row in rows if "max_rel_diff" in row and row["max_rel_diff"] is not None)
