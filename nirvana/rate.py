"""Differentiable estimate of the bits that the entropy coder will spend on a tensor.

Integer symbols (rounded latents, or their residuals against the previous group) are
modelled by a discretized Laplace whose scale is the tensor's mean absolute value, the
maximum-likelihood fit. The symbols arrive through the straight-through rounding, so the
gradient pulls latents towards zero (or towards the previous group's value), which is what
makes them cheap to code. The real coder (codec.entropy) uses exact per-tensor tables and
usually spends a little less than this estimate.
"""

from __future__ import annotations

import math

import torch

LOG2E = 1.0 / math.log(2.0)


def laplace_bits(symbols: torch.Tensor) -> torch.Tensor:
    """Estimated bits of integer-valued ``symbols`` under a fitted discrete Laplace.

    >>> round(float(laplace_bits(torch.zeros(100))), 2)
    0.0
    """
    scale = symbols.detach().abs().mean().clamp_min(1e-3)
    a = symbols.abs()
    p_zero = -torch.expm1(-0.5 / scale)
    bits_zero = -torch.log2(p_zero.clamp_min(1e-12))
    bits_other = -torch.log2((0.5 * -torch.expm1(-1.0 / scale)).clamp_min(1e-12)) + (a - 0.5) / scale * LOG2E
    return torch.where(a < 0.5, bits_zero, bits_other).sum()


def tensor_bits(symbols: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """Bits of one tensor as it will be coded: the cheaper of intra and residual."""
    intra = laplace_bits(symbols)
    if previous is None:
        return intra
    return torch.minimum(intra, laplace_bits(symbols - previous))
