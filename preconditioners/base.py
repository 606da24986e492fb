"""The preconditioner protocol and the resolver of preconditioner specs.

A preconditioner represents an operator M^{-1} ~ A^{-1}: ``apply(r)`` returns
z = M^{-1} r. ``native`` is the ``_kernels.Preconditioner`` (or, for a
user-given matrix, the ``_kernels.CsrMatrix``) that the C++ Krylov loops
call without the GIL, or None for Python-side preconditioners (those
are passed to the loops as a callable). ``as_linear_operator()`` makes any of
them usable as ``M`` in ``scipy.sparse.linalg``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from krylearn._validation import as_csr, as_kernel_matrix, float_dtype


class Preconditioner:
    """Base class: subclasses implement ``_build(csr)`` (and ``_apply`` when not native)."""

    name = "preconditioner"
    # False when the built state does not reference A's arrays (e.g. a factor in arrays of
    # its own): setup then reads a canonical input in place instead of copying it.
    keeps_matrix = True

    def __init__(self) -> None:
        self.native = None
        self.shape: tuple[int, int] | None = None
        self.dtype: np.dtype | None = None

    def setup(self, A, dtype=None, *, share: bool = False) -> Preconditioner:
        """Build M for the square matrix ``A`` (any sparse/dense input); returns self.

        ``share=True``: the caller keeps a canonical CSR ``A`` unchanged for as long as this
        preconditioner is used (e.g. it is built for one solve), so M may reference A's arrays
        instead of copying them."""
        csr = as_csr(A, dtype=dtype, copy=self.keeps_matrix and not share)
        self.shape, self.dtype = csr.shape, csr.data.dtype
        self._build(csr)
        return self

    def _build(self, csr: sp.csr_array) -> None:
        raise NotImplementedError

    def _apply(self, r: np.ndarray, out: np.ndarray) -> None:
        self.native.apply(r, out)

    def apply(self, r, out=None) -> np.ndarray:
        """z = M^{-1} r (written into ``out`` when given)."""
        if self.shape is None:
            raise RuntimeError(f"{type(self).__name__} is not set up; call setup(A) first")
        r = np.ascontiguousarray(r, dtype=self.dtype)
        if r.shape != (self.shape[0],):
            raise ValueError(f"r must have shape ({self.shape[0]},), got {r.shape}")
        if out is None:
            out = np.empty_like(r)
        elif out.shape != r.shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {self.dtype} array of shape {r.shape}")
        self._apply(r, out)
        return out

    def __call__(self, r) -> np.ndarray:
        return self.apply(r)

    def multiply(self, X) -> np.ndarray | None:
        """M X (M itself, not M^{-1}) for a vector or the columns of an (n, p) array, where the
        native preconditioner stores M's factors (Jacobi, SSOR, the incomplete factorisations);
        None where only M^{-1} is known (AMG, user operators)."""
        if self.shape is None:
            raise RuntimeError(f"{type(self).__name__} is not set up; call setup(A) first")
        from krylearn import _kernels

        if not isinstance(self.native, _kernels.Preconditioner):  # None, or a user's CsrMatrix M^{-1}
            return None
        return self.native.multiply(np.asarray(X, dtype=self.dtype, order="F"))

    def as_linear_operator(self) -> LinearOperator:
        """M^{-1} as a SciPy LinearOperator (for ``scipy.sparse.linalg.cg(A, b, M=...)``)."""
        if self.shape is None:
            raise RuntimeError(f"{type(self).__name__} is not set up; call setup(A) first")
        return LinearOperator(self.shape, matvec=self.apply, dtype=self.dtype)

    def __repr__(self) -> str:
        state = f"n={self.shape[0]}, dtype={self.dtype}" if self.shape else "not set up"
        return f"{type(self).__name__}({state})"


class OperatorPreconditioner(Preconditioner):
    """A user-given M^{-1} (SciPy convention): a LinearOperator, sparse or dense matrix, or callable."""

    name = "user"

    def __init__(self, op, n: int | None = None, dtype=None) -> None:
        super().__init__()
        if isinstance(op, LinearOperator):
            self._matvec, shape, dt = op.matvec, op.shape, op.dtype
        elif sp.issparse(op) or isinstance(op, np.ndarray):
            csr = as_csr(op, dtype=dtype)
            self._matvec, shape, dt = csr.__matmul__, csr.shape, csr.dtype
            self.native = as_kernel_matrix(csr)  # the native loops apply a CsrMatrix M without the GIL
        elif callable(op):
            if n is None:
                raise ValueError("a callable preconditioner needs the system size")
            self._matvec, shape, dt = op, (n, n), dtype
        else:
            raise TypeError(f"cannot use {type(op).__name__} as a preconditioner")
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"preconditioner must be square, got shape {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = float_dtype(dt if dtype is None else dtype)

    def setup(self, A, dtype=None) -> OperatorPreconditioner:
        n = A.shape[0]
        if self.shape[0] != n:
            raise ValueError(f"preconditioner shape {self.shape} does not match A of shape {A.shape}")
        if dtype is not None and np.dtype(dtype) != self.dtype:
            self.native = None  # a CsrMatrix of the other float type cannot serve this system natively
            self.dtype = np.dtype(dtype)
        return self

    def _apply(self, r: np.ndarray, out: np.ndarray) -> None:
        z = np.asarray(self._matvec(r))
        if z.size != out.size:
            raise ValueError(f"preconditioner returned shape {z.shape}, expected ({out.size},)")
        out[:] = z.reshape(out.shape)


PRECONDITIONER_NAMES = ("none", "jacobi", "ssor", "ic0", "ilu0", "amg", "learned")


def learned_preconditioner(spec: str) -> Preconditioner:
    """The shipped learned IC model named by "learned" (default model) or "learned:<name>", not set up."""
    from .learned_ic import LearnedIC

    name = spec.partition(":")[2].strip()
    return LearnedIC.from_pretrained(name or None)


def make_preconditioner(spec, A, dtype=None, *, share: bool = False) -> Preconditioner | None:
    """Resolve ``spec`` into a preconditioner set up for ``A`` (None for no preconditioning).

    ``spec``: None or "none"; a name ("jacobi", "ssor", "ic0", "ilu0", "amg",
    "amg:rs", "learned", "learned:<model>"); a ``Preconditioner`` (set up
    for ``A`` if it is not yet); a SciPy LinearOperator, sparse or dense
    matrix or callable applying M^{-1} (SciPy's convention). ``A`` may be a
    LinearOperator only for the non-matrix specs. ``share=True``: a preconditioner
    built here from a name may reference A's arrays (see ``Preconditioner.setup``);
    a given ``Preconditioner`` instance always copies what it keeps.
    """
    from . import classical

    if spec is None:
        return None
    n = A.shape[0]
    if isinstance(spec, str):
        key, _, arg = spec.strip().lower().partition(":")
        if key == "none":
            return None
        if key == "learned":
            return learned_preconditioner(spec).setup(A, dtype=dtype)
        factories = {
            "jacobi": classical.Jacobi,
            "ssor": classical.SSOR,
            "ic0": classical.IC0,
            "ilu0": classical.ILU0,
            "amg": lambda: classical.AMG(kind=arg or "sa"),
        }
        if key not in factories:
            raise ValueError(f"unknown preconditioner {spec!r}; choose from {', '.join(PRECONDITIONER_NAMES)}")
        if isinstance(A, LinearOperator):
            raise TypeError(f"preconditioner {spec!r} needs the entries of A; A is a LinearOperator")
        return factories[key]().setup(A, dtype=dtype, share=share)
    if isinstance(spec, Preconditioner):
        if spec.shape is None:
            return spec.setup(A, dtype=dtype)
        if spec.shape[0] != n:
            raise ValueError(f"preconditioner of shape {spec.shape} does not match A of shape {A.shape}")
        return spec
    return OperatorPreconditioner(spec, n=n, dtype=dtype).setup(A, dtype=dtype)
