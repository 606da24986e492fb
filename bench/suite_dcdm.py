"""``krylearn bench --suite dcdm``: DCDM against CG, IC(0)-PCG, deflated PCG and
AMG-PCG on pressure-Poisson systems with obstacle scenes never seen in
training (spheres, blobs, a plume past a sphere; training used boxes only).

For every grid, scene and tolerance (rtol 1e-4, the paper's, and 1e-8) it
records iterations and wall time (setup + solve) per method, then the ratios
the issue sets as targets, all from the same run:
DCDM / IC(0)-PCG iterations, DCDM iteration growth from the smallest 2D grid
up, and DCDM / AMG-PCG wall time. ``dcdm`` is the paper's iteration
(``solve_dcdm(smoother=None, scales=(1,))``: one network call per iteration),
``dcdm+ic0,1-scale`` the hybrid with an IC(0) step per iteration on one
scale, ``dcdm+ic0,trained`` with the network also on the 2x, 4x, ...
coarsened grids down to its training size (``scales="trained"``),
``dcdm+ic0,all-scales`` down to about 8 cells per axis (``scales="all"``),
``dcdm+ic0`` the default: the same coarse scales, the fine grid left to the
IC(0) step (``scales="auto"``), all keeping the directions of k = 2
iterations (the default); ``dcdm+ic0,k=30`` is the default keeping 30.
Deflated PCG is IC(0)-PCG with subdomain deflation (one piecewise-constant
vector per 8^d block of cells), applied as the balancing preconditioner
M_BNN = (I - QA) M_IC^{-1} (I - AQ) + Q, Q = Z (Z^T A Z)^{-1} Z^T, which is
SPD and so valid in plain PCG.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import torch

from krylearn.bench import obstacle_poisson
from krylearn.bench.report import print_table, progress, results_dir, write_rows
from krylearn.preconditioners import AMG, IC0
from krylearn.solvers.dcdm import load_model, solve_dcdm
from krylearn.solvers.krylov import run_cg

DCDM_VARIANTS = {  # method -> (smoother, k: iterations whose directions are kept, network scales)
    "dcdm": (None, 2, (1,)), "dcdm+ic0,1-scale": ("ic0", 2, (1,)), "dcdm+ic0,trained": ("ic0", 2, "trained"),
    "dcdm+ic0,all-scales": ("ic0", 2, "all"), "dcdm+ic0": ("ic0", 2, "auto"), "dcdm+ic0,k=30": ("ic0", 30, "auto"),
}
METHODS = ("cg", "ic0-pcg", "deflated-pcg", "amg-pcg", *DCDM_VARIANTS)


class SubdomainDeflation:
    """M_BNN^{-1} r = (I - QA) M^{-1} (I - AQ) r + Q r with Q = Z E^{-1} Z^T,
    E = Z^T A Z, Z the indicator vectors of ``block``^d cell blocks of the grid."""

    name = "deflated-ic0"

    def __init__(self, A: sp.csr_array, mask: np.ndarray, block: int = 8) -> None:
        coords = np.argwhere(mask) // block
        _, aggregate = np.unique(coords, axis=0, return_inverse=True)
        self.Z = sp.csr_array((np.ones(A.shape[0]), (np.arange(A.shape[0]), aggregate.ravel())))
        self.A = A
        self.E = sla.cho_factor((self.Z.T @ (A @ self.Z)).toarray())
        self.M = IC0().setup(A)

    def _Q(self, v: np.ndarray) -> np.ndarray:
        return self.Z @ sla.cho_solve(self.E, self.Z.T @ v)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        Qr = self._Q(r)
        w = self.M(r - self.A @ Qr)
        return w - self._Q(self.A @ w) + Qr


def _problems(dim: int, size: int) -> list[tuple[str, object]]:
    """(label, problem) pairs: obstacle shapes the shipped networks never saw in training."""
    shape = (size,) * dim
    return [("sphere-plume", obstacle_poisson.scene("sphere-plume", shape)),
            ("spheres+blobs", obstacle_poisson.random_problem(shape, seed=1000 + size, count=5,
                                                              kinds=("sphere", "blob")))]


def _run_pcg(method: str, problem, rtol: float, maxiter: int) -> dict:
    A, b = problem.A, problem.b
    start = time.perf_counter()
    M = {"cg": lambda: None, "ic0-pcg": lambda: IC0().setup(A), "amg-pcg": lambda: AMG().setup(A),
         "deflated-pcg": lambda: SubdomainDeflation(A, problem.mask)}[method]()
    result = run_cg(A, b, rtol=rtol, atol=0.0, maxiter=maxiter, M=M)
    seconds = time.perf_counter() - start
    return {"iterations": result.iterations, "seconds": seconds, "converged": bool(result.converged),
            "rel_residual": float(np.linalg.norm(b - A @ result.x) / np.linalg.norm(b))}


def _run_dcdm(method: str, problem, rtols: list[float], model, maxiter: int) -> dict[float, dict]:
    """One DCDM solve to the smallest rtol; the rows of the larger rtols are read off
    the same trajectory (iteration count and wall clock at the first iterate that
    meets them), which is exactly what a run stopped there would do."""
    A, b = problem.A, problem.b
    bnorm = float(np.linalg.norm(b))
    stamps: list[tuple[float, float]] = []  # (solver seconds so far, true relative residual) per iterate
    overhead = [0.0]  # the callback's own time, excluded from the solver's

    def record(x: np.ndarray) -> None:
        entered = time.perf_counter()
        stamps.append((entered - start - overhead[0], float(np.linalg.norm(b - A @ x)) / bnorm))
        overhead[0] += time.perf_counter() - entered

    smoother, k, scales = DCDM_VARIANTS[method]
    start = time.perf_counter()
    result = solve_dcdm(A, b, grid=problem.mask, rtol=min(rtols), maxiter=maxiter, model=model,
                        smoother=smoother, k=k, scales=scales, callback=record)
    rows = {}
    for rtol in rtols:
        hit = next((i for i, (_, rel) in enumerate(stamps) if rel <= rtol), None)
        k = hit if hit is not None else len(stamps) - 1
        rows[rtol] = {"iterations": k + 1 if stamps else 0, "seconds": stamps[k][0] if stamps else result.seconds,
                      "converged": hit is not None, "rel_residual": stamps[k][1] if stamps else 0.0,
                      "fallback_steps": result.details["fallback_steps"], "scales": result.details["scales"]}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite dcdm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2D 32^2 and 64^2, 3D 16^3, rtol 1e-4 only (for tests)")
    parser.add_argument("--grids2d", type=int, nargs="*", default=[64, 128, 256, 512])
    parser.add_argument("--grids3d", type=int, nargs="*", default=[32, 64])
    parser.add_argument("--rtols", type=float, nargs="*", default=[1e-4, 1e-8])
    parser.add_argument("--model2d", default="dcdm_2d")
    parser.add_argument("--model3d", default="dcdm_3d")
    parser.add_argument("--maxiter", type=int, default=5000, help="iteration limit of the PCG baselines")
    parser.add_argument("--dcdm-maxiter", type=int, default=200,
                        help="iteration limit of DCDM (one network call per scale each)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for the network (default 1: on a loaded 2-core machine 2 threads are slower)")
    parser.add_argument("--output", default=None, help="results root (default $KRYLEARN_RESULTS or ./results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.grids2d, args.grids3d, args.rtols = [32, 64], [16], [1e-4]

    torch.set_num_threads(args.threads)
    cases = [(2, g) for g in args.grids2d] + [(3, g) for g in args.grids3d]
    models = {dim: load_model(args.model2d if dim == 2 else args.model3d) for dim in sorted({d for d, _ in cases})}
    warm_up = obstacle_poisson.scene("sphere-plume", (16, 16))  # first-call costs (PyAMG's imports) stay untimed
    for method in ("ic0-pcg", "amg-pcg", "deflated-pcg"):
        _run_pcg(method, warm_up, 1e-4, args.maxiter)
    rows = []
    for dim, size in progress(cases, "dcdm suite"):
        for scene, problem in _problems(dim, size):
            dcdm = {m: _run_dcdm(m, problem, args.rtols, models[dim], args.dcdm_maxiter) for m in DCDM_VARIANTS}
            for rtol in args.rtols:
                for method in METHODS:
                    row = {"dim": dim, "grid": size, "scene": scene, "n": problem.n, "rtol": rtol,
                           "method": method}
                    row.update(dcdm[method][rtol] if method in dcdm else _run_pcg(method, problem, rtol, args.maxiter))
                    rows.append(row)

    summary = _summary(rows, min(args.grids2d) if args.grids2d else None)
    out = results_dir("dcdm", args.output)
    print_table(rows, "DCDM vs PCG baselines (unseen obstacle scenes)",
                ["dim", "grid", "scene", "n", "rtol", "method", "iterations", "seconds", "converged", "rel_residual"])
    print_table(summary, "DCDM ratios (same run)")
    meta = {"models": {d: getattr(m, "metadata", {}) for d, m in models.items()}, "quick": args.quick,
            "torch_threads": args.threads, "dcdm_maxiter": args.dcdm_maxiter}
    write_rows(rows, out, "dcdm", meta)
    write_rows(summary, out, "dcdm_summary", meta)
    return 0 if all(r["converged"] for r in rows) else 1


def _summary(rows: list[dict], base_grid: int | None) -> list[dict]:
    """Per (dim, grid, scene, rtol, DCDM variant): iterations / IC(0)-PCG's, seconds /
    AMG-PCG's, and (2D) iteration growth of DCDM and CG from the smallest 2D grid."""
    index = {(r["dim"], r["grid"], r["scene"], r["rtol"], r["method"]): r for r in rows}
    out = []
    for (dim, grid, scene, rtol, method), r in index.items():
        if method not in DCDM_VARIANTS:
            continue
        ic0, amg, cg = (index[(dim, grid, scene, rtol, m)] for m in ("ic0-pcg", "amg-pcg", "cg"))
        row = {"dim": dim, "grid": grid, "scene": scene, "rtol": rtol, "method": method, "iterations": r["iterations"],
               "iters/ic0": r["iterations"] / max(ic0["iterations"], 1),
               "seconds/amg": r["seconds"] / amg["seconds"], "converged": r["converged"]}
        base = (dim, base_grid, scene, rtol)
        if dim == 2 and base + (method,) in index:
            row["growth"] = r["iterations"] / max(index[base + (method,)]["iterations"], 1)
            row["cg_growth"] = cg["iterations"] / max(index[base + ("cg",)]["iterations"], 1)
        out.append(row)
    return out
