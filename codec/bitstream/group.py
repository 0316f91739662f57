"""One group chunk's payload: stats, then per tensor its mode, scale and entropy-coded latents.

A key group codes every tensor as it is (intra). Any other group codes each tensor intra, as
the residual from the previous group's latents, or as the residual from the previous group's
latents *carried* forward in time (every index along axis 1, a grid level's time axis,
replaced by the last one: the previous group's latest state), whichever blob is smallest;
the choice is stored per tensor. Where the network has a context model (``context``, a
:class:`ContextLayout`), a grid level may also be coded by it (:mod:`codec.context_coder`),
in key groups too; such levels are decoded last, from the coarsest, because each one's
context reads the next-coarser level. Byte layout: see :mod:`codec.bitstream`.

Example:
    >>> import numpy as np
    >>> g = GroupPayload(is_key=True, num_frames=3, iterations=500, psnr=31.5,
    ...                  latents=[np.array([[1, 0], [0, -2]])], scales=[0.01])
    >>> data = pack_group(g, prev=None)
    >>> unpack_group(data, shapes=[(2, 2)], prev=None).latents[0].tolist()
    [[1, 0], [0, -2]]
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from codec.context_coder import decode_level, encode_level
from codec.entropy import INT32_MAX, INT32_MIN, decode_ints, encode_ints, split_sizes
from codec.errors import BitstreamError
from nirvana.context import ALL_INPUTS, CONTEXT_TENSORS, FixedPointContext
from nirvana.kinds import KINDS

INTRA, RESIDUAL, CARRIED, CONTEXT = 0, 1, 2, 3
KEY_FLAG = 0x01
STATS_BYTES = 8  # iterations and psnr: encoder statistics the decoder does not need
_HEAD = struct.Struct("<BBIfH")  # flags, num_frames, iterations, psnr, tensor count
_TENSOR = struct.Struct("<BfI")  # mode, scale, blob length


@dataclass(frozen=True)
class ContextLayout:
    """Where a network's context model sits: tensors ``0 .. levels - 1`` are its grid levels
    (finest first) and the context model's tensors start at ``start``."""

    levels: int
    start: int
    inputs: int = ALL_INPUTS  # the features it reads (nirvana.context)

    @classmethod
    def of(cls, kind: str, network) -> ContextLayout | None:
        """The layout of a network of ``kind`` with config ``network``; None without a context model."""
        layout = KINDS[kind].context_layout(network)
        return None if layout is None else cls(*layout)

    def model(self, latents: list[np.ndarray], scales: list[float]) -> FixedPointContext:
        end = self.start + CONTEXT_TENSORS
        return FixedPointContext(latents[self.start:end], scales[self.start:end], self.inputs)


@dataclass
class GroupPayload:
    """Everything one group chunk holds; ``modes`` and the byte counts are filled by pack/unpack."""

    is_key: bool
    num_frames: int  # frames in this group (1..group_size)
    iterations: int  # training iterations spent (stats)
    psnr: float  # encoder's PSNR of this group's reconstruction (stats)
    latents: list[np.ndarray]  # int32 arrays, one per weight tensor, in network order
    scales: list[float]  # one float32 quantization step per tensor
    modes: list[int] = field(default_factory=list)  # INTRA, RESIDUAL or CARRIED per tensor
    weight_bytes: int = 0  # entropy-coded payload bytes
    side_bytes: int = 0  # everything else: tables, scales, modes, stats, lengths
    tensor_bytes: list[int] = field(default_factory=list)  # each tensor's blob + its record


def pack_group(g: GroupPayload, prev: list[np.ndarray] | None,
               context: ContextLayout | None = None) -> bytes:
    """Serialize ``g``; non-key groups may code tensors as residuals against ``prev``, and
    grid levels may be coded by the context model of ``context``.

    Fills ``g.modes``, ``g.weight_bytes`` and ``g.side_bytes``. Example: see the module doc.
    """
    if len(g.latents) != len(g.scales) or len(g.latents) > 0xFFFF:
        raise ValueError(f"{len(g.latents)} latent tensors but {len(g.scales)} scales")
    if not 1 <= g.num_frames <= 0xFF or not 0 <= g.iterations <= 0xFFFFFFFF:
        raise ValueError(f"num_frames={g.num_frames} or iterations={g.iterations} out of range")
    if prev is not None and len(prev) != len(g.latents):
        raise ValueError(f"prev has {len(prev)} tensors, the group {len(g.latents)}")
    reference = None if g.is_key else prev
    model = None if context is None else context.model(g.latents, g.scales)
    blobs, records, g.modes = [], [], []
    for i, (latent, scale) in enumerate(zip(g.latents, g.scales)):
        if not math.isfinite(scale):
            raise ValueError(f"tensor {i} has a non-finite scale {scale}")
        mode, blob = _smallest(np.asarray(latent), None if reference is None else reference[i])
        if model is not None and i < context.levels:
            coarser = g.latents[i + 1] if i + 1 < context.levels else None
            coded = encode_level(latent, coarser, None if reference is None else reference[i],
                                 model, i)
            if len(coded) < len(blob):
                mode, blob = CONTEXT, coded
        blobs.append(blob)
        records.append(_TENSOR.pack(mode, scale, len(blob)))
        g.modes.append(mode)
    head = _HEAD.pack(KEY_FLAG if g.is_key else 0, g.num_frames, g.iterations, g.psnr, len(blobs))
    data = head + b"".join(records) + b"".join(blobs)
    g.weight_bytes = sum(len(blob) if mode == CONTEXT else split_sizes(blob)[0]
                         for mode, blob in zip(g.modes, blobs))
    g.side_bytes = len(data) - g.weight_bytes
    g.tensor_bytes = [len(blob) + _TENSOR.size for blob in blobs]
    return data


