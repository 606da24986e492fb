"""``krylearn.solve``: solve A x = b robustly and say how.

With ``method="auto"`` the matrix is classified (symmetric with positive
diagonal, symmetric, general) and a chain of configurations is tried until
the TRUE residual ||b - A x|| <= max(atol, rtol ||b||) holds:

- symmetric, positive diagonal: CG + IC(0), CG + AMG (if CG finds p^T A p <= 0,
  the matrix is treated as symmetric indefinite from then on);
- symmetric otherwise: MINRES, GMRES(50) + ILU(0), BiCGStab + ILU(0);
- general: BiCGStab + ILU(0) (a quarter of the iteration budget), GMRES(30)
  + ILU(0), GMRES(60) + classical (Ruge-Stuben) AMG, GMRES(100) + ILU(0);
- then, for n <= ``direct_max_n`` (default 100,000), SuperLU with iterative
  refinement. On SPD systems of at most ``SMALL_DIRECT_N`` unknowns whose
  IC(0) needed a diagonal shift >= ``POOR_IC_SHIFT`` (a weak preconditioner,
  many CG iterations), SuperLU goes first; the chain continues if it fails.

GMRES attempts stop early when the residual falls by less than 2x over
``STAGNATION_WINDOW`` iterations, so a stalled configuration costs little.

MINRES iterates on D^{-1/2} A D^{-1/2} (D = |diag A|, i.e. Jacobi
preconditioning kept symmetric); ILU(0) attempts on matrices with zero
diagonal entries iterate on a row permutation with a zero-free diagonal
(maximum bipartite matching). Every iterative attempt is wrapped in a few
rounds of residual correction against the original system, so a solver that
stops on its own (scaled, preconditioned, recursively updated) criterion is
never taken at its word. Each attempt starts from the best iterate so far
and is listed in ``result.details["attempts"]`` (method, preconditioner,
iterations, info, true residual, seconds, IC/ILU shift, error). Besides
SciPy's info convention, an attempt reports info -4 when its preconditioner
could not be built and -5 when the sparse LU failed (singular matrix).
"""
from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.sparse.linalg import LinearOperator, MatrixRankWarning, splu

from . import _kernels
from ._validation import MatrixProperties, as_kernel_matrix, check_maxiter, check_tolerances
from .preconditioners.base import learned_preconditioner, make_preconditioner
from .result import SolveResult
from .solvers.krylov import (
    LinearSystem,
    StopSolve,
    initial_guess,
    linear_system,
    run_bicgstab,
    run_cg,
    run_gmres,
    run_minres,
)

KRYLOV = {
    "cg": run_cg,
    "gmres": run_gmres,
    "fgmres": lambda *a, **k: run_gmres(*a, flexible=True, **k),
    "bicgstab": run_bicgstab,
    "minres": run_minres,
}
METHODS = ("auto", *KRYLOV, "sor", "ssor", "direct", "dcdm")
DIRECT_MAX_N = 100_000
# An IC(0) that needed a diagonal shift of at least POOR_IC_SHIFT (relative) is a weak preconditioner
# (msc04515: shift 0.256, ~1150 CG iterations, 7x SuperLU's time); on a system of at most
# SMALL_DIRECT_N unknowns the auto chain then tries SuperLU before CG.
POOR_IC_SHIFT = 0.1
SMALL_DIRECT_N = 10_000
REFINEMENT_ROUNDS = 4
STAGNATION_WINDOW = 200  # GMRES iterations (at least 5 restart cycles)


@dataclass
class Candidate:
    """One configuration of the fallback chain."""

    method: str
    M: Any
    options: dict = dataclasses.field(default_factory=dict)
    scaling: str = "none"  # see equilibrate()
    budget_share: float = 1.0  # of the per-attempt iteration budget

    @property
    def label(self) -> str:
        pc = self.M if isinstance(self.M, str) else getattr(self.M, "name", type(self.M).__name__)
        restart = self.options.get("restart")
        return f"{self.method}({restart})+{pc}" if restart else f"{self.method}+{pc}"


