"""The native forward pass of the learned-IC network (_kernels.ic_gnn_forward)
against the torch module, and its input validation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from krylearn import _kernels
from krylearn.bench.spd_families import TRAINING_FAMILIES, make_matrix
from krylearn.preconditioners.ic_gnn import ICGNN
from krylearn.preconditioners.learned_ic import MODELS_DIR, LearnedIC, factor_inputs


def random_spd(n: int, seed: int, density: float = 0.2) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    B = sp.random_array((n, n), density=density, rng=rng, data_sampler=rng.standard_normal)
    return sp.csr_array(B @ B.T + sp.diags_array(rng.uniform(0.1, 2.0, n)))


def random_model(width: int, rounds: int, seed: int, scale: float = 0.5, activation: str = "silu") -> LearnedIC:
    """Random weights everywhere, decoders included (so the output is not IC(0))."""
    torch.manual_seed(seed)
    model = ICGNN(width=width, rounds=rounds, activation=activation)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return LearnedIC(model, {"family": "test"})


def forward(pc: LearnedIC, inputs, **kw):
    return _kernels.ic_gnn_forward(inputs.lower_ptr, inputs.cols, inputs.a_off, inputs.l0_off, inputs.node_features,
                                   pc.model.native_parameters(), pc.model.width, pc.model.rounds,
                                   activation=pc.model.activation, **kw)


def assert_matches_torch(pc: LearnedIC, A) -> None:
    inputs, _, _ = factor_inputs(A)
    ref_off, ref_diag = pc.network_output(inputs, backend="torch")
    off, diag = pc.network_output(inputs, backend="native")
    assert off.dtype == diag.dtype == np.float32 and off.shape == ref_off.shape and diag.shape == ref_diag.shape
    for got, want in ((off, ref_off), (diag, ref_diag)):  # float32 rounding, relative to the output's scale
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max(initial=1.0)))


@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS_DIR.glob("*.pt")))
def test_shipped_models_match_torch(name):
    pc = LearnedIC.from_pretrained(name)
    family = name if name in TRAINING_FAMILIES else "diffusion2d"
    assert_matches_torch(pc, make_matrix(family, 600, seed=5))


@pytest.mark.parametrize("width,rounds", [(8, 3), (16, 2), (5, 1), (2, 4)])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("activation", ["silu", "hardswish"])
def test_random_weights_and_matrices_match_torch(width, rounds, seed, activation):
    pc = random_model(width, rounds, seed, scale=2.0 if activation == "hardswish" else 0.5, activation=activation)
    assert_matches_torch(pc, random_spd(97, seed=seed, density=0.08))


def test_hardswish_network_differs_from_silu_and_keeps_nan():
    """The activation reaches the native pass (same weights, another factor), and a NaN weight gives
    NaN output under hard swish's clamps too (max/min return NaN), which the fallback relies on."""
    inputs, _, _ = factor_inputs(random_spd(97, seed=2, density=0.08))
    silu, hswish = random_model(8, 2, seed=2), random_model(8, 2, seed=2, activation="hardswish")
    assert not np.allclose(forward(silu, inputs)[0], forward(hswish, inputs)[0])
    with torch.no_grad():
        hswish.model.edge_encoder[0].bias.fill_(float("nan"))
    for lanes in sorted({4, _kernels.ic_gnn_max_lanes()}):
        off, diag = forward(hswish, inputs, lanes=lanes)
        assert np.isnan(off).all() and np.isnan(diag).all()


def test_one_node_and_isolated_nodes():
    pc = random_model(8, 2, seed=3)
    assert_matches_torch(pc, sp.csr_array(np.array([[2.0]])))
    isolated = sp.block_diag([random_spd(20, seed=4), sp.eye_array(1) * 3.0, random_spd(7, seed=5)], format="csr")
    inputs, _, _ = factor_inputs(isolated)
    assert np.any(np.diff(inputs.lower_ptr) == 0)  # rows without lower edges
    assert_matches_torch(pc, sp.csr_array(isolated))


def test_int32_and_int64_indices_and_thread_counts_agree_bitwise():
    pc = random_model(8, 3, seed=6)
    inputs, _, _ = factor_inputs(random_spd(300, seed=6, density=0.03))
    reference = forward(pc, inputs)
    inputs.lower_ptr, inputs.cols = inputs.lower_ptr.astype(np.int64), inputs.cols.astype(np.int64)
    for threads in (1, 2, 3):
        for got, want in zip(forward(pc, inputs, threads=threads), reference):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("width", [8, 16, 6])
