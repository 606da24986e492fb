"""Learned incomplete Cholesky: factor structure, SPD-ness, training, model files,
bad input, fallback and convergence on every problem family."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krylearn import _kernels
from krylearn._validation import as_kernel_matrix
from krylearn.bench.spd_families import FAMILIES, TRAINING_FAMILIES, make_matrix
from krylearn.preconditioners.ic_gnn import ICGNN
from krylearn.preconditioners.learned_ic import (LearnedIC, ModelFileError, cg_with_fallback, factor_graph,
                                                  factor_inputs)
from krylearn.preconditioners.learned_ic_train import _loss, jacobi_scaled, main as train_main, prepare_example, train


def random_spd(n: int, seed: int, density: float = 0.2) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    B = sp.random_array((n, n), density=density, rng=rng, data_sampler=rng.standard_normal)
    return sp.csr_array(B @ B.T + sp.diags_array(rng.uniform(0.1, 2.0, n)))


def perturbed_model(seed: int = 0, scale: float = 0.5, activation: str = "silu") -> LearnedIC:
    """A network whose decoders are not zero (so it does not just return IC(0))."""
    torch.manual_seed(seed)
    model = ICGNN(width=8, rounds=2, activation=activation)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return LearnedIC(model, {"family": "test"})


def test_factor_has_tril_pattern_and_positive_diagonal():
    A = make_matrix("heat_fem", 300, seed=3)
    L = perturbed_model().predict_factor(A)
    T = sp.csr_array(sp.tril(A, format="csr"))
    assert L.shape == A.shape
    assert np.array_equal(L.indptr, T.indptr) and np.array_equal(L.indices, T.indices)
    last = L.indptr[1:] - 1
    assert np.array_equal(L.indices[last], np.arange(A.shape[0]))  # diagonal stored last in every row
    assert np.all(L.data[last] > 0) and np.all(np.isfinite(L.data))


def test_untrained_network_reproduces_ic0():
    from krylearn.preconditioners import IC0

    A = make_matrix("diffusion2d", 256, seed=1)
    L = LearnedIC(ICGNN(), {"family": "test"}).predict_factor(A)
    L0 = IC0().setup(A).L
    np.testing.assert_allclose(L.data, np.asarray(L0.data), rtol=2e-6, atol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 40), seed=st.integers(0, 10_000), density=st.floats(0.02, 0.5))
def test_preconditioner_is_spd_on_random_spd_input(n, seed, density):
    A = random_spd(n, seed, density)
    L = perturbed_model(seed % 5, scale=0.3).predict_factor(A).toarray()
    # the structural guarantee: L lower triangular, finite, positive diagonal => L L^T SPD
    assert np.all(np.isfinite(L)) and np.array_equal(L, np.tril(L)) and np.all(np.diag(L) > 0)
    M = L @ L.T
    s = 1.0 / np.sqrt(np.diag(M))
    np.linalg.cholesky(s[:, None] * M * s[None, :])  # numerically SPD too (raises LinAlgError otherwise)
    x = np.random.default_rng(seed).standard_normal(n)
    assert x @ M @ x > 0


def test_few_training_steps_reduce_every_loss():
    matrices = [make_matrix("diffusion2d", 144, seed=s) for s in range(2)]
    for loss in ("data", "frobenius", "condition", "pcg"):
        pc = train(matrices, loss=loss, epochs=4, lr=5e-3, width=8, rounds=2, seed=0)
        ex = prepare_example(matrices[0], loss, np.random.default_rng(1))
        with torch.no_grad():
            value = float(_loss(pc.model, ex, loss, torch.Generator().manual_seed(0)))
        assert value < -0.05, (loss, value)  # log(loss / loss at IC(0)) (pcg: log residual vs IC(0)'s) negative
        curve = pc.metadata["training"]["loss_curve"]
        assert curve[-1] < curve[0] or curve[0] < -0.05


def _dense_unrolled_pcg(g, l_off, l_diag, b, steps):
    """The unrolled-PCG loss with dense matrices and torch's dense solve (reference for the adjoint)."""
    n = g.n
    L = torch.zeros(n, n, dtype=torch.float64).index_put((g.rows, g.cols), l_off)
    L = L.index_put((torch.arange(n), torch.arange(n)), l_diag)
    A = torch.eye(n, dtype=torch.float64).index_put((g.rows, g.cols), g.a_off.double())
    A = A.index_put((g.cols, g.rows), g.a_off.double())
    M = L @ L.T
    r, logs = b, []
    z = torch.linalg.solve(M, r)
    p, rz = z, (r * z).sum(0)
    for j in range(steps):
        Ap = A @ p
        alpha = rz / (p * Ap).sum(0)
        r = r - alpha * Ap
        if 2 * j >= steps - 1:
            logs.append(torch.log(r.norm(dim=0) / b.norm(dim=0)).mean())
        z = torch.linalg.solve(M, r)
        rz_new = (r * z).sum(0)
        p, rz = z + (rz_new / rz) * p, rz_new
    return torch.stack(logs).mean()


