"""The online learners: valid distributions, sublinear regret on known-mean bandits,
contextual learning, reproducibility, state round trips and bad input."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krylearn.bandits import (
    BinnedTsallisINF,
    ChebCB,
    ClusteredIGW,
    Exp3,
    ThompsonSampling,
    TsallisINF,
    load_state,
    save_state,
)
from krylearn.bandits.base import inverse_gap_weights
from krylearn.bandits.tsallis import tsallis_weights

MEANS = np.array([1.0, 0.8, 0.55, 0.9, 1.2])  # arm 2 is best, gaps 0.25 .. 0.65


def _valid(p: np.ndarray, k: int) -> None:
    assert p.shape == (k,)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert abs(p.sum() - 1.0) < 1e-9


def _pseudo_regret(learner, horizon: int, seed: int) -> np.ndarray:
    """Cumulative expected regret (sum of the gaps of the played arms) of a learner on
    losses loss_a = MEANS[a] * (1 + 0.3 * N(0, 1)) clipped at 0."""
    rng = np.random.default_rng(seed)
    gaps = MEANS - MEANS.min()
    regret = np.empty(horizon)
    total = 0.0
    for t in range(horizon):
        arm = learner.select()
        _valid(learner.probabilities(), len(MEANS))
        learner.update(arm, max(MEANS[arm] * (1 + 0.3 * rng.standard_normal()), 0.0))
        total += gaps[arm]
        regret[t] = total
    return regret


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(1e-4, 10.0))
@settings(max_examples=60, deadline=None)
def test_tsallis_weights_solve_the_mirror_descent_step(cumulative, eta):
    w = tsallis_weights(np.array(cumulative), eta)
    _valid(w, len(cumulative))
    # Closed form w_i = 4 / (eta (L_i - x))^2: 1/sqrt(w_i) - 1/sqrt(w_j) = eta (L_i - L_j) / 2.
    inv = 1.0 / np.sqrt(w)
    i, j = int(np.argmin(cumulative)), int(np.argmax(cumulative))
    expected = eta * (cumulative[j] - cumulative[i]) / 2
    if np.isfinite(inv).all() and expected < 1e8:
        assert inv[j] - inv[i] == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_tsallis_weights_kernel_matches_numpy_newton_and_validates():
    """The native distribution against the same Newton iteration in NumPy, and its argument checks."""
    from krylearn import _kernels

    rng = np.random.default_rng(0)
    for _ in range(200):
        losses, eta = rng.normal(0.0, 10.0 ** rng.uniform(-3, 6), rng.integers(1, 30)), 10.0 ** rng.uniform(-4, 1)
        x = losses.min() - 2.0 / eta
        for _ in range(100):
            w = 4.0 / (eta * (losses - x)) ** 2
            if abs(w.sum() - 1.0) <= 1e-12:
                break
            x -= (w.sum() - 1.0) / (eta * np.sum(w**1.5))
        w = 4.0 / (eta * (losses - x)) ** 2
        np.testing.assert_allclose(tsallis_weights(losses, eta), w / w.sum(), rtol=1e-12, atol=1e-15)
    for bad, message in [((np.array([0.0, np.nan]), 1.0), "cumulative"), ((np.zeros(0), 1.0), "at least one"),
                         ((np.zeros(3), 0.0), "eta"), ((np.zeros(3), float("inf")), "eta"),
                         ((np.zeros(6)[::2], 1.0), "C-contiguous")]:
        with pytest.raises(ValueError, match=message):
            _kernels.tsallis_weights(*bad)
    with pytest.raises(TypeError, match="float64"):
        _kernels.tsallis_weights(np.zeros(3, np.float32), 1.0)


@pytest.mark.parametrize("make", [lambda s: TsallisINF(5, seed=s), lambda s: Exp3(5, seed=s),
                                  lambda s: ThompsonSampling(5, seed=s)], ids=["tsallis", "exp3", "thompson"])
def test_regret_is_sublinear_on_known_means(make):
    horizon = 4000
    curves = np.array([_pseudo_regret(make(seed), horizon, seed) for seed in range(3)]).mean(axis=0)
    early, late = curves[horizon // 4 - 1], curves[-1]
    # sublinear: 4x the rounds cost clearly less than 4x the regret, and the average regret vanishes
    assert late < 3.0 * early
    assert late / horizon < 0.1 * (MEANS.mean() - MEANS.min()) * 5
    assert late < 4 * math.sqrt(len(MEANS) * horizon) * MEANS.max()


@pytest.mark.parametrize("make", [lambda: TsallisINF(5, seed=0), lambda: ThompsonSampling(5, seed=0)],
                         ids=["tsallis", "thompson"])
def test_learner_concentrates_on_the_best_arm(make):
    learner = make()
    _pseudo_regret(learner, 3000, 0)
    assert learner.greedy() == int(np.argmin(MEANS))
    assert learner.probabilities()[np.argmin(MEANS)] > 0.8


def test_thompson_probabilities_describe_its_draws():
    learner = ThompsonSampling(3, seed=0)
    for arm, loss in [(0, 1.0), (1, 2.0), (2, 1.1), (0, 0.9), (1, 2.2), (2, 1.2)]:
        learner.update(arm, loss)
    p = learner.probabilities()
    _valid(p, 3)
    drawn = np.bincount([learner.select() for _ in range(4000)], minlength=3) / 4000
    np.testing.assert_allclose(drawn, p, atol=0.03)  # two Monte Carlo estimates of the same distribution
    assert learner.greedy() == 0 and p[1] < p[0]


def _contextual_losses(context: float) -> np.ndarray:
    """Arm a is best near context centres[a]: loss = 1 + 4 (c - centre_a)^2."""
    centres = np.array([0.0, 2.5, 5.0, 7.5, 10.0])
    return 1.0 + 4.0 * ((context - centres) / 10.0) ** 2 * 10


@pytest.mark.parametrize(
    "make",
    [lambda s: ChebCB(5, (0.0, 10.0), seed=s), lambda s: BinnedTsallisINF(5, (0.0, 10.0), bins=5, seed=s)],
    ids=["chebcb", "binned"],
)
def test_contextual_learners_track_the_instance_optimal_arm(make):
    rng = np.random.default_rng(3)
    learner = make(3)
    contexts = rng.uniform(0, 10, size=3000)
    paid, optimal, played = [], [], []
    for c in contexts:
        losses = _contextual_losses(c)
        p = learner.probabilities(c)
        _valid(p, 5)
        arm = learner.select(c)
        learner.update(arm, losses[arm] * (1 + 0.05 * rng.standard_normal()), c)
        paid.append(losses[arm])
        optimal.append(losses.min())
        played.append(arm)
    paid, optimal, played = np.array(paid), np.array(optimal), np.array(played)
    late = slice(2000, None)
    assert paid[late].sum() < 1.1 * optimal[late].sum()  # near the instance-optimal policy late in the run
    assert paid[late].sum() < paid[:1000].sum()
    for low, high, arm in [(0.0, 1.0, 0), (4.5, 5.5, 2), (9.0, 10.0, 4)]:  # the arm played most there, late
        near = (contexts[late] >= low) & (contexts[late] <= high)
        assert np.bincount(played[late][near], minlength=5).argmax() == arm


def _late_excess(learner, seed: int) -> float:
    """Late (last third) cost over the instance-optimal cost on the contextual problem above."""
    rng = np.random.default_rng(seed)
    paid, optimal = [], []
    for c in rng.uniform(0, 10, size=3000):
        losses = _contextual_losses(c)
        arm = learner.select(c)
        learner.update(arm, losses[arm] * (1 + 0.05 * rng.standard_normal()), c)
        paid.append(losses[arm])
        optimal.append(losses.min())
    return sum(paid[2000:]) / sum(optimal[2000:])


def test_chebcb_optimism_keeps_exploring_where_the_fit_extrapolates():
    """Without optimism the smooth fit of an arm seen only far from its best contexts predicts it bad there,
    and inverse-gap weighting stops trying it: some runs stay >= 10% above instance-optimal. With the
    default optimism every seed finds the optimal arms."""
    excess = [_late_excess(ChebCB(5, (0.0, 10.0), seed=s), s) for s in range(8)]
    assert max(excess) < 1.05, excess
    stuck = [_late_excess(ChebCB(5, (0.0, 10.0), optimism=0.0, seed=s), s) for s in range(8)]
    assert max(stuck) > 1.1, stuck


def test_inverse_gap_weights_are_a_distribution_and_respect_the_mask():
    p = inverse_gap_weights(np.array([3.0, 1.0, 2.0, 10.0]), gamma=50.0, available=np.array([1, 1, 0, 1], bool))
    _valid(p, 4)
    assert p[2] == 0.0 and p[1] == p.max()
    with pytest.raises(ValueError):
        inverse_gap_weights(np.zeros(3), 1.0, np.zeros(3, bool))


def test_clustered_learner_learns_per_cluster_and_masks():
    rng = np.random.default_rng(0)
    learner = ClusteredIGW(3, 2, seed=0)
    centres = {0: np.array([0.0, 0.0]), 1: np.array([5.0, 5.0])}
    best = {0: 0, 1: 2}
    for _ in range(300):
        family = int(rng.integers(2))
        context = centres[family] + 0.01 * rng.standard_normal(2)
        arm = learner.select(context)
        learner.update(arm, 1.0 if arm == best[family] else 3.0, context)
    assert learner.greedy(centres[0]) == 0 and learner.greedy(centres[1]) == 2
    masked = learner.probabilities(centres[0], np.array([False, True, True]))
    assert masked[0] == 0.0
    _valid(masked, 3)


def test_clustered_learner_transfers_from_the_most_similar_cluster():
    learner = ClusteredIGW(2, 1, radius=0.3, bandwidth=1.0, seed=0)
    for _ in range(5):  # cluster at 0: arm 0 is 4x faster; cluster at 5: arm 1 is 4x faster
        learner.update(0, 1.0, [0.0])
        learner.update(1, 4.0, [0.0])
        learner.update(0, 4.0, [5.0])
        learner.update(1, 1.0, [5.0])
    near_second = learner.predict([4.5])  # a new cluster: nothing tried there yet
    near_first = learner.predict([0.5])
    assert near_second[1] < near_second[0] - 1.0  # log 4 = 1.39 transferred from the cluster at 5
    assert near_first[0] < near_first[1] - 1.0
    restored = ClusteredIGW(2, 1, seed=1)
    restored.load_state_dict(learner.state_dict())
    assert restored.bandwidth == 1.0 and np.array_equal(restored.predict([4.5]), near_second)
    with pytest.raises(ValueError):
        ClusteredIGW(2, 1, bandwidth=0.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TsallisINF(6, seed=11),
        lambda: Exp3(6, seed=11),
        lambda: ChebCB(6, (0.0, 1.0), seed=11),
        lambda: BinnedTsallisINF(6, (0.0, 1.0), bins=3, seed=11),
        lambda: ThompsonSampling(6, seed=11),
    ],
    ids=["tsallis", "exp3", "chebcb", "binned", "thompson"],
)
def test_seeded_reproducible_and_state_round_trip(make, tmp_path):
    def play(learner, rounds, rng):
        arms = []
        for _ in range(rounds):
            c = float(rng.uniform())
            arm = learner.select(c)
            learner.update(arm, 1.0 + arm * c + rng.uniform(), c)
            arms.append(arm)
        return arms

    a, b = make(), make()
    assert play(a, 50, np.random.default_rng(1)) == play(b, 50, np.random.default_rng(1))
    save_state(a, tmp_path / "state.json")
    restored = load_state(make(), tmp_path / "state.json")
    assert play(a, 50, np.random.default_rng(2)) == play(restored, 50, np.random.default_rng(2))


def test_restored_chebcb_fits_with_the_saved_ridge():
    """The penalty comes with the state: a learner built with another ridge and smoothness predicts exactly
    as the saved one."""
    saved = ChebCB(4, (0.0, 1.0), ridge=1e-3, smoothness=1e-4, optimism=0.05, seed=0)
    for t in range(30):
        c = t / 29
        saved.update(t % 4, 1.0 + (t % 4) * c, c)
    restored = ChebCB(4, (0.0, 1.0), ridge=10.0, smoothness=0.0, optimism=0.0, seed=0)
    restored.load_state_dict(saved.state_dict())
    assert (restored.ridge, restored.smoothness, restored.optimism) == (1e-3, 1e-4, 0.05)
    np.testing.assert_array_equal(restored.predict(0.3), saved.predict(0.3))
    np.testing.assert_array_equal(restored.probabilities(0.3), saved.probabilities(0.3))
    legacy = saved.state_dict()
    del legacy["smoothness"], legacy["optimism"]  # states saved before the prior and the optimism had neither
    restored.load_state_dict(legacy)
    assert (restored.smoothness, restored.optimism) == (0.0, 0.0)


def test_chebcb_smoothness_prior_tames_a_sparse_high_degree_fit():
    """Ten noisy observations of a smooth loss curve with the default degree 12: the k^4 prior keeps the fit
    close to the curve over the whole range; without it the 13 coefficients chase the noise."""
    rng = np.random.default_rng(0)
    curve = lambda c: 100.0 / (1.0 + 5.0 * c)  # noqa: E731
    grid = np.linspace(0.0, 1.0, 101)

    def median_worst_error(smoothness):
        errors = []
        for _ in range(20):
            learner = ChebCB(1, (0.0, 1.0), smoothness=smoothness, seed=0)  # one arm: predict() is the fit
            for c in rng.uniform(0.0, 1.0, 10):
                learner.update(0, curve(c) * (1.0 + 0.05 * rng.standard_normal()), c)
            errors.append(max(abs(learner.predict(c)[0] - curve(c)) for c in grid))
        return float(np.median(errors))

    assert median_worst_error(2e-5) < 0.5 * median_worst_error(0.0)


def _inverse_gap_reference(values: np.ndarray, gamma: float, available=None) -> np.ndarray:
    """SquareCB's weights in plain Python with an exact sum (the formula of ``inverse_gap_weights``)."""
    arms = [a for a in range(len(values)) if available is None or available[a]]
    best = min(arms, key=lambda a: values[a])
    p = np.zeros(len(values))
    for a in arms:
        p[a] = 1.0 / (len(arms) + gamma * (values[a] - values[best]))
    p[best] = 0.0
    p[best] = 1.0 - math.fsum(p)
    return p


