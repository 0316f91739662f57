"""Block motion for the ``grid`` kind: each frame of a warm group starts from a decoded frame,
moved block by block.

A group's motion is one int tensor ``(G, 2, ceil(H / B), ceil(W / B))`` of B×B blocks: for
frame ``t`` and block ``(i, j)`` the displacement ``(dy, dx)`` *minus* that of frame ``t - 1``
(frame ``-1``: zero), since a block's motion changes little from frame to frame and those
differences cost fewer bits. Displacements count ``1/2^subpel`` pixels (whole pixels for
``subpel`` 0). :func:`displacements` sums them back and clamps each to ``±MOTION_RANGE``
pixels (so a hostile file can only move blocks within that range). A frame is moved from
the previous group's last decoded frame or, with the ``chain`` of :mod:`nirvana.grid`,
where the group says so, from the frame before it as decoded (:func:`to_reference`).
:func:`shift` takes every pixel of a block from the reference at its displacement (rows
and columns clamped to the frame) and, with ``overlap``, blends the four nearest blocks'
predictions per pixel. Between whole pixels the reference is read bilinearly or
(``interpolation`` :data:`CUBIC`) from its sub-pixel planes (:func:`subpel_planes`: a 4-tap
cubic filter per axis, which keeps the detail that bilinear reads blur, and blur again at
every step of a chain of moves). The weights are exact
binary fractions applied in a fixed order, so encoder and decoder form the same prediction
from the same decoded frames. The group's frames are the prediction plus what its grids and
synthesis network render (:mod:`nirvana.grid`). :func:`estimate` is the encoder's search
(it sits here because it is small and pure; the decoder never calls it).

Example:
    >>> ref = torch.arange(64.0).reshape(1, 8, 8).expand(3, 8, 8)
    >>> deltas = torch.zeros(1, 2, 2, 2, dtype=torch.int32)
    >>> deltas[0, 1] = 1  # every block takes its pixels one column to the right
    >>> predict(ref, deltas, 4, 1)[0, 0, 0].tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0]
    >>> predict(ref, deltas, 4, 1, subpel=1)[0, 0, 0].tolist()  # the same value: half a column
    [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.0]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn import functional as F

MOTION_RANGE = 64  # largest displacement (pixels) per axis from the reference
SEARCH_COARSE = 8  # coarse search range (in pixels at quarter resolution): ±32 at full
SEARCH_FINE = 3  # refinement range at full resolution (covers a coarse step either side)
SEARCH_BATCH = 1 << 21  # candidates weighed at once: about this many reference pixels' worth
# how a displacement between whole pixels reads the reference: GridConfig.interpolation is the index
INTERPOLATIONS = ("bilinear", "cubic")
BILINEAR, CUBIC = 0, 1


def plane_subpel(subpel: int, interpolation: int) -> int:
    """The ``subpel`` of the sub-pixel planes that moves read (:func:`subpel_planes`): the
    motion's for cubic reads between whole pixels, 0 (the frame itself) otherwise."""
    return subpel if interpolation == CUBIC else 0


def motion_shape(group_size: int, height: int, width: int, block: int) -> tuple[int, int, int, int]:
    """Shape of a group's motion tensor."""
    return (group_size, 2, math.ceil(height / block), math.ceil(width / block))


def displacements(deltas: torch.Tensor, subpel: int = 0) -> torch.Tensor:
    """Per-frame displacements ``(G, 2, By, Bx)`` int64, in ``1/2^subpel`` pixels, from the
    stored per-frame changes (integers, or the decoder's float tensor of them; whatever a
    hostile file holds, the result is within ±MOTION_RANGE pixels)."""
    # an encoder writes changes within ±2·MOTION_RANGE; anything else is cut to that first
    limit = MOTION_RANGE << subpel
    changes = torch.nan_to_num(deltas.double()).clamp(-2 * limit, 2 * limit)
    return torch.cumsum(changes.to(torch.int64), dim=0).clamp(-limit, limit)


def predict(reference: torch.Tensor, deltas: torch.Tensor, block: int, count: int,
            subpel: int = 0, overlap: int = 0, interpolation: int = BILINEAR) -> torch.Tensor:
    """The first ``count`` frames' prediction ``(count, 3, H, W)`` from one ``reference``
    ``(3, H, W)`` and a group's motion tensor."""
    moves = displacements(deltas[:count], subpel).to(reference.device)
    return torch.stack([shift(reference, move, block, subpel, overlap, interpolation) for move in moves.unbind(0)])


