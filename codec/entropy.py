"""Exact entropy coding of integer tensors.

Each call codes one tensor (flattened) as a self-describing *blob*: a kind byte, the exact
model parameters, then the payload. The encoder tries every model that fits and keeps the
smallest blob; the byte layout of each kind is documented with the rest of the file format in
:mod:`codec.bitstream`. From format 7 on a group payload holds one ANS stream for all its
tensors: :func:`encode_coded` gives a blob without ANS words plus its symbols (a
:class:`Coded`), and :func:`decode_ints` reads them back from the group's stream.

Kinds:

* ``CONSTANT`` — all values equal: only the value is stored.
* ``CATEGORICAL`` — ANS over ``[lo, lo + n)`` with an empirical table of integer counts (exact,
  or rescaled to a smaller total when that makes the blob smaller). The decoder rebuilds the
  very same float64 probabilities from the stored integers.
* ``LAPLACE`` — ANS with a quantized Laplace (integer mean, float16 scale); no table, so it wins
  on small tensors. Tried only up to ``LAPLACE_MAX_COUNT`` values: it decodes ~10x slower than
  a table and a table costs next to nothing on large tensors.
* ``PACKED`` — offsets from the minimum at a fixed bit width, the width in the kind byte's
  high bits; for ranges too wide for a table and for tensors too small to pay for one.
  ``RAW`` is the same with the width in a byte of its own (read; written before format 5).
* ``ESCAPED`` — a ``CATEGORICAL`` table over a core range around the most common value plus
  one escape symbol; the few values outside the core are coded after it by a blob of their
  own (any kind but this one). A heavy-tailed tensor (motion changes, say: mostly 0 and ±1,
  a few values up to ±80) then pays for a short table instead of one count per value in
  its whole range.

Only numpy, constriction and the standard library are used: this is on the decode path.

Example:
    >>> import numpy as np
    >>> x = np.array([[0, 1, -1], [0, 0, 2]])
    >>> blob = encode_ints(x)
    >>> decode_ints(blob, x.size).tolist()
    [0, 1, -1, 0, 0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import constriction
import numpy as np

from codec.errors import BitstreamError

CONSTANT, CATEGORICAL, LAPLACE, RAW, ESCAPED, PACKED = 0, 1, 2, 3, 4, 5
KIND_BITS = 0x07  # a PACKED kind byte holds the bit width - 1 above these ...
WIDTH_SHIFT = 3  # ... from this bit on

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_SYMBOLS = 1 << 20  # largest alphabet of a CATEGORICAL table or a LAPLACE range
LAPLACE_MAX_COUNT = 1 << 16  # larger tensors are not offered the LAPLACE model
TABLE_TOTALS = (1 << 8, 1 << 12, 1 << 16)  # rescaled-table totals tried besides exact counts
MAX_COUNT_BYTES = 5  # a stored count is below 2**35
RAW_CHUNK = 1 << 16  # values bit-packed at a time (a multiple of 8 keeps chunks byte-aligned)
ESCAPE_WIDTHS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # core half-widths weighed
ANS_END_BYTES = 3  # what a stream of its own adds for its final state (measured: 2.9-3.0 bytes)

_ANS = constriction.stream.stack.AnsCoder
_MODEL = constriction.stream.model


Chunk = tuple[object, np.ndarray]  # a constriction model and the int32 symbols it codes


@dataclass(frozen=True)
class Coded:
    """A tensor coded for a group's shared ANS stream (format 7 on): ``data`` is its blob
    (kind byte, model parameters, packed values, an escape tail's blob) and ``chunks`` the
    (model, int32 symbols) pairs that the stream holds for it, in the order a decoder reads them.

    Example:
        >>> import numpy as np
        >>> x = np.array([0, 1, -1, 0, 0, 2] * 20)
        >>> coded = encode_coded(x)
        >>> decode_ints(coded.data, x.size, coded.stream()).tolist() == x.tolist()
        True
    """

    data: bytes
    chunks: tuple[Chunk, ...] = ()
    known_size: int | None = field(default=None, repr=False, compare=False)  # size, where already measured

    @cached_property
    def size(self) -> int:
        """The bytes it adds to a payload: its chunks are measured as a stream of their own,
        less the final state that a shared stream holds only once (``ANS_END_BYTES``)."""
        if self.known_size is not None:
            return self.known_size
        return len(self.data) + (len(_words(self.chunks)) - ANS_END_BYTES if self.chunks else 0)

    def stream(self):
        """A constriction AnsCoder that holds only this tensor's chunks, ready to decode."""
        coder = _ANS()
        push(coder, self.chunks)
        return coder


def push(coder, chunks: tuple[Chunk, ...] | list[Chunk]) -> None:
    """Push ``chunks`` (in decode order) onto the ANS stack ``coder``, so that a decoder
    reads them first, in their order."""
    for model, symbols in reversed(chunks):
        coder.encode_reverse(symbols, model)


def _words(chunks: tuple[Chunk, ...]) -> bytes:
    """The ANS words of ``chunks`` as a stream of their own."""
    coder = _ANS()
    push(coder, chunks)
    return ans_bytes(coder)


@dataclass(frozen=True)
class _Blob:
    """An encoded tensor: ``side`` (kind byte and model parameters; an ESCAPED blob's without
    its tail length), ``raw`` (bit-packed values), ``chunks`` (ANS symbols in decode order)
    and an ESCAPED blob's ``tail`` (the escaped values' blob)."""

    side: bytes
    raw: bytes = b""
    chunks: tuple[Chunk, ...] = ()
    tail: _Blob | None = None

    @cached_property
    def standalone(self) -> bytes:
        """The blob with its own ANS words (formats 1 to 6; the encoder's size measure)."""
        words = _words(self.chunks) if self.chunks else b""
        if self.tail is None:
            return self.side + self.raw + words
        tail = self.tail.standalone
        return self.side + varint(len(tail)) + tail + words

    @property
    def size(self) -> int:
        """The bytes it adds to a group payload (format 7 on): see :attr:`Coded.size`."""
        return len(self.standalone) - (ANS_END_BYTES if self.chunks else 0)

    @property
    def side_size(self) -> int:
        """The model description's bytes of :attr:`standalone` (its ESCAPED tail length too)."""
        return len(self.side) + (len(varint(len(self.tail.standalone))) if self.tail else 0)

    def coded(self) -> Coded:
        """The blob and chunks of a shared stream (format 7 on)."""
        if self.tail is None:  # the same measure as :attr:`size`: its words are not coded again
            return Coded(self.side + self.raw, self.chunks, self.size)
        tail = self.tail.coded()
        return Coded(self.side + varint(len(tail.data)) + tail.data, self.chunks + tail.chunks)


# --------------------------------------------------------------------------- public API


def encode_ints(values: np.ndarray) -> bytes:
    """Code an integer array of any shape (flattened, C order) as the smallest exact blob,
    with its own ANS words (the blob of formats 1 to 6; :func:`encode_coded` gives format 7's).

    Values must fit in int32. Example: ``encode_ints(np.zeros((3, 4), np.int64))`` is 2 bytes.
    """
    return _encode(values).standalone


def encode_coded(values: np.ndarray) -> Coded:
    """:func:`encode_ints`' choice of model for a group's shared ANS stream (format 7 on):
    the blob without ANS words, and the chunks to push. Example: see :class:`Coded`."""
    return _encode(values).coded()


def coded_size(values: np.ndarray) -> tuple[int, int]:
    """``(payload_bytes, side_bytes)`` of what :func:`encode_ints` writes for ``values``.

    Example: ``coded_size(np.zeros(10, np.int32)) == (0, 2)``.
    """
    blob = _encode(values)
    return len(blob.standalone) - blob.side_size, blob.side_size


def split_sizes(data: bytes) -> tuple[int, int]:
    """``(payload_bytes, side_bytes)`` of an existing blob, without decoding its values.

    Example: ``split_sizes(encode_ints(x)) == coded_size(x)``.
    """
    reader = BlobReader(data)
    _read_params(reader)
    return reader.remaining, reader.pos


def decode_ints(data: bytes, count: int, stream=None) -> np.ndarray:
    """Decode a blob written by :func:`encode_ints` into an int32 1-D array of ``count`` values;
    with ``stream`` (a group's shared constriction AnsCoder, format 7 on), a blob of
    :func:`encode_coded` whose ANS symbols are read from ``stream``.

    Raises :class:`BitstreamError` when the blob is damaged or does not hold ``count`` values.
    Example: ``decode_ints(encode_ints(np.arange(5)), 5)`` is ``array([0, 1, 2, 3, 4])``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    reader = BlobReader(data)
    kind, params = _read_params(reader)
    payload = reader.take(reader.remaining)
    if kind == CONSTANT:
        if payload:
            raise BitstreamError(f"entropy blob has {len(payload)} stray bytes after a constant")
        return np.full(count, params[0], dtype=np.int32)
    if kind in (RAW, PACKED):
        return _raw_decode(payload, count, *params)
    if kind == ESCAPED:
        lo, counts, tail_length = params
        if tail_length > len(payload):
            raise BitstreamError(f"entropy blob escape tail of {tail_length} bytes exceeds its payload")
        symbols = _symbols(payload[tail_length:], stream, CATEGORICAL, (0, counts), count)
        escaped = symbols == len(counts) - 1
        tail = payload[:tail_length]
        if tail_length and tail[0] == ESCAPED:
            raise BitstreamError("entropy blob escape tail is itself escaped")
        values = symbols + np.int32(lo)
        values[escaped] = decode_ints(tail, int(escaped.sum()), stream)
        return values
    return _symbols(payload, stream, kind, params, count)


# --------------------------------------------------------------------------- encoder


def _encode(values: np.ndarray, escapes: bool = True) -> _Blob:
    """The smallest blob of ``values``; ``escapes=False`` leaves ESCAPED out (for its tail)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise TypeError(f"encode_ints needs an integer array, got {flat.dtype}")
    if flat.size == 0:
        return _Blob(bytes([CONSTANT]) + _zigzag_varint(0))
    lo, hi = int(flat.min()), int(flat.max())
    if lo < INT32_MIN or hi > INT32_MAX:
        raise ValueError(f"values must fit in int32, got range [{lo}, {hi}]")
    flat = flat.astype(np.int64, copy=False)
    if lo == hi:
        return _Blob(bytes([CONSTANT]) + _zigzag_varint(lo))
    span = hi - lo
    candidates: list[_Blob] = []
    counts = None
    if span < MAX_SYMBOLS:
        symbols = (flat - lo).astype(np.int32)
        counts = np.bincount(symbols, minlength=span + 1)
        candidates += [_categorical(symbols, lo, table) for table in _tables(counts)]
        if flat.size <= LAPLACE_MAX_COUNT:
            candidates.append(_laplace(flat.astype(np.int32), lo, hi, counts))
    if escapes:
        candidates += _escaped(flat, lo, hi, counts)
    best = min(candidates, key=lambda blob: blob.size, default=None)
    bits = span.bit_length()
    raw_side = bytes([PACKED | (bits - 1) << WIDTH_SHIFT]) + _zigzag_varint(lo)
    if best is None or len(raw_side) + (flat.size * bits + 7) // 8 < best.size:
        return _Blob(raw_side, _raw_pack((flat - lo).astype(np.uint64), bits))
    return best


def _tables(counts: np.ndarray) -> list[np.ndarray]:
    """The exact counts plus rescaled versions that keep every occurring symbol nonzero."""
    total = int(counts.sum())
    tables = [counts]
    for target in TABLE_TOTALS:
        if target * 4 <= total:
            scaled = np.floor(counts * (target / total) + 0.5).astype(np.int64)
            tables.append(np.where(counts > 0, np.maximum(scaled, 1), 0))
    return tables


def _escaped(flat: np.ndarray, lo: int, hi: int, counts: np.ndarray | None) -> list[_Blob]:
    """ESCAPED blobs for the core half-width around the most common value that an estimate
    (ideal code length of the core, a byte per table entry, raw bits for the tail) favours;
    none when every width's core holds every value. ``counts``: the bincount of ``flat - lo``
    where the caller has it (else the values are sorted here)."""
    if counts is None:
        values, counts = np.unique(flat, return_counts=True)
    else:
        values = np.flatnonzero(counts)
        counts, values = counts[values], values + lo
    mode = int(values[np.argmax(counts)])
    best, best_cost = None, np.inf
    for width in ESCAPE_WIDTHS:
        a, b = max(mode - width, lo), min(mode + width, hi)
        inside = (values >= a) & (values <= b)
        if inside.all():
            break
        core = counts[inside].astype(np.float64)
        escapes = float(counts[~inside].sum())
        table = np.concatenate([core, [escapes]])
        ideal = -(table * np.log2(table / table.sum())).sum() / 8
        tail = values[~inside]
        tail_bits = max(int(tail.max() - tail.min()).bit_length(), 1)
        cost = ideal + (b - a + 2) + escapes * tail_bits / 8
        if cost < best_cost:
            best, best_cost = (a, b), cost
    if best is None:
        return []
    a, b = best
    outside = (flat < a) | (flat > b)
    symbols = np.where(outside, b - a + 1, flat - a).astype(np.int32)
    tail = _encode(flat[outside], escapes=False)
    table = np.bincount(symbols, minlength=b - a + 2)
    blobs = []
    for counts in _tables(table):
        side = bytes([ESCAPED]) + _zigzag_varint(a) + varint(len(counts)) + _varints(counts)
        model = _MODEL.Categorical(counts.astype(np.float64), perfect=False)
        blobs.append(_Blob(side, chunks=((model, symbols),), tail=tail))
    return blobs


def _categorical(symbols: np.ndarray, lo: int, table: np.ndarray) -> _Blob:
    side = bytes([CATEGORICAL]) + _zigzag_varint(lo) + varint(len(table)) + _varints(table)
    model = _MODEL.Categorical(table.astype(np.float64), perfect=False)
    return _Blob(side, chunks=((model, symbols),))


def _laplace(values: np.ndarray, lo: int, hi: int, counts: np.ndarray) -> _Blob:
    mean = int(np.median(values).round())
    scale = _fit_laplace_scale(counts, lo, mean)
    side = (
        bytes([LAPLACE])
        + _zigzag_varint(lo)
        + varint(hi - lo)
        + _zigzag_varint(mean)
        + np.float16(scale).tobytes()
    )
    model = _MODEL.QuantizedLaplace(lo, hi, float(mean), float(scale))
    return _Blob(side, chunks=((model, values),))


def _fit_laplace_scale(counts: np.ndarray, lo: int, mean: int) -> np.float16:
    """Pick, on a log grid around the moment estimate, the float16 scale with fewest bits."""
    used = np.flatnonzero(counts)
    x = (lo + used - mean).astype(np.float64)
    weights = counts[used].astype(np.float64)
    b0 = max(float((weights * np.abs(x)).sum() / weights.sum()), 0.05)
    grid = np.unique(np.clip(b0 * 2.0 ** (np.arange(-12, 13) / 4), 1e-3, 6e4).astype(np.float16))
    upper, lower = x + 0.5, x - 0.5
    upper[-1], lower[0] = np.inf, -np.inf  # the range ends absorb the tails
    bits = []
    for b in grid.astype(np.float64):
        pmf = np.maximum(_laplace_cdf(upper, b) - _laplace_cdf(lower, b), 2.0**-24)
        bits.append(-(weights * np.log2(pmf)).sum())
    return grid[int(np.argmin(bits))]


def _laplace_cdf(x: np.ndarray, b: float) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(x < 0, 0.5 * np.exp(x / b), 1.0 - 0.5 * np.exp(-x / b))


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coding order of values that are coded in runs, one run per key (a table or a
    context: small non-negative integers): ``(order, key of each run, run lengths)``.
    ``order`` sorts the values by key stably, so encoder and decoder agree; keys below 2^16
    are sorted as 8- or 16-bit integers (numpy sorts them by radix, several times faster
    than a comparison sort).

    Example: ``runs(np.array([2, 0, 2]))`` gives order ``[1, 0, 2]``, keys ``[0, 2]`` and
    lengths ``[1, 2]``.
    """
    keys = np.asarray(keys)
    if keys.size and keys.max() < 256:
        keys = keys.astype(np.uint8)
    elif keys.size and keys.max() < 65536:
        keys = keys.astype(np.uint16)  # also a radix sort
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys)
    present = np.flatnonzero(counts)
    return order, present, counts[present]


def ans_bytes(coder) -> bytes:
    """An ANS coder's u32 words, little-endian, without the zero bytes that end the last
    (its state's top word: 1.5 of them on average; :func:`ans_words` restores them).

    Example: ``ans_bytes(constriction.stream.stack.AnsCoder()) == b""``.
    """
    return coder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")


def _raw_pack(offsets: np.ndarray, bits: int) -> bytes:
    chunks = []
    for start in range(0, offsets.size, RAW_CHUNK):
        part = offsets[start : start + RAW_CHUNK].astype("<u8").view(np.uint8).reshape(-1, 8)
        planes = np.unpackbits(part, axis=1, bitorder="little")[:, :bits]
        chunks.append(np.packbits(planes.reshape(-1), bitorder="little").tobytes())
    return b"".join(chunks)


# --------------------------------------------------------------------------- decoder


class BlobReader:
    """Bounds-checked cursor over a blob; every short read raises BitstreamError.

    >>> BlobReader(varint(300) + b"x").varint(1000)
    300
    """

    def __init__(self, data: bytes, what: str = "entropy blob") -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0
        self.what = what  # names the data in error messages

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        if n > self.remaining:
            raise BitstreamError(
                f"{self.what} truncated: needs {n} more bytes, has {self.remaining}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self, limit: int) -> int:
        value = 0
        for shift in range(0, 70, 7):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                if value > limit:
                    raise BitstreamError(f"{self.what} field {value} exceeds its limit {limit}")
                return value
        raise BitstreamError(f"{self.what} has an overlong varint")

    def zigzag(self) -> int:
        """A zigzag varint; the limit 2**32 - 1 keeps it within int32."""
        z = self.varint(2**32 - 1)
        return (z >> 1) ^ -(z & 1)

    def varints(self, n: int) -> np.ndarray:
        """``n >= 1`` unsigned varints of at most MAX_COUNT_BYTES bytes each, vectorized."""
        if n > self.remaining:
            raise BitstreamError(
                f"{self.what} table of {n} entries does not fit in {self.remaining} bytes"
            )
        buf = np.frombuffer(self.data, np.uint8, offset=self.pos)
        ends = np.flatnonzero(buf < 0x80)[:n]
        if len(ends) < n:
            raise BitstreamError(f"{self.what} table is truncated")
        starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts + 1
        if lengths.max() > MAX_COUNT_BYTES:
            raise BitstreamError(f"{self.what} table has an oversized count")
        used = int(ends[-1]) + 1
        shifts = 7 * (np.arange(used) - np.repeat(starts, lengths))
        parts = (buf[:used] & 0x7F).astype(np.uint64) << shifts.astype(np.uint64)
        self.pos += used
        return np.add.reduceat(parts, starts)


def _read_params(reader: BlobReader) -> tuple[int, tuple]:
    """Parse and validate the kind byte and model parameters; leaves ``reader`` at the payload."""
    kind = reader.byte()
    if kind & KIND_BITS == PACKED:
        return PACKED, (reader.zigzag(), (kind >> WIDTH_SHIFT) + 1)
    if kind == CONSTANT:
        return kind, (reader.zigzag(),)
    if kind in (CATEGORICAL, ESCAPED):
        lo = reader.zigzag()
        n = reader.varint(MAX_SYMBOLS)
        top = lo + n - (2 if kind == ESCAPED else 1)  # an ESCAPED table's last symbol is the escape
        if n < 2 or top > INT32_MAX:
            raise BitstreamError(f"entropy blob has a bad table size {n}")
        counts = reader.varints(n)
        if not counts.any():
            raise BitstreamError("entropy blob table has only zero counts")
        if kind == ESCAPED:
            return kind, (lo, counts, reader.varint(2**32 - 1))
        return kind, (lo, counts)
    if kind == LAPLACE:
        lo = reader.zigzag()
        span = reader.varint(MAX_SYMBOLS - 1)
        mean = reader.zigzag()
        (scale,) = np.frombuffer(reader.take(2), "<f2")
        hi = lo + span
        if span == 0 or hi > INT32_MAX or not lo <= mean <= hi or not 0 < scale < np.inf:
            raise BitstreamError("entropy blob has invalid Laplace parameters")
        return kind, (lo, hi, mean, float(scale))
    if kind == RAW:
        lo = reader.zigzag()
        bits = reader.byte()
        if not 1 <= bits <= 32:
            raise BitstreamError(f"entropy blob has a bad bit width {bits}")
        return kind, (lo, bits)
    raise BitstreamError(f"entropy blob has an unknown model kind {kind}")


def ans_words(payload: bytes | memoryview) -> np.ndarray:
    """The u32 words of :func:`ans_bytes`, the last one completed with zero bytes (before
    format 5 the words were whole; they read the same)."""
    if len(payload) % 4:  # trimmed (version 5 on): pad a copy; whole words are read in place
        payload = bytes(payload) + bytes(-len(payload) % 4)
    return np.frombuffer(payload, "<u4").astype(np.uint32)


def ans_decoder(payload: bytes | memoryview):
    """A constriction AnsCoder that decodes the words of :func:`ans_bytes` (a group's shared
    stream, format 7 on); BitstreamError if they cannot be ANS data. Example:
    ``ans_decoder(b"").is_empty()`` is True."""
    try:
        return _ANS(ans_words(payload))
    except ValueError as e:
        raise BitstreamError(f"ANS stream is damaged ({e})") from None


def _symbols(payload: memoryview, stream, kind: int, params: tuple, count: int) -> np.ndarray:
    """``count`` values of a CATEGORICAL or LAPLACE model: from the blob's own ANS words in
    ``payload``, or from the shared ``stream`` (then the payload must be empty)."""
    if stream is not None and len(payload):
        raise BitstreamError(f"entropy blob has {len(payload)} stray bytes after its model")
    try:
        if kind == CATEGORICAL:
            lo, counts = params
            model = _MODEL.Categorical(counts.astype(np.float64), perfect=False)
        else:
            lo, hi, mean, scale = params
            model = _MODEL.QuantizedLaplace(lo, hi, float(mean), scale)
        coder = ans_decoder(payload) if stream is None else stream
        symbols = coder.decode(model, count)
    except (ValueError, RuntimeError) as e:
        raise BitstreamError(f"entropy blob is damaged ({e})") from None
    if stream is None and not coder.is_empty():
        raise BitstreamError(f"entropy blob does not hold exactly {count} values; it is damaged")
    symbols = np.asarray(symbols, dtype=np.int32)
    return symbols + np.int32(lo) if kind == CATEGORICAL else symbols


def _raw_decode(payload: memoryview, count: int, lo: int, bits: int) -> np.ndarray:
    expected = (count * bits + 7) // 8
    if len(payload) != expected:
        raise BitstreamError(
            f"entropy blob raw payload has {len(payload)} bytes, expected {expected}"
        )
    data = np.frombuffer(payload, np.uint8)
    out = np.empty(count, np.int64)
    step = RAW_CHUNK * bits // 8
    for i, start in enumerate(range(0, count, RAW_CHUNK)):
        m = min(RAW_CHUNK, count - start)
        planes = np.unpackbits(data[i * step : i * step + step], bitorder="little")[: m * bits]
        padded = np.zeros((m, 64), np.uint8)
        padded[:, :bits] = planes.reshape(m, bits)
        out[start : start + m] = np.packbits(padded, axis=1, bitorder="little").view("<u8")[:, 0]
    out += lo
    if count and out.max() > INT32_MAX:
        raise BitstreamError("entropy blob raw values exceed int32")
    return out.astype(np.int32)


# --------------------------------------------------------------------------- varints


def varint(value: int) -> bytes:
    """Unsigned LEB128: ``varint(300) == b'\\xac\\x02'``."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag_varint(value: int) -> bytes:
    return varint(2 * value if value >= 0 else -2 * value - 1)


def _varints(values: np.ndarray) -> bytes:
    """LEB128 of non-negative integers below 2**35, vectorized (table entries)."""
    v = values.astype(np.uint64)
    shifts = 7 * np.arange(MAX_COUNT_BYTES, dtype=np.uint64)
    groups = ((v[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    lengths = 1 + (v[:, None] >= (np.uint64(1) << shifts[1:])).sum(axis=1)
    index = np.arange(MAX_COUNT_BYTES)
    groups[index < lengths[:, None] - 1] |= 0x80
    return groups[index < lengths[:, None]].tobytes()


__all__ = ["Coded", "encode_ints", "encode_coded", "push", "decode_ints", "coded_size", "split_sizes", "varint", "ans_bytes", "ans_words", "ans_decoder", "BlobReader"]
