"""DCDM: obstacle Poisson generator, Ritz vectors, loss, training, the iteration, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from krylearn.bench import obstacle_poisson as op
from krylearn.solvers import dcdm_train
from krylearn.solvers.dcdm import (NetworkPreconditioner, check_grid_matrix, flexible_cg, load_model,
                                   multiscale_factors, resolve_scales, save_model, solve_dcdm)
from krylearn.solvers.dcdm_unet import ResidualUNet
from krylearn.solvers.ritz import lanczos, ritz_pairs, training_rhs


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The networks here are small; on a shared 2-core machine one thread is many times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- generator

@pytest.mark.parametrize("shape", [(12, 10), (6, 7, 5)])
@pytest.mark.parametrize("name", sorted(op.SCENES))
def test_scenes_are_spd_grid_systems(name, shape):
    problem = op.scene(name, shape)
    A = problem.A
    assert A.shape == (problem.mask.sum(),) * 2 and problem.b.shape == (problem.n,)
    assert abs(A - A.T).max() == 0
    assert np.linalg.eigvalsh(A.toarray()).min() > 0
    check_grid_matrix(A, problem.mask)  # 5-/7-point stencil on the fluid cells
    # interior fluid cells with only fluid neighbours: Laplacian rows sum to zero
    assert np.all(A.sum(axis=1) >= -1e-12)


def test_obstacles_are_neumann_and_open_sides_dirichlet():
    mask = np.ones((5, 5), dtype=bool)
    mask[2, 2] = False  # one solid cell in the middle
    A = op.pressure_matrix(mask, open_sides=("y+",))
    index = np.full(mask.shape, -1)
    index[mask] = np.arange(mask.sum())
    dense = A.toarray()
    # the cell left of the obstacle has 3 fluid neighbours and no open face: diagonal 3, row sum 0
    assert dense[index[1, 2], index[1, 2]] == 3 and abs(dense[index[1, 2]].sum()) == 0
    # a top cell (y+ open) gets one extra diagonal entry for the ghost pressure 0
    assert dense[index[0, 4], index[0, 4]] == 3 and dense[index[0, 4]].sum() == 1


def test_enclosed_fluid_is_removed_and_all_solid_rejected():
    solid = np.zeros((9, 9), dtype=bool)
    solid[2:7, 2:7] = True
    solid[4, 4] = False  # a fluid cell sealed inside the box
    mask = op.fluid_mask((9, 9), solid)
    assert not mask[4, 4] and mask.sum() == 81 - 25
    with pytest.raises(ValueError, match="touches no open side"):
        op.pressure_matrix(~solid)
    with pytest.raises(ValueError, match="all solid"):
        op.pressure_matrix(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="all solid"):
        op.make_problem((4, 4), np.ones((4, 4), dtype=bool))


def test_divergence_rhs_has_no_flux_through_closed_walls():
    # closed box with an open top and no obstacles: sum of -div u = net inflow through the top only
    problem = op.scene("smoke-box", (16, 16), seed=3)
    assert np.all(np.isfinite(problem.b)) and np.linalg.norm(problem.b) > 0
    random = op.random_problem((24, 24), seed=5, kinds=("sphere", "blob"))
    assert 0 < random.info["solid_fraction"] < 0.5


# ----------------------------------------------------------------------------- Ritz vectors

@pytest.mark.parametrize("method", ["lanczos", "eigsh"])
def test_ritz_vectors_are_a_orthogonal(method):
    problem = op.scene("two-spheres", (14, 14))
    theta, Y = ritz_pairs(problem.A, 30, method=method)
    G = Y.T @ (problem.A @ Y)
    assert np.allclose(Y.T @ Y, np.eye(30), atol=1e-10)
    assert np.allclose(G, np.diag(theta), atol=1e-10 * theta.max())
    assert np.all(np.diff(theta) >= 0) and theta[0] > 0
    if method == "lanczos":
        # the lowest Ritz value converges to the smallest eigenvalue from above
        lam = np.linalg.eigvalsh(problem.A.toarray())
        assert lam[0] <= theta[0] < lam[0] * 1.05


def test_lanczos_basis_and_training_rhs():
    A = op.scene("empty", (10, 10)).A
    alpha, beta, V = lanczos(A, 40, seed=2)
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    assert np.allclose(V.T @ V, np.eye(40), atol=1e-12)
    assert np.allclose(V.T @ (A @ V), T, atol=1e-10)
    _, Y = ritz_pairs(A, 40)
    B = training_rhs(Y, 64, low_fraction=0.5, low_weight=9.0, seed=1)
    assert B.shape == (64, 100) and np.allclose(np.linalg.norm(B, axis=1), 1.0)
    coeff = B @ Y  # Y orthonormal: coefficients in the Ritz basis
    assert np.mean(coeff[:, :20] ** 2) > 40 * np.mean(coeff[:, 20:] ** 2)  # about 81x by construction
    with pytest.raises(ValueError):
        lanczos(A, 0)
    with pytest.raises(ValueError):
        ritz_pairs(A, 5, method="power")


# ----------------------------------------------------------------------------- loss and training

@settings(max_examples=40, deadline=None)
@given(scale=st.floats(min_value=1e-6, max_value=1e6) | st.floats(min_value=-1e6, max_value=-1e-6),
       seed=st.integers(0, 1000))
def test_loss_is_invariant_to_the_scale_of_q(scale, seed):
    A = dcdm_train.torch_matrix(op.scene("two-spheres", (8, 8)).A).to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    n = A.shape[0]
    q, b = torch.randn(3, n, generator=gen, dtype=torch.float64), torch.randn(3, n, generator=gen, dtype=torch.float64)
    base = dcdm_train.scale_invariant_loss(q, b, A)
    assert torch.isclose(dcdm_train.scale_invariant_loss(scale * q, b, A), base, rtol=1e-9)
    # and it is the mean squared residual after the exact line search along q
    Ad, qn, bn = A.to_dense().numpy(), q.numpy(), b.numpy()
    expected = np.mean([np.sum((bi - (qi @ bi) / (qi @ Ad @ qi) * (Ad @ qi)) ** 2) for qi, bi in zip(qn, bn)])
    assert base.item() == pytest.approx(expected, rel=1e-10)


def test_loss_is_zero_for_the_exact_inverse():
    problem = op.scene("empty", (6, 6))
    A = dcdm_train.torch_matrix(problem.A).to(torch.float64)
    b = torch.randn(2, problem.n, dtype=torch.float64)
    q = torch.from_numpy(np.linalg.solve(problem.A.toarray(), b.numpy().T).T)
    assert dcdm_train.scale_invariant_loss(q, b, A) < 1e-20
    assert dcdm_train.scale_invariant_loss(torch.zeros_like(q), b, A) == pytest.approx((b**2).sum(1).mean().item())


def test_a_few_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    problem = op.random_problem((16, 16), seed=3, kinds=("box",))
    domain = dcdm_train.TrainingDomain(problem, ritz_steps=40, rhs_count=32, seed=0, device="cpu")
    model = ResidualUNet(dim=2, levels=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = torch.arange(16)
    with torch.no_grad():
        before = domain.loss(model, batch).item()
    for _ in range(25):
        loss = domain.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = domain.loss(model, batch).item()
    assert after < 0.8 * before


def test_train_command_writes_checked_weights_and_record(tmp_path):
    from krylearn import cli

    out = tmp_path / "tiny.pt"
    code = cli.main(["train", "dcdm", "--dim", "2", "--grid", "12", "--domains", "1", "--ritz", "20", "--rhs", "16",
                     "--batch", "4", "--steps", "3", "--levels", "1", "--output", str(out)])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["steps"] == 3 and record["arguments"]["grid"] == [12] and len(record["history"]) >= 2
    model = load_model(out)
    assert model.dim == 2 and model.metadata["steps"] == 3
    payload = torch.load(out, weights_only=True)
    header = json.loads(payload["header"])
    header["version"] = 99
    torch.save({"header": json.dumps(header), "state_dict": payload["state_dict"]}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="version"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="shipped models"):
        load_model("no_such_model")


def test_train_command_on_a_mix_of_grids(tmp_path):
    from krylearn import cli

    out = tmp_path / "mix.pt"
    code = cli.main(["train", "dcdm", "--dim", "2", "--grid", "12", "24", "--domains", "1", "--ritz", "20", "--rhs", "16",
                     "--batch", "8", "--steps", "2", "--levels", "2", "--output", str(out)])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    systems = record["training_systems"]
    assert [(s["grid"], s["batch"]) for s in systems] == [(12, 8), (24, 2)]  # same cells per step on every grid
    assert record["heldout_check"]["grid"] == 24
    assert load_model(out).levels == 2
    with pytest.raises(SystemExit):
        cli.main(["train", "dcdm", "--grid", "12", "12", "--output", str(tmp_path / "x.pt")])


# ----------------------------------------------------------------------------- the iteration

@pytest.mark.parametrize("dim,size", [(2, 24), (3, 10)])
def test_shipped_dcdm_converges_to_1e_8(dim, size):
    problem = op.scene("sphere-plume", (size,) * dim)
    result = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-8)
    assert result.converged and result.info == 0 and result.method == "dcdm"
    assert np.linalg.norm(problem.b - problem.A @ result.x) <= 1e-8 * np.linalg.norm(problem.b)
    assert result.residuals[0] == pytest.approx(np.linalg.norm(problem.b)) and len(result.residuals) == result.iterations + 1


def test_paper_dcdm_without_smoother_steps_converges_to_1e_8_in_2d():
    problem = op.scene("sphere-plume", (16, 16))
    result = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-8, smoother=None, scales=(1,), maxiter=1000)
    assert result.converged and result.details["smoother_steps"] == 0 and result.details["fallback_steps"] == 0
    assert result.preconditioner == "dcdm-net"
    assert np.linalg.norm(problem.b - problem.A @ result.x) <= 1e-8 * np.linalg.norm(problem.b)


@pytest.mark.parametrize("smoother", ["jacobi", "ssor", "ic0"])
def test_every_smoother_takes_one_step_per_network_step_and_converges(smoother):
    problem = op.scene("sphere-plume", (24, 24))
    result = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-8, smoother=smoother, scales=(1,))
    assert result.converged and result.preconditioner == f"dcdm-net+{smoother}"
    assert result.details["smoother_steps"] == result.iterations - result.details["fallback_steps"] > 0
    assert np.linalg.norm(problem.b - problem.A @ result.x) <= 1e-8 * np.linalg.norm(problem.b)


def test_full_grid_shape_and_krylearn_solve_dispatch():
    problem = op.scene("empty", (20, 20))
    result = solve_dcdm(problem.A, problem.b, grid=(20, 20), rtol=1e-8)
    assert result.converged
    import krylearn

    via_solve = krylearn.solve(problem.A, problem.b, method="dcdm", grid=(20, 20), rtol=1e-8)
    assert via_solve.converged and via_solve.method == "dcdm"
    assert np.allclose(via_solve.x, result.x, rtol=1e-6, atol=1e-8)
    paper = krylearn.solve(problem.A, problem.b, method="dcdm", M="none", scales=(1,), grid=(20, 20), rtol=1e-8)
    assert paper.converged and paper.preconditioner == "dcdm-net"
    with pytest.raises(ValueError, match="not both"):
        krylearn.solve(problem.A, problem.b, method="dcdm", M="ssor", smoother="ic0", grid=(20, 20))


def test_shipped_weights_beat_cg_on_a_held_out_scene():
    from krylearn.solvers.krylov import run_cg

    problem = op.random_problem((64, 64), seed=77, count=5, kinds=("sphere", "blob"))  # shapes never trained on
    cg = run_cg(problem.A, problem.b, rtol=1e-6, atol=0.0, maxiter=5000, M=None)
    dcdm = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-6)
    assert cg.converged and dcdm.converged
    assert dcdm.iterations < cg.iterations
    assert dcdm.details["fallback_steps"] < dcdm.iterations / 2  # the network, not the fallback, does the work


def test_network_as_flexible_gmres_preconditioner():
    from krylearn.solvers.krylov import run_cg, run_gmres

    problem = op.scene("two-spheres", (32, 32))
    M = NetworkPreconditioner(load_model("dcdm_2d"), problem.mask).setup(problem.A)
    result = run_gmres(problem.A, problem.b, M=M, flexible=True, restart=60, rtol=1e-6, atol=0.0, maxiter=120)
    cg = run_cg(problem.A, problem.b, rtol=1e-6, atol=0.0, maxiter=5000)
    assert result.converged and result.iterations < cg.iterations
    assert np.linalg.norm(problem.b - problem.A @ result.x) <= 1.01e-6 * np.linalg.norm(problem.b)


def test_network_step_is_the_energy_optimal_step_along_its_direction():
    """z = alpha q with alpha = q.r / q.A q: the residual after the step is orthogonal
    to z, and z does not depend on the scale of r."""
    problem = op.scene("sphere-plume", (32, 32))
    M = NetworkPreconditioner(load_model("dcdm_2d"), problem.mask).setup(problem.A)
    r = np.random.default_rng(5).standard_normal(problem.n)
    z = M(r)
    assert abs(z @ (r - problem.A @ z)) <= 1e-10 * np.linalg.norm(z) * np.linalg.norm(r)
    assert np.allclose(M(1e6 * r), 1e6 * z, rtol=1e-5, atol=0.0)
    assert z @ r > 0  # a descent direction for the energy


def test_multiscale_factors_and_the_named_scale_rules():
    assert multiscale_factors((64, 64), 64) == (1,)
    assert multiscale_factors((128, 128), 64) == (1, 2)
    assert multiscale_factors((256, 256), 64) == (1, 2, 4)
    assert multiscale_factors((512, 300), 64) == (1, 2, 4, 8)
    assert multiscale_factors((90, 90), 64) == (1,)  # 45 cells at scale 2: below 64 / sqrt(2)
    assert multiscale_factors((100, 40), 64) == (1, 2)
    assert multiscale_factors((64, 64, 64), 32) == (1, 2)
    with pytest.raises(ValueError, match="coarsest_extent"):
        multiscale_factors((64, 64), 0)
    net = load_model("dcdm_2d")  # trained at 64^2
    assert resolve_scales("all", net, (64, 64)) == (1, 2, 4, 8)  # down to 8 cells per axis
    assert resolve_scales("auto", net, (64, 64)) == (2, 4, 8)  # the smoother takes the fine grid's step
    assert resolve_scales("auto", net, (64, 64), smoother=False) == (1, 2, 4, 8)
    assert resolve_scales("auto", net, (8, 8)) == resolve_scales("all", net, (8, 8)) == (1,)
    assert resolve_scales("trained", net, (256, 256)) == (1, 2, 4)
    assert resolve_scales([1, 4], net, (64, 64)) == (1, 4)
    untrained = ResidualUNet(dim=2)  # no training grid recorded
    assert resolve_scales("trained", untrained, (256, 256)) == (1,)


class _ProbeNet(ResidualUNet):
    """Returns its input unchanged and records what it was given."""

    def __init__(self):
        super().__init__(dim=2)
        self.seen = []

    def forward(self, r, mask):
        self.seen.append((r.detach().clone(), mask.detach().clone()))
        return r.clone()


def test_coarse_scale_feeds_block_sums_and_interpolates_back():
    """scale s: the network sees the residual summed over s x s blocks of the grid padded with solid
    cells (unit RMS on the coarse fluid cells, a coarse cell fluid when any of its cells is), and its
    output is interpolated back onto the fluid cells; scale 1 is the plain network step."""
    mask = np.ones((10, 6), dtype=bool)
    mask[4:8, 0:4] = False  # fully covers the coarse cell (1, 0) of the 4 x 4 blocks
    A = op.pressure_matrix(mask)
    r = np.random.default_rng(3).standard_normal(int(mask.sum()))
    net = _ProbeNet()
    z = NetworkPreconditioner(net, mask, scale=4).setup(A)(r)
    h, fluid = net.seen[-1]
    padded = np.zeros((12, 8))
    padded[:10, :6][mask] = r / np.sqrt(np.mean(r * r))
    sums = padded.reshape(3, 4, 2, 4).sum(axis=(1, 3))
    coarse_fluid = np.zeros((12, 8), dtype=bool)
    coarse_fluid[:10, :6] = mask
    coarse_fluid = coarse_fluid.reshape(3, 4, 2, 4).any(axis=(1, 3))
    assert np.array_equal(fluid[0, 0].numpy() > 0, coarse_fluid) and not coarse_fluid[1, 0]
    expected = sums / np.sqrt(np.mean(sums[coarse_fluid] ** 2))
    assert np.allclose(h[0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)
    back = torch.nn.functional.interpolate(torch.from_numpy(expected)[None, None], scale_factor=4, mode="bilinear",
                                           align_corners=False)[0, 0].numpy()[:10, :6][mask]
    cosine = z @ back / (np.linalg.norm(z) * np.linalg.norm(back))
    assert cosine == pytest.approx(1.0, abs=1e-6)  # z = alpha * prolongation of the coarse output
    net1 = _ProbeNet()
    z1 = NetworkPreconditioner(net1, mask, scale=1).setup(A)(r)
    assert np.allclose(net1.seen[-1][0][0, 0].numpy()[mask], r / np.sqrt(np.mean(r * r)), rtol=1e-6)
    assert z1 @ r > 0
    with pytest.raises(ValueError, match="scale"):
        NetworkPreconditioner(net, mask, scale=0)


def test_at_scale_equals_a_preconditioner_set_up_at_that_scale():
    problem = op.scene("sphere-plume", (48, 48))
    net = load_model("dcdm_2d")
    first = NetworkPreconditioner(net, problem.mask).setup(problem.A)
    r = np.random.default_rng(9).standard_normal(problem.n)
    for scale in (2, 4):
        shared = first.at_scale(scale)
        fresh = NetworkPreconditioner(net, problem.mask, scale=scale).setup(problem.A)
        assert shared.name == fresh.name == f"dcdm-net/{scale}"
        np.testing.assert_array_equal(shared(r), fresh(r))
    with pytest.raises(RuntimeError, match="setup"):
        NetworkPreconditioner(net, problem.mask).at_scale(2)


def test_multiscale_dcdm_cuts_iterations():
    """At 128^2 (the 2D network was trained at 64^2) the network's directions on the 64^2 ... 8^2
    coarsenings cut the iterations on a held-out scene below those of the iteration that stops at the
    training size, and those below the single-scale iteration's."""
    problem = op.random_problem((128, 128), seed=77, count=5, kinds=("sphere", "blob"))
    every = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-6, scales="all")
    trained = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-6, scales="trained")
    single = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-6, scales=(1,))
    assert every.details["scales"] == [1, 2, 4, 8, 16] and trained.details["scales"] == [1, 2]
    assert single.details["scales"] == [1]
    assert every.converged and trained.converged and single.converged
    assert every.iterations < trained.iterations < single.iterations
    assert trained.preconditioner == "dcdm-net+dcdm-net/2+ic0"
    for result in (every, trained, single):
        assert np.linalg.norm(problem.b - problem.A @ result.x) <= 1e-6 * np.linalg.norm(problem.b)