def shift(reference: torch.Tensor, move: torch.Tensor, block: int, subpel: int = 0,
          overlap: int = 0, interpolation: int = BILINEAR, planes: torch.Tensor | None = None) -> torch.Tensor:
    """One frame's prediction ``(3, H, W)``: every B×B block of ``reference`` ``(3, H, W)``
    taken from its displacement ``move`` ``(2, By, Bx)`` in ``1/2^subpel`` pixels (between
    whole pixels bilinear, or cubic from :func:`subpel_planes`), rows and columns clamped to
    the frame. With ``overlap`` each pixel blends the predictions of the four blocks whose
    centres surround it, weighted by its distance to them (bilinear), so that the prediction
    has no edges along block borders. ``planes``: the reference's sub-pixel planes, made once
    for all the frames moved from it."""
    return shift_gather(move, block, subpel, overlap, reference.shape[1:], interpolation).apply(reference, planes)


@functools.lru_cache(maxsize=4)
def cubic_weights(subpel: int) -> tuple[tuple[float, ...], ...]:
    """Per fraction ``f = a / 2^subpel`` (``a = 0 .. 2^subpel - 1``) the weights of the pixels
    at ``-1, 0, 1, 2`` from a read at ``f``: Keys' cubic convolution (``a = -1/2``, as
    Catmull-Rom), exact binary fractions (a half: ``-1, 9, 9, -1`` sixteenths).

    >>> cubic_weights(1)
    ((0.0, 1.0, 0.0, 0.0), (-0.0625, 0.5625, 0.5625, -0.0625))
    """
    out = []
    for a in range(1 << subpel):
        t = a / (1 << subpel)
        out.append(((-t**3 + 2 * t**2 - t) / 2, (3 * t**3 - 5 * t**2 + 2) / 2,
                    (-3 * t**3 + 4 * t**2 + t) / 2, (t**3 - t**2) / 2))
    return tuple(out)


def subpel_planes(image: torch.Tensor, subpel: int) -> torch.Tensor:
    """``image`` ``(C, H, W)`` read at every fraction ``(a, b) / 2^subpel`` of a pixel below
    and right of each pixel with :func:`cubic_weights` (rows and columns clamped to the image):
    ``(C, 4^subpel, H, W)``, plane ``a · 2^subpel + b``; plane 0 is ``image`` itself. Each
    plane is a fixed sum of four weighted shifts per axis (columns first), in the same order
    on every machine; its gradient flows back to ``image``."""
    height, width = image.shape[1:]
    weights = cubic_weights(subpel)

    def along(x: torch.Tensor, dim: int, size: int) -> list[torch.Tensor]:
        pad = (1, 2, 0, 0) if dim == 2 else (0, 0, 1, 2)
        padded = F.pad(x[None], pad, mode="replicate")[0]
        reads = [x]
        for w in weights[1:]:
            total = w[0] * padded.narrow(dim, 0, size)
            for k in range(1, 4):
                total = total + w[k] * padded.narrow(dim, k, size)
            reads.append(total)
        return reads

    reads = [along(column, 1, height) for column in along(image, 2, width)]  # [b][a]
    return torch.stack([reads[b][a] for a in range(len(weights)) for b in range(len(weights))], 1)


@dataclass(frozen=True)
class Gather:
    """A fixed linear read of an image ``(C, h, w)``: output pixel ``p`` is the sum over taps
    ``k`` of ``weights[k, p]`` times the pixel at flat index ``index[k·P + p]`` (one tap and
    no weights: a plain copy). One gather (on a CPU the backward of ``index_select`` is much
    faster than that of 2-D indexing) and one weighted sum over the taps; encoder and decoder
    both move frames with it, so they get the same floats. Made once, it moves any number of
    images (every iteration of a group's training)."""

    index: torch.Tensor  # (K·P,) int32
    weights: torch.Tensor | None  # (K, P) or None
    shape: tuple[int, ...]  # the output's pixel shape, P = prod(shape)
    planes: int = 0  # > 0: the index reads the image's subpel_planes(image, planes)

    def apply(self, image: torch.Tensor, planes: torch.Tensor | None = None) -> torch.Tensor:
        """``image`` ``(C, h, w)`` read at every tap → ``(C, *shape)``; ``planes``: the
        image's :func:`subpel_planes`, where the caller made them once for several moves."""
        source = (subpel_planes(image, self.planes) if planes is None else planes) if self.planes else image
        values = source.flatten(1).index_select(1, self.index)
        if self.weights is None:
            return values.view(image.shape[0], *self.shape)
        values = values.view(image.shape[0], *self.weights.shape)
        return (values * self.weights).sum(1).view(image.shape[0], *self.shape)


