"""The residual U-Net of DCDM (Kaneda et al., ICML 2023), 2D and 3D.

f maps a residual on the grid to a search direction that approximates
A^{-1} r up to scale. Layout (``channels`` = 16, 3x3(x3) convolutions):

    in:     linear conv (1 -> C) of r
    down:   per level, ``blocks[0]`` residual blocks  h = m * (h + conv(relu(conv(relu(h))))),
            then a 2x average pool of h and of the fluid fraction m
            (``levels`` times; the paper uses one level)
    coarse: ``blocks[1]`` residual blocks
    up:     per level, nearest 2x upsampling added to that level's skip, ``blocks[2]`` residual blocks
    out:    1x1 conv (C -> 1), zeroed on solid cells

No convolution has a bias and the fluid fraction m of each level multiplies
the activations, so f(c r) = c f(r) for c > 0 and f(0) = 0: the direction
never contains a pattern that does not come from r (a biased net can settle
on such a pattern and make DCDM stagnate), and the obstacles enter as
walls the features cannot leak through. Grid sizes are padded (as solid)
to a multiple of 2^levels and cropped back. With one level the receptive
field is about 20 cells; each further level doubles it at little cost (a
level has 2^-dim of the cells above it).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv(dim: int, cin: int, cout: int, kernel: int) -> nn.Module:
    cls = nn.Conv2d if dim == 2 else nn.Conv3d
    return cls(cin, cout, kernel, padding=kernel // 2, bias=False)


class ResidualBlock(nn.Module):
    """m * (h + conv(relu(conv(relu(h))))), a pre-activation residual block on the fluid cells."""

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.conv1 = _conv(dim, channels, channels, 3)
        self.conv2 = _conv(dim, channels, channels, 3)

    def forward(self, h: torch.Tensor, fluid: torch.Tensor) -> torch.Tensor:
        return fluid * (h + self.conv2(F.relu(self.conv1(F.relu(h)))))


class _Stack(nn.ModuleList):
    def forward(self, h: torch.Tensor, fluid: torch.Tensor) -> torch.Tensor:
        for block in self:
            h = block(h, fluid)
        return h


class ResidualUNet(nn.Module):
    """DCDM direction network on a ``dim``-D grid: residual and fluid mask
    (both (batch, 1, *grid)) in, direction (batch, 1, *grid) out."""

    def __init__(self, dim: int = 2, channels: int = 16, blocks: tuple[int, int, int] = (2, 3, 2), levels: int = 1):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        if channels < 1 or len(blocks) != 3 or min(blocks) < 0 or levels < 1:
            raise ValueError("channels and levels must be positive and blocks three non-negative counts")
        self.dim, self.channels, self.levels = dim, int(channels), int(levels)
        self.blocks = tuple(int(b) for b in blocks)

        def stack(count: int) -> _Stack:
            return _Stack([ResidualBlock(dim, channels) for _ in range(count)])

        self.inp = _conv(dim, 1, channels, 3)
        self.down = nn.ModuleList([stack(blocks[0]) for _ in range(levels)])
        self.coarse = stack(blocks[1])
        self.up = nn.ModuleList([stack(blocks[2]) for _ in range(levels)])
        self.out = _conv(dim, channels, 1, 1)

    def config(self) -> dict:
        """Constructor arguments, stored with the weights."""
        return {"dim": self.dim, "channels": self.channels, "blocks": list(self.blocks), "levels": self.levels}

    def forward(self, r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if r.dim() != self.dim + 2 or r.shape[1] != 1 or mask.shape != r.shape:
            raise ValueError(f"expected residual and mask of shape (batch, 1, *grid) with {self.dim} grid axes, "
                             f"got {tuple(r.shape)} and {tuple(mask.shape)}")
        grid, multiple = r.shape[2:], 2**self.levels
        pad = []
        for size in reversed(grid):  # F.pad lists the last axis first
            pad += [0, -size % multiple]
        fluid = F.pad(mask, pad)
        h = fluid * self.inp(F.pad(r, pad))
        pool = F.avg_pool2d if self.dim == 2 else F.avg_pool3d
        skips = []
        for blocks in self.down:
            h = blocks(h, fluid)
            skips.append((h, fluid))
            h, fluid = pool(h, 2), pool(fluid, 2)
        h = self.coarse(h, fluid)
        for blocks, (skip, fluid) in zip(reversed(self.up), reversed(skips)):
            h = blocks(skip + F.interpolate(h, scale_factor=2, mode="nearest"), fluid)
        q = self.out(h)
        crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in grid)
        return q[crop] * mask
