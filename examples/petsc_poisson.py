"""Solve a distributed 2D Poisson problem with a PETSc KSP configured from
the options database, e.g. with a krylearn preconditioner:

    mpiexec -n 2 python examples/petsc_poisson.py -m 256 -options_file examples/learned_ic.opts

Prints iterations, the true relative residual and ||x||_2 (rank 0)."""
import sys

import petsc4py

petsc4py.init(sys.argv)
from petsc4py import PETSc  # noqa: E402


def poisson2d(m: int) -> PETSc.Mat:
    """5-point Laplacian on an m x m grid, rows distributed by PETSc."""
    n = m * m
    A = PETSc.Mat().createAIJ([n, n], nnz=5, comm=PETSc.COMM_WORLD)
    A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
    A.setOption(PETSc.Mat.Option.SPD, True)
    start, end = A.getOwnershipRange()
    for row in range(start, end):
        i, j = divmod(row, m)
        A.setValue(row, row, 4.0)
        for ii, jj in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= ii < m and 0 <= jj < m:
                A.setValue(row, ii * m + jj, -1.0)
    A.assemble()
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
