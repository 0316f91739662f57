"""A folder of PNG files read as a video, frames in file-name order.

All PNGs must share one size (checked up front from their headers, without decoding).
Each file is decoded by PyAV's PNG decoder and converted to 8-bit RGB (grey, palette and
alpha images included; 16-bit images are reduced to 8 bits by swscale).

Example:
    >>> PngFolderSource(Path("frames/")).info.num_frames   # doctest: +SKIP
    3
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from codec.errors import InputError
from codec.video.source import VideoInfo, VideoSource, frame_range

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_FPS = Fraction(25)


def png_header(path: Path) -> tuple[int, int, int]:
    """Return ``(width, height, bit_depth)`` from a PNG's IHDR chunk.

    Example:
        >>> png_header(Path("frame_000000.png"))   # doctest: +SKIP
        (176, 144, 8)
    """
    with open(path, "rb") as handle:
        head = handle.read(25)
    if len(head) < 25 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        raise InputError(f"{path}: not a PNG file; remove it from the folder or fix it")
    width, height = struct.unpack(">II", head[16:24])
    return width, height, head[24]


class PngFolderSource(VideoSource):
    """Frames from the ``*.png`` files of a folder, sorted by name.

    Example:
        >>> with PngFolderSource(Path("frames"), fps=Fraction(30)) as src:   # doctest: +SKIP
        ...     stack = next(src.groups(8))
    """

    def __init__(self, folder: Path, *, fps: Fraction | None = None, start: int = 0, stop: int | None = None) -> None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not files:
            raise InputError(f"{folder}: folder holds no .png files; give a folder of PNG frames or a video file")
        width, height, depth = png_header(files[0])
        for path in files[1:]:
            other = png_header(path)[:2]
            if other != (width, height):
                raise InputError(
                    f"{path}: size {other[0]}x{other[1]} differs from {files[0].name} ({width}x{height}); "
                    "all PNG frames must have the same size"
                )
        start, stop = frame_range(str(folder), start, stop, len(files))
        self._files = files[start:stop]
        super().__init__(VideoInfo(width, height, fps or DEFAULT_FPS, len(self._files), max(depth, 8)))

    def frames(self) -> Iterator[np.ndarray]:
        decoder = av.CodecContext.create("png", "r")
        for path in self._files:
            packet = av.Packet(path.read_bytes())
            packet.is_keyframe = True  # else the decoder treats it as a delta on the previous image
            try:
                decoded = decoder.decode(packet)
            except av.FFmpegError as error:
                raise InputError(f"{path}: cannot decode PNG ({error.strerror}); replace the file") from None
            if not decoded:
                raise InputError(f"{path}: cannot decode PNG; replace the file")
            yield np.ascontiguousarray(decoded[0].to_ndarray(format="rgb24"))
