"""``krylearn bench --suite learned``: the learned IC preconditioner against the
classical ones and AMG, all measured in the same run.

For every training family (``bench.spd_families``) and its shipped model, on
unseen test matrices (seeds >= 10**9) at the training size and at 4x and 16x
the unknowns, then on the family's hold-out variant, then on the real SPD
matrices (default model ``general``, no retraining): PCG to rtol 1e-8 with
none, Jacobi, SSOR(1), IC(0), PyAMG smoothed aggregation (one V-cycle) and the
learned factor. Seconds are setup (factorisation, network inference, AMG
hierarchy) plus iterations, the fastest of ``--timings`` runs made in
interleaved rounds over the preconditioners (solves under a second; longer
ones are timed once). The summary reports learned/IC(0) ratios of
iterations and of total seconds against the targets of issue #5.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from krylearn.bench.report import print_table, progress, results_dir, write_rows

RTOL = 1e-8
BASELINES = ("none", "jacobi", "ssor", "ic0", "amg")
BEST_OF_LIMIT_S = 1.0  # solves at least this long are timed once
TEST_SEED = 10**9


def _baseline(name: str):
    from krylearn.preconditioners import AMG, IC0, SSOR, Jacobi

    return {"none": lambda: None, "jacobi": Jacobi, "ssor": lambda: SSOR(1.0), "ic0": IC0, "amg": AMG}[name]()


def measure(A, b, name: str, pc) -> dict:
    """One PCG solve: setup seconds (pc.setup), solve seconds, iterations, true relative residual."""
    from krylearn.solvers.krylov import run_cg

    start = time.perf_counter()
    try:
        if pc is not None:
            pc.setup(A)
    except ValueError as exc:  # a baseline that cannot be built for this matrix: reported, not fatal
        return {"pc": name, "iterations": -1, "converged": False, "setup_s": float("nan"), "total_s": float("nan"),
                "true_relres": float("nan"), "error": str(exc)}
    setup = time.perf_counter() - start
    result = run_cg(A, b, rtol=RTOL, maxiter=20 * A.shape[0], M=pc)
    total = time.perf_counter() - start
    true_rel = float(np.linalg.norm(b - A @ result.x) / np.linalg.norm(b))
    row = {"pc": name, "iterations": result.iterations, "converged": result.converged, "setup_s": setup,
           "total_s": total, "true_relres": true_rel}
    if getattr(pc, "fallback", None):
        row["fallback"] = pc.fallback
    return row


def best_of(A, b, pcs: dict, rounds: int) -> dict[str, dict]:
    """{name: measure(...)} for every preconditioner in ``pcs``, timed in ``rounds`` interleaved rounds
    (round r sets up and solves with each in turn, so a slow spell of the machine hits all of them),
    keeping each one's fastest run; a solve that took BEST_OF_LIMIT_S or more is not repeated."""
    best: dict[str, dict] = {}
    for _ in range(max(1, rounds)):
        for name, pc in pcs.items():
            if name in best and not best[name]["total_s"] < BEST_OF_LIMIT_S:
                continue
            row = measure(A, b, name, pc)
            if name not in best or row["total_s"] < best[name]["total_s"]:
                best[name] = row
    return best


def right_hand_side(seed: int, n: int) -> np.ndarray:
    """b ~ N(0, I) of a case, from its matrix seed and n alone: a run of some families reproduces
    the full suite's rows for them."""
    return np.random.default_rng([seed, n]).standard_normal(n)


def _cases(args):
    """(model, problem, scope, make, seed) for every benchmark case, in a fixed order; ``seed`` is the
    matrix's (the real matrices: TEST_SEED) and, with n, seeds the case's right-hand side."""
    from krylearn.bench.spd_families import FAMILIES, make_matrix

    scales = (1,) if args.quick else (1, 4, 16)
    repeats = 1 if args.quick else args.repeats
    for family in args.families:
        spec = FAMILIES[family]
        for scale in scales:
            for r in range(repeats):
                yield family, family, "train size" if scale == 1 else f"{scale}x n", \
                    lambda f=family, n=spec.train_n * scale, r=r: make_matrix(f, n, TEST_SEED + r), TEST_SEED + r
        for holdout in spec.holdouts:
            for scale in (1,) if args.quick else (1, 4):
                yield family, holdout, "hold-out" if scale == 1 else f"hold-out {scale}x n", \
                    lambda f=holdout, n=FAMILIES[holdout].train_n * scale: make_matrix(f, n, TEST_SEED), TEST_SEED
    if args.real:
        from krylearn.bench.problems import load_suitesparse, suitesparse_manifest

        for row in suitesparse_manifest():
            if row["kind"] == "spd" and (not args.quick or int(row["n"]) <= 5000):
                yield "general", row["name"], "real", lambda name=row["name"]: load_suitesparse(name), TEST_SEED


