"""One group chunk's payload: stats, then per tensor its mode, scale and entropy-coded latents.

A key group codes every tensor as it is (intra). Any other group codes each tensor intra, as
the residual from the previous group's latents, or as the residual from the previous group's
latents *carried* forward in time (every index along axis 1, a grid level's time axis,
replaced by the last one: the previous group's latest state), whichever blob is smallest;
the choice is stored per tensor. Where the network has a context model (``context``, a
:class:`ContextLayout`), a grid level may also be coded by it (:mod:`codec.context_coder`),
in key groups too; such levels are decoded last, from the coarsest, because each one's
context reads the next-coarser level. Since format version 6 the motion tensor may be coded
with adaptive context counts (:mod:`codec.motion_coder`), seeded in a warm group by the
previous group's motion. Since format version 3 the tensor table is compact:
varint lengths, a scale only where it differs from the previous group's (warm groups keep
their steps), and an empty blob for an all-zero tensor or residual; since version 5 a blob
length below 31 sits in its record's mode byte; since version 7 the ANS symbols of all the
group's blobs share one stream at the payload's end (each blob's final coder state, about 3
bytes, is paid once per group); since version 8 a context-coded level's tables are split by
the activity of each value's neighbours (:func:`codec.context_coder.activity`). Byte layout:
see :mod:`codec.bitstream`.

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

import constriction
import numpy as np

from codec.context_coder import LevelTables, decode_level, encode_level
from codec.entropy import (INT32_MAX, INT32_MIN, BlobReader, Coded, ans_bytes, ans_decoder, decode_ints, encode_coded,
                           push, split_sizes, varint)
from codec.errors import BitstreamError
from codec.motion_coder import decode_motion, encode_motion
from nirvana.context import ALL_INPUTS, CONTEXT_TENSORS, FixedPointContext
from nirvana.kinds import KINDS

INTRA, RESIDUAL, CARRIED, CONTEXT = 0, 1, 2, 3
KEY_FLAG = 0x01
COMPACT = 3  # the first format version with compact payloads
SHORT_LENGTHS = 5  # the first with blob lengths in the mode byte (written since)
MOTION_CONTEXT = 6  # the first with a context-coded motion tensor
SHARED_STREAM = 7  # the first with one ANS stream per group, after the blobs
ACTIVITY_TABLES = 8  # the first whose context tables are split by the neighbours' misses
SCALE_FLAG = 0x04  # compact record: a scale follows its mode byte
_MODE_BITS = 0x03
LENGTH_SHIFT = 3  # version 5 on: a record's mode byte holds min(blob length, LONG) above bit 2
LONG = 0x1F  # ... and a blob of LONG bytes or more has varint(length - LONG) after the scale
_HEAD = struct.Struct("<BBIfH")  # versions 1-2: flags, num_frames, iterations, psnr, tensor count
_TENSOR = struct.Struct("<BfI")  # versions 1-2: mode, scale, blob length
_SCALE = struct.Struct("<f")
_ZERO_BLOB = encode_coded(np.zeros(1, np.int32)).data  # a constant 0: written as an empty blob
_ANS = constriction.stream.stack.AnsCoder
U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class ContextLayout:
    """Where a network's context-coded tensors sit: tensors ``0 .. levels - 1`` are its grid
    levels (finest first; ``levels`` is 0 without a context model), the context model's
    tensors start at ``start``, and ``motion`` is the motion tensor's index (or None)."""

    levels: int
    start: int
    inputs: int = ALL_INPUTS  # the features it reads (nirvana.context)
    motion: int | None = None

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
    modes: list[int] = field(default_factory=list)  # INTRA, RESIDUAL, CARRIED or CONTEXT per tensor
    weight_bytes: int = 0  # entropy-coded payload bytes
    side_bytes: int = 0  # everything else: tables, scales, modes, stats, lengths
    tensor_bytes: list[int] = field(default_factory=list)  # each tensor's blob + its record
    head_bytes: int = 0  # flags, frame count, stats and tensor count
    stats_bytes: int = 0  # of those, the encoder statistics the decoder does not need
    tables: list[LevelTables] | None = None  # format 7 on: each context level's tables after this group