@dataclass
class Equilibration:
    """A_s = diag(left) A[perm] diag(right): solve A_s y = left * b[perm], then x = right * y."""

    A: sp.csr_array
    left: np.ndarray
    right: np.ndarray
    perm: np.ndarray | None

    def __post_init__(self) -> None:
        self.kernel = as_kernel_matrix(self.A)  # one validated native matrix for every attempt

    def rhs(self, r: np.ndarray) -> np.ndarray:
        return self.left * (r if self.perm is None else r[self.perm])


def classify(properties: MatrixProperties) -> str:
    """"spd" (symmetric, positive diagonal: CG is worth trying), "symmetric" or "general"."""
    if not properties.symmetric:
        return "general"
    return "spd" if properties.positive_diagonal else "symmetric"


def equilibrate(csr: sp.csr_array, properties: MatrixProperties, scaling: str) -> Equilibration | None:
    """The transformed system a candidate iterates on (None: A itself).

    "jacobi": D^{-1/2} A D^{-1/2} with D = |diag(A)| (MINRES's Jacobi
    preconditioning, kept symmetric). "permute": a row permutation to a
    structurally zero-free diagonal when A has zero diagonal entries (ILU(0)
    needs one), else None. "none": None. ``properties`` are A's (symmetry,
    diagonal). Row scaling is deliberately not used for the other methods:
    IC(0)/ILU(0) are invariant under diagonal scaling, and scaled residual
    norms would stop GMRES on the wrong criterion when row scales differ by
    orders of magnitude.
    """
    if scaling == "none":
        return None
    ones = np.ones(csr.shape[0], dtype=csr.dtype)
    if scaling == "jacobi":
        d = np.abs(properties.diagonal).astype(np.float64)
        s = np.ones_like(d)
        np.divide(1.0, np.sqrt(d), out=s, where=d > 0)
        A_s = sp.csr_array(sp.diags_array(s) @ sp.csr_array(csr, dtype=np.float64) @ sp.diags_array(s))
        A_s.sort_indices()
        scaled = sp.csr_array((A_s.data.astype(csr.dtype), A_s.indices.astype(csr.indices.dtype),
                               A_s.indptr.astype(csr.indptr.dtype)), shape=csr.shape)
        return Equilibration(scaled, s.astype(csr.dtype), s.astype(csr.dtype), None)
    if scaling != "permute":
        raise ValueError(f"unknown scaling {scaling!r}")
    if properties.zero_free_diagonal:
        return None
    pattern = csr.copy()
    pattern.eliminate_zeros()
    match = maximum_bipartite_matching(pattern, perm_type="row")
    if np.any(match < 0):  # structurally singular: no zero-free diagonal exists
        return None
    perm = np.asarray(match)
    permuted = sp.csr_array(csr[perm, :])
    permuted.sort_indices()
    return Equilibration(permuted, ones, ones, perm)


def _chain(kind: str, method: str, M, have_amg: bool) -> list[Candidate]:
    """The configurations to try, in order (before the direct fallback)."""
    auto_pc = isinstance(M, str) and M == "auto"
    chains = {
        "spd": [Candidate("cg", "ic0"), Candidate("cg", "amg")],
        "symmetric": [Candidate("minres", "none", {}, "jacobi"), Candidate("gmres", "ilu0", {"restart": 50}, "permute"),
                      Candidate("bicgstab", "ilu0", {}, "permute")],
        # BiCGStab + ILU(0) first: 1.2-4.6x less CPU time than GMRES(30) + ILU(0) on 4 of the 5 nonsymmetric
        # SuiteSparse matrices and 3 convection-diffusion problems; on watt_2 neither reaches rtol 1e-8 alone
        # (BiCGStab stops 2x short and the next attempts finish from its iterate in < 20 iterations). It has
        # no stagnation test, so it gets a quarter of the budget before GMRES takes over from the best iterate.
        "general": [Candidate("bicgstab", "ilu0", {}, "permute", budget_share=0.25),
                    Candidate("gmres", "ilu0", {"restart": 30}, "permute"),
                    Candidate("gmres", "amg:rs", {"restart": 60}, "permute"),
                    Candidate("gmres", "ilu0", {"restart": 100}, "permute")],
    }
    chain = [c for c in chains[kind] if have_amg or not c.M.startswith("amg")]
    if not auto_pc:  # the user's preconditioner with every method of the chain
        chain = [Candidate(c.method, M, c.options, c.scaling, c.budget_share) for c in chain
                 if c.method != "minres" or kind != "general"]
        chain = [c for i, c in enumerate(chain) if c.label not in {d.label for d in chain[:i]}]
    if method != "auto":
        first = _requested(method, M, kind)
        chain = [first] + [c for c in chain if c.label != first.label]
    return chain


