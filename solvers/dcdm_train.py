"""``krylearn train dcdm``: train the DCDM direction network.

Training systems: the pressure matrices of a few grids with random box
obstacles (``krylearn.bench.obstacle_poisson``; half with every side open,
half a closed box with an open top), ``--domains`` of them per grid size;
``--grid 64 128`` trains one network on a mix of sizes (each step draws one
system, larger grids get proportionally fewer right-hand sides per step so a
step costs about the same everywhere). Spheres, blobs and the fixed scenes
are left out, so benchmarks on them measure generalisation to unseen obstacles.
Right-hand sides: Ritz-vector combinations weighted toward the low spectrum
(:mod:`krylearn.solvers.ritz`). Two scale-invariant, unsupervised losses of
the direction q = f(b) and the exact line search x~ = (q.b)/(q.A q) q:

    residual (the paper's):  mean ||b - A x~||^2                       (||b|| = 1)
    energy   (default):      mean ||x - x~||_A^2 / ||x||_A^2 = 1 - (q.b)^2 / (q.A q  b.A^{-1} b)

The energy loss is the relative A-norm error left after one DCDM step, the
quantity the iteration actually reduces; it weights the smooth error modes
the way CG needs (the residual norm weights the rough ones). On our problems
it trains far better in a CPU budget (the JSON record and the README give
the comparison); b.A^{-1}b comes from IC(0)-PCG solves to 1e-10 at setup.

Writes the weights (``--output``, a header-checked state_dict) and a JSON
training record next to them (same stem).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from krylearn.bench import obstacle_poisson
from krylearn.bench.report import progress
from krylearn.preconditioners import IC0

from .dcdm import flexible_cg, NetworkPreconditioner, save_model
from .dcdm_unet import ResidualUNet
from .krylov import run_cg
from .ritz import ritz_pairs, training_rhs


def _line_search(q: torch.Tensor, b: torch.Tensor, A: torch.Tensor):
    Aq = (A @ q.T).T
    qAq = (q * Aq).sum(dim=1)
    positive = qAq > 0
    return Aq, (q * b).sum(dim=1), torch.where(positive, qAq, torch.ones_like(qAq)), positive


def scale_invariant_loss(q: torch.Tensor, b: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """The paper's loss: mean_i ||b_i - A x~_i||^2 with x~_i = (q_i.b_i)/(q_i.A q_i) q_i.

    q, b: (batch, n) unknown vectors; A: (n, n) torch (sparse) matrix. Invariant
    under q -> c q for any c != 0. A direction with q.A q = 0 counts as x~ = 0."""
    Aq, qb, qAq, positive = _line_search(q, b, A)
    alpha = torch.where(positive, qb / qAq, torch.zeros_like(qAq))
    return ((b - alpha[:, None] * Aq) ** 2).sum(dim=1).mean()


def energy_loss(q: torch.Tensor, b: torch.Tensor, A: torch.Tensor, bAinvb: torch.Tensor) -> torch.Tensor:
    """mean_i 1 - (q_i.b_i)^2 / (q_i.A q_i  b_i.A^{-1} b_i): the relative A-norm error of
    the exact line search along q_i, in [0, 1], zero iff q_i is parallel to A^{-1} b_i.
    Invariant under q -> c q for any c != 0; q.A q = 0 counts as no progress (1)."""
    _, qb, qAq, positive = _line_search(q, b, A)
    return torch.where(positive, 1.0 - qb**2 / (qAq * bAinvb), torch.ones_like(qAq)).mean()


LOSSES = ("energy", "residual")


def torch_matrix(csr, device="cpu") -> torch.Tensor:
    """A SciPy CSR matrix as a float32 torch sparse COO tensor (autograd-friendly matmul)."""
    coo = csr.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, coo.shape, device=device, check_invariants=False).coalesce()


class TrainingDomain:
    """One training system: matrix, fluid mask, its training right-hand sides
    (unit 2-norm) and their energies b.A^{-1}b."""

    def __init__(self, problem, ritz_steps: int, rhs_count: int, seed: int, device) -> None:
        self.problem = problem
        m = min(ritz_steps, problem.n - 1)
        _, Y = ritz_pairs(problem.A, m, method="lanczos", seed=seed)
        B = training_rhs(Y, rhs_count, seed=seed + 1)
        ic0 = IC0().setup(problem.A)
        X = np.stack([run_cg(problem.A, bi, rtol=1e-10, atol=0.0, M=ic0).x for bi in B])
        self.A = torch_matrix(problem.A, device)
        self.mask = torch.from_numpy(problem.mask).to(device)
        self.mask_in = self.mask.to(torch.float32)[None, None]
        self.b = torch.from_numpy(B.astype(np.float32)).to(device)  # (count, n)
        self.bAinvb = torch.from_numpy(np.einsum("ij,ij->i", B, X).astype(np.float32)).to(device)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grid tensors (batch, 1, *grid) of the right-hand sides ``index`` (unit-RMS scaled) and the vectors."""
        b = self.b[index]
        grid = torch.zeros((len(index),) + tuple(self.mask.shape), device=b.device)
        grid[:, self.mask] = b * float(np.sqrt(b.shape[1]))  # unit RMS, as NetworkPreconditioner feeds it
        return grid[:, None], b

    def losses(self, model: ResidualUNet, index: torch.Tensor, kinds=LOSSES) -> dict[str, torch.Tensor]:
        """The losses ``kinds`` of the right-hand sides ``index`` from one network evaluation."""
        grid, b = self.batch(index)
        q = model(grid, self.mask_in.expand(len(index), *self.mask_in.shape[1:]))[:, 0][:, self.mask]
        return {kind: energy_loss(q, b, self.A, self.bAinvb[index]) if kind == "energy"
                else scale_invariant_loss(q, b, self.A) for kind in kinds}

    def loss(self, model: ResidualUNet, index: torch.Tensor, kind: str = "energy") -> torch.Tensor:
        return self.losses(model, index, (kind,))[kind]


