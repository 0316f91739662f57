"""Entropy coding of a group's motion tensor with adaptive context counts (format 6 on).

The motion tensor ``(G, 2, By, Bx)`` (:mod:`nirvana.motion`: per frame and axis, each block's
change of displacement) is mostly zeros, and its nonzero values come in clusters: where a
block's motion changes, so does its neighbours', the other axis' and often the frame
before's. Each value is coded as a zero flag, then, if it is not zero, a sign and a
magnitude ``|v| - 1`` (from ``ESCAPE`` on, the excess follows in an escape blob), each under a
context read from values decoded before it:

* the pass order: frame by frame, axis 0 then axis 1, each as two checkerboard phases
  (``(y + x) % 2`` = 0, then 1), so a pass is decoded at once, with no loop per value;
* the neighbours: in phase 1 the four blocks beside it (same frame and axis), for axis 1 the
  same block of axis 0 and its four neighbours, and the same block in the frame before;
* the zero flag's context: the share of nonzero neighbours of the same frame (none known, or
  below a third, two thirds, or above), times whether the frame before's value is nonzero
  (:data:`ZERO_CONTEXTS`); the sign's: the sign of the neighbours' summed signs; the
  magnitude's: the neighbours' largest magnitude (1 or less, up to 3, more).

No model is stored. Every context's probabilities are integer counts that start at 1 (plus,
in a warm group, half the counts that the previous group's motion tensor gives in the same
order) and take in each pass's symbols once the pass is done, so the decoder rebuilds every
count exactly; the ANS coder reads them as float64 frequencies, as :mod:`codec.entropy` does.
Measured on carphone, bikes and bigbuckbunny files: 9-14 % fewer motion bytes than the best
single table (``benchmarks/results/repack_*.md``).

Blob layout (mode 3 of a group payload's record for the motion tensor, format 6 on)::

    varint escapes     number of escaped magnitudes (<= the tensor's value count)
    varint length      bytes of the escape blob
    escape blob        codec.entropy blob of the escaped magnitudes' excess, in decode order
    u32 words          format 6: ANS (constriction AnsCoder, Categorical(counts as float64,
                       perfect=False)) of the flags, signs and magnitudes, to the end of the
                       blob, without the zero bytes that end the last word

From format 7 on the blob ends after the escape blob: the escape blob's symbols and then the
flags, signs and magnitudes are read from the group's shared ANS stream
(:class:`codec.entropy.Coded`).

Example:
    >>> import numpy as np
    >>> motion = np.zeros((3, 2, 4, 5), np.int32)
    >>> motion[1, :, 1:3, 2:] = [[[2, 2, 1], [2, 2, 2]], [[-1, -1, -1], [0, -1, -12]]]
    >>> coded = encode_motion(motion, None)
    >>> bool((decode_motion(coded.data, motion.shape, None, coded.stream()) == motion).all())
    True
"""

from __future__ import annotations

from functools import lru_cache

import constriction
import numpy as np

from codec.entropy import INT32_MAX, BlobReader, Coded, ans_words, decode_ints, encode_coded, runs, varint
from codec.errors import BitstreamError

ZERO_CONTEXTS = 8  # 4 shares of nonzero same-frame neighbours x the frame before's value nonzero
SIGN_CONTEXTS = 3  # the neighbours' summed signs below, at or above zero
MAGNITUDE_CONTEXTS = 3  # the neighbours' largest magnitude: <= 1, <= 3, more
ESCAPE = 7  # magnitude symbols 0..6 are |v| - 1; ESCAPE: |v| - 1 - ESCAPE follows as an escape
_ANS = constriction.stream.stack.AnsCoder
_SIDES = ((1, 0), (0, 1), (1, 2), (2, 1))  # left, up, right, down in a plane padded by 1


