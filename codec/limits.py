"""Resource limits: what reading or decoding a ``.nirv`` may cost, decided from its header.

A ``.nirv`` comes from strangers, and its header alone decides how much a reader allocates
and computes: a few hundred bytes can ask for a network of billions of values, or for an 8K
frame rendered from 4×4 patches. So, before any group is parsed or rendered, :func:`budget`
works out from the header and the file's network kind (:mod:`nirvana.kinds`):

================  ==============================================================  ========
quantity          what it is                                                      limit
================  ==============================================================  ========
values_per_group  coded values of one group (the kind's tensor shapes, summed)    64 M
frame_pixels      width × height                                                  8192×4320
group_work        multiply-accumulates to render one group: the pixels rendered   2^40
                  (G × the frame, padded to whole patches for ``siren``) × the
                  kind's MACs per pixel (an upper bound for padded frames)
group_bytes       estimated peak memory of rendering one group: 16 bytes per      16 GiB
                  coded value (latents, the previous group's, weights and their
                  batched copy) and 4 bytes per rendered pixel × (16 output
                  floats + the kind's working floats)
================  ==============================================================  ========

A file over a limit is refused with one :class:`~codec.errors.BitstreamError` line naming
the quantity (:func:`check`); ``nirvana info``, ``nirvana decode`` and :func:`codec.decode`
all go through :func:`open_nirv`, and the encoder refuses to make such a file
(:mod:`codec.options`). 2^40 MACs are about a minute of one CPU core; the paper's 1080p
network renders a group in about 1.3·10^10. Groups are rendered in batches:
:meth:`Budget.batch` shrinks the batch asked for (``--batch``, or the decoder's default) so
that it stays within :data:`BATCH_WORK` (2^38 MACs) and :data:`BATCH_BYTES` (2 GiB), and
never below one group.

Example:
    >>> from codec.bitstream import Header
    >>> from nirvana.grid import GridConfig
    >>> h = Header(width=176, height=144, num_frames=16, fps_num=25, fps_den=1, group_size=8,
    ...            key_interval=20, num_groups=2, kind="grid", network=GridConfig(levels=5))
    >>> b = check(h, "clip.nirv")
    >>> b.values_per_group, b.batch(32)
    (116385, 32)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from codec.bitstream import Header, NirvReader
from codec.errors import BitstreamError
from codec.video.source import require_regular_file
from nirvana.kinds import KINDS
from nirvana.motion import plane_subpel
from nirvana.patches import PatchGrid
from nirvana.render import PATCH_CHUNK

MAX_VALUES = 64_000_000  # coded values per group; the paper's 1080p network has 2.4 M
MAX_FRAME_PIXELS = 8192 * 4320  # per frame (8K)
MAX_WORK = 2**40  # multiply-accumulates per group
MAX_BYTES = 16 * 2**30  # estimated memory to render one group
BATCH_WORK = 2**38  # a batch of groups is shrunk to stay within this work ...
BATCH_BYTES = 2 * 2**30  # ... and this memory, but holds at least one group

_VALUE_BYTES = 16  # int32 latents, the previous group's, float32 weights, their batched copy
_OUTPUT_FLOATS = 16  # per rendered pixel: RGB floats and their copies on the way to uint8 (measured)


@dataclass(frozen=True)
class _RenderCost:
    """How a kind renders, for the budget: the pixels it computes per frame (padding
    included), and the working floats it holds per rendered pixel besides the output."""

    area: Callable[[Any, int, int], int]  # (cfg, height, width)
    floats: Callable[[Any, int, int, int], float]  # (cfg, group_size, height, width)


def _siren_area(cfg, height: int, width: int) -> int:
    grid = PatchGrid(height, width, cfg.patch_size)
    return grid.padded_height * grid.padded_width


def _siren_floats(cfg, group_size: int, height: int, width: int) -> float:
    """The heads' feature maps (about 2C floats per pixel), for one chunk of patches at a time."""
    patches = PatchGrid(height, width, cfg.patch_size).count
    return 2 * cfg.channels * min(1.0, PATCH_CHUNK / patches)


def _grid_floats(cfg, group_size: int, height: int, width: int) -> float:
    """The features and hidden activations of one frame at a time, and with motion its
    move: per pixel an int32 index and a float32 weight per tap (a bilinear read 4 taps, a
    cubic one 1 from the frame's 3 · 4^subpel sub-pixel plane values; times 4 blocks with
    the overlap)."""
    move = 0
    if cfg.motion:
        planes = plane_subpel(cfg.subpel, cfg.interpolation)
        taps = 1 if planes or not cfg.subpel else 4
        move = 2 * taps * (4 if cfg.overlap else 1) + (3 * 4**planes if planes else 0)
    return (cfg.levels * cfg.channels + 2 * cfg.hidden + move) / group_size


_COSTS = {
    "siren": _RenderCost(_siren_area, _siren_floats),
    "grid": _RenderCost(lambda cfg, height, width: height * width, _grid_floats),
}


@dataclass(frozen=True)
class Budget:
    """What one group of a file costs to read and render (see the module doc)."""

    values_per_group: int
    frame_pixels: int
    group_work: float
    group_bytes: float

    def batch(self, wanted: int) -> int:
        """``wanted`` groups, fewer if that exceeds the batch work or memory; at least 1."""
        fits = min(BATCH_WORK / max(self.group_work, 1), BATCH_BYTES / max(self.group_bytes, 1))
        return max(1, min(wanted, int(fits)))


_LIMITS = {"values_per_group": MAX_VALUES, "frame_pixels": MAX_FRAME_PIXELS, "group_work": MAX_WORK,
           "group_bytes": MAX_BYTES}


def budget(header: Header) -> Budget:
    """The cost of one group of a file with ``header``; pure arithmetic, nothing allocated."""
    kind, cost, cfg = KINDS[header.kind], _COSTS[header.kind], header.network
    g, h, w = header.group_size, header.height, header.width
    values = sum(math.prod(s) for s in kind.tensor_shapes(cfg, g, h, w))
    pixels = g * cost.area(cfg, h, w)
    floats = _OUTPUT_FLOATS + cost.floats(cfg, g, h, w)
    return Budget(values_per_group=values, frame_pixels=h * w,
                  group_work=pixels * kind.macs_per_pixel(cfg, g, h, w),
                  group_bytes=_VALUE_BYTES * values + 4 * pixels * floats)


def problem(header: Header) -> str | None:
    """The first quantity of ``header``'s budget over its limit, as a sentence; None if all fit."""
    return _over(budget(header), header)


def check(header: Header, name: str) -> Budget:
    """:func:`budget`, or BitstreamError naming file ``name`` and the quantity over its limit."""
    spent = budget(header)
    over = _over(spent, header)
    if over:
        raise BitstreamError(f"{name}: header asks for too much: {over}; the file is damaged or "
                             "made for a bigger machine (limits: codec/limits.py)")
    return spent


def _over(spent: Budget, header: Header) -> str | None:
    for f in fields(spent):
        value, limit = getattr(spent, f.name), _LIMITS[f.name]
        if value > limit:
            return (f"{f.name}={value:.3g} is over the limit {limit:.3g} ({header.kind} network, "
                    f"{header.width}x{header.height}, group_size {header.group_size})")
    return None


def open_nirv(path: str | os.PathLike[str]) -> NirvReader:
    """Open a ``.nirv`` for reading, refusing pipes and devices and files over the limits."""
    require_regular_file(Path(path), "a .nirv file")
    reader = NirvReader(path)
    try:
        check(reader.header, reader.name)
    except BitstreamError:
        reader.close()
        raise
    return reader
