"""Benchmark suite "relax": bandit-tuned relaxation and the solver tuner.

    krylearn bench --suite relax [--quick] [--parts shift,heat,stream]

Three experiments, each written to results/relax/ (CSV + JSON + PNG):

shift  Shifted Laplacians A_t = L + c_t I (bench.relax_problems), T instances
       per variance variant, SOR to rtol 1e-8. The iterations of every omega
       of the grid on every instance (and of Young's omega) are computed ONCE
       into a cost table; every learner, the best fixed omega in hindsight and
       the instance-optimal omega are evaluated on that identical table. A live
       OmegaTuner run over the first instances must reproduce the replay
       exactly (checked and reported).
heat   Crank-Nicolson heat equation, log10 kappa(t) the context, SSOR-PCG warm
       started from the previous step of a reference trajectory. Cost table
       of all grid omegas, per-step golden-section search for the
       instance-optimal omega, plain CG. Learners replayed on the table; their
       seconds are the table's (best of 2 runs) plus the learner's own
       measured overhead. A
       live, interleaved pass (ChebCB tuner / best fixed omega / plain CG
       solving the same step back to back) measures wall time directly.
stream SolverTuner on a stream of systems drawn from several families
       (generated PDE matrices and the real SuiteSparse ones). Every
       configuration is timed on every system (best of 2 runs) once; the
       tuner (features timed and included), the best configuration in
       hindsight and the per-system oracle are compared on that table.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from . import report
from .relax_problems import HeatProblem, scaled_laplacian, shift_sequence, shifted, young_omega

TARGETS = {"tsallis_vs_best_fixed": 1.05, "chebcb_vs_instance_optimal": 1.05, "stream_vs_oracle": 1.15}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="krylearn bench --suite relax", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for tests): seconds, not minutes")
    parser.add_argument("--parts", default="shift,heat,stream", help="comma list of shift, heat, stream")
    parser.add_argument("--grid", type=int, default=20, help="shifted Laplacian grid m (n = m^2)")
    parser.add_argument("--instances", type=int, default=5000, help="shifted Laplacian instances T")
    parser.add_argument("--heat-grid", type=int, default=100)
    parser.add_argument("--heat-steps", type=int, default=1000)
    parser.add_argument("--stream", type=int, default=150, help="systems in the SolverTuner stream")
    parser.add_argument("--seeds", type=int, default=3, help="learner seeds averaged in the replays")
    parser.add_argument("--results", default=None, help="results root (default $KRYLEARN_RESULTS or ./results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.grid, args.instances, args.heat_grid, args.heat_steps, args.stream, args.seeds = 8, 100, 10, 30, 8, 2
    unknown = set(args.parts.split(",")) - {"shift", "heat", "stream"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


# -- shared ---------------------------------------------------------------------------------------------
def _learners(n_arms: int, context_range: tuple[float, float] | None, seed: int) -> dict:
    from krylearn.bandits import BinnedTsallisINF, ChebCB, Exp3, ThompsonSampling, TsallisINF

    learners = {"tsallis-inf": TsallisINF(n_arms, seed=seed), "exp3": Exp3(n_arms, seed=seed),
                "thompson": ThompsonSampling(n_arms, seed=seed)}
    if context_range is not None:
        learners["chebcb"] = ChebCB(n_arms, context_range, seed=seed)
        learners["binned-tsallis"] = BinnedTsallisINF(n_arms, context_range, seed=seed)
    return learners


def replay(learner, costs: np.ndarray, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Run ``learner`` over the cost table (rows = instances): per-instance cost paid, arms, and
    the learner's own wall time (select + update)."""
    paid, arms = np.empty(len(costs)), np.empty(len(costs), dtype=int)
    overhead = 0.0
    for t, row in enumerate(costs):
        context = float(contexts[t]) if learner.contextual else None
        start = time.perf_counter()
        arm = learner.select(context)
        learner.update(arm, float(row[arm]), context)
        overhead += time.perf_counter() - start
        paid[t], arms[t] = row[arm], arm
    return paid, arms, overhead


def _plot(path, draw) -> str:
    plt = _pyplot()
    fig = draw(plt)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _pyplot():
    from krylearn._extras import require

    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot")