@pytest.mark.parametrize("lanes", [8, 16])
@pytest.mark.parametrize("activation", ["silu", "hardswish"])
def test_vector_widths_agree(width, lanes, activation):
    """lanes=4 (SSE), 8 (AVX2) and 16 (AVX-512), where the CPU has them, run the same per-lane
    operations, AVX2/AVX-512 with fused multiply-adds: equal to float32 rounding, for widths that
    fill whole transpose blocks (8, 16) and scalar ones (6); each is deterministic."""
    pc = random_model(width, 2, seed=7, activation=activation)
    inputs, _, _ = factor_inputs(random_spd(257, seed=7, density=0.03))  # odd counts: partial tiles too
    reference = forward(pc, inputs, lanes=4)
    for got, want in zip(forward(pc, inputs, lanes=4), reference):
        np.testing.assert_array_equal(got, want)
    if _kernels.ic_gnn_max_lanes() < lanes:
        pytest.skip(f"this CPU has no {lanes}-float vectors")
    wide = forward(pc, inputs, lanes=lanes)
    for got, want in zip(wide, reference):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    for got, want in zip(forward(pc, inputs, lanes=lanes), wide):
        np.testing.assert_array_equal(got, want)


def test_default_lanes_are_the_widest():
    pc = random_model(8, 2, seed=3)
    inputs, _, _ = factor_inputs(random_spd(300, seed=3, density=0.03))
    for got, want in zip(forward(pc, inputs), forward(pc, inputs, lanes=_kernels.ic_gnn_max_lanes())):
        np.testing.assert_array_equal(got, want)


def test_learned_ic_uses_native_path_with_same_factor():
    pc = LearnedIC.from_pretrained("diffusion2d")
    A = make_matrix("diffusion2d", 400, seed=7)
    L = pc.predict_factor(A)
    inputs, pattern, _ = factor_inputs(A)
    L_torch = pattern.assemble(*pc.network_output(inputs, backend="torch"))
    np.testing.assert_allclose(L.data, L_torch.data, rtol=1e-5)
    with pytest.raises(ValueError, match="backend"):
        pc.network_output(inputs, backend="cuda")


def valid_arguments():
    pc = random_model(8, 2, seed=8)
    inputs, _, _ = factor_inputs(random_spd(30, seed=8))
    return dict(lower_ptr=inputs.lower_ptr, cols=inputs.cols, a_off=inputs.a_off, l0_off=inputs.l0_off,
                node_features=inputs.node_features, parameters=pc.model.native_parameters(), width=8, rounds=2)


def with_change(key, value):
    args = valid_arguments()
    args[key] = value(args[key]) if callable(value) else value
    return args


