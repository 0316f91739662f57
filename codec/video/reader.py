"""Open any supported input as a :class:`~codec.video.source.VideoSource`.

Dispatch: a folder is read as PNG frames (:mod:`codec.video.pngdir`), a ``.yuv`` file as
raw planar 4:2:0 (:mod:`codec.video.rawyuv`), anything else through PyAV
(:mod:`codec.video.container`). All deliver 8-bit RGB; see those modules for how YUV is
converted (BT.601 limited range when untagged, as ffmpeg does).

Example:
    >>> with open_video("samples/carphone.mp4", start=0, stop=8) as src:   # doctest: +SKIP
    ...     src.info.num_frames, next(src.groups(8)).shape
    (8, (8, 144, 176, 3))
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

from codec.errors import InputError
from codec.video.container import ContainerSource
from codec.video.pngdir import PngFolderSource
from codec.video.rawyuv import RawYuvSource
from codec.video.source import VideoSource, require_regular_file

_NTSC = [Fraction(base * 1000, 1001) for base in (24, 30, 48, 60, 120)]


def as_fps(value: float | Fraction) -> Fraction:
    """Turn a frame rate into an exact fraction; 29.97 and friends become 30000/1001 etc.

    Example:
        >>> as_fps(29.97)
        Fraction(30000, 1001)
    """
    fps = Fraction(value).limit_denominator(1001)
    for ntsc in _NTSC:
        if abs(fps - ntsc) < Fraction(1, 1000):
            return ntsc
    return fps


def open_video(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    start: int = 0,
    stop: int | None = None,
    ignore_trailing_bytes: bool = False,
) -> VideoSource:
    """Open a video file, raw ``.yuv`` or PNG folder for streaming frames in ``[start, stop)``.

    ``size`` (width, height) is needed for raw ``.yuv`` without the size in its name and
    must match the real size of other inputs; ``fps`` overrides the source's frame rate.
    ``ignore_trailing_bytes`` lets a raw ``.yuv`` end in a partial frame, which is dropped.
    Pipes, devices and sockets are refused (reading them could block forever).

    Example:
        >>> open_video("CiscoVT2people_320x192_12fps.yuv").info.num_frames   # doctest: +SKIP
        9
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    rate = None
    if fps is not None:
        rate = as_fps(fps) if math.isfinite(fps) and fps > 0 else Fraction(0)
        if rate <= 0:
            raise InputError(f"{path}: frame rate {fps} is not a positive number of at least 1/1001; check --fps")
    if not path.is_dir():
        require_regular_file(path, "a video file, a raw .yuv or a folder of PNG frames")
    if path.is_dir():
        source: VideoSource = PngFolderSource(path, fps=rate, start=start, stop=stop)
    elif path.suffix.lower() == ".yuv":
        return RawYuvSource(path, size=size, fps=rate, start=start, stop=stop,
                            ignore_trailing_bytes=ignore_trailing_bytes)
    else:
        source = ContainerSource(path, fps=rate, start=start, stop=stop)
    if size is not None and tuple(size) != (source.info.width, source.info.height):
        source.close()
        raise InputError(
            f"{path}: frames are {source.info.width}x{source.info.height}, not the {size[0]}x{size[1]} "
            "given; drop --size or fix it"
        )
    return source