def test_native_inverse_gap_weights_match_the_formula():
    rng = np.random.default_rng(3)
    for i in range(500):
        n = int(rng.integers(1, 40))
        values, gamma = rng.normal(0.0, 10.0 ** rng.uniform(-3, 3), n), 10.0 ** rng.uniform(-2, 4)
        mask = None if i % 2 else rng.random(n) < 0.7
        if mask is not None:
            mask[rng.integers(n)] = True
        np.testing.assert_allclose(inverse_gap_weights(values, gamma, mask),
                                   _inverse_gap_reference(values, gamma, mask), rtol=1e-14, atol=1e-15)
    from krylearn import _kernels

    for args, message in [((np.zeros(3), 1.0, np.ones(2, bool)), "2 entries for 3 arms"),
                          ((np.zeros(3), 1.0, np.zeros(3, bool)), "no arm is available"),
                          ((np.zeros(0), 1.0, None), "at least one arm"), ((np.zeros(3), -1.0, None), "gamma")]:
        with pytest.raises(ValueError, match=message):
            _kernels.inverse_gap_weights(*args)
    with pytest.raises(TypeError, match="bool"):
        _kernels.inverse_gap_weights(np.zeros(3), 1.0, np.ones(3))


def _chebcb_reference(learner: ChebCB, context: float) -> np.ndarray:
    """ChebCB's distribution from its sufficient statistics in NumPy (the module doc's formulas)."""
    z = learner.range.unit(context)
    phi = np.polynomial.chebyshev.chebvander(np.array([z]), learner.degree)[0]
    precision = learner.gram + np.diag(learner.ridge + learner.smoothness * np.arange(learner.degree + 1.0) ** 4)
    theta = np.stack([np.linalg.solve(h, m) for h, m in zip(precision, learner.moment)])
    width = np.array([phi @ np.linalg.solve(h, phi) for h in precision])
    predicted = theta @ phi / learner.scale - learner.optimism * np.sqrt(width)
    return _inverse_gap_reference(predicted, learner.gamma())


