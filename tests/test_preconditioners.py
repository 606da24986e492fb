"""Preconditioners: the math of each one, the protocol, and use as M in krylearn and SciPy."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from krylearn.bench.problems import poisson2d

import krylearn
from krylearn.preconditioners import (
    AMG,
    IC0,
    ILU0,
    SSOR,
    CholeskyFactor,
    Jacobi,
    OperatorPreconditioner,
    Preconditioner,
    make_preconditioner,
)


def tridiagonal(n: int, nonsymmetric: bool = False) -> sp.csr_array:
    upper = -np.ones(n - 1) * (0.5 if nonsymmetric else 1.0)
    return sp.csr_array(sp.diags_array([-np.ones(n - 1), 3.0 * np.ones(n), upper], offsets=[-1, 0, 1]))


def dense_of(pc: Preconditioner, n: int) -> np.ndarray:
    """The matrix of r -> M^{-1} r, column by column."""
    return np.column_stack([pc.apply(e) for e in np.eye(n)])


def test_jacobi_is_inverse_diagonal(rng):
    A = poisson2d(6) + sp.diags_array(rng.uniform(0, 1, 36))
    r = rng.standard_normal(36)
    np.testing.assert_allclose(Jacobi().setup(A).apply(r), r / A.diagonal(), rtol=1e-14)


def test_ssor_matches_formula(rng):
    A = (poisson2d(5) + sp.diags_array(rng.uniform(0, 1, 25))).toarray()
    omega = 1.3
    D = np.diag(np.diag(A))
    L, U = np.tril(A, -1), np.triu(A, 1)
    M = (D / omega + L) @ np.linalg.solve(D / omega, D / omega + U) / (2 - omega)
    Minv = dense_of(SSOR(omega).setup(A), 25)
    np.testing.assert_allclose(Minv, np.linalg.inv(M), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Minv, Minv.T, atol=1e-12)  # SPD preconditioner for SPD A


@pytest.mark.parametrize("name", ["jacobi", "ssor", "ic0", "ilu0", "learned"])
def test_multiply_is_the_inverse_of_apply(name, rng):
    """multiply gives M itself: M (M^{-1} x) = x, on vectors and on the columns of a block."""
    A = poisson2d(12) if name in ("ic0", "learned") else tridiagonal(144, nonsymmetric=True)
    pc = make_preconditioner(name, A)
    x, X = rng.standard_normal(144), rng.standard_normal((144, 3))
    np.testing.assert_allclose(pc.multiply(pc.apply(x)), x, rtol=1e-12, atol=1e-12)
    MX = pc.multiply(X)
    assert MX.shape == X.shape
    np.testing.assert_allclose(np.column_stack([pc.apply(c) for c in MX.T]), X, rtol=1e-12, atol=1e-12)


def test_a_kept_matrix_is_copied_unless_the_caller_shares_it():
    """SSOR's native sweeps read A's index arrays: by default it owns a copy of A; with
    share=True (a preconditioner built for one solve) it reads the caller's arrays."""
    A = sp.csr_array(poisson2d(6))
    r = np.linspace(1.0, 2.0, 36)

    def uses_arrays_of_A(pc):
        return all(np.shares_memory(getattr(pc._A, name), getattr(A, name)) for name in ("indptr", "indices"))

    owned, shared = SSOR(1.3).setup(A), SSOR(1.3).setup(A, share=True)
    assert not uses_arrays_of_A(owned) and uses_arrays_of_A(shared)
    np.testing.assert_array_equal(shared.apply(r), owned.apply(r))
    assert uses_arrays_of_A(make_preconditioner("ssor", A, share=True))  # a name built for one solve
    given = SSOR().setup(A)
    assert make_preconditioner(given, A, share=True) is given and not uses_arrays_of_A(given)