def test_default_scales_leave_the_fine_grid_to_the_smoother():
    problem = op.random_problem((128, 128), seed=77, count=5, kinds=("sphere", "blob"))
    default = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-8)
    assert default.details["scales"] == [2, 4, 8, 16]
    assert default.preconditioner == "dcdm-net/2+dcdm-net/4+dcdm-net/8+dcdm-net/16+ic0"
    assert default.converged
    assert np.linalg.norm(problem.b - problem.A @ default.x) <= 1e-8 * np.linalg.norm(problem.b)
    paper = solve_dcdm(problem.A, problem.b, grid=problem.mask, rtol=1e-2, smoother=None)  # no smoother: fine too
    assert paper.details["scales"] == [1, 2, 4, 8, 16]
    tiny = op.scene("empty", (8, 8))  # too small to coarsen: the fine scale is all there is
    assert solve_dcdm(tiny.A, tiny.b, grid=tiny.mask).details["scales"] == [1]


def test_bad_scales_and_direction_lists():
    problem = op.scene("empty", (8, 8))
    for bad in ("everything", "coarse", (), (1, 1), (0,), 3):
        with pytest.raises(ValueError):
            solve_dcdm(problem.A, problem.b, grid=(8, 8), scales=bad)
    with pytest.raises(TypeError, match="sequence"):
        flexible_cg(problem.A, problem.b, [])


