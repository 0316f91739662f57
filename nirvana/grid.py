"""The ``grid`` group network: multi-resolution latent grids and a tiny synthesis network.

One group of G frames is described by ``levels`` latent grids. Level ``l`` holds
``channels`` values per cell on a ``T_l × ceil(H / 2^l) × ceil(W / 2^l)`` lattice, where
``T_l = ceil(G / 2^(l + k - 1))`` for ``halve_time = k > 0`` and ``G`` for ``k = 0``. The
encoder's default (:mod:`nirvana.kinds`) is ``k = 1`` (a slot per frame at the finest level)
from 320×180 and ``k = 2`` (two frames share even the finest level) below: with motion, the
finer time lets warm groups correct each frame's prediction, which pays on bikes and
bigbuckbunny and not on carphone (benchmarks/results/warm_groups_bikes.md). Every level is
upsampled (linear in time, bilinear in space, fixed) to ``G × H × W``; the levels are concatenated per pixel and go
through the synthesis network:

* ``layers`` per-pixel linear layers of ``hidden`` units with ReLU (channels-last matmuls: on a
  CPU they run faster than 1×1 convolutions), then a linear layer to RGB;
* ``convs`` residual 3×3 convolutions on the RGB frame, ``x + conv(relu(x))``; plus 0.5, or
  with ``motion`` in a warm group plus the motion prediction (:mod:`nirvana.motion`) from the
  previous group's last decoded frame, or with ``chain`` (where the group chooses it) from the
  frame before as decoded.

The tensors of :func:`tensor_shapes` come in file order: the grid levels from the finest to
the coarsest, then the synthesis weights and biases, the context model's tensors, the
motion tensor and the chain tensor (one value per frame). The same :func:`render` serves training
(quantized tensors with straight-through rounding) and decoding (tensors rebuilt from the
file's integers), so the decoder reproduces the encoder's reconstruction. This module holds
no training code; the decoder imports it.

Example:
    >>> cfg = GridConfig(levels=3, channels=1, hidden=8, layers=1, convs=1)
    >>> shapes = tensor_shapes(cfg, group_size=4, height=10, width=12)
    >>> shapes[:3]
    [(1, 2, 10, 12), (1, 1, 5, 6), (1, 1, 3, 3)]
    >>> tensors = [torch.zeros(s) for s in shapes]
    >>> render(tensors, cfg, 4, 10, 12).shape
    torch.Size([4, 3, 10, 12])
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass, fields

import torch
from torch.nn import functional as F

from .config import check_ranges, spec
from .context import CONTEXT_TENSORS, context_shapes
from .motion import displacements, motion_shape, plane_subpel, shift, subpel_planes, to_reference

SYNTH_PIXELS = 1 << 18  # pixels (whole frames, at least one) synthesized at a time


@dataclass(frozen=True)
class GridConfig:
    """Shape of one group's grid network; packed into the file header's config block.

    Each field carries its byte format and bounds (checked before anything is allocated).
    """

    levels: int = spec("B", 1, 10, 7)  # latent grids, each halving H and W
    channels: int = spec("B", 1, 8, 1)  # values per grid cell
    halve_time: int = spec("B", 0, 8, 2)  # k > 0: level l has ceil(G / 2^(l+k-1)) frames; 0: G
    hidden: int = spec("B", 1, 64, 16)  # width of the per-pixel layers
    layers: int = spec("B", 0, 4, 1)  # hidden per-pixel layers
    convs: int = spec("B", 0, 4, 0)  # residual 3×3 convolutions on the RGB output
    context: int = spec("B", 0, 32, 8)  # hidden units of the context model (0: none)
    context_inputs: int = spec("B", 0, 15, 15)  # its features (nirvana.context: SPATIAL | ...)
    motion: int = spec("B", 0, 64, 0, multiple_of=4)  # block size of warm groups' motion (0: none)
    chain: int = spec("B", 0, 1, 0)  # with motion: a warm group may predict each frame from the one before
    subpel: int = spec("B", 0, 2, 0)  # motion in 1/2^subpel pixels (read between whole pixels as interpolation says)
    overlap: int = spec("B", 0, 1, 0)  # motion: blend the four nearest blocks' predictions per pixel
    interpolation: int = spec("B", 0, 1, 0)  # motion between whole pixels: 0 bilinear, 1 cubic

    def pack(self) -> bytes:
        return _STRUCT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, data: bytes) -> GridConfig:
        """Parse a config block; raises ValueError naming the field that is out of range."""
        data = data + _LATER_FIELDS.get(len(data), b"")
        if len(data) != _STRUCT.size:
            raise ValueError(f"grid config block has {len(data)} bytes, expected {_STRUCT.size}")
        cfg = cls(*_STRUCT.unpack(data))
        check_ranges(cfg)
        return cfg

    def macs_per_pixel(self) -> int:
        """Multiply-accumulates of the synthesis network per output pixel (upsampling aside)."""
        widths = [self.levels * self.channels] + [self.hidden] * self.layers + [3]
        return sum(a * b for a, b in zip(widths[:-1], widths[1:])) + self.convs * 3 * 3 * 9


_STRUCT = struct.Struct("<" + "".join(f.metadata["fmt"] for f in fields(GridConfig)))
# blocks written before later fields existed: those fields' values that mean "not used"
_LATER_FIELDS = {6: b"\x00\x0f\x00\x00\x00\x00\x00", 7: b"\x0f\x00\x00\x00\x00\x00",
                 8: b"\x00\x00\x00\x00\x00", 9: b"\x00\x00\x00\x00", 10: b"\x00\x00\x00", 11: b"\x00\x00",
                 12: b"\x00"}


def level_shape(cfg: GridConfig, level: int, group_size: int, height: int, width: int) -> tuple[int, ...]:
    """``(channels, T_l, H_l, W_l)`` of grid level ``level``."""
    frames = math.ceil(group_size / 2 ** (level + cfg.halve_time - 1)) if cfg.halve_time else group_size
    return (cfg.channels, frames, math.ceil(height / 2**level), math.ceil(width / 2**level))


def tensor_shapes(cfg: GridConfig, group_size: int, height: int, width: int) -> list[tuple[int, ...]]:
    """Shapes in file order: grid levels (finest first), per-pixel layers (W, b)…, convs (W, b)…,
    then the context model's tensors (:func:`nirvana.context.context_shapes`) if it has one."""
    shapes = [level_shape(cfg, level, group_size, height, width) for level in range(cfg.levels)]
    widths = [cfg.levels * cfg.channels] + [cfg.hidden] * cfg.layers + [3]
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        shapes += [(fan_out, fan_in), (fan_out,)]
    shapes += [(3, 3, 3, 3), (3,)] * cfg.convs
    if cfg.context:
        shapes += context_shapes(cfg.context, cfg.levels)
    if cfg.motion:
        shapes.append(motion_shape(group_size, height, width, cfg.motion))
        if cfg.chain:
            shapes.append((group_size,))  # per frame: 1 = moved from the frame before
    return shapes