def shift_gather(move: torch.Tensor, block: int, subpel: int, overlap: int,
                 size: tuple[int, int] | torch.Size, interpolation: int = BILINEAR) -> Gather:
    """The :class:`Gather` of :func:`shift` for one frame's displacements ``move`` in a frame
    of ``size`` (H, W)."""
    height, width = size
    planes = plane_subpel(subpel, interpolation)
    plane_size = height * width if planes else 0
    device = move.device
    move = move.to(torch.int32)  # within ±(MOTION_RANGE << subpel); the indices fit int32 too
    rows = torch.arange(height, device=device, dtype=torch.int32)[:, None]
    cols = torch.arange(width, device=device, dtype=torch.int32)[None, :]
    last = (height - 1, width - 1)
    if not overlap:
        dy, dx = (_per_pixel(m, block, height, width) for m in move)
        return replace(_gather(_taps(rows, cols, dy, dx, subpel, last, width, plane_size)), planes=planes)
    (ys, wys), (xs, wxs) = (_between_centres(block, n, count, device)
                            for n, count in ((height, move.shape[1]), (width, move.shape[2])))
    # the four blocks around each pixel at once, in the order (first row, first column),
    # (first, second), (second, first), (second, second): (4, H, W) per block's moves and weight
    v = move[:, ys[:, None, :, None], xs[None, :, None, :]].reshape(2, 4, height, width)
    weight = (wys[:, None, :, None] * wxs[None, :, None, :]).reshape(4, 1, height, width)
    taps = _taps(rows, cols, v[0], v[1], subpel, last, width, plane_size)
    index = torch.stack([i for i, _ in taps], 1)  # (4 blocks, taps, H, W): block by block, as they are summed
    if taps[0][1] is None:
        return Gather(index.flatten(), weight.flatten(1), (height, width), planes)
    return Gather(index.flatten(), (weight * torch.stack([w for _, w in taps], 1)).flatten(0, 1).flatten(1),
                  (height, width))


def _between_centres(block: int, size: int, count: int,
                     device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Along one axis of ``size`` pixels in blocks of ``block``: for every pixel the two
    blocks whose centres surround it (clamped to the ``count`` blocks) and their bilinear
    weights, which sum to 1 and are multiples of ``1 / (2·block)``: two ``(2, size)``."""
    twice = 2 * torch.arange(size, device=device) - (block - 1)  # 2 · (distance to block 0's centre)
    first = torch.div(twice, 2 * block, rounding_mode="floor")
    near = (twice - first * 2 * block) / (2 * block)  # of the way to the next centre
    return (torch.stack([first.clamp(0, count - 1), (first + 1).clamp(0, count - 1)]), torch.stack([1 - near, near]))


Taps = list[tuple[torch.Tensor, torch.Tensor | None]]


def _taps(rows: torch.Tensor, cols: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, subpel: int,
          last: tuple[int, int], stride: int, plane_size: int = 0) -> Taps:
    """The pixels that a read at ``rows + dy``, ``cols + dx`` blends (displacements in
    ``1/2^subpel`` pixels, indices clamped to ``last``), as flat indices into a frame of row
    length ``stride`` and weights: one pixel (weight None) at whole pixels; else with
    ``plane_size`` (the pixels of a frame) one pixel of the sub-pixel plane of the
    displacement's fraction (:func:`subpel_planes`, planes back to back), or without it four
    pixels with bilinear weights in steps of ``1/2^subpel``, exact in floating point."""
    y, x = dy >> subpel, dx >> subpel  # floor
    y0, x0 = (rows + y).clamp(0, last[0]), (cols + x).clamp(0, last[1])
    if not subpel:
        return [(y0 * stride + x0, None)]
    if plane_size:
        fraction = (1 << subpel) - 1
        plane = ((dy & fraction) << subpel) + (dx & fraction)
        return [(plane * plane_size + y0 * stride + x0, None)]
    unit = float(1 << subpel)
    fy, fx = (dy - (y << subpel)) / unit, (dx - (x << subpel)) / unit
    y1, x1 = (rows + y + 1).clamp(0, last[0]), (cols + x + 1).clamp(0, last[1])
    return [(y0 * stride + x0, (1 - fy) * (1 - fx)), (y0 * stride + x1, (1 - fy) * fx),
            (y1 * stride + x0, fy * (1 - fx)), (y1 * stride + x1, fy * fx)]


def _gather(taps: Taps) -> Gather:
    """The :class:`Gather` of a list of taps (flat indices and weights, broadcast to one shape)."""
    shape = _broadcast_shape([index.shape for index, _ in taps])
    index = torch.cat([i.expand(shape).flatten() for i, _ in taps])
    if len(taps) == 1 and taps[0][1] is None:
        return Gather(index, None, tuple(shape))
    weights = torch.stack([w.expand(shape).float() for _, w in taps]).flatten(1)  # several taps: all weighed
    return Gather(index, weights, tuple(shape))


def _broadcast_shape(shapes: list[torch.Size]) -> torch.Size:
    """The shape that ``shapes`` broadcast to. ``torch.broadcast_shapes`` gives the same, but
    its first call imports torch's symbolic shapes: half a second of every decode of a file
    with motion. numpy's takes microseconds."""
    return torch.Size(np.broadcast_shapes(*shapes))


def to_reference(frame: torch.Tensor) -> torch.Tensor:
    """A rendered frame as the decoder outputs it (rounded to 8 bits), in [0, 1]: what a
    later frame is predicted from, identical to ``to_uint8(frame) / 255``."""
    return torch.round(frame.clamp(0, 1) * 255) / 255


def _per_pixel(values: torch.Tensor, block: int, height: int, width: int) -> torch.Tensor:
    """``(..., By, Bx)`` block values → ``(..., H, W)``: each block's value on its pixels."""
    return values.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :height, :width]


