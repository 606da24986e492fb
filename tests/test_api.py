"""krylearn.solve: automatic choice, fallbacks, true-residual guarantee, extension points."""
from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import krylearn
from krylearn.bench.problems import poisson2d
from krylearn.result import SolveResult


def convection_diffusion(m: int, wind: float = 0.4) -> sp.csr_array:
    t = sp.diags_array([-np.ones(m - 1) - wind, 2 * np.ones(m), -np.ones(m - 1) + wind], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(eye, t) + sp.kron(t, eye))


def true_relative_residual(A, x, b) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def check_against_spsolve(A, result, b, rtol, error_factor):
    x_direct = spla.spsolve(sp.csc_array(A), b)
    assert result.converged and result.info == 0
    assert true_relative_residual(A, result.x, b) <= rtol
    assert np.linalg.norm(result.x - x_direct) <= error_factor * rtol * np.linalg.norm(x_direct)


def test_spd_picks_cg_and_matches_spsolve(rng):
    A = poisson2d(30)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(A, b, rtol=1e-10)
    assert result.method == "cg" and result.preconditioner == "ic0"
    check_against_spsolve(A, result, b, 1e-10, 1e3)  # cond(A) ~ 400
    assert result.details["kind"] == "spd"
    assert isinstance(result, SolveResult) and result.seconds > 0 and result.residuals[0] > 0


def test_nonsymmetric_picks_gmres_or_bicgstab(rng):
    A = convection_diffusion(25)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(A, b)
    assert result.method in ("gmres", "bicgstab")
    check_against_spsolve(A, result, b, 1e-8, 1e4)


def test_symmetric_indefinite_picks_minres(rng):
    A = sp.csr_array(poisson2d(15) - 5.0 * sp.eye_array(225))  # negative diagonal, indefinite
    b = rng.standard_normal(225)
    result = krylearn.solve(A, b, rtol=1e-9)
    assert result.method == "minres" and result.details["kind"] == "symmetric"
    check_against_spsolve(A, result, b, 1e-9, 1e4)


def test_cg_breakdown_switches_to_minres(rng):
    A = sp.csr_array(poisson2d(15) - 1.5 * sp.eye_array(225))  # positive diagonal but indefinite
    b = rng.standard_normal(225)
    # with the direct fallback, SuperLU goes first (IC(0) needs a large shift on this small system)
    assert krylearn.solve(A, b, rtol=1e-9).method == "direct"
    result = krylearn.solve(A, b, rtol=1e-9, direct=False)
    attempts = result.details["attempts"]
    assert attempts[0]["method"] == "cg" and attempts[0]["info"] < 0
    assert result.method == "minres"
    check_against_spsolve(A, result, b, 1e-9, 1e4)


def test_direct_fallback_and_attempt_log(rng):
    A = convection_diffusion(20)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(A, b, maxiter=2)  # too few iterations for any Krylov attempt
    assert result.converged and result.method == "direct"
    assert len(result.details["attempts"]) >= 2
    assert all(not a["converged"] for a in result.details["attempts"][:-1])
    assert true_relative_residual(A, result.x, b) <= 1e-8


def test_no_fallback_reports_failure(rng):
    A = convection_diffusion(20)
    b = rng.standard_normal(A.shape[0])
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = krylearn.solve(A, b, method="gmres", M="none", maxiter=3, fallback=False)
    assert not result.converged and result.info > 0 and len(result.details["attempts"]) == 1


def test_explicit_method_and_preconditioner(rng):
    A = poisson2d(20)
    b = rng.standard_normal(A.shape[0])
    for method, M in [("bicgstab", "jacobi"), ("gmres", "ilu0"), ("cg", "amg"), ("minres", "none"),
                      ("fgmres", "ssor")]:
        result = krylearn.solve(A, b, method=method, M=M)
        assert result.converged and result.method == method and result.preconditioner.startswith(M)
        assert true_relative_residual(A, result.x, b) <= 1e-8
    result = krylearn.solve(A, b, method="direct")
    assert result.method == "direct" and true_relative_residual(A, result.x, b) <= 1e-8


def test_user_preconditioner_object_and_operator(rng):
    A = poisson2d(20)
    b = rng.standard_normal(A.shape[0])
    d = A.diagonal()
    for M in (krylearn.IC0().setup(A), spla.LinearOperator(A.shape, matvec=lambda r: r / d)):
        result = krylearn.solve(A, b, M=M)
        assert result.converged and result.method == "cg"
        assert result.details["transformed"] == []


