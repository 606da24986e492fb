"""Pressure-Poisson systems on regular 2D/3D grids with solid obstacles.

This is the projection step of a smoke/fluid simulation on a MAC grid with
unit spacing: the unknowns are the pressures of the fluid cells, and for
every fluid cell i

    sum over its faces f:  (p_i - p_f)  =  -div(u*)_i

where a face to another fluid cell uses that cell's pressure, a face to an
open domain side uses a ghost pressure p = 0 (Dirichlet), and a face to a
solid cell or a closed wall drops out (Neumann, dp/dn = 0). The matrix is
the graph Laplacian of the fluid cells plus one on the diagonal per open
face: symmetric, and positive definite because fluid pockets that touch no
open side (which would make it singular) are filled in as solid.

The unknowns are the fluid cells of ``mask`` in C (row-major) order, so
``x_grid[mask] = x`` maps a solution vector onto the grid.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

SIDES_2D = ("x-", "x+", "y-", "y+")
SIDES_3D = ("x-", "x+", "y-", "y+", "z-", "z+")
OBSTACLE_KINDS = ("box", "sphere", "blob")


@dataclass
class PoissonProblem:
    """One pressure system: ``A`` (CSR, fluid cells only), the fluid ``mask``
    on the grid, the grid ``shape``, a right-hand side ``b`` = -div(u*) and
    the ``open_sides`` carrying the Dirichlet condition."""

    name: str
    A: sp.csr_array
    mask: np.ndarray
    b: np.ndarray
    open_sides: tuple[str, ...]
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.mask.shape)

    @property
    def n(self) -> int:
        return int(self.A.shape[0])


def _sides(dim: int) -> tuple[str, ...]:
    return SIDES_2D if dim == 2 else SIDES_3D


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 2:
        raise ValueError(f"grid shape must have 2 or 3 axes of length >= 2, got {shape}")
    return shape


def _check_open_sides(open_sides, dim: int) -> tuple[str, ...]:
    sides = _sides(dim)
    if open_sides == "all":
        return sides
    open_sides = tuple(open_sides)
    unknown = [s for s in open_sides if s not in sides]
    if unknown or not open_sides:
        raise ValueError(f"open_sides must be 'all' or a non-empty subset of {sides}, got {open_sides}")
    return open_sides


def _open_face_count(shape: tuple[int, ...], open_sides: tuple[str, ...]) -> np.ndarray:
    """Per cell, the number of its faces lying on an open domain side."""
    count = np.zeros(shape, dtype=np.int64)
    for side in open_sides:
        axis, end = "xyz".index(side[0]), side[1]
        index = [slice(None)] * len(shape)
        index[axis] = 0 if end == "-" else -1
        count[tuple(index)] += 1
    return count


def drop_enclosed_fluid(mask: np.ndarray, open_sides="all") -> np.ndarray:
    """Fluid mask with every fluid pocket that touches no open side turned solid
    (such a pocket is a pure-Neumann block: its Laplacian is singular)."""
    mask = np.asarray(mask, dtype=bool)
    open_sides = _check_open_sides(open_sides, mask.ndim)
    labels, count = ndi.label(mask)  # face connectivity, like the stencil
    if count == 0:
        return mask.copy()
    touching = np.unique(labels[(_open_face_count(mask.shape, open_sides) > 0) & mask])
    return np.isin(labels, touching[touching > 0])


def pressure_matrix(mask: np.ndarray, open_sides="all") -> sp.csr_array:
    """The SPD pressure matrix of the fluid cells of ``mask`` (see module doc).

    Raises ValueError for an all-solid grid or a fluid pocket with no open side."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim not in (2, 3):
        raise ValueError("mask must be a boolean 2-D or 3-D array (True = fluid cell)")
    open_sides = _check_open_sides(open_sides, mask.ndim)
    n = int(mask.sum())
    if n == 0:
        raise ValueError("the domain is all solid: there are no fluid cells to solve for")
    if not np.array_equal(drop_enclosed_fluid(mask, open_sides), mask):
        raise ValueError("a fluid region touches no open side, so its pressure is undetermined (singular matrix); "
                         "pass the mask through drop_enclosed_fluid first")
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(n)
    diag = _open_face_count(mask.shape, open_sides)[mask].astype(np.float64)
    rows, cols = [], []
    for axis in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        both = mask[tuple(lo)] & mask[tuple(hi)]  # faces between two fluid cells
        a, c = index[tuple(lo)][both], index[tuple(hi)][both]
        rows += [a, c]
        cols += [c, a]
        np.add.at(diag, a, 1.0)
        np.add.at(diag, c, 1.0)
    rows = np.concatenate(rows + [np.arange(n)])
    cols = np.concatenate(cols + [np.arange(n)])
    vals = np.concatenate([-np.ones(len(rows) - n), diag])
    A = sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(n, n)))
    A.sum_duplicates()
    A.sort_indices()
    return A