def _requested(method: str, M, kind: str | None) -> Candidate:
    """The configuration of an explicit ``method`` (``M="auto"``: its default preconditioner,
    which for CG depends on A's ``kind``)."""
    auto_pc = isinstance(M, str) and M == "auto"
    if auto_pc:
        M = {"cg": "ic0" if kind == "spd" else "jacobi", "minres": "none"}.get(method, "ilu0")
    if method in ("cg", "minres"):  # keep A symmetric: no row permutation
        scaling = "jacobi" if method == "minres" and auto_pc else "none"
    else:  # a no-op unless A's diagonal has zeros, so also right for SPD A
        scaling = "permute"
    return Candidate(method, M, {"restart": 30} if "gmres" in method else {}, scaling)


def _set_restart(chain: list[Candidate], restart) -> None:
    for c in chain:
        if c.method in ("gmres", "fgmres"):
            c.options["restart"] = int(restart)


@functools.cache
def _have_amg() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


class _Progress:
    """The best iterate so far, its true residual r = b - A x (float64) and norm, and the attempt log."""

    def __init__(self, system: LinearSystem, x: np.ndarray, tol: float) -> None:
        self.system, self.tol = system, tol
        self.x, self.r = x, system.residual(x) if x.any() else system.b.astype(np.float64)  # A 0 = 0: no SpMV
        self.rnorm = _kernels.nrm2(self.r)
        self.attempts: list[dict] = []

    @property
    def converged(self) -> bool:
        return self.rnorm <= self.tol

    def offer(self, x: np.ndarray) -> float:
        """Keep ``x`` if it is finite and better; return its true residual norm."""
        if not np.all(np.isfinite(x)):
            return float("inf")
        r = self.system.residual(x)
        rnorm = _kernels.nrm2(r)
        if rnorm < self.rnorm:
            self.x, self.r, self.rnorm = x, r, rnorm
        return rnorm


def _iterate(progress: _Progress, eq: Equilibration | None, candidate: Candidate, budget: int, callback,
             cache: dict, defer=None) -> dict:
    """Run one candidate with rounds of residual correction; returns its log entry.
    ``cache`` keeps preconditioners built from names, so later candidates reuse them.
    ``defer(pc)``: a reason not to iterate with this preconditioner now (the log then has
    "deferred" and no iterations), or None."""
    start = time.perf_counter()
    budget = max(1, int(budget * candidate.budget_share))
    system = progress.system
    A_s = eq.A if eq is not None else system.csr
    log: dict[str, Any] = {"method": candidate.method, "preconditioner": candidate.label.split("+", 1)[1],
                           "iterations": 0, "info": 0}
    key = (candidate.M if isinstance(candidate.M, str) else id(candidate.M), id(eq))
    if key not in cache:
        operand = A_s if A_s is not None else LinearOperator((system.n, system.n), matvec=system.operator,
                                                             dtype=system.dtype)
        try:
            cache[key] = make_preconditioner(candidate.M, operand, dtype=system.dtype)
        except (ValueError, RuntimeError, ArithmeticError) as exc:  # e.g. zero pivots beyond every shift
            cache[key] = exc
    pc = cache[key]
    if isinstance(pc, Exception):
        log.update(info=-4, error=f"preconditioner setup failed: {pc}", seconds=time.perf_counter() - start)
        return log
    if pc is not None:
        log["preconditioner"] = pc.name
        if getattr(pc, "shift", None):
            log["shift"] = pc.shift
    reason = defer(pc) if defer is not None else None
    if reason:
        log.update(deferred=reason, seconds=time.perf_counter() - start, residual=progress.rnorm, converged=False,
                   residuals=np.zeros(0))
        return log
    inner = system if eq is None else LinearSystem(system.n, system.dtype, system.b, eq.kernel, A_s)
    options = dict(candidate.options)
    histories = []
    for _ in range(REFINEMENT_ROUNDS):
        if progress.converged or log["iterations"] >= budget:
            break
        base, r = progress.x, progress.r
        rhs = (eq.rhs(r) if eq is not None else r).astype(system.dtype)
        scale = eq.right if eq is not None else 1.0
        wrapped = None
        if callback is not None:
            def wrapped(y, base=base, scale=scale):  # noqa: E306 - iterate in the user's variables
                callback(base + scale * y)
            if candidate.method in ("gmres", "fgmres"):
                options["callback_type"] = "x"
        elif candidate.method in ("gmres", "fgmres"):
            wrapped = _stagnation_monitor(max(STAGNATION_WINDOW, 5 * options.get("restart", 20)))
            options["callback_type"] = "pr_norm"
        res = KRYLOV[candidate.method](dataclasses.replace(inner, b=rhs), None, None,
                                       rtol=0.5 * progress.tol / progress.rnorm, maxiter=budget - log["iterations"],
                                       M=pc, callback=wrapped, **options)
        log["iterations"] += res.iterations
        log["info"] = res.info
        if "stopped" in res.details:
            log["stopped"] = res.details["stopped"]
        histories.append(res.residuals)
        before = progress.rnorm
        progress.offer(base + scale * res.x)
        if res.info != 0 or progress.rnorm >= 0.9 * before:
            break  # breakdown, budget exhausted or no progress: next candidate
    log.update(seconds=time.perf_counter() - start, residual=progress.rnorm, converged=progress.converged,
               residuals=np.concatenate(histories) if histories else np.zeros(0))
    return log


