"""The trainable ``grid`` network of one group: the tensors of :func:`nirvana.grid.tensor_shapes`
as :class:`~nirvana.quant.QuantizedTensors` with one learned step per grid level and per
synthesis tensor. Grids start at zero (Cool-chic and C3 do the same), the per-pixel layers
as PyTorch's default, the residual convolutions near zero (so they start as the identity).

Example:
    >>> from nirvana.grid import GridConfig
    >>> net = GridNet(GridConfig(levels=2, hidden=4, layers=1, convs=1, context=0), 2, 6, 8,
    ...               torch.Generator().manual_seed(0))
    >>> frames, symbols = net.predict()
    >>> frames.shape, symbols.shape
    (torch.Size([2, 3, 6, 8]), torch.Size([171]))
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .context import FEATURES, PHASES, ContextWeights, float_laplace, phase_features, phase_values
from .grid import GridConfig, context_start, prediction, synthesize, tensor_shapes, upsample_levels
from .motion import estimate
from .quant import QuantizedModel, QuantizedTensors
from .rate import laplace_mass_bits, tensor_bits

GRID_STEP = 1 / 16  # initial quantization step of grid values (learned per level)
CONV_INIT = 0.01  # bound of the residual convolutions' initial weights
CONTEXT_STEP = 1 / 256  # initial quantization step of the context model's later tensors


class GridNet(QuantizedModel):
    """One group's latent grids and synthesis network, quantized, in file order."""

    def __init__(self, cfg: GridConfig, group_size: int, height: int, width: int,
                 generator: torch.Generator, init_bits: int = 8):
        super().__init__()
        self.cfg, self.group_size, self.height, self.width = cfg, group_size, height, width
        inits, steps = [], []
        shapes = tensor_shapes(cfg, group_size, height, width)
        # the motion tensor (last) is searched, not trained: it stays out of the quantized tensors
        self.motion = torch.zeros(shapes.pop(), dtype=torch.int32) if cfg.motion else None
        self.base: torch.Tensor | float = 0.5  # what the frames are rendered on
        self.context_at = context_start(cfg)
        bound = 0.0  # the last weight's bound, which its bias shares
        for i, shape in enumerate(shapes):
            if i < cfg.levels:
                inits.append(torch.zeros(shape))
                steps.append(GRID_STEP)
                continue
            if self.context_at is not None and i >= self.context_at:
                # the context model starts at a constant Laplace(0, 1): only its first layer
                # is random, so that its second layer gets gradients
                first = i == self.context_at
                bound = 1.0 / math.sqrt(FEATURES) if first else CONTEXT_STEP * 2 ** (init_bits - 1)
                inits.append((torch.rand(shape, generator=generator) * 2 - 1) * bound if first
                             else torch.zeros(shape))
                steps.append(bound / 2 ** (init_bits - 1))
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
        return synthesize(features, tensors[levels:], self.cfg, self.base), symbols

    def set_motion(self, reference: torch.Tensor, frames: torch.Tensor, bit_cost: float) -> None:
        """Render the next (warm) group on the motion prediction of ``frames`` ``(n, 3, H, W)``
        from ``reference`` (the previous group's last decoded frame); its grids restart from
        zero, as they code what the prediction misses. ``bit_cost``: what one bit of motion is
        worth in squared error (:func:`nirvana.motion.estimate`). Key groups are fresh models:
        no motion, rendered on mid-gray."""
        self.motion.zero_()
        n = frames.shape[0]
        self.motion[:n] = estimate(reference.cpu(), frames.cpu(), self.cfg.motion, bit_cost)
        self.base = prediction([self.motion], self.cfg, reference, self.group_size)
        with torch.no_grad():
            self.quant.weight[:sum(self.sizes[:self.cfg.levels])] = 0

    def integer_latents(self) -> list[np.ndarray]:
        extra = [] if self.motion is None else [self.motion.numpy().copy()]
        return super().integer_latents() + extra

    def steps(self) -> list[float]:
        return super().steps() + ([] if self.motion is None else [1.0])

    def carry(self, flat: torch.Tensor) -> torch.Tensor:
        """A flat vector (weights or latents in file order) with every grid level's time
        slots replaced by its last one: the previous group's state carried to the next group
        (the decoder's ``CARRIED`` prediction, :mod:`codec.bitstream.group`)."""
        parts = list(flat.split(self.sizes))
        for i in range(self.cfg.levels):
            level = parts[i].view(self.quant.shapes[i])
            parts[i] = level[:, -1:].expand_as(level).reshape(-1)
        return torch.cat(parts)


    def coded_bits(self, symbols: torch.Tensor, references: list[torch.Tensor]) -> torch.Tensor:
        """Estimated bits of the group: per tensor the cheapest coding, where a grid level may
        also be coded by the context model (:mod:`nirvana.context`)."""
        bits = tensor_bits(symbols, self.sizes, references)
        if self.context_at is None:
            return bits.sum()
        levels = self.cfg.levels
        parts = self.quant.split(symbols)
        steps = torch.exp(self.quant.log_step[self.context_at:])
        weights = ContextWeights(*(p * s for p, s in zip(parts[self.context_at:], steps)))
        previous = self.quant.split(references[0]) if references else [None] * levels
        context = []
        for level in range(levels):
            values = parts[level]
            coarser = parts[level + 1] if level + 1 < levels else None
            level_bits = 0
            slots = values.shape[1]
            planes = values.reshape(-1, *values.shape[2:])  # every time slot at once
            for phase in range(PHASES):
                f = phase_features(values, coarser, previous[level], 0, phase, self.cfg.context_inputs, slots)
                mean, log2_scale = float_laplace(f, weights, level)
                x = phase_values(planes, phase)
                level_bits = level_bits + laplace_mass_bits(x, mean, log2_scale).sum()
            context.append(level_bits)
        return torch.minimum(bits[:levels], torch.stack(context)).sum() + bits[levels:].sum()