def _cell_centres(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij"))


def random_obstacles(shape: Sequence[int], rng: np.random.Generator, count: int = 4,
                     kinds: Sequence[str] = OBSTACLE_KINDS, max_fraction: float = 0.35) -> np.ndarray:
    """A solid mask (True = solid) of ``count`` random obstacles of the given
    ``kinds``: axis-aligned boxes, spheres/discs, and blobs (a thresholded
    smoothed noise field). Obstacle sizes scale with the grid."""
    shape = _check_shape(shape)
    unknown = [k for k in kinds if k not in OBSTACLE_KINDS]
    if unknown or not kinds:
        raise ValueError(f"obstacle kinds must be a non-empty subset of {OBSTACLE_KINDS}, got {tuple(kinds)}")
    size = min(shape)
    centres = _cell_centres(shape)
    solid = np.zeros(shape, dtype=bool)
    for _ in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        centre = rng.uniform(0.15, 0.85, size=len(shape)) * np.array(shape)
        if kind == "box":
            half = rng.uniform(0.04, 0.14, size=len(shape)) * size
            inside = np.all(np.abs(centres - centre.reshape((-1,) + (1,) * len(shape))) <= half.reshape((-1,) + (1,) * len(shape)), axis=0)
        elif kind == "sphere":
            radius = rng.uniform(0.05, 0.14) * size
            inside = np.sum((centres - centre.reshape((-1,) + (1,) * len(shape))) ** 2, axis=0) <= radius**2
        else:
            radius = rng.uniform(0.08, 0.18) * size
            noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma=max(1.0, 0.05 * size), mode="wrap")
            noise /= noise.std() + 1e-300
            dist = np.sqrt(np.sum((centres - centre.reshape((-1,) + (1,) * len(shape))) ** 2, axis=0)) / radius
            inside = dist + 0.35 * noise <= 1.0
        if (solid | inside).mean() <= max_fraction:
            solid |= inside
    return solid


def divergence_rhs(mask: np.ndarray, rng: np.random.Generator, open_sides="all",
                   plume: float = 1.0, smoothness: float | None = None) -> np.ndarray:
    """b = -div(u*) on the fluid cells for a face-velocity field u* that is
    zero on solid faces and closed walls: a smooth random flow plus a buoyant
    plume (upward velocity, last axis) rising from a source near the bottom."""
    mask = np.asarray(mask, dtype=bool)
    dim, shape = mask.ndim, mask.shape
    open_sides = _check_open_sides(open_sides, dim)
    sigma = smoothness if smoothness is not None else max(1.0, 0.08 * min(shape))
    centres = _cell_centres(shape)
    source_centre = np.array([0.5 * s for s in shape[:-1]] + [0.15 * shape[-1]]).reshape((-1,) + (1,) * dim)
    source = np.exp(-np.sum((centres - source_centre) ** 2, axis=0) / (2 * (0.06 * min(shape)) ** 2))
    div = np.zeros(shape)
    for axis in range(dim):
        face_shape = list(shape)
        face_shape[axis] += 1
        u = ndi.gaussian_filter(rng.standard_normal(face_shape), sigma=sigma)
        u /= np.abs(u).max() + 1e-300
        if axis == dim - 1:
            pad = [(0, 0)] * dim
            pad[axis] = (1, 0)
            u += plume * np.pad(source, pad, mode="edge")
        # faces touching a solid cell, or a closed wall, carry no flow
        solid_padded = np.pad(~mask, [(1, 1) if a == axis else (0, 0) for a in range(dim)], constant_values=False)
        lo = [slice(None)] * dim
        hi = [slice(None)] * dim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        blocked = solid_padded[tuple(lo)] | solid_padded[tuple(hi)]
        for end, face in (("-", 0), ("+", -1)):
            if f"{'xyz'[axis]}{end}" not in open_sides:
                wall = [slice(None)] * dim
                wall[axis] = face
                blocked[tuple(wall)] = True
        u[blocked] = 0.0
        div += np.diff(u, axis=axis)
    return -div[mask]


