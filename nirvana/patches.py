"""Cutting frame groups into P×P patches and putting them back.

Frames are zero-padded on the right and bottom to a multiple of the patch size. Patches are
numbered row by row; patch ``i`` sits at row ``i // nx`` and column ``i % nx`` of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PatchGrid:
    """How a ``height × width`` frame is tiled by ``patch × patch`` patches.

    >>> g = PatchGrid(144, 176, 32)
    >>> (g.rows, g.cols, g.padded_height, g.padded_width)
    (5, 6, 160, 192)
    """

    height: int
    width: int
    patch: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.patch)

    @property
    def cols(self) -> int:
        return -(-self.width // self.patch)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def padded_height(self) -> int:
        return self.rows * self.patch

    @property
    def padded_width(self) -> int:
        return self.cols * self.patch

    def centres(self) -> torch.Tensor:
        """Patch centre coordinates ``(count, 2)`` as (x, y) in [-1, 1], row by row."""
        ys = (torch.arange(self.rows, dtype=torch.float32) * 2 + 1) / self.rows - 1
        xs = (torch.arange(self.cols, dtype=torch.float32) * 2 + 1) / self.cols - 1
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)

    def pad(self, frames: torch.Tensor) -> torch.Tensor:
        """Zero-pad ``(..., H, W)`` frames to the padded size."""
        dh = self.padded_height - self.height
        dw = self.padded_width - self.width
        return torch.nn.functional.pad(frames, (0, dw, 0, dh))

    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        """Remove the padding from ``(..., Hp, Wp)`` frames."""
        return frames[..., : self.height, : self.width]

    def to_patches(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, C, H, W)`` frames → ``(count, T, C, P, P)`` patches (pads first)."""
        t, c = frames.shape[:2]
        p = self.patch
        x = self.pad(frames).reshape(t, c, self.rows, p, self.cols, p)
        return x.permute(2, 4, 0, 1, 3, 5).reshape(self.count, t, c, p, p)

    def from_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``(count, T, C, P, P)`` patches → ``(T, C, H, W)`` frames (crops the padding)."""
        _, t, c, p, _ = patches.shape
        x = patches.reshape(self.rows, self.cols, t, c, p, p).permute(2, 3, 0, 4, 1, 5)
        return self.crop(x.reshape(t, c, self.padded_height, self.padded_width))

    def valid_mask(self) -> torch.Tensor:
        """``(count, 1, 1, P, P)`` mask: 1 on real pixels, 0 on padding."""
        ones = torch.ones(1, 1, self.height, self.width)
        return self.to_patches(ones)
