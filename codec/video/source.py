"""The reader's common interface: :class:`VideoInfo` and :class:`VideoSource`.

Every input kind (PyAV container, raw ``.yuv``, PNG folder) is a :class:`VideoSource`
that streams 8-bit RGB frames; :meth:`VideoSource.groups` builds fixed-size stacks on top
of :meth:`VideoSource.frames` so that at most one group is held in memory.

Example:
    >>> from codec.video import open_video
    >>> with open_video("clip.y4m", start=2, stop=6) as src:   # doctest: +SKIP
    ...     stacks = [g.shape for g in src.groups(3)]
    >>> stacks                                                  # doctest: +SKIP
    [(3, 144, 176, 3), (1, 144, 176, 3)]
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from codec.errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """What a :class:`VideoSource` will deliver.

    ``num_frames`` counts the frames inside ``[start, stop)`` when the source knows its
    length cheaply, else ``None``. ``bit_depth`` is the source's sample depth; frames are
    always delivered as 8-bit RGB.

    Example:
        >>> VideoInfo(width=176, height=144, fps=Fraction(25), num_frames=8, bit_depth=8).width
        176
    """

    width: int
    height: int
    fps: Fraction
    num_frames: int | None
    bit_depth: int


class VideoSource:
    """A video opened for reading; use :func:`codec.video.open_video` to make one.

    Example:
        >>> with open_video("clip.mp4") as src:           # doctest: +SKIP
        ...     first = next(src.frames())                 # (H, W, 3) uint8 RGB
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info

    def frames(self) -> Iterator[np.ndarray]:
        """Yield each frame in ``[start, stop)`` as a C-contiguous ``(H, W, 3)`` uint8 RGB array.

        Example:
            >>> sum(1 for _ in src.frames()) == src.info.num_frames   # doctest: +SKIP
            True
        """
        raise NotImplementedError

    def groups(self, group_size: int) -> Iterator[np.ndarray]:
        """Yield ``(n, H, W, 3)`` uint8 stacks with ``n == group_size`` except maybe the last.

        Example:
            >>> [len(g) for g in src.groups(3)]   # 8 frames        # doctest: +SKIP
            [3, 3, 2]
        """
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        shape = (group_size, self.info.height, self.info.width, 3)
        buffer: np.ndarray | None = None
        filled = 0
        for frame in self.frames():
            if buffer is None:
                buffer = np.empty(shape, dtype=np.uint8)
            buffer[filled] = frame
            filled += 1
            if filled == group_size:
                yield buffer
                buffer, filled = None, 0
        if buffer is not None:
            yield buffer[:filled].copy()

    def close(self) -> None:
        """Release files held open; safe to call twice.

        Example:
            >>> src.close()   # doctest: +SKIP
        """

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def require_regular_file(path: Path, wanted: str) -> None:
    """Refuse a pipe, device or socket: reading one can block forever or never end.

    ``wanted`` says what to give instead. A path that cannot be examined is left for the
    caller's own open to report.

    Example:
        >>> require_regular_file(Path("/dev/null"), "a .nirv file")
        Traceback (most recent call last):
        codec.errors.InputError: /dev/null: is not a regular file but a character device; give a .nirv file
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        kind = ("a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a folder" if stat.S_ISDIR(mode) else "a special file")
        raise InputError(f"{path}: is not a regular file but {kind}; give {wanted}")


def frame_range(name: str, start: int, stop: int | None, total: int | None) -> tuple[int, int | None]:
    """Check ``start``/``stop`` against ``total`` frames; return ``(start, clamped stop)``.

    ``stop`` past the end is clamped like a Python slice; ``start`` past the end is an
    :class:`InputError`. With ``total`` unknown only the signs and order are checked.

    Example:
        >>> frame_range("a.y4m", 2, 100, 8)
        (2, 8)
    """
    if start < 0:
        raise InputError(f"{name}: start frame {start} is negative; use 0 or more")
    if stop is not None and stop <= start:
        raise InputError(f"{name}: stop frame {stop} is not after start frame {start}; give stop > start")
    if total is None:
        return start, stop
    if start >= total:
        raise InputError(
            f"{name}: start frame {start} is past the end of the video ({total} frames); "
            f"use a start below {total}"
        )
    return start, total if stop is None else min(stop, total)
