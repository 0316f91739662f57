"""Fuzzing the .nirv reader and decoder with mutants of the golden files.

Every mutant of a small valid file (``tests/data/golden_v1.nirv``, ``golden_v2.nirv``,
``golden_v2_context.nirv``, ``golden_v3.nirv``, ``golden_v3_subpel.nirv``, ``golden_v4_cut.nirv``,
``golden_v5.nirv``, ``golden_v6.nirv``, ``golden_v7.nirv``, ``golden_v8.nirv``, ``golden_v9.nirv``:
every format version, context-coded levels, fixed and compact tensor tables, motion
(context-coded from version 6), one ANS stream per group (version 7), context tables split
by activity (version 8), cubic sub-pixel motion (version 9), and groups ended early at a scene cut) must end in one of three outcomes, decided in-process:

``open``     refused when opened (:func:`codec.limits.open_nirv`: framing, header, limits)
             with a :class:`~codec.errors.CodecError`,
``group``    a group refused when read (the :class:`~codec.errors.BitstreamError` that stops
             a plain decode), and every frame still decoded with concealment,
``decoded``  every frame decoded, ``(n, 3, H, W)`` uint8, ``num_frames`` in all.

Anything else (another exception type, an error even with concealment, a wrong output) is a
``bug`` and is kept with its traceback. Mutants come in families (:data:`FAMILIES`); each lists its exhaustive mutants of
a file (:func:`exhaustive`) and draws random ones (:func:`draw`):

``flip``      1-8 random bit flips; CRCs left alone, so the framing must catch them.
``truncate``  the file cut at every chunk boundary and one byte either side, or anywhere.
``field``     every field of the prelude, header, chunks, group payloads, index and footer set
              to 0, 1, its value ± 1, its bound, bound + 1 and its type's maximum; float
              fields (``w0``, ``psnr``, the scales) to NaN, ±Inf, ±0, a denormal, -1 and
              3.4e38; then every CRC recomputed, so the value reaches the parsers.
``junk``      random bytes written into the header or a payload, CRCs recomputed.
``reframe``   a payload or the header cut at each of its field boundaries, grown by junk,
              swapped with another group's, or a group dropped or repeated; the file is then
              rebuilt with consistent lengths, offsets and CRCs.

While mutants run, the per-group limits of :mod:`codec.limits` are lowered to
:data:`FUZZ_LIMITS`, so that no valid-looking hostile header can make one decode take more
than a few milliseconds and megabytes: a header over them is refused on open like any other.

Usage::

    python -m benchmarks.fuzz [-n 100000] [--seed 0]

Writes ``<out>/fuzz.json`` and ``fuzz.md`` (and ``<out>/fuzz_bugs/`` with the bugs' mutants).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from codec import limits
from codec.bitstream import Header, NirvReader
from codec.bitstream.container import END_MAGIC, MAGIC, OFFSETS_IMPLIED, VERSION
from codec.bitstream.group import COMPACT, LENGTH_SHIFT, LONG, SCALE_FLAG, SHORT_LENGTHS
from codec.entropy import BlobReader
from codec.decoder import decoded_groups
from codec.errors import CodecError
from nirvana.config import NetworkConfig
from nirvana.kinds import KINDS

REPO = Path(__file__).resolve().parents[1]
BASES = [REPO / "tests" / "data" / name for name in ("golden_v1.nirv", "golden_v2.nirv",
                                                        "golden_v2_context.nirv", "golden_v3.nirv",
                                                        "golden_v3_subpel.nirv", "golden_v4_cut.nirv",
                                                        "golden_v5.nirv", "golden_v6.nirv",
                                                        "golden_v7.nirv", "golden_v8.nirv", "golden_v9.nirv")]
OUTCOMES = ("open", "group", "decoded", "bug")
FUZZ_LIMITS = {"values_per_group": 1 << 16, "frame_pixels": 1 << 14, "group_work": 1 << 24,
               "group_bytes": 1 << 26}
FLOATS = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45, -1.0, 3.4e38)
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF)

# The byte layout, as documented in codec.bitstream: (name, struct format, upper bound or None).
Spec = list[tuple[str, str, float | None]]
PRELUDE: Spec = [("version", "H", VERSION), ("header_size", "H", None)]  # after the 4-byte magic
V1_HEADER = ["width", "height", "num_frames", "fps_num", "fps_den", "group_size", "patch_size",
             "key_interval", "hidden", "hidden_layers", "channels", "w0", "num_groups"]
CHUNK: Spec = [("length", "I", None)]  # then the CRC, which is recomputed
GROUP_HEAD: Spec = [("flags", "B", 1), ("num_frames", "B", None), ("iterations", "I", None),
                    ("psnr", "f", None), ("tensors", "H", None)]
TENSOR: Spec = [("mode", "B", 2), ("scale", "f", None), ("length", "I", None)]
BLOB: Spec = [("kind", "B", 0xFD), ("param", "B", None)]  # the model kind (a packed one's top) and its first byte
# an index entry (from version OFFSETS_IMPLIED on without the offset), then, from
INDEX_ENTRY: Spec = [("offset", "Q", None), ("length", "I", None), ("flags", "B", 1)]
FRAMES_FROM = 4  # this version on, the group's frame count (u8, bound: the group size)
FOOTER: Spec = [("index_offset", "Q", None), ("count", "I", None)]  # then CRC and end magic
FOOTER_SIZE = 20


@dataclass(frozen=True)
class Field:
    """One numeric field of a file: where it is, its struct format and declared bound."""

    name: str
    offset: int
    fmt: str
    hi: float | None


@dataclass(frozen=True)
class Base:
    """A valid file taken apart: its parts, every field, and where its checksums cover."""

    name: str
    data: bytes
    version: int
    head: bytes  # the header record
    payloads: list[bytes]
    keys: list[bool]
    frames: list[int]  # each group's frame count
    chunks: list[tuple[int, int]]  # (offset, payload length) of each chunk
    index_offset: int
    fields: list[Field]
    payload_cuts: list[list[int]]  # field boundaries inside each payload
    header_cuts: list[int]  # field boundaries inside the header record


@dataclass(frozen=True)
class Mutant:
    family: str
    what: str  # how it was made, for a bug report
    data: bytes


@dataclass(frozen=True)
class Result:
    outcome: str  # one of OUTCOMES
    detail: str  # the error message, or a bug's traceback


# ------------------------------------------------------------------------ layout


def load(path: Path) -> Base:
    """Take apart a valid file with the reader, then list its fields from the layout above."""
    with NirvReader(path) as reader:
        header, version = reader.header, reader.version
        payloads = [reader.read_group(i) for i in range(reader.num_groups)]
        keys = [reader.is_key(i) for i in range(reader.num_groups)]
        frames = [b - a for a, b in map(reader.frame_range, range(reader.num_groups))]
    data = path.read_bytes()
    head = data[8:8 + struct.unpack_from("<H", data, 6)[0]]
    chunks, offset = [], 8 + len(head) + 4
    for payload in payloads:
        chunks.append((offset, len(payload)))
        offset += 8 + len(payload)
    found = _walk("prelude", 4, PRELUDE)
    header_fields = _header_fields(header, version, len(head))
    found += header_fields
    payload_cuts = []
    for i, (chunk, _) in enumerate(chunks):
        found += _walk(f"group {i} chunk", chunk, CHUNK)
        if version >= COMPACT:
            group_fields = _compact_fields(i, chunk + 8, data, header, version >= SHORT_LENGTHS)
        else:
            group_fields = _payload_fields(i, chunk + 8, data, header)
        found += group_fields
        payload_cuts.append(sorted({f.offset - chunk - 8 for f in group_fields}))
    entry = _index_entry(version, header.group_size)
    found += [f for i in range(len(payloads))
              for f in _walk(f"index {i}", offset + _size(entry) * i, entry)]
    found += _walk("footer", len(data) - FOOTER_SIZE, FOOTER)
    return Base(path.name, data, version, head, payloads, keys, frames, chunks, offset, found,
                payload_cuts, sorted({f.offset - 8 for f in header_fields}))


def _index_entry(version: int, group_size: int) -> Spec:
    """The layout of one index entry of a file of ``version``."""
    entry = INDEX_ENTRY[1:] if version >= OFFSETS_IMPLIED else INDEX_ENTRY
    return entry + ([("frames", "B", group_size)] if version >= FRAMES_FROM else [])


def _walk(prefix: str, offset: int, spec: Spec) -> list[Field]:
    """Fields packed back to back from ``offset``."""
    out = []
    for name, fmt, hi in spec:
        out.append(Field(f"{prefix} {name}", offset, fmt, hi))
        offset += struct.calcsize("<" + fmt)
    return out


def _size(spec: Spec) -> int:
    """Bytes of a record laid out by ``spec``."""
    return struct.calcsize("<" + "".join(fmt for _, fmt, _ in spec))


def _end(field: Field) -> int:
    """The offset just past ``field``."""
    return field.offset + struct.calcsize("<" + field.fmt)


def read(data: bytes, field: Field) -> float:
    """The value of ``field`` in ``data``."""
    return struct.unpack_from("<" + field.fmt, data, field.offset)[0]


def _declared(*classes: type) -> dict[str, tuple[str, float]]:
    """``name: (format, upper bound)`` of the fields declared with :func:`nirvana.config.spec`,
    in order; a name declared by several classes keeps the first."""
    found: dict[str, tuple[str, float]] = {}
    for cls in classes:
        for f in fields(cls):
            if "fmt" in f.metadata:
                found.setdefault(f.name, (f.metadata["fmt"], f.metadata["hi"]))
    return found


def _header_fields(header: Header, version: int, size: int) -> list[Field]:
    """The header's fields; a config block written before later fields were added (``size``
    bytes in all) holds only the first ones."""
    if version == 1:
        specs = _declared(Header, NetworkConfig)
        return _walk("header", 8, [(name, *specs[name]) for name in V1_HEADER])
    kind = [("kind", "B", max(k.code for k in KINDS.values())), ("config_length", "H", None)]
    config = [(name, *spec) for name, spec in _declared(type(header.network)).items()
              if name != "group_size"]  # siren's G is in the common fields
    found = _walk("header", 8, [(name, *spec) for name, spec in _declared(Header).items()] + kind + config)
    return [f for f in found if _end(f) <= 8 + size]


def _payload_fields(i: int, start: int, data: bytes, header: Header) -> list[Field]:
    """The fields of group ``i``'s payload, which starts at ``start`` in file ``data``."""
    head = [(n, f, header.group_size if n == "num_frames" else hi) for n, f, hi in GROUP_HEAD]
    found = _walk(f"group {i}", start, head)
    table = _end(found[-1])
    records = [_walk(f"group {i} tensor {t}", table + t * _size(TENSOR), TENSOR)
               for t in range(int(read(data, found[-1])))]
    blob = _end(records[-1][-1]) if records else table
    for t, record in enumerate(records):
        length = int(read(data, record[-1]))
        found += record + _walk(f"group {i} blob {t}", blob, BLOB[:min(length, len(BLOB))])
        blob += length
    return found


