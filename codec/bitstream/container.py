"""The .nirv file: prelude with the header, one chunk per group, an index and a footer.

:class:`NirvWriter` streams group chunks into a temporary file next to the target and only
renames it into place once the header, index and footer are written, so an interrupted encode
never leaves a file that looks complete; temporaries of killed runs are removed by the next
writer of the same target (:mod:`codec.tempfiles`). :class:`NirvReader` validates the
prelude, footer and index when it opens a file, then reads any group chunk by seeking. Byte
layout: see :mod:`codec.bitstream`.

Example:
    >>> import tempfile, pathlib
    >>> from codec.bitstream.header import Header
    >>> from nirvana.grid import GridConfig
    >>> h = Header(width=64, height=48, num_frames=4, fps_num=25, fps_den=1, group_size=2,
    ...            key_interval=10, num_groups=2, kind="grid", network=GridConfig())
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.nirv"
    >>> with NirvWriter(path, h.size) as w:
    ...     w.add_group(b"group 0", is_key=True, frames=2)
    ...     w.add_group(b"group 1", is_key=False, frames=2)
    ...     size = w.close(h)
    >>> with NirvReader(path) as r:
    ...     (r.num_groups, r.read_group(1), r.key_group_at_or_before(1), r.frame_range(1))
    (2, b'group 1', 0, (2, 4))
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from codec.bitstream.group import GroupPayload, unpack_group
from codec.bitstream.header import V1_SIZE, Header
from codec.errors import BitstreamError
from codec.tempfiles import blamed_on, remove_stale, temp_path

MAGIC = b"NIRV"
END_MAGIC = b"VRIN"
# written (the grid config's motion interpolation field; one ANS stream per group, context
# tables that adapt by the neighbours' misses); 1 (siren only) to 8 are read
VERSION = 9
U32_MAX = 2**32 - 1

_START = struct.Struct("<4sHH")  # magic, version, header size
_CRC = struct.Struct("<I")


def prelude_size(header_size: int) -> int:
    """Bytes before the first chunk: magic, version, header size, header, header CRC."""
    return _START.size + header_size + _CRC.size

_CHUNK = struct.Struct("<II")  # payload length, payload CRC32
_ENTRY = np.dtype([("length", "<u4"), ("flags", "u1"), ("frames", "u1")])  # 6 bytes: offsets implied
_ENTRY_V4 = np.dtype([("offset", "<u8"), ("length", "<u4"), ("flags", "u1"), ("frames", "u1")])  # 14 bytes
_ENTRY_V3 = np.dtype([("offset", "<u8"), ("length", "<u4"), ("flags", "u1")])  # 13 bytes: frames implied
OFFSETS_IMPLIED = 5  # from this version on the index leaves out the chunk offsets (chunks tile the file)
_FOOTER_HEAD = struct.Struct("<QI")  # index offset, group count (covered by the index CRC)
_FOOTER = struct.Struct("<QII4s")  # the footer head, index CRC32, end magic
KEY_FLAG = 0x01


class NirvWriter:
    """Writes a .nirv atomically: ``add_group`` per group, then ``close(header)``.

    Used as a context manager, an exception inside the block (or leaving it without
    ``close``) calls :meth:`abort`, so nothing is left at ``path`` or beside it.
    Example: see the module doc.
    """

    def __init__(self, path: str | os.PathLike, header_size: int) -> None:
        self.path = Path(path)
        remove_stale(self.path)
        self._tmp = temp_path(self.path)
        with blamed_on(self.path):
            self._file = open(self._tmp, "wb")
        self._header_size = header_size  # Header.size: the prelude is rewritten by close()
        self._write(bytes(prelude_size(header_size)))
        self._index: list[tuple[int, int, int]] = []
        self._offset = prelude_size(header_size)

    def __enter__(self) -> NirvWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            self.abort()

    def add_group(self, payload: bytes, is_key: bool, frames: int) -> None:
        """Append one group chunk: length, CRC32, payload; the group holds the next ``frames``
        frames (1..group_size). The first group must be a key."""
        if self._file is None:
            raise ValueError("NirvWriter is already closed")
        if not self._index and not is_key:
            raise ValueError("the first group of a .nirv must be a key group")
        if len(payload) > U32_MAX:
            raise ValueError(f"group payload of {len(payload)} bytes exceeds 4 GiB")
        self._write(_CHUNK.pack(len(payload), zlib.crc32(payload)) + payload)
        if not 1 <= frames <= 255:
            raise ValueError(f"a group holds 1..255 frames, not {frames}")
        self._index.append((len(payload), KEY_FLAG if is_key else 0, frames))
        self._offset += _CHUNK.size + len(payload)

    def close(self, header: Header) -> int:
        """Write index, footer and header, fsync and rename into place; return the file size."""
        if self._file is None:
            raise ValueError("NirvWriter is already closed")
        try:
            if header.num_groups != len(self._index):
                raise ValueError(
                    f"header says {header.num_groups} groups, {len(self._index)} were added"
                )
            frames = [entry[2] for entry in self._index]
            if sum(frames) != header.num_frames or max(frames) > header.group_size:
                raise ValueError(f"groups of {frames} frames do not tile the header's "
                                 f"{header.num_frames} frames in groups of at most {header.group_size}")
            head = header.pack()
            if len(head) != self._header_size:
                raise ValueError(f"header has {len(head)} bytes, {self._header_size} were reserved")
            index = np.array(self._index, dtype=_ENTRY).tobytes()
            crc = _index_crc(index, self._offset, len(self._index))
            self._write(index + _FOOTER.pack(self._offset, len(self._index), crc, END_MAGIC))
            size = self._file.tell()
            with blamed_on(self.path):
                self._file.seek(0)
                self._file.write(_START.pack(MAGIC, VERSION, len(head)) + head + _CRC.pack(zlib.crc32(head)))
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None
                os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        _fsync_dir(self.path.parent)
        return size

    def abort(self) -> None:
        """Discard everything written; nothing is left at ``path`` or in the temp file."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # a full disk can fail the final flush
                self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        """Append ``data``; an OSError (full disk, I/O error) discards the file and names ``path``."""
        try:
            with blamed_on(self.path):
                self._file.write(data)
        except OSError:
            self.abort()
            raise


