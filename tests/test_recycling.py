"""GCRO-DR and recycled CG: true residuals, k = 0 equals plain GMRES/CG, recycling pays off, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from krylearn.bench.baselines import blas_threads
from krylearn.bench.sequences import darcy_sequence, helmholtz_sequence, thermal_sequence
from krylearn.solvers.recycling import RecyclingSolver


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads(1):
        yield


def true_rel(A, b, x) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def scipy_gmres_iterations(A, b, restart, rtol, M=None) -> int:
    count = [0]

    def tick(_):
        count[0] += 1

    _, info = spla.gmres(A, b, rtol=rtol, atol=0.0, restart=restart, maxiter=1000, M=M, callback=tick, callback_type="pr_norm")
    assert info == 0
    return count[0]


def scipy_cg_iterations(A, b, rtol, M=None) -> int:
    count = [0]

    def tick(_):
        count[0] += 1

    _, info = spla.cg(A, b, rtol=rtol, atol=0.0, maxiter=10000, M=M, callback=tick)
    assert info == 0
    return count[0]


@pytest.mark.parametrize("pc,update_every", [("none", 1), ("jacobi", 1), ("ilu0", 1), ("jacobi", 3)])
def test_gcrodr_reaches_true_residual_on_every_system(pc, update_every):
    systems = darcy_sequence(4, n=400, seed=3)
    solver = RecyclingSolver(k=8, m=20, M=pc, rtol=1e-8, update_every=update_every)
    for s in systems:
        res = solver.solve(s.A, s.b)
        assert res.converged and res.info == 0
        assert true_rel(s.A, s.b, res.x) <= 1e-8
        assert res.method == "gcrodr" and res.preconditioner == pc
        assert res.residuals[0] == pytest.approx(np.linalg.norm(s.b))
    assert solver.recycle_dim == 8
    assert solver.recycle_space.shape == (400, 8)


def test_gcrodr_nonsymmetric_indefinite_sequence():
    rng = np.random.default_rng(0)
    systems = helmholtz_sequence(3, n=400, k0=5.0)
    conv = sp.diags_array([-np.ones(399), np.ones(399)], offsets=[-1, 1]) * 0.3  # make it nonsymmetric
    solver = RecyclingSolver(k=6, m=20, rtol=1e-7)
    for s in systems:
        A = sp.csr_array(s.A + conv)
        b = rng.standard_normal(400)
        res = solver.solve(A, b)
        assert res.converged and true_rel(A, b, res.x) <= 1e-7


@pytest.mark.parametrize("pc", ["none", "jacobi"])
def test_k0_matches_plain_gmres_iterations(pc):
    s = darcy_sequence(1, n=900, seed=1)[0]
    M = None
    if pc == "jacobi":
        M = spla.LinearOperator(s.A.shape, matvec=lambda r: r / s.A.diagonal())
    expected = scipy_gmres_iterations(s.A, s.b, restart=30, rtol=1e-8, M=M)
    res = RecyclingSolver(k=0, m=30, M=pc, rtol=1e-8).solve(s.A, s.b)
    assert res.converged and true_rel(s.A, s.b, res.x) <= 1e-8
    assert abs(res.iterations - expected) <= 1, (res.iterations, expected)


def test_k0_matches_native_gmres_iterations():
    from krylearn.solvers.krylov import run_gmres

    s = darcy_sequence(1, n=900, seed=2)[0]
    native = run_gmres(s.A, s.b, restart=25, rtol=1e-8, atol=0.0, maxiter=10000)
    res = RecyclingSolver(k=0, m=25, rtol=1e-8).solve(s.A, s.b)
    assert native.converged and res.converged
    assert abs(res.iterations - native.iterations) <= 1


def test_identical_matrices_second_solve_far_fewer_iterations():
    s = darcy_sequence(1, n=900, seed=4)[0]
    rng = np.random.default_rng(1)
    b2 = rng.standard_normal(900)
    plain = RecyclingSolver(k=0, m=40, rtol=1e-8).solve(s.A, b2)
    solver = RecyclingSolver(k=20, m=40, rtol=1e-8)
    first = solver.solve(s.A, s.b)
    second = solver.solve(s.A.copy(), b2)
    assert first.converged and second.converged and plain.converged
    assert true_rel(s.A, b2, second.x) <= 1e-8
    assert second.iterations < 0.7 * first.iterations
    assert second.iterations < 0.4 * plain.iterations
    # the same matrix (by value) reuses C = A U: no extra operator applications for the space
    assert second.details["matvecs"] <= second.iterations + 2 * second.details["cycles"] + 1


def test_recycled_cg_k0_matches_cg_and_recycling_helps():
    systems = thermal_sequence(3, m=30, seed=5)
    s = systems[0]
    expected = scipy_cg_iterations(s.A, s.b, rtol=1e-8)
    plain = RecyclingSolver("cg", k=0, rtol=1e-8).solve(s.A, s.b)
    assert plain.converged and abs(plain.iterations - expected) <= 1
    darcy = darcy_sequence(3, n=900, seed=6)
    solver = RecyclingSolver("cg", k=15, ell=30, M="ic0", rtol=1e-10)
    iters = []
    for d in darcy:
        res = solver.solve(d.A, d.b)
        assert res.converged and res.method == "recycled-cg"
        assert true_rel(d.A, d.b, res.x) <= 1e-10
        iters.append(res.iterations)
    baseline = RecyclingSolver("cg", k=0, M="ic0", rtol=1e-10).solve(darcy[2].A, darcy[2].b).iterations
    assert iters[2] < baseline


def test_auto_method_picks_cg_for_symmetric():
    s = darcy_sequence(1, n=400)[0]
    assert RecyclingSolver("auto", k=5).solve(s.A, s.b).method == "recycled-cg"


def test_recycled_cg_rejects_nonsymmetric():
    A = sp.csr_array(sp.diags_array([-np.ones(49), 3 * np.ones(50), -0.5 * np.ones(49)], offsets=[-1, 0, 1]))
    with pytest.raises(ValueError, match="symmetric"):
        RecyclingSolver("cg", k=4).solve(A, np.ones(50))


def test_recycled_cg_reports_indefinite_matrix():
    A = sp.csr_array(sp.diags_array(np.linspace(-1.0, 1.0, 50) + 0.01))
    res = RecyclingSolver("cg", k=0).solve(A, np.ones(50))
    assert not res.converged and res.info == -1


@pytest.mark.parametrize("k, m", [(5, 5), (8, 4)])
def test_k_not_less_than_m_is_rejected(k, m):
    with pytest.raises(ValueError, match="k < m"):
        RecyclingSolver(k=k, m=m)


def test_update_every_skips_space_updates_between_cycles():
    """With update_every = c the space changes only on every c-th cycle: a 2-cycle solve on the
    same matrix (no change of A to adapt C to) leaves the space as it was when c = 3."""
    s0, s1 = darcy_sequence(2, n=400, seed=3)
    solvers = [RecyclingSolver(k=8, m=12, M="jacobi", rtol=1e-8, update_every=c) for c in (1, 3)]
    for solver in solvers:
        solver.solve(s0.A, s0.b)
    spaces = [solver.recycle_space for solver in solvers]
    results = [solver.solve(s0.A, s1.b, maxiter=8) for solver in solvers]  # two cycles of 4 Arnoldi steps
    assert all(r.details["cycles"] == 2 for r in results)
    assert not np.allclose(solvers[0].recycle_space, spaces[0])
    np.testing.assert_array_equal(solvers[1].recycle_space, spaces[1])


@pytest.mark.parametrize("kwargs", [{"k": -1}, {"m": 0}, {"keep": "middle"}, {"method": "bicg"}, {"rtol": -1.0},
                                    {"update_every": 0}, {"update_every": 1.5}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        RecyclingSolver(**kwargs)


def test_size_change_resets_with_warning():
    a, b = darcy_sequence(1, n=400)[0], darcy_sequence(1, n=900)[0]
    solver = RecyclingSolver(k=5, m=15)
    solver.solve(a.A, a.b)
    assert solver.recycle_dim == 5
    with pytest.warns(RuntimeWarning, match="reset"):
        res = solver.solve(b.A, b.b)
    assert res.converged and solver.recycle_space.shape[0] == 900


def test_rank_deficient_or_nan_space_is_dropped_and_solve_continues():
    systems = darcy_sequence(2, n=400, seed=8)
    solver = RecyclingSolver(k=6, m=20, rtol=1e-8)
    solver.solve(systems[0].A, systems[0].b)
    # corrupt the space: duplicate columns (rank deficient) and one NaN column
    U = solver._U
    U[:, 1] = U[:, 0]
    res = solver.solve(systems[1].A, systems[1].b)
    assert res.converged and true_rel(systems[1].A, systems[1].b, res.x) <= 1e-8
    assert res.details["dropped"] >= 1
    solver._U[:, 0] = np.nan
    res = solver.solve(systems[0].A, systems[0].b)
    assert res.converged and true_rel(systems[0].A, systems[0].b, res.x) <= 1e-8
    assert res.details["dropped"] >= 1
    assert np.all(np.isfinite(solver.recycle_space))


def test_bad_vectors_and_maxiter():
    s = darcy_sequence(1, n=400)[0]
    solver = RecyclingSolver(k=4, m=10)
    with pytest.raises(ValueError):
        solver.solve(s.A, np.ones(399))
    with pytest.raises(ValueError):
        solver.solve(s.A, np.full(400, np.nan))
    with pytest.raises(TypeError):
        solver.solve("matrix", s.b)
    res = solver.solve(s.A, s.b, maxiter=5)
    assert not res.converged and res.info > 0 and res.iterations == 5


def test_reset_forgets_space_and_zero_rhs():
    s = darcy_sequence(1, n=400)[0]
    solver = RecyclingSolver(k=4, m=12)
    solver.solve(s.A, s.b)
    solver.reset()
    assert solver.recycle_space is None and solver.recycle_dim == 0
    res = solver.solve(s.A, np.zeros(400))
    assert res.converged and res.iterations == 0 and not np.any(res.x)


def test_float32_input_returns_float32():
    s = darcy_sequence(1, n=400)[0]
    res = RecyclingSolver(k=4, m=12, rtol=1e-5).solve(s.A.astype(np.float32), s.b.astype(np.float32))
    assert res.x.dtype == np.float32 and res.converged


def test_warm_start_and_keep_largest():
    s = darcy_sequence(1, n=400, seed=9)[0]
    solver = RecyclingSolver(k=5, m=15, warm_start=True, rtol=1e-8)
    assert solver.solve(s.A, s.b).converged
    again = solver.solve(s.A, s.b)  # starts from the previous solution
    assert again.converged and again.iterations == 0
    res = RecyclingSolver(k=5, m=15, keep="largest", rtol=1e-8).solve(s.A, s.b)
    assert res.converged and true_rel(s.A, s.b, res.x) <= 1e-8


def test_preconditioner_object_is_set_up_per_matrix():
    from krylearn.preconditioners import Jacobi

    systems = darcy_sequence(2, n=400, seed=10)
    pc = Jacobi()
    solver = RecyclingSolver(k=5, m=15, M=pc, rtol=1e-8)
    for s in systems:
        res = solver.solve(s.A, s.b)
        assert res.converged and true_rel(s.A, s.b, res.x) <= 1e-8
        assert np.allclose(pc.apply(np.ones(400)), 1.0 / s.A.diagonal())


def test_suite_quick_runs_and_writes_results(tmp_path, monkeypatch):
    from krylearn.bench import suite_recycle

    monkeypatch.setenv("KRYLEARN_RESULTS", str(tmp_path))
    rc = suite_recycle.main(["--quick", "--families", "darcy", "--preconditioners", "none,ilu", "--count", "4",
                             "--baseline-count", "2", "--k", "6", "--m", "20"])
    assert rc == 0
    for stem in ("table", "systems"):
        assert (tmp_path / "recycle" / f"{stem}.csv").is_file()
        assert (tmp_path / "recycle" / f"{stem}.json").is_file()


def test_recycle_space_lives_in_the_solution_space():
    """C = A U is orthonormal for the current matrix, whatever the preconditioner (U is not M-dependent)."""
    systems = darcy_sequence(3, n=400, seed=11)
    solver = RecyclingSolver(k=6, m=20, M="ilu0", rtol=1e-8)
    for s in systems:
        assert solver.solve(s.A, s.b).converged
        U = solver.recycle_space
        C = s.A @ U
        np.testing.assert_allclose(C.T @ C, np.eye(U.shape[1]), atol=1e-10)
        np.testing.assert_allclose(C, solver._C, atol=1e-10)


@pytest.mark.parametrize("M", ["jacobi", "ssor", "ilu0"])
def test_preconditioned_image_of_the_space_is_m_times_u(M):
    """The harmonic-Ritz pencil pairs U with M U (right preconditioning): the M U kept across
    cycles (and formed from M's factors at each new matrix) equals M applied to U."""
    systems = darcy_sequence(3, n=400, seed=5)
    solver = RecyclingSolver(k=6, m=20, M=M, rtol=1e-8)
    for s in systems:
        assert solver.solve(s.A, s.b).converged
        pc = solver._op.pc
        np.testing.assert_allclose(solver._MU, pc.multiply(solver.recycle_space), rtol=1e-8,
                                   atol=1e-10 * np.abs(solver._MU).max())


def test_harmonic_ritz_basis_matches_generalised_eigenproblem():
    import scipy.linalg as sla

    from krylearn.solvers.recycling import _harmonic_ritz_basis

    rng = np.random.default_rng(12)
    N, k = 14, 5
    G = np.triu(rng.standard_normal((N + 1, N)), -1) + 3 * np.eye(N + 1, N)
    WtV = np.eye(N + 1, N) + 0.3 * rng.standard_normal((N + 1, N))
    theta, Zr = sla.eig(G.T @ G, G.T @ WtV)
    for keep in ("smallest", "largest"):
        P = _harmonic_ritz_basis(G, WtV, k, keep)
        assert P.shape[1] == k
        np.testing.assert_allclose(P.T @ P, np.eye(P.shape[1]), atol=1e-12)
        order = np.argsort(np.abs(theta) if keep == "smallest" else -np.abs(theta))
        # every wanted eigenvector whose conjugate partner is also wanted lies in range(P)
        wanted = order[:k]
        for i in wanted:
            if np.iscomplex(theta[i]) and not np.any(np.isclose(theta[wanted], np.conj(theta[i]))):
                continue
            z = Zr[:, i] / np.linalg.norm(Zr[:, i])
            assert np.linalg.norm(z - P @ (P.T @ z)) < 1e-8
    with pytest.raises(ValueError):
        _harmonic_ritz_basis(np.zeros((N + 1, N)), WtV, k, "smallest")


def test_cholesky_qr_orthonormalises_and_drops_dependent_columns():
    from krylearn.solvers.recycling import _cholesky_qr

    rng = np.random.default_rng(13)
    G = np.asfortranarray(rng.standard_normal((500, 6)) @ np.diag([1.0, 1e-3, 1e3, 1.0, 1.0, 1.0]))
    G[:, 4] = G[:, 0] + G[:, 1]  # dependent
    Q, S = _cholesky_qr(G)
    assert Q.shape == (500, 5) and S.shape == (6, 5)
    np.testing.assert_allclose(Q.T @ Q, np.eye(5), atol=1e-13)
    np.testing.assert_allclose(G @ S, Q, atol=1e-10)
    assert _cholesky_qr(np.zeros((50, 3), order="F")) is None
