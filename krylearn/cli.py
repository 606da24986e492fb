"""Command line: ``krylearn solve``, ``krylearn bench``, ``krylearn train``.

Each benchmark suite lives in ``krylearn.bench.suite_<name>`` and each trainer
in its own module; both expose ``main(argv: list[str]) -> int``. This module
only parses the first level and dispatches, so a suite's options are its own.
"""
from __future__ import annotations

import argparse
import importlib
import sys

BENCH_SUITES = {
    "default": "krylearn.bench.suite_default",
    "kernels": "krylearn.bench.suite_kernels",
    "core": "krylearn.bench.suite_core",
    "relax": "krylearn.bench.suite_relax",
    "recycle": "krylearn.bench.suite_recycle",
    "learned": "krylearn.bench.suite_learned",
    "dcdm": "krylearn.bench.suite_dcdm",
    "petsc": "krylearn.bench.suite_petsc",
}

TRAINERS = {
    "learned-ic": "krylearn.preconditioners.learned_ic_train",
    "dcdm": "krylearn.solvers.dcdm_train",
}


def _solve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="krylearn solve", description="Solve A x = b for a matrix file.")
    parser.add_argument("file", help="matrix file (.mtx, .mtx.gz, .npz)")
    parser.add_argument("--rhs", help="right-hand side file (.npy, .mtx); default: b = A @ ones")
    parser.add_argument("--method", default="auto", help="auto, cg, gmres, bicgstab, minres, sor, ...")
    parser.add_argument("--pc", default="auto", help="auto, none, jacobi, ssor, ic0, ilu0, amg, learned")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--atol", type=float, default=0.0)
    parser.add_argument("--maxiter", type=int, default=None)
    parser.add_argument("--output", help="write x to this .npy file")
    args = parser.parse_args(argv)

    import numpy as np

    from krylearn import io, solve

    A = io.read_matrix(args.file)
    if args.rhs:
        b = np.asarray(io.read_vector(args.rhs), dtype=A.dtype)
    else:
        b = A @ np.ones(A.shape[1], dtype=A.dtype)
    result = solve(A, b, method=args.method, M=args.pc, rtol=args.rtol, atol=args.atol, maxiter=args.maxiter)
    bnorm = float(np.linalg.norm(b))
    true_rel = float(np.linalg.norm(b - A @ result.x)) / (bnorm if bnorm > 0 else 1.0)
    print(f"matrix          {args.file}  n={A.shape[0]}  nnz={A.nnz}")
    print(f"method          {result.method}  preconditioner={result.preconditioner}")
    print(f"converged       {result.converged}  (info={result.info})")
    print(f"iterations      {result.iterations}")
    print(f"seconds         {result.seconds:.4f}")
    print(f"true rel. resid {true_rel:.3e}")
    if args.output:
        np.save(args.output, result.x)
    return 0 if result.converged else 1


def _dispatch(table: dict[str, str], kind: str, name: str, argv: list[str]) -> int:
    if name not in table:
        print(f"krylearn {kind}: unknown {kind} target {name!r}; choose from {', '.join(sorted(table))}", file=sys.stderr)
        return 2
    module = importlib.import_module(table[name])
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "krylearn solve FILE [--method M --pc P --rtol R --maxiter K]\n"
        f"       krylearn bench [--suite {{{','.join(BENCH_SUITES)}}}] [suite options]\n"
        f"       krylearn train {{{','.join(TRAINERS)}}} [trainer options]"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: " + usage)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "solve":
        return _solve(rest)
    if command == "bench":
        suite = "default"
        if rest[:1] == ["--suite"] and len(rest) >= 2:
            suite, rest = rest[1], rest[2:]
        elif rest and rest[0].startswith("--suite="):
            suite, rest = rest[0].split("=", 1)[1], rest[1:]
        return _dispatch(BENCH_SUITES, "bench", suite, rest)
    if command == "train":
        if not rest:
            print("usage: " + usage, file=sys.stderr)
            return 2
        return _dispatch(TRAINERS, "train", rest[0], rest[1:])
    print(f"krylearn: unknown command {command!r}\nusage: " + usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