def test_relaxation_methods(rng):
    A = poisson2d(8)
    b = rng.standard_normal(64)
    for method in ("sor", "ssor"):
        result = krylearn.solve(A, b, method=method, omega=1.5, rtol=1e-8)
        assert result.converged and result.method == method
        assert true_relative_residual(A, result.x, b) <= 1e-8


def test_sor_solver(rng):
    A = poisson2d(8)
    b = rng.standard_normal(64)
    gs = krylearn.sor(A, b, omega=1.0)
    over = krylearn.sor(A, b, omega=1.6)
    assert gs.converged and over.converged and over.iterations < gs.iterations
    assert true_relative_residual(A, over.x, b) <= 1e-8
    with pytest.raises(ValueError, match="omega"):
        krylearn.sor(A, b, omega=2.0)
    limited = krylearn.sor(A, b, maxiter=3)
    assert not limited.converged and limited.info > 0


def test_x0_already_solution_and_callback(rng):
    A = poisson2d(10)
    x_true = rng.standard_normal(100)
    b = A @ x_true
    result = krylearn.solve(A, b, x0=x_true)
    assert result.converged and result.iterations == 0
    seen = []
    result = krylearn.solve(convection_diffusion(10), b, callback=lambda xk: seen.append(xk.copy()))
    assert result.converged and seen and seen[-1].shape == (100,)


def test_matrix_free_solve(rng):
    A = convection_diffusion(12)
    op = spla.LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=np.float64)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(op, b)
    assert result.converged and true_relative_residual(A, result.x, b) <= 1e-8


def test_float32_system(rng):
    A = poisson2d(16).astype(np.float32)
    b = rng.standard_normal(256).astype(np.float32)
    result = krylearn.solve(A, b, rtol=1e-5)
    assert result.converged and result.x.dtype == np.float32
    assert true_relative_residual(A.astype(np.float64), result.x.astype(np.float64), b) <= 1e-5


def test_atol_only(rng):
    A = poisson2d(10)
    b = rng.standard_normal(100)
    result = krylearn.solve(A, b, rtol=0.0, atol=1e-6)
    assert result.converged and np.linalg.norm(b - A @ result.x) <= 1e-6


def test_extension_points_dispatch(monkeypatch, rng):
    A = poisson2d(6)
    b = rng.standard_normal(36)
    calls = {}

    def solve_dcdm(A, b, *, grid=None, rtol, atol, maxiter, x0, callback, **kwargs):
        calls["dcdm"] = (grid, rtol, kwargs)
        return "dcdm-result"

    monkeypatch.setitem(sys.modules, "krylearn.solvers.dcdm", types.SimpleNamespace(solve_dcdm=solve_dcdm))
    assert krylearn.solve(A, b, method="dcdm", grid=(6, 6), model="tiny") == "dcdm-result"
    assert calls["dcdm"] == ((6, 6), 1e-8, {"model": "tiny"})

    class Tuner:
        def solve(self, A, b, **kwargs):
            calls["tuner"] = kwargs
            return "tuned"

    assert krylearn.solve(A, b, method="sor", tuner=Tuner(), context=3) == "tuned"
    assert calls["tuner"]["context"] == 3 and calls["tuner"]["method"] == "sor"
    with pytest.raises(ValueError, match="tuner"):
        krylearn.solve(A, b, method="sor", omega="bandit")

    class FakeLearnedIC(krylearn.CholeskyFactor):
        @classmethod
        def from_pretrained(cls, name="default"):
            calls["learned"] = name
            return cls(sp.csr_array(np.linalg.cholesky(A.toarray())))

    monkeypatch.setitem(sys.modules, "krylearn.preconditioners.learned_ic", types.SimpleNamespace(LearnedIC=FakeLearnedIC))
    result = krylearn.solve(A, b, method="cg", M="learned:poisson")
    assert calls["learned"] == "poisson" and result.converged and result.iterations <= 2

    class Mat:  # stands in for a petsc4py Mat: dispatch is by the type's module
        pass

    Mat.__module__ = "petsc4py.PETSc"
    monkeypatch.setitem(sys.modules, "krylearn.petsc", types.SimpleNamespace(solve=lambda A, b, **k: ("petsc", k["rtol"])))
    monkeypatch.setattr(krylearn, "petsc", sys.modules["krylearn.petsc"], raising=False)
    assert krylearn.solve(Mat(), b, rtol=1e-6) == ("petsc", 1e-6)


