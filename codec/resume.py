"""Finished segments of an encode, kept beside its output so that an interrupted encode can be
continued (``nirvana encode ... --resume``) into the same bytes as an uninterrupted one.

An encode in one process or a local worker pool (not torchrun, whose ranks hand their
segments over only at the end) stores each segment as it completes in a hidden folder beside
the output, ``.{output name}.segments/``:

- ``manifest.json``: everything that decides the file's bytes (:func:`manifest`): the input
  (resolved path, size, modification time), the first frame, the header (frame size and
  count, frame rate, group size, key interval, network kind and config), the fit options,
  the CPU threads per worker, the devices and the codec and torch versions;
- ``segment-NNNNNN.bin``, one per finished segment: magic, the length of a JSON block (the
  manifest's digest, the segment index, each group's payload length and stats, key flag
  included), that block, the groups' chunk payloads, and a SHA-256 of all of it.

Each file is written under a ``.part`` name, flushed to disk and renamed, so a killed run
(SIGKILL, power cut) leaves whole files and perhaps a ``.part``, which the next run deletes;
a segment file that fails any check is deleted and its segment fitted again. While an encode
runs it holds an exclusive lock (flock) on the folder, which the system releases however the
process ends. The folder is removed once the ``.nirv`` is in place, or when the encode fails;
SIGINT and SIGTERM (and SIGKILL, which allows no cleanup) leave it for ``--resume``.

Without ``--resume`` an encode starts over: it empties the folder of a dead run (a live run's
is left alone, and this encode then keeps no segments). With ``--resume`` it keeps the valid
segments and fits the rest, or refuses, naming the first difference, if the manifest differs.

Example:
    >>> store_folder(Path("videos/clip.nirv"))
    PosixPath('videos/.clip.nirv.segments')
    >>> blob = _pack("digest", 0, [(b"chunk", {"key": True})])
    >>> _unpack(blob, "digest", 0)
    [(b'chunk', {'key': True})]
    >>> _unpack(blob[:-1], "digest", 0), _unpack(blob, "another encode's digest", 0)
    (None, None)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from codec.bitstream import Header
from codec.bitstream.container import VERSION
from codec.errors import InputError
from codec.schedule import Placement
from codec.tempfiles import blamed_on
from nirvana.config import FitConfig

FORMAT = 1  # of the folder's files; part of the manifest
MANIFEST = "manifest.json"
HOLD_ENV = "NIRVANA_TEST_HOLD_AFTER_SEGMENTS"  # tests: wait to be killed after storing N segments
_MAGIC = b"NSEG"
_LENGTH = struct.Struct("<I")
_SUM = hashlib.sha256().digest_size
_SEGMENT = re.compile(r"segment-(\d+)\.bin")

Groups = list[tuple[bytes, dict]]  # one segment: (chunk payload, GroupStats as a dict) per group


def store_folder(output: Path) -> Path:
    """The hidden folder that keeps the finished segments of the encode of ``output``."""
    return output.parent / f".{output.name}.segments"


def _device_name(device: str) -> str:
    """``cpu``, or the GPU's model: the arithmetic, and so the bytes, depend on it."""
    dev = torch.device(device)
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type


