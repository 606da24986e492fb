"""OmegaTuner and SolverTuner on real (small) solves: correct solutions, convergence to the
known best omega, capped costs, bad input, state save/restore, the relax problems and suite."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

import krylearn
from krylearn.bandits import ChebCB, Configuration, OmegaTuner, SolverTuner, TsallisINF, load_state, save_state
from krylearn.bandits.solver_tuner import STOPPED_COST_FACTOR
from krylearn.bench.problems import poisson2d
from krylearn.bench.relax_problems import HeatProblem, scaled_laplacian, shift_sequence, shifted, young_omega
from krylearn.solvers.relaxation import sor


GRID = np.array([1.0, 1.2, 1.4, 1.6, 1.8, 1.9])


def _relres(A, x, b) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def test_omega_tuner_converges_to_the_known_best_arm(rng):
    A = poisson2d(12)  # Young: omega* = 2 / (1 + sin(pi / 13)) = 1.62
    b = rng.standard_normal(A.shape[0])
    exhaustive = [sor(A, b, omega=w, rtol=1e-8).iterations for w in GRID]
    best = int(np.argmin(exhaustive))
    assert abs(GRID[best] - 2 / (1 + math.sin(math.pi / 13))) < 0.1
    tuner = OmegaTuner(GRID, learner=TsallisINF(len(GRID), seed=0))
    for _ in range(300):
        result = krylearn.solve(A, b, method="sor", omega="bandit", tuner=tuner, rtol=1e-8)
        assert result.converged and _relres(A, result.x, b) <= 1e-8
        assert result.details["tuner"]["loss"] == exhaustive[result.details["tuner"]["arm"]]
    assert tuner.best_omega() == GRID[best]
    late = [h["arm"] for h in tuner.history[200:]]
    assert late.count(best) > 0.7 * len(late)


def test_contextual_omega_tuner_follows_youngs_omega():
    m = 10
    L = scaled_laplacian(m)
    shifts = shift_sequence(400, variance="high", c_max=500.0, seed=1)
    grid = np.linspace(1.0, 1.9, 10)
    tuner = OmegaTuner(grid, context_range=(0.0, 500.0), seed=0)  # ChebCB by default
    assert isinstance(tuner.learner, ChebCB)
    b = np.ones(m * m)
    results = tuner.solve_sequence([(shifted(L, c), b, c) for c in shifts], rtol=1e-8)
    assert all(r.converged for r in results)
    for c in (0.0, 125.0, 250.0):  # where the Beta(0.5, 1.5) shifts put the data
        table = [sor(shifted(L, c), b, omega=w, rtol=1e-8).iterations for w in grid]
        chosen = sor(shifted(L, c), b, omega=tuner.best_omega(c), rtol=1e-8).iterations
        assert chosen <= 1.15 * min(table)
        assert abs(tuner.best_omega(c) - young_omega(m, c)) < 0.15


def test_ssor_pcg_tuning_and_warm_started_sequence():
    problem = HeatProblem(m=10, steps=30, dt=1e-3, seed=0)
    tuner = OmegaTuner(method="cg", context_range=(0.0, 10.0), cost="seconds", seed=0)
    u = problem.initial()
    for step in range(problem.steps):
        A, b = problem.matrix(step), problem.rhs(step, u)
        result = krylearn.solve(A, b, method="cg", M="ssor", omega="bandit", tuner=tuner, x0=u,
                                context=problem.kappa[step], rtol=1e-10)
        assert result.converged and result.preconditioner == "ssor"
        assert _relres(A, result.x, b) <= 1e-10
        u = result.x
    reference = problem.reference_trajectory()[-1]
    np.testing.assert_allclose(u, reference, rtol=1e-6, atol=1e-9 * np.abs(reference).max())
    assert all(h["loss"] == h["seconds"] for h in tuner.history)


def test_maxiter_counts_as_the_capped_cost_and_never_crashes(rng):
    A = poisson2d(16)
    b = rng.standard_normal(A.shape[0])
    tuner = OmegaTuner([1.0, 1.5], maxiter=5, seed=0)
    result = tuner.solve(A, b)
    assert not result.converged and result.info > 0
    assert tuner.history[-1]["loss"] == 5
    seconds_tuner = OmegaTuner([1.0, 1.5], cost="seconds", seed=0)
    result = seconds_tuner.solve(A, b, maxiter=4)
    assert seconds_tuner.history[-1]["loss"] == pytest.approx(result.seconds * 4 / result.iterations)


def test_omega_tuner_bad_input(rng):
    with pytest.raises(ValueError, match="empty"):
        OmegaTuner([])
    for grid in ([0.5, 2.0], [0.0, 1.0], [1.0, float("nan")], [-1.0]):
        with pytest.raises(ValueError, match=r"\(0, 2\)"):
            OmegaTuner(grid)
    with pytest.raises(ValueError, match="context_range"):
        OmegaTuner(learner="chebcb")
    with pytest.raises(ValueError, match="arms"):
        OmegaTuner(GRID, learner=TsallisINF(3))
    with pytest.raises(ValueError):
        OmegaTuner(method="gmres")
    tuner = OmegaTuner(context_range=(0.0, 1.0))
    A, b = poisson2d(6), np.ones(36)
    with pytest.raises(ValueError, match="context"):
        tuner.solve(A, b)
    with pytest.warns(RuntimeWarning, match="clipped"):
        assert tuner.solve(A, b, context=3.0).converged
    with pytest.raises(ValueError, match="preconditioner"):
        OmegaTuner(method="cg").solve(A, b, M="ic0")
    with pytest.raises(ValueError, match="omega=\"bandit\" needs a tuner"):
        krylearn.solve(A, b, method="sor", omega="bandit")


def test_omega_tuner_state_survives_a_restart(tmp_path, rng):
    A, b = poisson2d(8), rng.standard_normal(64)
    tuner = OmegaTuner(GRID, seed=3)
    for _ in range(20):
        tuner.solve(A, b)
    save_state(tuner, tmp_path / "tuner.json")
    restored = load_state(OmegaTuner(GRID), tmp_path / "tuner.json")
    assert restored.history == tuner.history
    assert [tuner.solve(A, b).details["tuner"]["arm"] for _ in range(10)] == \
           [restored.solve(A, b).details["tuner"]["arm"] for _ in range(10)]
    state = json.loads((tmp_path / "tuner.json").read_text())
    for broken in ({**state, "omegas": [1.0, 1.1]}, {**state, "learner": {"kind": "TsallisINF"}},
                   {**state, "history": [{"loss": "nan"}]}, {"kind": "SolverTuner"}):
        with pytest.raises(ValueError, match="corrupted|incompatible"):
            OmegaTuner(GRID).load_state_dict(broken)


def _convection_diffusion(m: int, wind: float) -> sp.csr_array:
    """Upwinded 1-D convection-diffusion in 2-D (nonsymmetric, M-matrix)."""
    t = sp.diags_array([-(1 + wind) * np.ones(m - 1), (2 + wind) * np.ones(m), -np.ones(m - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(m)
    return sp.csr_array(sp.kron(t, eye) + sp.kron(eye, t))


def test_solver_tuner_solves_a_mixed_stream_correctly(rng):
    tuner = SolverTuner(seed=0)
    for i in range(16):
        A = poisson2d(12 + i % 3) if i % 2 == 0 else _convection_diffusion(12, 2.0)
        b = rng.standard_normal(A.shape[0])
        result = krylearn.solve(A, b, method="auto", tuner=tuner, rtol=1e-9)
        assert result.converged and _relres(A, result.x, b) <= 1e-9
        attempts = result.details["tuner"]["attempts"]
        if i % 2 == 1:  # nonsymmetric: never CG, IC(0) or SSOR-PCG
            assert all(not tuner.configurations[a["arm"]].needs_symmetric for a in attempts)
    assert len(tuner.history) == 16
    assert not tuner.best_configuration(_convection_diffusion(12, 2.0)).needs_symmetric


def test_solver_tuner_opens_a_new_kind_of_matrix_with_its_preferred_configuration(rng):
    tuner = SolverTuner(seed=0)  # no evidence yet: the first available configuration in the preference order
    spd, nonsymmetric = poisson2d(12), _convection_diffusion(12, 2.0)
    first = [tuner.solve(A, rng.standard_normal(A.shape[0])).details["tuner"]["attempts"][0]["configuration"]
             for A in (spd, nonsymmetric)]
    assert first == ["cg+ic0", "bicgstab+ilu0"]


def test_solver_tuner_falls_back_and_penalises_a_failing_configuration(rng):
    A = _convection_diffusion(10, 1.0)
    b = rng.standard_normal(A.shape[0])
    # tridiagonal-in-blocks is not exact for ILU(0), but GMRES+ILU(0) converges within 60; SOR cannot in 3
    configs = (Configuration("sor", omega=1.0), Configuration("gmres", "ilu0"))
    tuner = SolverTuner(configs, failure_penalty=10.0, seed=0)
    for _ in range(12):
        result = tuner.solve(A, b, maxiter=60, rtol=1e-8)
        assert result.converged and _relres(A, result.x, b) <= 1e-8
    sor_rounds = [a for h in tuner.history for a in h["attempts"] if a["arm"] == 0]
    assert sor_rounds and all(not a["converged"] and a["loss"] > a["seconds"] for a in sor_rounds)
    assert tuner.best_configuration(A) == configs[1]


def test_exploration_budget_is_a_multiple_of_the_best_tried_arm():
    """Nothing tried: no budget. Once arm 0 converged in 1 s, exploring arm 1 gets budget_factor x 1 s,
    and the greedy arm (arm 0 again) none."""
    tuner = SolverTuner((Configuration("cg", "jacobi"), Configuration("cg", "ic0")), budget_factor=2.5, seed=0)
    features, mask = np.array([3.0, 0.7, 1.0, 1.0, 1.0, 0.0]), np.ones(2, dtype=bool)
    calls = []

    def attempt(arm, budget):
        calls.append((arm, budget))
        return (1.0, True, 10) if arm == 0 else (min(budget, 8.0), False, 40)

    tuner.play(features, mask, attempt)  # arm 0 first: untried arms go in order of their (equal) priors
    tuner.play(features, mask, attempt)  # arm 1 explored once, stopped at its budget, then arm 0
    assert calls[0] == (0, math.inf)
    assert calls[1][0] == 1 and calls[1][1] == pytest.approx(2.5, rel=1e-9)
    assert calls[2] == (0, math.inf)  # the fallback after a failed attempt is never budgeted
    assert tuner.exploration_budget(features, mask, 0) == math.inf
    assert SolverTuner(budget_factor=None).exploration_budget(features, mask, 1) == math.inf
    stopped, fallback = tuner.history[1]["attempts"]
    assert stopped["stopped"] and not stopped["converged"]
    assert stopped["loss"] == pytest.approx(STOPPED_COST_FACTOR * 2.5)  # censored: charged 2x its time
    assert not fallback["stopped"] and fallback["loss"] == 1.0


def test_a_failure_within_the_budget_pays_the_failure_penalty():
    """An attempt that ends unconverged before its budget (iteration cap, breakdown) is a failure:
    its time plus failure_penalty x the successful solve's; a budget stop is not."""
    tuner = SolverTuner((Configuration("cg", "jacobi"), Configuration("cg", "ic0")), failure_penalty=10.0,
                        budget_factor=3.0, seed=0)
    features, mask = np.array([3.0, 0.7, 1.0, 1.0, 1.0, 0.0]), np.ones(2, dtype=bool)
    tuner.play(features, mask, lambda arm, budget: (1.0, True, 10) if arm == 0 else (0.5, False, 40))
    failed, fallback = tuner.play(features, mask, lambda arm, budget: (1.0, True, 10) if arm == 0 else (0.5, False, 40))
    assert failed["arm"] == 1 and not failed["stopped"] and failed["loss"] == pytest.approx(0.5 + 10.0 * 1.0)
    assert fallback["arm"] == 0 and fallback["loss"] == 1.0