@pytest.mark.parametrize("steps", [1, 4, 9])
def test_unrolled_pcg_loss_and_gradient_match_dense_reference(steps):
    from krylearn.preconditioners.pcg_loss import FactorPattern, unrolled_pcg_loss

    g, pattern, _ = factor_graph(make_matrix("diffusion2d", 64, seed=3))
    gen = torch.Generator().manual_seed(steps)
    l_off = (g.l0_off.double() * (1 + 0.1 * torch.randn(len(g.l0_off), generator=gen, dtype=torch.float64)))
    l_diag = g.l0_diag.double() * (1 + 0.1 * torch.rand(g.n, generator=gen, dtype=torch.float64))
    l_off.requires_grad_(), l_diag.requires_grad_()
    b = torch.randn(g.n, 3, generator=gen, dtype=torch.float64)
    native = unrolled_pcg_loss(g, FactorPattern(pattern.indptr, pattern.indices), l_off, l_diag, b, steps)
    dense = _dense_unrolled_pcg(g, l_off, l_diag, b, steps)
    assert native.item() == pytest.approx(dense.item(), rel=1e-12)
    for got, want in zip(torch.autograd.grad(native, (l_off, l_diag)), torch.autograd.grad(dense, (l_off, l_diag))):
        assert float((got - want).abs().max()) <= 1e-10 * float(want.abs().max())


def test_training_rejects_bad_settings():
    A = make_matrix("diffusion2d", 64, seed=0)
    for kwargs, match in (({"loss": "nope"}, "loss must be one of"), ({"epochs": 0}, "epochs"),
                          ({"loss": "pcg", "unroll": 0}, "unroll")):
        with pytest.raises(ValueError, match=match):
            train([A], **kwargs)
    with pytest.raises(ValueError, match="at least one training matrix"):
        train([])


def test_unrolled_pcg_loss_rejects_bad_arguments():
    from krylearn.preconditioners.pcg_loss import FactorPattern, unrolled_pcg_loss

    g, pattern, _ = factor_graph(make_matrix("diffusion2d", 64, seed=3))
    fp = FactorPattern(pattern.indptr, pattern.indices)
    with pytest.raises(ValueError, match="steps"):
        unrolled_pcg_loss(g, fp, g.l0_off, g.l0_diag, torch.ones(g.n, 1), 0)
    with pytest.raises(ValueError, match="diagonal last"):
        FactorPattern(np.array([0, 2]), np.array([0, 1]))


def test_condition_loss_is_the_log_condition_number_and_rejects_large_n():
    from krylearn.preconditioners.ic_gnn import CONDITION_LOSS_MAX_N, condition_loss

    A = make_matrix("synthetic", 200, seed=1)
    g, pattern, _ = factor_graph(A)
    L = sp.csr_array((pattern.l0, pattern.indices, pattern.indptr), shape=A.shape).toarray()  # IC(0) of A~
    As = jacobi_scaled(A).toarray()
    S = np.linalg.solve(L, np.linalg.solve(L, As).T)
    eigenvalues = np.linalg.eigvalsh(0.5 * (S + S.T))
    want = np.log(eigenvalues[-1] / eigenvalues[0])
    assert float(condition_loss(g, g.l0_off, g.l0_diag)) == pytest.approx(want, rel=1e-4)  # A~ in float32
    big, _, _ = factor_graph(make_matrix("diffusion2d", CONDITION_LOSS_MAX_N + 100, seed=0))
    with pytest.raises(ValueError, match="dense"):
        condition_loss(big, big.l0_off, big.l0_diag)


