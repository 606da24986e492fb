"""Krylov subspace recycling across a sequence of systems A_i x_i = b_i.

Two methods, both carrying a k-dimensional recycle space from one solve (and
one restart cycle) to the next:

- GCRO-DR (Parks, de Sturler, Mackey, Johnson, Maiti, SISC 2006) for general
  matrices, right-preconditioned: U (n x k) lives in the solution space and
  C = A U is orthonormal, so x moves along range(U) directly and U survives a
  change of both A and M. Each cycle runs m - k Arnoldi steps of
  (I - C C^T) A M^{-1} (native loop: ``_kernels.gcrodr_arnoldi``, CGS2
  against [C, V] in two fused passes over the basis, z_j = M^{-1} v_j kept as
  in flexible GMRES), minimises ||b - A x|| over x + range([U, Z]) and, on every
  ``update_every``-th cycle (default 2), replaces U by the k harmonic Ritz
  vectors of the cycle (one small dense eigenproblem and a few O(n k m)
  BLAS-3 products). When the matrix changes, C = A_new U
  (k SpMVs, no preconditioner) is re-orthonormalised by Cholesky QR that
  drops dependent columns.
- Recycled (deflated) PCG (Saad, Yeung, Erhel, Guyomarc'h, SISC 2000) for SPD
  matrices: W (n x k, A-orthonormal) is removed from every direction,
  p <- z + beta p - W (AW)^T z (native loop: ``_kernels.deflated_cg``), and
  after each solve W is refreshed from
  [W, first l search directions] by the Rayleigh-Ritz problem
  (AZ)^T M^{-1} (AZ) y = theta (Z^T A Z) y (eigenvalues of M^{-1} A).

With k = 0 both reduce to plain GMRES(m) / PCG (same iterations). The matrix
products use the native CSR SpMV (``krylearn._kernels``) and the native
preconditioners.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack
import scipy.sparse as sp

from krylearn import _kernels
from krylearn._validation import as_csr, as_kernel_matrix, check_maxiter, check_tolerances, check_vector, is_symmetric
from krylearn.preconditioners import Preconditioner, make_preconditioner
from krylearn.result import SolveResult

_RANK_TOL = 1e-10  # relative size of an R diagonal below which a recycled direction is dropped
_CHOLQR_PIVOT_TOL = 1e-14  # Cholesky QR: pivots of G^T G below this fraction of the largest are dependent
_ARNOLDI_STEPS, _ARNOLDI_BREAKDOWN = 0, -1  # stop codes of _kernels.gcrodr_arnoldi (csrc/recycling.hpp)


class _Operator:
    """One system's A (native SpMV) and M^{-1} (native when available), float64."""

    def __init__(self, csr: sp.csr_array, M) -> None:
        self.csr = csr
        self.n = self.csr.shape[0]
        self.kernel = as_kernel_matrix(self.csr)
        if isinstance(M, Preconditioner):
            self.pc = M.setup(self.csr, dtype=np.float64)
        else:
            self.pc = make_preconditioner(M, self.csr, dtype=np.float64)
        self.pc_name = "none" if self.pc is None else getattr(self.pc, "name", type(self.pc).__name__)
        self._native_pc = None if self.pc is None else self.pc.native
        # what the native Arnoldi loop applies: the native object, else a callable (GIL re-acquired)
        self.loop_pc = self._native_pc if self.pc is None or self._native_pc is not None else self._apply_python

    def matvec(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A x (x must be C-contiguous float64)."""
        if out is None:
            out = np.empty(self.n)
        return self.kernel.matvec(x, out)

    def precondition(self, r: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """M^{-1} r; returns r itself (no copy) without a preconditioner."""
        if self.pc is None:
            return r
        if out is None:
            out = np.empty(self.n)
        if self._native_pc is not None:
            self._native_pc.apply(r, out)
            return out
        return self.pc.apply(r, out=out)

    def _apply_python(self, r: np.ndarray) -> np.ndarray:
        return self.pc.apply(r)

    def residual(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        return b - self.matvec(x)


def _harmonic_ritz_basis(G: np.ndarray, WtV: np.ndarray, k: int, keep: str) -> np.ndarray:
    """Orthonormal real basis P of the k wanted eigenvectors of G^T G z = theta G^T WtV z.

    With G = Q_G R_G ((N + 1) x N, full column rank) the pencil is the
    standard problem (R_G^{-1} Q_G^T WtV) z = mu z, mu = 1 / theta (LAPACK
    dgeqrf / dormqr / dtrtrs / dgeev on the small matrices, no wrappers).
    ``keep="smallest"`` selects by smallest |theta|, ``"largest"`` by largest;
    theta = inf (mu = 0) and non-finite values are never selected. A complex
    pair contributes the real and imaginary parts of its eigenvector (dgeev's
    real format), so a pair is split only at the end. Raises ValueError when
    G is rank-deficient or a factorisation fails.
    """
    N = G.shape[1]
    qr, tau, _, info = lapack.dgeqrf(G)
    if info != 0 or not np.all(np.diag(qr[:N, :N]) != 0.0):
        raise ValueError("rank-deficient cycle matrix")
    X, _, info = lapack.dormqr("L", "T", qr, tau, WtV, max(1, 64 * N))
    if info != 0:
        raise ValueError("dormqr failed")
    Y, info = lapack.dtrtrs(qr[:N, :N], X[:N], lower=0)
    if info != 0:
        raise ValueError("dtrtrs failed")
    wr, wi, _, vr, info = lapack.dgeev(Y, compute_vl=0)
    if info != 0:
        raise ValueError("dgeev did not converge")
    mags = np.hypot(wr, wi)  # |mu| = 1 / |theta|
    wanted = np.isfinite(mags) & (mags > 0.0)
    order = np.argsort(-mags if keep == "smallest" else mags, kind="stable")
    cols: list[int] = []
    for i in order:
        if len(cols) >= k:
            break
        first = i - 1 if wi[i] < 0.0 else i  # a conjugate pair is stored as columns (first, first + 1)
        if not wanted[i] or first in cols:
            continue
        cols += ([first, first + 1] if wi[i] != 0.0 else [first])[: k - len(cols)]
    if not cols:
        return np.zeros((N, 0))
    Q, R = np.linalg.qr(vr[:, cols])
    d = np.abs(np.diag(R))
    return Q[:, d > _RANK_TOL * max(d.max(), np.finfo(float).tiny)]


def _cholesky_qr(G: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Q = G S with Q orthonormal spanning range(G), by pivoted Cholesky of G^T G applied twice (CholQR2).

    Returns (Q, S) (S is k x rank, the column pivoting folded in), or None
    when a factorisation fails. Two BLAS-3 passes over G instead of
    Householder's many BLAS-2 ones; columns whose pivot falls below
    ``_CHOLQR_PIVOT_TOL`` of the largest (R_ii below ~1e-7 R_00) are dropped as
    dependent, and the second pass restores orthonormality to rounding level.
    """
    gram = blas.dsyrk(1.0, G, trans=1)  # upper triangle of G^T G
    scale = float(np.max(np.diag(gram), initial=0.0))
    if not scale > 0.0:
        return None
    R, piv, rank, info = lapack.dpstrf(gram, tol=_CHOLQR_PIVOT_TOL * scale, lower=0)
    if info < 0 or rank == 0:
        return None
    S = np.zeros((G.shape[1], rank))
    S[piv[:rank] - 1] = _triangular_inverse(np.triu(R[:rank, :rank]))
    Q = blas.dgemm(1.0, G, S)
    R2, info = lapack.dpotrf(blas.dsyrk(1.0, Q, trans=1), lower=0)
    if info != 0:
        return None
    R2inv = _triangular_inverse(np.triu(R2))
    return blas.dgemm(1.0, Q, R2inv), S @ R2inv


def _triangular_inverse(R: np.ndarray) -> np.ndarray:
    """R^{-1} for a small upper-triangular R (then applied to n-row blocks by one gemm, faster than trsm)."""
    return sla.solve_triangular(R, np.eye(R.shape[0]), check_finite=False)


def _pivoted_basis(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pivoted QR C[:, piv] = Q R truncated to numerical rank: returns (Q_r, R_r, piv_r)."""
    Q, R, piv = sla.qr(C, mode="economic", pivoting=True, check_finite=False)
    d = np.abs(np.diag(R))
    rank = int(np.sum(d > _RANK_TOL * d[0])) if d.size and d[0] > 0 else 0
    return Q[:, :rank], R[:rank, :rank], piv[:rank]


UPDATE_EVERY = 2  # default cycles between GCRO-DR recycle-space updates (see RecyclingSolver)


class RecyclingSolver:
    """Solve a sequence of related systems, recycling a Krylov subspace between them.

    Parameters
    ----------
    method : "gcrodr" (any nonsingular A), "cg" (recycled/deflated PCG, SPD A
        and SPD M) or "auto" (CG when A is symmetric, else GCRO-DR).
    k : dimension of the recycle space (0 = no recycling: plain GMRES(m)/PCG).
    m : GCRO-DR cycle length (k recycled + m - k Arnoldi vectors); k < m.
    ell : recycled CG: number of first search directions used to refresh the
        space after each solve (default max(k, 10)).
    M : preconditioner spec for every system: None/"none", a name
        ("jacobi", "ssor", "ilu0", "ic0", "amg", ...) rebuilt for each new
        matrix, a ``krylearn.preconditioners.Preconditioner`` (its ``setup`` is
        called for each new matrix) or a fixed M^{-1} (LinearOperator,
        matrix or callable). Right preconditioning for GCRO-DR.
    rtol, atol, maxiter : stop when ||b - A x|| <= max(atol, rtol ||b||);
        maxiter bounds the iterations (Arnoldi steps / CG steps) per solve
        (default 10 n).
    keep : harmonic Ritz values to keep, "smallest" (magnitude, deflates the
        slow modes; the default) or "largest".
    warm_start : when True and no x0 is given, start from the previous
        solution (same n), otherwise from 0.
    update_every : GCRO-DR replaces U by the cycle's harmonic Ritz vectors on
        every ``update_every``-th cycle of a solve (and whenever there is no
        space yet); 1 updates on every cycle, as Parks et al. Between updates
        U and C stay fixed and a cycle costs what a GMRES(m - k) cycle does; an
        update costs ~12 n (k + m) k flops of BLAS-3. The default, 2, costs
        1-8% more iterations than 1 and 11-44% less time on the recycle suite
        (README).

    ``solve(A, b)`` returns a ``SolveResult``; ``details`` has "matvecs",
    "recycle_dim", "cycles" and "dropped" (recycled directions dropped as
    dependent or non-finite). ``reset()`` forgets the recycle space;
    ``recycle_space`` is a copy of U (GCRO-DR: solution-space directions with
    C = A U orthonormal) or W (CG) for inspection.
    """

    def __init__(
        self,
        method: str = "gcrodr",
        *,
        k: int = 20,
        m: int = 40,
        ell: int | None = None,
        M=None,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int | None = None,
        keep: str = "smallest",
        warm_start: bool = False,
        update_every: int = UPDATE_EVERY,
    ) -> None:
        if method not in ("gcrodr", "cg", "auto"):
            raise ValueError(f"method must be 'gcrodr', 'cg' or 'auto', got {method!r}")
        for value, label in ((k, "k"), (m, "m")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{label} must be an integer, got {value!r}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        if method != "cg" and k >= m:
            raise ValueError(f"GCRO-DR needs k < m (k recycled + m - k new vectors per cycle), got k={k}, m={m}")
        if keep not in ("smallest", "largest"):
            raise ValueError(f"keep must be 'smallest' or 'largest', got {keep!r}")
        if isinstance(update_every, bool) or not isinstance(update_every, (int, np.integer)) or update_every < 1:
            raise ValueError(f"update_every must be an integer >= 1, got {update_every!r}")
        if ell is not None and ell < 0:
            raise ValueError(f"ell must be >= 0, got {ell}")
        self.method, self.k, self.m, self.keep = method, int(k), int(m), keep
        self.ell = max(self.k, 10) if ell is None else int(ell)
        self.M, self.warm_start = M, bool(warm_start)
        self.update_every = int(update_every)
        self.rtol, self.atol = check_tolerances(rtol, atol)
        check_maxiter(maxiter, 0)
        self.maxiter = maxiter
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the recycle space, the last matrix and the last solution."""
        self._op: _Operator | None = None
        self._method: str | None = None
        self._U: np.ndarray | None = None  # GCRO-DR: U; CG: W
        self._C: np.ndarray | None = None  # GCRO-DR: C = A U (orthonormal); CG: A W
        self._MU: np.ndarray | None = None  # GCRO-DR: M U, U in the preconditioned space (None: M = I)
        self._MC: np.ndarray | None = None  # CG: M^{-1} A W
        self._x_prev: np.ndarray | None = None
        self._basis: np.ndarray | None = None  # GCRO-DR: [C | V] block, (n, m + 1)
        self._Z: np.ndarray | None = None  # GCRO-DR: M^{-1} V block, (n, m)
        self.solves = 0

    @property
    def recycle_space(self) -> np.ndarray | None:
        """Copy of the recycle basis (n x k'), or None before the first solve / with k = 0."""
        return None if self._U is None else self._U.copy()

    @property
    def recycle_dim(self) -> int:
        return 0 if self._U is None else self._U.shape[1]

    # ------------------------------------------------------------------ solve
    def solve(self, A, b, x0=None, *, rtol=None, atol=None, maxiter=None, callback: Callable | None = None) -> SolveResult:
        """Solve A x = b with the current recycle space and update it.

        ``callback(xk)`` is called after every restart cycle (GCRO-DR, like
        SciPy's gcrotmk) or every iteration (CG).
        """
        start = time.perf_counter()
        rtol, atol = check_tolerances(self.rtol if rtol is None else rtol, self.atol if atol is None else atol)
        if not (sp.issparse(A) or isinstance(A, np.ndarray)):
            raise TypeError(f"A must be a SciPy sparse matrix or a dense array, got {type(A).__name__}")
        out_dtype = A.dtype if A.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        csr = as_csr(A, dtype=np.float64)
        n = csr.shape[0]
        if self._op is not None and n != self._op.n:
            warnings.warn(
                f"system size changed from {self._op.n} to {n}: the recycle space is reset", RuntimeWarning, stacklevel=2
            )
            self.reset()
        b = check_vector(b, n, "b", np.float64)
        if x0 is not None:
            x = check_vector(x0, n, "x0", np.float64)
        elif self.warm_start and self._x_prev is not None:
            x = self._x_prev.copy()
        else:
            x = np.zeros(n)
        maxiter = check_maxiter(self.maxiter if maxiter is None else maxiter, 10 * n)
        method = self.method
        if method != "gcrodr":
            symmetric = is_symmetric(csr, rtol=1e-10)
            if method == "cg" and not symmetric:
                raise ValueError("recycled CG needs a symmetric positive definite A; A is not symmetric: use method='gcrodr'")
            method = "cg" if symmetric else "gcrodr"
        if self._method is not None and method != self._method:
            self.reset()  # 'auto' switched between CG and GCRO-DR: the spaces mean different things
        self._method = method
        # Same matrix as last time (by value): keep the operator, its preconditioner and C = A U.
        same_matrix = self._op is not None and _same_csr(self._op.csr, csr)
        op = self._op if same_matrix else _Operator(csr, self.M)
        self._op = op
        tol = max(atol, rtol * float(np.linalg.norm(b)))
        if method == "cg":
            x, info, its, residuals, details = self._deflated_cg(op, b, x, tol, maxiter, same_matrix, callback)
        else:
            x, info, its, residuals, details = self._gcrodr(op, b, x, tol, maxiter, same_matrix, callback)
        self._x_prev = x.copy()
        self.solves += 1
        details["recycle_dim"] = self.recycle_dim
        return SolveResult(
            x=x.astype(out_dtype, copy=False),
            converged=info == 0,
            iterations=its,
            residuals=np.asarray(residuals, dtype=np.float64),
            info=info,
            seconds=time.perf_counter() - start,
            method="gcrodr" if method == "gcrodr" else "recycled-cg",
            preconditioner=op.pc_name,
            details=details,
        )

    def _forget_space(self) -> None:
        self._U = self._C = self._MC = self._MU = None

    def _finite_columns(self, details: dict) -> np.ndarray | None:
        """The recycle basis without its non-finite columns (counted as dropped; M U follows U);
        None if none is left."""
        U = self._U
        good = np.all(np.isfinite(U), axis=0)
        details["dropped"] += int(U.shape[1] - np.count_nonzero(good))
        if not np.any(good):
            self._forget_space()
            return None
        if not np.all(good):
            self._U = np.asfortranarray(U[:, good])
            if self._MU is not None:
                self._MU = np.asfortranarray(self._MU[:, good])
        return self._U

    # ------------------------------------------------------------------ GCRO-DR
    def _refresh_gcrodr_space(self, op: _Operator, details: dict) -> int:
        """C = A U for the new matrix (U lives in the solution space), orthonormalised; returns SpMVs used.

        M U for the new preconditioner is formed from M's factors where it has them, else taken as
        U (the M = I pencil: a user's M^{-1} may have changed with A). It only shapes the harmonic
        Ritz selection, never the residual."""
        U = self._finite_columns(details)
        if U is None:
            return 0
        if op.pc is None:
            self._MU = None
        else:
            MU = op.pc.multiply(U)  # Fortran-ordered, like U
            self._MU = MU if MU is not None and np.all(np.isfinite(MU)) else U
        AU = np.empty_like(U, order="F")
        for i in range(U.shape[1]):
            op.matvec(U[:, i], AU[:, i])
        self._set_space_from_qr(U, AU, details)
        return U.shape[1]

    def _set_space_from_qr(self, Y: np.ndarray, G: np.ndarray, details: dict) -> None:
        """Given A Y = G: C = orthonormal basis of range(G), U = Y R^{-1} (and M U alike; dependent
        columns dropped)."""
        if not np.all(np.isfinite(G)):
            details["dropped"] += Y.shape[1]
            self._forget_space()
            return
        factors = _cholesky_qr(G)
        if factors is None:  # Householder fallback: G[:, piv] = Q R
            Q, R, piv = _pivoted_basis(G)
            S = np.zeros((G.shape[1], Q.shape[1]))
            S[piv] = _triangular_inverse(R)
        else:
            Q, S = factors
        details["dropped"] += Y.shape[1] - Q.shape[1]
        if Q.shape[1] == 0:
            self._forget_space()
            return
        self._C, self._U = np.asfortranarray(Q), blas.dgemm(1.0, Y, S)
        if self._MU is not None:
            self._MU = blas.dgemm(1.0, self._MU, S)

    def _gcrodr(self, op: _Operator, b, x, tol, maxiter, same_matrix, callback):
        n, m, k = op.n, self.m, self.k
        details = {"matvecs": 0, "cycles": 0, "dropped": 0}
        if self._basis is None or self._basis.shape != (n, m + 1):
            self._basis = np.empty((n, m + 1), order="F")  # [C | V_0 ... V_s]
            self._Z = np.empty((n, m), order="F")  # M^{-1} V (flexible storage: x moves along Z, not M^{-1} of a sum)
        Wb = self._basis
        Zb = self._Z if op.pc is not None else None
        H = np.empty((m + 1, m), order="F")  # column j: [C, V]^T A z_j and ||w||
        y, estimates = np.empty(m), np.empty(m)
        if self._U is not None and not same_matrix:
            details["matvecs"] += self._refresh_gcrodr_space(op, details)
        r = op.residual(b, x)
        details["matvecs"] += 1
        residuals = [float(np.linalg.norm(r))]
        rnorm, its, info = residuals[0], 0, 0
        while rnorm > tol and its < maxiter:
            kc = self.recycle_dim
            steps = min(m - kc, maxiter - its)
            if kc:
                Wb[:, :kc] = self._C
                c = self._C.T @ r
                v0 = r - self._C @ c
            else:
                c, v0 = np.zeros(0), r
            beta = float(np.linalg.norm(v0))
            if not np.isfinite(beta):
                info = -3
                break
            j_done, stop = 0, _ARNOLDI_STEPS
            if beta > 0.0:  # beta = 0: r lies in range(C) and the projection below finishes the solve
                np.multiply(v0, 1.0 / beta, out=Wb[:, kc])
                j_done, stop = _kernels.gcrodr_arnoldi(op.kernel, op.loop_pc, Wb, Zb, H, y, estimates, kc, steps,
                                                       beta, tol)
            details["matvecs"] += j_done
            details["cycles"] += 1
            its += j_done
            residuals.extend(estimates[:j_done].tolist())
            if stop == _ARNOLDI_BREAKDOWN:
                info = -3
                break
            # x += Z y + U (c - B y): the minimiser over range([U, Z]) of ||b - A x||.
            y2 = y[:j_done]
            Zj = Zb[:, :j_done] if Zb is not None else Wb[:, kc : kc + j_done]
            corr = Zj @ y2
            if kc:
                corr += self._U @ (c - H[:kc, :j_done] @ y2)
            if not np.all(np.isfinite(corr)):
                info = -3
                break
            x += corr
            r = op.residual(b, x)
            details["matvecs"] += 1
            rnorm = float(np.linalg.norm(r))
            residuals[-1] = rnorm
            if callback is not None:
                callback(x)
            if k and j_done and (self._U is None or details["cycles"] % self.update_every == 0):
                self._update_gcrodr_space(Wb, Zj, H, kc, j_done, details, preconditioned=Zb is not None)
            if j_done == 0:
                break
        if info == 0 and rnorm > tol:
            info = max(its, 1)
        return x, info, its, residuals, details

    def _update_gcrodr_space(self, Wb, Zj, H, kc, j, details, preconditioned: bool) -> None:
        """Keep the k harmonic Ritz vectors of the cycle: Gbar^T Gbar z = theta Gbar^T What^T Vhat z.

        What = [C, V_{j+1}] (orthonormal, in ``Wb``), A [U D, Z_j] = What Gbar
        with D the inverse column norms of U and Gbar = [[D, B], [0, Hbar]].
        Vhat = [M U D, V_j] is the preconditioned-space image of [U D, Z_j]
        (Z_j = M^{-1} V_j; U stays in the solution space, so it survives a
        change of M, and M U is kept beside it). With Gbar = Q_G R_G the pencil
        reduces to the standard problem R_G^{-1} Q_G^T What^T Vhat z = z / theta.
        New U = [U D, Z_j] T, M U = [M U D, V_j] T and C = What Q, with
        Gbar P = Q R (pivoted, rank-truncated) and T = P R^{-1}.
        """
        N = kc + j
        G = np.zeros((N + 1, N))
        G[kc:, kc:] = H[kc : N + 1, :j]
        WtV = np.zeros((N + 1, N))
        WtV[kc:, kc:] = np.eye(j + 1, j)
        if kc:
            d = 1.0 / np.sqrt(np.einsum("ij,ij->j", self._U, self._U))
            G[:kc, :kc] = np.diag(d)
            G[:kc, kc:] = H[:kc, :j]
            MU = self._U if self._MU is None else self._MU
            WtV[:, :kc] = blas.dgemm(1.0, Wb[:, : N + 1], MU, trans_a=True) * d
        try:
            if not (np.all(np.isfinite(G)) and np.all(np.isfinite(WtV))):
                raise ValueError("non-finite cycle matrices")
            P = _harmonic_ritz_basis(G, WtV, min(self.k, N), self.keep)
            if P.shape[1] == 0:
                raise ValueError("no finite harmonic Ritz values")
        except (ValueError, np.linalg.LinAlgError):
            details["dropped"] += kc
            self._forget_space()
            return
        Q, R, piv = _pivoted_basis(G @ P)
        details["dropped"] += P.shape[1] - Q.shape[1]
        if Q.shape[1] == 0:
            self._forget_space()
            return
        # U_new = [U D, Z_j] T with T = P[:, piv] R^{-1} (small), C_new = What Q: column-major BLAS-3 products.
        # Everything entering them is finite (the small matrices are checked, the kernel reports a
        # non-finite basis as a breakdown), so the results are too.
        T = P[:, piv] @ _triangular_inverse(R)
        if not np.all(np.isfinite(T)):
            details["dropped"] += Q.shape[1]
            self._forget_space()
            return
        U_new = blas.dgemm(1.0, Zj, T[kc:])
        if kc:
            U_new = blas.dgemm(1.0, self._U, d[:, None] * T[:kc], beta=1.0, c=U_new, overwrite_c=True)
        MU_new = None
        if preconditioned:  # M Z_j = V_j
            MU_new = blas.dgemm(1.0, Wb[:, kc : kc + j], T[kc:])
            if kc:
                MU_new = blas.dgemm(1.0, MU, d[:, None] * T[:kc], beta=1.0, c=MU_new, overwrite_c=True)
        C_new = blas.dgemm(1.0, Wb[:, : N + 1], Q)
        self._U, self._C, self._MU = U_new, C_new, MU_new

    # ------------------------------------------------------------------ deflated CG
    def _refresh_cg_space(self, op: _Operator, details: dict) -> None:
        """Re-A-orthonormalise W for a new matrix; recompute A W and M^{-1} A W."""
        W = self._finite_columns(details)
        if W is None:
            return
        AW = np.empty_like(W, order="F")
        for i in range(W.shape[1]):
            op.matvec(np.ascontiguousarray(W[:, i]), AW[:, i])
        details["matvecs"] += W.shape[1]
        MAW = None
        if op.pc is not None:
            MAW = np.empty_like(W, order="F")
            for i in range(W.shape[1]):
                MAW[:, i] = op.precondition(np.ascontiguousarray(AW[:, i]))
        self._set_cg_space(W, AW, MAW, details)

    def _set_cg_space(self, Z, AZ, MAZ, details: dict, select: int | None = None) -> None:
        """Store an A-orthonormal basis of range(Z) (dependent or non-finite directions dropped).

        With ``select``, keep only the ``select`` Ritz vectors of M^{-1} A in
        range(Z) with the wanted eigenvalues: (AZ)^T M^{-1} (AZ) y = theta y
        for A-orthonormal Z. ``MAZ`` = M^{-1} A Z, None without a preconditioner.
        """
        arrays = (Z, AZ) if MAZ is None else (Z, AZ, MAZ)
        if not all(np.all(np.isfinite(arr)) for arr in arrays):
            details["dropped"] += Z.shape[1]
            self._U = self._C = self._MC = None
            return
        E = Z.T @ AZ
        lam, V = np.linalg.eigh(0.5 * (E + E.T))
        good = lam > _RANK_TOL * max(float(lam.max(initial=0.0)), np.finfo(float).tiny)
        if select is None:
            details["dropped"] += int(np.sum(~good))
        if not np.any(good):
            self._U = self._C = self._MC = None
            return
        T = V[:, good] / np.sqrt(lam[good])  # Z T is A-orthonormal
        if select is not None and select < T.shape[1]:
            # Rayleigh-Ritz in the small space (F = T^T (AZ)^T M^{-1} AZ T), then one product per block
            F = T.T @ (AZ.T @ (AZ if MAZ is None else MAZ)) @ T
            _, Y = np.linalg.eigh(0.5 * (F + F.T))  # ascending theta
            T = T @ (Y[:, :select] if self.keep == "smallest" else Y[:, -select:])
        Z, AZ = (T.T @ Z.T).T, (T.T @ AZ.T).T  # Z T and AZ T column-major (what the native loop reads), no copy
        MAZ = None if MAZ is None else MAZ @ T
        self._U, self._C, self._MC = Z, AZ, MAZ

    def _deflated_cg(self, op: _Operator, b, x, tol, maxiter, same_matrix, callback):
        n, k = op.n, self.k
        details = {"matvecs": 0, "cycles": 0, "dropped": 0}
        if self._U is not None and not same_matrix:
            self._refresh_cg_space(op, details)
        ell = min(self.ell, maxiter) if k else 0
        P, AP, MAP = (np.empty((n, ell), order="F") for _ in range(3))
        its, info, stored, matvecs, residuals = _kernels.deflated_cg(op.kernel, op.loop_pc, self._U, self._C, b, x,
                                                                     tol, maxiter, ell, P, AP, MAP, callback)
        details["matvecs"] += matvecs
        if k and (stored or self._U is not None):
            Zs, AZs, MZs = [P[:, :stored]], [AP[:, :stored]], [MAP[:, :stored]]
            if self._U is not None:
                Zs.insert(0, self._U)
                AZs.insert(0, self._C)
                MZs.insert(0, self._MC)
            MAZ = np.hstack(MZs) if op.pc is not None else None
            self._set_cg_space(np.hstack(Zs), np.hstack(AZs), MAZ, details, select=k)
        return x, info, its, residuals.tolist(), details


def _same_csr(a: sp.csr_array, b: sp.csr_array) -> bool:
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )
