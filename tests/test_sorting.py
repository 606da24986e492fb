"""System sorting (greedy nearest neighbour, FFT+PCA features, grouping) and solve_many."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from krylearn.bench.baselines import blas_threads
from krylearn.bench.sequences import darcy_sequence, gaussian_random_field
from krylearn.solvers.recycling import RecyclingSolver
from krylearn.solvers.sorting import greedy_order, parameter_features, solve_many, sort_systems


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with blas_threads(1):
        yield


def is_permutation(order, n) -> bool:
    return sorted(np.asarray(order).tolist()) == list(range(n))


def test_greedy_order_recovers_a_shuffled_line():
    rng = np.random.default_rng(0)
    points = np.linspace(0.0, 1.0, 40)[:, None] * np.array([[3.0, -1.0]])
    perm = rng.permutation(40)
    order = greedy_order(points[perm])
    assert is_permutation(order, 40)
    walked = perm[order]  # original positions along the line, in visiting order
    assert np.all(np.abs(np.diff(walked)) == 1)


def test_sort_systems_shortens_the_path():
    rng = np.random.default_rng(1)
    fields = [gaussian_random_field(24, rng) for _ in range(30)]
    order = sort_systems(fields)
    assert is_permutation(order, 30)
    F = np.stack([f.ravel() for f in fields])

    def length(o):
        return float(np.sum(np.linalg.norm(np.diff(F[o], axis=0), axis=1)))

    assert length(order) < length(np.arange(30))


@pytest.mark.parametrize("features", ["frobenius", "fft"])
def test_grouping_returns_a_permutation(features):
    rng = np.random.default_rng(2)
    fields = [gaussian_random_field(16, rng) for _ in range(37)]
    order = sort_systems(fields, features=features, group_size=8)
    assert is_permutation(order, 37)


def test_fft_features_are_low_dimensional_and_smooth_invariant():
    rng = np.random.default_rng(3)
    fields = [gaussian_random_field(32, rng) for _ in range(12)]
    F = parameter_features(fields, "fft", n_modes=4, n_components=5)
    assert F.shape == (12, 5)
    noisy = [f + 1e-6 * rng.standard_normal(f.shape) for f in fields]
    assert np.allclose(np.abs(parameter_features(noisy, "fft", n_modes=4, n_components=5)), np.abs(F), atol=1e-4)


def test_bad_parameters():
    with pytest.raises(ValueError, match="same shape"):
        sort_systems([np.zeros((4, 4)), np.zeros((5, 5))])
    with pytest.raises(ValueError, match="NaN"):
        sort_systems([np.zeros(4), np.full(4, np.nan)])
    with pytest.raises(ValueError, match="features"):
        sort_systems([np.zeros(4), np.ones(4)], features="wavelet")
    with pytest.raises(ValueError, match="group_size"):
        sort_systems([np.zeros(4), np.ones(4), 2 * np.ones(4)], group_size=1)


def test_solve_many_returns_results_in_input_order():
    systems = darcy_sequence(6, n=400, seed=11)
    results = solve_many(systems, sort=True, k=6, m=20, rtol=1e-8)
    assert len(results) == 6
    positions = [r.details["sequence_position"] for r in results]
    assert is_permutation(positions, 6)
    expected = sort_systems([s.params for s in systems])
    assert [int(np.flatnonzero(expected == i)[0]) for i in range(6)] == positions
    for s, r in zip(systems, results):
        assert r.converged
        assert np.linalg.norm(s.b - s.A @ r.x) <= 1e-8 * np.linalg.norm(s.b)


def test_solve_many_without_params_compares_matrices_and_accepts_tuples():
    systems = darcy_sequence(4, n=400, seed=12)
    results = solve_many([(s.A, s.b) for s in systems], k=4, m=16)
    for s, r in zip(systems, results):
        assert r.converged and np.linalg.norm(s.b - s.A @ r.x) <= 1e-8 * np.linalg.norm(s.b)


def test_solve_many_unsorted_solves_in_input_order_with_given_solver():
    systems = darcy_sequence(3, n=400, seed=13)
    solver = RecyclingSolver(k=4, m=16)
    results = solve_many(systems, sort=False, solver=solver)
    assert [r.details["sequence_position"] for r in results] == [0, 1, 2]
    assert solver.solves == 3


def test_solve_many_rejects_mixed_sizes_and_patterns():
    a = darcy_sequence(1, n=400)[0]
    b = darcy_sequence(1, n=900)[0]
    with pytest.raises(ValueError, match="same size"):
        solve_many([a, b])
    other = sp.csr_array(sp.eye_array(400) * 2.0)
    with pytest.raises(ValueError, match="sparsity"):
        solve_many([(a.A, a.b), (other, a.b)])
    with pytest.raises(TypeError):
        solve_many([a.A])
    assert solve_many([]) == []
