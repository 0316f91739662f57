"""Differentiable estimate of the bits that the entropy coder will spend on each tensor.

Integer symbols (rounded latents, or their residuals against the previous group) are
modelled per tensor by a discretized Laplace whose scale is the tensor's mean absolute
value, the maximum-likelihood fit. The symbols arrive through the straight-through
rounding, so the gradient pulls latents towards zero (or towards the previous group's
value), which is what makes them cheap to code. The real coder (codec.entropy) uses exact
per-tensor tables and usually spends a little less than this estimate.

The tensors come as one flat vector and their sizes (:mod:`nirvana.quant`). Because the
symbols are integers, a tensor's bits need only two sums over it: of ``|q|`` and of the
nonzero count. ``P(0) = 1 - e^(-1/2b)`` and ``P(±k) = ½ (1 - e^(-1/b)) e^(-(k-½)/b)``, so
bits = zeros·(-log2 P(0)) + nonzeros·(-log2 ½(1 - e^(-1/b))) + (Σ|q| - ½·nonzeros)/b·log2 e.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LOG2E = 1.0 / math.log(2.0)


def laplace_bits(symbols: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Estimated bits of each tensor of integer-valued ``symbols`` (flat, ``sizes`` long
    runs; one tensor if None) under its fitted discrete Laplace. Returns one value per tensor.

    >>> laplace_bits(torch.zeros(100)).tolist()
    [0.0]
    """
    flat = symbols.flatten()
    sizes = [flat.numel()] if sizes is None else list(sizes)
    a = flat.abs()
    both = torch.stack([a, (a > 0.5).float()])  # one pass of per-tensor sums for both
    sums = torch.stack([part.sum(dim=1) for part in both.split(sizes, dim=1)])
    total, nonzero = sums[:, 0], sums[:, 1]
    count = torch.tensor(sizes, dtype=torch.float32, device=flat.device)
    scale = (total.detach() / count).clamp_min(1e-3)
    bits_zero = -torch.log2((-torch.expm1(-0.5 / scale)).clamp_min(1e-12))
    bits_nonzero = -torch.log2((0.5 * -torch.expm1(-1.0 / scale)).clamp_min(1e-12))
    return ((count - nonzero) * bits_zero + nonzero * bits_nonzero
            + (total - 0.5 * nonzero) / scale * LOG2E)


def tensor_bits(symbols: torch.Tensor, sizes: Sequence[int],
                references: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Bits of each of the flat tensors as they will be coded: per tensor, the cheapest of
    intra and the residual against each of ``references`` (flat predictions from the previous
    group: its latents, and for the grid kind also its latents carried forward in time)."""
    bits = laplace_bits(symbols, sizes)
    for reference in references:
        bits = torch.minimum(bits, laplace_bits(symbols - reference, sizes))
    return bits


def coded_bits(symbols: torch.Tensor, sizes: Sequence[int],
               references: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Total of :func:`tensor_bits`."""
    return tensor_bits(symbols, sizes, references).sum()


def laplace_mass_bits(x: torch.Tensor, mean: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
    """Bits of integer-valued ``x`` under a Laplace ``(mean, 2^log2_scale)`` integrated over
    ``x ± ½``, at most 16 (the coder's tables give every symbol at least 2^-16).

    >>> round(float(laplace_mass_bits(torch.tensor(0.), torch.tensor(0.), torch.tensor(-4.))), 4)
    0.0005
    """
    inv = torch.exp2(-log2_scale)
    d = (x - mean).abs()
    near = 1 - 0.5 * torch.exp(-(0.5 - d).clamp_min(0) * inv) - 0.5 * torch.exp(-(d + 0.5) * inv)
    far = 0.5 * torch.exp(-(d - 0.5).clamp_min(0) * inv) * -torch.expm1(-inv)
    mass = torch.where(d < 0.5, near, far)
    return -torch.log2(mass.clamp_min(2.0 ** -16))
