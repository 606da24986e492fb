"""Seeded SPD problem families for learned preconditioners.

Every family maps ``(n, seed)`` to a canonical float64 ``scipy.sparse.csr_array``
whose size is close to ``n`` (grids round to the nearest m^d, meshes to the
nearest point count). The same ``(family, n, seed)`` always gives the same
matrix. Training families:

- ``diffusion2d``: -div(kappa grad u) on the unit square, 5-point finite
  volumes (``bench.problems.diffusion2d``), kappa = exp(sigma g) with g a
  unit-variance Gaussian random field (sigma in [0.5, 2.5], correlation length
  in [0.02, 0.2]).
- ``diffusion3d``: the same on the unit cube, 7-point stencil (correlation
  length in [0.03, 0.2]).
- ``heat_fem``: one implicit-Euler heat step M + dt K(kappa) with P1 finite
  elements (scikit-fem) on an unstructured Delaunay triangulation of jittered
  points in the unit square, Dirichlet boundary, log-normal kappa,
  dt log-uniform in [1e-3, 1e-1].
- ``synthetic``: NeuralIF's A = B B^T + 1e-3 I with B sparse random
  (3 nonzeros per row, N(0, 1) values), about 1% dense at n = 1000.

Hold-out families (never trained on; generalisation checks):
``diffusion2d_rough`` (sigma 3, correlation 0.015), ``diffusion2d_contrast``
(binary inclusions of contrast 1e4), ``diffusion3d_rough`` (sigma 3, correlation 0.02), ``heat_fem_lshape``
(L-shaped domain, larger dt range) and ``synthetic_dense`` (5 nonzeros per
row of B).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .problems import _canonical, diffusion2d, high_contrast2d


def random_field(points: np.ndarray, rng: np.random.Generator, correlation: float, n_features: int = 64) -> np.ndarray:
    """Unit-variance Gaussian random field with squared-exponential covariance of
    length ``correlation`` evaluated at ``points`` (shape (k, d)), by random
    Fourier features: g(x) = sqrt(2/F) sum_f cos(w_f . x + phi_f), w_f ~ N(0, I/l^2)."""
    points = np.atleast_2d(points)
    omega = rng.normal(scale=1.0 / correlation, size=(n_features, points.shape[1]))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_features)
    return np.sqrt(2.0 / n_features) * np.cos(points @ omega.T + phase).sum(axis=1)


def _lognormal(points, rng, sigma_range, correlation_range) -> np.ndarray:
    sigma = rng.uniform(*sigma_range)
    correlation = rng.uniform(*correlation_range)
    return np.exp(sigma * random_field(points, rng, correlation))


def _cell_centres(m: int, dim: int) -> np.ndarray:
    c = (np.arange(m) + 0.5) / m
    return np.stack(np.meshgrid(*([c] * dim), indexing="ij"), axis=-1).reshape(-1, dim)


def diffusion3d(kappa: np.ndarray) -> sp.csr_array:
    """-div(kappa grad u) on the cell grid of ``kappa`` (shape m x m x m), 7-point
    finite volumes with harmonic face averages and Dirichlet walls."""
    kappa = np.asarray(kappa, dtype=np.float64)
    if kappa.ndim != 3 or len(set(kappa.shape)) != 1 or np.any(kappa <= 0) or not np.all(np.isfinite(kappa)):
        raise ValueError("kappa must be a cubic 3-D array of positive finite values")
    m = kappa.shape[0]
    idx = np.arange(m**3).reshape(m, m, m)
    diag = np.zeros_like(kappa)
    rows, cols, vals = [], [], []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = kappa[tuple(lo)], kappa[tuple(hi)]
        face = 2.0 * a * b / (a + b)
        diag[tuple(lo)] += face
        diag[tuple(hi)] += face
        first, last = [slice(None)] * 3, [slice(None)] * 3
        first[axis], last[axis] = 0, -1
        diag[tuple(first)] += 2 * kappa[tuple(first)]
        diag[tuple(last)] += 2 * kappa[tuple(last)]
        rows += [idx[tuple(lo)].ravel(), idx[tuple(hi)].ravel()]
        cols += [idx[tuple(hi)].ravel(), idx[tuple(lo)].ravel()]
        vals += [-face.ravel(), -face.ravel()]
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    n = m**3
    return _canonical(sp.coo_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)))


def lognormal_diffusion2d(n: int, seed: int, sigma=(0.5, 2.5), correlation=(0.02, 0.2)) -> sp.csr_array:
    """2-D log-normal diffusion on an m x m grid, m = round(sqrt(n))."""
    m = max(2, int(round(np.sqrt(n))))
    rng = np.random.default_rng(seed)
    return diffusion2d(_lognormal(_cell_centres(m, 2), rng, sigma, correlation).reshape(m, m))


def lognormal_diffusion3d(n: int, seed: int, sigma=(0.5, 2.5), correlation=(0.03, 0.2)) -> sp.csr_array:
    """3-D log-normal diffusion on an m x m x m grid, m = round(cbrt(n))."""
    m = max(2, int(round(np.cbrt(n))))
    rng = np.random.default_rng(seed)
    return diffusion3d(_lognormal(_cell_centres(m, 3), rng, sigma, correlation).reshape(m, m, m))


def _delaunay_mesh(n: int, rng: np.random.Generator, lshape: bool):
    """Unstructured triangle mesh with about ``n`` interior points: a jittered
    lattice (jitter 0.35 h, boundary points fixed) in the unit square (or the
    L-shape without the upper-right quarter), Delaunay-triangulated."""
    from scipy.spatial import Delaunay

    skfem = _skfem()
    area = 0.75 if lshape else 1.0
    k = max(4, int(round(np.sqrt(n / area))) + 1)  # lattice spacing h = 1/k
    if lshape:
        k += k % 2  # 0.5 is a lattice line (the re-entrant edges)
    h = 1.0 / k
    grid = np.stack(np.meshgrid(np.arange(k + 1) * h, np.arange(k + 1) * h, indexing="ij"), -1).reshape(-1, 2)
    fixed = np.isclose(grid, 0.0).any(axis=1) | np.isclose(grid, 1.0).any(axis=1)
    if lshape:
        fixed |= (np.isclose(grid[:, 0], 0.5) & (grid[:, 1] >= 0.5 - 1e-12)) | \
                 (np.isclose(grid[:, 1], 0.5) & (grid[:, 0] >= 0.5 - 1e-12))
        keep = ~((grid[:, 0] > 0.5 + h / 2) & (grid[:, 1] > 0.5 + h / 2))
        grid, fixed = grid[keep], fixed[keep]
    grid[~fixed] += rng.uniform(-0.35 * h, 0.35 * h, size=(int((~fixed).sum()), 2))
    tri = Delaunay(grid).simplices
    if lshape:
        centroid = grid[tri].mean(axis=1)
        tri = tri[~((centroid[:, 0] > 0.5) & (centroid[:, 1] > 0.5))]
    used, tri = np.unique(tri, return_inverse=True)  # drop points no triangle uses
    return skfem.MeshTri(grid[used].T.copy(), tri.reshape(-1, 3).T.copy())


def _skfem():
    from krylearn._extras import require

    return require("skfem", "fem")


def heat_fem(n: int, seed: int, lshape: bool = False, dt_range=(1e-3, 1e-1)) -> sp.csr_array:
    """One implicit-Euler heat step M + dt K(kappa) on an unstructured triangle
    mesh (P1 elements, homogeneous Dirichlet boundary condensed out)."""
    skfem = _skfem()
    from skfem.helpers import dot, grad

    rng = np.random.default_rng(seed)
    mesh = _delaunay_mesh(n, rng, lshape)
    basis = skfem.Basis(mesh, skfem.ElementTriP1())
    sigma, correlation = rng.uniform(0.5, 1.5), rng.uniform(0.05, 0.2)
    field_rng = np.random.default_rng(rng.integers(2**63))
    omega = field_rng.normal(scale=1.0 / correlation, size=(64, 2))
    phase = field_rng.uniform(0.0, 2.0 * np.pi, size=64)
    dt = float(np.exp(rng.uniform(np.log(dt_range[0]), np.log(dt_range[1]))))

    @skfem.BilinearForm
    def heat_step(u, v, w):
        x, y = w.x
        g = np.sqrt(2.0 / 64) * np.cos(x[..., None] * omega[:, 0] + y[..., None] * omega[:, 1] + phase).sum(-1)
        return u * v + dt * np.exp(sigma * g) * dot(grad(u), grad(v))

    A = heat_step.assemble(basis)
    interior = basis.complement_dofs(basis.get_dofs())
    return _canonical(sp.csr_array(A)[interior][:, interior])


def neuralif_synthetic(n: int, seed: int, nnz_per_row: int = 3) -> sp.csr_array:
    """NeuralIF's synthetic SPD matrix A = B B^T + 1e-3 I, B with ``nnz_per_row``
    N(0, 1) entries per row at uniformly random columns."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz_per_row)
    cols = rng.integers(0, n, size=n * nnz_per_row)
    B = sp.csr_array(sp.coo_array((rng.normal(size=n * nnz_per_row), (rows, cols)), shape=(n, n)))
    return _canonical(B @ B.T + 1e-3 * sp.eye_array(n))