def test_spd_needing_ic_shift_still_solves():
    rng = np.random.default_rng(5)
    n = 300
    B = sp.random_array((n, n), density=0.02, random_state=rng)
    A = sp.csr_array(B @ B.T + 1e-2 * sp.eye_array(n))  # SPD, not an M-matrix
    b = rng.standard_normal(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = krylearn.solve(A, b)
    assert result.converged and true_relative_residual(A, result.x, b) <= 1e-8


def test_dense_preconditioner_matrix_and_missing_model(rng):
    A = poisson2d(8)
    b = rng.standard_normal(64)
    M = np.diag(1.0 / A.diagonal())  # SciPy convention: M approximates A^{-1}
    result = krylearn.solve(A, b, M=M)
    assert result.converged and result.method == "cg"
    op = spla.LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=np.float64)
    assert krylearn.solve(op, b, M=M).converged
    with pytest.raises(ValueError, match="dcdm"):
        krylearn.solve(A, b, method="dcdm")


def test_saddle_point_with_zero_diagonal(rng):
    A0 = poisson2d(12)
    B = sp.random_array((30, 144), density=0.05, random_state=3) + sp.hstack([sp.eye_array(30), sp.csr_array((30, 114))])
    K = sp.csr_array(sp.block_array([[A0, B.T], [B, None]]))  # symmetric indefinite, zero (2,2) block
    b = rng.standard_normal(K.shape[0])
    for method in ("auto", "minres", "gmres"):
        result = krylearn.solve(K, b, method=method, direct=False)
        assert result.converged and result.method == (method if method != "auto" else "minres")
        assert true_relative_residual(K, result.x, b) <= 1e-8


def test_stalled_gmres_attempt_stops_early():
    rng = np.random.default_rng(2)
    n = 1500
    A = sp.csr_array(sp.random_array((n, n), density=0.004, random_state=rng) + sp.diags_array(rng.uniform(0.5, 1, n)))
    b = A @ np.ones(n)
    result = krylearn.solve(A, b)
    assert result.converged and true_relative_residual(A, result.x, b) <= 1e-8
    stalled = [a for a in result.details["attempts"] if "stopped" in a]
    assert stalled and result.method == "direct"  # ILU(0) is useless here; GMRES gives up early
    for attempt in stalled:
        assert attempt["method"] == "gmres" and attempt["iterations"] < 2000 and not attempt["converged"]


def test_callback_can_stop_a_solve(rng):
    A = poisson2d(20)
    b = rng.standard_normal(400)

    def stop_after_five(xk, seen=[]):  # noqa: B006 - counts calls
        seen.append(1)
        if len(seen) == 5:
            raise krylearn.solvers.StopSolve("user stop", iterations=5)

    result = krylearn.solvers.run_cg(A, b, rtol=1e-12, callback=stop_after_five)
    assert not result.converged and result.info == 5 and result.details["stopped"] == "user stop"
    assert np.all(np.isfinite(result.x)) and np.linalg.norm(b - A @ result.x) < np.linalg.norm(b)


def test_explicit_method_and_preconditioner_skip_classification(rng):
    A = convection_diffusion(20)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(A, b, method="gmres", M="ilu0")
    assert result.converged and result.details["kind"] is None  # A never needed classifying
    assert true_relative_residual(A, result.x, b) <= 1e-8
    # when the requested attempt fails, A is classified and the auto chain continues
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = krylearn.solve(A, b, method="gmres", M="jacobi", maxiter=3, direct=False)
    assert result.details["kind"] == "general" and len(result.details["attempts"]) > 1


def test_explicit_cg_on_indefinite_matrix_falls_back_to_minres(rng):
    A = sp.csr_array(poisson2d(15) - 5.0 * sp.eye_array(225))  # symmetric, indefinite, negative diagonal
    b = rng.standard_normal(225)
    with pytest.warns(RuntimeWarning, match=r"requested cg\+none did not solve the system \(info=-1"):
        result = krylearn.solve(A, b, method="cg", M="none", rtol=1e-9)
    assert result.details["attempts"][0]["method"] == "cg" and result.details["attempts"][0]["info"] == -1
    assert result.converged and result.details["kind"] == "symmetric"
    assert true_relative_residual(A, result.x, b) <= 1e-9


