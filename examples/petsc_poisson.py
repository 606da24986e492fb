"""Solve a distributed 2D Poisson problem with a PETSc KSP configured from
the options database, e.g. with a krylearn preconditioner:

    mpiexec -n 2 python examples/petsc_poisson.py -m 256 -options_file examples/learned_ic.opts

Prints iterations, the true relative residual and ||x||_2 (rank 0)."""
import sys

import numpy as np
import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402


def poisson2d(m: int) -> PETSc.Mat:
    """5-point Laplacian on an m x m grid; each rank assembles its own rows
    (vectorised CSR, so n = 1M takes a second)."""
    n = m * m
    ownership = PETSc.Vec().createMPI(n, comm=PETSc.COMM_WORLD)
    start, end = ownership.getOwnershipRange()
    rows = np.arange(start, end)
    i, j = np.divmod(rows, m)
    columns = [rows - m, rows - 1, rows, rows + 1, rows + m]  # sorted column order
    valid = [i > 0, j > 0, np.ones_like(rows, bool), j < m - 1, i < m - 1]
    values = [-1.0, -1.0, 4.0, -1.0, -1.0]
    mask = np.stack(valid, axis=1)
    indices = np.stack(columns, axis=1)[mask].astype(PETSc.IntType)
    data = np.broadcast_to(np.array(values), mask.shape)[mask].astype(PETSc.ScalarType)
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(PETSc.IntType)
    A = PETSc.Mat().createAIJ(size=((end - start, n), (end - start, n)), csr=(indptr, indices, data),
                              comm=PETSc.COMM_WORLD)
    A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    A.setOption(PETSc.Mat.Option.SPD, True)
    return A


def main() -> None:
    options = PETSc.Options()
    m = options.getInt("m", 64)
    A = poisson2d(m)
    x, b = A.createVecs()
    b.set(1.0)
    ksp = PETSc.KSP().create(PETSc.COMM_WORLD)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.setTolerances(rtol=1e-8, atol=0.0, max_it=20000)
    ksp.setFromOptions()
    t0 = PETSc.Log.getTime()
    ksp.solve(b, x)
    seconds = PETSc.Log.getTime() - t0
    r = b.duplicate()
    A.mult(x, r)
    r.aypx(-1.0, b)
    PETSc.Sys.Print(
        f"n={m * m} ranks={PETSc.COMM_WORLD.getSize()} ksp={ksp.getType()} pc={ksp.getPC().getType()} "
        f"reason={ksp.getConvergedReason()} iterations={ksp.getIterationNumber()} "
        f"true_rel_residual={r.norm() / b.norm():.3e} xnorm={x.norm():.12e} seconds={seconds:.4f}"
    )


if __name__ == "__main__":
    main()