# -- shifted Laplacians -----------------------------------------------------------------------------------
def shift_rhs(n: int, t: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, t]).standard_normal(n)


def shift_table(m: int, shifts: np.ndarray, omegas: np.ndarray, rtol: float, seed: int, label: str):
    """Iterations of every omega (and of Young's omega) on every shifted system."""
    from krylearn.solvers.krylov import linear_system
    from krylearn.solvers.relaxation import sor

    L = scaled_laplacian(m)
    table, young = np.empty((len(shifts), len(omegas))), np.empty(len(shifts))
    for t in report.progress(range(len(shifts)), f"shift/{label}: cost table", total=len(shifts)):
        system = linear_system(shifted(L, shifts[t]), shift_rhs(m * m, t, seed))
        for k, omega in enumerate(omegas):
            table[t, k] = sor(system, None, omega=omega, rtol=rtol, maxiter=10000).iterations
        young[t] = sor(system, None, omega=young_omega(m, shifts[t]), rtol=rtol, maxiter=10000).iterations
    return table, young


def live_shift_check(m: int, shifts: np.ndarray, omegas: np.ndarray, rtol: float, seed: int, table: np.ndarray,
                     count: int) -> bool:
    """A live ChebCB OmegaTuner over the first ``count`` instances must pay exactly the replayed costs."""
    from krylearn.bandits import ChebCB, OmegaTuner

    c_range = (0.0, float(shifts.max()) + 1e-9)
    tuner = OmegaTuner(omegas, learner=ChebCB(len(omegas), c_range, seed=123), method="sor")
    L = scaled_laplacian(m)
    live = [tuner.solve(shifted(L, shifts[t]), shift_rhs(m * m, t, seed), rtol=rtol, maxiter=10000,
                        context=shifts[t]).iterations for t in range(count)]
    paid, _, _ = replay(ChebCB(len(omegas), c_range, seed=123), table[:count], shifts[:count])
    return bool(np.array_equal(np.asarray(live, dtype=float), paid))