def _compact_fields(i: int, start: int, data: bytes, header: Header, short_lengths: bool) -> list[Field]:
    """:func:`_payload_fields` for a compact payload (version 3 on; ``short_lengths``: blob
    lengths in the mode byte, version 5 on); a varint is modelled by its first byte (a
    mutation may change its length)."""
    found, pos = [], start

    def add(name: str, fmt: str, hi: float | None, size: int) -> None:
        nonlocal pos
        found.append(Field(f"group {i} {name}", pos, fmt, hi))
        pos += size

    def varint(name: str) -> int:
        reader = BlobReader(memoryview(data)[pos:])
        value = reader.varint(2**64)
        add(name, "B", None, reader.pos)
        return value

    add("flags", "B", 1, 1)
    add("num_frames", "B", header.group_size, 1)
    varint("iterations")
    add("psnr", "f", None, 4)
    lengths = []
    for t in range(varint("tensors")):
        mode = data[pos]
        add(f"tensor {t} mode", "B", None if short_lengths else 3 | SCALE_FLAG, 1)
        if mode & SCALE_FLAG:
            add(f"tensor {t} scale", "f", None, 4)
        short = mode >> LENGTH_SHIFT
        if not short_lengths:
            lengths.append(varint(f"tensor {t} length"))
        else:
            lengths.append(short + (varint(f"tensor {t} length") if short == LONG else 0))
    for t, length in enumerate(lengths):
        found += _walk(f"group {i} blob {t}", pos, BLOB[:min(length, len(BLOB))])
        pos += length
    return found


