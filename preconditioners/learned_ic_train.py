"""Training of the learned IC network: ``krylearn train learned-ic ...``.

Losses on the Jacobi-scaled A~ (both papers' options, see :mod:`.ic_gnn`):

- ``data`` (Li et al.): ||L L^T x - b||^2 / ||b||^2 with b ~ N(0, I) and
  x = A~^{-1} b (sparse direct solve, once per matrix). x weights each
  eigenmode of A~ by 1/lambda, so the loss is dominated by the smooth modes
  PCG with IC(0) struggles with; this is what pushes L towards a
  modified-IC-like factor (M ~ A on smooth vectors).
- ``frobenius`` (NeuralIF): ||(L L^T - A~) z||^2 / ||z||^2, z ~ N(0, I)
  fresh each step; no solutions needed.
- ``combined``: the sum of the two log-ratios below (smooth modes from the
  data term, the rest of the spectrum kept in check by the Frobenius term).
- ``condition``: log(lambda_max / lambda_min) of L^{-1} A~ L^{-T}, computed
  densely (training matrices of n <= 4096): the spectral condition number
  that bounds PCG's iterations; for spectra without clusters to exploit.
- ``pcg``: the log residual reduction of ``unroll`` PCG iterations with
  M = L L^T on A~ x = b, b ~ N(0, I) (:mod:`.pcg_loss`): the quantity the
  user pays for, differentiated through the iterations. Per matrix, the
  unrolled count is the number of IC(0)-PCG iterations to 1e-8 (the benchmark's
  tolerance), at most ``unroll``.

Each matrix's loss is divided by its value at IC(0) (the network's starting
point) and the optimiser minimises the mean log of that ratio, so every matrix
weighs the same whatever its conditioning. AdamW, gradient clipping 1.0, one
matrix per step; the weights kept are those of the epoch (0 = IC(0) itself)
with the smallest mean ratio of PCG iterations (rtol 1e-6) learned / IC(0) on
the validation matrices, so a shipped model is never worse than IC(0) there.

Seeds: training matrices use seeds ``seed * 10**6 + i``, validation
``seed * 10**6 + 500_000 + i``; the benchmark's test matrices use seeds
>= 10**9, never seen in training.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu

from .ic_gnn import ACTIVATIONS, FactorGraph, ICGNN, condition_loss, data_loss, frobenius_loss
from .learned_ic import MODELS_DIR, LearnedIC, factor_graph
from .pcg_loss import FactorPattern, unrolled_pcg_loss

LOSSES = ("data", "frobenius", "combined", "condition", "pcg")
GENERAL_MIX = ("diffusion2d", "diffusion3d", "heat_fem")  # the default model "general" (M="learned")


@dataclass
class Example:
    graph: FactorGraph
    x: torch.Tensor | None  # (n, k) solutions of A~ x = b (data loss)
    b: torch.Tensor | None
    base_data: float  # the losses of the IC(0) factor (the network's starting point)
    base_frobenius: float
    pattern: FactorPattern | None = None  # pcg loss: L's CSR layout, unrolled iterations, IC(0)'s value
    pcg_steps: int = 0
    base_pcg: float = 0.0
    base_condition: float = 0.0


def jacobi_scaled(A) -> sp.csc_array:
    """A~ = D^{-1/2} A D^{-1/2} (exact unit diagonal, exact zeros dropped) for the data loss's solves.
    Every entry is (a_ij d_i^{-1/2}) d_j^{-1/2} in its own row, the operand order the shipped models were
    trained with, so ``krylearn train`` reproduces them bit for bit (mirroring the input pass's lower
    triangle would round the upper one differently)."""
    csr = sp.csr_array(A, dtype=np.float64)
    csr.sort_indices()
    inv_sqrt = 1.0 / np.sqrt(csr.diagonal())
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    data = csr.data * inv_sqrt[rows]
    data *= inv_sqrt[csr.indices]
    data[rows == csr.indices] = 1.0
    scaled = sp.csr_array((data, csr.indices, csr.indptr), shape=csr.shape)
    scaled.eliminate_zeros()
    return sp.csc_array(scaled)


def prepare_example(A, loss: str, rng: np.random.Generator, n_pairs: int = 8, device="cpu",
                    unroll: int = 32) -> Example:
    """Network input and loss data for one SPD matrix."""
    graph, tril, _ = factor_graph(A, device=device)
    x_t = b_t = None
    base_data = base_frobenius = 1.0
    if loss in ("data", "combined", "pcg"):
        b = rng.standard_normal((graph.n, n_pairs))
    if loss in ("data", "combined"):
        x = splu(jacobi_scaled(A)).solve(b)
        x_t = torch.as_tensor(x, dtype=torch.float32, device=device)
        b_t = torch.as_tensor(b, dtype=torch.float32, device=device)
        base_data = float(data_loss(graph, graph.l0_off, graph.l0_diag, x_t, b_t))
    if loss in ("frobenius", "combined"):
        z = torch.as_tensor(rng.standard_normal((graph.n, 64)), dtype=torch.float32, device=device)
        base_frobenius = float(frobenius_loss(graph, graph.l0_off, graph.l0_diag, z))
    example = Example(graph, x_t, b_t, base_data, base_frobenius)
    if loss == "condition":
        with torch.no_grad():
            example.base_condition = float(condition_loss(graph, graph.l0_off, graph.l0_diag))
    if loss == "pcg":
        from krylearn.solvers.krylov import run_cg

        from .classical import IC0

        ic0_iterations = run_cg(A, b[:, 0] * np.sqrt(A.diagonal()), rtol=1e-8, maxiter=20 * graph.n,
                                M=IC0().setup(A)).iterations
        example.pattern = FactorPattern(tril.indptr, tril.indices)
        example.pcg_steps = int(np.clip(ic0_iterations, 1, unroll))
        example.b = torch.as_tensor(b, dtype=torch.float64, device=device)
        with torch.no_grad():
            example.base_pcg = float(unrolled_pcg_loss(graph, example.pattern, graph.l0_off, graph.l0_diag,
                                                       example.b, example.pcg_steps))
    return example


def _loss(model: ICGNN, ex: Example, loss: str, generator: torch.Generator) -> torch.Tensor:
    """log(loss / loss at IC(0)); ``combined`` sums the data and Frobenius terms; ``condition`` and
    ``pcg`` are logs already: the log condition number or residual reduction minus IC(0)'s."""
    l_off, l_diag = model(ex.graph)
    value = ex.graph.a_off.new_zeros(())
    if loss in ("data", "combined"):
        value = value + torch.log(data_loss(ex.graph, l_off, l_diag, ex.x, ex.b) / max(ex.base_data, 1e-30))
    if loss in ("frobenius", "combined"):
        z = torch.randn((ex.graph.n, 8), generator=generator).to(ex.graph.a_off.device)
        value = value + torch.log(frobenius_loss(ex.graph, l_off, l_diag, z) / max(ex.base_frobenius, 1e-30))
    if loss == "condition":
        value = value + condition_loss(ex.graph, l_off, l_diag) - ex.base_condition
    if loss == "pcg":
        value = value + unrolled_pcg_loss(ex.graph, ex.pattern, l_off, l_diag, ex.b, ex.pcg_steps) - ex.base_pcg
    return value