def test_a_requested_configuration_that_fails_is_named_in_a_warning(rng):
    """method and M both given: a fallback answer says so (and which configuration gave it); fallback=False
    returns the requested configuration's own result, and a request that succeeds does not warn."""
    A = -sp.csr_array(poisson2d(10))  # symmetric negative definite: no IC(0), no learned IC
    b = rng.standard_normal(100)
    with pytest.warns(RuntimeWarning, match=r"requested cg\+ic0 did not solve the system \(preconditioner setup "
                                            r"failed.*the answer comes from"):
        result = krylearn.solve(A, b, method="cg", M="ic0")
    assert result.converged and result.details["attempts"][0]["info"] == -4
    with pytest.warns(RuntimeWarning, match="did not reach"):
        alone = krylearn.solve(A, b, method="cg", M="ic0", fallback=False)
    assert not alone.converged and len(alone.details["attempts"]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert krylearn.solve(-A, b, method="cg", M="ic0").converged


def test_nonsymmetric_chain_continues_after_bicgstab(rng):
    A = convection_diffusion(30, wind=0.9)
    b = rng.standard_normal(A.shape[0])
    result = krylearn.solve(A, b, maxiter=2, direct=False)  # BiCGStab gets its quarter: 1 iteration
    first = result.details["attempts"][0]
    assert first["method"] == "bicgstab" and first["iterations"] == 1
    assert [a["method"] for a in result.details["attempts"][1:2]] == ["gmres"]


def test_solve_leaves_a_canonical_input_untouched(rng):
    A = poisson2d(20)
    before = (A.data.copy(), A.indices.copy(), A.indptr.copy())
    b = rng.standard_normal(A.shape[0])
    for method in ("auto", "gmres", "minres", "direct"):
        krylearn.solve(A, b, method=method)
    assert all(np.array_equal(u, v) for u, v in zip(before, (A.data, A.indices, A.indptr)))


def _spd_with_ic0_shift(n=300):
    """Small SPD, not an M-matrix, whose IC(0) needs a diagonal shift of 0.016."""
    rng = np.random.default_rng(1)
    B = sp.random_array((n, n), density=0.01, random_state=rng)
    return sp.csr_array(B @ B.T + 1e-3 * sp.eye_array(n)), rng.standard_normal(n)


def test_poor_ic0_on_a_small_spd_system_tries_superlu_first(monkeypatch):
    from krylearn import api

    A, b = _spd_with_ic0_shift()
    assert krylearn.solve(A, b).method == "cg"  # shift 0.016 < POOR_IC_SHIFT: CG + IC(0) as usual
    monkeypatch.setattr(api, "POOR_IC_SHIFT", 0.01)
    result = krylearn.solve(A, b)
    first, second = result.details["attempts"]
    assert (first["method"], first["preconditioner"], first["iterations"]) == ("cg", "ic0", 0)
    assert "shift" in first["deferred"] and second["method"] == "direct"
    assert result.method == "direct" and result.converged and true_relative_residual(A, result.x, b) <= 1e-8
    # only for the auto chain, with the direct fallback, on small systems
    assert krylearn.solve(A, b, method="cg").method == "cg"
    assert krylearn.solve(A, b, direct=False).method == "cg"
    monkeypatch.setattr(api, "SMALL_DIRECT_N", A.shape[0] - 1)
    assert krylearn.solve(A, b).method == "cg"


def test_failed_superlu_first_falls_back_to_cg(monkeypatch):
    from krylearn import api

    A, b = _spd_with_ic0_shift()
    monkeypatch.setattr(api, "POOR_IC_SHIFT", 0.01)

    def failing_splu(*args, **kwargs):
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr(api, "splu", failing_splu)
    result = krylearn.solve(A, b)
    assert [(a["method"], a["info"]) for a in result.details["attempts"]][:2] == [("cg", 0), ("direct", -5)]
    assert result.method == "cg" and result.converged and len(result.details["attempts"]) == 3
    assert true_relative_residual(A, result.x, b) <= 1e-8