def test_flexible_cg_with_identity_is_cg():
    problem = op.scene("two-spheres", (16, 16))
    fcg = flexible_cg(problem.A, problem.b, lambda r: r.copy(), k=1, rtol=1e-10)
    x = np.linalg.solve(problem.A.toarray(), problem.b)
    assert fcg.converged and np.allclose(fcg.x, x, rtol=1e-8, atol=1e-10)
    assert fcg.iterations <= problem.n


# ----------------------------------------------------------------------------- bad input

class _ConstantNet(ResidualUNet):
    """A broken network that returns a fixed value everywhere (NaN or zero)."""

    def __init__(self, value: float, dim: int = 2):
        super().__init__(dim=dim)
        self.value = value

    def forward(self, r, mask):
        return torch.full_like(r, self.value)


@pytest.mark.parametrize("smoother", [None, "ic0"])
@pytest.mark.parametrize("value", [float("nan"), 0.0])
def test_broken_network_falls_back_to_preconditioned_residual_steps(value, smoother):
    problem = op.scene("sphere-plume", (12, 12))
    result = solve_dcdm(problem.A, problem.b, grid=problem.mask, model=_ConstantNet(value), rtol=1e-8,
                        smoother=smoother)
    scales = result.details["scales"]  # every network call of every iteration is unusable
    assert result.converged and result.details["fallback_steps"] == len(scales) * result.iterations > 0
    assert result.details["smoother_steps"] == 0