def fluid_mask(shape: Sequence[int], solid: np.ndarray | None = None, open_sides="all") -> np.ndarray:
    """Fluid mask of a grid with the given solid cells, enclosed pockets removed."""
    shape = _check_shape(shape)
    mask = np.ones(shape, dtype=bool) if solid is None else ~np.asarray(solid, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"solid mask shape {mask.shape} does not match grid shape {shape}")
    return drop_enclosed_fluid(mask, open_sides)


def make_problem(shape: Sequence[int], solid: np.ndarray | None = None, *, open_sides="all",
                 seed: int = 0, name: str = "custom") -> PoissonProblem:
    """Assemble the pressure system of a grid with the given solid cells and a
    seeded divergence right-hand side."""
    shape = _check_shape(shape)
    open_sides = _check_open_sides(open_sides, len(shape))
    mask = fluid_mask(shape, solid, open_sides)
    A = pressure_matrix(mask, open_sides)
    b = divergence_rhs(mask, np.random.default_rng(seed), open_sides)
    return PoissonProblem(name=name, A=A, mask=mask, b=b, open_sides=open_sides,
                          info={"seed": seed, "solid_fraction": float(1.0 - mask.mean())})


def random_problem(shape: Sequence[int], seed: int, *, count: int = 4, kinds: Sequence[str] = OBSTACLE_KINDS,
                   open_sides="all") -> PoissonProblem:
    """A system with ``count`` random obstacles of ``kinds`` (seeded)."""
    rng = np.random.default_rng(seed)
    solid = random_obstacles(shape, rng, count=count, kinds=kinds)
    return make_problem(shape, solid, open_sides=open_sides, seed=seed + 1,
                        name=f"random-{'+'.join(kinds)}-{seed}")


def _sphere(shape: tuple[int, ...], centre_fraction: Sequence[float], radius_fraction: float) -> np.ndarray:
    centres = _cell_centres(shape)
    centre = (np.asarray(centre_fraction) * np.array(shape)).reshape((-1,) + (1,) * len(shape))
    return np.sum((centres - centre) ** 2, axis=0) <= (radius_fraction * min(shape)) ** 2


def _top_open(dim: int) -> tuple[str, ...]:
    return ("y+",) if dim == 2 else ("z+",)


SCENES = {
    # name: (solid mask builder, open sides builder), both from the grid shape
    "empty": (lambda shape: None, lambda dim: "all"),
    "smoke-box": (lambda shape: None, _top_open),
    "sphere-plume": (lambda shape: _sphere(shape, [0.5] * (len(shape) - 1) + [0.55], 0.15), _top_open),
    "two-spheres": (lambda shape: _sphere(shape, [0.3] * (len(shape) - 1) + [0.4], 0.12)
                    | _sphere(shape, [0.7] * (len(shape) - 1) + [0.65], 0.1), lambda dim: "all"),
}


def scene(name: str, shape: Sequence[int], seed: int = 0) -> PoissonProblem:
    """A fixed scene: ``empty`` (all sides open), ``smoke-box`` (closed box,
    open top), ``sphere-plume`` (plume rising past a sphere in a box with an
    open top), ``two-spheres`` (all sides open)."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; choose from {sorted(SCENES)}")
    shape = _check_shape(shape)
    solid_of, sides_of = SCENES[name]
    problem = make_problem(shape, solid_of(shape), open_sides=sides_of(len(shape)), seed=seed, name=name)
    return problem
