"""Block motion for the ``grid`` kind: each frame of a warm group starts from a decoded frame,
moved block by block by whole pixels.

A group's motion is one int tensor ``(G, 2, ceil(H / B), ceil(W / B))`` of B×B blocks: for
frame ``t`` and block ``(i, j)`` the displacement ``(dy, dx)`` *minus* that of frame ``t - 1``
(frame ``-1``: zero), since a block's motion changes little from frame to frame and those
differences cost fewer bits. :func:`displacements` sums them back and clamps each to
``±MOTION_RANGE`` (so a hostile file can only move blocks within that range). A frame is
moved from the previous group's last decoded frame or, with the ``chain`` of
:mod:`nirvana.grid`, where the group says so, from the frame before it as decoded
(:func:`to_reference`). :func:`shift` copies every pixel of a block from the reference at its
displacement (rows and columns clamped to the frame): integer indexing, so encoder and
decoder get the same prediction on any machine from the same decoded frames. The group's
frames are the prediction plus what its grids and synthesis network render
(:mod:`nirvana.grid`). :func:`estimate` is the encoder's search (it sits here because it is
small and pure; the decoder never calls it).

Example:
    >>> ref = torch.arange(64.0).reshape(1, 8, 8).expand(3, 8, 8)
    >>> deltas = torch.zeros(1, 2, 2, 2, dtype=torch.int32)
    >>> deltas[0, 1] = 1  # every block takes its pixels one column to the right
    >>> predict(ref, deltas, 4, 1)[0, 0, 0].tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0]
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

MOTION_RANGE = 64  # largest displacement (pixels) per axis from the reference
SEARCH_COARSE = 8  # coarse search range (in pixels at quarter resolution): ±32 at full
SEARCH_FINE = 3  # refinement range at full resolution (covers a coarse step either side)


def motion_shape(group_size: int, height: int, width: int, block: int) -> tuple[int, int, int, int]:
    """Shape of a group's motion tensor."""
    return (group_size, 2, math.ceil(height / block), math.ceil(width / block))


def displacements(deltas: torch.Tensor) -> torch.Tensor:
    """Per-frame displacements ``(G, 2, By, Bx)`` int64 from the stored per-frame changes
    (integers, or the decoder's float tensor of them; whatever a hostile file holds, the
    result is within ±MOTION_RANGE)."""
    # an encoder writes changes within ±2·MOTION_RANGE; anything else is cut to that first
    changes = torch.nan_to_num(deltas.double()).clamp(-2 * MOTION_RANGE, 2 * MOTION_RANGE)
    return torch.cumsum(changes.to(torch.int64), dim=0).clamp(-MOTION_RANGE, MOTION_RANGE)


def predict(reference: torch.Tensor, deltas: torch.Tensor, block: int, count: int) -> torch.Tensor:
    """The first ``count`` frames' prediction ``(count, 3, H, W)`` from one ``reference``
    ``(3, H, W)`` and a group's motion tensor."""
    moves = displacements(deltas[:count]).to(reference.device)
    return torch.stack([shift(reference, move, block) for move in moves.unbind(0)])


def shift(reference: torch.Tensor, move: torch.Tensor, block: int) -> torch.Tensor:
    """One frame's prediction ``(3, H, W)``: every B×B block of ``reference`` ``(3, H, W)``
    taken from its displacement ``move`` ``(2, By, Bx)``, rows and columns clamped to the frame."""
    _, height, width = reference.shape
    rows = torch.arange(height, device=reference.device)
    cols = torch.arange(width, device=reference.device)
    y = (rows[:, None] + _per_pixel(move[0], block, height, width)).clamp(0, height - 1)
    x = (cols[None, :] + _per_pixel(move[1], block, height, width)).clamp(0, width - 1)
    return reference[:, y, x]


def to_reference(frame: torch.Tensor) -> torch.Tensor:
    """A rendered frame as the decoder outputs it (rounded to 8 bits), in [0, 1]: what a
    later frame is predicted from, identical to ``to_uint8(frame) / 255``."""
    return torch.round(frame.clamp(0, 1) * 255) / 255


def _per_pixel(values: torch.Tensor, block: int, height: int, width: int) -> torch.Tensor:
    """``(By, Bx)`` block values → ``(H, W)``: each block's value on its pixels."""
    return values.repeat_interleave(block, 0).repeat_interleave(block, 1)[:height, :width]


