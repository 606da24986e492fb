"""DCDM inside PETSc (one process): FCG to rtol 1e-8 on krylearn's pressure-Poisson
scenes, with the DCDM network alone, ICC alone, the DCDM + ICC hybrid as
PETSc's multiplicative composite (z = N(r) + ICC^{-1}(r - A N(r))), and the
multiscale hybrid: the network at the coarsening factors krylearn's
``scales="auto"`` picks (``-sub_<i>_krylearn_scale``: 2, 4, ... down to about
8 cells per axis), then ICC, all in one multiplicative composite:

    python examples/petsc_dcdm_hybrid.py [--scenes empty sphere-plume] [--grids 64 128]

The fluid mask of each scene is written to a temporary .npy file and handed to
the PC with -krylearn_mask. Prints the iteration count of every configuration."""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import petsc4py

petsc4py.init([])
from petsc4py import PETSc  # noqa: E402

from krylearn.bench.baselines import petsc_matrix  # noqa: E402
from krylearn.bench.obstacle_poisson import scene  # noqa: E402
from krylearn.solvers.dcdm import load_model, resolve_scales  # noqa: E402


def configurations(mask_file: str, scales: tuple[int, ...]) -> dict[str, dict[str, str]]:
    network = {"pc_python_type": "krylearn.petsc.DCDM", "krylearn_mask": mask_file}

    def composite(factors: tuple[int, ...]) -> dict[str, str]:
        options = {"pc_type": "composite", "pc_composite_type": "multiplicative",
                   "pc_composite_pcs": ",".join(["python"] * len(factors) + ["icc"])}
        for i, factor in enumerate(factors):
            options.update({f"sub_{i}_{key}": value for key, value in network.items()})
            options[f"sub_{i}_krylearn_scale"] = str(factor)
        return options

    configs = {"hybrid": composite((1,))}
    if scales != (1,):
        configs["multiscale-hybrid"] = composite(scales)
    return {**configs, "icc": {"pc_type": "icc"}, "network": {"pc_type": "python", **network}}


def fcg_iterations(A: "PETSc.Mat", b: np.ndarray, options: dict[str, str], prefix: str) -> tuple[int, int]:
    """(iterations, converged reason) of FCG to rtol 1e-8 with ``options`` under ``prefix``."""
    database = PETSc.Options()
    settings = {"ksp_type": "fcg", "ksp_rtol": "1e-8", "ksp_max_it": "3000", "ksp_norm_type": "unpreconditioned"}
    for key, value in {**settings, **options}.items():
        database.setValue(prefix + key, value)
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setFromOptions()
    rhs, x = A.createVecLeft(), A.createVecRight()
    rhs.getArray()[:] = b
    ksp.solve(rhs, x)
    return ksp.getIterationNumber(), int(ksp.getConvergedReason())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", nargs="*", default=["empty", "sphere-plume"])
    parser.add_argument("--grids", type=int, nargs="*", default=[64, 128])
    args = parser.parse_args(argv)
    failed = False
    model = load_model("dcdm_2d")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            for m in args.grids:
                problem = scene(name, (m, m))
                mask_file = str(Path(tmp) / f"{name}_{m}.npy")
                np.save(mask_file, problem.mask)
                A = petsc_matrix(PETSc, problem.A)
                cells = []
                for label, options in configurations(mask_file, resolve_scales("auto", model, problem.mask.shape)).items():
                    iterations, reason = fcg_iterations(A, problem.b, options, f"{label}_{name}_{m}_")
                    failed |= reason <= 0
                    cells.append(f"{label} {iterations}" + ("" if reason > 0 else f" (not converged: {reason})"))
                print(f"{name} {m}x{m}: " + ", ".join(cells), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