@pytest.mark.parametrize("n_arms, degree, optimism", [(20, 12, 0.02), (5, 5, 0.0), (3, 20, 0.1), (1, 0, 0.02)])
def test_chebcb_native_arithmetic_matches_numpy(n_arms, degree, optimism):
    """The native features, refits and distribution (_kernels.chebcb_*) against NumPy's Chebyshev
    Vandermonde rows, dense solves and the inverse-gap formula in plain Python, along a learning run."""
    rng = np.random.default_rng(n_arms)
    learner = ChebCB(n_arms, (0.0, 2.0), degree=degree, optimism=optimism, seed=0)
    for t in range(300):
        c = rng.uniform(0.0, 2.0)
        if t % 30 == 0:
            np.testing.assert_allclose(learner.probabilities(c), _chebcb_reference(learner, c), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(learner.features(c),
                                       np.polynomial.chebyshev.chebvander(np.array([c - 1.0]), degree)[0], rtol=1e-12)
        arm = learner.select(c)
        learner.update(arm, 10.0 + 5.0 * (c - 2.0 * arm / n_arms) ** 2 + rng.standard_normal(), c)
    _valid(learner.probabilities(0.7), n_arms)


def test_chebcb_kernels_validate_their_arguments():
    from krylearn import _kernels

    k, d = 3, 4
    gram, moment, theta = np.zeros((k, d, d)), np.zeros((k, d)), np.zeros((k, d))
    covariance, penalty = np.repeat(np.eye(d)[None], k, axis=0), np.ones(d)
    args = lambda **kw: {**dict(gram=gram, moment=moment, penalty=penalty, theta=theta,  # noqa: E731
                                covariance=covariance), **kw}
    assert _kernels.chebcb_learn(**args(), arm=1, z=0.5, loss=2.0)
    assert gram[1, 0, 0] == 1.0 and moment[1, 0] == 2.0 and not gram[0].any()
    for bad, message in [
        (dict(theta=np.zeros((k, d), np.float32)), "float64"),
        (dict(theta=np.zeros((k, 22))), "coefficients"),
        (dict(gram=np.zeros((k, d, d + 1))), "gram must have shape"),
        (dict(moment=np.zeros((k, 2 * d))[:, ::2]), "C-contiguous"),
        (dict(penalty=np.zeros(d)), "penalty"),
        (dict(moment=gram.reshape(k * d, d)[:k]), "share memory"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            _kernels.chebcb_learn(**args(**bad), arm=0, z=0.0, loss=1.0)
    frozen = theta.copy()
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _kernels.chebcb_refit(**args(theta=frozen), arm=0)
    for bad, message in [(dict(arm=3), "arm"), (dict(arm=-1), "arm"), (dict(z=1.5), "z must"),
                         (dict(z=float("nan")), "z must"), (dict(loss=float("inf")), "loss")]:
        with pytest.raises(ValueError, match=message):
            _kernels.chebcb_learn(**args(), **{**dict(arm=0, z=0.0, loss=1.0), **bad})
    indefinite = gram.copy()
    indefinite[2] = -5.0 * np.eye(d)
    before = theta[2].copy()
    assert not _kernels.chebcb_refit(**args(gram=indefinite), arm=2)  # reported, nothing written
    np.testing.assert_array_equal(theta[2], before)
    with pytest.raises(ValueError, match="non-finite"):
        _kernels.chebcb_probabilities(np.full((k, d), np.nan), covariance, 0.0, 1.0, 0.02, 10.0)
    for bad in (dict(scale=0.0), dict(optimism=-1.0), dict(gamma=float("nan"))):
        with pytest.raises(ValueError):
            _kernels.chebcb_probabilities(theta, covariance,
                                          **{**dict(z=0.0, scale=1.0, optimism=0.0, gamma=1.0), **bad})
    with pytest.raises(ValueError, match="degree"):
        _kernels.chebyshev_features(0.0, 21)


def test_chebcb_falls_back_to_least_squares_on_an_indefinite_fit():
    """A state whose regression matrix is not positive definite (only a corrupted or hand-made state can be)
    still refits, by least squares, instead of failing."""
    learner = ChebCB(2, (0.0, 1.0), degree=2, seed=0)
    learner.gram[0] = -np.eye(3)
    learner.update(0, 3.0, 0.5)
    assert np.all(np.isfinite(learner._theta[0])) and np.all(np.isfinite(learner.probabilities(0.5)))


def test_bad_input_is_rejected_clearly(tmp_path):
    with pytest.raises(ValueError, match="at least one arm"):
        TsallisINF(0)
    learner = TsallisINF(3)
    for loss in (float("nan"), float("inf"), -1.0, "x"):
        with pytest.raises(ValueError, match="loss"):
            learner.update(0, loss)
    with pytest.raises(ValueError, match="arm"):
        learner.update(3, 1.0)
    cheb = ChebCB(3, (0.0, 10.0))
    with pytest.raises(ValueError, match="contextual"):
        cheb.select()
    with pytest.warns(RuntimeWarning, match="outside the declared range"):
        p_out = cheb.probabilities(12.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(p_out, cheb.probabilities(10.0))
    with pytest.raises(ValueError):
        ChebCB(3, (1.0, 1.0))
    for name in ("smoothness", "optimism"):
        for value in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                ChebCB(3, (0.0, 1.0), **{name: value})


def test_corrupted_state_gives_a_clear_error(tmp_path):
    learner = TsallisINF(4, seed=0)
    learner.update(learner.select(), 2.0)
    good = learner.state_dict()
    broken = [
        {k: v for k, v in good.items() if k != "cumulative"},
        {**good, "cumulative": [0.0, 1.0]},
        {**good, "cumulative": [0.0, float("nan"), 0.0, 0.0]},
        {**good, "kind": "Exp3"},
        {**good, "n_arms": 5},
        {**good, "rng": "garbage"},
        [1, 2, 3],
    ]
    for state in broken:
        with pytest.raises(ValueError, match="corrupted|incompatible"):
            TsallisINF(4).load_state_dict(state)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(good)[:-20])
    with pytest.raises(ValueError, match="corrupted"):
        load_state(TsallisINF(4), path)
    thompson = ThompsonSampling(3, seed=0)
    thompson.update(thompson.select(), 2.0)
    state = thompson.state_dict()
    for bad in ({**state, "counts": [2.0, 0.0, 0.0]}, {**state, "sums": [-1.0, 0.0, 0.0]},
                {**state, "square_sum": float("nan")}):
        with pytest.raises(ValueError, match="corrupted"):
            ThompsonSampling(3).load_state_dict(bad)
    # a failed load leaves the learner untouched
    fresh = TsallisINF(4, seed=5)
    before = fresh.state_dict()
    with pytest.raises(ValueError):
        fresh.load_state_dict(broken[2])
    assert fresh.state_dict() == before