def estimate(reference: torch.Tensor, frames: torch.Tensor, block: int, bit_cost: float,
             chain: bool = False) -> tuple[torch.Tensor, list[float]]:
    """The motion tensor (int32) that moves ``reference`` ``(3, H, W)`` onto each of
    ``frames`` ``(n, 3, H, W)``, and its cost per frame: per block the displacement with the smallest
    squared error plus ``bit_cost`` times the bits of its change from the frame before (about
    ``1 + 2·log2(1 + |change|)`` per axis), searched coarse to fine: quarter resolution
    ±:data:`SEARCH_COARSE`, then whole pixels around that and around the frame before's.

    With ``chain`` every frame after the first is moved from the frame before instead: its
    source frame, as the decoded one does not exist yet, so the cost leaves out the coding
    noise that the decoded frame will carry.
    """
    n, _, height, width = frames.shape
    blocks = motion_shape(n, height, width, block)[2:]
    previous = torch.zeros((2, *blocks), dtype=torch.int64)
    small_frames = F.avg_pool2d(frames, 4, ceil_mode=True)
    source = _Padded(reference, F.avg_pool2d(reference[None], 4, ceil_mode=True)[0])
    moves, costs = [], []
    for t in range(n):
        previous, cost = _search_reference(source, frames[t], small_frames[t], block, blocks, previous, bit_cost)
        moves.append(previous)
        costs.append(float(cost.sum()))
        if chain:
            source = _Padded(frames[t], small_frames[t])
    moves = torch.stack(moves)
    return torch.diff(moves, dim=0, prepend=torch.zeros_like(moves[:1])).to(torch.int32), costs


class _Padded:
    """A reference at full and quarter resolution, padded once: every search reads them."""

    def __init__(self, full: torch.Tensor, small: torch.Tensor):
        self.full, self.small = _padded(full, 1), _padded(small, 4)


def _search_reference(ref: _Padded, frame: torch.Tensor, small_frame: torch.Tensor, block: int,
                      blocks: tuple[int, int], previous: torch.Tensor,
                      bit_cost: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Best displacement per block from one reference, and its cost: coarse, then fine around
    the coarse result and around the frame before's displacement ``previous``."""
    centre = previous
    coarse, _ = _search(ref.small, small_frame, max(1, block // 4), blocks,
                        torch.div(centre, 4, rounding_mode="floor"), SEARCH_COARSE, scale=4)
    (a, cost_a), (b, cost_b) = [_search(ref.full, frame, block, blocks, c, radius, 1, centre, bit_cost)
                                for c, radius in ((coarse * 4, SEARCH_FINE), (centre, 1))]
    keep = cost_b <= cost_a
    return torch.where(keep, b, a), torch.where(keep, cost_b, cost_a)


def _padded(reference: torch.Tensor, scale: int) -> torch.Tensor:
    """The reference with its edges repeated by the largest displacement at ``scale``."""
    pad = MOTION_RANGE // scale
    return F.pad(reference[None], (pad, pad, pad, pad), mode="replicate")[0]


def _search(padded: torch.Tensor, frame: torch.Tensor, block: int, blocks: tuple[int, int],
            centre: torch.Tensor, radius: int, scale: int, previous: torch.Tensor | None = None,
            bit_cost: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Best displacement per block within ``centre ± radius`` (in this resolution's pixels)
    over the reference ``padded`` by :func:`_padded`, and its cost."""
    limit = pad = MOTION_RANGE // scale
    best_cost = torch.full(blocks, math.inf)
    best = centre.clone()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            cand = torch.stack([centre[0] + dy, centre[1] + dx]).clamp(-limit, limit)
            cost = _block_errors(padded, frame, block, cand, pad, blocks)
            if previous is not None:
                cost = cost + bit_cost * (1 + 2 * torch.log2(1 + (cand - previous).abs())).sum(0)
            better = cost < best_cost
            best_cost = torch.where(better, cost, best_cost)
            best = torch.where(better, cand, best)
    return best, best_cost


def _block_errors(padded: torch.Tensor, frame: torch.Tensor, block: int, cand: torch.Tensor, pad: int,
                  blocks: tuple[int, int]) -> torch.Tensor:
    """Squared error of each block of ``frame`` against the padded reference moved by that
    block's candidate displacement ``cand`` ``(2, By, Bx)``."""
    _, height, width = frame.shape
    by, bx = blocks
    rows = torch.arange(height)[:, None] + pad + _per_pixel(cand[0], block, height, width)
    cols = torch.arange(width)[None, :] + pad + _per_pixel(cand[1], block, height, width)
    error = ((padded[:, rows, cols] - frame) ** 2).sum(0)
    return F.pad(error, (0, bx * block - width, 0, by * block - height)).reshape(by, block, bx, block).sum((1, 3))