class _Counts:
    """The adaptive counts of the three symbol kinds, one row per context."""

    def __init__(self) -> None:
        self.zero = np.ones((ZERO_CONTEXTS, 2), np.int64)
        self.sign = np.ones((SIGN_CONTEXTS, 2), np.int64)
        self.magnitude = np.ones((MAGNITUDE_CONTEXTS, ESCAPE + 1), np.int64)

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.zero, self.sign, self.magnitude

    def seed(self, previous: np.ndarray) -> None:
        """Add half the counts that the motion tensor ``previous`` gives, coded in this order."""
        seen = _Counts()
        for t, axis, phase in _passes(previous.shape):
            contexts, cells = _contexts(previous, t, axis, phase)
            seen.add(contexts, _symbols(previous[t, axis][cells]))
        for mine, theirs in zip(self.tables(), seen.tables()):
            mine += (theirs - 1) // 2

    def add(self, contexts: tuple[np.ndarray, ...], symbols: tuple[np.ndarray, ...]) -> None:
        zero_ctx, sign_ctx, magnitude_ctx = contexts
        nonzero = symbols[0] == 1
        for table, ctx, sym in zip(self.tables(), (zero_ctx, sign_ctx[nonzero], magnitude_ctx[nonzero]),
                                   symbols):
            np.add.at(table, (ctx, sym), 1)


def _passes(shape: tuple[int, ...]):
    for t in range(shape[0]):
        for axis in range(shape[1]):
            for phase in (0, 1):
                yield t, axis, phase


def _neighbours(plane: np.ndarray) -> np.ndarray:
    """The four side neighbours of every cell of ``plane`` ``(H, W)`` as ``(4, H, W)`` (0
    outside the plane)."""
    h, w = plane.shape
    values = np.pad(plane, 1)
    return np.stack([values[dy:dy + h, dx:dx + w] for dy, dx in _SIDES])


