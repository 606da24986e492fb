"""The petsc4py plugin: Python PCs from the options database, the recycling
KSP, krylearn.solve on PETSc objects, bad input, and 1 vs 2 MPI ranks."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from krylearn.bench.baselines import petsc_matrix
from krylearn.bench.problems import poisson2d
from krylearn.bench.suite_petsc import run_example

if os.environ.get("CI"):
    from petsc4py import PETSc  # CI installs PETSc: a missing petsc4py is a failure there, not a skip
else:
    PETSc = pytest.importorskip("petsc4py.PETSc")

import krylearn  # noqa: E402
import krylearn.petsc as kpetsc  # noqa: E402

pytestmark = pytest.mark.petsc
ROOT = Path(__file__).resolve().parents[1]
_prefixes = itertools.count()


def ksp_from_options(A: "PETSc.Mat", options: dict[str, str]) -> "PETSc.KSP":
    """A KSP configured only through the options database, under a fresh prefix."""
    prefix = f"t{next(_prefixes)}_"
    db = PETSc.Options()
    for key, value in options.items():
        db.setValue(prefix + key, value)
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setFromOptions()
    return ksp


def solve_and_residual(ksp, A, b_array):
    x, b = A.createVecRight(), A.createVecLeft()
    b.getArray()[:] = b_array
    ksp.solve(b, x)
    r = b.duplicate()
    A.mult(x, r)
    r.aypx(-1.0, b)
    return x.getArray(readonly=True).copy(), r.norm() / b.norm(), ksp.getIterationNumber(), ksp.getConvergedReason()


CG_TRUE_RESIDUAL = {"ksp_type": "cg", "ksp_rtol": "1e-8", "ksp_norm_type": "unpreconditioned", "ksp_max_it": "5000"}


def test_solve_dispatches_petsc_mat_and_matches_scipy():
    A = poisson2d(24)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    Am = petsc_matrix(PETSc, A)
    Am.setOption(PETSc.Mat.Option.SPD, True)
    result = krylearn.solve(Am, b, rtol=1e-10)
    assert result.converged and result.method == "petsc-cg"
    x = result.x.getArray(readonly=True)
    assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b) * 1.001
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=1e-7, atol=1e-9)


def test_solve_petsc_iterations_match_native_within_one():
    A = poisson2d(32)
    b = np.ones(A.shape[0])
    Am = petsc_matrix(PETSc, A)
    Am.setOption(PETSc.Mat.Option.SPD, True)
    petsc_result = kpetsc.solve(Am, b, method="cg", M="none", rtol=1e-8)
    native = krylearn.solve(A, b, method="cg", M="none", rtol=1e-8)
    assert abs(petsc_result.iterations - native.iterations) <= 1


def test_tuned_sor_from_options_converges_and_learns():
    A0 = poisson2d(20)
    rng = np.random.default_rng(1)
    Am = petsc_matrix(PETSc, A0)
    ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                "pc_python_type": "krylearn.petsc.TunedSOR",
                                "krylearn_omega_grid": "1.0:1.9:10", "krylearn_seed": "3"})
    for _ in range(12):
        _, rel, _, reason = solve_and_residual(ksp, Am, rng.standard_normal(A0.shape[0]))
        assert reason > 0 and rel <= 1e-8 * 1.001
    context = ksp.getPC().getPythonContext()
    assert len(context.history) == 12
    assert all(1.0 <= omega <= 1.9 for omega, _ in context.history)


def test_gcrodr_ksp_recycles_across_solves():
    rng = np.random.default_rng(2)
    m = 24
    A = poisson2d(m) + sp.diags_array(0.5 * np.linspace(-1, 1, m * m) / m, offsets=1, shape=(m * m, m * m))
    A = sp.csr_array(A)
    Am = petsc_matrix(PETSc, A)
    ksp = ksp_from_options(Am, {"ksp_type": "python", "ksp_python_type": "krylearn.petsc.GCRODR",
                                "krylearn_restart": "30", "krylearn_recycle": "10", "ksp_rtol": "1e-8",
                                "pc_type": "jacobi"})
    b = rng.standard_normal(A.shape[0])
    _, rel1, its1, reason1 = solve_and_residual(ksp, Am, b)
    _, rel2, its2, reason2 = solve_and_residual(ksp, Am, b + 0.1 * rng.standard_normal(A.shape[0]))
    assert reason1 > 0 and reason2 > 0
    assert rel1 <= 1e-8 * 1.001 and rel2 <= 1e-8 * 1.001
    assert its2 < its1


def test_ksp_view_shows_krylearn_options(tmp_path):
    Am = petsc_matrix(PETSc, poisson2d(10))
    ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                "pc_python_type": "krylearn.petsc.TunedSOR", "krylearn_omega_grid": "1.1,1.5,1.7"})
    solve_and_residual(ksp, Am, np.ones(100))
    path = tmp_path / "view.txt"
    viewer = PETSc.Viewer().createASCII(str(path))
    ksp.view(viewer)
    viewer.destroy()
    text = path.read_text()
    assert "bandit-tuned SSOR" in text and "x 3" in text


def test_pc_apply_before_setup_is_a_clear_error():
    context = kpetsc.TunedSOR()
    x = PETSc.Vec().createSeq(4)
    with pytest.raises(RuntimeError, match="before setUp"):
        context.apply(None, x, x.duplicate())


def test_bad_omega_grid_is_reported():
    Am = petsc_matrix(PETSc, poisson2d(8))
    with pytest.raises(PETSc.Error):
        ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                    "pc_python_type": "krylearn.petsc.TunedSOR", "krylearn_omega_grid": "0.5:2.5:4"})
        solve_and_residual(ksp, Am, np.ones(64))


def test_unknown_method_for_petsc_solve():
    Am = petsc_matrix(PETSc, poisson2d(6))
    with pytest.raises(ValueError, match="unknown method"):
        kpetsc.solve(Am, np.ones(36), method="qmr-magic")


# --------------------------------------------------------------------------- learned IC and DCDM

def _learned_models_shipped() -> bool:
    from krylearn.preconditioners import learned_ic

    return any(learned_ic.MODELS_DIR.glob("*.pt"))


needs_learned = pytest.mark.skipif(not _learned_models_shipped(), reason="no shipped learned-IC model")


@needs_learned
def test_learned_ic_from_options_converges():
    A = poisson2d(24)
    Am = petsc_matrix(PETSc, A)
    ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                "pc_python_type": "krylearn.petsc.LearnedIC"})
    _, rel, its, reason = solve_and_residual(ksp, Am, np.ones(A.shape[0]))
    assert reason > 0 and rel <= 1e-8 * 1.001
    from krylearn.preconditioners.learned_ic import LearnedIC
    from krylearn.solvers import run_cg

    native = run_cg(A, np.ones(A.shape[0]), M=LearnedIC.from_pretrained().setup(A), rtol=1e-8)
    assert abs(its - native.iterations) <= 1


@needs_learned
def test_learned_ic_rejects_nonsymmetric_and_unknown_model():
    A = sp.csr_array(poisson2d(8) + sp.diags_array(np.full(63, 0.5), offsets=1, shape=(64, 64)))
    Am = petsc_matrix(PETSc, A)
    with pytest.raises(PETSc.Error):
        ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                    "pc_python_type": "krylearn.petsc.LearnedIC"})
        solve_and_residual(ksp, Am, np.ones(64))
    Am = petsc_matrix(PETSc, poisson2d(8))
    with pytest.raises(PETSc.Error):
        ksp = ksp_from_options(Am, {**CG_TRUE_RESIDUAL, "pc_type": "python",
                                    "pc_python_type": "krylearn.petsc.LearnedIC", "krylearn_model": "no-such-model"})
        solve_and_residual(ksp, Am, np.ones(64))


def _dcdm_models_shipped() -> bool:
    from krylearn.solvers import dcdm

    try:
        dcdm.model_path("dcdm_2d")
    except (FileNotFoundError, ValueError):
        return False
    return True


@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_pc_under_flexible_cg_from_options():
    m = 32
    A = poisson2d(m)
    Am = petsc_matrix(PETSc, A)
    ksp = ksp_from_options(Am, {"ksp_type": "fcg", "ksp_rtol": "1e-8", "ksp_max_it": "2000",
                                "ksp_norm_type": "unpreconditioned", "pc_type": "python",
                                "pc_python_type": "krylearn.petsc.DCDM", "krylearn_grid": f"{m},{m}"})
    _, rel, its, reason = solve_and_residual(ksp, Am, np.random.default_rng(3).standard_normal(m * m))
    assert reason > 0 and rel <= 1e-8 * 1.001


@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_pc_on_an_obstacle_scene_from_a_mask_file(tmp_path):
    from krylearn.bench.obstacle_poisson import scene

    problem = scene("sphere-plume", (32, 32))  # solid cells are not unknowns: the grid needs the mask
    np.save(tmp_path / "mask0.npy", problem.mask)
    Am = petsc_matrix(PETSc, problem.A)
    flexible = {"ksp_type": "fcg", "ksp_rtol": "1e-8", "ksp_max_it": "1000", "ksp_norm_type": "unpreconditioned",
                "pc_type": "python", "pc_python_type": "krylearn.petsc.DCDM"}
    ksp = ksp_from_options(Am, {**flexible, "krylearn_mask": str(tmp_path / "mask{rank}.npy")})
    _, rel, its, reason = solve_and_residual(ksp, Am, problem.b)
    assert reason > 0 and rel <= 1e-8 * 1.001
    for bad in ({"krylearn_mask": str(tmp_path / "mask0.npy"), "krylearn_grid": "32,32"},  # both
                {"krylearn_grid": "32,32"},  # a full grid, but A has only the fluid cells
                {"krylearn_mask": str(tmp_path / "missing.npy")}):
        with pytest.raises(PETSc.Error):
            solve_and_residual(ksp_from_options(Am, {**flexible, **bad}), Am, problem.b)


@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_pc_scale_option_applies_the_coarse_network_and_composes(tmp_path):
    from krylearn.bench.obstacle_poisson import scene
    from krylearn.solvers.dcdm import NetworkPreconditioner, load_model

    problem = scene("sphere-plume", (48, 48))
    np.save(tmp_path / "mask.npy", problem.mask)
    Am = petsc_matrix(PETSc, problem.A)
    network = {"pc_python_type": "krylearn.petsc.DCDM", "krylearn_mask": str(tmp_path / "mask.npy")}
    pc = ksp_from_options(Am, {"ksp_type": "preonly", "pc_type": "python", **network, "krylearn_scale": "2"}).getPC()
    pc.setUp()
    r = np.random.default_rng(5).standard_normal(problem.n)
    rv, zv = Am.createVecLeft(), Am.createVecRight()
    rv.getArray()[:] = r
    pc.apply(rv, zv)
    direct = NetworkPreconditioner(load_model("dcdm_2d"), problem.mask, scale=2).setup(problem.A)
    np.testing.assert_allclose(zv.getArray(), direct(r), rtol=1e-12, atol=0.0)
    assert "scale=2" in pc.getPythonContext().describe()
    # the multiscale hybrid as PETSc's multiplicative composite: network at scales 1 and 2, then ICC
    two_scales = {"ksp_type": "fcg", "ksp_rtol": "1e-8", "ksp_max_it": "500", "ksp_norm_type": "unpreconditioned",
                  "pc_type": "composite", "pc_composite_type": "multiplicative", "pc_composite_pcs": "python,python,icc",
                  **{"sub_0_" + key: value for key, value in network.items()},
                  **{"sub_1_" + key: value for key, value in network.items()}, "sub_1_krylearn_scale": "2"}
    _, rel, _, reason = solve_and_residual(ksp_from_options(Am, two_scales), Am, problem.b)
    assert reason > 0 and rel <= 1e-8 * 1.001
    for bad in ("0", "-2", "two"):
        with pytest.raises(PETSc.Error):
            ksp_from_options(Am, {"ksp_type": "fcg", "pc_type": "python", **network, "krylearn_scale": bad}).setUp()


@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_hybrid_example_runs(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("petsc_dcdm_hybrid", ROOT / "examples" / "petsc_dcdm_hybrid.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--scenes", "sphere-plume", "--grids", "32"]) == 0
    counts = dict(part.split() for part in capsys.readouterr().out.split(": ")[1].split(", "))
    assert int(counts["hybrid"]) < int(counts["icc"]) < int(counts["network"])


def test_dcdm_mask_file_must_hold_a_boolean_array(tmp_path):
    np.save(tmp_path / "ints.npy", np.ones((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="save the fluid mask as bool"):
        kpetsc._load_mask(str(tmp_path / "ints.npy"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read a boolean .npy array"):
        kpetsc._load_mask(str(tmp_path / "objects.npy"))
    np.savez(tmp_path / "archive.npz", mask=np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="not a single .npy array"):
        kpetsc._load_mask(str(tmp_path / "archive.npz"))


@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_composes_with_icc_in_a_multiplicative_composite():
    """PETSc's multiplicative composite z = N(r) + ICC^{-1}(r - A N(r)) is the DCDM +
    IC(0) hybrid inside PETSc: it needs the network step at the scale of A^{-1} r."""
    m = 64
    Am = petsc_matrix(PETSc, poisson2d(m))
    flexible = {"ksp_type": "fcg", "ksp_rtol": "1e-8", "ksp_max_it": "1000", "ksp_norm_type": "unpreconditioned"}
    network = {"pc_type": "python", "pc_python_type": "krylearn.petsc.DCDM", "krylearn_grid": f"{m},{m}"}
    hybrid = {"pc_type": "composite", "pc_composite_type": "multiplicative", "pc_composite_pcs": "python,icc",
              "sub_0_pc_python_type": "krylearn.petsc.DCDM", "sub_0_krylearn_grid": f"{m},{m}"}
    b = np.random.default_rng(4).standard_normal(m * m)
    iterations = {}
    for name, options in (("network", network), ("hybrid", hybrid), ("icc", {"pc_type": "icc"})):
        _, rel, iterations[name], reason = solve_and_residual(ksp_from_options(Am, {**flexible, **options}), Am, b)
        assert reason > 0 and rel <= 1e-8 * 1.001, name
    assert iterations["hybrid"] < min(iterations["network"], iterations["icc"]) / 2


# --------------------------------------------------------------------------- MPI: 1 vs 2 ranks

def _mpiexec(nranks: int, *args: str) -> dict[str, float]:
    done, fields = run_example(nranks, list(args), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return {key: float(fields[key]) for key in ("reason", "iterations", "true_rel_residual", "xnorm")}


MPI_CONFIGURATIONS = {
    "tuned-sor": ["-pc_type", "python", "-pc_python_type", "krylearn.petsc.TunedSOR"],
    "bjacobi-tuned-sor": ["-pc_type", "bjacobi", "-sub_pc_type", "python",
                          "-sub_pc_python_type", "krylearn.petsc.TunedSOR"],
}
if _learned_models_shipped():
    MPI_CONFIGURATIONS["learned-ic"] = ["-options_file", str(ROOT / "examples" / "learned_ic.opts")]
    MPI_CONFIGURATIONS["bjacobi-learned-ic"] = ["-pc_type", "bjacobi", "-sub_pc_type", "python",
                                                "-sub_pc_python_type", "krylearn.petsc.LearnedIC"]


@pytest.mark.mpi
@pytest.mark.parametrize("name", sorted(MPI_CONFIGURATIONS))
def test_one_and_two_ranks_agree(name):
    args = ["-m", "48", "-ksp_norm_type", "unpreconditioned", *MPI_CONFIGURATIONS[name]]
    one, two = _mpiexec(1, *args), _mpiexec(2, *args)
    for run in (one, two):
        assert run["reason"] > 0 and run["true_rel_residual"] <= 1e-8 * 1.001
    # both solve A x = b to rtol 1e-8: the solutions agree to the conditioning times that
    assert abs(one["xnorm"] - two["xnorm"]) <= 1e-5 * one["xnorm"]


@pytest.mark.mpi
@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_pc_reads_each_ranks_mask_on_one_and_two_ranks(tmp_path):
    """-krylearn_mask with {rank}: every rank reads the mask of its own block (the
    example's 48 x 48 grid splits into two 24 x 48 row blocks)."""
    m, runs = 48, {}
    for ranks in (1, 2):
        for rank in range(ranks):
            np.save(tmp_path / f"mask_{ranks}_{rank}.npy", np.ones((m // ranks, m), dtype=bool))
        runs[ranks] = _mpiexec(ranks, "-m", str(m), "-ksp_type", "fcg", "-ksp_norm_type", "unpreconditioned",
                               "-pc_type", "python", "-pc_python_type", "krylearn.petsc.DCDM",
                               "-krylearn_mask", str(tmp_path / f"mask_{ranks}_{{rank}}.npy"))
    for run in runs.values():
        assert run["reason"] > 0 and run["true_rel_residual"] <= 1e-8 * 1.001
    assert abs(runs[1]["xnorm"] - runs[2]["xnorm"]) <= 1e-5 * runs[1]["xnorm"]


@pytest.mark.mpi
@pytest.mark.skipif(not _dcdm_models_shipped(), reason="no shipped DCDM model")
def test_dcdm_icc_hybrid_runs_distributed_with_block_jacobi(tmp_path):
    """The DCDM + IC(0) composite under MPI: PETSc's ICC is sequential, so the second
    sub-PC is block Jacobi with ICC per block. It converges on 1 and 2 ranks, the runs
    agree, and on 2 ranks it needs fewer iterations than block-Jacobi ICC alone."""
    m, runs = 48, {}
    flexible = ["-m", str(m), "-ksp_type", "fcg", "-ksp_norm_type", "unpreconditioned"]
    for ranks in (1, 2):
        for rank in range(ranks):
            np.save(tmp_path / f"mask_{ranks}_{rank}.npy", np.ones((m // ranks, m), dtype=bool))
        runs[ranks] = _mpiexec(ranks, *flexible, "-pc_type", "composite", "-pc_composite_type", "multiplicative",
                               "-pc_composite_pcs", "python,bjacobi", "-sub_0_pc_python_type", "krylearn.petsc.DCDM",
                               "-sub_0_krylearn_mask", str(tmp_path / f"mask_{ranks}_{{rank}}.npy"),
                               "-sub_1_sub_pc_type", "icc")
    block_icc = _mpiexec(2, *flexible, "-pc_type", "bjacobi", "-sub_pc_type", "icc")
    for run in (*runs.values(), block_icc):
        assert run["reason"] > 0 and run["true_rel_residual"] <= 1e-8 * 1.001
    assert abs(runs[1]["xnorm"] - runs[2]["xnorm"]) <= 1e-5 * runs[1]["xnorm"]
    assert runs[2]["iterations"] < block_icc["iterations"]


def test_complex_petsc_build_is_a_clear_error(monkeypatch):
    class ComplexBuild:
        ScalarType = np.complex128

    A = petsc_matrix(PETSc, poisson2d(4))
    monkeypatch.setattr(kpetsc, "PETSc", ComplexBuild)
    with pytest.raises(NotImplementedError, match="real PETSc build"):
        kpetsc.local_block_csr(A)  # what every krylearn PC's setUp calls first
    with pytest.raises(NotImplementedError, match="real PETSc build"):
        kpetsc.solve(A, np.ones(16))