def estimate(reference: torch.Tensor, frames: torch.Tensor, block: int, bit_cost: float,
             chain: bool = False, subpel: int = 0,
             interpolation: int = BILINEAR) -> tuple[torch.Tensor, list[float]]:
    """The motion tensor (int32, in ``1/2^subpel`` pixels) that moves ``reference``
    ``(3, H, W)`` onto each of ``frames`` ``(n, 3, H, W)``, and its cost per frame: per block
    the displacement with the smallest squared error plus ``bit_cost`` times the bits of its
    change from the frame before (about ``1 + 2·log2(1 + |change|)`` per axis), searched
    coarse to fine: quarter resolution ±:data:`SEARCH_COARSE`, then whole pixels around that
    and around the frame before's, then halving the step down to ``1/2^subpel`` pixels.

    With ``chain`` every frame after the first is moved from the frame before instead: its
    source frame, as the decoded one does not exist yet, so the cost leaves out the coding
    noise that the decoded frame will carry. ``interpolation`` reads between whole pixels
    as :func:`shift` does (at the frame's borders the search's cubic reads clamp each tap,
    the prediction's the whole read: a difference of a pixel or two).
    """
    n, _, height, width = frames.shape
    blocks = motion_shape(n, height, width, block)[2:]
    previous = torch.zeros((2, *blocks), dtype=torch.int64)
    small_frames = F.avg_pool2d(frames, 4, ceil_mode=True)
    planes = plane_subpel(subpel, interpolation)
    source = _Padded(reference, F.avg_pool2d(reference[None], 4, ceil_mode=True)[0], planes)
    moves, costs = [], []
    for t in range(n):
        previous, cost = _search_reference(source, frames[t], small_frames[t], block, blocks, previous,
                                           bit_cost, subpel)
        moves.append(previous)
        costs.append(float(cost.sum()))
        if chain:
            source = _Padded(frames[t], small_frames[t], planes)
    moves = torch.stack(moves)
    return torch.diff(moves, dim=0, prepend=torch.zeros_like(moves[:1])).to(torch.int32), costs


class _Padded:
    """A reference at full and quarter resolution, padded once, and with ``planes`` the
    cubic sub-pixel planes of the full one (:func:`subpel_planes`): every search reads them."""

    def __init__(self, full: torch.Tensor, small: torch.Tensor, planes: int = 0):
        self.full, self.small = _padded(full, 1), _padded(small, 4)
        self.planes = subpel_planes(self.full, planes) if planes else None