def context_start(cfg: GridConfig) -> int | None:
    """Index of the first context-model tensor in file order; None without a context model."""
    if not cfg.context:
        return None
    return cfg.levels + 2 * (cfg.layers + 1) + 2 * cfg.convs


def motion_index(cfg: GridConfig) -> int | None:
    """Index of the motion tensor in file order; None without motion."""
    if not cfg.motion:
        return None
    return cfg.levels + 2 * (cfg.layers + 1) + 2 * cfg.convs + (CONTEXT_TENSORS if cfg.context else 0)


def context_layout(cfg: GridConfig) -> tuple[int, int, int, int | None] | None:
    """Where the context-coded tensors sit (:attr:`nirvana.kinds.Kind.context_layout`): the
    grid levels and the context model's first tensor (0 and 0 without one), the model's
    inputs, and the motion tensor; None if there are none."""
    if not cfg.context and not cfg.motion:
        return None
    levels, start = (cfg.levels, context_start(cfg)) if cfg.context else (0, 0)
    return levels, start, cfg.context_inputs, motion_index(cfg)


def upsample_levels(grids: list[torch.Tensor], group_size: int, height: int, width: int,
                    frames: slice = slice(None)) -> torch.Tensor:
    """Grid levels ``(C, T_l, H_l, W_l)`` → features ``(n, levels·C, H, W)`` of the group's
    ``frames``: linear in time on the small grid (only the frames asked for), then bilinear
    in space."""
    out = []
    for g in grids:
        if g.shape[1] != group_size:
            g = _in_time(g, group_size, frames)
        else:
            g = g[:, frames]
        g = g.transpose(0, 1)  # (n, C, H_l, W_l)
        if g.shape[2:] != (height, width):
            g = F.interpolate(g, size=(height, width), mode="bilinear", align_corners=False)
        out.append(g)
    return torch.cat(out, dim=1)


