"""``krylearn bench --suite petsc``: krylearn inside PETSc.

Part 1 (one process): PETSc KSPCG with krylearn's learned IC as a Python PC
(``-pc_type python -pc_python_type krylearn.petsc.LearnedIC``) against
PETSc's own ``icc``, ``sor`` and ``gamg`` on the same matrix, b, x0 = 0 and
rtol (unpreconditioned residual norm), plus the iteration count of the native
krylearn path with the same learned factor (they must agree within 1).

Part 2 (MPI): ``examples/petsc_poisson.py`` on a 2D Poisson problem
(default 1024^2, n = 1M) with 1 and 2 ranks for gamg, block-Jacobi IC(0) and
the learned IC (each rank factors its local diagonal block): iterations,
seconds, true residual. Writes ``results/petsc/{single,mpi}.csv/json``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import problems as gen
from .baselines import petsc_ksp, petsc_matrix, petsc_or_reason, true_relative_residual
from .report import print_table, progress, results_dir, write_rows
from .spd_families import make_matrix

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "petsc_poisson.py"
PETSC_PCS = ("icc", "sor", "gamg", "learned")


def _single_process_rows(PETSc, quick: bool, rtol: float) -> list[dict]:
    from krylearn.preconditioners.learned_ic import LearnedIC
    from krylearn.solvers import run_cg

    m = 32 if quick else 128
    cases = [
        (f"poisson2d_{m}^2", gen.poisson2d(m)),
        (f"lognormal_diffusion2d_n{m * m}", make_matrix("diffusion2d", n=m * m, seed=101)),
        (f"heat_fem_n{m * m}", make_matrix("heat_fem", n=m * m, seed=101)),
    ]
    rows = []
    for name, A in progress(cases, "petsc: single process"):
        b = A @ np.random.default_rng(0).standard_normal(A.shape[0])
        # the native krylearn path: the same learned factor in the native PCG loop
        native = run_cg(A, b, M=LearnedIC.from_pretrained().setup(A), rtol=rtol)
        mat = petsc_matrix(PETSc, A)
        for pc in PETSC_PCS:
            maxiter = 20 * A.shape[0]
            t0 = time.perf_counter()
            ksp = petsc_ksp(PETSc, mat, "cg", "python" if pc == "learned" else pc, rtol=rtol, maxiter=maxiter)
            if pc == "learned":
                ksp.getPC().setPythonContext(_learned_context())
            ksp.setUp()
            setup = time.perf_counter() - t0
            bv, xv = mat.createVecs()
            bv.getArray()[:] = b
            t0 = time.perf_counter()
            ksp.solve(bv, xv)
            solve = time.perf_counter() - t0
            x = xv.getArray(readonly=True).copy()
            its = ksp.getIterationNumber()
            rows.append({
                "problem": name, "n": A.shape[0], "petsc_pc": pc, "iterations": its,
                "setup_s": setup, "solve_s": solve, "total_s": setup + solve,
                "true_rel_residual": true_relative_residual(A, b, x),
                "converged": ksp.getConvergedReason() > 0,
                "native_learned_iterations": native.iterations if pc == "learned" else "",
                "iteration_diff_vs_native": abs(its - native.iterations) if pc == "learned" else "",
            })
            ksp.destroy()
    return rows


def _learned_context():
    from krylearn.petsc import LearnedIC

    return LearnedIC()


MPI_CONFIGURATIONS = {
    "gamg": ["-pc_type", "gamg"],
    "bjacobi+icc": ["-pc_type", "bjacobi", "-sub_pc_type", "icc"],
    "learned-ic": ["-pc_type", "python", "-pc_python_type", "krylearn.petsc.LearnedIC"],
}


def run_example(ranks: int, args: list[str], *, threads: int | None = None,
                timeout: float = 1800) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run ``examples/petsc_poisson.py`` under ``mpiexec -n ranks`` and parse its
    ``key=value`` summary line. The caller's MPI singleton variables (set when
    petsc4py initialised MPI in this process) are kept out of mpiexec's
    environment; ``threads`` sets OMP_NUM_THREADS per rank."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PRTE_", "OPAL_"))}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = ["mpiexec", "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), sys.executable, str(EXAMPLE),
               *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=EXAMPLE.parents[1])
    return done, dict(re.findall(r"(\w+)=([-+\w.]+)", done.stdout))


def _mpi_rows(grid: int, rtol: float) -> list[dict]:
    rows = []
    jobs = [(name, ranks) for name in MPI_CONFIGURATIONS for ranks in (1, 2)]
    for name, ranks in progress(jobs, f"petsc: MPI {grid}^2"):
        # one thread per rank: the ranks are the parallelism being measured
        done, fields = run_example(ranks, ["-m", str(grid), "-ksp_rtol", str(rtol), "-ksp_norm_type",
                                           "unpreconditioned", *MPI_CONFIGURATIONS[name]], threads=1)
        if done.returncode != 0 or "iterations" not in fields:
            rows.append({"config": name, "ranks": ranks, "n": grid * grid, "error": (done.stderr or done.stdout)[-300:]})
            continue
        rows.append({
            "config": name, "ranks": ranks, "n": grid * grid, "iterations": int(fields["iterations"]),
            "solve_s": float(fields["seconds"]), "true_rel_residual": float(fields["true_rel_residual"]),
            "converged": int(fields["reason"]) > 0,
        })
    by_config = {(r["config"], r["ranks"]): r for r in rows if "solve_s" in r}
    for row in rows:
        one = by_config.get((row["config"], 1))
        if one and "solve_s" in row:
            row["speedup_vs_1_rank"] = one["solve_s"] / row["solve_s"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite petsc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (tests)")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--mpi-grid", type=int, default=None, help="grid side of the MPI problem (default 1024, quick 48)")
    parser.add_argument("--skip-mpi", action="store_true")
    args = parser.parse_args(argv)

    PETSc, reason = petsc_or_reason()
    if PETSc is None:
        print(f"petsc suite skipped: {reason}")
        return 1
    out = results_dir("petsc")
    single = _single_process_rows(PETSc, args.quick, args.rtol)
    print_table(single, f"PETSc KSPCG: learned IC (Python PC) vs icc / sor / gamg, rtol {args.rtol:g}")
    write_rows(single, out, "single", meta={"rtol": args.rtol, "quick": args.quick})
    if not args.skip_mpi:
        grid = args.mpi_grid or (48 if args.quick else 1024)
        mpi = _mpi_rows(grid, args.rtol)
        print_table(mpi, f"MPI: 2D Poisson {grid}^2 (n = {grid * grid}), 1 vs 2 ranks")
        write_rows(mpi, out, "mpi", meta={"rtol": args.rtol, "grid": grid})
    return 0
