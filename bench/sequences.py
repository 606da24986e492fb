"""Seeded sequences of related linear systems (the workloads of Krylov recycling).

Each generator returns a list of :class:`LinearSystem` (A, b, params): A a
canonical float64 ``csr_array``, b the right-hand side and ``params`` the
coefficient field that made A (what :mod:`krylearn.solvers.sorting` compares).
All systems of one call share n and the sparsity pattern; the fields are
independent draws, so the order in which they come is arbitrary, as in SKR.

Families (SKR, Wang et al. ICLR 2024, section 5):

- :func:`darcy_sequence`: -div(exp(g) grad u) = 1 on the unit square, g a
  Gaussian random field, 5-point finite volumes (SPD).
- :func:`helmholtz_sequence`: -lap u - k(x)^2 u = f with wavenumber
  k = k0 (1 + delta g) (symmetric indefinite).
- :func:`thermal_sequence`: one implicit Euler step of the heat equation on an
  irregular (disk with a hole) domain with conductivity exp(Chebyshev series)
  (SPD).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .problems import _canonical, diffusion2d, poisson2d


@dataclass
class LinearSystem:
    """One member of a sequence: A x = b, made from the parameter field ``params``."""

    A: sp.csr_array
    b: np.ndarray
    params: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def gaussian_random_field(m: int, rng: np.random.Generator, alpha: float = 2.0, tau: float = 3.0) -> np.ndarray:
    """Unit-variance periodic GRF on an m x m grid with covariance (-lap + tau^2)^(-alpha).

    Spectral synthesis: complex white noise times sqrt(S(k)),
    S(k) = (4 pi^2 |k|^2 + tau^2)^(-alpha), inverse FFT, real part, scaled so
    that every point has variance 1.
    """
    if m < 2:
        raise ValueError(f"grid size m must be >= 2, got {m}")
    freq = np.fft.fftfreq(m, d=1.0 / m)
    k2 = freq[:, None] ** 2 + freq[None, :] ** 2
    spectrum = (4.0 * np.pi**2 * k2 + tau**2) ** (-alpha)
    noise = rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m))
    field_ = np.fft.ifft2(np.sqrt(spectrum) * noise).real
    return field_ * (m * m) / np.sqrt(spectrum.sum())


def _grid_side(n: int) -> int:
    m = int(round(np.sqrt(n)))
    if m * m != n or m < 4:
        raise ValueError(f"n must be a perfect square >= 16 (an m x m grid), got {n}")
    return m


def darcy_sequence(count: int, n: int = 6400, *, sigma: float = 1.0, seed: int = 0) -> list[LinearSystem]:
    """Darcy flow -div(kappa grad u) = 1, kappa = exp(sigma g), g a GRF; n = m^2 cells.

    ``params`` is the log-permeability sigma g (m x m). The system is scaled by
    h^2 (b = h^2 ones), Dirichlet walls.
    """
    m = _grid_side(n)
    rng = np.random.default_rng(seed)
    b = np.full(n, 1.0 / (m + 1) ** 2)
    systems = []
    for i in range(count):
        logk = sigma * gaussian_random_field(m, rng)
        systems.append(LinearSystem(diffusion2d(np.exp(logk)), b.copy(), logk, {"family": "darcy", "index": i}))
    return systems


def helmholtz_sequence(
    count: int, n: int = 2500, *, k0: float = 6.0, delta: float = 0.2, seed: int = 0
) -> list[LinearSystem]:
    """Helmholtz -lap u - k(x)^2 u = f on the unit square, k = k0 (1 + delta g), g a GRF.

    5-point Laplacian with Dirichlet walls, scaled by h^2: A = L - h^2 diag(k^2).
    With k0 = 6, k^2 ~ 36 lies between the two lowest Dirichlet eigenvalues
    (2 pi^2 ~ 19.7 and 5 pi^2 ~ 49): A is indefinite and some draws are close
    to singular. Restarted GMRES(40) needs thousands of iterations at
    n = 2,500 and stagnates at n = 10,000.
    f is a Gaussian source at (0.3, 0.6); ``params`` is k (m x m).
    """
    m = _grid_side(n)
    h = 1.0 / (m + 1)
    rng = np.random.default_rng(seed)
    lap = poisson2d(m)
    xs = np.arange(1, m + 1) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    b = h * h * np.exp(-((X - 0.3) ** 2 + (Y - 0.6) ** 2) / 0.01).ravel()
    systems = []
    for i in range(count):
        k = k0 * (1.0 + delta * gaussian_random_field(m, rng))
        A = _canonical(lap - sp.diags_array(h * h * (k * k).ravel()))
        systems.append(LinearSystem(A, b.copy(), k, {"family": "helmholtz", "index": i}))
    return systems


def _chebyshev_field(m: int, coeffs: np.ndarray) -> np.ndarray:
    """sum_ij c_ij T_i(x) T_j(y) on the cell centres of [-1, 1]^2."""
    t = np.linspace(-1.0, 1.0, m + 2)[1:-1]
    return np.polynomial.chebyshev.chebgrid2d(t, t, coeffs)


def thermal_domain(m: int) -> np.ndarray:
    """Boolean m x m mask of the irregular domain: the unit disk minus an off-centre hole."""
    t = np.linspace(-1.0, 1.0, m + 2)[1:-1]
    X, Y = np.meshgrid(t, t, indexing="ij")
    return (X**2 + Y**2 < 0.95**2) & ((X - 0.3) ** 2 + (Y + 0.2) ** 2 > 0.3**2)


def thermal_sequence(
    count: int, m: int = 100, *, degree: int = 4, dt: float = 1e-3, seed: int = 0
) -> list[LinearSystem]:
    """One implicit Euler step of u_t = div(kappa grad u) + 1 on an irregular domain.

    kappa = exp(sum_{i+j<=degree} c_ij T_i(x) T_j(y)), c_ij ~ N(0, 1/(1+i+j)^2);
    the domain is :func:`thermal_domain` on an m x m grid (cells outside are
    held at u = 0). A = (h^2/dt) I + K(kappa) restricted to the domain (SPD),
    b = h^2 (1 + u_prev/dt) with u_prev a fixed smooth profile.
    ``params`` is log kappa on the grid (m x m).
    """
    if m < 8:
        raise ValueError(f"grid size m must be >= 8, got {m}")
    rng = np.random.default_rng(seed)
    h = 2.0 / (m + 1)
    mask = thermal_domain(m).ravel()
    cells = np.flatnonzero(mask)
    t = np.linspace(-1.0, 1.0, m + 2)[1:-1]
    X, Y = np.meshgrid(t, t, indexing="ij")
    u_prev = np.cos(0.5 * np.pi * X) * np.cos(0.5 * np.pi * Y)
    b = (h * h * (1.0 + u_prev / dt)).ravel()[cells]
    i, j = np.meshgrid(np.arange(degree + 1), np.arange(degree + 1), indexing="ij")
    scale = np.where(i + j <= degree, 1.0 / (1.0 + i + j), 0.0)
    systems = []
    for idx in range(count):
        logk = _chebyshev_field(m, scale * rng.standard_normal(scale.shape))
        K = diffusion2d(np.exp(logk))[cells][:, cells]
        A = _canonical(K + sp.diags_array(np.full(cells.size, h * h / dt)))
        systems.append(LinearSystem(A, b.copy(), logk, {"family": "thermal", "index": idx}))
    return systems


FAMILIES = {"darcy": darcy_sequence, "helmholtz": helmholtz_sequence, "thermal": thermal_sequence}
