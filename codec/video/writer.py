"""Write RGB frames to a video file or a folder of PNG frames, atomically.

The output kind follows the path: ``.mp4``/``.mkv``/``.mov`` are encoded with PyAV
(libx264 yuv420p, crf 12, preset medium unless told otherwise), ``.y4m`` holds raw
yuv420p, and a path with no suffix, ending in ``/`` or naming an existing folder becomes
``frame_000000.png``, ``frame_000001.png``, ... Frames go to a hidden temporary file (or
folder) next to the target, which is renamed into place by :meth:`VideoWriter.close`;
:meth:`VideoWriter.abort` removes it, and the next writer of the same target removes those
of killed runs (:mod:`codec.tempfiles`). An OSError (full disk, no permission) is raised
naming the target, not the temporary.

Limits: ``--crf`` is 0..51 for x264 and x265, 0..63 for SVT-AV1. Video files store frame
rates from 1/65535 to 65535 fps; a rate whose terms do not fit 32 bits is rounded to one with
a denominator up to 32767 (a PNG folder has no frame rate and takes any).

Colour: RGB becomes YUV through swscale with BT.601 limited range (ffmpeg's default), and
the stream is tagged smpte170m / tv range so players and :func:`codec.video.open_video`
convert it back the same way. Odd frame sizes use 4:4:4 for x264, x265 and y4m, since
4:2:0 needs even sizes there. ``lossless=True`` stores RGB exactly: libx264rgb at qp 0
(default), libx265 in gbrp with ``lossless=1``, or ffv1 in bgr0 (``.mkv`` only).

Example:
    >>> with VideoWriter("out.mkv", 176, 144, Fraction(25), lossless=True) as out:   # doctest: +SKIP
    ...     out.write(frames)   # (n, 144, 176, 3) uint8
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from codec.errors import InputError
from codec.tempfiles import blamed_on, remove_stale, temp_path

_MUXERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".y4m": "yuv4mpegpipe"}
_CODECS = ("libx264", "libx264rgb", "libx265", "libsvtav1", "ffv1")
DEFAULT_CRF = 12
MAX_CRF = {"libx264": 51, "libx264rgb": 51, "libx265": 51, "libsvtav1": 63}
MAX_RATE = 65535  # fps, and seconds per frame, that every muxer here accepts
_INT32_MAX = 2**31 - 1
_SMPTE170M = 6  # AVCOL_SPC_SMPTE170M: BT.601 matrix
_TV_RANGE = 1  # AVCOL_RANGE_MPEG


@dataclass(frozen=True)
class Encoder:
    """An encoder setting for PyAV's ``add_stream``."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


def choose_encoder(
    path: Path, width: int, height: int, codec: str | None, crf: int | None, lossless: bool
) -> Encoder:
    """Pick codec, pixel format and options for a file output, or raise :class:`InputError`.

    Example:
        >>> choose_encoder(Path("a.mkv"), 176, 144, None, None, True)
        Encoder(codec='libx264rgb', pix_fmt='rgb24', options={'qp': '0', 'preset': 'medium'})
    """
    suffix = path.suffix.lower()
    odd = width % 2 == 1 or height % 2 == 1
    if suffix == ".y4m":
        if codec not in (None, "rawvideo") or crf is not None or lossless:
            raise InputError(
                f"{path}: .y4m holds raw YUV, so codec, crf and lossless do not apply; "
                "use .mkv for lossless RGB"
            )
        return Encoder("rawvideo", "yuv444p" if odd else "yuv420p")
    if codec is not None and codec not in _CODECS:
        raise InputError(f"{path}: unknown codec '{codec}'; use one of {', '.join(_CODECS)}")
    if lossless and crf is not None:
        raise InputError(f"{path}: crf {crf} contradicts lossless; give one or the other")
    if codec == "ffv1" and suffix != ".mkv":
        raise InputError(f"{path}: ffv1 is stored in .mkv only; change the suffix to .mkv")
    if codec == "libsvtav1" and lossless:
        raise InputError(f"{path}: libsvtav1 cannot store RGB losslessly; use libx264rgb or ffv1")
    if codec == "ffv1" or (lossless and codec == "libx265"):
        if crf is not None:
            raise InputError(f"{path}: {codec} is lossless here, crf does not apply; drop --crf")
        if codec == "ffv1":
            return Encoder("ffv1", "bgr0")
        return Encoder("libx265", "gbrp", {"x265-params": "lossless=1:log-level=error", "preset": "medium"})
    if lossless:
        return Encoder("libx264rgb", "rgb24", {"qp": "0", "preset": "medium"})
    lossy = codec or "libx264"
    if crf is not None and not 0 <= crf <= MAX_CRF[lossy]:
        raise InputError(f"{path}: --crf {crf} is outside 0..{MAX_CRF[lossy]} for {lossy}; "
                         "lower is better quality, the default is 12")
    rate = {"crf": str(DEFAULT_CRF if crf is None else crf)}
    yuv = "yuv444p" if odd else "yuv420p"
    if codec == "libx265":
        return Encoder("libx265", yuv, {**rate, "preset": "medium", "x265-params": "log-level=error"})
    if codec == "libsvtav1":
        return Encoder("libsvtav1", "yuv420p", rate)
    if codec == "libx264rgb":
        return Encoder("libx264rgb", "rgb24", {**rate, "preset": "medium"})
    return Encoder("libx264", yuv, {**rate, "preset": "medium"})