def manifest(input: str | os.PathLike[str], start: int, header: Header, fit: FitConfig,
             placement: Placement) -> dict:
    """Everything that decides the bytes of an encode, as plain JSON values: ``header`` is the
    one to be written, ``placement`` gives the thread count and devices (the number of workers
    changes nothing)."""
    st = os.stat(input)
    record = {
        "format": FORMAT,
        "input": {"path": str(Path(input).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
        "start": start,
        "header": asdict(header),
        "fit": asdict(fit),
        "threads": placement.threads,
        "devices": sorted({_device_name(d) for d in placement.devices}),
        "versions": {"nirvana-codec": metadata.version("nirvana-codec"), "torch": torch.__version__,
                     "nirv": VERSION},
    }
    return json.loads(json.dumps(record))


def _digest(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _flat(record: dict, prefix: str = "") -> dict[str, Any]:
    """``{"fit": {"seed": 0}}`` → ``{"fit.seed": 0}``."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _difference(old: dict, new: dict) -> str:
    """The first thing that differs between the manifest of the interrupted encode and this one's."""
    was, now = old.get("input", {}), new["input"]
    if was.get("path") != now["path"]:
        return f"the interrupted encode read {was.get('path')}, this one reads {now['path']}"
    if was != now:
        return f"the input {now['path']} changed since the interrupted encode (size or modification time)"
    a, b = _flat(old), _flat(new)
    key = next(k for k in [*b, *a] if a.get(k) != b.get(k))
    return f"{key} was {json.dumps(a.get(key))} in the interrupted encode, {json.dumps(b.get(key))} now"


def _same_folder(fd: int, folder: Path) -> bool:
    """Whether ``fd`` is still the folder at ``folder`` (not one removed since)."""
    try:
        here = os.stat(folder)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def _lock(folder: Path) -> int | None:
    """Create ``folder`` if need be and lock it for this process: its descriptor, or None if
    another process holds the lock. A folder removed between opening and locking is made anew."""
    while True:
        folder.mkdir(exist_ok=True)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _same_folder(fd, folder):
            return fd
        os.close(fd)


def _clear(folder: Path, keep: Callable[[str], bool]) -> None:
    """Delete every entry of ``folder`` whose name ``keep`` rejects."""
    for entry in folder.iterdir():
        if keep(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _read_manifest(folder: Path) -> dict | None:
    """The manifest in ``folder``, or None if it is missing or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((folder / MANIFEST).read_text())
        return record if isinstance(record, dict) else None
    return None


def _pack(digest: str, index: int, groups: Groups) -> bytes:
    """A segment file: see the module doc."""
    meta = json.dumps({"manifest": digest, "segment": index,
                       "groups": [{"bytes": len(data), "stats": stats} for data, stats in groups]}).encode()
    body = _MAGIC + _LENGTH.pack(len(meta)) + meta + b"".join(data for data, _ in groups)
    return body + hashlib.sha256(body).digest()


def _unpack(blob: bytes, digest: str, index: int) -> Groups | None:
    """The groups of a segment file, or None if it is damaged or from another encode."""
    body = blob[:-_SUM]
    if len(blob) < len(_MAGIC) + _LENGTH.size + _SUM or hashlib.sha256(body).digest() != blob[-_SUM:]:
        return None
    try:
        if not body.startswith(_MAGIC):
            return None
        (length,) = _LENGTH.unpack_from(body, len(_MAGIC))
        start = len(_MAGIC) + _LENGTH.size
        meta = json.loads(body[start:start + length])
        if meta["manifest"] != digest or meta["segment"] != index:
            return None
        groups, offset = [], start + length
        for group in meta["groups"]:
            groups.append((body[offset:offset + group["bytes"]], group["stats"]))
            offset += group["bytes"]
    except (ValueError, KeyError, TypeError, struct.error):
        return None
    return groups if groups and offset == len(body) else None


def _hold_for_tests(stored: int) -> None:
    """Test hook: with ``NIRVANA_TEST_HOLD_AFTER_SEGMENTS=N``, wait to be killed (SIGINT and
    SIGTERM included) once this run has stored N segments, between two segments."""
    if os.environ.get(HOLD_ENV) == str(stored):
        while True:
            time.sleep(1)


class SegmentStore:
    """The finished segments of one encode (see the module doc); open it with :func:`segment_store`.

    ``kept`` maps a segment's index to its groups, for the valid segments an interrupted encode
    left; :meth:`save` adds one, :meth:`discard` deletes them all once the file is complete.
    """

    def __init__(self, folder: Path, fd: int, digest: str, kept: dict[int, Groups]) -> None:
        self.folder = folder
        self.kept = kept
        self.stored = 0  # segments saved by this run
        self._fd = fd  # the locked folder's, owned by segment_store
        self._digest = digest

    def save(self, index: int, groups: Groups) -> None:
        """Store segment ``index`` whole or not at all: a ``.part`` file, fsync, rename, fsync."""
        path = self.folder / f"segment-{index:06d}.bin"
        _write_durable(path, _pack(self._digest, index, groups), self._fd)
        self.stored += 1
        _hold_for_tests(self.stored)

    def discard(self) -> None:
        """Delete every file of the store (the folder goes when the store is closed)."""
        _clear(self.folder, lambda name: False)


def _write_durable(path: Path, data: bytes, folder_fd: int) -> None:
    """Write ``data`` to ``path`` through ``path.part``, on disk before it takes the name."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    os.fsync(folder_fd)


def _load_kept(folder: Path, digest: str) -> dict[int, Groups]:
    """The valid segment files of ``folder``; the others are deleted."""
    kept = {}
    for entry in sorted(folder.iterdir()):
        match = _SEGMENT.fullmatch(entry.name)
        if match is None:
            continue
        groups = _unpack(entry.read_bytes(), digest, int(match[1]))
        if groups is None:
            entry.unlink()
        else:
            kept[int(match[1])] = groups
    return kept


def _open(output: Path, folder: Path, fd: int, record: dict, resume: bool) -> SegmentStore:
    """Check the locked ``folder`` against ``record``: keep its valid segments (``resume``), or
    empty it and write the manifest (a new encode)."""
    old, digest = _read_manifest(folder), _digest(record)
    if resume and old is not None and old != record:
        raise InputError(f"{output}: cannot resume: {_difference(old, record)}; rerun with the "
                         "input and options of the interrupted encode, or without --resume to start over")
    if resume and old == record:
        _clear(folder, lambda name: name == MANIFEST or _SEGMENT.fullmatch(name) is not None)
        return SegmentStore(folder, fd, digest, _load_kept(folder, digest))
    _clear(folder, lambda name: False)
    _write_durable(folder / MANIFEST, json.dumps(record, indent=1).encode(), fd)
    return SegmentStore(folder, fd, digest, {})


def _count(folder: Path) -> int:
    """How many segment files ``folder`` holds (0 if it is gone)."""
    with contextlib.suppress(FileNotFoundError):
        return sum(1 for entry in folder.iterdir() if _SEGMENT.fullmatch(entry.name))
    return 0


def _release(folder: Path, fd: int) -> None:
    """Unlock ``folder``, removing it first if it holds no segment."""
    if folder.is_dir() and not _count(folder):
        shutil.rmtree(folder, ignore_errors=True)
    os.close(fd)


@contextlib.contextmanager
def segment_store(output: Path, record: dict, resume: bool) -> Iterator[SegmentStore | None]:
    """The segment store of the encode of ``output`` described by ``record`` (:func:`manifest`).

    Yields None (keep nothing) if another live encode holds the folder, or refuses with
    ``resume``. On SIGINT or SIGTERM (KeyboardInterrupt) the segments stay and the exception
    gets a note saying so; any other exception deletes them; a folder left without segments
    is removed.
    """
    folder = store_folder(output)
    with blamed_on(output):
        fd = _lock(folder)
    if fd is None:
        if resume:
            raise InputError(f"{output}: another encode of it is running (its segments are in {folder}); "
                             "wait for it to finish or choose another output")
        yield None
        return
    try:
        with blamed_on(output):
            store = _open(output, folder, fd, record, resume)
    except BaseException:
        _release(folder, fd)
        raise
    try:
        yield store
    except KeyboardInterrupt as e:
        count = _count(folder)
        if count:
            e.add_note(f"{count} finished segment{'s' * (count != 1)} kept in {folder}; "
                       "run the same encode with --resume to continue")
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            store.discard()
        raise
    finally:
        _release(folder, fd)
