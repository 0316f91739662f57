"""Temporary files beside an output: named after their owner, cleaned up when it is gone.

Every output (``.nirv``, video file, PNG folder, stats JSON) is written under a hidden name
beside its target and renamed into place only when complete. The name carries the writing
process's id, ``.{target name}.tmp-{pid}-{token}{suffix}``, so that a later run can tell its
own leftovers from another live process's work: :func:`remove_stale` deletes the temporaries
of a target whose process no longer exists (one killed by SIGKILL or a power cut), and leaves
those of live processes alone. SIGINT and SIGTERM need no such help: the CLI turns both into
an exception, and the writers' context managers remove their temporaries on the way out.
What an interrupted encode keeps on purpose, its finished segments for ``--resume`` in
``.{target name}.segments/`` (:mod:`codec.resume`), is no temporary: :func:`remove_stale`
leaves it alone.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> dead = folder / ".clip.nirv.tmp-999999999-0a1b"   # no such process
    >>> _ = dead.write_bytes(b"half a file")
    >>> [p.name for p in remove_stale(folder / "clip.nirv")]
    ['.clip.nirv.tmp-999999999-0a1b']
    >>> temp_path(folder / "clip.nirv").name.startswith(f".clip.nirv.tmp-{os.getpid()}-")
    True
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


def temp_path(target: Path, suffix: str = "") -> Path:
    """A fresh hidden name beside ``target``, owned by this process."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale(target: Path) -> list[Path]:
    """Delete the temporaries of ``target`` left by processes that no longer run; return them."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.tmp-(\d+)(?:-[0-9a-f]+)?(?:\..*)?")
    removed = []
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match is None or _alive(int(match[1])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def blamed_on(target: Path) -> Iterator[None]:
    """Report an OSError raised while writing ``target``'s temporary as one about ``target``."""
    try:
        yield
    except OSError as e:
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, os.fspath(target)) from None


def write_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` through a temporary, so it is whole or absent."""
    target = Path(target)
    remove_stale(target)
    temp = temp_path(target)
    try:
        with blamed_on(target):
            temp.write_text(text)
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