def _contrast2d(n: int, seed: int) -> sp.csr_array:
    return high_contrast2d(max(2, int(round(np.sqrt(n)))), contrast=1e4, inclusions=12, seed=seed)


@dataclass(frozen=True)
class Family:
    """A seeded generator ``make(n, seed)``, its training size and its hold-out variants."""

    name: str
    make: Callable[[int, int], sp.csr_array]
    train_n: int
    holdouts: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {
    "diffusion2d": Family("diffusion2d", lognormal_diffusion2d, 4096, ("diffusion2d_rough", "diffusion2d_contrast")),
    "diffusion3d": Family("diffusion3d", lognormal_diffusion3d, 4096, ("diffusion3d_rough",)),
    "heat_fem": Family("heat_fem", heat_fem, 4096, ("heat_fem_lshape",)),
    "synthetic": Family("synthetic", neuralif_synthetic, 1000, ("synthetic_dense",)),
    "diffusion2d_rough": Family("diffusion2d_rough", lambda n, s: lognormal_diffusion2d(n, s, (3.0, 3.0), (0.015, 0.015)), 4096),
    "diffusion2d_contrast": Family("diffusion2d_contrast", _contrast2d, 4096),
    "diffusion3d_rough": Family("diffusion3d_rough", lambda n, s: lognormal_diffusion3d(n, s, (3.0, 3.0), (0.02, 0.02)), 4096),
    "heat_fem_lshape": Family("heat_fem_lshape", lambda n, s: heat_fem(n, s, lshape=True, dt_range=(1e-2, 1.0)), 4096),
    "synthetic_dense": Family("synthetic_dense", lambda n, s: neuralif_synthetic(n, s, nnz_per_row=5), 1000),
}
TRAINING_FAMILIES = ("diffusion2d", "diffusion3d", "heat_fem", "synthetic")


def make_matrix(family: str, n: int | None = None, seed: int = 0) -> sp.csr_array:
    """One matrix of ``family`` with about ``n`` unknowns (default: its training size)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    return spec.make(int(n or spec.train_n), int(seed))
