"""The default and kernels benchmark suites (quick mode) and their measuring harness."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from krylearn.bench import baselines, suite_default, suite_kernels

RTOL = 1e-8


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("KRYLEARN_RESULTS", str(tmp_path))
    return tmp_path


def _rows(path):
    payload = json.loads(path.read_text())
    return payload["rows"], payload["meta"]


def test_default_suite_quick_writes_results_and_krylearn_meets_rtol(results):
    assert suite_default.main(["--quick"]) == 0
    out = results / "default"
    for name in ("results.csv", "results.json", "summary.csv", "summary.json", "convergence.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows, meta = _rows(out / "results.json")
    assert meta["rtol"] == RTOL
    problems = {p.name for p in suite_default.suite_problems(quick=True)}
    assert {r["problem"] for r in rows} == problems
    krylearn_rows = [r for r in rows if r["library"] == "krylearn"]
    assert len(krylearn_rows) >= 3 * len(problems)  # auto + at least two explicit methods per problem
    for r in krylearn_rows:
        assert r["relres"] <= RTOL, r  # true residual, recomputed by the harness
        assert r["converged"] and r["iterations"] > 0, r
    for r in rows:  # every library is judged by the same recomputed true residual
        assert r["converged"] == (r["relres"] <= RTOL), r
        if r["converged"]:
            assert math.isfinite(r["total_s"]) and r["total_s"] == pytest.approx(r["setup_s"] + r["solve_s"])
    summary, _ = _rows(out / "summary.json")
    assert {s["problem"] for s in summary} == problems
    assert all(s["ratio"] > 0 for s in summary)


def test_default_suite_skips_petsc_cleanly(results, monkeypatch):
    monkeypatch.setattr(baselines, "petsc_or_reason", lambda: (None, "petsc4py missing (simulated)"))
    monkeypatch.setattr(suite_default, "petsc_or_reason", lambda: (None, "petsc4py missing (simulated)"))
    assert suite_default.main(["--quick", "--only", "poisson2d", "--no-plot"]) == 0
    rows, meta = _rows(results / "default" / "results.json")
    assert rows and not any(r["library"] == "petsc" for r in rows)
    assert "simulated" in meta["petsc"]
    assert not (results / "default" / "convergence.png").exists()


@pytest.mark.parametrize("problem", suite_default.suite_problems(quick=True), ids=lambda p: p.name)
def test_krylearn_solutions_agree_with_spsolve(problem):
    """Every krylearn configuration of the suite, on every quick suite problem:
    true residual <= rtol and forward error within kappa_1(A) * residual of spsolve's x."""
    A = problem.A
    b = suite_default.right_hand_side(A)
    x_direct = spla.spsolve(sp.csc_matrix(A), b)
    lu = spla.splu(sp.csc_matrix(A))
    inverse = spla.LinearOperator(A.shape, matvec=lu.solve, rmatvec=lambda y: lu.solve(y, trans="T"), dtype=float)
    kappa = spla.onenormest(sp.csr_matrix(A)) * spla.onenormest(inverse)
    for runner in suite_default.krylearn_runners(problem.spd):
        outcome = runner.solve(runner.setup(A), b, RTOL, 10_000, False)
        relres = baselines.true_relative_residual(A, b, outcome.x)
        assert relres <= RTOL, (runner.label, relres)
        residual_1 = np.linalg.norm(b - A @ outcome.x, 1) / np.linalg.norm(b, 1)
        error_1 = np.linalg.norm(outcome.x - x_direct, 1) / np.linalg.norm(x_direct, 1)
        assert error_1 <= 10 * kappa * max(residual_1, np.finfo(float).eps), (runner.label, error_1, kappa)


def test_kernels_suite_quick(results):
    assert suite_kernels.main(["--quick"]) == 0
    out = results / "kernels"
    for name in ("per_iteration.json", "per_iteration.csv", "targets.json", "breakdown.json"):
        assert (out / name).is_file(), name
    rows, meta = _rows(out / "per_iteration.json")
    assert meta["copy_bandwidth_GBps"] > 0
    problems = {name for name, _ in suite_kernels.suite_problems(quick=True)}
    for problem in problems:
        here = [r for r in rows if r["problem"] == problem]
        mine = {r["pc"]: r for r in here if (r["library"], r["method"]) == ("krylearn", "cg")}
        assert set(mine) == {"none", "ssor", "ic0"}
        k_cg, k_pcg = suite_kernels.iteration_counts(mine["none"]["nnz"], quick=True)
        assert mine["none"]["iterations"] == k_cg and mine["ssor"]["iterations"] == k_pcg
        assert all(r["ms_per_iter"] > 0 for r in mine.values())
        assert mine["none"]["GB/s"] > 0
        gmres = [r for r in here if r["method"] == "gmres(30)"]
        assert {r["library"] for r in gmres} >= {"krylearn", "scipy"}
        k_gmres = 30 * -(-k_cg // 30)  # whole GMRES(30) cycles
        assert all(r["iterations"] == k_gmres and r["ms_per_iter"] > 0 and "GB/s" not in r for r in gmres)
        assert sorted(r["method"] for r in here if r["library"] == "scipy") == ["cg", "gmres(30)"]
    targets, _ = _rows(out / "targets.json")
    assert {t["met"] for t in targets} <= {"yes", "no", "n/a"}


def test_cg_byte_model_counts_matrix_once_and_seven_vectors():
    A = sp.csr_array(sp.random(50, 50, density=0.1, random_state=0, format="csr") + sp.eye(50))
    expected = A.nnz * (8 + A.indices.itemsize) + 51 * A.indptr.itemsize + 7 * 8 * 50
    assert suite_kernels.cg_bytes(A) == expected


def test_true_relative_residual_matches_dense_and_flags_nonfinite():
    rng = np.random.default_rng(0)
    A = sp.csr_array(sp.random(30, 30, density=0.2, random_state=1) + 3 * sp.eye(30))
    b, x = rng.standard_normal(30), rng.standard_normal(30)
    dense = np.linalg.norm(b - A.toarray() @ x) / np.linalg.norm(b)
    assert baselines.true_relative_residual(A, b, x) == pytest.approx(dense, rel=1e-12)
    x[3] = np.nan
    assert math.isnan(baselines.true_relative_residual(A, b, x))


def test_measure_turns_a_failing_solver_into_a_row():
    def broken(state, b, rtol, maxiter, trace):
        raise RuntimeError("zero pivot")

    runner = baselines.Runner("lib", "m", "pc", lambda A: A, broken)
    A = sp.csr_array(sp.eye(4))
    result = baselines.measure(runner, A, np.ones(4), rtol=RTOL, maxiter=10)
    assert result.row["converged"] is False and "zero pivot" in result.row["note"] and result.x is None


def test_blas_threads_restores_previous_counts():
    libraries = baselines._openblas_libraries()
    if not libraries:
        pytest.skip("no OpenBLAS found in this process")
    before = [get() for get, _ in libraries]
    with baselines.blas_threads(1):
        assert all(get() == 1 for get, _ in libraries)
    assert [get() for get, _ in libraries] == before
