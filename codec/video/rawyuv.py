"""Raw planar 4:2:0 ``.yuv`` files, read frame by frame with a seek (random access is free).

Frames are read with plain ``readinto`` calls rather than a memmap: mapped file pages count
towards the process's resident memory, which would then grow with the length of the video.

A frame is the Y plane (W x H) followed by U and V (ceil(W/2) x ceil(H/2) each), 8-bit
samples, or little-endian 16-bit samples holding 10-bit values when the name says
``_10bit``. Size and frame rate come from the caller or from UVG-style names such as
``Beauty_1920x1080_120fps_420_8bit_YUV.yuv``; the frame rate defaults to 25. A size given
by the caller must agree with one in the name, and the file must hold whole frames (unless
``ignore_trailing_bytes``: then a partial last frame is dropped), so that a wrong size is
refused rather than read as garbage frames.

YUV to RGB: each frame's planes are copied into a ``yuv420p`` (or ``yuv420p10le``)
``av.VideoFrame`` and converted by swscale with ``to_ndarray(format="rgb24")``, which
treats untagged YUV as BT.601 limited range, as ffmpeg does by default (and as y4m files
are converted by :mod:`codec.video.container`). Bicubic interpolation is requested to match
ffmpeg's default ``sws_flags``; it only matters where swscale rescales chroma (10-bit input),
8-bit 4:2:0 takes swscale's direct path either way.

Example:
    >>> RawYuvSource(Path("CiscoVT2people_320x192_12fps.yuv")).info.fps   # doctest: +SKIP
    Fraction(12, 1)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from codec.errors import InputError
from codec.video.source import VideoInfo, VideoSource, frame_range

_SIZE = re.compile(r"(?<![0-9])([0-9]+)x([0-9]+)(?![0-9])")
_FPS = re.compile(r"(?<![0-9.])([0-9]+(?:\.[0-9]+)?)fps", re.IGNORECASE)
_DEPTH = re.compile(r"(?<![0-9])(8|10)bit", re.IGNORECASE)
_NOT_420 = re.compile(r"(?<![0-9])(422|444)(?![0-9])")
DEFAULT_FPS = Fraction(25)
MAX_SIDE = 16384  # pixels: the largest width or height read (and stored in a .nirv)


def parse_yuv_name(name: str) -> tuple[tuple[int, int] | None, Fraction | None, int]:
    """Read ``(size, fps, bit_depth)`` from a UVG-style file name; missing parts are ``None``.

    Example:
        >>> parse_yuv_name("Beauty_1920x1080_120fps_420_10bit_YUV.yuv")
        ((1920, 1080), Fraction(120, 1), 10)
    """
    size_match = _SIZE.search(name)
    fps_match = _FPS.search(name)
    depth_match = _DEPTH.search(name)
    size = (int(size_match[1]), int(size_match[2])) if size_match else None
    fps = Fraction(fps_match[1]) if fps_match else None
    return size, fps, int(depth_match[1]) if depth_match else 8


class RawYuvSource(VideoSource):
    """Frames of a raw planar 4:2:0 ``.yuv`` file.

    Example:
        >>> with RawYuvSource(Path("clip.yuv"), size=(320, 192)) as src:   # doctest: +SKIP
        ...     frame = next(src.frames())
    """

    def __init__(
        self,
        path: Path,
        *,
        size: tuple[int, int] | None = None,
        fps: Fraction | None = None,
        start: int = 0,
        stop: int | None = None,
        ignore_trailing_bytes: bool = False,
    ) -> None:
        name = str(path)
        name_size, name_fps, bit_depth = parse_yuv_name(path.name)
        if _NOT_420.search(path.name):
            raise InputError(f"{name}: the name suggests 4:2:2 or 4:4:4; only planar 4:2:0 .yuv is supported")
        if size is not None and name_size is not None and tuple(size) != name_size:
            raise InputError(f"{name}: the name says {name_size[0]}x{name_size[1]} but --size is "
                             f"{size[0]}x{size[1]}; drop --size or rename the file")
        size = size or name_size
        if size is None:
            raise InputError(
                f"{name}: raw .yuv needs a frame size; pass --size WxH or put it in the name "
                "(e.g. clip_1920x1080_30fps.yuv)"
            )
        width, height = size
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise InputError(f"{name}: frame size {width}x{height} is outside 1x1..{MAX_SIDE}x{MAX_SIDE}; "
                             "check --size")
        sample = np.dtype("<u2" if bit_depth > 8 else "u1")
        chroma = ((height + 1) // 2, (width + 1) // 2)
        self._dtype = np.dtype([("y", sample, (height, width)), ("u", sample, chroma), ("v", sample, chroma)])
        file_size = path.stat().st_size
        frame_bytes = self._dtype.itemsize
        if file_size < frame_bytes or (file_size % frame_bytes and not ignore_trailing_bytes):
            raise InputError(
                f"{name}: file size {file_size} is not a multiple of the {width}x{height} "
                f"{bit_depth}-bit 4:2:0 frame size ({frame_bytes} bytes); check --size"
                + ("" if file_size < frame_bytes else ", or pass --ignore-trailing-bytes to drop the partial frame")
            )
        total = file_size // frame_bytes
        self._start, self._stop = frame_range(name, start, stop, total)
        self._path = path
        self._format = "yuv420p10le" if bit_depth > 8 else "yuv420p"
        super().__init__(
            VideoInfo(width, height, fps or name_fps or DEFAULT_FPS, self._stop - self._start, bit_depth)
        )

    def frames(self) -> Iterator[np.ndarray]:
        record = np.empty((), dtype=self._dtype)
        with open(self._path, "rb") as f:
            f.seek(self._start * self._dtype.itemsize)
            for _ in range(self._start, self._stop):
                if f.readinto(memoryview(record.reshape(1)).cast("B")) != self._dtype.itemsize:
                    raise InputError(f"{self._path}: file ended early; was it truncated while reading?")
                yield yuv_to_rgb(record["y"], record["u"], record["v"], self._format)

    def close(self) -> None:
        pass


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, pix_fmt: str = "yuv420p") -> np.ndarray:
    """Convert one frame's planes to ``(H, W, 3)`` uint8 RGB with swscale (BT.601, limited range).

    Example:
        >>> grey = yuv_to_rgb(np.full((2, 2), 126, np.uint8), *[np.full((1, 1), 128, np.uint8)] * 2)
        >>> grey[0, 0].tolist()
        [128, 128, 128]
    """
    height, width = y.shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, (y, u, v)):
        stride = plane.line_size // data.dtype.itemsize
        rows = np.frombuffer(plane, dtype=data.dtype).reshape(-1, stride)
        rows[: data.shape[0], : data.shape[1]] = data
    return np.ascontiguousarray(frame.to_ndarray(format="rgb24", interpolation="BICUBIC"))
