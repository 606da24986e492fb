"""Unrolled-PCG training loss for the learned IC factor.

The data and Frobenius losses (:mod:`.ic_gnn`) measure how close M = L L^T
is to A~; what a user pays for is PCG iterations. This loss runs ``k``
iterations of PCG on A~ x = b with M = L L^T (float64, x0 = 0) for a block of
right-hand sides and returns the mean over iterations k/2 <= j < k and over
the block of log(||r_j|| / ||b||): the log of the residual reduction PCG
reaches, which falls when M^{-1} A~'s spectrum lets PCG converge faster.
Gradients flow through every iteration; the preconditioner solves use the
native triangular solves, with the adjoint

    z = M^{-1} r,  u = M^{-1} g  =>  dl/dL_ij = -(u_i (L^T z)_j + z_i (L^T u)_j)

(summed over the block) on L's pattern only, so a step costs ~4k sparse
triangular solves per right-hand side, not a dense factor.
"""
from __future__ import annotations

import numpy as np
import torch

from .ic_gnn import FactorGraph, factor_transpose_matvec, scaled_matvec


class FactorPattern:
    """Where the edge values and the diagonal of L go in tril(A~)'s CSR arrays (diagonal last per row)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        n = len(self.indptr) - 1
        self.diag_pos = torch.from_numpy(self.indptr[1:] - 1)
        off = np.ones(len(self.indices), dtype=bool)
        off[self.indptr[1:] - 1] = False
        self.off_pos = torch.from_numpy(np.flatnonzero(off))
        if not np.array_equal(self.indices[self.indptr[1:] - 1], np.arange(n)):
            raise ValueError("the pattern must store the diagonal last in every row")

    def csr(self, l_off: torch.Tensor, l_diag: torch.Tensor):
        """L as a native CsrMatrix (float64) from its edge and diagonal values."""
        from krylearn import _kernels

        data = torch.empty(len(self.indices), dtype=torch.float64)
        data[self.off_pos] = l_off.detach().to("cpu", torch.float64)
        data[self.diag_pos] = l_diag.detach().to("cpu", torch.float64)
        return _kernels.CsrMatrix(self.indptr, self.indices, data.numpy(), len(self.indptr) - 1)


def _factor_solve(L, r: torch.Tensor) -> torch.Tensor:
    """(L L^T)^{-1} r, column by column with the native triangular solves."""
    from krylearn import _kernels

    block = np.array(r.detach().cpu().numpy(), dtype=np.float64, order="F")
    for col in block.T:  # Fortran order: each column is contiguous
        _kernels.trsv(L, col, col, True)
        _kernels.trsv(L, col, col, True, transpose=True)
    return torch.from_numpy(block).to(r.device)


class _PreconditionerSolve(torch.autograd.Function):
    """z = (L L^T)^{-1} r, differentiable in L's values and in r."""

    @staticmethod
    def forward(ctx, l_off, l_diag, r, graph, L):
        z = _factor_solve(L, r)
        ctx.graph, ctx.L = graph, L
        ctx.save_for_backward(l_off, l_diag, z)
        return z

    @staticmethod
    def backward(ctx, grad_z):
        l_off, l_diag, z = ctx.saved_tensors
        g = ctx.graph
        u = _factor_solve(ctx.L, grad_z)
        w, v = factor_transpose_matvec(g, l_off, l_diag, z), factor_transpose_matvec(g, l_off, l_diag, u)
        grad_off = -(u[g.rows] * w[g.cols] + z[g.rows] * v[g.cols]).sum(1)
        grad_diag = -(u * w + z * v).sum(1)
        return grad_off, grad_diag, u, None, None


def unrolled_pcg_loss(graph: FactorGraph, pattern: FactorPattern, l_off, l_diag, b: torch.Tensor,
                      steps: int) -> torch.Tensor:
    """Mean of log(||r_j|| / ||b||) over PCG iterations steps/2 <= j < steps and the columns of ``b``
    (A~ x = b, M = L L^T, x0 = 0), differentiable in (l_off, l_diag)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    l_off, l_diag, b = l_off.double(), l_diag.double(), b.double()
    L = pattern.csr(l_off, l_diag)

    def solve(r):
        return _PreconditionerSolve.apply(l_off, l_diag, r, graph, L)

    b_norm = b.norm(dim=0)
    r = b
    z = solve(r)
    p = z
    rz = (r * z).sum(0)
    logs = []
    for j in range(steps):
        Ap = scaled_matvec(graph, p)
        alpha = rz / (p * Ap).sum(0)
        r = r - alpha * Ap
        if 2 * j >= steps - 1:
            logs.append(torch.log(r.norm(dim=0) / b_norm).mean())
        if j + 1 == steps:
            break
        z = solve(r)
        rz_new = (r * z).sum(0)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return torch.stack(logs).mean()