@pytest.mark.parametrize("activation", ["silu", "hardswish"])
def test_save_load_round_trip_is_bit_exact(tmp_path, activation):
    pc = perturbed_model(2, activation=activation)
    path = pc.save(tmp_path / "m.pt")
    back = LearnedIC.load(path)
    assert back.model.activation == activation
    for (k, v), (k2, v2) in zip(pc.model.state_dict().items(), back.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    A = make_matrix("diffusion3d", 216, seed=0)
    assert np.array_equal(pc.predict_factor(A).data, back.predict_factor(A).data)
    assert back.metadata["family"] == "test"


def test_tampered_truncated_and_foreign_model_files(tmp_path):
    pc = perturbed_model(3)
    path = pc.save(tmp_path / "m.pt")
    raw = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="truncated|not a readable"):
        LearnedIC.load(tmp_path / "trunc.pt")
    with pytest.raises(ModelFileError, match="family"):
        LearnedIC.load(path, family="diffusion2d")
    # change one weight but keep the checksum: detected
    payload = torch.load(path, weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = payload["state_dict"][key] + 1e-3
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ModelFileError, match="checksum"):
        LearnedIC.load(tmp_path / "tampered.pt")
    # another feature layout (checksum recomputed honestly): rejected by name
    from krylearn.preconditioners.learned_ic import _checksum

    meta = json.loads(payload["metadata"])
    meta["feature_layout"] = "something-else/v0"
    payload = torch.load(path, weights_only=True)
    payload["metadata"] = json.dumps(meta)
    payload["sha256"] = _checksum(payload["metadata"], payload["state_dict"])
    torch.save(payload, tmp_path / "layout.pt")
    with pytest.raises(ModelFileError, match="feature layout"):
        LearnedIC.load(tmp_path / "layout.pt")
    # an activation this krylearn does not know (checksum recomputed): rejected
    meta = json.loads(payload["metadata"])
    meta.update(feature_layout=pc.metadata["feature_layout"], activation="relu")
    payload["metadata"] = json.dumps(meta)
    payload["sha256"] = _checksum(payload["metadata"], payload["state_dict"])
    torch.save(payload, tmp_path / "activation.pt")
    with pytest.raises(ModelFileError, match="activation"):
        LearnedIC.load(tmp_path / "activation.pt")
    # a pickle that would run code is refused by weights_only loading
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFileError):
        LearnedIC.load(tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="no shipped learned-IC model"):
        LearnedIC.from_pretrained("no-such-model")


def test_bad_input_is_rejected_clearly():
    pc = perturbed_model()
    A = make_matrix("diffusion2d", 64, seed=0).tolil()
    A[0, 1] = A[0, 1] + 0.5
    with pytest.raises(ValueError, match="symmetric positive definite.*not symmetric"):
        pc.setup(A.tocsr())
    A = make_matrix("diffusion2d", 64, seed=0).tolil()
    A[3, 3] = -1.0
    with pytest.raises(ValueError, match="negative"):
        pc.setup(A.tocsr())
    A[3, 3] = 0.0
    with pytest.raises(ValueError, match="zero or negative"):
        pc.setup(A.tocsr())
    with pytest.raises(ValueError):
        pc.setup(sp.csr_array(np.ones((2, 3))))


def test_indefinite_matrix_is_not_silently_solved():
    """Positive diagonal but indefinite: a clear error once CG sees p^T A p <= 0."""
    A = sp.csr_array(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.5], [0.0, 0.5, 3.0]]))
    with pytest.raises(ValueError, match="not positive definite"):
        cg_with_fallback(A, np.array([1.0, 0.0, 1.0]), M=perturbed_model(), rtol=1e-10, maxiter=50)


def test_n_equals_one():
    A = sp.csr_array(np.array([[4.0]]))
    pc = perturbed_model().setup(A)
    assert pc.L.shape == (1, 1) and pc.L.data[0] > 0
    z = pc.apply(np.array([2.0]))
    assert np.isfinite(z).all() and z[0] > 0


