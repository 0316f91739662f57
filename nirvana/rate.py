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
LN2 = math.log(2.0)
MASS_FLOOR = 2.0 ** -16  # the least probability the coder's tables give a symbol


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


class _LaplaceMassBits(torch.autograd.Function):
    """:func:`laplace_mass_bits` with its gradient worked out in the forward pass: autograd
    would keep a dozen cell-sized temporaries of the formula and run their backward one by
    one; this keeps two. Its bits and gradients match autograd's to float rounding."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mean: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
        inv = torch.exp2(-log2_scale)  # 1/b
        diff = x - mean
        d = diff.abs()
        e1 = (d - 0.5).abs_().mul_(inv).neg_().exp_()  # e^(-|d - ½|/b): the cell's nearer edge
        e2 = (d + 0.5).mul_(inv).neg_().exp_()  # e^(-(d + ½)/b): its farther edge
        tail = torch.expm1(-inv).neg_()  # 1 - e^(-1/b)
        near = d < 0.5  # the cell holds the mean
        mass = torch.where(near, (e1 + e2).mul_(-0.5).add_(1), e1 * tail * 0.5)
        live = mass >= MASS_FLOOR  # the floor passes no gradient
        floored = mass.clamp_min_(MASS_FLOOR)
        bits = torch.log2(floored).neg_()
        if any(ctx.needs_input_grad):
            over = inv / (floored * LN2)
            # d bits / d|x - mean| and d bits / d log2_scale; in the tails the mass is
            # ½ e^(-(d - ½)/b) (1 - e^(-1/b)), whose logarithm is linear in d
            g_d = torch.where(near, (e1 - e2).mul_(over).mul_(0.5), inv * LOG2E)
            g_log2_scale = torch.where(near, ((0.5 - d) * e1 + (d + 0.5) * e2).mul_(over).mul_(0.5 * LN2),
                                       tail.reciprocal_().sub_(1).sub_(d).add_(0.5).mul_(inv))
            ctx.save_for_backward(g_d.mul_(diff.sign_()).mul_(live), g_log2_scale.mul_(live))
        return bits

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        g_x, g_log2_scale = ctx.saved_tensors
        g_x = g_x * grad
        return g_x, -g_x, g_log2_scale * grad


def laplace_mass_bits(x: torch.Tensor, mean: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
    """Bits of integer-valued ``x`` under a Laplace ``(mean, 2^log2_scale)`` integrated over
    ``x ± ½``, at most 16 (the coder's tables give every symbol at least 2^-16). The three
    tensors have one shape.

    >>> round(float(laplace_mass_bits(torch.tensor(0.), torch.tensor(0.), torch.tensor(-4.))), 4)
    0.0005
    """
    return _LaplaceMassBits.apply(x, mean, log2_scale)