def _stagnation_monitor(window: int):
    """GMRES ``pr_norm`` callback that stops the attempt when the residual fell by less than
    2x over the last ``window`` iterations (restarted GMRES stalls rather than fails)."""
    history: list[float] = []

    def monitor(relative_residual: float) -> None:
        history.append(relative_residual)
        if len(history) > window and relative_residual > 0.5 * history[-1 - window]:
            raise StopSolve(f"stagnation: < 2x residual reduction in {window} iterations", iterations=len(history))

    return monitor


def _direct(progress: _Progress) -> dict:
    """SuperLU (COLAMD ordering) in float64 with iterative refinement."""
    start = time.perf_counter()
    system = progress.system
    log: dict[str, Any] = {"method": "direct", "preconditioner": "superlu", "iterations": 0, "info": 0}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", MatrixRankWarning)
            lu = splu(sp.csc_matrix(system.csr, dtype=np.float64))
    except (RuntimeError, MatrixRankWarning, MemoryError) as exc:
        log.update(info=-5, error=f"sparse LU failed: {exc}", seconds=time.perf_counter() - start)
        return log
    x = progress.x.astype(np.float64)
    for step in range(3):
        r = system.residual(x)
        if _kernels.nrm2(r) <= progress.tol:
            break
        x = x + lu.solve(r)
        log["iterations"] = step + 1
        progress.offer(x.astype(system.dtype))
    log.update(seconds=time.perf_counter() - start, residual=progress.rnorm, converged=progress.converged,
               residuals=np.zeros(0))
    return log