def test_a_live_attempt_is_stopped_when_its_budget_is_spent(rng, monkeypatch):
    """A Krylov attempt over its budget stops at the next iteration, counts as a failure (no
    answer taken from it) and the tuner's fallback solves the system."""
    A = poisson2d(20)
    b = rng.standard_normal(A.shape[0])
    tuner = SolverTuner((Configuration("cg", "jacobi"), Configuration("cg", "ic0")), seed=0)
    monkeypatch.setattr(tuner, "exploration_budget", lambda features, mask, arm: 0.0 if arm == 0 else math.inf)
    seen = []
    result = tuner.solve(A, b, rtol=1e-10, callback=lambda xk: seen.append(1))
    first, second = result.details["tuner"]["attempts"]
    assert first["arm"] == 0 and not first["converged"] and first["iterations"] == 1
    assert second["arm"] == 1 and second["converged"]
    assert result.converged and _relres(A, result.x, b) <= 1e-10 and result.preconditioner == "ic0"
    assert len(seen) == 1 + result.iterations  # the user's callback saw every iteration of both attempts


def test_solver_tuner_bad_input_and_state(tmp_path, rng):
    with pytest.raises(ValueError):
        SolverTuner(())
    with pytest.raises(ValueError):
        Configuration("cg", "ic0", omega=2.5)
    with pytest.raises(ValueError):
        Configuration("lsqr")
    tuner = SolverTuner(seed=1)
    A, b = _convection_diffusion(8, 1.0), rng.standard_normal(64)
    with pytest.raises(ValueError, match="no configuration"):
        tuner.solve(A, b, method="cg")
    with pytest.raises(ValueError, match="feature vector"):
        tuner.solve(A, b, context=0.5)
    tuner.solve(A, b)
    save_state(tuner, tmp_path / "s.json")
    restored = load_state(SolverTuner(seed=1), tmp_path / "s.json")
    assert restored.learner.state_dict() == tuner.learner.state_dict()
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        load_state(SolverTuner(), tmp_path / "s.json")
    with pytest.raises(ValueError, match="configurations"):
        SolverTuner((Configuration("cg", "jacobi"),)).load_state_dict(restored.state_dict())
    # the same configurations in another order (a state saved before a change of the default order)
    reversed_tuner = SolverTuner(tuner.configurations[::-1], seed=1)
    reversed_tuner.load_state_dict(tuner.state_dict())
    features = tuner.history[0]["features"]
    np.testing.assert_array_equal(reversed_tuner.learner.predict(features), tuner.learner.predict(features)[::-1])
    assert [a["configuration"] for a in reversed_tuner.history[0]["attempts"]] == \
           [reversed_tuner.configurations[a["arm"]].label for a in reversed_tuner.history[0]["attempts"]]
    assert restored.budget_factor == tuner.budget_factor == 2.0
    for bad in (0.5, float("nan"), -1.0):
        with pytest.raises(ValueError, match="budget_factor"):
            SolverTuner(budget_factor=bad)
    state = tuner.state_dict()
    state["budget_factor"] = 0.1
    with pytest.raises(ValueError, match="budget_factor"):
        SolverTuner(seed=1).load_state_dict(state)