def is_folder_output(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` means a PNG folder: no suffix, a trailing slash, or an existing folder.

    Example:
        >>> is_folder_output("frames/"), is_folder_output("out.mp4")
        (True, False)
    """
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or Path(text).suffix == ""


def stream_rate(path: Path, fps: Fraction) -> Fraction:
    """``fps`` as a rate every muxer accepts, or :class:`InputError` outside 1/65535..65535.

    Example:
        >>> stream_rate(Path("a.mp4"), Fraction(30000, 1001))
        Fraction(30000, 1001)
        >>> stream_rate(Path("a.mp4"), Fraction(2**32 - 1, 2**32 - 2))   # terms too large for 32 bits
        Fraction(1, 1)
    """
    if not Fraction(1, MAX_RATE) <= fps <= MAX_RATE:
        raise InputError(f"{path}: frame rate {fps} fps is outside 1/{MAX_RATE}..{MAX_RATE}, which video "
                         "files can store; write a PNG folder (no frame rate) instead")
    if max(fps.numerator, fps.denominator) <= _INT32_MAX:
        return fps
    return max(fps.limit_denominator(MAX_RATE // 2), Fraction(1, MAX_RATE // 2))


def check_output_folder(path: Path) -> None:
    """Refuse an output whose folder does not exist or is a file."""
    parent = path.absolute().parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{path}: {path.parent} is a file, not a folder; fix the path")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist; create it first")


def _check_target(path: Path, folder: bool) -> None:
    """Refuse to replace something of another kind: PNG frames need a folder, a video a file."""
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, and an output without a suffix is a PNG folder; give a "
                         f"new folder name, or a video name such as {path.name}.mp4")
    if not folder and path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file; choose another output name")


class _FileSink:
    """Frames encoded by PyAV into a temporary file next to the target."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, encoder: Encoder) -> None:
        self.temp = temp_path(path, f".part{path.suffix}")
        self.temp.touch(exist_ok=False)
        self.fps = fps
        if encoder.codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise
        try:
            self.container = av.open(str(self.temp), "w", format=_MUXERS[path.suffix.lower()])
            self.stream = self.container.add_stream(encoder.codec, rate=fps, options=encoder.options)
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, encoder.pix_fmt
        self.yuv = encoder.pix_fmt.startswith("yuv")
        if self.yuv:
            self.stream.codec_context.colorspace = _SMPTE170M
            self.stream.codec_context.color_range = _TV_RANGE

    def add(self, rgb: np.ndarray, index: int) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.stream.pix_fmt != "rgb24":
            frame = frame.reformat(format=self.stream.pix_fmt)
        if self.yuv:
            frame.colorspace, frame.color_range = _SMPTE170M, _TV_RANGE
        frame.pts, frame.time_base = index, 1 / self.fps
        self.container.mux(self.stream.encode(frame))

    def finish(self, path: Path) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        os.replace(self.temp, path)

    def discard(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass
        self.temp.unlink(missing_ok=True)


class _PngSink:
    """Frames written as ``frame_%06d.png`` into a temporary folder next to the target."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        if path.is_dir() and any(not p.name.startswith("frame_") or p.suffix != ".png" for p in path.iterdir()):
            raise InputError(
                f"{path}: folder holds files other than frame_*.png; give an empty or new folder for PNG output"
            )
        self.temp = temp_path(path, ".part")
        self.temp.mkdir()
        self.encoder = av.CodecContext.create("png", "w")
        self.encoder.width, self.encoder.height, self.encoder.pix_fmt = width, height, "rgb24"

    def add(self, rgb: np.ndarray, index: int) -> None:
        packets = self.encoder.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
        (self.temp / f"frame_{index:06d}.png").write_bytes(b"".join(bytes(p) for p in packets))

    def finish(self, path: Path) -> None:
        if path.is_dir():
            old = temp_path(path, ".old")
            os.replace(path, old)
            os.replace(self.temp, path)
            shutil.rmtree(old)
        else:
            os.replace(self.temp, path)

    def discard(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


class VideoWriter:
    """Write ``(n, H, W, 3)`` uint8 RGB frames; the output appears at ``path`` only on :meth:`close`.

    Example:
        >>> with VideoWriter("frames/", 176, 144, Fraction(25)) as out:   # doctest: +SKIP
        ...     out.write(frame)   # (144, 176, 3) uint8
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction,
        *,
        codec: str | None = None,
        crf: int | None = None,
        lossless: bool = False,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        if width < 1 or height < 1 or fps <= 0:
            raise ValueError(f"bad video shape {width}x{height} at {fps} fps")
        check_output_folder(self.path)
        folder = is_folder_output(path)
        _check_target(self.path, folder)
        remove_stale(self.path)
        self._count = 0
        self._sink: _FileSink | _PngSink | None
        if folder:
            if codec is not None or crf is not None:
                raise InputError(f"{self.path}: PNG folder output is always lossless; drop --codec and --crf")
            with blamed_on(self.path):
                self._sink = _PngSink(self.path, width, height)
            return
        if self.path.suffix.lower() not in _MUXERS:
            raise InputError(
                f"{self.path}: unknown output suffix '{self.path.suffix}'; "
                "use .mp4, .mkv, .mov, .y4m or a folder name for PNG frames"
            )
        encoder = choose_encoder(self.path, width, height, codec, crf, lossless)
        rate = stream_rate(self.path, Fraction(fps))
        try:
            with blamed_on(self.path):
                self._sink = _FileSink(self.path, width, height, rate, encoder)
        except av.FFmpegError as error:
            raise InputError(f"{self.path}: cannot set up {encoder.codec} ({error.strerror})") from None

    def write(self, frames: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` frame or a stack ``(n, H, W, 3)`` of uint8 RGB frames.

        Example:
            >>> out.write(np.zeros((4, 144, 176, 3), np.uint8))   # doctest: +SKIP
        """
        if self._sink is None:
            raise ValueError("write() after close() or abort()")
        stack = frames[None] if frames.ndim == 3 else frames
        if stack.ndim != 4 or stack.shape[1:] != (self.height, self.width, 3) or stack.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 frames of shape (n, {self.height}, {self.width}, 3), "
                f"got {frames.dtype} {frames.shape}"
            )
        with self._reporting():
            for rgb in stack:
                self._sink.add(np.ascontiguousarray(rgb), self._count)
                self._count += 1

    def close(self) -> None:
        """Finish the output and move it to ``path``; with no frames written, abort and raise.

        Example:
            >>> out.close()   # doctest: +SKIP
        """
        if self._sink is None:
            return
        if self._count == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        sink, self._sink = self._sink, None
        try:
            with self._reporting():
                sink.finish(self.path)
        except BaseException:
            sink.discard()
            raise

    @contextlib.contextmanager
    def _reporting(self) -> Iterator[None]:
        """An OSError names the target; any other FFmpeg error becomes one InputError line."""
        try:
            with blamed_on(self.path):
                yield
        except av.FFmpegError as error:
            raise InputError(f"{self.path}: encoding failed ({error.strerror}); check --codec and --crf") from None

    def abort(self) -> None:
        """Drop the temporary output; nothing is left at ``path``. Safe to call twice.

        Example:
            >>> out.abort()   # doctest: +SKIP
        """
        if self._sink is not None:
            self._sink.discard()
            self._sink = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