def test_native_multiply_validates_its_input():
    pc = make_preconditioner("ssor", poisson2d(4))
    with pytest.raises(ValueError, match="rows"):
        pc.native.multiply(np.ones(15))
    with pytest.raises(ValueError, match="Fortran-ordered"):
        pc.native.multiply(np.ones((16, 2)))  # C order
    with pytest.raises(ValueError, match="NaN or Inf"):
        pc.native.multiply(np.full(16, np.nan))
    with pytest.raises(TypeError):
        pc.native.multiply(np.ones(16, dtype=np.float32))


def test_multiply_is_unavailable_where_only_the_inverse_is_known(rng):
    A = poisson2d(8)
    assert OperatorPreconditioner(sp.identity(64, format="csr")).setup(A).multiply(np.ones(64)) is None
    assert AMG().setup(A).multiply(np.ones(64)) is None


def test_ic0_exact_on_tridiagonal(rng):
    A = tridiagonal(30)
    pc = IC0().setup(A)
    r = rng.standard_normal(30)
    np.testing.assert_allclose(pc.apply(r), np.linalg.solve(A.toarray(), r), rtol=1e-10)
    assert pc.shift == 0.0


def test_ic0_reproduces_a_on_its_pattern():
    A = poisson2d(8)
    pc = IC0().setup(A)
    LLt = np.linalg.inv(dense_of(pc, 64))
    Ad = A.toarray()
    on_pattern = Ad != 0
    np.testing.assert_allclose(LLt[on_pattern], Ad[on_pattern], rtol=1e-10, atol=1e-12)
    assert pc.shift == 0.0  # an M-matrix never needs a shift


def test_ic0_reports_breakdown_shift():
    A = np.array([[1.0, 2.0], [2.0, 1.0]])  # positive diagonal, indefinite: plain IC(0) breaks down
    pc = IC0().setup(A)
    assert pc.shift > 1.0  # (1 + s) - 4 / (1 + s) > 0 needs s > 1
    M = np.linalg.inv(dense_of(pc, 2))
    np.testing.assert_allclose(M, A + pc.shift * np.diag(np.diag(A)), rtol=1e-10)


def test_ilu0_exact_on_tridiagonal(rng):
    A = tridiagonal(25, nonsymmetric=True)
    pc = ILU0().setup(A)
    r = rng.standard_normal(25)
    np.testing.assert_allclose(pc.apply(r), np.linalg.solve(A.toarray(), r), rtol=1e-10)
    assert pc.shift == 0.0


def test_ilu0_reproduces_a_on_its_pattern(rng):
    A = poisson2d(7) + sp.diags_array(0.4 * np.ones(48), offsets=1) + sp.diags_array(rng.uniform(0, 1, 49))
    A = sp.csr_array(A)
    LU = np.linalg.inv(dense_of(ILU0().setup(A), 49))
    Ad = A.toarray()
    np.testing.assert_allclose(LU[Ad != 0], Ad[Ad != 0], rtol=1e-10, atol=1e-12)


def test_ilu0_zero_pivot_is_shifted():
    A = np.array([[1.0, 1.0], [1.0, 1.0]])  # second pivot 1 - 1 = 0
    pc = ILU0().setup(A)
    assert pc.shift > 0
    assert np.all(np.isfinite(dense_of(pc, 2)))


def test_missing_diagonal_is_a_clear_error():
    A = sp.csr_array(np.array([[0.0, 1.0], [1.0, 2.0]]))
    A.eliminate_zeros()
    for pc in (ILU0(), IC0()):
        with pytest.raises(ValueError):
            pc.setup(A)


def test_cholesky_factor(rng):
    n = 20
    L = sp.csr_array(np.tril(rng.uniform(-0.3, 0.3, (n, n)), -1) + np.diag(rng.uniform(1, 2, n)))
    pc = CholeskyFactor(L).setup(sp.eye_array(n))
    r = rng.standard_normal(n)
    Ld = L.toarray()
    np.testing.assert_allclose(pc.apply(r), np.linalg.solve(Ld @ Ld.T, r), rtol=1e-10)
    with pytest.raises(ValueError):
        CholeskyFactor(L).setup(sp.eye_array(n + 1))