def pack_group(g: GroupPayload, prev: list[np.ndarray] | None,
               context: ContextLayout | None = None, prev_scales: list[float] | None = None,
               residuals: bool = True, prev_tables: list[LevelTables] | None = None) -> bytes:
    """Serialize ``g`` (the current format version's compact payload); non-key groups may
    code tensors as residuals against ``prev`` (unless ``residuals`` is False) and leave
    out the scales equal to ``prev_scales``; grid levels may be coded by the context model of
    ``context``, with the tables the previous group left (``prev_tables``, its ``tables``),
    and its motion tensor with counts seeded by ``prev``'s motion.

    Fills ``g.modes``, the byte counts, ``g.tensor_bytes`` and ``g.tables``. Example: see the
    module doc.
    """
    if len(g.latents) != len(g.scales) or len(g.latents) > 0xFFFF:
        raise ValueError(f"{len(g.latents)} latent tensors but {len(g.scales)} scales")
    if not 1 <= g.num_frames <= 0xFF or not 0 <= g.iterations <= U32_MAX:
        raise ValueError(f"num_frames={g.num_frames} or iterations={g.iterations} out of range")
    for name, other in (("prev", prev), ("prev_scales", prev_scales)):
        if other is not None and len(other) != len(g.latents):
            raise ValueError(f"{name} has {len(other)} tensors, the group {len(g.latents)}")
    reference = None if g.is_key or not residuals else prev
    inherited = None if g.is_key else prev_scales
    model = None if context is None or not context.levels else context.model(g.latents, g.scales)
    g.tables = _level_tables(context, None if g.is_key else prev_tables)
    coded, records, g.modes = [], [], []
    for i, (latent, scale) in enumerate(zip(g.latents, g.scales)):
        if not math.isfinite(scale):
            raise ValueError(f"tensor {i} has a non-finite scale {scale}")
        mode, best = _smallest(np.asarray(latent), None if reference is None else reference[i])
        if model is not None and i < context.levels:
            coarser = g.latents[i + 1] if i + 1 < context.levels else None
            adapted = g.tables[i].copy()
            level = encode_level(latent, coarser, None if reference is None else reference[i], model, i, adapted)
            if level.size < best.size:
                mode, best = CONTEXT, level
                g.tables[i] = adapted
        if context is not None and i == context.motion:
            motion = encode_motion(latent, None if g.is_key or prev is None else prev[i])
            if motion.size < best.size:
                mode, best = CONTEXT, motion
        if best.data == _ZERO_BLOB and not best.chunks:
            best = Coded(b"")
        short = min(len(best.data), LONG)
        record = bytes([mode | short << LENGTH_SHIFT])
        if inherited is None or _SCALE.pack(scale) != _SCALE.pack(inherited[i]):
            record = bytes([record[0] | SCALE_FLAG]) + _SCALE.pack(scale)
        coded.append(best)
        records.append(record + (varint(len(best.data) - LONG) if short == LONG else b""))
        g.modes.append(mode)
    order = _decode_order(g.modes, context)
    coder, bits = _ANS(), [0] * len(coded)
    for i in reversed(order):
        before = coder.num_valid_bits()
        push(coder, coded[i].chunks)
        bits[i] = coder.num_valid_bits() - before
    stream = ans_bytes(coder)
    head = (bytes([KEY_FLAG if g.is_key else 0, g.num_frames]) + varint(g.iterations)
            + _SCALE.pack(g.psnr) + varint(len(coded)))
    data = head + b"".join(records) + b"".join(c.data for c in coded) + stream
    g.weight_bytes = len(stream) + sum(_weight_bytes(mode, c.data) for mode, c in zip(g.modes, coded))
    g.side_bytes = len(data) - g.weight_bytes
    shares = _stream_shares(bits, order, len(stream))
    g.tensor_bytes = [len(c.data) + len(record) + share for c, record, share in zip(coded, records, shares)]
    g.head_bytes = len(head)
    g.stats_bytes = len(varint(g.iterations)) + _SCALE.size
    return data


def _level_tables(context: ContextLayout | None, prev: list[LevelTables] | None,
                  version: int = ACTIVITY_TABLES) -> list[LevelTables] | None:
    """Each context level's tables at the start of a group: the previous group's (a warm
    group's), else fresh ones for format ``version``; None without a context model."""
    if context is None or not context.levels:
        return None
    if prev is None:
        return [LevelTables(activity=version >= ACTIVITY_TABLES) for _ in range(context.levels)]
    if len(prev) != context.levels:
        raise BitstreamError(f"the previous group has tables for {len(prev)} levels, not {context.levels}")
    return list(prev)


def _decode_order(modes: list[int], context: ContextLayout | None) -> list[int]:
    """The order in which a decoder reads the tensors' symbols: every tensor but the
    context-coded grid levels in file order, then those levels from the coarsest (each one's
    context reads the next-coarser level)."""
    levels = context.levels if context is not None else 0
    late = [i for i in reversed(range(levels)) if modes[i] == CONTEXT]
    return [i for i in range(len(modes)) if i not in late] + late


def _valid_bits(stream) -> int:
    """Where a decoder is in the group's ANS stream (0 before format 7: no shared stream)."""
    return 0 if stream is None else stream.num_valid_bits()


