"""Entropy coding of one grid level with the context model (:mod:`nirvana.context`).

The level is coded pass by pass (each time slot, then its three lattice phases). In a pass
the context model gives every value a table and an integer ``floor(mu)``; the values are
grouped by table (a stable sort) and each group is one call of the ANS coder with that fixed
table, so there is no Python loop per value. The encoder knows every value and computes the
passes in the decoder's order, then pushes the groups onto the ANS stack in reverse.
Residuals beyond ``±RANGE`` are escaped; their excess magnitudes follow as one ordinary
entropy blob (:mod:`codec.entropy`).

Blob layout (mode 3 of a group payload's tensor record)::

    varint escapes     number of escaped values (<= the level's value count)
    varint length      bytes of the escape blob
    escape blob        codec.entropy blob of the escapes' excess magnitudes, in decode order
    u32 words          formats 2 to 6: ANS (constriction AnsCoder, Categorical(frequencies
                       as float64, perfect=False)) of the table symbols, to the end of the
                       blob; from format 5 on without the zero bytes that end the last word

From format 7 on the blob ends after the escape blob: the escape blob's symbols and then the
table symbols are read from the group's shared ANS stream (:class:`codec.entropy.Coded`),
and the tables adapt to the level as it is coded (:class:`LevelTables`); from format 8 on
each table is split by the value's activity bucket (:func:`activity`).

Example:
    >>> import numpy as np
    >>> from nirvana.context import FEATURES
    >>> weights = [np.zeros((2, FEATURES), np.int32), np.zeros(2, np.int32),
    ...            np.zeros((2, 2), np.int32), np.array([0, 8]), np.zeros(1, np.int32)]
    >>> model = FixedPointContext(weights, [1.0, 1.0, 1.0, 0.125, 1.0])
    >>> values = np.array([[[[0, 1], [-30, 2]]]], np.int32)
    >>> coded = encode_level(values, None, None, model, 0)
    >>> decode_level(coded.data, values.shape, None, None, model, 0, stream=coded.stream()).tolist()
    [[[[0, 1], [-30, 2]]]]
"""

from __future__ import annotations

import time
from functools import lru_cache

import constriction
import numpy as np
import torch

from codec.entropy import (INT32_MAX, INT32_MIN, BlobReader, Coded, ans_words, decode_ints, encode_coded, runs,
                           varint)
from codec.errors import BitstreamError
from nirvana.context import (AXIAL, DIAGONAL, PHASES, RANGE, SCALES, SUBLATTICES, TABLE_TOTAL, FixedPointContext,
                             fill_phase, frequency_table, phase_columns, phase_size, phase_values)

ESCAPE_LOW, ESCAPE_HIGH = 0, 2 * RANGE + 2
SYMBOLS = 2 * RANGE + 3  # a table's symbols: the residuals -RANGE..RANGE and the two escapes
ADAPT_WEIGHT = TABLE_TOTAL // 256  # format 7 on: what each coded symbol adds to its table's count
ACTIVITY_BUCKETS = 4  # format 8 on: tables per (mean, scale), by the neighbours' misses (:func:`activity`)
ACTIVITY_CAP = 3  # a miss counts up to this; neighbours' misses summing to this or more make bucket 2
ACTIVITY_MIN_CELLS = 4096  # a level with fewer cells per time slot keeps one bucket (too few values to split)
_ANS = constriction.stream.stack.AnsCoder