def run_shift(args, out) -> list[dict]:
    from krylearn.bandits import DEFAULT_OMEGAS

    omegas, rtol, rows, curves = np.array(DEFAULT_OMEGAS), 1e-8, [], {}
    for variance in ("high", "low"):
        shifts = shift_sequence(args.instances, variance=variance, seed=7)
        table, young = shift_table(args.grid, shifts, omegas, rtol, 11, variance)
        np.savez_compressed(out / f"shift_{variance}_table.npz", iterations=table, young=young, shifts=shifts, omegas=omegas)
        c_range = (0.0, float(shifts.max()) + 1e-9)
        best_k = int(np.argmin(table.sum(axis=0)))
        references = {"omega=1": table[:, 0], f"best fixed omega={omegas[best_k]:.2f}": table[:, best_k],
                      "instance-optimal (grid)": table.min(axis=1), "young omega*": young}
        best_fixed, inst_opt = table[:, best_k].sum(), table.min(axis=1).sum()
        curves[variance] = {name: np.cumsum(v) for name, v in references.items()}
        chosen = {}
        for name in _learners(len(omegas), c_range, 0):
            totals, curve = [], 0.0
            for seed in range(args.seeds):
                paid, arms, overhead = replay(_learners(len(omegas), c_range, seed)[name], table, shifts)
                totals.append(paid.sum())
                curve = curve + np.cumsum(paid) / args.seeds
                if seed == 0:
                    chosen[name] = omegas[arms]
            curves[variance][name] = curve
            rows.append({"variant": variance, "policy": name, "total_iterations": float(np.mean(totals)),
                         "std_over_seeds": float(np.std(totals)), "vs_best_fixed": float(np.mean(totals)) / best_fixed,
                         "vs_instance_optimal": float(np.mean(totals)) / inst_opt})
        for name, v in references.items():
            rows.append({"variant": variance, "policy": name, "total_iterations": float(v.sum()), "std_over_seeds": 0.0,
                         "vs_best_fixed": float(v.sum()) / best_fixed, "vs_instance_optimal": float(v.sum()) / inst_opt})
        live_ok = live_shift_check(args.grid, shifts, omegas, rtol, 11, table, min(200, len(shifts)))
        rows.append({"variant": variance, "policy": "live OmegaTuner == replay (first 200)", "total_iterations": float("nan"),
                     "std_over_seeds": 0.0, "vs_best_fixed": float(live_ok), "vs_instance_optimal": float(live_ok)})
        late = slice(len(shifts) // 2, None)

        def draw(plt, shifts=shifts, chosen=chosen, table=table, late=late):
            fig, ax = plt.subplots(figsize=(6, 4))
            cs = np.linspace(0, shifts.max(), 200)
            ax.scatter(shifts[late], chosen["chebcb"][late], s=4, alpha=0.3, label="ChebCB choice (2nd half)")
            ax.scatter(shifts, omegas[np.argmin(table, axis=1)], s=2, alpha=0.3, label="grid-optimal omega")
            ax.plot(cs, [young_omega(args.grid, c) for c in cs], "k-", label="Young's omega*")
            ax.set_xlabel("shift c_t (context)")
            ax.set_ylabel("omega")
            ax.legend()
            ax.set_title(f"SOR omega vs context ({variance} variance, m={args.grid})")
            return fig

        _plot(out / f"shift_{variance}_omega_vs_context.png", draw)

    def draw_curves(plt):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, (variance, named) in zip(axes, curves.items()):
            opt = named["instance-optimal (grid)"]
            t = np.arange(1, len(opt) + 1)
            for name, curve in named.items():
                ax.plot(t, curve / opt, label=name)
            ax.set_xscale("log")
            ax.set_ylim(0.9, 3.0)
            ax.set_xlabel("instance t")
            ax.set_ylabel("cumulative iterations / instance-optimal")
            ax.set_title(f"shifted Laplacian, {variance} variance, m={args.grid}")
            ax.legend(fontsize=7)
        return fig

    _plot(out / "shift_learning_curves.png", draw_curves)
    return rows


# -- heat equation ------------------------------------------------------------------------------------------
def golden_section(evaluate, low: float, high: float, evaluations: int = 12) -> tuple[float, float]:
    """Minimise a unimodal function of omega on [low, high]; returns (best value seen, its omega)."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = evaluate(c), evaluate(d)
    best = min((fc, c), (fd, d))
    for _ in range(evaluations - 2):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = evaluate(c)
            best = min(best, (fc, c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = evaluate(d)
            best = min(best, (fd, d))
    return best


def run_heat(args, out) -> list[dict]:
    from krylearn.bandits import DEFAULT_OMEGAS, ChebCB, OmegaTuner
    from krylearn.bandits.omega_tuner import run_with_omega
    from krylearn.solvers.krylov import linear_system, run_cg

    omegas, rtol = np.array(DEFAULT_OMEGAS), 1e-8
    problem = HeatProblem(m=args.heat_grid, steps=args.heat_steps, dt=1e-3, seed=3)
    u = problem.reference_trajectory()
    steps = problem.steps
    iters, secs = np.empty((steps, len(omegas))), np.empty((steps, len(omegas)))
    golden_iters, golden_omega = np.empty(steps), np.empty(steps)
    cg_iters, cg_secs = np.empty(steps), np.empty(steps)
    for step in report.progress(range(steps), "heat: cost table + golden section", total=steps):
        system = linear_system(problem.matrix(step), problem.rhs(step, u[step]))
        for k, omega in enumerate(omegas):
            runs = [run_with_omega(system, "cg", omega, rtol=rtol, x0=u[step]) for _ in range(2)]
            iters[step, k], secs[step, k] = runs[0].iterations, min(r.seconds for r in runs)  # best of 2: load noise
        golden_iters[step], golden_omega[step] = golden_section(
            lambda w, s=system, x0=u[step]: run_with_omega(s, "cg", w, rtol=rtol, x0=x0).iterations, 1.0, 1.95)
        plain = run_cg(system, None, u[step], rtol=rtol)
        cg_iters[step], cg_secs[step] = plain.iterations, plain.seconds
    kappa = problem.kappa
    np.savez_compressed(out / "heat_table.npz", iterations=iters, seconds=secs, golden_iterations=golden_iters,
                        golden_omega=golden_omega, cg_iterations=cg_iters, cg_seconds=cg_secs, kappa=kappa, omegas=omegas)
    context, context_range = np.log10(kappa), (-2.0, 1.0)  # log10 kappa: the scale on which omega* varies
    best_k = int(np.argmin(iters.sum(axis=0)))
    best_k_time = int(np.argmin(secs.sum(axis=0)))
    rows = []

    def add(policy, total_iterations, total_seconds, std=0.0):
        rows.append({"policy": policy, "total_iterations": float(total_iterations), "total_seconds": float(total_seconds),
                     "std_iterations_over_seeds": float(std)})

    chosen = None
    for name in ("chebcb", "binned-tsallis", "tsallis-inf"):
        tot_it, tot_s = [], []
        for seed in range(args.seeds):
            _, arms, overhead = replay(_learners(len(omegas), context_range, seed)[name], iters, context)
            tot_it.append(iters[np.arange(steps), arms].sum())
            tot_s.append(secs[np.arange(steps), arms].sum() + overhead)
            if seed == 0 and name == "chebcb":
                chosen = omegas[arms]
        add(f"{name} (replay)", np.mean(tot_it), np.mean(tot_s), np.std(tot_it))
    add(f"best fixed omega={omegas[best_k]:.2f} (by iterations)", iters[:, best_k].sum(), secs[:, best_k].sum())
    add(f"best fixed omega={omegas[best_k_time]:.2f} (by seconds)", iters[:, best_k_time].sum(), secs[:, best_k_time].sum())
    add("instance-optimal (grid)", iters.min(axis=1).sum(), secs[np.arange(steps), np.argmin(iters, axis=1)].sum())
    add("instance-optimal (golden section, iterations only)", golden_iters.sum(), float("nan"))
    add("omega=1", iters[:, 0].sum(), secs[:, 0].sum())
    add("plain CG", cg_iters.sum(), cg_secs.sum())

    # Live, interleaved: each step solved back to back by the tuner, the best fixed omega and plain CG.
    tuner = OmegaTuner(omegas, learner=ChebCB(len(omegas), context_range, seed=0), method="cg")
    live = {"chebcb": [0.0, 0], "fixed": [0.0, 0], "cg": [0.0, 0]}
    solvers = {
        "chebcb": lambda A, b, step: tuner.solve(A, b, rtol=rtol, x0=u[step], context=context[step]),
        "fixed": lambda A, b, step: run_with_omega(linear_system(A, b), "cg", omegas[best_k], rtol=rtol, x0=u[step]),
        "cg": lambda A, b, step: run_cg(A, b, u[step], rtol=rtol),
    }
    order = list(solvers)
    for step in report.progress(range(steps), "heat: live interleaved pass", total=steps):
        A, b = problem.matrix(step), problem.rhs(step, u[step])
        for name in order[step % 3:] + order[:step % 3]:  # rotate who goes first: shared-machine drift
            start = time.perf_counter()
            r = solvers[name](A, b, step)
            live[name][0] += time.perf_counter() - start
            live[name][1] += r.iterations
    add("chebcb OmegaTuner (live, incl. validation + learner)", live["chebcb"][1], live["chebcb"][0])
    add(f"best fixed omega={omegas[best_k]:.2f} (live)", live["fixed"][1], live["fixed"][0])
    add("plain CG (live)", live["cg"][1], live["cg"][0])

    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        axes[0].scatter(kappa, omegas[np.argmin(iters, axis=1)], s=4, alpha=0.4, label="grid-optimal")
        axes[0].scatter(kappa, golden_omega, s=4, alpha=0.4, label="golden section")
        axes[0].scatter(kappa[steps // 2:], chosen[steps // 2:], s=4, alpha=0.4, label="ChebCB (2nd half)")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("kappa (context: log10 kappa)")
        axes[0].set_ylabel("omega of SSOR-PCG")
        axes[0].legend()
        t = np.arange(1, steps + 1)
        opt = np.cumsum(iters.min(axis=1))
        for name, v in {"omega=1": iters[:, 0], f"best fixed {omegas[best_k]:.2f}": iters[:, best_k], "plain CG": cg_iters,
                        "ChebCB": iters[np.arange(steps), np.searchsorted(omegas, chosen)]}.items():
            axes[1].plot(t, np.cumsum(v) / opt, label=name)
        axes[1].set_xlabel("time step")
        axes[1].set_ylabel("cumulative iterations / instance-optimal")
        axes[1].set_title(f"heat equation, Crank-Nicolson, {args.heat_grid}^2 grid")
        axes[1].legend()
        return fig

    _plot(out / "heat.png", draw)
    return rows


# -- solver stream ------------------------------------------------------------------------------------------
def stream_families(quick: bool) -> dict:
    """name -> function(rng) returning a matrix; generated PDE families plus the real matrices present."""
    from .problems import anisotropic2d, high_contrast2d, load_suitesparse, poisson2d, suitesparse_manifest

    lo, hi = (10, 16) if quick else (40, 72)
    families = {
        "poisson2d": lambda rng: poisson2d(int(rng.integers(lo, hi))),
        "anisotropic2d": lambda rng: anisotropic2d(int(rng.integers(lo, hi)), 1e-2),
        "high_contrast2d": lambda rng: high_contrast2d(int(rng.integers(lo, hi)), seed=int(rng.integers(1 << 30))),
    }
    if not quick:
        wanted = ("bcsstk14", "msc04515", "1138_bus", "fv1", "sherman3", "pde2961", "orsirr_1", "watt_2")
        present = {row["name"] for row in suitesparse_manifest()}
        cache: dict = {}
        for name in wanted:
            if name in present:
                families[name] = lambda rng, name=name: cache.setdefault(name, load_suitesparse(name))
    return families


def run_stream(args, out) -> list[dict]:
    from krylearn.bandits import FEATURE_NAMES, SolverTuner, matrix_features
    from krylearn.bandits.solver_tuner import run_configuration
    from krylearn.solvers.krylov import linear_system

    rng = np.random.default_rng(7)
    families = stream_families(args.quick)
    names = list(families)
    tuner_template = SolverTuner(seed=0)
    configs = tuner_template.configurations
    maxiter, rtol = tuner_template.maxiter, 1e-8
    n_sys = args.stream
    seconds = np.full((n_sys, len(configs)), np.inf)
    converged = np.zeros((n_sys, len(configs)), dtype=bool)
    iterations = np.zeros((n_sys, len(configs)), dtype=int)
    features, feature_seconds, family_of = [], np.empty(n_sys), []
    for i in report.progress(range(n_sys), "stream: timing every configuration", total=n_sys):
        family = names[int(rng.integers(len(names)))]
        A = families[family](rng)
        b = A @ rng.standard_normal(A.shape[0])
        system = linear_system(A, b)
        start = time.perf_counter()
        f = matrix_features(system.csr)
        feature_seconds[i] = time.perf_counter() - start
        features.append(f)
        family_of.append(family)
        mask = tuner_template.available(bool(f[FEATURE_NAMES.index("symmetric")]))
        for k in np.flatnonzero(mask):
            best = np.inf
            for _ in range(2):
                start = time.perf_counter()
                try:
                    result = run_configuration(system, configs[k], rtol=rtol, maxiter=maxiter)
                    ok, its, elapsed = result.converged, result.iterations, result.seconds
                except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                    ok, its, elapsed = False, 0, time.perf_counter() - start
                best = min(best, elapsed)
            seconds[i, k], converged[i, k], iterations[i, k] = best, ok, its
    symmetric = np.array([f[FEATURE_NAMES.index("symmetric")] > 0 for f in features])
    np.savez_compressed(out / "stream_table.npz", seconds=seconds, converged=converged, iterations=iterations,
                        features=np.array(features), feature_seconds=feature_seconds, family=np.array(family_of))
    oracle = np.where(converged, seconds, np.inf).min(axis=1)
    warm = max(1, n_sys // 5)

    def fixed_cost(k: int, rows: np.ndarray) -> np.ndarray:
        """A fixed configuration's time; on a failure it also pays the oracle's solve (a fallback)."""
        cost = np.where(converged[rows, k], seconds[rows, k], seconds[rows, k] + oracle[rows])
        return np.where(np.isfinite(cost), cost, np.inf)

    best_pair, pair_cost = {}, np.zeros(n_sys)
    for label, rows in (("symmetric", np.flatnonzero(symmetric)), ("nonsymmetric", np.flatnonzero(~symmetric))):
        if rows.size:
            totals = [fixed_cost(k, rows).sum() for k in range(len(configs))]
            best_pair[label] = int(np.argmin(totals))
            pair_cost[rows] = fixed_cost(best_pair[label], rows)
    def censored(i: int, k: int, budget: float) -> tuple[float, bool, int]:
        """The measured attempt, stopped at ``budget`` seconds as a live one would be (every default
        configuration is a Krylov method, which a budget can stop)."""
        if seconds[i, k] > budget:
            return budget, False, iterations[i, k]
        return seconds[i, k], converged[i, k], iterations[i, k]

    per_seed = []
    for seed in range(args.seeds):
        tuner = SolverTuner(seed=seed)
        cost = np.empty(n_sys)
        for i in range(n_sys):
            mask = tuner.available(bool(symmetric[i]))
            start = time.perf_counter()
            attempts = tuner.play(features[i], mask, lambda k, budget, i=i: censored(i, k, budget))
            deciding = time.perf_counter() - start  # the learner's own time: the attempts come from the table
            cost[i] = sum(a["seconds"] for a in attempts) + feature_seconds[i] + deciding
        per_seed.append(cost)
    tuner_cost = np.mean(per_seed, axis=0)
    rows = []
    for policy, cost in (("SolverTuner (replay; features and learner time included)", tuner_cost),
                         ("best configuration in hindsight (one for SPD, one for nonsymmetric)", pair_cost),
                         ("per-system oracle", oracle)):
        rows.append({"policy": policy, "total_seconds": float(cost.sum()),
                     f"seconds_after_warmup_{warm}": float(cost[warm:].sum()),
                     "vs_oracle_after_warmup": float(cost[warm:].sum() / oracle[warm:].sum()),
                     "vs_oracle_total": float(cost.sum() / oracle.sum())})
    rows.append({"policy": "best configurations: " + ", ".join(f"{k}: {configs[v].label}" for k, v in best_pair.items()),
                 "total_seconds": float("nan"), f"seconds_after_warmup_{warm}": float("nan"),
                 "vs_oracle_after_warmup": float("nan"), "vs_oracle_total": float("nan")})
    winners = {}
    for family in names:
        idx = [i for i, f in enumerate(family_of) if f == family]
        if idx:
            wins = np.bincount(np.argmin(np.where(converged[idx], seconds[idx], np.inf), axis=1), minlength=len(configs))
            winners[family] = configs[int(np.argmax(wins))].label
    report.write_rows([{"family": k, "oracle_winner": v} for k, v in winners.items()], out, "stream_winners")

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        t = np.arange(1, n_sys + 1)
        ax.plot(t, np.cumsum(tuner_cost), label="SolverTuner")
        ax.plot(t, np.cumsum(pair_cost), label="best configuration in hindsight")
        ax.plot(t, np.cumsum(oracle), label="per-system oracle")
        ax.axvline(warm, color="grey", ls=":", label="end of warm-up")
        ax.set_xlabel("system")
        ax.set_ylabel("cumulative seconds")
        ax.legend()
        return fig

    _plot(out / "stream.png", draw)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(list(argv or []))
    out = report.results_dir("relax", args.results)
    parts = args.parts.split(",")
    meta = {"args": vars(args), "targets": TARGETS}
    if "shift" in parts:
        rows = run_shift(args, out)
        report.print_table(rows, f"Shifted Laplacian, SOR to 1e-8, T={args.instances}, m={args.grid} (cost table replay)")
        report.write_rows(rows, out, "shift", meta)
    if "heat" in parts:
        rows = run_heat(args, out)
        report.print_table(rows, f"Heat equation, SSOR-PCG to 1e-8, {args.heat_steps} steps, {args.heat_grid}^2 grid")
        report.write_rows(rows, out, "heat", meta)
    if "stream" in parts:
        rows = run_stream(args, out)
        report.print_table(rows, f"SolverTuner on a stream of {args.stream} systems (measured time table replay)")
        report.write_rows(rows, out, "stream", meta)
    print(f"results in {out}")
    return 0