@pytest.mark.parametrize("kind", ["sa", "rs"])
def test_amg_accelerates_cg(kind, rng):
    A = poisson2d(32)
    b = rng.standard_normal(A.shape[0])
    plain = krylearn.solvers.run_cg(A, b, rtol=1e-8)
    amg = krylearn.solvers.run_cg(A, b, rtol=1e-8, M=AMG(kind=kind).setup(A))
    assert amg.converged and amg.iterations < plain.iterations / 3
    assert np.linalg.norm(b - A @ amg.x) <= 1e-8 * np.linalg.norm(b)


def test_amg_setup_is_reproducible_and_leaves_the_global_generator_alone():
    """PyAMG's spectral-radius estimates start from np.random vectors: the same seed gives the same
    hierarchy whatever the caller's global state, another seed another one, and the caller's stream
    continues as if no AMG had been built."""
    from krylearn.bench.spd_families import make_matrix

    A = make_matrix("synthetic", 1000, 10**9)  # a matrix whose smoother depends on the random start
    prolongators = []
    for global_seed, amg_seed in ((1, 0), (2, 0), (3, 7)):
        np.random.seed(global_seed)
        expected_next = np.random.RandomState(global_seed).rand()
        pc = AMG(seed=amg_seed).setup(A)
        assert np.random.rand() == expected_next
        prolongators.append(pc.hierarchy.levels[0].P.toarray())
    np.testing.assert_array_equal(prolongators[0], prolongators[1])
    assert not np.array_equal(prolongators[0], prolongators[2])


@pytest.mark.parametrize("name", ["jacobi", "ssor", "ic0", "ilu0", "amg"])
def test_every_named_preconditioner_in_scipy_and_krylearn(name, rng):
    A = poisson2d(20)
    b = rng.standard_normal(A.shape[0])
    pc = make_preconditioner(name, A)
    assert pc.name.startswith(name) and pc.shape == A.shape
    x, info = spla.cg(A, b, rtol=1e-8, M=pc.as_linear_operator())
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)
    x, info = krylearn.cg(A, b, rtol=1e-8, M=pc)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)


def test_protocol(rng):
    A = poisson2d(6)
    pc = Jacobi()
    with pytest.raises(RuntimeError):
        pc.apply(np.ones(36))
    assert pc.setup(A) is pc
    r = rng.standard_normal(36)
    out = np.empty(36)
    assert pc.apply(r, out=out) is out
    np.testing.assert_array_equal(pc(r), out)
    assert pc.native is not None
    with pytest.raises(ValueError):
        pc.apply(np.ones(5))


def test_float32_preconditioners(rng):
    A = poisson2d(6).astype(np.float32)
    for pc in (Jacobi(), SSOR(), IC0(), ILU0()):
        pc.setup(A)
        assert pc.dtype == np.float32
        assert pc.apply(rng.standard_normal(36).astype(np.float32)).dtype == np.float32


def test_make_preconditioner_specs(rng):
    A = poisson2d(5)
    assert make_preconditioner(None, A) is None
    assert make_preconditioner("none", A) is None
    assert isinstance(make_preconditioner("IC0", A), IC0)
    assert make_preconditioner("amg:rs", A).kind == "rs"
    pc = Jacobi().setup(A)
    assert make_preconditioner(pc, A) is pc
    wrapped = make_preconditioner(sp.diags_array(1 / A.diagonal()), A)
    assert isinstance(wrapped, OperatorPreconditioner)
    r = rng.standard_normal(25)
    np.testing.assert_allclose(wrapped.apply(r), pc.apply(r))
    with pytest.raises(ValueError, match="unknown preconditioner"):
        make_preconditioner("ilu7", A)
    with pytest.raises(ValueError):
        make_preconditioner(sp.eye_array(3), A)
    with pytest.raises(ValueError):
        SSOR(omega=2.5)
