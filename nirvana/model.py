"""The trainable network of one group: the tensors of :func:`~nirvana.network.tensor_shapes`
as :class:`~nirvana.quant.QuantizedTensors`, initialised as SIREN (stem) and PyTorch's default
(convolution heads) prescribe, rendered by :func:`nirvana.network.render`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import NetworkConfig
from .network import render, tensor_shapes
from .patches import PatchGrid
from .quant import QuantizedModel, QuantizedTensors


def _init_bound(index: int, shape: tuple[int, ...], cfg: NetworkConfig) -> float:
    """Uniform init bound: SIREN's for the stem, PyTorch's default for the last layers."""
    n_stem = 2 * cfg.hidden_layers
    fan_in = shape[1] if len(shape) > 1 else None
    if index < n_stem:
        layer_fan_in = 2 if index < 2 else cfg.hidden
        return 1.0 / layer_fan_in if index < 2 else math.sqrt(6.0 / layer_fan_in) / cfg.w0
    if fan_in is None:  # a bias: same bound as its weight
        return _init_bound(index - 1, tensor_shapes(cfg)[index - 1], cfg)
    receptive = int(np.prod(shape[1:]))
    return 1.0 / math.sqrt(receptive)


class NirvanaNet(QuantizedModel):
    """One group's network with quantized weights.

    >>> cfg = NetworkConfig(patch_size=8, hidden=16, channels=4)
    >>> net = NirvanaNet(cfg, torch.Generator().manual_seed(0))
    >>> pixels, latents = net(torch.zeros(5, 2))
    >>> pixels.shape, latents.shape
    (torch.Size([5, 3, 3, 8, 8]), torch.Size([2467]))
    """

    def __init__(self, cfg: NetworkConfig, generator: torch.Generator, init_bits: int = 8):
        super().__init__()
        self.cfg = cfg
        inits, steps = [], []
        for i, shape in enumerate(tensor_shapes(cfg)):
            bound = _init_bound(i, shape, cfg)
            inits.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
            steps.append(bound / 2 ** (init_bits - 1))
        self.quant = QuantizedTensors(inits, steps)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 2)`` coordinates → pixels ``(N, G, 3, P, P)`` rendered with the
        straight-through weights, and the flat latents behind them (for the rate term)."""
        symbols, weights = self.quant()
        return render([w[None] for w in weights], coords, self.cfg)[0], symbols

    def attach(self, grid: PatchGrid) -> NirvanaNet:
        """Fix the frame tiling that :meth:`prepare` and :meth:`predict` use (the fitter's API)."""
        self.grid = grid
        self.register_buffer("coords", grid.centres(), persistent=False)
        self.register_buffer("mask", grid.valid_mask(), persistent=False)
        return self

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)`` frames → the training target ``(N, n, 3, P, P)`` in patches."""
        return self.grid.to_patches(frames)

    def predict(self, noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every patch ``(N, G, 3, P, P)`` and the flat latents (for the rate term)."""
        symbols, weights = self.quant(noise)
        return render([w[None] for w in weights], self.coords, self.cfg)[0], symbols



def siren_model(cfg: NetworkConfig, group_size: int, height: int, width: int,
                generator: torch.Generator, init_bits: int = 8) -> NirvanaNet:
    """The ``siren`` kind's trainable model for ``height × width`` frames (the registry's trainer)."""
    cfg = NetworkConfig(group_size, cfg.patch_size, cfg.hidden, cfg.hidden_layers, cfg.channels, cfg.w0)
    return NirvanaNet(cfg, generator, init_bits).attach(PatchGrid(height, width, cfg.patch_size))
