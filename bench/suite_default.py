"""``krylearn bench`` (suite "default", what ``make run`` runs).

Model problems (2-D/3-D Poisson, anisotropic and high-contrast diffusion) and
the real SuiteSparse matrices, each solved by krylearn (``krylearn.solve``
auto; CG with IC(0)/SSOR/AMG on SPD problems, GMRES(30)/BiCGStab with ILU(0)
on the others) and by the baselines of :mod:`krylearn.bench.baselines`
(SciPy, PyAMG SA-AMG-CG, PETSc KSP, SuperLU direct), all with the same b
(= A x_true, x_true ~ N(0, I) seeded), x0 = 0, rtol (default 1e-8), atol = 0,
and judged by the same true relative residual. Writes ``results.csv/json``
(every run), ``summary.csv/json`` (per problem: best krylearn time / best
baseline time) and ``convergence.png`` under ``results/default/``.
"""
from __future__ import annotations

import argparse
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import problems as gen
from .baselines import (
    RESTART,
    Outcome,
    Runner,
    blas_threads,
    measure,
    petsc_or_reason,
    petsc_runners,
    pyamg_runners,
    scipy_runners,
)
from .report import print_table, progress, results_dir, write_rows

QUICK_REAL = ("1138_bus", "orsirr_1")


@dataclass
class Problem:
    name: str
    A: sp.csr_array
    spd: bool


def suite_problems(quick: bool = False, only: list[str] | None = None) -> list[Problem]:
    """The suite's problems; ``quick`` uses small grids and two small real matrices.
    ``only`` keeps problems whose name contains one of the given substrings."""
    m2, m3 = (24, 8) if quick else (256, 32)
    generated = [
        (f"poisson2d_{m2}^2", lambda: gen.poisson2d(m2)),
        (f"poisson3d_{m3}^3", lambda: gen.poisson3d(m3)),
        (f"anisotropic2d_{m2}^2_eps1e-2", lambda: gen.anisotropic2d(m2, 1e-2)),
        (f"high_contrast2d_{m2}^2_1e4", lambda: gen.high_contrast2d(m2, 1e4)),
    ]
    real = [(row["name"], row["kind"]) for row in gen.suitesparse_manifest()]
    if quick:
        real = [(name, kind) for name, kind in real if name in QUICK_REAL]
    keep = lambda name: not only or any(s in name for s in only)  # noqa: E731
    chosen = [Problem(name, make(), True) for name, make in generated if keep(name)]
    chosen += [Problem(name, gen.load_suitesparse(name), kind == "spd") for name, kind in real if keep(name)]
    return chosen


def right_hand_side(A: sp.csr_array, seed: int = 0) -> np.ndarray:
    """b = A x_true with x_true ~ N(0, I) from a fixed seed."""
    return A @ np.random.default_rng(seed).standard_normal(A.shape[1])


def _krylearn_runner(method: str, pc: str, spd_only: bool = False) -> Runner:
    """``method="auto"``: ``krylearn.solve(A, b, rtol=...)`` with its defaults (its
    preconditioner setup happens inside and is counted in solve_s). Otherwise the
    named preconditioner is built in setup and ``krylearn.solve`` runs exactly
    that method (no fallback chain, no direct fallback)."""
    import krylearn
    from krylearn.preconditioners import make_preconditioner

    def setup(A):
        return A, (None if method == "auto" else make_preconditioner(pc, A))

    def solve(state, b, rtol, maxiter, trace):
        A, M = state
        with warnings.catch_warnings():  # non-convergence is reported in the row
            warnings.simplefilter("ignore", RuntimeWarning)
            if method == "auto":
                result = krylearn.solve(A, b, rtol=rtol, atol=0.0)
                label = f"{result.method}+{result.preconditioner}"  # what the chain ended with
                note = "setup inside solve_s"
            else:
                options: dict[str, Any] = {"restart": RESTART} if method == "gmres" else {}
                result = krylearn.solve(A, b, method=method, M=M, rtol=rtol, atol=0.0, maxiter=maxiter,
                                        fallback=False, direct=False, **options)
                label = note = ""
        iterations = sum(int(a.get("iterations", 0)) for a in result.details.get("attempts", [])) or result.iterations
        history = np.asarray(result.residuals, dtype=float)
        history = history / history[0] if len(history) and history[0] > 0 else None  # (equilibrated) ||r_k|| / ||r_0||
        return Outcome(result.x, iterations, history, label=label, note=note)

    return Runner("krylearn", method, pc, setup, solve, spd_only)