@lru_cache(maxsize=16)
def _plane_layout(h: int, w: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per cell of an ``(h, w)`` plane: how many side neighbours lie inside it, and the
    masks of the two checkerboard phases."""
    inside = np.pad(np.ones((h, w), np.int64), 1)
    sides = sum(inside[dy:dy + h, dx:dx + w] for dy, dx in _SIDES)
    parity = np.add.outer(np.arange(h), np.arange(w)) % 2
    return sides, (parity == 0, parity == 1)


def _contexts(motion: np.ndarray, t: int, axis: int, phase: int) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The zero, sign and magnitude contexts of the cells of pass ``(t, axis, phase)`` (in C
    order) and the mask of those cells; reads only values decoded before the pass."""
    h, w = motion.shape[2:]
    sides, phases = _plane_layout(h, w)
    same, count = [], 0
    if phase == 1:
        same.append(_neighbours(motion[t, axis]))
        count = count + sides
    if axis == 1:
        same += [motion[t, 0][None], _neighbours(motion[t, 0])]
        count = count + 1 + sides
    before = motion[t - 1, axis] if t > 0 else np.zeros((h, w), motion.dtype)
    if same:
        near = np.concatenate(same)
        share = np.where(count > 0, 1 + np.minimum(2, 3 * (near != 0).sum(0) // np.maximum(count, 1)), 0)
        signs = np.sign(near).sum(0) + np.sign(before)
        largest = np.maximum(np.abs(near).max(0), np.abs(before))
    else:
        share = np.zeros((h, w), np.int64)
        signs, largest = np.sign(before), np.abs(before)
    zero_ctx = 2 * share + (before != 0)
    sign_ctx = np.sign(signs) + 1
    magnitude_ctx = (largest > 1).astype(np.int64) + (largest > 3)
    cells = phases[phase]
    return tuple(c[cells].astype(np.int64) for c in (zero_ctx, sign_ctx, magnitude_ctx)), cells


def _symbols(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero flags of all ``values``; signs (1: positive) and magnitude symbols of the nonzero."""
    nonzero = values[values != 0].astype(np.int64)
    return ((values != 0).astype(np.int64), (nonzero > 0).astype(np.int64),
            np.minimum(np.abs(nonzero) - 1, ESCAPE))


def _runs(contexts: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(context, positions)`` per context present, positions in order (a stable sort)."""
    order, present, lengths = runs(contexts)
    return list(zip(present.tolist(), np.split(order, np.cumsum(lengths)[:-1])))


def _model(counts: np.ndarray):
    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def encode_motion(motion: np.ndarray, previous: np.ndarray | None) -> Coded:
    """Code the int32 motion tensor ``motion`` ``(G, 2, By, Bx)`` for a group's shared ANS
    stream; ``previous``: the previous group's motion tensor in a warm group (its counts seed
    the model), else None."""
    motion = np.asarray(motion)
    counts = _Counts()
    if previous is not None:
        counts.seed(np.asarray(previous))
    chunks, escapes = [], []
    for t, axis, phase in _passes(motion.shape):
        contexts, cells = _contexts(motion, t, axis, phase)
        values = motion[t, axis][cells]
        symbols = _symbols(values)
        nonzero = symbols[0] == 1
        for table, ctx, sym in zip(counts.tables(), (contexts[0], contexts[1][nonzero],
                                                     contexts[2][nonzero]), symbols):
            chunks += [(_model(table[c]), sym[positions].astype(np.int32)) for c, positions in _runs(ctx)]
        magnitudes = np.abs(values[nonzero].astype(np.int64))
        escapes.append(magnitudes[magnitudes > ESCAPE] - 1 - ESCAPE)
        counts.add(contexts, symbols)
    excess = encode_coded(np.concatenate(escapes) if escapes else np.zeros(0, np.int64))
    n_escapes = sum(e.size for e in escapes)
    return Coded(varint(n_escapes) + varint(len(excess.data)) + excess.data, excess.chunks + tuple(chunks))


def decode_motion(blob: bytes, shape: tuple[int, ...], previous: np.ndarray | None,
                  stream=None) -> np.ndarray:
    """Invert :func:`encode_motion`: the int32 motion tensor of ``shape``; BitstreamError if
    the blob is damaged (it never allocates beyond ``shape``). ``stream``: the group's shared
    AnsCoder (format 7 on; None: the blob's own ANS words, format 6)."""
    if len(shape) != 4:
        raise BitstreamError(f"motion tensor of shape {shape} is not (G, 2, By, Bx)")
    reader = BlobReader(blob, "motion blob")
    n_escapes = reader.varint(int(np.prod(shape)))
    excess = decode_ints(bytes(reader.take(reader.varint(reader.remaining))), n_escapes, stream).astype(np.int64)
    if stream is not None and reader.remaining:
        raise BitstreamError(f"motion blob has {reader.remaining} stray bytes")
    words = ans_words(reader.take(reader.remaining))
    counts = _Counts()
    if previous is not None:
        counts.seed(np.asarray(previous))
    motion = np.zeros(shape, np.int64)
    used = 0
    try:
        coder = _ANS(words) if stream is None else stream
        for t, axis, phase in _passes(shape):
            contexts, cells = _contexts(motion, t, axis, phase)
            flags = _decode_runs(coder, counts.zero, contexts[0])
            nonzero = flags == 1
            signs = _decode_runs(coder, counts.sign, contexts[1][nonzero])
            magnitudes = _decode_runs(coder, counts.magnitude, contexts[2][nonzero]).astype(np.int64) + 1
            escaped = magnitudes > ESCAPE
            if escaped.any():
                n = int(escaped.sum())
                if used + n > excess.size:
                    raise BitstreamError("motion blob has more escapes than it stores")
                magnitudes[escaped] += excess[used:used + n]
                used += n
                if magnitudes.max() > INT32_MAX:
                    raise BitstreamError("motion blob overflows int32")
            values = np.zeros(flags.size, np.int64)
            values[nonzero] = np.where(signs == 1, magnitudes, -magnitudes)
            motion[t, axis][cells] = values
            counts.add(contexts, (flags, signs, np.minimum(magnitudes - 1, ESCAPE)))
    except (ValueError, RuntimeError) as e:
        raise BitstreamError(f"motion blob is damaged ({e})") from None
    if used != excess.size or (stream is None and not coder.is_empty()):
        raise BitstreamError("motion blob does not hold exactly its values; it is damaged")
    return motion.astype(np.int32)


def _decode_runs(coder, table: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    out = np.empty(contexts.size, np.int64)
    for c, positions in _runs(contexts):
        out[positions] = coder.decode(_model(table[c]), positions.size)
    return out


__all__ = ["encode_motion", "decode_motion"]
