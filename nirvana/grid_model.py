"""The trainable ``grid`` network of one group: the tensors of :func:`nirvana.grid.tensor_shapes`
as :class:`~nirvana.quant.QuantizedTensors` with one learned step per grid level and per
synthesis tensor. Grids start at zero (Cool-chic and C3 do the same), the per-pixel layers
as PyTorch's default, the residual convolutions near zero (so they start as the identity).

Example:
    >>> from nirvana.grid import GridConfig
    >>> net = GridNet(GridConfig(levels=2, hidden=4, layers=1, convs=1), 2, 6, 8,
    ...               torch.Generator().manual_seed(0))
    >>> frames, symbols = net.predict()
    >>> frames.shape, symbols.shape
    (torch.Size([2, 3, 6, 8]), torch.Size([171]))
"""

from __future__ import annotations

import math

import torch

from .grid import GridConfig, synthesize, tensor_shapes, upsample_levels
from .quant import QuantizedModel, QuantizedTensors

GRID_STEP = 1 / 16  # initial quantization step of grid values (learned per level)
CONV_INIT = 0.01  # bound of the residual convolutions' initial weights


class GridNet(QuantizedModel):
    """One group's latent grids and synthesis network, quantized, in file order."""

    def __init__(self, cfg: GridConfig, group_size: int, height: int, width: int,
                 generator: torch.Generator, init_bits: int = 8):
        super().__init__()
        self.cfg, self.group_size, self.height, self.width = cfg, group_size, height, width
        inits, steps = [], []
        shapes = tensor_shapes(cfg, group_size, height, width)
        bound = 0.0  # the last weight's bound, which its bias shares
        for i, shape in enumerate(shapes):
            if i < cfg.levels:
                inits.append(torch.zeros(shape))
                steps.append(GRID_STEP)
                continue
            if len(shape) == 4:
                bound = CONV_INIT
            elif len(shape) == 2:
                bound = 1.0 / math.sqrt(shape[1])
            # a bias (1-D) keeps the bound of the weight before it
            inits.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
            steps.append(bound / 2 ** (init_bits - 1))
        self.quant = QuantizedTensors(inits, steps)
        self.mask = None  # every predicted pixel is a real pixel

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """The training target in :meth:`predict`'s layout: frames as they are."""
        return frames

    def predict(self, noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All G frames ``(G, 3, H, W)`` from the quantized tensors (or their noisy proxy),
        and the flat symbols behind them (for the rate term)."""
        symbols, tensors = self.quant(noise)
        levels = self.cfg.levels
        features = upsample_levels(tensors[:levels], self.group_size, self.height, self.width)
        return synthesize(features, tensors[levels:], self.cfg), symbols

    def carry(self, flat: torch.Tensor) -> torch.Tensor:
        """A flat vector (weights or latents in file order) with every grid level's time
        slots replaced by its last one: the previous group's state carried to the next group
        (the decoder's ``CARRIED`` prediction, :mod:`codec.bitstream.group`)."""
        parts = list(flat.split(self.sizes))
        for i in range(self.cfg.levels):
            level = parts[i].view(self.quant.shapes[i])
            parts[i] = level[:, -1:].expand_as(level).reshape(-1)
        return torch.cat(parts)