def test_relax_problems_match_their_definitions():
    m = 9
    L = scaled_laplacian(m)
    eig = np.linalg.eigvalsh(L.toarray())
    h = 1 / (m + 1)
    assert eig.min() == pytest.approx(8 / h**2 * math.sin(math.pi * h / 2) ** 2, rel=1e-10)
    c = 37.0
    A = shifted(L, c)
    D = A.diagonal()
    rho_j = np.abs(np.linalg.eigvals(np.eye(m * m) - A.toarray() / D[:, None])).max()
    assert young_omega(m, c) == pytest.approx(2 / (1 + math.sqrt(1 - rho_j**2)), rel=1e-10)
    for variance in ("high", "low"):
        s = shift_sequence(2000, variance=variance, c_max=10.0, seed=0)
        assert s.min() >= 0 and s.max() <= 10 and abs(s.mean() - 2.5) < 0.15
    assert shift_sequence(2000, variance="high").std() > 3 * shift_sequence(2000, variance="low").std()
    problem = HeatProblem(m=8, steps=5)
    assert np.all((problem.kappa >= 0) & (problem.kappa <= 10))
    u = problem.reference_trajectory()
    for step in range(5):  # Crank-Nicolson: (I + dt k/2 L) u1 = (I - dt k/2 L) u0 + dt f
        lhs = u[step + 1] + 0.5 * problem.dt * problem.kappa[step] * (problem.L @ u[step + 1])
        np.testing.assert_allclose(lhs, problem.rhs(step, u[step]), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_relax_suite_quick_runs_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    from krylearn.bench import suite_relax

    assert suite_relax.main(["--quick", "--results", str(tmp_path)]) == 0
    out = tmp_path / "relax"
    for stem in ("shift", "heat", "stream"):
        rows = json.loads((out / f"{stem}.json").read_text())["rows"]
        assert rows and (out / f"{stem}.csv").is_file()
    shift_rows = json.loads((out / "shift.json").read_text())["rows"]
    assert all(r["vs_best_fixed"] == 1.0 for r in shift_rows if r["policy"].startswith("live OmegaTuner"))
    assert all(r["vs_instance_optimal"] >= 1.0 - 1e-12 for r in shift_rows if not r["policy"].startswith(("young", "live")))
    for png in ("shift_learning_curves.png", "shift_high_omega_vs_context.png", "heat.png", "stream.png"):
        assert (out / png).stat().st_size > 1000


def test_matrix_features_describe_the_matrix():
    from krylearn.bandits import FEATURE_NAMES, matrix_features
    from krylearn.bench.problems import anisotropic2d

    named = lambda A: dict(zip(FEATURE_NAMES, matrix_features(A)))  # noqa: E731
    poisson = named(poisson2d(10))
    assert poisson["log10_n"] == pytest.approx(2.0) and poisson["log10_nnz_per_row"] == pytest.approx(np.log10(460 / 100))
    assert poisson["diagonal_dominance"] == 1.0 and poisson["symmetric"] == 1.0 and poisson["positive_diagonal"] == 1.0
    assert poisson["off_diagonal_spread"] == 0.0
    assert named(anisotropic2d(10, 1e-2))["off_diagonal_spread"] == pytest.approx(2.0)
    upwind = named(_convection_diffusion(10, 2.0))
    assert upwind["symmetric"] == 0.0 and upwind["off_diagonal_spread"] == pytest.approx(np.log10(3.0))
    assert named(-poisson2d(5))["positive_diagonal"] == 0.0