def training_problems(dim: int, size: int, count: int, seed: int) -> list:
    """``count`` box-obstacle systems; even ones open on every side, odd ones a closed box with an open top."""
    shape = (size,) * dim
    top = ("y+",) if dim == 2 else ("z+",)
    return [obstacle_poisson.random_problem(shape, seed + 17 * i, count=3 + i % 3, kinds=("box",),
                                            open_sides="all" if i % 2 == 0 else top)
            for i in range(count)]


def grid_batches(sizes: list[int], batch: int, dim: int) -> list[int]:
    """Right-hand sides per step for each training grid size: ``batch`` on the
    smallest, scaled by the cell ratio (at least 1) on larger ones."""
    return [max(1, round(batch * (min(sizes) / size) ** dim)) for size in sizes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="krylearn train dcdm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, choices=(2, 3), default=2)
    parser.add_argument("--grid", type=int, nargs="+", default=[64],
                        help="cells per axis of the training grids; several sizes train on a mix of them")
    parser.add_argument("--domains", type=int, default=4, help="training systems per grid size")
    parser.add_argument("--ritz", type=int, default=300, help="Lanczos steps (Ritz vectors) per system")
    parser.add_argument("--rhs", type=int, default=512, help="training right-hand sides per system")
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps (upper bound)")
    parser.add_argument("--minutes", type=float, default=None, help="stop training after this wall time")
    parser.add_argument("--batch", type=int, default=16,
                        help="right-hand sides per step on the smallest grid (fewer on larger grids, same cells)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--levels", type=int, default=4, help="pooling levels of the U-Net (the paper: 1)")
    parser.add_argument("--blocks", type=int, nargs=3, default=[2, 3, 2], metavar=("DOWN", "COARSE", "UP"),
                        help="residual blocks per level on the way down, at the coarsest level, on the way up")
    parser.add_argument("--loss", choices=LOSSES, default="energy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", default=None, help="weights file (default: dcdm_<dim>d.pt); the JSON record gets the same stem")
    args = parser.parse_args(argv)
    for name in ("grid", "domains", "ritz", "rhs", "steps", "batch", "channels", "levels"):
        value = min(args.grid) if name == "grid" else getattr(args, name)
        if value < (4 if name == "grid" else 1):
            parser.error(f"--{name} is too small: {value}")
    if len(set(args.grid)) != len(args.grid):
        parser.error(f"--grid sizes must be distinct, got {args.grid}")
    if args.batch > args.rhs:
        parser.error("--batch cannot exceed --rhs")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    output = Path(args.output or f"dcdm_{args.dim}d.pt")
    device = torch.device(args.device)

    # grid sizes after the first get their own obstacle seeds (seed + 1000 per size), not rescaled copies
    problems = [p for g, size in enumerate(args.grid)
                for p in training_problems(args.dim, size, args.domains, args.seed + 1000 * g)]
    batches = [b for b in grid_batches(args.grid, args.batch, args.dim) for _ in range(args.domains)]
    domains = [TrainingDomain(p, args.ritz, args.rhs, args.seed + i, device)
               for i, p in enumerate(progress(problems, "Ritz vectors"))]
    data_seconds = time.perf_counter() - started
    holdout = max(1, args.rhs // 8)  # the last right-hand sides of every system are for validation only

    model = ResidualUNet(dim=args.dim, channels=args.channels, blocks=tuple(args.blocks), levels=args.levels).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)

    def cosine_lr(fraction: float) -> float:
        """Cosine decay to lr/20 over the run; the fraction done counts steps or wall time, whichever is ahead."""
        return args.lr / 20 + (args.lr - args.lr / 20) * 0.5 * (1 + np.cos(np.pi * min(fraction, 1.0)))

    def validation() -> dict:
        """Both losses on the held-out right-hand sides of every training system."""
        model.eval()
        index = torch.arange(args.rhs - holdout, args.rhs, device=device)
        with torch.no_grad():
            per_domain = [{k: v.item() for k, v in d.losses(model, index).items()} for d in domains]
            values = {f"validation_{kind}": float(np.mean([v[kind] for v in per_domain])) for kind in LOSSES}
        model.train()
        return values

    history = [{"step": 0, **validation()}]
    train_started, steps_done, running = time.perf_counter(), 0, []
    grids = "+".join(f"{g}^{args.dim}" for g in args.grid)
    for step in progress(range(1, args.steps + 1), f"training dcdm {args.dim}D {grids}"):
        d = int(rng.integers(len(domains)))
        domain = domains[d]
        index = torch.from_numpy(rng.choice(args.rhs - holdout, size=batches[d], replace=False)).to(device)
        loss = domain.loss(model, index, args.loss)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        elapsed = time.perf_counter() - train_started
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(max(step / args.steps, elapsed / (60 * args.minutes) if args.minutes else 0.0))
        steps_done, running = step, running + [loss.item()]
        out_of_time = args.minutes is not None and elapsed > 60 * args.minutes
        if running and (step % 50 == 0 or step == args.steps or out_of_time):
            history.append({"step": step, f"train_{args.loss}": float(np.mean(running)), **validation()})
            running = []
        if out_of_time:
            break
    train_seconds = time.perf_counter() - train_started

    model.eval()
    save_model(model, output, {"name": output.stem, "grid": args.grid, "dim": args.dim, "steps": steps_done,
                               "seed": args.seed, "loss": args.loss,
                               "final_validation": {k: v for k, v in history[-1].items() if k.startswith("validation")}})
    check_grid = max(args.grid)
    check = obstacle_poisson.scene("sphere-plume", (check_grid,) * args.dim)  # an obstacle shape never trained on
    net = NetworkPreconditioner(model, check.mask, device=device).setup(check.A)
    iterations = {}
    for mode, smoother in (("dcdm", None), ("dcdm+ic0", "ic0")):
        result = flexible_cg(check.A, check.b, net, rtol=1e-6, maxiter=500, smoother=smoother)
        iterations[mode] = result.iterations if result.converged else f"not converged in {result.iterations}"
    record = {
        "name": output.stem,
        "command": "krylearn train dcdm " + " ".join(sys.argv[1:] if argv is None else argv),
        "arguments": vars(args),
        "training_systems": [{"name": p.name, "grid": p.shape[0], "n": p.n, "open_sides": list(p.open_sides),
                              "batch": batch} for p, batch in zip(problems, batches)],
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps_done,
        "seconds": {"data": data_seconds, "training": train_seconds, "total": time.perf_counter() - started},
        "history": history,
        "heldout_check": {"scene": "sphere-plume", "grid": check_grid, "rtol": 1e-6, "maxiter": 500,
                          "iterations": iterations},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    output.with_suffix(".json").write_text(json.dumps(record, indent=2))
    key = f"validation_{args.loss}"
    print(f"wrote {output} and {output.with_suffix('.json')}: {steps_done} steps in {train_seconds:.0f} s, "
          f"validation {args.loss} loss {history[0][key]:.4f} -> {history[-1][key]:.4f}, "
          f"iterations to 1e-6 on the unseen sphere-plume {check_grid}^{args.dim}: {iterations}")
    return 0