BAD_INPUTS = {
    "short cols": ("cols", lambda c: c[:-1].copy(), "a_off has length"),
    "short a_off": ("a_off", lambda a: a[:-1].copy(), "a_off has length"),
    "short l0_off": ("l0_off", lambda a: a[:-1].copy(), "l0_off has length"),
    "column out of range": ("cols", lambda c: np.where(np.arange(len(c)) == 0, 10**6, c).astype(c.dtype), "strictly-lower"),
    "negative column": ("cols", lambda c: np.where(np.arange(len(c)) == 0, -1, c).astype(c.dtype), "strictly-lower"),
    "upper edge": ("cols", lambda c: np.where(np.arange(len(c)) == len(c) - 1, 29, c).astype(c.dtype), "strictly-lower"),
    "lower_ptr end": ("lower_ptr", lambda p: np.append(p[:-1], p[-1] - 1).astype(p.dtype), "lower_ptr\\[-1\\]"),
    "lower_ptr start": ("lower_ptr", lambda p: p + 1, "lower_ptr\\[0\\]"),
    "lower_ptr decreasing": ("lower_ptr", lambda p: np.where(np.arange(len(p)) == 5, p[-1] + 1, p).astype(p.dtype),
                             "non-decreasing"),
    "node_features rows": ("node_features", lambda x: x[:-1].copy(), "node_features must have shape"),
    "node_features columns": ("node_features", lambda x: x[:, :3].copy(), "node_features must have shape"),
    "node_features strided": ("node_features", lambda x: np.asfortranarray(x), "C-contiguous"),
    "parameter count": ("parameters", lambda w: w[:-1].copy(), "parameters has length"),
    "width": ("width", 9, "parameters has length"),
    "width range": ("width", 1, "width must be in"),
    "rounds range": ("rounds", 0, "rounds must be in"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_value_error(case):
    key, change, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        _kernels.ic_gnn_forward(**with_change(key, change))


@pytest.mark.parametrize("key,value", [("a_off", lambda a: a.astype(np.float64)),
                                       ("parameters", lambda w: w.astype(np.float64)),
                                       ("cols", lambda c: c.astype(np.int64)),
                                       ("lower_ptr", lambda p: p.astype(np.float32)),
                                       ("node_features", lambda x: x.tolist())])
def test_wrong_types_raise_type_error(key, value):
    with pytest.raises(TypeError):
        _kernels.ic_gnn_forward(**with_change(key, value))


def test_bad_activation():
    with pytest.raises(ValueError, match="activation must be 'silu' or 'hardswish'"):
        _kernels.ic_gnn_forward(**valid_arguments(), activation="relu")
    with pytest.raises(ValueError, match="activation must be one of"):
        ICGNN(activation="relu")


def test_bad_thread_count():
    with pytest.raises(ValueError, match="threads"):
        _kernels.ic_gnn_forward(**valid_arguments(), threads=-1)


@pytest.mark.parametrize("lanes", [-1, 2, 12, 32])
def test_bad_lane_count(lanes):
    with pytest.raises(ValueError, match="lanes"):
        _kernels.ic_gnn_forward(**valid_arguments(), lanes=lanes)


def test_input_kernel_rejects_what_is_not_an_spd_candidate():
    from krylearn._validation import as_kernel_matrix

    def kernel(A):
        return as_kernel_matrix(sp.csr_array(A))

    with pytest.raises(ValueError, match="square"):
        _kernels.ic_gnn_inputs(_kernels.CsrMatrix(np.array([0, 1, 2]), np.array([0, 1]), np.ones(2), 3))
    with pytest.raises(ValueError, match=r"A\[1,1\] is not stored"):
        _kernels.ic_gnn_inputs(kernel(np.array([[2.0, 1.0], [1.0, 0.0]])))
    with pytest.raises(ValueError, match=r"zero or negative diagonal entry \(A\[0,0\] = -1"):
        _kernels.ic_gnn_inputs(kernel(np.array([[-1.0, 0.0], [0.0, 1.0]])))
    with pytest.raises(ValueError, match="broke down"):  # positive diagonal, indefinite beyond any shift tried
        _kernels.ic_gnn_inputs(kernel(np.array([[1.0, 3.0], [3.0, 1.0]])), max_tries=2)
    with pytest.raises(ValueError, match="max_tries"):
        _kernels.ic_gnn_inputs(kernel(np.eye(2)), max_tries=0)


def test_assembly_validates_its_arrays_and_flags_bad_factors():
    _, pattern, _ = factor_inputs(random_spd(30, seed=9))
    n, E = 30, int(pattern.indptr[-1]) - 30
    l_off, l_diag = np.full(E, 0.1, np.float32), np.ones(n, np.float32)
    data, bad = _kernels.ic_gnn_assemble(pattern.indptr, l_off, l_diag, pattern.sqrt_diag)
    assert bad == 0 and np.all(data[pattern.indptr[1:] - 1] == pattern.sqrt_diag)
    for args, message in [((pattern.indptr, l_off[:-1], l_diag, pattern.sqrt_diag), "l_off has length"),
                          ((pattern.indptr, l_off, l_diag[:-1], pattern.sqrt_diag), "l_diag has length"),
                          ((pattern.indptr, l_off, l_diag, pattern.sqrt_diag[:-1]), "sqrt_diag has length"),
                          ((np.array([0, 1, 1], pattern.indptr.dtype), l_off[:0], l_diag[:2], pattern.sqrt_diag[:2]),
                           "row 1 is empty"),
                          ((pattern.indptr + 1, l_off, l_diag, pattern.sqrt_diag), r"indptr\[0\]")]:
        with pytest.raises(ValueError, match=message):
            _kernels.ic_gnn_assemble(*args)
    with pytest.raises(TypeError):
        _kernels.ic_gnn_assemble(pattern.indptr, l_off.astype(np.float64), l_diag, pattern.sqrt_diag)
    l_diag[3], l_off[0] = -1.0, np.nan
    assert _kernels.ic_gnn_assemble(pattern.indptr, l_off, l_diag, pattern.sqrt_diag)[1] == 2