def main(argv: list[str] | None = None) -> int:
    from krylearn.bench.spd_families import TRAINING_FAMILIES
    from krylearn.preconditioners.learned_ic import LearnedIC

    parser = argparse.ArgumentParser(prog="krylearn bench --suite learned", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="training size only, one matrix, small real matrices")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the network (default 1)")
    parser.add_argument("--families", nargs="+", default=list(TRAINING_FAMILIES), choices=TRAINING_FAMILIES)
    parser.add_argument("--repeats", type=int, default=2, help="test matrices per family and size")
    parser.add_argument("--timings", type=int, default=5,
                        help=f"rounds per matrix: each solve under {BEST_OF_LIMIT_S:g} s is timed this many times, in "
                             "interleaved rounds over the preconditioners, and its fastest run kept (default 5)")
    parser.add_argument("--no-real", dest="real", action="store_false", help="skip the SuiteSparse matrices")
    parser.add_argument("--results", default=None, help="results root (default $KRYLEARN_RESULTS or ./results)")
    args = parser.parse_args(argv)

    models: dict[str, LearnedIC] = {}
    rows = []
    for model, problem, scope, make, seed in progress(list(_cases(args)), "learned IC benchmark"):
        if model not in models:
            models[model] = LearnedIC.from_pretrained(model)
            models[model].threads = args.threads
        A = make()
        b = right_hand_side(seed, A.shape[0])
        base = {"model": model, "problem": problem, "scope": scope, "n": A.shape[0], "nnz": A.nnz}
        pcs = {name: _baseline(name) for name in BASELINES}
        pcs["learned"] = models[model]
        timed = best_of(A, b, pcs, args.timings)
        case = [dict(base, **timed[name]) for name in pcs]
        ic0 = next(r for r in case if r["pc"] == "ic0")
        for r in case:
            r["iters_vs_ic0"] = r["iterations"] / max(ic0["iterations"], 1)
            r["time_vs_ic0"] = r["total_s"] / ic0["total_s"]
        rows += case
    out = results_dir("learned", args.results)
    columns = ["model", "problem", "scope", "n", "pc", "iterations", "total_s", "setup_s", "iters_vs_ic0",
               "time_vs_ic0", "true_relres"]
    print_table(rows, f"PCG to rtol {RTOL:g}: learned IC vs baselines", columns)
    summary = summarise(rows)
    print_table(summary, "learned / IC(0) (targets: iterations <= 0.7 at the training size, <= 1.1 at larger n "
                "and on hold-outs; time <= 1 for the training families at n >= 16k)")
    write_rows(rows, out, "learned_ic", meta={"rtol": RTOL, "quick": args.quick})
    write_rows(summary, out, "learned_ic_summary", meta={"rtol": RTOL, "quick": args.quick})
    return 0 if all(r["converged"] for r in rows if r["pc"] == "learned") else 1


def summarise(rows: list[dict]) -> list[dict]:
    """Per (model, problem, scope, n): mean learned/IC(0) ratios and the issue's targets:
    iterations <= 0.7 at the training size, <= 1.1 at larger n and on hold-outs; total
    time <= 1 on the training families at n >= 16k. Real matrices: no target."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["pc"] == "learned":
            groups.setdefault((r["model"], r["problem"], r["scope"], r["n"]), []).append(r)
    summary = []
    for (model, problem, scope, n), rs in groups.items():
        iters = float(np.mean([r["iters_vs_ic0"] for r in rs]))
        times = float(np.mean([r["time_vs_ic0"] for r in rs]))
        target = {"train size": 0.7, "real": None}.get(scope, 1.1)
        row = {"model": model, "problem": problem, "scope": scope, "n": n, "iters_vs_ic0": iters,
               "time_vs_ic0": times, "iters_target": "-" if target is None else target,
               "iters_ok": "-" if target is None else ("yes" if iters <= target else "NO"), "time_ok": "-"}
        if problem == model and n >= 16_000:
            row["time_ok"] = "yes" if times <= 1.0 else "NO"
        summary.append(row)
    return summary
