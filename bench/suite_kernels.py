"""``krylearn bench --suite kernels``: time per CG / GMRES iteration, native vs SciPy vs PETSc.

Same matrix, same b (seeded N(0, I)), x0 = 0 and a fixed iteration count K
(rtol = atol = 0; PETSc with KSP_NORM_NONE, i.e. no convergence test) in one
run, best of a few repetitions:

- CG: krylearn's native loop ``_kernels.cg`` vs ``scipy.sparse.linalg.cg``
  (best of 1 and the default number of OpenBLAS threads) vs PETSc KSPCG;
- SSOR-PCG (omega = 1) vs PETSc PCSOR (symmetric sweep), IC(0)-PCG vs
  PETSc PCICC (level 0);
- GMRES(30) without a preconditioner: ``_kernels.gmres`` (CGS2) vs
  ``scipy.sparse.linalg.gmres`` vs PETSc KSPGMRES (one CGS sweep, its
  default), the same K iterations rounded up to whole restart cycles
  (reported, no target).

Plain CG also gets achieved GB/s under the byte model "matrix once
(values + column indices + row pointers) + 7 vectors of n doubles per
iteration", next to the copy bandwidth of a large ``np.copyto`` measured in
the same run (read + write bytes / time), and a per-iteration breakdown of
the native kernels (SpMV, dot, axpy, preconditioner apply) against SciPy's
SpMV and PETSc's MatMult. Targets are reported as ratios.

NumPy is slowed on some processors by OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE;
to be fair to SciPy a full run re-executes itself once without both
(``--keep-blas-env`` or ``--quick`` keep the environment as it is).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import problems as gen
from .baselines import RESTART, blas_threads, petsc_ksp, petsc_matrix, petsc_or_reason
from .report import print_table, progress, results_dir, write_rows

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "KRYLEARN_KERNELS_REMOVED_ENV"
VECTORS_PER_ITERATION = 7


def suite_problems(quick: bool, only: list[str] | None = None) -> list[tuple[str, Callable[[], sp.csr_array]]]:
    """(name, generator) pairs; ``only`` keeps names containing one of its substrings."""
    if quick:
        chosen = [("poisson2d_64^2", lambda: gen.poisson2d(64)), ("poisson3d_16^3", lambda: gen.poisson3d(16))]
    else:
        chosen = [(f"poisson2d_{m}^2", lambda m=m: gen.poisson2d(m)) for m in (256, 512, 1024)] + [
            ("poisson3d_64^3", lambda: gen.poisson3d(64))]
    return [(name, make) for name, make in chosen if not only or any(s in name for s in only)]


def iteration_counts(nnz: int, quick: bool) -> tuple[int, int]:
    """(K for CG, K for PCG): about 0.1-0.2 s of work per run, and few enough PCG
    iterations that the residual stays far above round-off (no breakdown)."""
    if quick:
        return 60, 30
    return int(np.clip(1e8 / nnz, 30, 200)), int(np.clip(5e7 / nnz, 15, 60))


def cg_bytes(A: sp.csr_array) -> int:
    """Byte model of one CG iteration: the matrix once plus 7 vectors of n doubles."""
    return A.data.nbytes + A.indices.nbytes + A.indptr.nbytes + VECTORS_PER_ITERATION * 8 * A.shape[0]


def copy_run(n_doubles: int) -> tuple[Callable[[], tuple[float, int]], int]:
    """A timed ``np.copyto`` of ``n_doubles`` (as a ``run() -> (seconds, 1)``) and the bytes it moves (read + write)."""
    src, dst = np.ones(n_doubles), np.zeros(n_doubles)

    def run():
        t0 = time.perf_counter()
        np.copyto(dst, src)
        return time.perf_counter() - t0, 1

    return run, 2 * src.nbytes


def interleaved_best(runs: list[Callable[[], tuple[float, int]]], repeats: int) -> list[tuple[float, int]]:
    """Best (seconds per iteration, iterations) of each ``run() -> (seconds, iterations)``
    over ``repeats`` rounds, the runs interleaved within a round so that a burst of
    load from other processes hits every library alike."""
    best = [(math.inf, 0)] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            seconds, iterations = run()
            if iterations > 0 and seconds / iterations < best[i][0]:
                best[i] = (seconds / iterations, iterations)
    return best


def _native_cg(A_kernel, b: np.ndarray, M, K: int) -> Callable[[], tuple[float, int]]:
    from krylearn import _kernels

    def run():
        x = np.zeros_like(b)
        t0 = time.perf_counter()
        iterations, _, _ = _kernels.cg(A_kernel, b, x, M, 0.0, 0.0, K, None)
        return time.perf_counter() - t0, int(iterations)

    return run


def _scipy_run(solver: Callable, A: sp.csr_array, b: np.ndarray, **options) -> Callable[[], tuple[float, int]]:
    """``solver`` (``scipy.sparse.linalg.cg`` / ``gmres``) with rtol = atol = 0, counting iterations by callback."""
    def run():
        count = [0]

        def tick(_):
            count[0] += 1

        t0 = time.perf_counter()
        solver(A, b, rtol=0.0, atol=0.0, callback=tick, **options)
        return time.perf_counter() - t0, count[0]

    return run


def _native_gmres(A_kernel, b: np.ndarray, K: int) -> Callable[[], tuple[float, int]]:
    from krylearn import _kernels

    def run():
        x = np.zeros_like(b)
        t0 = time.perf_counter()
        iterations, _, _ = _kernels.gmres(A_kernel, b, x, None, RESTART, 0.0, 0.0, K, None, "pr_norm", False)
        return time.perf_counter() - t0, int(iterations)

    return run


def _petsc_run(PETSc, mat, b: np.ndarray, method: str, pc: str, K: int):
    """KSP ``method`` ("cg": no norm, no convergence test; "gmres": rtol 0, which GMRES needs a norm for)."""
    ksp = petsc_ksp(PETSc, mat, method, pc, rtol=0.0, maxiter=K, norm="none" if method == "cg" else "unpreconditioned")
    ksp.setUp()
    bv, xv = mat.createVecs()
    bv.setArray(b)

    def run():
        t0 = time.perf_counter()
        ksp.solve(bv, xv)
        return time.perf_counter() - t0, int(ksp.getIterationNumber())

    return run


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def breakdown(name: str, A: sp.csr_array, A_kernel, preconditioners: dict[str, Any], PETSc, mat,
              native_cg_ms: float, repeats: int = 20) -> dict[str, Any]:
    """Milliseconds of the pieces of one CG iteration (native SpMV, dot, axpy and
    preconditioner applies; SciPy SpMV; PETSc MatMult) and the unfused sum
    SpMV + 2 dot + 3 axpy next to the measured native CG iteration."""
    from krylearn import _kernels

    n = A.shape[0]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(n), np.zeros(n)
    ms = lambda fn: 1e3 * _best_time(fn, repeats)  # noqa: E731
    row: dict[str, Any] = {"problem": name, "n": n}
    row["spmv_ms"] = ms(lambda: _kernels.spmv(A_kernel, x, y))
    row["dot_ms"] = ms(lambda: _kernels.dot(x, y))
    row["axpy_ms"] = ms(lambda: _kernels.axpy(1e-3, x, y))
    row["sum_ms"] = row["spmv_ms"] + 2 * row["dot_ms"] + 3 * row["axpy_ms"]
    row["native_cg_ms"] = native_cg_ms
    row["scipy_spmv_ms"] = ms(lambda: A @ x)
    if PETSc is not None:
        xv, yv = mat.createVecs()
        xv.setArray(x)
        row["petsc_matmult_ms"] = ms(lambda: mat.mult(xv, yv))
    for label, pc in preconditioners.items():
        row[f"{label}_apply_ms"] = ms(lambda pc=pc: pc.apply(x, y))
    return row


def _ratio(a: float, b: float) -> float:
    return a / b if a and b and math.isfinite(a) and math.isfinite(b) else math.nan


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets (CG and PCG) as ratios of ms/iteration (< limit: met)."""
    def ms(problem, library, pc):
        found = [r["ms_per_iter"] for r in rows
                 if (r["problem"], r["method"], r["library"], r["pc"]) == (problem, "cg", library, pc)]
        return found[0] if found else math.nan

    out = []
    for problem, n in dict.fromkeys((r["problem"], r["n"]) for r in rows):
        checks = []
        if n >= 262_144:
            checks.append(("native CG / PETSc CG", ("krylearn", "none"), ("petsc", "none"), 0.8))
        if n <= 70_000:
            checks.append(("native CG / SciPy CG", ("krylearn", "none"), ("scipy", "none"), 0.5))
        checks += [("native SSOR-PCG / PETSc sor", ("krylearn", "ssor"), ("petsc", "sor"), 1.0),
                   ("native IC(0)-PCG / PETSc icc", ("krylearn", "ic0"), ("petsc", "icc"), 1.0)]
        for label, mine, theirs, limit in checks:
            ratio = _ratio(ms(problem, *mine), ms(problem, *theirs))
            out.append({"problem": problem, "n": n, "target": f"{label} <= {limit:g}", "ratio": ratio,
                        "met": "n/a" if math.isnan(ratio) else ("yes" if ratio <= limit else "no")})
    return out