def krylearn_runners(spd: bool) -> list[Runner]:
    """krylearn.solve(auto); CG + IC(0)/SSOR/AMG on SPD problems; GMRES(30)/BiCGStab + ILU(0) otherwise."""
    runners = [_krylearn_runner("auto", "auto")]
    if spd:
        runners += [_krylearn_runner("cg", pc, True) for pc in ("ic0", "ssor", "amg")]
    else:
        runners += [_krylearn_runner(method, "ilu0") for method in ("gmres", "bicgstab")]
    return runners


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per problem: fastest converged krylearn run and fastest converged baseline
    (total = setup + solve seconds) and their ratio (< 1: krylearn faster)."""
    summary = []
    for name in dict.fromkeys(row["problem"] for row in rows):
        mine = [r for r in rows if r["problem"] == name and r["converged"]]
        best = lambda rs: min(rs, key=lambda r: r["total_s"]) if rs else None  # noqa: E731
        k = best([r for r in mine if r["library"] == "krylearn"])
        auto = best([r for r in mine if r["library"] == "krylearn" and r["method"] == "auto"])
        base = best([r for r in mine if r["library"] != "krylearn"])
        label = lambda r: r["solver"] if r else "none converged"  # noqa: E731
        seconds = lambda r: r["total_s"] if r else math.nan  # noqa: E731
        summary.append({
            "problem": name,
            "n": next(r["n"] for r in rows if r["problem"] == name),
            "best krylearn": label(k),
            "krylearn_s": seconds(k),
            "auto_s": seconds(auto),
            "best baseline": label(base),
            "baseline_s": seconds(base),
            "ratio": seconds(k) / seconds(base) if k and base else math.nan,
            "auto_ratio": seconds(auto) / seconds(base) if auto and base else math.nan,
        })
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite default", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grids and two small real matrices (for tests)")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--maxiter", type=int, default=10000, help="iteration cap (inner iterations for GMRES)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="keep problems whose name contains NAME")
    parser.add_argument("--no-plot", action="store_true", help="skip the convergence PNG (and its untimed trace runs)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads for NumPy/SciPy/PyAMG during the runs (0: library default)")
    args = parser.parse_args(argv)
    with blas_threads(args.blas_threads or None):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    out = results_dir("default")
    petsc, petsc_reason = petsc_or_reason()
    if petsc is None:
        print(f"PETSc columns skipped: petsc4py unavailable ({petsc_reason})")
    problems = suite_problems(args.quick, args.only)
    work = []
    for problem in problems:
        runners = scipy_runners(problem.spd)  # SuperLU direct is last: it also gives the reference x
        work += [(problem, runner) for runner in [runners[-1]] + krylearn_runners(problem.spd) + runners[:-1]
                 + pyamg_runners(problem.spd) + petsc_runners(problem.spd)]

    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[str, np.ndarray]]] = {}
    reference: dict[str, np.ndarray | None] = {}
    started = time.perf_counter()
    for problem, runner in progress(work, "default suite"):
        b = right_hand_side(problem.A)
        result = measure(runner, problem.A, b, rtol=args.rtol, maxiter=args.maxiter,
                         x_reference=reference.get(problem.name), trace=not args.no_plot)
        if runner.method == "splu":
            reference[problem.name] = result.x
        row = {"problem": problem.name, "n": problem.A.shape[0], "nnz": problem.A.nnz, **result.row}
        rows.append(row)
        if result.history is not None:
            curves.setdefault(problem.name, []).append((row["solver"], result.history))
    elapsed = time.perf_counter() - started

    columns = ["solver", "iterations", "setup_s", "solve_s", "total_s", "relres", "converged", "error", "note"]
    for problem in problems:
        print_table([r for r in rows if r["problem"] == problem.name],
                    f"{problem.name} (n={problem.A.shape[0]}, nnz={problem.A.nnz}, {'SPD' if problem.spd else 'nonsymmetric'})",
                    columns)
    print(f"rtol={args.rtol:g}, x0=0; relres = true ||b - A x|| / ||b||; converged = relres <= rtol; "
          "error = ||x - x_splu|| / ||x_splu||")
    summary = summarize(rows)
    print_table(summary, "krylearn vs best baseline (total = setup + solve seconds; ratio < 1: krylearn faster)")
    meta = {"rtol": args.rtol, "maxiter": args.maxiter, "restart": RESTART, "quick": args.quick,
            "blas_threads": args.blas_threads or "default",
            "petsc": "" if petsc else f"skipped: {petsc_reason}", "elapsed_s": elapsed,
            "rhs": "b = A x_true, x_true ~ N(0, I), seed 0", "x0": "zeros"}
    write_rows(rows, out, "results", meta)
    write_rows(summary, out, "summary", meta)
    if not args.no_plot and curves:
        from .plots import convergence_plot

        png = convergence_plot(curves, out / "convergence.png", rtol=args.rtol, title=f"default suite, rtol={args.rtol:g}")
        print(f"convergence curves: {png}")
    failed = [r for r in rows if r["library"] == "krylearn" and not r["converged"]]
    for r in failed:
        print(f"WARNING krylearn {r['method']}+{r['preconditioner']} did not reach rtol on {r['problem']}: "
              f"relres={r['relres']:.3e} {r['note']}")
    print(f"results in {out} ({elapsed:.1f} s)")
    return 0