def validation_iterations(pc: LearnedIC, matrices, rtol: float = 1e-6, seed: int = 0) -> dict[str, float]:
    """PCG iterations to ``rtol`` (b ~ N(0, I)) with the learned factor and with IC(0):
    means and the mean per-matrix ratio learned / IC(0) (the model-selection metric)."""
    from krylearn.solvers.krylov import run_cg

    from .classical import IC0

    rng = np.random.default_rng(seed)
    learned, ic0 = [], []
    for A in matrices:
        b = rng.standard_normal(A.shape[0])
        maxiter = 20 * A.shape[0]
        learned.append(run_cg(A, b, rtol=rtol, maxiter=maxiter, M=pc.setup(A)).iterations)
        ic0.append(run_cg(A, b, rtol=rtol, maxiter=maxiter, M=IC0().setup(A)).iterations)
    ratio = np.asarray(learned, dtype=float) / np.maximum(ic0, 1)
    return {"iterations": float(np.mean(learned)), "iterations_ic0": float(np.mean(ic0)), "ratio": float(ratio.mean())}


def train(matrices, *, validation=None, family: str = "custom", loss: str = "data", epochs: int = 20,
          lr: float = 3e-3, width: int = 8, rounds: int = 3, activation: str = "silu", seed: int = 0, device="cpu",
          show_progress: bool = False, n_pairs: int = 8, unroll: int = 32, log=None) -> LearnedIC:
    """Train an :class:`ICGNN` on SPD ``matrices``; returns the :class:`LearnedIC` with the best
    validation epoch (the last epoch without ``validation``). The record (loss curve,
    validation iterations, settings, wall time) is stored in ``metadata["training"]``."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    matrices = list(matrices)
    if not matrices:
        raise ValueError("need at least one training matrix")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if unroll < 1:
        raise ValueError(f"unroll must be >= 1, got {unroll}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    examples = [prepare_example(A, loss, rng, n_pairs, device, unroll) for A in matrices]
    features = torch.cat([ex.graph.node_features for ex in examples]).cpu().double()
    feature_ranges = {"node": torch.quantile(features, torch.tensor([0.001, 0.999], dtype=torch.float64),
                                             dim=0).tolist()}
    model = ICGNN(width=width, rounds=rounds, activation=activation).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs * len(examples))
    record = {"family": family, "loss": loss, "epochs": epochs, "lr": lr, "width": width, "rounds": rounds,
              "activation": activation,
              **({"unroll": unroll} if loss == "pcg" else {}),
              "seed": seed, "n_train": len(examples), "n_val": len(validation or []),
              "train_sizes": sorted({int(A.shape[0]) for A in matrices}), "loss_curve": [], "validation": []}
    pc = LearnedIC(model, {"family": family, "feature_ranges": feature_ranges}, device=device)
    best = (math.inf, None, 0)
    if validation:  # epoch 0 is IC(0) itself: the kept weights are never worse than IC(0) on validation
        stats = validation_iterations(pc, validation, seed=seed)
        record["validation"].append({"epoch": 0, **stats})
        best = (stats["ratio"], {k: v.detach().clone() for k, v in model.state_dict().items()}, 0)
    epoch_iter = range(1, epochs + 1)
    if show_progress:
        from krylearn.bench.report import progress

        epoch_iter = progress(epoch_iter, f"train learned-ic [{family}, {loss} loss]", total=epochs)
    for epoch in epoch_iter:
        model.train()
        order = rng.permutation(len(examples))
        losses = []
        for i in order:
            optimiser.zero_grad(set_to_none=True)
            value = _loss(model, examples[i], loss, generator)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            losses.append(float(value.detach()))
        record["loss_curve"].append(float(np.mean(losses)))
        model.eval()
        if validation:
            stats = validation_iterations(pc, validation, seed=seed)
            record["validation"].append({"epoch": epoch, **stats})
            if stats["ratio"] < best[0]:
                best = (stats["ratio"], {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
        if log:
            val = record["validation"][-1] if validation else {}
            log(f"epoch {epoch}: mean log(loss/loss_ic0) {record['loss_curve'][-1]:.4f} {val}")
    if best[1] is not None:
        model.load_state_dict(best[1])
        record["best_epoch"], record["best_validation_ratio"] = best[2], best[0]
    record["seconds"] = time.perf_counter() - start
    return LearnedIC(model.eval(), {"family": family, "loss": loss, "feature_ranges": feature_ranges,
                                    "training": record}, device=device)


def main(argv: list[str] | None = None) -> int:
    from krylearn.bench.spd_families import TRAINING_FAMILIES, make_matrix

    parser = argparse.ArgumentParser(prog="krylearn train learned-ic",
                                     description="Train the learned incomplete-Cholesky GNN on a problem family.")
    parser.add_argument("--family", default="diffusion2d", choices=[*TRAINING_FAMILIES, "general"],
                        help="problem family (general: an equal mix of the three PDE families)")
    parser.add_argument("--n-train", type=int, default=48, help="number of training matrices")
    parser.add_argument("--n-val", type=int, default=4, help="number of validation matrices")
    parser.add_argument("--n", type=int, default=None, help="unknowns per matrix (default: the family's training size)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--loss", default="data", choices=LOSSES)
    parser.add_argument("--unroll", type=int, default=32,
                        help="pcg loss: at most this many unrolled PCG iterations per matrix")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=8, help="hidden width (8 keeps inference cheap)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--activation", default="silu", choices=list(ACTIVATIONS),
                        help="hardswish: SiLU's shape, a cheaper native forward pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default=None, help="model name (default: the family)")
    parser.add_argument("--output-dir", default=str(MODELS_DIR), help="where <name>.pt and <name>.json go")
    args = parser.parse_args(argv)
    if args.n_train < 1 or args.n_val < 0 or args.epochs < 1 or args.unroll < 1:
        parser.error("need --n-train >= 1, --n-val >= 0, --epochs >= 1, --unroll >= 1")
    torch.set_num_threads(max(1, args.threads))
    families = GENERAL_MIX if args.family == "general" else (args.family,)

    def matrices(count: int, offset: int):
        return [make_matrix(families[i % len(families)], args.n, args.seed * 10**6 + offset + i) for i in range(count)]

    start = time.perf_counter()
    train_set, val_set = matrices(args.n_train, 0), matrices(args.n_val, 500_000)
    pc = train(train_set, validation=val_set, family=args.family, loss=args.loss, epochs=args.epochs, lr=args.lr,
               width=args.width, rounds=args.rounds, activation=args.activation, seed=args.seed, device=args.device,
               show_progress=True, unroll=args.unroll)
    record = pc.metadata["training"]
    record.update(command="krylearn train learned-ic " + " ".join(sys.argv[2:] if argv is None else argv),
                  wall_seconds=time.perf_counter() - start, torch=torch.__version__, python=platform.python_version(),
                  threads=torch.get_num_threads(), sizes=sorted({int(A.shape[0]) for A in train_set}))
    out = Path(args.output_dir)
    name = args.name or args.family
    weights = pc.save(out / f"{name}.pt")
    (out / f"{name}.json").write_text(json.dumps(record, indent=2))
    best = next((v for v in record["validation"] if v["epoch"] == record.get("best_epoch")), {})
    print(f"wrote {weights} and {out / (name + '.json')} in {record['wall_seconds']:.1f}s; best epoch "
          f"{record.get('best_epoch')}: {best.get('iterations')} PCG iterations to rtol 1e-6 on validation "
          f"(IC(0): {best.get('iterations_ic0')}, mean ratio {best.get('ratio')})")
    return 0
