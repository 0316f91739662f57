"""Quantized weights: integer latents times one learned step per tensor.

All of a network's tensors live in one flat weight vector with one step per tensor; the
network uses ``round(w / s) · s``, with a straight-through gradient for the rounding (the
step's gradient is the rounding error, as in LSQ). The latents ``round(w / s)`` are exactly
the integers that the file stores, and ``s`` is stored as float32, so the coded network is
the trained one. Keeping the parameter in weight units lets one Adam learning rate suit
every layer, whatever its step.

Why one flat vector: a small network trains at a rate set by kernel launches, not
arithmetic, on a GPU above all. Rounding, the rate estimate and the optimizer then each
cost a few kernels per iteration instead of a few per tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .network import weights_from_integers
from .rate import coded_bits


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, with the identity as gradient."""
    return x + (torch.round(x) - x).detach()


class QuantizedTensors(nn.Module):
    """A list of tensors coded as ``round(w / s) · s``, one step ``s`` per tensor.

    >>> q = QuantizedTensors([torch.tensor([0.26, -0.51]), torch.tensor([[1.0]])], [0.25, 0.5])
    >>> [t.tolist() for t in q.integers()], q.step_values()
    ([[1, -2], [[2]]], [0.25, 0.5])
    """

    def __init__(self, inits: Sequence[torch.Tensor], steps: Sequence[float]):
        super().__init__()
        self.shapes = [tuple(t.shape) for t in inits]
        self.sizes = [t.numel() for t in inits]
        self.weight = nn.Parameter(torch.cat([t.detach().float().flatten() for t in inits]))
        self.log_step = nn.Parameter(torch.tensor([math.log(s) for s in steps], dtype=torch.float32))

    def element_steps(self) -> torch.Tensor:
        """The step of every element of the flat weight vector."""
        # expand + cat (not indexing): its backward is a plain sum per tensor, deterministic on CUDA
        steps = torch.exp(self.log_step)
        return torch.cat([s.expand(n) for s, n in zip(steps.unbind(), self.sizes)])

    def forward(self, noise: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The flat latents (integer values, straight-through gradients) and the dequantized
        tensors in their shapes. Given a ``noise`` generator (on the weights' device), rounding
        is replaced by its training proxy, uniform noise in [-½, ½) steps: smooth gradients
        early in training, reproducible from the generator's seed."""
        steps = self.element_steps()
        scaled = self.weight / steps
        if noise is not None:
            symbols = scaled + (torch.rand(scaled.shape, generator=noise, device=scaled.device) - 0.5)
        else:
            symbols = round_ste(scaled)
        return symbols, self.split(symbols * steps)

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat vector → views in the tensors' shapes."""
        return [t.view(shape) for t, shape in zip(flat.split(self.sizes), self.shapes)]

    def flat_integers(self) -> torch.Tensor:
        """All latents ``round(w / s)`` as one flat float tensor on the weights' device."""
        with torch.no_grad():
            return torch.round(self.weight / self.element_steps())

    def integers(self) -> list[np.ndarray]:
        """The rounded latents as int32 arrays in the tensors' shapes: what the file codes."""
        return [q.to(torch.int32).cpu().numpy() for q in self.split(self.flat_integers())]

    def step_values(self) -> list[float]:
        """The steps as the float32 values the file stores."""
        return [float(v) for v in torch.exp(self.log_step.detach()).cpu().numpy()]

    def exact(self) -> list[torch.Tensor]:
        """The coded tensors, rebuilt by the decoder's own function from the file's values."""
        return weights_from_integers(self.integers(), self.step_values(), self.weight.device)


class QuantizedModel(nn.Module):
    """What the fitting loop needs of any kind's trainable model, around its ``quant``
    (a :class:`QuantizedTensors` holding every coded tensor in file order). Subclasses add
    ``prepare(frames)``, ``predict(noise)`` and ``mask`` (:mod:`nirvana.fit`)."""

    quant: QuantizedTensors

    @property
    def sizes(self) -> list[int]:
        """Element counts of the tensors, in file order."""
        return self.quant.sizes

    def exact_weights(self) -> list[torch.Tensor]:
        """The tensors exactly as a decoder rebuilds them from the file."""
        return self.quant.exact()

    def integer_latents(self) -> list[np.ndarray]:
        return self.quant.integers()

    def steps(self) -> list[float]:
        return self.quant.step_values()

    def coded_bits(self, symbols: torch.Tensor, references: Sequence[torch.Tensor]) -> torch.Tensor:
        """Estimated bits of the coded tensors (:func:`nirvana.rate.coded_bits`)."""
        return coded_bits(symbols, self.sizes, references)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [self.quant.weight]

    def step_parameters(self) -> list[nn.Parameter]:
        return [self.quant.log_step]