def _stream_shares(bits: list[int], order: list[int], stream_bytes: int) -> list[int]:
    """Each tensor's bytes of the shared stream: its ANS bits (``bits``, per tensor), summed in
    decode ``order`` and rounded up to whole bytes; the first tensor read also takes what the
    stream holds beyond them (its final state), so that the shares sum to ``stream_bytes``."""
    shares, total = [0] * len(bits), 0
    for i in order:
        shares[i] = -(-(total + bits[i]) // 8) - -(-total // 8)
        total += bits[i]
    if order:
        shares[order[0]] += stream_bytes - sum(shares)
    return shares


def unpack_group(
    data: bytes, shapes: list[tuple[int, ...]], prev: list[np.ndarray] | None,
    context: ContextLayout | None = None, prev_scales: list[float] | None = None,
    version: int = ACTIVITY_TABLES, prev_tables: list[LevelTables] | None = None,
) -> GroupPayload:
    """Parse a payload of format ``version`` (:func:`pack_group` writes the current one),
    rebuilding exact int32 latents of ``shapes``; ``prev``, ``prev_scales`` and
    ``prev_tables`` are the previous group's latents, scales and context tables (residuals,
    inherited scales and, from format 7 on, context-coded levels refer to them).

    Raises BitstreamError when the payload is damaged or does not fit ``shapes`` / ``prev``.
    Example: see the module doc.
    """
    if version >= COMPACT:
        g, records, pos = _read_table(data, len(shapes), short_lengths=version >= SHORT_LENGTHS)
    else:
        g, records, pos = _read_fixed_table(data, len(shapes))
    end = pos + sum(length for _, _, length, _ in records)
    if end > len(data) or (end != len(data) and version < SHARED_STREAM):
        raise BitstreamError("group payload length does not match its tensor table")
    stream = ans_decoder(data[end:]) if version >= SHARED_STREAM else None
    blobs, bits = [], [0] * len(records)
    for i, (mode, scale, length, record_bytes) in enumerate(records):
        if scale is None:  # compact record: the previous group's scale
            if g.is_key or prev_scales is None or i >= len(prev_scales):
                raise BitstreamError(f"tensor {i} has no scale and no previous group to take it from")
            scale = prev_scales[i]
        blobs.append(data[pos : pos + length])
        pos += length
        g.scales.append(scale)
        g.modes.append(mode)
        g.tensor_bytes.append(length + record_bytes)
        g.weight_bytes += _weight_bytes(mode, blobs[i])
        before = _valid_bits(stream)
        if mode == CONTEXT and context is not None and i == context.motion:
            if version < MOTION_CONTEXT:
                raise BitstreamError(f"tensor {i} (motion) has an unknown coding mode {mode}")
            previous = None if g.is_key else _previous(prev, i, tuple(shapes[i]))
            try:
                g.latents.append(decode_motion(blobs[i], tuple(shapes[i]), previous, stream))
            except BitstreamError as e:
                raise BitstreamError(f"tensor {i}: {e}") from None
        elif mode == CONTEXT:
            if context is None or i >= context.levels:
                raise BitstreamError(f"tensor {i} is context-coded but is no grid level of a "
                                     "network with a context model")
            g.latents.append(None)
        else:
            g.latents.append(_decode_tensor(i, blobs[i], mode, scale, tuple(shapes[i]), g.is_key, prev,
                                            empty_is_zero=version >= COMPACT, stream=stream))
        bits[i] = before - _valid_bits(stream)
    if stream is not None:
        g.tables = _level_tables(context, None if g.is_key else prev_tables, version)
    if CONTEXT in g.modes[:context.levels if context else 0]:
        model = context.model(g.latents, g.scales)
        for i in reversed(range(context.levels)):
            if g.modes[i] == CONTEXT:
                coarser = g.latents[i + 1] if i + 1 < context.levels else None
                previous = None if g.is_key or prev is None else prev[i]
                if previous is not None and previous.shape != tuple(shapes[i]):
                    raise BitstreamError(f"tensor {i} has no matching previous group")
                before = _valid_bits(stream)
                adapted = None if g.tables is None else g.tables[i].copy()
                try:
                    g.latents[i] = decode_level(blobs[i], tuple(shapes[i]), coarser, previous, model, i,
                                                stream=stream, level_tables=adapted)
                except BitstreamError as e:
                    raise BitstreamError(f"tensor {i}: {e}") from None
                if adapted is not None:
                    g.tables[i] = adapted
                bits[i] = before - _valid_bits(stream)
    if stream is not None:
        if not stream.is_empty():
            raise BitstreamError("group payload's ANS stream holds more than its tensors; it is damaged")
        shares = _stream_shares(bits, _decode_order(g.modes, context), len(data) - end)
        g.tensor_bytes = [n + share for n, share in zip(g.tensor_bytes, shares)]
        g.weight_bytes += len(data) - end
    g.side_bytes = len(data) - g.weight_bytes
    return g


Record = tuple[int, float | None, int, int]  # mode, scale (None: the previous group's), blob length, record bytes


def _read_table(data: bytes, expected: int, short_lengths: bool) -> tuple[GroupPayload, list[Record], int]:
    """The compact head and tensor table (version 3 on; ``short_lengths``: version 5 on):
    the payload's stats and flags, the records, and where the blobs start."""
    reader = BlobReader(data, "group payload")
    flags, num_frames = reader.byte(), reader.byte()
    iterations = reader.varint(U32_MAX)
    (psnr,) = _SCALE.unpack(reader.take(_SCALE.size))
    stats_end = reader.pos
    count = reader.varint(0xFFFF)
    g = _checked_head(flags, num_frames, iterations, psnr, count, expected)
    g.head_bytes, g.stats_bytes = reader.pos, stats_end - 2
    records = []
    for i in range(count):
        start = reader.pos
        head = reader.byte()
        short = head >> LENGTH_SHIFT
        if short and not short_lengths:
            raise BitstreamError(f"tensor {i} has an unknown coding mode {head}")
        scale = _SCALE.unpack(reader.take(_SCALE.size))[0] if head & SCALE_FLAG else None
        if short_lengths:
            length = short + (reader.varint(len(data)) if short == LONG else 0)
        else:
            length = reader.varint(len(data))
        records.append((head & _MODE_BITS, scale, length, reader.pos - start))
    return g, records, reader.pos


def _read_fixed_table(data: bytes, expected: int) -> tuple[GroupPayload, list[Record], int]:
    """:func:`_read_table` for versions 1 and 2: fixed-size head and records."""
    if len(data) < _HEAD.size:
        raise BitstreamError(f"group payload of {len(data)} bytes is shorter than its header")
    g = _checked_head(*_HEAD.unpack_from(data), expected)
    g.head_bytes, g.stats_bytes = _HEAD.size, 8
    pos = _HEAD.size + expected * _TENSOR.size
    if len(data) < pos:
        raise BitstreamError("group payload is truncated inside its tensor table")
    records = [(*_TENSOR.unpack_from(data, _HEAD.size + i * _TENSOR.size), _TENSOR.size)
               for i in range(expected)]
    return g, records, pos


def _checked_head(flags: int, num_frames: int, iterations: int, psnr: float, count: int,
                  expected: int) -> GroupPayload:
    if flags & ~KEY_FLAG or num_frames == 0:
        raise BitstreamError(f"group payload has bad flags {flags} or frame count {num_frames}")
    if count != expected:
        raise BitstreamError(f"group holds {count} tensors, the network has {expected}")
    return GroupPayload(bool(flags & KEY_FLAG), num_frames, iterations, psnr, [], [])


def _previous(prev: list[np.ndarray] | None, i: int, shape: tuple[int, ...]) -> np.ndarray:
    """The previous group's tensor ``i``, which a warm group's tensor of ``shape`` refers to."""
    if prev is None or i >= len(prev) or prev[i].shape != shape:
        raise BitstreamError(f"tensor {i} refers to the previous group, but no matching one is given")
    return prev[i]


def _weight_bytes(mode: int, blob: bytes) -> int:
    """The entropy-coded bytes of a tensor's blob (its model description aside)."""
    if mode == CONTEXT or not blob:
        return len(blob)
    return split_sizes(blob)[0]


def carried(previous: np.ndarray) -> np.ndarray:
    """The previous group's tensor with every index along axis 1 replaced by the last.

    >>> carried(np.array([[1, 2, 3], [4, 5, 6]])).tolist()
    [[3, 3, 3], [6, 6, 6]]
    """
    return np.broadcast_to(previous[:, -1:], previous.shape)


def _smallest(latent: np.ndarray, reference: np.ndarray | None) -> tuple[int, Coded]:
    """(mode, coded tensor) of the smallest of intra, residual and carried coding; ties go to
    the lower mode."""
    best = (INTRA, encode_coded(latent))
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
        coded = encode_coded(residual)
        if coded.size < best[1].size:
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
    empty_is_zero: bool,
    stream=None,
) -> np.ndarray:
    if mode not in (INTRA, RESIDUAL, CARRIED):
        raise BitstreamError(f"tensor {i} has an unknown coding mode {mode}")
    if not math.isfinite(scale):
        raise BitstreamError(f"tensor {i} has a non-finite scale {scale}")
    try:
        if empty_is_zero and not blob:
            values = np.zeros(shape, np.int32)
        else:
            values = decode_ints(blob, math.prod(shape), stream).reshape(shape)
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
