"""krylearn.cg/gmres/bicgstab/minres behave like scipy.sparse.linalg's (arguments, defaults, info, results)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from krylearn.bench.problems import poisson2d

import krylearn


def convection_diffusion(m: int, wind: float = 0.3) -> sp.csr_array:
    """Nonsymmetric: 5-point Laplacian plus central first-order differences in x."""
    t = sp.diags_array([-np.ones(m - 1) - wind, 2 * np.ones(m), -np.ones(m - 1) + wind], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(eye, t) + sp.kron(t, eye))


def count_iterations(solver, *args, **kwargs):
    calls = []
    x, info = solver(*args, callback=lambda xk: calls.append(1), **kwargs)
    return x, info, len(calls)


@pytest.mark.parametrize("name", ["cg", "gmres", "bicgstab", "minres"])
def test_same_signature_as_scipy(name):
    ours = inspect.signature(getattr(krylearn, name)).parameters
    theirs = inspect.signature(getattr(spla, name)).parameters
    assert list(ours)[:3] == ["A", "b", "x0"]
    for pname, p in theirs.items():
        assert pname in ours, f"{name} lacks SciPy argument {pname}"
        assert ours[pname].default == p.default, f"{name}({pname}) default differs from SciPy"
        assert ours[pname].kind == p.kind


@pytest.mark.parametrize("M_kind", ["none", "diag_matrix", "linear_operator"])
@pytest.mark.parametrize("rtol", [1e-5, 1e-10])
def test_cg_iterations_match_scipy(M_kind, rtol, rng):
    A = poisson2d(24)
    b = rng.standard_normal(A.shape[0])
    d = A.diagonal()
    M = {"none": None,
         "diag_matrix": sp.diags_array(1.0 / d),
         "linear_operator": spla.LinearOperator(A.shape, matvec=lambda r: r / d)}[M_kind]
    x_ref, info_ref, it_ref = count_iterations(spla.cg, A, b, rtol=rtol, M=M)
    x, info, it = count_iterations(krylearn.cg, A, b, rtol=rtol, M=M)
    assert info == info_ref == 0
    assert abs(it - it_ref) <= 1
    assert np.linalg.norm(b - A @ x) <= rtol * np.linalg.norm(b)
    assert np.linalg.norm(x - x_ref) <= 1e3 * rtol * np.linalg.norm(x_ref)


def test_cg_iterations_match_scipy_variable_coefficients():
    rng = np.random.default_rng(7)
    m = 20
    A = poisson2d(m) + sp.diags_array(rng.uniform(0.0, 2.0, m * m))
    b = rng.standard_normal(m * m)
    _, _, it_ref = count_iterations(spla.cg, A, b, rtol=1e-8)
    x, info, it = count_iterations(krylearn.cg, A, b, rtol=1e-8)
    assert info == 0 and abs(it - it_ref) <= 1


@pytest.mark.parametrize("solver", ["gmres", "bicgstab"])
def test_nonsymmetric_solution_matches_spsolve(solver, rng):
    A = convection_diffusion(20)
    b = rng.standard_normal(A.shape[0])
    kwargs = {"restart": 40} if solver == "gmres" else {}
    x, info = getattr(krylearn, solver)(A, b, rtol=1e-10, maxiter=2000, **kwargs)
    assert info == 0
    x_direct = spla.spsolve(sp.csc_array(A), b)
    assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b)
    assert np.linalg.norm(x - x_direct) <= 1e-6 * np.linalg.norm(x_direct)


def test_minres_shift_matches_spsolve(rng):
    A = poisson2d(16)
    shift = 1.5  # A - 1.5 I is indefinite
    b = rng.standard_normal(A.shape[0])
    x, info = krylearn.minres(A, b, rtol=1e-10, shift=shift, maxiter=5000)
    x_direct = spla.spsolve(sp.csc_array(A - shift * sp.eye_array(A.shape[0])), b)
    assert info == 0
    assert np.linalg.norm(x - x_direct) <= 1e-6 * np.linalg.norm(x_direct)


def test_minres_check_rejects_nonsymmetric(rng):
    A = convection_diffusion(8)
    with pytest.raises(ValueError, match="non-symmetric"):
        krylearn.minres(A, rng.standard_normal(A.shape[0]), check=True)
    x, info = krylearn.minres(poisson2d(8), np.ones(64), check=True)
    assert info == 0


def test_gmres_maxiter_counts_restart_cycles(rng):
    A = convection_diffusion(16)
    b = rng.standard_normal(A.shape[0])
    x_ref, info_ref = spla.gmres(A, b, rtol=1e-12, restart=5, maxiter=3)
    x, info = krylearn.gmres(A, b, rtol=1e-12, restart=5, maxiter=3)
    assert info == info_ref == 3
    r_ref, r = np.linalg.norm(b - A @ x_ref), np.linalg.norm(b - A @ x)
    # same Krylov spaces, same residual minimisation: same residual after 3 cycles of 5
    assert r == pytest.approx(r_ref, rel=1e-6)


@pytest.mark.parametrize("callback_type", ["x", "pr_norm", "legacy"])
def test_gmres_callback_types(callback_type, rng):
    A = convection_diffusion(12)
    b = rng.standard_normal(A.shape[0])
    ours, theirs = [], []
    kwargs = dict(rtol=1e-12, restart=6, maxiter=4, callback_type=callback_type)
    spla.gmres(A, b, callback=theirs.append, **kwargs)
    krylearn.gmres(A, b, callback=ours.append, **kwargs)
    assert len(ours) == len(theirs)
    if callback_type == "x":
        assert all(np.shape(v) == (A.shape[0],) for v in ours)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_gmres_callback_without_type_warns_like_scipy():
    A = poisson2d(6)
    with pytest.warns(DeprecationWarning):
        krylearn.gmres(A, np.ones(36), callback=lambda v: None)


@pytest.mark.parametrize("solver", ["cg", "gmres", "bicgstab", "minres"])
def test_info_is_maxiter_when_not_converged(solver, rng):
    A = poisson2d(20)
    b = rng.standard_normal(A.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _, info_ref = getattr(spla, solver)(A, b, rtol=1e-12, maxiter=3)
    _, info = getattr(krylearn, solver)(A, b, rtol=1e-12, maxiter=3)
    assert info == info_ref == 3


@pytest.mark.parametrize("solver", ["cg", "gmres", "bicgstab", "minres"])
def test_callbacks_receive_iterates(solver):
    A = poisson2d(10)
    b = A @ np.ones(100)
    seen = []
    kwargs = {"callback_type": "x"} if solver == "gmres" else {}
    x, info = getattr(krylearn, solver)(A, b, rtol=1e-8, callback=lambda xk: seen.append(np.array(xk)), **kwargs)
    assert info == 0 and len(seen) >= 1
    assert np.linalg.norm(b - A @ seen[-1]) <= 10 * np.linalg.norm(b - A @ seen[0])


def test_float32_in_float32_out(rng):
    A = poisson2d(12).astype(np.float32)
    b = rng.standard_normal(A.shape[0]).astype(np.float32)
    x_ref, _ = spla.cg(A, b)
    x, info = krylearn.cg(A, b)
    assert info == 0 and x.dtype == x_ref.dtype == np.float32
    x64, _ = krylearn.cg(A, b.astype(np.float64))
    assert x64.dtype == np.float64


def test_x0_mb_and_preconditioner_objects(rng):
    A = poisson2d(16)
    b = rng.standard_normal(A.shape[0])
    for M in ["ic0", krylearn.IC0().setup(A), krylearn.Jacobi().setup(A).as_linear_operator()]:
        x, info = krylearn.cg(A, b, x0="Mb", M=M, rtol=1e-8)
        assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)


def test_matrix_free_linear_operator(rng):
    A = convection_diffusion(10)
    op = spla.LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=np.float64)
    b = rng.standard_normal(A.shape[0])
    x, info = krylearn.gmres(op, b, rtol=1e-9, restart=50)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-9 * np.linalg.norm(b)
    x, info = krylearn.bicgstab(op, b, rtol=1e-9, M=spla.LinearOperator(A.shape, matvec=lambda r: r / 4.0))
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-9 * np.linalg.norm(b)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "dense", "matrix"])
def test_accepts_every_matrix_format(fmt):
    A = poisson2d(8)
    As = {"csr": A, "csc": sp.csc_array(A), "coo": sp.coo_array(A), "dense": A.toarray(),
          "matrix": sp.csr_matrix(A)}[fmt]
    b = np.ones(64)
    x, info = krylearn.cg(As, b, rtol=1e-10)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-10 * 8