def test_nonfinite_network_output_falls_back_to_ic0():
    pc = perturbed_model()
    with torch.no_grad():
        pc.model.node_decoder[-1].bias.fill_(float("nan"))
    A = make_matrix("diffusion2d", 100, seed=0)
    with pytest.warns(RuntimeWarning, match="falling back to ic0"):
        pc.setup(A)
    assert pc.fallback == "ic0"
    from krylearn import cg

    b = np.ones(A.shape[0])
    x, info = cg(A, b, M=pc, rtol=1e-10)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-8 * np.linalg.norm(b)


def test_native_forward_sees_every_weight_change():
    """The flat native parameter array is cached between setups and rebuilt when a weight changes."""
    pc = perturbed_model()
    A = make_matrix("diffusion2d", 100, seed=0)
    before = pc.setup(A).L.data.copy()
    np.testing.assert_array_equal(pc.setup(A).L.data, before)
    with torch.no_grad():
        pc.model.node_decoder[-1].bias.add_(0.25)  # every diagonal entry scales by exp(4 tanh(.)) of more
    after = pc.setup(A).L.data
    diagonal = np.flatnonzero(np.repeat(np.arange(100), np.diff(pc.L.indptr)) == pc.L.indices)
    assert np.all(after[diagonal] > before[diagonal])


def reference_inputs(A: sp.csr_array):
    """The network's input by SciPy: A~ = D^-1/2 A D^-1/2, L0 = IC(0) of A~, the four node features."""
    inv_sqrt = sp.diags_array(1.0 / np.sqrt(A.diagonal()))
    S = sp.csr_array(inv_sqrt @ A @ inv_sqrt)
    S.setdiag(1.0)
    S.eliminate_zeros()
    S.sort_indices()
    L, _ = _kernels.ic0(as_kernel_matrix(S))
    L0 = sp.csr_array((np.asarray(L.data), np.asarray(L.indices), np.asarray(L.indptr)), shape=S.shape)
    ones = np.ones(S.shape[0])
    rowsum = S @ ones
    features = np.stack([L0.diagonal(), L0 @ (L0.T @ ones) - rowsum, rowsum, abs(S) @ ones - 1.0], axis=1)
    return S, L0, features


