"""``krylearn bench --suite core``: one application of each core kernel, native vs PETSc.

Per application, best over interleaved rounds (so a burst of load from other
processes hits every library alike), on the same matrix and vector:

- SpMV: ``CsrMatrix.matvec`` vs SciPy ``A @ x`` vs PETSc ``MatMult``;
- preconditioner applies z = M^{-1} r: Jacobi, SSOR (omega = 1, one symmetric
  sweep from zero), IC(0), ILU(0) vs PETSc ``PCApply`` with jacobi, sor, icc,
  ilu (level 0); the outputs are compared (``max_rel_diff``) to show both
  compute the same z;
- one SSOR relaxation sweep from a nonzero x (``relax``) vs PETSc ``MatSOR``;
- IC(0)/ILU(0) setup (factorization) vs PETSc ``PCSetUp``.

The native apply goes through the Python binding (argument checks and one
finiteness pass over z included). Targets: native / PETSc <= 1 for the SSOR
and IC(0) applies.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import problems as gen
from .baselines import petsc_matrix, petsc_or_reason
from .report import print_table, progress, results_dir, write_rows
from .suite_kernels import interleaved_best

TARGETS = {"ssor apply": 1.0, "ic0 apply": 1.0}


def suite_problems(quick: bool) -> list[tuple[str, Callable[[], sp.csr_array]]]:
    if quick:
        return [("poisson2d_64^2", lambda: gen.poisson2d(64)), ("poisson3d_16^3", lambda: gen.poisson3d(16))]
    return [("poisson2d_512^2", lambda: gen.poisson2d(512)), ("poisson3d_64^3", lambda: gen.poisson3d(64))]


def timed(fn: Callable[[], Any], count: int) -> Callable[[], tuple[float, int]]:
    """A run for interleaved_best: `count` calls of fn, timed together."""

    def run():
        t0 = time.perf_counter()
        for _ in range(count):
            fn()
        return time.perf_counter() - t0, count

    return run


def petsc_pc(PETSc, mat, kind: str):
    pc = PETSc.PC().create(comm=PETSc.COMM_SELF)
    pc.setOperators(mat)
    pc.setType(kind)
    if kind in ("icc", "ilu"):
        pc.setFactorLevels(0)
    pc.setUp()
    return pc


def measure_problem(name: str, A: sp.csr_array, PETSc, repeats: int, count: int) -> list[dict[str, Any]]:
    from krylearn import _kernels
    from krylearn._validation import as_kernel_matrix

    n = A.shape[0]
    rng = np.random.default_rng(0)
    r, x0 = rng.standard_normal(n), rng.standard_normal(n)
    z, x = np.empty(n), np.empty(n)
    A_k = as_kernel_matrix(A)
    native = {
        "jacobi": _kernels.jacobi_preconditioner(A_k),
        "ssor": _kernels.ssor_preconditioner(A_k, 1.0),
        "ic0": _kernels.ic_preconditioner(_kernels.ic0(A_k)[0]),
        "ilu0": _kernels.ilu_preconditioner(_kernels.ilu0(A_k)[0]),
    }

    def relax_once():
        x[:] = x0
        _kernels.relax(A_k, x, r, "ssor", 1.0, 1)

    # (kernel, library, timed run, output read after a run)
    runs: list[tuple[str, str, Callable, Callable]] = [
        ("spmv", "krylearn", timed(lambda: A_k.matvec(r, out=z), count), lambda: z.copy()),
        ("spmv", "scipy", timed(lambda: A @ r, count), lambda: A @ r),
        ("ssor sweep", "krylearn", timed(relax_once, count), lambda: x.copy()),
    ]
    runs += [(f"{kind} apply", "krylearn", timed(lambda M=M: M.apply(r, z), count), lambda: z.copy())
             for kind, M in native.items()]
    factor_runs = [("ic0 setup", "krylearn", timed(lambda: _kernels.ic0(A_k), 1), None),
                   ("ilu0 setup", "krylearn", timed(lambda: _kernels.ilu0(A_k), 1), None)]  # outputs not compared
    if PETSc is not None:
        mat = petsc_matrix(PETSc, A)
        rv, zv = mat.createVecs()
        rv.setArray(r)
        xv = zv.duplicate()
        out = lambda vec: (lambda: vec.getArray().copy())  # noqa: E731
        pcs = {kind: petsc_pc(PETSc, mat, pk) for kind, pk in
               (("jacobi", "jacobi"), ("ssor", "sor"), ("ic0", "icc"), ("ilu0", "ilu"))}

        def sor_once():
            xv.setArray(x0)
            mat.SOR(rv, xv, 1.0, PETSc.Mat.SORType.SYMMETRIC_SWEEP)

        runs += [("spmv", "petsc", timed(lambda: mat.mult(rv, zv), count), out(zv)),
                 ("ssor sweep", "petsc", timed(sor_once, count), out(xv))]
        runs += [(f"{kind} apply", "petsc", timed(lambda pc=pc: pc.apply(rv, zv), count), out(zv))
                 for kind, pc in pcs.items()]
        factor_runs += [("ic0 setup", "petsc", timed(lambda: petsc_pc(PETSc, mat, "icc"), 1), None),
                        ("ilu0 setup", "petsc", timed(lambda: petsc_pc(PETSc, mat, "ilu"), 1), None)]
    # Same answer from every library: each output is read right after one more call of its own run.
    differences: dict[int, float] = {}
    references: dict[str, np.ndarray] = {}
    for index, (kernel, _, run, output) in enumerate(runs):
        run()
        value = output()
        reference = references.setdefault(kernel, value)
        differences[index] = float(np.abs(value - reference).max() / np.abs(reference).max())
    rows = []
    for group, rounds, offset in ((runs, repeats, 0), (factor_runs, max(2, repeats // 3), len(runs))):
        best = interleaved_best([run for _, _, run, _ in group], rounds)
        for index, ((kernel, library, _, _), (seconds, _)) in enumerate(zip(group, best), start=offset):
            row = {"problem": name, "n": n, "nnz": A.nnz, "kernel": kernel, "library": library, "ms": 1e3 * seconds}
            if index in differences:
                row["max_rel_diff"] = differences[index]
            rows.append(row)
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["library"] != "krylearn":
            continue
        for other in rows:
            if (other["problem"], other["kernel"]) == (row["problem"], row["kernel"]) and other["library"] != "krylearn":
                entry = {"problem": row["problem"], "kernel": row["kernel"], "vs": other["library"],
                         "ratio": row["ms"] / other["ms"]}
                if other["library"] == "petsc" and row["kernel"] in TARGETS:
                    entry["target"] = f"<= {TARGETS[row['kernel']]:g}"
                    entry["met"] = "yes" if entry["ratio"] <= TARGETS[row["kernel"]] else "no"
                out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite core", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (tests)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 15, quick 3)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    repeats = args.repeats or (3 if args.quick else 15)
    PETSc, reason = petsc_or_reason()
    if PETSc is None:
        print(f"PETSc columns skipped: petsc4py unavailable ({reason})")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name, make in progress(suite_problems(args.quick), "core kernels suite"):
        A = sp.csr_array(make())
        rows += measure_problem(name, A, PETSc, repeats, count=20 if args.quick else 5)
    table = ratios(rows)
    print_table(rows, "ms per application (best of interleaved rounds)",
                ["problem", "n", "kernel", "library", "ms", "max_rel_diff"])
    print_table(table, "native / other (ms ratio)", ["problem", "kernel", "vs", "ratio", "target", "met"])
    out = results_dir("core")
    meta = {"repeats": repeats, "quick": args.quick, "elapsed_s": time.perf_counter() - started,
            "petsc": "" if PETSc else f"skipped: {reason}"}
    write_rows(rows, out, "per_application", meta)
    write_rows(table, out, "ratios", meta)
    print(f"results in {out} ({meta['elapsed_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