def _in_time(grid: torch.Tensor, group_size: int, frames: slice) -> torch.Tensor:
    """``grid`` ``(C, T, h, w)`` interpolated linearly to ``group_size`` time slots with
    PyTorch's weights (``align_corners=False``), for ``frames`` only: every slot is
    ``a·w0 + b·w1`` of its two nearest slots, whichever frames are asked for (PyTorch's own
    kernel may fuse a product: the last bit can differ)."""
    first, second, w0, w1 = (x[frames].to(grid.device) for x in _time_weights(grid.shape[1], group_size))
    shape = (1, -1, 1, 1)
    return grid.index_select(1, first) * w0.view(shape) + grid.index_select(1, second) * w1.view(shape)


@functools.lru_cache(maxsize=64)
def _time_weights(slots: int, group_size: int) -> tuple[torch.Tensor, ...]:
    """Per output slot of :func:`_in_time`: its two input slots and their weights, taken
    from interpolating the identity (so they are PyTorch's own). Computed once per shape."""
    blend = F.interpolate(torch.eye(slots)[:, None], size=group_size, mode="linear",
                          align_corners=False)[:, 0].t()  # (G, T): each output slot's weights
    first = blend.ne(0).to(torch.int8).argmax(1)  # the earlier slot with a weight
    second = (first + 1).clamp(max=slots - 1)
    rows = torch.arange(group_size)
    return first, second, blend[rows, first], torch.where(second > first, blend[rows, second], 0.0)


