"""Quantized weight tensors: integer latents times a per-tensor step.

Every weight and bias of the network is a :class:`QuantTensor`. It holds a real-valued
weight ``w`` and a learned step ``s``; the network uses ``round(w / s) · s``, with a
straight-through gradient for the rounding (the step's gradient is the rounding error, as in
LSQ). The latent ``round(w / s)`` is exactly the integer tensor that the file stores, and
``s`` is stored as float32, so the coded network is the trained one. Keeping the parameter
in weight units lets one Adam learning rate suit every layer, whatever its step.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, with the identity as gradient."""
    return x + (torch.round(x) - x).detach()


class QuantTensor(nn.Module):
    """One quantized tensor: ``round(latent) * step``.

    >>> q = QuantTensor(torch.tensor([0.26, -0.51]), step=0.25)
    >>> q.integers().tolist(), q.step_value()
    ([1, -2], 0.25)
    """

    def __init__(self, init: torch.Tensor, step: float):
        super().__init__()
        self.weight = nn.Parameter(init.detach().float().clone())
        self.log_step = nn.Parameter(torch.tensor(math.log(step), dtype=torch.float32))

    @property
    def shape(self) -> torch.Size:
        return self.weight.shape

    def step(self) -> torch.Tensor:
        return torch.exp(self.log_step)

    def symbols(self) -> torch.Tensor:
        """The latents ``round(w / s)``, straight-through: integer values, real gradients."""
        return round_ste(self.weight / self.step())

    def forward(self) -> torch.Tensor:
        return self.symbols() * self.step()

    def exact(self) -> torch.Tensor:
        """The coded weight, computed exactly as a decoder computes it."""
        q = torch.from_numpy(self.integers()).float().to(self.weight.device)
        return q * torch.tensor(self.step_value(), dtype=torch.float32, device=q.device)

    def integers(self) -> np.ndarray:
        """The rounded latents as int32: what the file codes."""
        q = torch.round(self.weight.detach() / self.step().detach())
        return q.to(torch.int32).cpu().numpy()

    def step_value(self) -> float:
        """The step as the float32 value the file stores."""
        return float(np.float32(self.step().detach().cpu().item()))