class NirvReader:
    """Opens and validates a .nirv, then reads group chunks by random access.

    Attributes: ``header``, ``file_size``, ``num_groups`` and ``bytes_read`` (payload bytes
    returned by :meth:`read_group` so far); :meth:`frame_range` and :meth:`group_at` map
    groups to frames. Example: see the module doc.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = str(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise BitstreamError(f"{self.name}: cannot open ({e.strerror})") from None
        try:
            self.file_size = os.fstat(self._file.fileno()).st_size
            self.header = self._read_prelude()
            self._offsets, self._lengths, self._keys, self._starts = self._read_index()
        except BaseException:
            self._file.close()
            raise
        self.num_groups = len(self._offsets)
        self.bytes_read = 0

    def __enter__(self) -> NirvReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def is_key(self, i: int) -> bool:
        """Whether group ``i`` is intra-coded (decodable without earlier groups)."""
        return bool(self._keys[self._check(i)])

    def key_group_at_or_before(self, i: int) -> int:
        """The nearest key group ``<= i``: where decoding must start to reach group ``i``."""
        return int(np.flatnonzero(self._keys[: self._check(i) + 1])[-1])

    def frame_range(self, i: int) -> tuple[int, int]:
        """Frames ``[start, stop)`` of group ``i``."""
        return int(self._starts[self._check(i)]), int(self._starts[i + 1])

    def group_at(self, frame: int) -> int:
        """The group that holds ``frame`` (0 <= frame < num_frames)."""
        if not 0 <= frame < self.header.num_frames:
            raise IndexError(f"frame {frame} out of range 0..{self.header.num_frames - 1}")
        return int(np.searchsorted(self._starts, frame, side="right")) - 1

    def read_group(self, i: int) -> bytes:
        """Seek to chunk ``i``, check its length and CRC32, and return its payload."""
        offset, length = int(self._offsets[self._check(i)]), int(self._lengths[i])
        self._file.seek(offset)
        chunk = self._file.read(_CHUNK.size + length)
        if len(chunk) != _CHUNK.size + length:
            raise self._damaged(f"group {i} chunk is truncated")
        stored_length, crc = _CHUNK.unpack_from(chunk)
        payload = chunk[_CHUNK.size :]
        if stored_length != length:
            raise self._damaged(f"group {i} chunk length disagrees with the index")
        if zlib.crc32(payload) != crc:
            raise self._damaged(f"group {i} chunk fails its CRC32 check")
        self.bytes_read += length
        return payload

    def read_payload(
        self, i: int, shapes: list[tuple[int, ...]], prev: GroupPayload | None
    ) -> GroupPayload:
        """:meth:`read_group` + :func:`unpack_group`, with errors naming the file and group;
        ``prev`` is group ``i - 1``'s payload (None at a key group)."""
        payload = self.read_group(i)
        try:
            g = unpack_group(payload, shapes, None if prev is None else prev.latents,
                             self.header.context_layout, None if prev is None else prev.scales,
                             self.version, None if prev is None else prev.tables)
        except BitstreamError as e:
            raise self._damaged(f"group {i}: {e}") from None
        start, stop = self.frame_range(i)
        if g.num_frames != stop - start or g.is_key != self.is_key(i):
            raise self._damaged(f"group {i} payload disagrees with the header or index")
        return g

    # ------------------------------------------------------------------ validation

    def _check(self, i: int) -> int:
        if not 0 <= i < self.num_groups:
            raise IndexError(f"group {i} out of range 0..{self.num_groups - 1}")
        return i

    def _damaged(self, what: str) -> BitstreamError:
        return BitstreamError(f"{self.name}: {what}; the file is damaged")

    def _read_exact(self, offset: int, n: int) -> bytes:
        self._file.seek(offset)
        data = self._file.read(n)
        if len(data) != n:
            raise BitstreamError(f"{self.name}: file is truncated")
        return data

    def _read_prelude(self) -> Header:
        start = self._file.read(_START.size)
        if not MAGIC.startswith(start[: len(MAGIC)]):
            raise BitstreamError(f"{self.name}: not a NIRVANA file (bad magic)")
        if len(start) < _START.size or self.file_size < prelude_size(0) + _FOOTER.size:
            raise BitstreamError(f"{self.name}: file is truncated ({self.file_size} bytes)")
        _, version, head_size = _START.unpack(start)
        if version > VERSION:
            raise BitstreamError(
                f"{self.name}: format version {version} is newer than this decoder reads "
                f"({VERSION}); upgrade nirvana to decode it"
            )
        if version == 0 or (version == 1 and head_size != V1_SIZE):
            raise self._damaged(f"unknown format version {version} / header size {head_size}")
        self.version = version
        self.prelude_size = prelude_size(head_size)
        if self.file_size < self.prelude_size + _FOOTER.size:
            raise BitstreamError(f"{self.name}: file is truncated ({self.file_size} bytes)")
        head = self._read_exact(_START.size, head_size)
        (crc,) = _CRC.unpack(self._read_exact(_START.size + head_size, _CRC.size))
        if zlib.crc32(head) != crc:
            raise self._damaged("header fails its CRC32 check")
        try:
            return Header.unpack_v1(head) if version == 1 else Header.unpack(head)
        except BitstreamError as e:
            raise self._damaged(str(e)) from None

    def _read_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Offsets, lengths, key flags and first frames (one more: the frame count) of the groups."""
        footer = self._read_exact(self.file_size - _FOOTER.size, _FOOTER.size)
        index_offset, count, crc, end = _FOOTER.unpack(footer)
        if end != END_MAGIC:
            raise BitstreamError(
                f"{self.name}: file is truncated or was never finished (no end marker)"
            )
        h = self.header
        if count != h.num_groups:
            raise self._damaged(f"index holds {count} groups, the header {h.num_groups}")
        if self.version < 4 and count != h.regular_groups:
            raise self._damaged(f"header field num_groups={count} does not match "
                                f"ceil(num_frames / group_size) = {h.regular_groups}")
        entry = _ENTRY if self.version >= OFFSETS_IMPLIED else _ENTRY_V4 if self.version >= 4 else _ENTRY_V3
        if index_offset + count * entry.itemsize + _FOOTER.size != self.file_size:
            raise self._damaged(f"index offset {index_offset} is out of bounds")
        index = self._read_exact(index_offset, count * entry.itemsize)
        if _index_crc(index, index_offset, count) != crc:
            raise self._damaged("index fails its CRC32 check")
        entries = np.frombuffer(index, dtype=entry)
        lengths = entries["length"].astype(np.uint64)
        ends = self.prelude_size + np.cumsum(_CHUNK.size + lengths)
        chunk_at = np.concatenate([[np.uint64(self.prelude_size)], ends[:-1]])
        offsets = chunk_at if self.version >= OFFSETS_IMPLIED else entries["offset"]
        if not np.array_equal(offsets, chunk_at) or ends[-1] != index_offset:
            raise self._damaged("index offsets are out of bounds")
        flags = entries["flags"]
        if (flags > KEY_FLAG).any() or not flags[0] & KEY_FLAG:
            raise self._damaged("index has bad key flags (the first group must be a key)")
        if self.version >= 4:
            frames = entries["frames"].astype(np.int64)
            if frames.min() < 1 or frames.max() > h.group_size or frames.sum() != h.num_frames:
                raise self._damaged(f"index group lengths do not tile {h.num_frames} frames "
                                    f"in groups of 1..{h.group_size}")
        else:  # every group but the last holds group_size frames
            frames = np.minimum(h.group_size, h.num_frames - h.group_size * np.arange(count))
        starts = np.concatenate([[0], np.cumsum(frames)])
        return offsets, lengths, (flags & KEY_FLAG).astype(bool), starts


def _index_crc(index: bytes, index_offset: int, count: int) -> int:
    """CRC32 over the index entries and the footer fields that locate them."""
    return zlib.crc32(_FOOTER_HEAD.pack(index_offset, count), zlib.crc32(index))


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
