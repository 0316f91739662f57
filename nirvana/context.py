"""The context model of grid values: its features, its exact integer evaluation, its tables.

A grid level ``(C, T, H, W)`` coded with the context model is decoded in passes: for each
time slot ``t`` in order, three phases over the ``(y, x)`` lattice, each one vectorised:

* phase 0, even ``y`` and even ``x``: no spatial neighbour is known yet;
* phase 1, odd ``y`` and odd ``x``: its four diagonal neighbours (phase 0) are known;
* phase 2, the rest: its four axial neighbours (phases 0 and 1) are known.

Every value then gets ``FEATURES`` integer features, all from values decoded before it:

====  =========================================================================
0..3  the four known spatial neighbours (diagonal in phase 1, axial in phase 2;
      zeros in phase 0 and outside the lattice)
4     the same cell at time slot ``t - 1`` (0 at ``t = 0``)
5     the co-located cell of the next-coarser level (0 at the coarsest level)
6     the previous group's value of the same cell (0 in a key group)
7     the previous group's value at its last time slot (0 in a key group)
8, 9  phase flags: 1 in phase 1, 1 in phase 2
====  =========================================================================

A small MLP maps the features to a Laplace ``(mu, log2 b)``, with a learned offset on
``log2 b`` per level: ``(mu, log2 b) = W2 relu(W1 f + b1) + b2``. Training evaluates it in
floats (:func:`float_laplace`). Coding evaluates it in fixed point with ``FRACTION_BITS``
fractional bits (:func:`table_indices`): every operand is an integer of bounded size, and
float64 holds integers below 2^53 exactly, so the products and sums are exact in any order,
on any machine, with any number of threads. ``mu`` is then rounded to a quarter and
``log2 b`` to a quarter octave, which picks one of ``4 × SCALES`` fixed integer frequency
tables (:func:`frequency_table`, built with :mod:`decimal`, whose ``exp`` is correctly
rounded everywhere). The coder (:mod:`codec.context_coder`) codes ``value - floor(mu)``
with that table (from format 7 on, with counts that adapt to the level as it is coded);
``RANGE`` bounds the table and larger residuals are escaped.

This module holds no training code; the decoder imports it.

Example:
    >>> level = torch.zeros(1, 2, 5, 4)
    >>> [phase_features(level, None, None, t=1, phase=p).shape[1] for p in range(PHASES)]
    [6, 4, 10]
    >>> dense_features(level, None, None).shape
    torch.Size([10, 40])
    >>> frequency_table(0, 0)[RANGE - 1:RANGE + 4].tolist()  # residuals -2..2 at b = 1/16
    [1, 11, 65514, 11, 1]
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

FEATURES = 10
FRACTION_BITS = 12  # fixed-point fraction of the weights and of the MLP's outputs
WEIGHT_LIMIT = 1 << 15  # fixed-point weights are clamped to ±this (±8.0)
BIAS_LIMIT = 1 << 27  # fixed-point biases are clamped to ±this
HIDDEN_LIMIT = (1 << 31) - 1  # fixed-point hidden activations are clamped to this
MEAN_LIMIT = 1 << 22  # the mean, in quarters, is clamped to ±this
LOG2_SCALE_MIN, LOG2_SCALE_MAX = -4.0, 5.0  # the Laplace scale runs from 2^-4 to 2^5 ...
SCALES = int((LOG2_SCALE_MAX - LOG2_SCALE_MIN) * 4) + 1  # ... in quarter octaves
MEAN_FRACTIONS = 4  # the mean is rounded to quarters
RANGE = 24  # residuals in -RANGE..RANGE are table symbols; the rest are escaped
TABLE_TOTAL = 1 << 16  # frequencies of a table sum to about this
PHASES = 3
CHUNK = 1 << 16  # cells the integer MLP evaluates at a time


SPATIAL, TEMPORAL, COARSER, PREVIOUS = 1, 2, 4, 8  # bits of a config's ``context_inputs``
ALL_INPUTS = SPATIAL | TEMPORAL | COARSER | PREVIOUS
# each phase as sub-lattices (row offset, column offset), stepping by 2 in both
SUBLATTICES = (((0, 0),), ((1, 1),), ((0, 1), (1, 0)))
DIAGONAL = ((-1, -1), (-1, 1), (1, -1), (1, 1))
AXIAL = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _lattices(height: int, width: int, phase: int) -> list[tuple[int, int, int, int]]:
    """``(row offset, column offset, rows, columns)`` of a phase's sub-lattices."""
    return [(oy, ox, (height - oy + 1) // 2, (width - ox + 1) // 2) for oy, ox in SUBLATTICES[phase]]


def phase_size(height: int, width: int, phase: int) -> int:
    """Cells of one channel and time slot in a phase (the length of :func:`phase_values`)."""
    return sum(ny * nx for _, _, ny, nx in _lattices(height, width, phase))


def phase_values(plane: torch.Tensor, phase: int) -> torch.Tensor:
    """The values of a phase's cells of ``plane`` ``(C, H, W)``, flat in coding order (by
    sub-lattice, then channel, row, column)."""
    return torch.cat([plane[:, oy::2, ox::2].reshape(-1) for oy, ox in SUBLATTICES[phase]])


def fill_phase(plane: torch.Tensor, phase: int, values: torch.Tensor) -> None:
    """Write flat ``values`` into a phase's cells of ``plane`` (inverse of :func:`phase_values`)."""
    start = 0
    for oy, ox in SUBLATTICES[phase]:
        cells = plane[:, oy::2, ox::2]
        cells.copy_(values[start:start + cells.numel()].view_as(cells))
        start += cells.numel()


def phase_columns(level: torch.Tensor, coarser: torch.Tensor | None, previous: torch.Tensor | None,
                  t: int, phase: int, inputs: int = ALL_INPUTS) -> list[list[torch.Tensor | None]]:
    """Features 0..7 of a phase's cells of time slot ``t`` of ``level`` ``(C, T, H, W)``: per
    sub-lattice of the phase, 8 views ``(C, rows, columns)``, None where the feature is zero.
    (The phase flags, features 8 and 9, are the phase itself.)

    ``coarser`` is the next-coarser level ``(C, T', ceil(H/2), ceil(W/2))`` and ``previous``
    the previous group's values of this level (None where they do not exist). Only cells of
    earlier passes are read, so a decoder that has filled those (and left the rest at
    anything) gets the encoder's features. ``inputs`` (bits ``SPATIAL | TEMPORAL | COARSER |
    PREVIOUS``) says which features are used; the others are zero (an ablation, stored in the
    file's config). Training, which knows every value, takes all cells at once
    (:func:`dense_features`).
    """
    C, T, H, W = level.shape
    spatial = phase and inputs & SPATIAL
    padded = F.pad(level[:, t], (1, 1, 1, 1)) if spatial else None  # zeros outside
    above = coarser[:, t * coarser.shape[1] // T] if coarser is not None and inputs & COARSER else None
    before = level[:, t - 1] if inputs & TEMPORAL and t > 0 else None
    use_previous = previous is not None and inputs & PREVIOUS
    out = []
    for oy, ox, ny, nx in _lattices(H, W, phase):
        def cells(x: torch.Tensor, dy: int = 0, dx: int = 0, pad: int = 0) -> torch.Tensor:
            y0, x0 = pad + oy + dy, pad + ox + dx
            return x[:, y0:y0 + 2 * ny - 1:2, x0:x0 + 2 * nx - 1:2]

        columns: list[torch.Tensor | None] = [None] * 4
        if spatial:
            columns = [cells(padded, dy, dx, pad=1) for dy, dx in (DIAGONAL if phase == 1 else AXIAL)]
        columns.append(None if before is None else cells(before))
        # cell (y, x) sits in coarser cell (y // 2, x // 2)
        columns.append(None if above is None else above[:, :ny, :nx])
        columns.append(cells(previous[:, t]) if use_previous else None)
        columns.append(cells(previous[:, -1]) if use_previous else None)
        out.append(columns)
    return out


def phase_features(level: torch.Tensor, coarser: torch.Tensor | None, previous: torch.Tensor | None,
                   t: int, phase: int, inputs: int = ALL_INPUTS) -> torch.Tensor:
    """All ``FEATURES`` features ``(FEATURES, N)`` of :func:`phase_columns`, zeros included,
    in the order of ``phase_values(level[:, t], phase)``."""
    parts = []
    C, _, H, W = level.shape
    for columns, (_, _, ny, nx) in zip(phase_columns(level, coarser, previous, t, phase, inputs),
                                       _lattices(H, W, phase)):
        zeros = level.new_zeros(C, ny, nx)
        parts.append(torch.stack([zeros if c is None else c for c in columns]
                                 + [zeros + (phase == 1), zeros + (phase == 2)]).reshape(FEATURES, -1))
    return torch.cat(parts, dim=1)


def dense_features(level: torch.Tensor, coarser: torch.Tensor | None, previous: torch.Tensor | None,
                   inputs: int = ALL_INPUTS, top: int = 0, bottom: int | None = None) -> torch.Tensor:
    """The features ``(FEATURES, C·T·rows·W)`` of every cell in rows ``top .. bottom - 1``
    (default: all) of ``level`` ``(C, T, H, W)`` at once, in the order of
    ``level[:, :, top:bottom].reshape(-1)``: each cell gets what :func:`phase_features` gives
    it in its own pass. Training knows every value, so it needs no passes; this takes a few
    whole-band operations instead of some hundred small ones per level.
    """
    C, T, H, W = level.shape
    bottom = H if bottom is None else bottom
    rows = bottom - top
    band = level[:, :, top:bottom]
    zeros = level.new_zeros(C, T, rows, W)
    odd_y = torch.arange(top, bottom, device=level.device).remainder(2)[:, None]
    odd_x = torch.arange(W, device=level.device).remainder(2)[None, :]
    diagonal = (odd_y * odd_x).to(level.dtype)  # phase 1
    axial = (odd_y ^ odd_x).to(level.dtype)  # phase 2
    features = [zeros] * 4
    if inputs & SPATIAL:
        lo, hi = max(top - 1, 0), min(bottom + 1, H)  # the band and its neighbour rows
        padded = F.pad(level[:, :, lo:hi], (1, 1, 1 - (top - lo), 1 - (hi - bottom)))

        def at(dy: int, dx: int) -> torch.Tensor:
            return padded[..., 1 + dy:1 + dy + rows, 1 + dx:1 + dx + W]

        features = [at(*d) * diagonal + at(*a) * axial for d, a in zip(DIAGONAL, AXIAL)]
    features.append(F.pad(band[:, :-1], (0, 0, 0, 0, 1, 0)) if inputs & TEMPORAL else zeros)
    if coarser is not None and inputs & COARSER:
        slots = coarser[:, [t * coarser.shape[1] // T for t in range(T)], top // 2:(bottom + 1) // 2]
        cells = slots.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        features.append(cells[..., top % 2:top % 2 + rows, :W])
    else:
        features.append(zeros)
    if previous is not None and inputs & PREVIOUS:
        features += [previous[:, :, top:bottom], previous[:, -1:, top:bottom].expand(C, T, rows, W)]
    else:
        features += [zeros, zeros]
    features += [diagonal.expand(C, T, rows, W), axial.expand(C, T, rows, W)]
    return torch.stack(features).reshape(FEATURES, -1)


@dataclass(frozen=True)
class ContextWeights:
    """The context MLP of one group: ``w1 (hidden, FEATURES)``, ``b1 (hidden,)``, ``w2 (2,
    hidden)``, ``b2 (2,)`` and ``offsets (levels,)`` added to ``log2 b`` per level."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor
    offsets: torch.Tensor


def context_shapes(hidden: int, levels: int) -> list[tuple[int, ...]]:
    """Shapes of the context MLP's tensors, in file order (:class:`ContextWeights`)."""
    return [(hidden, FEATURES), (hidden,), (2, hidden), (2,), (levels,)]


CONTEXT_TENSORS = len(context_shapes(1, 1))


def float_laplace(f: torch.Tensor, w: ContextWeights, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training's ``(mu, log2 b)`` of features ``f`` ``(FEATURES, N)``, ``log2 b`` clamped to
    the tables' range."""
    h = F.relu(w.w1 @ f + w.b1[:, None])
    out = w.w2 @ h + w.b2[:, None]
    return out[0], (out[1] + w.offsets[level]).clamp(LOG2_SCALE_MIN, LOG2_SCALE_MAX)


class FixedPointContext:
    """The context MLP in fixed point, from a group's integer latents and steps.

    Each weight ``latent · step`` becomes ``round(latent · step · 2^FRACTION_BITS)``, clamped;
    the decoder computes the very same integers from the file.
    """

    def __init__(self, latents: list[np.ndarray], steps: list[float], inputs: int = ALL_INPUTS):
        self.inputs = inputs
        scale = float(1 << FRACTION_BITS)

        def fixed(i: int, limit: int) -> torch.Tensor:
            value = latents[i].astype(np.float64) * np.float64(np.float32(steps[i])) * scale
            return torch.from_numpy(np.clip(np.round(value), -limit, limit))

        self.w1, self.b1 = fixed(0, WEIGHT_LIMIT), fixed(1, BIAS_LIMIT)
        self.w2, self.b2 = fixed(2, WEIGHT_LIMIT), fixed(3, BIAS_LIMIT)
        self.offsets = fixed(4, BIAS_LIMIT)

    def table_indices(self, lattices: list[list[torch.Tensor | None]], phase: int, level: int,
                      count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(table, floor_mu)`` (int16, int32) of the ``count`` cells of a pass, from its
        integer-valued float64 :func:`phase_columns`.

        ``table`` in ``0 .. MEAN_FRACTIONS·SCALES - 1`` selects :func:`frequency_table`
        ``(table // SCALES, table % SCALES)``; ``floor_mu`` is what the value is coded against.
        Features are int32 and weights below 2^15, so every sum stays far below 2^53: exact.
        """
        present = [k for k, c in enumerate(lattices[0]) if c is not None]
        bias = (self.b1 + (self.w1[:, 8] if phase == 1 else 0) + (self.w1[:, 9] if phase == 2 else 0))[:, None]
        w1 = self.w1[:, present]

        table = torch.empty(count, dtype=torch.int16)
        mean = torch.empty(count, dtype=torch.int32)
        if not present:
            self._evaluate(bias, w1, torch.zeros(0, count, dtype=torch.float64), level, table, mean)
            return table, mean
        start = 0
        for columns in lattices:  # up to CHUNK cells at a time: few operations, temporaries of a few MB
            used = [columns[k] for k in present]
            channels, rows, width = used[0].shape
            step = max(1, CHUNK // max(1, width))
            buffer = torch.empty(len(used), min(step, rows) * width, dtype=torch.float64)
            for c in range(channels):
                for r in range(0, rows, step):
                    block = [x[c, r:r + step] for x in used]
                    n = block[0].numel()
                    x = buffer[:, :n]
                    torch.stack(block, out=x.view(len(used), *block[0].shape))
                    self._evaluate(bias, w1, x, level, table[start:start + n], mean[start:start + n])
                    start += n
        return table, mean

    def _evaluate(self, bias: torch.Tensor, w1: torch.Tensor, x: torch.Tensor, level: int,
                  table: torch.Tensor, mean: torch.Tensor) -> None:
        """Write the tables and ``floor(mu)`` of the cells of features ``x`` into ``table``
        and ``mean``."""
        one = float(1 << FRACTION_BITS)
        # floor(v / 2^F) of integer-valued float64 v: the product by a power of two is exact,
        # so this is floor division, several times faster than torch.floor_divide on floats
        down = 1.0 / one
        h = torch.addmm(bias, w1, x).clamp_(0, HIDDEN_LIMIT)  # scale 2^F
        out = torch.addmm(self.b2[:, None] * one, self.w2, h).mul_(down).floor_()  # scale 2^F
        half = float(1 << (FRACTION_BITS - 1))
        mean4 = (out[0] * 4 + half).mul_(down).floor_().clamp_(-MEAN_LIMIT, MEAN_LIMIT)
        log4 = ((out[1] + self.offsets[level]) * 4 + half).mul_(down).floor_()
        scale = log4.sub_(LOG2_SCALE_MIN * 4).clamp_(0, SCALES - 1)
        # floor(mean4 / 4) and mean4 mod 4 in float64: exact for integers this small, and
        # cheaper than integer division
        quotient = (mean4 * (1 / MEAN_FRACTIONS)).floor_()
        mean.copy_(quotient)
        table.copy_(mean4.sub_(quotient * MEAN_FRACTIONS).mul_(SCALES).add_(scale))


@lru_cache(maxsize=None)
def frequency_table(fraction: int, scale: int) -> np.ndarray:
    """Integer frequencies of the residual ``value - floor(mu)`` for ``mu``'s fractional part
    ``fraction / 4`` and Laplace scale ``2^(LOG2_SCALE_MIN + scale / 4)``: symbol 0 escapes
    below ``-RANGE``, symbols ``1 .. 2·RANGE + 1`` are ``-RANGE .. RANGE``, the last escapes
    above. Every frequency is at least 1. Exact decimal arithmetic, so the same everywhere.
    """
    ctx = decimal.Context(prec=30)
    D = decimal.Decimal
    octaves, quarters = divmod(int(LOG2_SCALE_MIN * 4) + scale, 4)
    root4 = ctx.sqrt(ctx.sqrt(D(2)))  # sqrt and exp are correctly rounded: no platform differences
    b = ctx.multiply(ctx.power(root4, quarters), ctx.power(D(2), octaves))
    delta = D(fraction) / D(MEAN_FRACTIONS)

    def cdf(x: D) -> D:  # Laplace(delta, b) at x
        d = x - delta
        e = ctx.exp(-abs(d) / b)
        return e / 2 if d < 0 else 1 - e / 2

    edges = [cdf(D(r) - D("0.5")) for r in range(-RANGE, RANGE + 2)]
    masses = [edges[0]] + [hi - lo for lo, hi in zip(edges[:-1], edges[1:])] + [1 - edges[-1]]
    total = D(TABLE_TOTAL)
    return np.array([max(1, int((m * total).to_integral_value(decimal.ROUND_HALF_EVEN)))
                     for m in masses], dtype=np.int64)