def synthesize(features: torch.Tensor, weights: list[torch.Tensor], cfg: GridConfig,
               base: torch.Tensor | float = 0.5) -> torch.Tensor:
    """Per-pixel layers and residual convolutions: ``(n, F, H, W)`` → ``(n, 3, H, W)``, added
    to ``base`` (mid-gray, or the motion prediction of :mod:`nirvana.motion`). Frames go
    through in pieces of about :data:`SYNTH_PIXELS` pixels (each frame on its own, the same
    floats as all at once): the hidden activations of a whole 640×272 group are ~90 MB of
    fresh memory on every call, which made forward and backward 2–3× slower."""
    n, _, height, width = features.shape
    pieces = [_pixel_layers(piece, weights, cfg)
              for piece in features.split(max(1, SYNTH_PIXELS // (height * width)))]
    return (pieces[0] if len(pieces) == 1 else torch.cat(pieces)) + base


def _pixel_layers(features: torch.Tensor, weights: list[torch.Tensor], cfg: GridConfig) -> torch.Tensor:
    """:func:`synthesize` of some frames, before the base."""
    n, _, height, width = features.shape
    # the per-pixel layers as batched (out, in) @ (in, pixels) products: on a CPU several
    # times faster, forward and backward, than a linear layer over channels-last pixels
    x = features.flatten(2)
    n_linear = cfg.layers + 1
    for i in range(n_linear):
        weight, bias = weights[2 * i], weights[2 * i + 1]
        x = torch.baddbmm(bias[None, :, None], weight.expand(n, -1, -1), x)
        if i < n_linear - 1:
            x = F.relu(x)
    x = x.view(n, -1, height, width)
    convs = weights[2 * n_linear:]
    # oneDNN picks its convolution kernel by CPU (with AVX512-FP16 the sums come out in
    # another order): torch's own kernel gives the same pixels on every CPU we have tried
    onednn, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False
    try:
        for i in range(cfg.convs):
            x = x + F.conv2d(F.relu(x), convs[2 * i], convs[2 * i + 1], padding=1)
    finally:
        torch.backends.mkldnn.enabled = onednn
    return x


def render(tensors: list[torch.Tensor], cfg: GridConfig, group_size: int, height: int, width: int,
           count: int | None = None, reference: torch.Tensor | None = None) -> torch.Tensor:
    """The first ``count`` frames ``(count, 3, H, W)`` (about [0, 1]) of one group from its
    tensors in file order: the decoder's path and the encoder's final reconstruction.

    Each frame is the synthesis output (its *residual*) plus what it is rendered on:

    * mid-gray, in a key group or without motion;
    * with motion (``cfg.motion``) in a warm group, the motion prediction from ``reference``
      (the previous group's last decoded frame ``(3, H, W)`` in [0, 1]; None for a key group);
    * with ``cfg.chain``, for a frame after the first whose chain value is 1, the motion
      prediction from the frame before as decoded (:func:`nirvana.motion.to_reference`). In
      a warm group the frame adds its residual to it; in a key group, whose grids hold the
      content itself, the *change* of the residual from the frame before, so that content
      the motion carries is not added twice.

    Frames are synthesized one at a time, so memory stays at one frame's features whatever
    the group size and resolution (and the arithmetic never depends on a batch size).
    """
    count = group_size if count is None else count
    grids, weights = tensors[:cfg.levels], tensors[cfg.levels:]
    moves, chained = motion_references(tensors, cfg, group_size)
    frames: list[torch.Tensor] = []
    previous = None  # the residual of the frame before
    planes = None  # the reference's sub-pixel planes, made once for the frames moved from it
    for t in range(count):
        residual = synthesize(upsample_levels(grids, group_size, height, width, slice(t, t + 1)), weights, cfg, 0.0)
        if t > 0 and chained[t]:
            frames.append(chained_frame(moved(to_reference(frames[-1][0]), moves[t], cfg), residual, previous,
                                        warm=reference is not None))
        elif moves is not None and reference is not None:
            if planes is None:
                planes = reference_planes(reference, cfg)
            frames.append(residual + moved(reference, moves[t], cfg, planes))
        else:
            frames.append(residual + 0.5)
        previous = residual
    return torch.cat(frames)


def chained_frame(moved_before: torch.Tensor, residual: torch.Tensor, previous: torch.Tensor,
                  warm: bool) -> torch.Tensor:
    """A chained frame: the frame before as decoded, moved (``moved_before``, ``(3, H, W)``),
    plus the frame's ``residual`` in a warm group, or in a key group (whose grids hold the
    content itself) the change of the residual from the frame before's (``previous``), so
    that what the motion carries is not added twice."""
    return (residual if warm else residual - previous) + moved_before


def moved(frame: torch.Tensor, move: torch.Tensor, cfg: GridConfig,
          planes: torch.Tensor | None = None) -> torch.Tensor:
    """``frame`` ``(3, H, W)`` moved by one frame's displacements ``move`` as ``cfg`` says
    (block size, precision, overlap, interpolation): :func:`nirvana.motion.shift`; ``planes``:
    :func:`reference_planes` of ``frame`` where several moves read it."""
    return shift(frame, move, cfg.motion, cfg.subpel, cfg.overlap, cfg.interpolation, planes)


def reference_planes(frame: torch.Tensor, cfg: GridConfig) -> torch.Tensor | None:
    """The sub-pixel planes that ``cfg``'s moves read from ``frame`` (None: they read the
    frame itself)."""
    planes = plane_subpel(cfg.subpel, cfg.interpolation)
    return subpel_planes(frame, planes) if planes else None


def motion_references(tensors: list[torch.Tensor], cfg: GridConfig,
                      group_size: int) -> tuple[torch.Tensor | None, list[bool]]:
    """A group's displacements ``(G, 2, By, Bx)`` (None without motion) and, per frame,
    whether it is chained (moved from the frame before). The frames of a hostile file that
    hold anything but 1 in the chain tensor are not chained."""
    if not cfg.motion:
        return None, [False] * group_size
    moves = displacements(tensors[-2 if cfg.chain else -1], cfg.subpel)
    chained = [bool(v == 1) for v in tensors[-1].tolist()] if cfg.chain else [False] * group_size
    return moves.to(tensors[0].device), chained