def _search_reference(ref: _Padded, frame: torch.Tensor, small_frame: torch.Tensor, block: int,
                      blocks: tuple[int, int], previous: torch.Tensor, bit_cost: float,
                      subpel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best displacement per block (in ``1/2^subpel`` pixels) from one reference, and its
    cost: coarse, then whole pixels around the coarse result and around the frame before's
    displacement ``previous``, then finer steps around the best."""
    unit = 1 << subpel
    coarse, _ = _search(ref.small, small_frame, max(1, block // 4), blocks,
                        torch.div(previous, 4 * unit, rounding_mode="floor"), SEARCH_COARSE, 4)
    (a, cost_a), (b, cost_b) = [_search(ref.full, frame, block, blocks, c, radius, 1, previous, bit_cost,
                                        unit, subpel, ref.planes)
                                for c, radius in ((coarse * 4 * unit, SEARCH_FINE), (previous, 1))]
    keep = cost_b <= cost_a
    best, cost = torch.where(keep, b, a), torch.where(keep, cost_b, cost_a)
    step = unit // 2
    while step:
        best, cost = _search(ref.full, frame, block, blocks, best, 1, 1, previous, bit_cost, step, subpel,
                             ref.planes)
        step //= 2
    return best, cost


def _padded(reference: torch.Tensor, scale: int) -> torch.Tensor:
    """The reference with its edges repeated by the largest displacement at ``scale`` (and
    one more pixel, for the bilinear neighbours of sub-pixel displacements)."""
    pad = MOTION_RANGE // scale + 1
    return F.pad(reference[None], (pad, pad, pad, pad), mode="replicate")[0]


def _search(padded: torch.Tensor, frame: torch.Tensor, block: int, blocks: tuple[int, int],
            centre: torch.Tensor, radius: int, scale: int, previous: torch.Tensor | None = None,
            bit_cost: float = 0.0, step: int = 1, subpel: int = 0,
            planes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best displacement per block within ``centre ± radius·step`` (in ``1/2^subpel`` of this
    resolution's pixels) over the reference ``padded`` by :func:`_padded` (read between whole
    pixels from its cubic ``planes`` where given, else bilinearly), and its cost. The
    candidates are weighed a batch at a time; of equal costs the first (``dy``, then ``dx``,
    from ``-radius``) wins."""
    limit = (MOTION_RANGE // scale) << subpel
    best_cost = torch.full(blocks, math.inf)
    best = centre.clone()
    offsets = torch.tensor([(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)])
    batch = max(1, SEARCH_BATCH // padded[0].numel())
    for chunk in offsets.split(batch):
        cands = (centre[None] + chunk[:, :, None, None] * step).clamp(-limit, limit)  # (k, 2, By, Bx)
        costs = _block_errors(padded, frame, block, cands, blocks, subpel, planes)
        if previous is not None:
            costs = costs + bit_cost * (1 + 2 * torch.log2(1 + (cands - previous).abs())).sum(1)
        cost, pick = costs.min(0)  # the first of equal costs
        better = cost < best_cost
        best_cost = torch.where(better, cost, best_cost)
        best = torch.where(better, cands.gather(0, pick[None, None].expand(1, 2, *blocks))[0], best)
    return best, best_cost


def _block_errors(padded: torch.Tensor, frame: torch.Tensor, block: int, cands: torch.Tensor,
                  blocks: tuple[int, int], subpel: int, planes: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error ``(k, By, Bx)`` of each block of ``frame`` against the padded reference
    moved by each of ``k`` candidate displacements per block, ``cands`` ``(k, 2, By, Bx)``."""
    _, height, width = frame.shape
    by, bx = blocks
    if subpel and not (cands & ((1 << subpel) - 1)).any():  # whole pixels: one tap, not four
        cands, subpel = cands >> subpel, 0
    pad = (padded.shape[1] - height) // 2
    rows = torch.arange(height)[:, None] + pad
    cols = torch.arange(width)[None, :] + pad
    dy, dx = (_per_pixel(c, block, height, width) for c in cands.unbind(1))
    last = (padded.shape[1] - 1, padded.shape[2] - 1)
    if subpel and planes is not None:
        plane_size = padded.shape[1] * padded.shape[2]
        moved = _gather(_taps(rows, cols, dy, dx, subpel, last, padded.shape[2], plane_size)).apply(planes)
    else:
        moved = _gather(_taps(rows, cols, dy, dx, subpel, last, padded.shape[2])).apply(padded)
    error = ((moved - frame[:, None]) ** 2).sum(0)
    error = F.pad(error, (0, bx * block - width, 0, by * block - height))
    return error.reshape(-1, by, block, bx, block).sum((2, 4))