def test_unknown_smoother_is_rejected():
    problem = op.scene("empty", (8, 8))
    with pytest.raises(ValueError, match="unknown preconditioner"):
        solve_dcdm(problem.A, problem.b, grid=(8, 8), smoother="gauss")


def test_bad_grids_and_right_hand_sides():
    problem = op.scene("empty", (8, 8))
    with pytest.raises(ValueError, match="3-D"):
        solve_dcdm(problem.A, problem.b, grid=(8, 8), model=_ConstantNet(0.0, dim=3))
    with pytest.raises(ValueError, match="unknown cells"):
        solve_dcdm(problem.A, problem.b, grid=(8, 9))
    with pytest.raises(ValueError, match="2-D or 3-D grid"):
        solve_dcdm(problem.A, problem.b, grid=(64,))
    with pytest.raises(ValueError, match="shape"):
        solve_dcdm(problem.A, problem.b[:-1], grid=(8, 8))
    with pytest.raises(ValueError, match="all-solid"):
        solve_dcdm(problem.A, problem.b, grid=np.zeros((8, 8), dtype=bool))
    with pytest.raises(TypeError, match="grid"):
        solve_dcdm(problem.A, problem.b, grid=8)


def test_non_grid_matrix_is_rejected_with_the_requirement():
    rng = np.random.default_rng(0)
    R = sp.random(64, 64, density=0.05, random_state=rng)
    A = sp.csr_array(R @ R.T + 64 * sp.eye(64))
    with pytest.raises(ValueError, match="grid matrix.*face neighbour"):
        solve_dcdm(A, np.ones(64), grid=(8, 8))
    nonsym = op.scene("empty", (8, 8)).A.tolil()
    nonsym[0, 1] = -0.5
    with pytest.raises(ValueError, match="symmetric"):
        solve_dcdm(sp.csr_array(nonsym), np.ones(64), grid=(8, 8))


