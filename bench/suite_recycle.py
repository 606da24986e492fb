"""``krylearn bench --suite recycle``: Krylov recycling with system sorting (SKR's Table 1 shape).

For each family (Darcy exp(GRF), Helmholtz with a GRF wavenumber, thermal on
an irregular domain) and each preconditioner (none, Jacobi, SOR = symmetric
Gauss-Seidel SSOR(1), ILU(0)), over ``--count`` seeded systems:

- ``skr``: sorted sequence, GCRO-DR(k, m) carrying its recycle space
  (``krylearn.solvers.sorting.solve_many``);
- ``skr-unsorted``: the same solver in the generated order (sorting ablation);
- ``gmres-py``: GMRES(m) per system in the same driver (``RecyclingSolver(k=0)``:
  the same native Arnoldi cycle without a recycle space, identical iteration
  counts to plain GMRES);
- ``gmres-native``: the native C++ GMRES(m) (``krylearn.solvers.krylov.run_gmres``);
- ``gcrotmk``: SciPy's ``gcrotmk(m=m-k, k=k)`` reusing its ``CU`` across the
  sorted sequence (``discard_C=True``: C is rebuilt from U for each matrix).

The per-system baselines are run on the first ``--baseline-count`` systems
(generated order: independent draws, so an unbiased sample); gcrotmk on the
first ``--baseline-count`` systems of the sorted chain, compared with SKR on
those same systems. Every time includes building the preconditioner. Speedups
are ratios of mean per-system time / iterations measured in this run. Every
solution is checked by its true relative residual. Outputs
``results/recycle/{table,systems}.{csv,json}``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from krylearn.bench.baselines import blas_threads
from krylearn.bench.report import print_table, progress, results_dir, write_rows
from krylearn.bench.sequences import darcy_sequence, helmholtz_sequence, thermal_sequence
from krylearn.preconditioners import make_preconditioner
from krylearn.solvers.krylov import run_gmres
from krylearn.solvers.recycling import UPDATE_EVERY, RecyclingSolver
from krylearn.solvers.sorting import solve_many, sort_systems

PRECONDITIONERS = {"none": None, "jacobi": "jacobi", "sor": "ssor", "ilu": "ilu0"}


@dataclass
class Family:
    name: str
    make: object  # count -> list[LinearSystem]
    rtol: float


def families(quick: bool, seed: int) -> dict[str, Family]:
    if quick:
        return {
            "darcy": Family("darcy", lambda c: darcy_sequence(c, n=900, seed=seed), 1e-8),
            "helmholtz": Family("helmholtz", lambda c: helmholtz_sequence(c, n=900, k0=5.0, seed=seed), 1e-7),
            "thermal": Family("thermal", lambda c: thermal_sequence(c, m=30, seed=seed), 1e-8),
        }
    return {
        "darcy": Family("darcy", lambda c: darcy_sequence(c, n=6400, seed=seed), 1e-8),
        "helmholtz": Family("helmholtz", lambda c: helmholtz_sequence(c, n=2500, seed=seed), 1e-7),
        "thermal": Family("thermal", lambda c: thermal_sequence(c, m=100, seed=seed), 1e-8),
    }


def _true_rel(system, x) -> float:
    return float(np.linalg.norm(system.b - system.A @ x) / np.linalg.norm(system.b))


def _record(rows, family, pc, method, index, system, x, iterations, seconds, converged):
    rows.append({
        "family": family, "pc": pc, "method": method, "system": int(index),
        "iterations": int(iterations), "seconds": float(seconds), "converged": bool(converged),
        "true_rel_residual": _true_rel(system, x),
    })


def _run_gcrotmk(systems, order, spec, rtol, m, k, maxiter, rows, family, pc):
    CU: list = []
    for idx in order:
        s = systems[idx]
        count = [0]

        def matvec(v, A=s.A, count=count):
            count[0] += 1
            return A @ v

        start = time.perf_counter()
        pcobj = make_preconditioner(spec, s.A)
        M = None if pcobj is None else pcobj.as_linear_operator()
        op = spla.LinearOperator(s.A.shape, matvec=matvec, dtype=np.float64)
        x, info = spla.gcrotmk(op, s.b, rtol=rtol, atol=0.0, m=m - k, k=k, M=M, CU=CU, discard_C=True,
                               maxiter=max(1, maxiter // max(1, m - k)))
        _record(rows, family, pc, "gcrotmk", idx, s, x, count[0], time.perf_counter() - start, info == 0)


def run_family(fam: Family, count: int, baseline_count: int, pcs: list[str], k: int, m: int, features: str,
               rows: list, update_every: int) -> None:
    systems = fam.make(count)
    n = systems[0].A.shape[0]
    maxiter = 20 * n
    order = sort_systems([s.params for s in systems], features=features)
    base = list(range(min(baseline_count, count)))
    for pc in pcs:
        spec = PRECONDITIONERS[pc]
        label = f"{fam.name}/{pc}"
        for idx in progress(base, f"{label} gmres native+py"):
            s = systems[idx]
            start = time.perf_counter()
            res = run_gmres(s.A, s.b, restart=m, rtol=fam.rtol, atol=0.0, maxiter=maxiter,
                            M=make_preconditioner(spec, s.A))
            _record(rows, fam.name, pc, "gmres-native", idx, s, res.x, res.iterations,
                    time.perf_counter() - start, res.converged)
            res = RecyclingSolver(k=0, m=m, M=spec, rtol=fam.rtol, maxiter=maxiter).solve(s.A, s.b)
            _record(rows, fam.name, pc, "gmres-py", idx, s, res.x, res.iterations, res.seconds, res.converged)
        for method, sort in (("skr", True), ("skr-unsorted", False)):
            solver = RecyclingSolver(k=k, m=m, M=spec, rtol=fam.rtol, maxiter=maxiter, update_every=update_every)
            results = solve_many(systems, sort=sort, solver=solver,
                                 features=features)
            for idx, (s, res) in enumerate(zip(systems, results)):
                _record(rows, fam.name, pc, method, idx, s, res.x, res.iterations, res.seconds, res.converged)
        _run_gcrotmk(systems, order[: len(base)], spec, fam.rtol, m, k, maxiter, rows, fam.name, pc)
        for row in rows:
            if row["family"] == fam.name and row["pc"] == pc:
                row["n"] = n
                row["sorted_position"] = int(np.flatnonzero(order == row["system"])[0])


def summarise(rows: list, k: int, m: int, baseline_count: int) -> list[dict]:
    table = []
    keys = sorted({(r["family"], r["pc"]) for r in rows}, key=lambda t: (t[0], list(PRECONDITIONERS).index(t[1])))
    for family, pc in keys:
        sel = [r for r in rows if r["family"] == family and r["pc"] == pc]

        def mean(method, field, positions=None):
            vals = [r[field] for r in sel if r["method"] == method
                    and (positions is None or r["sorted_position"] in positions)]
            return float(np.mean(vals)) if vals else float("nan")

        chunk = set(range(baseline_count))
        skr_t, skr_it = mean("skr", "seconds"), mean("skr", "iterations")
        table.append({
            "family": family, "pc": pc, "n": sel[0]["n"], "systems": sum(r["method"] == "skr" for r in sel),
            "gmres_its": mean("gmres-py", "iterations"), "native_its": mean("gmres-native", "iterations"),
            "skr_its": skr_it, "unsorted_its": mean("skr-unsorted", "iterations"),
            "gcrotmk_its": mean("gcrotmk", "iterations"),
            "speedup_its": mean("gmres-py", "iterations") / skr_it,
            "speedup_time_py": mean("gmres-py", "seconds") / skr_t,
            "speedup_time_native": mean("gmres-native", "seconds") / skr_t,
            "gcrotmk_time_ratio": mean("gcrotmk", "seconds") / mean("skr", "seconds", chunk),
            "sort_gain_its": mean("skr-unsorted", "iterations") / skr_it,
            "sort_gain_time": mean("skr-unsorted", "seconds") / skr_t,
            "skr_s_per_system": skr_t, "gmres_py_s": mean("gmres-py", "seconds"),
            "native_s": mean("gmres-native", "seconds"), "gcrotmk_s": mean("gcrotmk", "seconds"),
            "all_converged": all(r["converged"] for r in sel),
            "max_true_rel": max(r["true_rel_residual"] for r in sel),
            "k": k, "m": m,
        })
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite recycle", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few systems (for tests)")
    parser.add_argument("--families", default="darcy,helmholtz,thermal")
    parser.add_argument("--preconditioners", default=",".join(PRECONDITIONERS))
    parser.add_argument("--count", type=int, default=None, help="systems per family (default 100; quick 6)")
    parser.add_argument("--baseline-count", type=int, default=None,
                        help="systems per family for the per-system baselines (default 20; quick 3)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--m", type=int, default=40)
    parser.add_argument("--update-every", type=int, default=UPDATE_EVERY,
                        help="GCRO-DR: update the recycle space on every n-th cycle (RecyclingSolver(update_every=))")
    parser.add_argument("--features", default="frobenius", choices=("frobenius", "fft"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    args = parser.parse_args(argv)
    count = args.count or (6 if args.quick else 100)
    baseline_count = min(count, args.baseline_count or (3 if args.quick else 20))
    fams = families(args.quick, args.seed)
    names = [f.strip() for f in args.families.split(",") if f.strip()]
    pcs = [p.strip() for p in args.preconditioners.split(",") if p.strip()]
    unknown = [f for f in names if f not in fams] + [p for p in pcs if p not in PRECONDITIONERS]
    if unknown:
        parser.error(f"unknown family/preconditioner: {', '.join(unknown)}")
    rows: list[dict] = []
    with blas_threads(args.blas_threads):
        for name in names:
            run_family(fams[name], count, baseline_count, pcs, args.k, args.m, args.features, rows, args.update_every)
    table = summarise(rows, args.k, args.m, baseline_count)
    out = results_dir("recycle")
    meta = {"count": count, "baseline_count": baseline_count, "k": args.k, "m": args.m,
            "update_every": args.update_every, "quick": args.quick,
            "features": args.features, "seed": args.seed, "blas_threads": args.blas_threads}
    write_rows(rows, out, "systems", meta)
    write_rows(table, out, "table", meta)
    print_table(table, "SKR (sorted GCRO-DR) vs GMRES per system and SciPy gcrotmk with CU reuse", columns=[
        "family", "pc", "n", "systems", "gmres_its", "skr_its", "speedup_its", "speedup_time_py",
        "speedup_time_native", "gcrotmk_time_ratio", "sort_gain_its", "sort_gain_time", "all_converged",
        "max_true_rel"])
    return 0 if all(row["all_converged"] for row in table) else 1
