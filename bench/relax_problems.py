"""Instance sequences for bandit-tuned relaxation (Khodak et al., ICLR 2024).

(i) Shifted Laplacians A_t = L + c_t I: L the 5-point Laplacian of the unit
square scaled by 1/h^2 (h = 1/(m+1), Dirichlet), c_t = c_max * Beta(a, b).
The "high" and "low" variance variants share the mean c_max / 4 (Beta(0.5,
1.5) and Beta(20, 60)). For this consistently ordered matrix Young's theory
gives the optimal SOR parameter omega* = 2 / (1 + sqrt(1 - rho_J^2)) with the
Jacobi spectral radius rho_J = (4/h^2) cos(pi h) / (4/h^2 + c).

(ii) The 2D heat equation u_t = kappa(t) Laplace(u) + f(x, y, t) on the unit
square, zero Dirichlet walls, Crank-Nicolson in time:

    (I + dt kappa_{n+1/2} / 2 L) u_{n+1} = (I - dt kappa_{n+1/2} / 2 L) u_n + dt f(t_{n+1/2}),

with a time-varying diffusion kappa(t) in [0.01, 10] (the context, within the paper's [0, 10]), a moving
Gaussian heat source, and u_0 = 0. Each step is one SPD system whose natural
initial guess is u_n (warm start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .problems import poisson2d

SHIFT_VARIANTS = {"high": (0.5, 1.5), "low": (20.0, 60.0)}


def scaled_laplacian(m: int) -> sp.csr_array:
    """(1/h^2) * 5-point Laplacian on an m x m interior grid of the unit square, h = 1/(m+1)."""
    if m < 2:
        raise ValueError(f"grid size m must be >= 2, got {m}")
    return sp.csr_array(poisson2d(m) * float((m + 1) ** 2))


def shift_sequence(T: int, *, variance: str = "high", c_max: float = 500.0, seed: int = 0) -> np.ndarray:
    """T shifts c_t = c_max * Beta(a, b) of the chosen variance variant."""
    if variance not in SHIFT_VARIANTS:
        raise ValueError(f"variance must be one of {tuple(SHIFT_VARIANTS)}, got {variance!r}")
    a, b = SHIFT_VARIANTS[variance]
    return c_max * np.random.default_rng(seed).beta(a, b, size=int(T))


def shifted(L: sp.csr_array, c: float) -> sp.csr_array:
    """L + c I (same sparsity pattern; L must have a full diagonal)."""
    A = L.copy()
    A.setdiag(L.diagonal() + c)
    return A


def young_omega(m: int, c: float) -> float:
    """Optimal SOR omega for the shifted scaled Laplacian (Young's formula)."""
    d = 4.0 * (m + 1) ** 2
    rho = d * math.cos(math.pi / (m + 1)) / (d + c)
    return 2.0 / (1.0 + math.sqrt(1.0 - rho * rho))


def kappa_schedule(steps: int, *, seed: int = 0) -> np.ndarray:
    """kappa at the midpoints of ``steps`` steps, in [0.01, 10]: a slow oscillation of
    log10(kappa) over [-2, 1] with random bursts (correlated over 25 steps). The
    log scale spans the regimes where SSOR-PCG prefers omega near 1 (A ~ I) up to
    omega ~ 1.7 (A ~ dt kappa L / 2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) + 0.5
    slow = -0.5 + 1.5 * np.sin(2 * np.pi * t / 400.0) * np.cos(2 * np.pi * t / 1700.0)
    bursts = np.convolve(rng.standard_normal(steps + 24), np.ones(25) / 5.0, mode="valid")  # std 1
    return 10.0 ** np.clip(slow + 0.3 * bursts, -2.0, 1.0)


@dataclass
class HeatProblem:
    """Crank-Nicolson heat sequence on an m x m grid with ``steps`` time steps of size dt."""

    m: int = 64
    steps: int = 1000
    dt: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.m < 2 or self.steps < 1 or not self.dt > 0:
            raise ValueError("HeatProblem needs m >= 2, steps >= 1, dt > 0")
        self.L = scaled_laplacian(self.m)
        self.identity = sp.eye_array(self.m * self.m, format="csr")
        self.kappa = kappa_schedule(self.steps, seed=self.seed)
        h = 1.0 / (self.m + 1)
        x = np.arange(1, self.m + 1) * h
        self._X, self._Y = np.meshgrid(x, x, indexing="ij")

    @property
    def n(self) -> int:
        return self.m * self.m

    def matrix(self, step: int) -> sp.csr_array:
        """I + dt kappa / 2 L of step ``step`` (0-based)."""
        return sp.csr_array(self.identity + (0.5 * self.dt * self.kappa[step]) * self.L)

    def forcing(self, time: float) -> np.ndarray:
        """A Gaussian source of width 0.05 circling the centre once per unit time."""
        cx, cy = 0.5 + 0.25 * math.cos(2 * math.pi * time), 0.5 + 0.25 * math.sin(2 * math.pi * time)
        return (100.0 * np.exp(-((self._X - cx) ** 2 + (self._Y - cy) ** 2) / (2 * 0.05**2))).ravel()

    def rhs(self, step: int, u: np.ndarray) -> np.ndarray:
        """(I - dt kappa / 2 L) u_n + dt f(t_{n+1/2})."""
        half = 0.5 * self.dt * self.kappa[step]
        return u - half * (self.L @ u) + self.dt * self.forcing((step + 0.5) * self.dt)

    def initial(self) -> np.ndarray:
        return np.zeros(self.n)

    def reference_trajectory(self) -> np.ndarray:
        """u_0 .. u_steps from sparse direct solves, shape (steps + 1, n)."""
        from scipy.sparse.linalg import splu

        u = np.empty((self.steps + 1, self.n))
        u[0] = self.initial()
        for step in range(self.steps):
            u[step + 1] = splu(sp.csc_matrix(self.matrix(step))).solve(self.rhs(step, u[step]))
        return u