def unpack_group(
    data: bytes, shapes: list[tuple[int, ...]], prev: list[np.ndarray] | None,
    context: ContextLayout | None = None,
) -> GroupPayload:
    """Parse a payload from :func:`pack_group`, rebuilding exact int32 latents of ``shapes``.

    Raises BitstreamError when the payload is damaged or does not fit ``shapes`` / ``prev``.
    Example: see the module doc.
    """
    if len(data) < _HEAD.size:
        raise BitstreamError(f"group payload of {len(data)} bytes is shorter than its header")
    flags, num_frames, iterations, psnr, count = _HEAD.unpack_from(data)
    if flags & ~KEY_FLAG or num_frames == 0:
        raise BitstreamError(f"group payload has bad flags {flags} or frame count {num_frames}")
    if count != len(shapes):
        raise BitstreamError(f"group holds {count} tensors, the network has {len(shapes)}")
    pos = _HEAD.size + count * _TENSOR.size
    if len(data) < pos:
        raise BitstreamError("group payload is truncated inside its tensor table")
    records = [_TENSOR.unpack_from(data, _HEAD.size + i * _TENSOR.size) for i in range(count)]
    if pos + sum(length for _, _, length in records) != len(data):
        raise BitstreamError("group payload length does not match its tensor table")
    g = GroupPayload(bool(flags & KEY_FLAG), num_frames, iterations, psnr, [], [])
    blobs = []
    for i, (mode, scale, length) in enumerate(records):
        blobs.append(data[pos : pos + length])
        pos += length
        g.scales.append(scale)
        g.modes.append(mode)
        g.tensor_bytes.append(length + _TENSOR.size)
        if mode == CONTEXT:
            if context is None or i >= context.levels:
                raise BitstreamError(f"tensor {i} is context-coded but is no grid level of a "
                                     "network with a context model")
            g.latents.append(None)
            g.weight_bytes += length
        else:
            g.latents.append(_decode_tensor(i, blobs[i], mode, scale, tuple(shapes[i]), g.is_key, prev))
            g.weight_bytes += split_sizes(blobs[i])[0]
    if CONTEXT in g.modes:
        model = context.model(g.latents, g.scales)
        for i in reversed(range(context.levels)):
            if g.modes[i] == CONTEXT:
                coarser = g.latents[i + 1] if i + 1 < context.levels else None
                previous = None if g.is_key or prev is None else prev[i]
                if previous is not None and previous.shape != tuple(shapes[i]):
                    raise BitstreamError(f"tensor {i} has no matching previous group")
                try:
                    g.latents[i] = decode_level(blobs[i], tuple(shapes[i]), coarser, previous, model, i)
                except BitstreamError as e:
                    raise BitstreamError(f"tensor {i}: {e}") from None
    g.side_bytes = len(data) - g.weight_bytes
    return g


def carried(previous: np.ndarray) -> np.ndarray:
    """The previous group's tensor with every index along axis 1 replaced by the last.

    >>> carried(np.array([[1, 2, 3], [4, 5, 6]])).tolist()
    [[3, 3, 3], [6, 6, 6]]
    """
    return np.broadcast_to(previous[:, -1:], previous.shape)


def _smallest(latent: np.ndarray, reference: np.ndarray | None) -> tuple[int, bytes]:
    """(mode, blob) of the smallest of intra, residual and carried coding; ties go to the
    lower mode."""
    best = (INTRA, encode_ints(latent))
    if reference is None:
        return best
    reference = np.asarray(reference)
    if reference.shape != latent.shape:
        raise ValueError(f"prev shape {reference.shape} differs from {latent.shape}")
    predictions = [(RESIDUAL, reference)]
    if latent.ndim >= 2 and latent.shape[1] > 1:
        predictions.append((CARRIED, carried(reference)))
    for mode, prediction in predictions:
        residual = latent.astype(np.int64) - prediction.astype(np.int64)
        if residual.size and (residual.min() < INT32_MIN or residual.max() > INT32_MAX):
            continue
        coded = encode_ints(residual)
        if len(coded) < len(best[1]):
            best = (mode, coded)
    return best


def _decode_tensor(
    i: int,
    blob: bytes,
    mode: int,
    scale: float,
    shape: tuple[int, ...],
    is_key: bool,
    prev: list[np.ndarray] | None,
) -> np.ndarray:
    if mode not in (INTRA, RESIDUAL, CARRIED):
        raise BitstreamError(f"tensor {i} has an unknown coding mode {mode}")
    if not math.isfinite(scale):
        raise BitstreamError(f"tensor {i} has a non-finite scale {scale}")
    try:
        values = decode_ints(blob, math.prod(shape)).reshape(shape)
    except BitstreamError as e:
        raise BitstreamError(f"tensor {i}: {e}") from None
    if mode == INTRA:
        return values
    if is_key:
        raise BitstreamError(f"tensor {i} of a key group is coded as a residual")
    if prev is None or i >= len(prev) or prev[i].shape != shape:
        raise BitstreamError(f"tensor {i} is a residual but no matching previous group is given")
    if mode == CARRIED and len(shape) < 2:
        raise BitstreamError(f"tensor {i} of {len(shape)} dimension(s) cannot be carried in time")
    latent = values.astype(np.int64) + (prev[i] if mode == RESIDUAL else carried(prev[i]))
    if latent.size and (latent.min() < INT32_MIN or latent.max() > INT32_MAX):
        raise BitstreamError(f"tensor {i} residual overflows int32")
    return latent.astype(np.int32)