def test_zero_rhs_returns_zero():
    problem = op.scene("empty", (8, 8))
    result = solve_dcdm(problem.A, np.zeros(problem.n), grid=(8, 8), x0=np.ones(problem.n))
    assert result.converged and result.iterations == 0 and not np.any(result.x)


def test_save_load_roundtrip(tmp_path):
    model = ResidualUNet(dim=3, channels=4, blocks=(1, 1, 1), levels=2)
    save_model(model, tmp_path / "m.pt", {"name": "m"})
    loaded = load_model(tmp_path / "m.pt")
    r = torch.randn(1, 1, 6, 5, 4)
    mask = torch.ones_like(r)
    assert torch.equal(model.eval()(r, mask), loaded(r, mask))
    assert loaded.config() == model.config()


@pytest.mark.slow
def test_bench_suite_quick_writes_rows(tmp_path):
    from krylearn.bench import suite_dcdm

    suite_dcdm.main(["--quick", "--dcdm-maxiter", "40", "--output", str(tmp_path)])
    payload = json.loads((tmp_path / "dcdm" / "dcdm.json").read_text())
    rows = payload["rows"]
    assert {r["method"] for r in rows} == set(suite_dcdm.METHODS)
    assert all(r["converged"] for r in rows if not r["method"].startswith("dcdm"))  # every PCG baseline converges
    for r in rows:  # reported residuals are true residuals and agree with the converged flag
        assert (r["rel_residual"] <= r["rtol"]) == r["converged"]
    summary = json.loads((tmp_path / "dcdm" / "dcdm_summary.json").read_text())["rows"]
    assert summary and all(s["iters/ic0"] > 0 for s in summary)