def assemble(version: int, head: bytes, payloads: list[bytes], keys: list[bool], frames: list[int]) -> bytes:
    """A file from its parts with every length, offset and CRC consistent."""
    out = [struct.pack("<4sHH", MAGIC, version, len(head)), head, struct.pack("<I", zlib.crc32(head))]
    offset, entries = 8 + len(head) + 4, []
    for payload, key, n in zip(payloads, keys, frames):
        out.append(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
        entries.append((b"" if version >= OFFSETS_IMPLIED else struct.pack("<Q", offset))
                       + struct.pack("<IB", len(payload), int(key))
                       + (bytes([n]) if version >= FRAMES_FROM else b""))
        offset += 8 + len(payload)
    index, located = b"".join(entries), struct.pack("<QI", offset, len(payloads))
    crc = zlib.crc32(located, zlib.crc32(index))
    return b"".join(out) + index + located + struct.pack("<I4s", crc, END_MAGIC)


def resign(data: bytearray, base: Base) -> bytes:
    """Recompute the header, chunk and index CRCs of a same-size mutant of ``base`` over the
    spans they cover in ``base``, so that the mutation gets past them to the parsers."""
    end = 8 + len(base.head)
    struct.pack_into("<I", data, end, zlib.crc32(data[8:end]))
    for offset, length in base.chunks:
        struct.pack_into("<I", data, offset + 4, zlib.crc32(data[offset + 8:offset + 8 + length]))
    footer = len(data) - FOOTER_SIZE
    crc = zlib.crc32(data[footer:footer + 12], zlib.crc32(data[base.index_offset:footer]))
    struct.pack_into("<I", data, footer + 12, crc)
    return bytes(data)


# ------------------------------------------------------------------------ families


def field_values(field: Field, current: float) -> list[float]:
    """The values a field is set to: specials for floats; else 0, 1, its value ± 1, its bound,
    bound + 1 and the type's maximum, those that fit the type and differ from ``current``."""
    if field.fmt == "f":
        return list(FLOATS) + ([field.hi, field.hi * 10] if field.hi else [])
    top = 2 ** (8 * struct.calcsize("<" + field.fmt)) - 1
    wanted = {0, 1, current - 1, current + 1, top} | ({field.hi, field.hi + 1} if field.hi else set())
    return sorted(int(v) for v in wanted if 0 <= v <= top and v != current)


def set_field(base: Base, field: Field, value: float) -> Mutant:
    data = bytearray(base.data)
    struct.pack_into("<" + field.fmt, data, field.offset, value)
    return Mutant("field", f"{field.name} = {value}", resign(data, base))


def _fields_exhaustive(base: Base) -> Iterator[Mutant]:
    for field in base.fields:
        for value in field_values(field, read(base.data, field)):
            yield set_field(base, field, value)


def _fields_draw(rng: np.random.Generator, base: Base) -> Mutant:
    field = base.fields[rng.integers(len(base.fields))]
    values = field_values(field, read(base.data, field))
    return set_field(base, field, values[rng.integers(len(values))])


def _flip_draw(rng: np.random.Generator, base: Base) -> Mutant:
    data = np.frombuffer(base.data, np.uint8).copy()
    bits = rng.integers(0, 8 * len(data), size=rng.integers(1, 9))
    np.bitwise_xor.at(data, bits // 8, (1 << (bits % 8)).astype(np.uint8))
    return Mutant("flip", f"bits {sorted(bits.tolist())}", data.tobytes())


def boundaries(base: Base) -> list[int]:
    """Every offset where a part of the file starts or ends, and one byte either side."""
    size, head_end = len(base.data), 8 + len(base.head)
    marks = {0, 4, 6, 8, head_end, head_end + 4, base.index_offset, size - FOOTER_SIZE, size - 4}
    marks |= {offset + skip for offset, _ in base.chunks for skip in (0, 4, 8)}
    entry = (size - FOOTER_SIZE - base.index_offset) // len(base.chunks)  # 13 or 14 bytes
    marks |= {base.index_offset + entry * i for i in range(len(base.chunks))}
    return sorted({m + d for m in marks for d in (-1, 0, 1) if 0 <= m + d < size})


def _truncate_exhaustive(base: Base) -> Iterator[Mutant]:
    for cut in boundaries(base):
        yield Mutant("truncate", f"first {cut} bytes", base.data[:cut])


def _truncate_draw(rng: np.random.Generator, base: Base) -> Mutant:
    cut = int(rng.integers(len(base.data)))
    return Mutant("truncate", f"first {cut} bytes", base.data[:cut])


def _junk_draw(rng: np.random.Generator, base: Base) -> Mutant:
    """1-4 bytes of the header record or of one payload set to random or telling values."""
    region = int(rng.integers(len(base.chunks) + 1))
    start, length = (8, len(base.head)) if region == 0 else (base.chunks[region - 1][0] + 8,
                                                             base.chunks[region - 1][1])
    data = bytearray(base.data)
    spots = start + rng.integers(0, length, size=rng.integers(1, 5))
    for spot in spots:
        data[spot] = int(rng.choice(INTERESTING_BYTES)) if rng.random() < 0.5 else int(rng.integers(256))
    where = "header" if region == 0 else f"group {region - 1} payload"
    return Mutant("junk", f"{where} bytes at {sorted(spots.tolist())}", resign(data, base))


def _rebuilt(base: Base, what: str, head: bytes | None = None, payloads: list[bytes] | None = None,
             groups: list[int] | None = None) -> Mutant:
    """``base`` with some parts replaced (``groups``: the groups kept, by index, with their
    key flags and frame counts), every length, offset and CRC made consistent."""
    keep = range(len(base.payloads)) if groups is None else groups
    if payloads is None:
        payloads = [base.payloads[k] for k in keep]
    return Mutant("reframe", what, assemble(base.version, base.head if head is None else head, payloads,
                                            [base.keys[k] for k in keep], [base.frames[k] for k in keep]))


def _with_payload(base: Base, i: int, payload: bytes) -> list[bytes]:
    return base.payloads[:i] + [payload] + base.payloads[i + 1:]


def _reframe_exhaustive(base: Base) -> Iterator[Mutant]:
    for cut in base.header_cuts:
        yield _rebuilt(base, f"header cut to {cut} bytes", head=base.head[:cut])
    n = len(base.payloads)
    for i, cuts in enumerate(base.payload_cuts):
        for cut in cuts + [len(base.payloads[i]) - 1]:
            yield _rebuilt(base, f"group {i} payload cut to {cut} bytes",
                           payloads=_with_payload(base, i, base.payloads[i][:cut]))
        for j in range(n):
            if j != i:
                yield _rebuilt(base, f"group {i} payload replaced by group {j}'s",
                               payloads=_with_payload(base, i, base.payloads[j]))
        yield _rebuilt(base, f"group {i} dropped", groups=[k for k in range(n) if k != i])
        yield _rebuilt(base, f"group {i} repeated", groups=list(range(i + 1)) + list(range(i, n)))


def _reframe_draw(rng: np.random.Generator, base: Base) -> Mutant:
    """A random payload cut short, or with 1-64 random bytes inserted somewhere."""
    i = int(rng.integers(len(base.payloads)))
    payload = base.payloads[i]
    at = int(rng.integers(len(payload) + 1))
    if rng.random() < 0.5:
        return _rebuilt(base, f"group {i} payload cut to {at} bytes",
                        payloads=_with_payload(base, i, payload[:at]))
    junk = rng.integers(0, 256, size=rng.integers(1, 65), dtype=np.uint8).tobytes()
    return _rebuilt(base, f"group {i} payload with {len(junk)} bytes inserted at {at}",
                    payloads=_with_payload(base, i, payload[:at] + junk + payload[at:]))


@dataclass(frozen=True)
class Family:
    exhaustive: Callable[[Base], Iterator[Mutant]]
    draw: Callable[[np.random.Generator, Base], Mutant]


def _none(base: Base) -> Iterator[Mutant]:
    return iter(())


FAMILIES = {
    "flip": Family(_none, _flip_draw),
    "truncate": Family(_truncate_exhaustive, _truncate_draw),
    "field": Family(_fields_exhaustive, _fields_draw),
    "junk": Family(_none, _junk_draw),
    "reframe": Family(_reframe_exhaustive, _reframe_draw),
}


def exhaustive(base: Base) -> Iterator[Mutant]:
    """Every family's exhaustive mutants of ``base``."""
    for family in FAMILIES.values():
        yield from family.exhaustive(base)


def draw(rng: np.random.Generator, bases: list[Base]) -> Mutant:
    """A random mutant of a random base, from a family chosen uniformly."""
    family = FAMILIES[list(FAMILIES)[rng.integers(len(FAMILIES))]]
    return family.draw(rng, bases[rng.integers(len(bases))])


# ------------------------------------------------------------------------ running


class WrongOutput(Exception):
    """A decode that ended without an error but not with every frame of the header."""


@contextmanager
def fuzz_limits() -> Iterator[None]:
    """Lower the per-group limits of :mod:`codec.limits` to :data:`FUZZ_LIMITS` (a few
    milliseconds and megabytes per decode) within the block."""
    with mock.patch.dict(limits._LIMITS, FUZZ_LIMITS):
        yield


def run_mutant(data: bytes, path: Path) -> Result:
    """Write ``data`` to ``path``, open and decode it, remove it; call within :func:`fuzz_limits`.

    (A fresh file each time: rewriting one in place makes some file systems flush on close.)
    """
    path.write_bytes(data)
    try:
        reader = limits.open_nirv(path)
    except CodecError as e:
        return Result("open", str(e))
    except Exception:  # the fuzzer's job: anything else is a bug, kept with its traceback
        return Result("bug", traceback.format_exc())
    finally:
        path.unlink()
    try:
        with reader:
            return _decode(reader)
    except Exception:
        return Result("bug", traceback.format_exc())


def _decode(reader: NirvReader) -> Result:
    """Decode every frame, concealing damaged groups: ``group`` if there were any."""
    damage: list[str] = []
    _check_frames(reader, decoded_groups(reader, 0, reader.header.num_frames,
                                         on_damage=lambda index, error: damage.append(str(error))))
    return Result("group", damage[0]) if damage else Result("decoded", "")


def _check_frames(reader: NirvReader, groups: Iterator[tuple[int, torch.Tensor]]) -> None:
    """Raise WrongOutput unless ``groups`` hold every frame of the header, as uint8 RGB."""
    h = reader.header
    total = 0
    for _, frames in groups:
        if frames.dtype != torch.uint8 or tuple(frames.shape[1:]) != (3, h.height, h.width):
            raise WrongOutput(f"frames of shape {tuple(frames.shape)} and type {frames.dtype}")
        total += frames.shape[0]
    if total != h.num_frames:
        raise WrongOutput(f"{total} frames decoded, the header says {h.num_frames}")


def fuzz(n: int, seed: int, bug_dir: Path | None = None) -> dict:
    """The exhaustive mutants of every base, then random ones up to ``n`` in all; counts."""
    bases = [load(path) for path in BASES]
    rng = np.random.default_rng(seed)
    counts: dict[str, Counter] = {family: Counter() for family in FAMILIES}
    bugs, slowest = [], 0.0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, fuzz_limits():
        path = Path(tmp) / "mutant.nirv"
        for k, mutant in enumerate(_mutants(bases, rng, n)):
            t0 = time.perf_counter()
            result = run_mutant(mutant.data, path)
            slowest = max(slowest, time.perf_counter() - t0)
            counts[mutant.family][result.outcome] += 1
            if result.outcome == "bug":
                bugs.append(_keep(mutant, result, k, bug_dir))
    seconds = time.perf_counter() - start
    total = sum(counts.values(), Counter())
    return {"n": n, "seed": seed, "exhaustive": sum(1 for b in bases for _ in exhaustive(b)),
            "seconds": round(seconds, 1),
            "mean_ms": round(1000 * seconds / max(n, 1), 3), "slowest_ms": round(1000 * slowest, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "limits": FUZZ_LIMITS, "counts": {o: total[o] for o in OUTCOMES},
            "by_family": {f: {o: c[o] for o in OUTCOMES} for f, c in counts.items()},
            "bugs": bugs, "machine": platform.platform(), "python": platform.python_version()}


def _mutants(bases: list[Base], rng: np.random.Generator, n: int) -> Iterator[Mutant]:
    made = 0
    for base in bases:
        for mutant in exhaustive(base):
            if made == n:
                return
            yield mutant
            made += 1
    for _ in range(n - made):
        yield draw(rng, bases)


def _keep(mutant: Mutant, result: Result, k: int, bug_dir: Path | None) -> dict:
    bug = {"mutant": k, "family": mutant.family, "what": mutant.what, "traceback": result.detail}
    if bug_dir is not None:
        bug_dir.mkdir(parents=True, exist_ok=True)
        (bug_dir / f"{k}.nirv").write_bytes(mutant.data)
        bug["file"] = str(bug_dir / f"{k}.nirv")
    return bug


def _markdown(r: dict) -> str:
    lines = ["# Fuzzing the reader and decoder", "",
             f"`python -m benchmarks.fuzz -n {r['n']} --seed {r['seed']}`: {r['n']} mutants of "
             + ", ".join(f"`tests/data/{path.name}`" for path in BASES) + f" ({r['exhaustive']} exhaustive, then "
             f"random), in {r['seconds']} s on one core ({r['mean_ms']} ms per mutant, open and decode "
             f"included; slowest {r['slowest_ms']} ms; peak RSS of the process {r['peak_rss_mib']} MiB), "
             "with the per-group decode limits lowered to "
             + ", ".join(f"{k} {v}" for k, v in r["limits"].items())
             + f". Machine: {r['machine']}, Python {r['python']}.", "",
             "Outcomes: `open` refused on open, `group` refused on a group read (and then decoded "
             "in full with concealment), `decoded` every frame decoded, `bug` anything else.", "",
             "| family | " + " | ".join(OUTCOMES) + " |", "|---|" + "---|" * len(OUTCOMES)]
    for family, c in list(r["by_family"].items()) + [("**all**", r["counts"])]:
        lines.append(f"| {family} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    lines += ["", f"Bugs: {len(r['bugs'])}."]
    lines += [f"- mutant {b['mutant']} ({b['family']}: {b['what']}): "
              f"`{b['traceback'].strip().splitlines()[-1]}`" for b in r["bugs"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="mutants in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = fuzz(args.n, args.seed, args.out / "fuzz_bugs")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(results, indent=1))
    (args.out / "fuzz.md").write_text(_markdown(results))
    print(_markdown(results))
    return 1 if results["bugs"] else 0


if __name__ == "__main__":
    sys.exit(main())
