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


def render_frames(weights: list[torch.Tensor], grid: PatchGrid, cfg: NetworkConfig,
                  count: int) -> torch.Tensor:
    """Render the first ``count`` frames of a group: ``(count, 3, H, W)`` floats about [0, 1].

    >>> from nirvana.network import NirvanaNet
    >>> cfg = NetworkConfig(patch_size=8, hidden=16, channels=4)
    >>> net = NirvanaNet(cfg, torch.Generator().manual_seed(0))
    >>> render_frames(net.exact_weights(), PatchGrid(10, 13, 8), cfg, 2).shape
    torch.Size([2, 3, 10, 13])
    """
    coords = grid.centres().to(weights[0].device)
    patches = torch.cat([render(weights, coords[i:i + PATCH_CHUNK], cfg)[:, :count]
                         for i in range(0, coords.shape[0], PATCH_CHUNK)])
    return grid.from_patches(patches)