@lru_cache(maxsize=None)
def _frequencies(table: int) -> np.ndarray:
    return frequency_table(table // SCALES, table % SCALES)


@lru_cache(maxsize=None)
def _model(table: int):
    return constriction.stream.model.Categorical(_frequencies(table).astype(np.float64), perfect=False)


class LevelTables:
    """The tables a grid level is coded with. Before format 7 each is its fixed frequencies
    (``adapt=False``). From format 7 on each table starts there and, after every pass, adds
    ``ADAPT_WEIGHT`` to the count of every symbol that the pass coded with it, so a level
    learns where the context model's Laplace misses its values; the counts carry on from
    group to group until a key group (integers: the decoder rebuilds them exactly). From
    format 8 on (``activity=True``) each table is split in ``ACTIVITY_BUCKETS`` that adapt
    apart, by how far the value's decoded neighbours missed their means (:func:`activity`):
    a key is ``table * ACTIVITY_BUCKETS + bucket``. Levels of fewer than
    ``ACTIVITY_MIN_CELLS`` cells per time slot use bucket 0 only: split, their few values
    would teach each table too little (measured: such levels grew by 0.6-4 %).

    >>> tables = LevelTables(activity=False)
    >>> tables.add([(5, np.array([RANGE + 1, RANGE + 1]))])
    >>> int(tables.counts[5][RANGE + 1] - frequency_table(5 // SCALES, 5 % SCALES)[RANGE + 1])
    512
    """

    def __init__(self, adapt: bool = True, activity: bool = True) -> None:
        self.counts: dict[int, np.ndarray] | None = {} if adapt else None
        self.split = ACTIVITY_BUCKETS if adapt and activity else 1

    def copy(self) -> LevelTables:
        """Tables that adapt from here on their own (the counts' arrays are never changed in place)."""
        other = LevelTables(self.counts is not None, self.split > 1)
        other.counts = None if self.counts is None else dict(self.counts)
        return other

    def keys(self, tables: np.ndarray, buckets: np.ndarray | None) -> np.ndarray:
        """The key of each value: its table, and its activity bucket where the tables are split."""
        return tables if self.split == 1 else tables * self.split + buckets

    def model(self, key: int):
        counts = None if self.counts is None else self.counts.get(key)
        if counts is None:
            return _model(key // self.split)
        return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)

    def add(self, runs: list[tuple[int, np.ndarray]]) -> None:
        """Take in a pass: ``(key, symbols)`` per key it coded with."""
        if self.counts is None:
            return
        for key, symbols in runs:
            counts = self.counts.get(key)
            seen = np.bincount(symbols, minlength=SYMBOLS).astype(np.int64)
            self.counts[key] = (_frequencies(key // self.split) if counts is None else counts) + ADAPT_WEIGHT * seen


_PREVIOUS_SLOT = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # phase 0: the cell and its sides, a slot before
_NEIGHBOURS = (_PREVIOUS_SLOT, DIAGONAL, AXIAL)  # whose misses a phase's bucket reads (all decoded before it)


def activity(misses: torch.Tensor, t: int, phase: int) -> np.ndarray:
    """Each value's activity bucket in pass ``(t, phase)``, from ``misses`` ``(C, T, H + 2,
    W + 2)`` uint8: inside a border of zeros, ``min(|value - floor(mu)|, ACTIVITY_CAP)`` of the
    values decoded so far (0 for the rest). ``s`` is the sum over the value's decoded
    neighbours (phase 0: the same cell and its four sides in the slot before; phase 1 its four
    diagonal and phase 2 its four side neighbours in the same slot; none outside the level);
    the bucket is 0 if ``s = 0``, 1 if ``s <= 2``, 2 else, and 3 in a level's first pass,
    which has no neighbours decoded. A model that missed a value's neighbours is likely to
    miss the value too, and the bucket's tables learn by how much. Small integers: exact
    everywhere.

    >>> misses = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    >>> misses[0, 0, 1, 1] = 3  # the level's cell (0, 0)
    >>> activity(misses, 0, 1).tolist(), activity(misses, 0, 2).tolist()
    ([2], [2, 2])
    """
    channels, _, height, width = misses.shape
    height, width = height - 2, width - 2
    if phase == 0 and t == 0:
        return np.full(channels * phase_size(height, width, 0), ACTIVITY_BUCKETS - 1, np.uint8)
    padded = misses[:, t - 1 if phase == 0 else t]
    sums = []
    for oy, ox in SUBLATTICES[phase]:  # in phase_values' order: by sub-lattice, then channel, row, column
        rows, cols = (height - oy + 1) // 2, (width - ox + 1) // 2
        total = None
        for dy, dx in _NEIGHBOURS[phase]:
            y, x = 1 + oy + dy, 1 + ox + dx
            cells = padded[:, y:y + 2 * rows - 1:2, x:x + 2 * cols - 1:2]
            total = cells.clone() if total is None else total.add_(cells)
        sums.append(total.reshape(-1))
    total = torch.cat(sums)
    return ((total > 0).to(torch.uint8) + (total >= ACTIVITY_CAP)).numpy()


class _Passes:
    """The passes of one level in decode order; ``context(t, phase)`` gives each pass's
    tables and means from the values filled in so far (``self.values``), and ``buckets``
    their activity buckets from the misses filled in so far (``self.misses``, kept only where
    the tables are ``split`` and the level has ``ACTIVITY_MIN_CELLS`` cells per slot)."""

    def __init__(self, shape, coarser, previous, model: FixedPointContext, level: int, split: bool = False):
        self.values = torch.zeros(shape, dtype=torch.float64)
        channels, slots, height, width = shape
        self.split = split
        self.misses = (torch.zeros((channels, slots, height + 2, width + 2), dtype=torch.uint8)  # a border of 0
                       if split and height * width >= ACTIVITY_MIN_CELLS else None)
        self.coarser = None if coarser is None else torch.from_numpy(np.asarray(coarser, np.float64))
        self.previous = None if previous is None else torch.from_numpy(np.asarray(previous, np.float64))
        self.model, self.level = model, level

    def order(self):
        for t in range(self.values.shape[1]):
            for phase in range(PHASES):
                yield t, phase

    def context(self, t: int, phase: int) -> tuple[torch.Tensor, np.ndarray]:
        columns = phase_columns(self.values, self.coarser, self.previous, t, phase, self.model.inputs)
        count = self.values.shape[0] * phase_size(*self.values.shape[2:], phase)
        tables, means = self.model.table_indices(columns, phase, self.level, count)
        return tables, means.numpy()

    def truth(self, values: np.ndarray, t: int, phase: int) -> np.ndarray:
        return phase_values(torch.from_numpy(values[:, t]), phase).numpy().astype(np.int64)

    def buckets(self, t: int, phase: int) -> np.ndarray | None:
        if not self.split:
            return None
        if self.misses is None:  # a small level: one bucket
            return np.zeros(self.values.shape[0] * phase_size(*self.values.shape[2:], phase), np.uint8)
        return activity(self.misses, t, phase)

    def fill(self, t: int, phase: int, values: np.ndarray, residuals: np.ndarray) -> None:
        fill_phase(self.values[:, t], phase, torch.from_numpy(values))  # copy_ converts to float64
        if self.misses is not None:
            fill_phase(self.misses[:, t, 1:-1, 1:-1], phase,
                       torch.from_numpy(residuals).abs().clamp_(max=ACTIVITY_CAP))


def encode_level(values: np.ndarray, coarser: np.ndarray | None, previous: np.ndarray | None,
                 model: FixedPointContext, level: int, level_tables: LevelTables | None = None) -> Coded:
    """Code int32 ``values`` ``(C, T, H, W)`` of grid level ``level`` given the decoded
    next-coarser level and the previous group's values of this level (None if absent), for a
    group's shared ANS stream; ``level_tables`` (adapted as it codes; None: fresh ones) are the
    level's tables as the previous group left them."""
    values = np.asarray(values)
    coding = LevelTables() if level_tables is None else level_tables
    passes = _Passes(values.shape, coarser, previous, model, level, coding.split > 1)
    chunks, escapes = [], []
    for t, phase in passes.order():
        tables, means = passes.context(t, phase)
        truth = passes.truth(values, t, phase)
        residual = truth - means
        symbols = np.clip(residual, -RANGE - 1, RANGE + 1) + RANGE + 1
        keys = coding.keys(tables.numpy(), passes.buckets(t, phase))
        order, run_keys, run_lengths = runs(keys)
        escaped = order[np.abs(residual[order]) > RANGE]
        escapes.append(np.abs(residual[escaped]) - RANGE - 1)
        parts = np.split(symbols[order].astype(np.int32), np.cumsum(run_lengths)[:-1])
        chunks += [(coding.model(int(key)), part) for key, part in zip(run_keys, parts)]
        coding.add(list(zip(run_keys.tolist(), parts)))
        passes.fill(t, phase, truth, residual)
    excess = encode_coded(np.concatenate(escapes) if escapes else np.zeros(0, np.int64))
    n_escapes = sum(e.size for e in escapes)
    return Coded(varint(n_escapes) + varint(len(excess.data)) + excess.data, excess.chunks + tuple(chunks))


def decode_level(blob: bytes, shape: tuple[int, ...], coarser: np.ndarray | None,
                 previous: np.ndarray | None, model: FixedPointContext, level: int,
                 seconds: dict[str, float] | None = None, stream=None,
                 level_tables: LevelTables | None = None) -> np.ndarray:
    """Invert :func:`encode_level`: int32 values of ``shape``; BitstreamError if damaged.
    ``stream``: the group's shared AnsCoder (format 7 on; None: the blob's own ANS words and
    fixed tables); ``level_tables``: as for :func:`encode_level`.
    ``seconds``, if given, accumulates the time spent in ``"context"`` (features and the
    integer MLP) and ``"entropy"`` (table grouping and ANS decoding)."""
    count = int(np.prod(shape))
    reader = BlobReader(blob)
    n_escapes = reader.varint(count)
    excess = decode_ints(bytes(reader.take(reader.varint(reader.remaining))), n_escapes, stream).astype(np.int64)
    if stream is not None and reader.remaining:
        raise BitstreamError(f"context-coded level has {reader.remaining} stray bytes")
    coder = _ANS(ans_words(reader.take(reader.remaining))) if stream is None else stream
    coding = LevelTables(adapt=stream is not None) if level_tables is None else level_tables
    passes = _Passes(shape, coarser, previous, model, level, coding.split > 1)
    used = 0
    clock = time.perf_counter
    for t, phase in passes.order():
        t0 = clock()
        tables, means = passes.context(t, phase)
        keys = coding.keys(tables.numpy(), passes.buckets(t, phase))
        t1 = clock()
        order, run_keys, run_lengths = runs(keys)
        try:
            parts = [coder.decode(coding.model(int(key)), int(n)) for key, n in zip(run_keys, run_lengths)]
            coding.add(list(zip(run_keys.tolist(), parts)))
        except (ValueError, RuntimeError) as e:
            raise BitstreamError(f"context-coded level is damaged ({e})") from None
        in_order = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        escaped = order[(in_order == ESCAPE_LOW) | (in_order == ESCAPE_HIGH)]
        symbols = np.empty(tables.numel(), np.int32)
        symbols[order] = in_order
        # means and table residuals are far inside int32; escaped values are checked in int64
        decoded = means + (symbols - (RANGE + 1))
        if escaped.size:
            if used + escaped.size > excess.size:
                raise BitstreamError("context-coded level has more escapes than it stores")
            extra = excess[used:used + escaped.size] + RANGE + 1
            used += escaped.size
            exact = means[escaped] + np.where(symbols[escaped] == ESCAPE_LOW, -extra, extra)
            if exact.min() < INT32_MIN or exact.max() > INT32_MAX:
                raise BitstreamError("context-coded level overflows int32")
            decoded[escaped] = exact
        passes.fill(t, phase, decoded, decoded - means)
        if seconds is not None:
            seconds["context"] = seconds.get("context", 0.0) + t1 - t0
            seconds["entropy"] = seconds.get("entropy", 0.0) + clock() - t1
    if used != excess.size or (stream is None and not coder.is_empty()):
        raise BitstreamError("context-coded level does not hold exactly its values; it is damaged")
    return passes.values.numpy().astype(np.int32)


__all__ = ["LevelTables", "encode_level", "decode_level"]