def _maybe_reexec(argv: list[str], keep: bool) -> None:
    present = [k for k in BLAS_ENV if k in os.environ]
    if keep or not present:
        return
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    env[REEXEC_MARK] = " ".join(f"{k}={os.environ[k]}" for k in present)
    print(f"kernels suite: re-running without {', '.join(present)} (they slow NumPy; --keep-blas-env to keep)",
          flush=True)
    os.execve(sys.executable, [sys.executable, "-m", "krylearn.bench.suite_kernels", *argv], env)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="krylearn bench --suite kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (tests)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per measurement (default 5, quick 2)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="keep problems whose name contains NAME")
    parser.add_argument("--keep-blas-env", action="store_true",
                        help=f"do not re-run without {' / '.join(BLAS_ENV)}")
    args = parser.parse_args(argv)
    _maybe_reexec(argv, args.keep_blas_env or args.quick)

    from krylearn import _kernels
    from krylearn._validation import as_kernel_matrix

    repeats = args.repeats or (2 if args.quick else 5)
    out = results_dir("kernels")
    PETSc, petsc_reason = petsc_or_reason()
    if PETSc is None:
        print(f"PETSc columns skipped: petsc4py unavailable ({petsc_reason})")
    copy, copy_bytes = copy_run(1 << (20 if args.quick else 24))
    bandwidth = copy_bytes / interleaved_best([copy], 5)[0][0] / 1e9
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    if load > (os.cpu_count() or 1):
        print(f"WARNING: load average {load:.1f} on {os.cpu_count()} cores: other processes compete; "
              "multi-threaded kernels suffer most (OpenMP threads wait for descheduled peers)")
    rows: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name, make in progress(suite_problems(args.quick, args.only), "kernels suite"):
        A = make()
        n = A.shape[0]
        b = np.random.default_rng(0).standard_normal(n)
        K_cg, K_pcg = iteration_counts(A.nnz, args.quick)
        A_kernel = as_kernel_matrix(A)
        L, _ = _kernels.ic0(A_kernel)
        native_pcs = {"ssor": _kernels.ssor_preconditioner(A_kernel, 1.0), "ic0": _kernels.ic_preconditioner(L)}
        mat = petsc_matrix(PETSc, A) if PETSc is not None else None
        gmres, K_gmres = f"gmres({RESTART})", RESTART * math.ceil(K_cg / RESTART)  # whole cycles: SciPy counts cycles
        runs: list[tuple[str, str, str, str, int, Callable]] = [
            ("cg", "krylearn", "none", "", K_cg, _native_cg(A_kernel, b, None, K_cg))]
        runs += [("cg", "krylearn", pc, "", K_pcg, _native_cg(A_kernel, b, M, K_pcg)) for pc, M in native_pcs.items()]
        runs.append((gmres, "krylearn", "none", "", K_gmres, _native_gmres(A_kernel, b, K_gmres)))
        for threads in (1, None):
            label = f"OpenBLAS threads: {threads or 'default'}"
            scipy_cg = _scipy_run(spla.cg, A, b, maxiter=K_cg)
            scipy_gmres = _scipy_run(spla.gmres, A, b, restart=RESTART, maxiter=K_gmres // RESTART,  # maxiter: cycles
                                     callback_type="pr_norm")
            runs.append(("cg", "scipy", "none", label, K_cg, lambda t=threads, f=scipy_cg: _blas_limited(t, f)))
            runs.append((gmres, "scipy", "none", label, K_gmres, lambda t=threads, f=scipy_gmres: _blas_limited(t, f)))
        if PETSc is not None:
            runs.append(("cg", "petsc", "none", "1 MPI rank", K_cg, _petsc_run(PETSc, mat, b, "cg", "none", K_cg)))
            runs += [("cg", "petsc", pc, "1 MPI rank", K_pcg, _petsc_run(PETSc, mat, b, "cg", pc, K_pcg))
                     for pc in ("sor", "icc")]
            runs.append((gmres, "petsc", "none", "1 MPI rank", K_gmres,
                         _petsc_run(PETSc, mat, b, "gmres", "none", K_gmres)))
        measured = []
        *timings, (copy_seconds, _) = interleaved_best([run for *_, run in runs] + [copy], repeats)
        bandwidth = max(bandwidth, copy_bytes / copy_seconds / 1e9)  # best copy seen in the run
        for (method, library, pc, note, K, _), (seconds, iterations) in zip(runs, timings):
            if iterations != K:
                note = f"{note}; stopped after {iterations} of {K}".lstrip("; ")
            measured.append({"problem": name, "n": n, "nnz": A.nnz, "method": method, "library": library, "pc": pc,
                             "iterations": iterations, "ms_per_iter": 1e3 * seconds, "note": note})
        for method in ("cg", gmres):  # SciPy: keep the faster OpenBLAS thread setting
            scipy_rows = [r for r in measured if (r["library"], r["method"]) == ("scipy", method)]
            measured.remove(max(scipy_rows, key=lambda r: r["ms_per_iter"]))
        for r in measured:
            if (r["method"], r["pc"]) == ("cg", "none"):
                r["GB/s"] = cg_bytes(A) / (r["ms_per_iter"] * 1e-3) / 1e9
        rows += measured
        native_ms = next(r["ms_per_iter"] for r in measured
                         if (r["method"], r["library"], r["pc"]) == ("cg", "krylearn", "none"))
        parts.append(breakdown(name, A, A_kernel, native_pcs, PETSc, mat, native_ms))
        if mat is not None:
            mat.destroy()
    elapsed = time.perf_counter() - started
    for r in rows:
        if "GB/s" in r:
            r["% of copy BW"] = 100 * r["GB/s"] / bandwidth
            r["bound_ms"] = r["ms_per_iter"] * r["GB/s"] / bandwidth  # the model's bytes at copy bandwidth

    print_table(rows, f"ms per iteration (fixed iteration count, x0 = 0); copy bandwidth {bandwidth:.1f} GB/s (best seen); "
                f"CG bytes/iter = matrix + {VECTORS_PER_ITERATION} vectors",
                ["problem", "n", "method", "library", "pc", "iterations", "ms_per_iter", "GB/s", "% of copy BW",
                 "bound_ms", "note"])
    goal = targets(rows)
    print_table(goal, "targets (ratio of ms/iteration)")
    print_table(parts, "native per-iteration breakdown (ms; sum = SpMV + 2 dot + 3 axpy, unfused)")
    meta = {"copy_bandwidth_GBps": bandwidth, "vectors_per_iteration": VECTORS_PER_ITERATION,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", f"unset ({os.cpu_count()} cores)"),
            "removed_env": os.environ.get(REEXEC_MARK, ""), "petsc": "" if PETSc else f"skipped: {petsc_reason}",
            "quick": args.quick, "repeats": repeats, "elapsed_s": elapsed, "load_average_at_start": load}
    write_rows(rows, out, "per_iteration", meta)
    write_rows(goal, out, "targets", meta)
    write_rows(parts, out, "breakdown", meta)
    print(f"results in {out} ({elapsed:.1f} s)")
    return 0


def _blas_limited(threads: int | None, run: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    with blas_threads(threads):
        return run()


if __name__ == "__main__":
    sys.exit(main())
