"""Rendering a group's frames from its weights: the path shared by encoder and decoder.

The encoder's reported reconstruction and the decoder's output both come from
:func:`render_frames`, with the same patch chunking, so they are the same pixels on the same
kind of device. Patches are rendered in fixed-size chunks to bound memory at high resolution.
"""

from __future__ import annotations

import torch

from .config import NetworkConfig
from .network import render
from .patches import PatchGrid

PATCH_CHUNK = 1024  # patches rendered at once; fixed so every caller computes identically


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` floats → uint8, the rounding every output path uses."""
    return torch.round(frames.clamp(0, 1) * 255).to(torch.uint8)


def render_groups(weights: list[list[torch.Tensor]], grid: PatchGrid, cfg: NetworkConfig) -> torch.Tensor:
    """Render B groups at once: B weight lists → ``(B, G, 3, H, W)`` floats about [0, 1].

    >>> from nirvana.model import NirvanaNet
    >>> cfg = NetworkConfig(patch_size=8, hidden=16, channels=4)
    >>> nets = [NirvanaNet(cfg, torch.Generator().manual_seed(i)) for i in range(2)]
    >>> render_groups([n.exact_weights() for n in nets], PatchGrid(10, 13, 8), cfg).shape
    torch.Size([2, 3, 3, 10, 13])
    """
    stacked = [torch.stack(ts) for ts in zip(*weights)]
    coords = grid.centres().to(stacked[0].device)
    patches = torch.cat([render(stacked, coords[i:i + PATCH_CHUNK], cfg)
                         for i in range(0, coords.shape[0], PATCH_CHUNK)], dim=1)
    return torch.stack([grid.from_patches(p) for p in patches])


def render_frames(weights: list[torch.Tensor], grid: PatchGrid, cfg: NetworkConfig,
                  count: int) -> torch.Tensor:
    """Render the first ``count`` frames of one group: ``(count, 3, H, W)``."""
    return render_groups([weights], grid, cfg)[0, :count]