def solve(A, b, *, method="auto", M="auto", rtol=1e-8, atol=0.0, maxiter=None, x0=None, callback=None,
          **options) -> SolveResult:
    """Solve A x = b; converged means ||b - A x|| <= max(atol, rtol ||b||) for the returned x.

    A: SciPy sparse matrix/array, dense array, LinearOperator (iterative
    methods only, no preconditioner unless given), or a petsc4py Mat.
    method: "auto" (see the module doc), "cg", "gmres", "fgmres",
    "bicgstab", "minres", "sor", "ssor", "direct", "dcdm".
    M: "auto", a name ("none", "jacobi", "ssor", "ic0", "ilu0", "amg",
    "learned[:model]"), a krylearn preconditioner, or a LinearOperator/matrix
    applying M^{-1} (SciPy's convention).
    maxiter: iteration budget per attempt (default 10 n capped at 2,000 when
    a direct fallback exists, else 20,000; the opening BiCGStab attempt of the
    nonsymmetric chain gets a quarter of it).
    callback(xk): called with the current iterate (per restart for GMRES).
    Result: ``x``, ``converged`` (the true residual test above), ``method``
    and ``preconditioner`` of the attempt that produced x, its
    ``iterations`` and ``residuals`` (norms seen by the inner solver, i.e. of
    the equilibrated system when one was used), ``details["true_residual"]``
    = ||b - A x||, ``details["attempts"]`` (every configuration tried),
    ``details["kind"]`` ("spd", "symmetric", "general"; None when method
    and M were both given and that attempt converged: A is then not
    classified).
    options: ``fallback`` (default True: if the requested configuration
    fails, continue with the auto chain; when method and M were both given,
    a RuntimeWarning names the failed request and what answered), ``direct`` (default True: SuperLU
    as the last resort), ``direct_max_n``, ``restart`` (GMRES), ``omega``
    (SOR/SSOR; "bandit" needs ``tuner``), ``tuner`` (an object with
    ``.solve(...)``, e.g. ``krylearn.bandits.OmegaTuner``), ``context``
    (passed to the tuner), ``grid``/``model``/``smoother`` (DCDM; there M,
    when not "auto", is the smoother: "none" runs the paper's DCDM).
    """
    start = time.perf_counter()
    if type(A).__module__.startswith("petsc4py"):
        from . import petsc

        return petsc.solve(A, b, method=method, M=M, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0,
                           callback=callback, **options)
    tuner = options.pop("tuner", None)
    if tuner is not None:
        return tuner.solve(A, b, method=method, M=M, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0,
                           callback=callback, context=options.pop("context", None))
    if options.get("omega") == "bandit":
        raise ValueError('omega="bandit" needs a tuner: solve(..., tuner=krylearn.bandits.OmegaTuner(...))')
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    method = method.lower()
    if method == "dcdm":
        if options.get("grid") is None:
            raise ValueError('method="dcdm" needs grid=<grid shape or fluid mask of the unknowns>')
        if not (isinstance(M, str) and M == "auto"):
            if "smoother" in options:
                raise ValueError('method="dcdm": give the classical step as M or as smoother, not both')
            options["smoother"] = M
        from .solvers.dcdm import solve_dcdm

        return solve_dcdm(A, b, rtol=rtol, atol=atol, maxiter=maxiter, x0=x0, callback=callback, **options)
    rtol, atol = check_tolerances(rtol, atol)
    fallback = bool(options.pop("fallback", True))
    use_direct = bool(options.pop("direct", True))
    direct_max_n = int(options.pop("direct_max_n", DIRECT_MAX_N))
    restart = options.pop("restart", None)
    omega = options.pop("omega", 1.0)
    if options:
        raise TypeError(f"solve() got unexpected options: {', '.join(sorted(options))}")

    system = linear_system(A, b)
    if method in ("sor", "ssor"):
        from .solvers.relaxation import sor

        return sor(system, None, x0, omega=omega, symmetric=method == "ssor", rtol=rtol, atol=atol,
                   maxiter=check_maxiter(maxiter, 10000))
    x = initial_guess(system, x0)
    bnorm = _kernels.nrm2(system.b)
    tol = max(atol, rtol * bnorm)
    if bnorm == 0.0:
        return SolveResult(np.zeros(system.n, dtype=system.dtype), True, 0, np.zeros(1), 0,
                           time.perf_counter() - start, "none", "none", {"attempts": [], "true_residual": 0.0})

    matrix_free = system.csr is None
    if M is None:
        M = "none"
    if isinstance(M, str) and M.strip().lower().startswith("learned"):
        # load now so a missing model is an error, not a fallback; the model sees A as given
        M = learned_preconditioner(M)
    auto_pc = isinstance(M, str) and M == "auto"
    direct_ok = use_direct and not matrix_free and system.n <= direct_max_n
    budget = check_maxiter(maxiter, min(10 * system.n, 2000 if direct_ok else 20000))
    if budget == 0 and method != "direct":  # maxiter=0: only report on x0
        direct_ok = False
    # A's kind decides the chain; with method and M both given it is needed only if that attempt fails
    kind = "general" if matrix_free else None
    deferred = False  # the auto chain still to be appended after the requested attempt
    if method == "direct" or budget == 0:
        chain: list[Candidate] = []
    elif matrix_free:
        first = Candidate(method if method != "auto" else "gmres", "none" if auto_pc else M,
                          {"restart": 30} if method in ("auto", "gmres", "fgmres") else {})
        chain = [first, Candidate("bicgstab", first.M)] if fallback and first.method != "bicgstab" else [first]
    elif method != "auto" and not auto_pc:
        chain, deferred = [_requested(method, M, None)], fallback
    else:
        kind = classify(system.properties)
        chain = _chain(kind, method, M, _have_amg())
        if not fallback:
            chain = chain[:1]
    if restart is not None:
        _set_restart(chain, restart)
    user_pc = not isinstance(M, str)
    scalings: dict[str, Equilibration | None] = {}

    def equilibration(candidate: Candidate) -> Equilibration | None:
        if matrix_free or user_pc:
            return None
        if candidate.scaling not in scalings:
            scalings[candidate.scaling] = equilibrate(system.csr, system.properties, candidate.scaling)
        return scalings[candidate.scaling]

    progress = _Progress(system, x, tol)
    cache: dict = {}
    final = None
    direct_tried = False

    def direct_first(pc) -> str | None:
        """The reason to try SuperLU before CG + this IC(0), if there is one (module doc)."""
        shift = getattr(pc, "shift", None) or 0.0
        if direct_tried or not direct_ok or not fallback or system.n > SMALL_DIRECT_N or shift < POOR_IC_SHIFT:
            return None
        return f"IC(0) needed a diagonal shift of {shift:g}: SuperLU first at n = {system.n}"

    while chain and not progress.converged:
        candidate = chain.pop(0)
        defer = direct_first if (method, kind, candidate.label) == ("auto", "spd", "cg+ic0") and auto_pc else None
        log = _iterate(progress, equilibration(candidate), candidate, budget, callback, cache, defer)
        progress.attempts.append(log)
        final = log
        if "deferred" in log:
            final, direct_tried = _direct(progress), True
            progress.attempts.append(final)
            chain.insert(0, candidate)  # not solved (singular LU, say): CG + IC(0) after all
            continue
        if deferred and not progress.converged:
            kind, deferred = classify(system.properties), False
            chain = _chain(kind, method, M, _have_amg())[1:]
            if restart is not None:
                _set_restart(chain, restart)
        if candidate.method == "cg" and log["info"] == -1 and fallback and kind == "spd":
            kind = "symmetric"  # p^T A p <= 0: A is indefinite after all; MINRES and ILU next
            chain = _chain(kind, "auto", M, _have_amg())
    if not progress.converged and direct_ok and not direct_tried and (fallback or method == "direct"):
        final = _direct(progress)
        progress.attempts.append(final)

    converged = progress.converged
    if final is None:  # x0 already solved the system
        final = {"method": "none", "preconditioner": "none", "iterations": 0, "info": 0, "residuals": np.zeros(0)}
    info = 0 if converged else (final["info"] if final["info"] != 0 else max(1, final["iterations"]))
    details = {"attempts": progress.attempts, "true_residual": progress.rnorm, "tolerance": tol, "kind": kind,
               "transformed": sorted(k for k, v in scalings.items() if v is not None)}
    if "shift" in final:
        details["shift"] = final["shift"]
    requested = progress.attempts[0] if progress.attempts and method != "auto" and not auto_pc else None
    if converged and requested is not None and final is not requested:
        why = requested.get("error") or f"info={requested['info']} after {requested['iterations']} iterations"
        warnings.warn(f"krylearn.solve: the requested {requested['method']}+{requested['preconditioner']} did not "
                      f"solve the system ({why}); the answer comes from {final['method']}+{final['preconditioner']} "
                      "(pass fallback=False to get the requested configuration's own result)", RuntimeWarning,
                      stacklevel=2)
    if not converged:
        tried = ", ".join(f"{a['method']}+{a['preconditioner']}" for a in progress.attempts) or "nothing"
        hint = ""
        if system.dtype == np.float32 and rtol < 1e-6:
            hint = "; float32 cannot resolve rtol below ~1e-6, pass float64 data or a larger rtol"
        warnings.warn(f"krylearn.solve did not reach ||b - A x|| <= {tol:.3e} (best {progress.rnorm:.3e}); "
                      f"tried {tried}{hint}", RuntimeWarning, stacklevel=2)
    residuals = final.get("residuals", np.zeros(0))
    if len(residuals) == 0:
        residuals = np.array([progress.rnorm])
    return SolveResult(progress.x, converged, int(final["iterations"]), residuals, int(info),
                       time.perf_counter() - start, final["method"], final["preconditioner"], details)