@pytest.mark.parametrize("family,n", [("heat_fem", 200), ("diffusion3d", 343), ("synthetic", 150)])
def test_native_inputs_match_scipy_and_leave_the_input_alone(family, n):
    """The fused native input pass equals the SciPy formulation (A~, its IC(0) factor, the node
    features), drops entries that scale to 0, and never writes to A."""
    A = make_matrix(family, n, seed=2)
    with_zero = A.copy()
    first_off_diagonal = int(np.flatnonzero(np.repeat(np.arange(A.shape[0]), np.diff(A.indptr)) != A.indices)[0])
    with_zero.data[first_off_diagonal] = 0.0  # an explicit zero, also mirrored below
    i = int(np.searchsorted(A.indptr, first_off_diagonal, side="right") - 1)
    j = int(A.indices[first_off_diagonal])
    row_j = slice(A.indptr[j], A.indptr[j + 1])
    with_zero.data[row_j][A.indices[row_j] == i] = 0.0
    for M in (A, with_zero):
        snapshot = (M.data.copy(), M.indices.copy(), M.indptr.copy())
        inputs, pattern, _ = factor_inputs(M)
        for got, want in zip((M.data, M.indices, M.indptr), snapshot):
            np.testing.assert_array_equal(got, want)
        S, L0, features = reference_inputs(M)
        tril = sp.tril(S, format="csr")
        scaled_lower = _kernels.ic_gnn_inputs(as_kernel_matrix(sp.csr_array(M)))["scaled_lower"]
        np.testing.assert_array_equal(scaled_lower, tril.data)  # the lower entries bit for bit, zeros dropped
        np.testing.assert_array_equal(jacobi_scaled(M).toarray(), S.toarray())  # the training's A~
        np.testing.assert_array_equal(pattern.indptr, tril.indptr)
        np.testing.assert_array_equal(pattern.indices, tril.indices)
        off = tril.indices != np.repeat(np.arange(S.shape[0]), np.diff(tril.indptr))
        np.testing.assert_array_equal(inputs.cols, tril.indices[off])
        np.testing.assert_array_equal(inputs.lower_ptr, tril.indptr - np.arange(S.shape[0] + 1))
        np.testing.assert_array_equal(inputs.a_off, tril.data[off].astype(np.float32))
        np.testing.assert_array_equal(inputs.l0_off, L0.data[off].astype(np.float32))
        np.testing.assert_allclose(inputs.node_features, features, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(inputs.feature_extremes[0], inputs.node_features.min(axis=0))
        np.testing.assert_array_equal(inputs.feature_extremes[1], inputs.node_features.max(axis=0))
    assert pattern.indptr[-1] == sp.tril(A).nnz - 1


def test_out_of_distribution_matrix_falls_back_to_ic0():
    """The PDE-trained model on NeuralIF's random B B^T + 1e-3 I: features far outside its training range."""
    from krylearn import cg

    pc = LearnedIC.from_pretrained("diffusion2d")
    assert pc.metadata["feature_ranges"]["node"]
    A = make_matrix("synthetic", 300, seed=1)
    with pytest.warns(RuntimeWarning, match="outside the training distribution"):
        pc.setup(A)
    assert pc.fallback == "ic0"
    from krylearn.preconditioners import IC0

    ic0 = IC0().setup(A).L  # the fallback factor is IC(0) of A, taken from the network's input pass
    np.testing.assert_array_equal(pc.L.indices, np.asarray(ic0.indices))
    np.testing.assert_allclose(pc.L.data, np.asarray(ic0.data), rtol=1e-12)
    b = np.ones(A.shape[0])
    x, info = cg(A, b, M=pc, rtol=1e-8, maxiter=6000)
    assert info == 0 and np.linalg.norm(b - A @ x) <= 1e-7 * np.linalg.norm(b)


def test_out_of_range_fraction_with_and_without_extremes():
    from krylearn.preconditioners.learned_ic import out_of_range_fraction

    ranges = {"node": [[0.0, -1.0, 0.0, 0.0], [1.0, 1.0, 2.0, 2.0]]}
    rng = np.random.default_rng(0)
    inside = rng.uniform(0.1, 0.9, (50, 4)).astype(np.float32)
    outside = inside.copy()
    outside[[3, 7], 2] = 5.0  # two nodes beyond 2.0 + 5% margin
    outside[11, 0] = np.nan  # NaN counts as in range either way
    for x, want in ((inside, 0.0), (outside, 2 / 50)):
        extremes = (np.nanmin(x, axis=0), np.nanmax(x, axis=0))
        assert out_of_range_fraction(x, ranges) == want
        assert out_of_range_fraction(x, ranges, extremes) == want


def test_cg_with_fallback_reruns_and_never_returns_worse():
    A = make_matrix("diffusion2d", 400, seed=5)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    with pytest.warns(RuntimeWarning, match="did not converge"):
        res = cg_with_fallback(A, b, M=perturbed_model(), rtol=1e-8, maxiter=3)
    assert res.details["fallback"] in ("ic0", "ssor") and res.iterations > 3
    res_ok = cg_with_fallback(A, b, M=LearnedIC.from_pretrained("diffusion2d"), rtol=1e-8)
    assert res_ok.converged and np.linalg.norm(b - A @ res_ok.x) <= 1e-7 * np.linalg.norm(b)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shipped_models_reach_true_residual_on_every_family(family):
    """Each family (training and hold-out) with its model (hold-outs: their training family's)."""
    from krylearn import cg

    model = next((f for f in TRAINING_FAMILIES if family in FAMILIES[f].holdouts), family)
    A = make_matrix(family, 400 if "synthetic" not in family else 300, seed=7)
    b = np.random.default_rng(7).standard_normal(A.shape[0])
    pc = LearnedIC.from_pretrained(model).setup(A)
    if model == family:
        assert pc.fallback is None  # in distribution: the network's factor is used
    x, info = cg(A, b, M=pc, rtol=1e-8, maxiter=20 * A.shape[0])
    assert info == 0
    assert np.linalg.norm(b - A @ x) <= 1e-7 * np.linalg.norm(b)


def test_solve_with_learned_name_and_scipy_operator():
    import krylearn

    A = make_matrix("diffusion2d", 400, seed=11)
    b = np.ones(A.shape[0])
    result = krylearn.solve(A, b, M="learned", rtol=1e-8)
    assert result.converged and np.linalg.norm(b - A @ result.x) <= 1e-7 * np.linalg.norm(b)
    result = krylearn.solve(A, b, M="learned:diffusion2d", rtol=1e-8)
    assert result.converged
    from scipy.sparse.linalg import cg as scipy_cg

    op = LearnedIC.from_pretrained("diffusion2d").setup(A).as_linear_operator()
    x, info = scipy_cg(A, b, M=op, rtol=1e-8)
    assert info == 0


def test_feature_graph_is_jacobi_scale_invariant():
    A = make_matrix("heat_fem", 200, seed=2)
    d = sp.diags_array(np.random.default_rng(0).uniform(0.1, 10.0, A.shape[0]))
    g1, _, _ = factor_graph(A)
    g2, _, _ = factor_graph(d @ A @ d)
    torch.testing.assert_close(g1.node_features, g2.node_features, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g1.edge_features, g2.edge_features, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_families_are_seeded_spd(family):
    A = make_matrix(family, 200, seed=4)
    B = make_matrix(family, 200, seed=4)
    assert (A != B).nnz == 0 and (abs(A - A.T) > 1e-12 * abs(A).max()).nnz == 0
    assert np.all(A.diagonal() > 0)
    assert np.linalg.eigvalsh(A.toarray()).min() > 0


def test_training_command_writes_weights_and_record(tmp_path, capsys):
    rc = train_main(["--family", "diffusion2d", "--n", "100", "--n-train", "2", "--n-val", "1", "--epochs", "2",
                     "--width", "8", "--rounds", "2", "--threads", "1", "--name", "tiny",
                     "--output-dir", str(tmp_path)])
    assert rc == 0
    record = json.loads((tmp_path / "tiny.json").read_text())
    assert len(record["loss_curve"]) == 2 and [v["epoch"] for v in record["validation"]] == [0, 1, 2]
    assert record["family"] == "diffusion2d" and record["loss"] == "data"
    pc = LearnedIC.load(tmp_path / "tiny.pt", family="diffusion2d")
    assert pc.metadata["training"]["epochs"] == 2


@pytest.mark.slow
def test_benchmark_suite_quick(tmp_path):
    from krylearn.bench.suite_learned import main as bench_main

    rc = bench_main(["--quick", "--families", "diffusion2d", "synthetic", "--timings", "2", "--results", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "learned" / "learned_ic.json").read_text())["rows"]
    assert {r["pc"] for r in rows} == {"none", "jacobi", "ssor", "ic0", "amg", "learned"}
    assert all(r["true_relres"] <= 1e-7 for r in rows if r["pc"] == "learned")
    # a case's right-hand side depends on the case alone: one family run alone gives the same iterations
    rc = bench_main(["--quick", "--families", "synthetic", "--no-real", "--timings", "1", "--results", str(tmp_path / "one")])
    alone = json.loads((tmp_path / "one" / "learned" / "learned_ic.json").read_text())["rows"]
    iterations = lambda rs: {(r["problem"], r["scope"], r["pc"]): r["iterations"] for r in rs  # noqa: E731
                             if r["model"] == "synthetic"}
    assert rc == 0 and iterations(alone) == iterations(rows)


def test_benchmark_best_of_interleaves_rounds_and_keeps_fastest(monkeypatch):
    from krylearn.bench import suite_learned

    calls = []
    times = {"a": iter([0.3, 0.1, 0.2]), "b": iter([5.0, 0.01]), "c": iter([0.5, 0.7, 0.6])}

    def fake_measure(A, b, name, pc):
        calls.append(name)
        return {"pc": name, "total_s": next(times[name])}

    monkeypatch.setattr(suite_learned, "measure", fake_measure)
    best = suite_learned.best_of(None, None, {"a": None, "b": None, "c": None}, rounds=3)
    assert calls == ["a", "b", "c", "a", "c", "a", "c"]  # round by round; b's 5 s solve is not repeated
    assert {k: v["total_s"] for k, v in best.items()} == {"a": 0.1, "b": 5.0, "c": 0.5}


def test_warnings_free_prediction_on_shipped_model():
    A = make_matrix("diffusion2d", 256, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LearnedIC.from_pretrained().setup(A)
