"""Videos in any container PyAV can open (mp4, mkv, avi, mov, webm, y4m, ...).

The first video stream is decoded from the beginning; frames before ``start`` are decoded
and dropped. YUV frames become RGB through swscale (``to_ndarray(format="rgb24")``), which
honours the stream's colour tags and treats untagged YUV as BT.601 limited range, with
bicubic chroma interpolation: the same as ffmpeg's defaults. The frame count comes from the container's metadata, from the
duration for raw streams (y4m), or else from counting packets without decoding.

Example:
    >>> ContainerSource(Path("samples/carphone.mp4"), start=10, stop=20).info.num_frames   # doctest: +SKIP
    10
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from codec.errors import InputError
from codec.video.source import VideoInfo, VideoSource, frame_range

DEFAULT_FPS = Fraction(25)


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as error:
        raise InputError(
            f"{path}: cannot be opened as a video ({error.strerror}); "
            "give a video file, a raw .yuv or a folder of PNG frames"
        ) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: holds no video stream; give a file with video in it")
    return container


def _count_frames(path: Path, stream: av.video.stream.VideoStream) -> int | None:
    if stream.frames > 0:
        return stream.frames
    if stream.codec_context.name == "rawvideo" and stream.duration and stream.average_rate:
        return round(stream.duration * stream.time_base * stream.average_rate)
    with _open(path) as container:
        video = container.streams.video[0]
        try:
            count = sum(1 for packet in container.demux(video) if packet.size)
        except av.FFmpegError:
            return None
    return count or None


class ContainerSource(VideoSource):
    """Frames of the first video stream of a media file.

    Example:
        >>> with ContainerSource(Path("clip.mkv")) as src:   # doctest: +SKIP
        ...     frames = list(src.frames())
    """

    def __init__(self, path: Path, *, fps: Fraction | None = None, start: int = 0, stop: int | None = None) -> None:
        with _open(path) as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            bit_depth = stream.format.components[0].bits if stream.format else 8
            total = _count_frames(path, stream)
        if width < 1 or height < 1:
            raise InputError(f"{path}: video stream has no frame size; the file may be damaged")
        self._path = path
        self._start, self._stop = frame_range(str(path), start, stop, total)
        self._open_containers: set[av.container.InputContainer] = set()
        num_frames = None if self._stop is None else self._stop - self._start
        super().__init__(VideoInfo(width, height, fps or Fraction(rate or DEFAULT_FPS), num_frames, bit_depth))

    def frames(self) -> Iterator[np.ndarray]:
        container = _open(self._path)
        self._open_containers.add(container)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = (self.info.width, self.info.height)
        index = 0
        try:
            for frame in container.decode(stream):
                if self._stop is not None and index >= self._stop:
                    break
                if index >= self._start:
                    if (frame.width, frame.height) != size:
                        raise InputError(
                            f"{self._path}: frame {index} is {frame.width}x{frame.height}, not "
                            f"{size[0]}x{size[1]}; videos that change size are not supported"
                        )
                    yield np.ascontiguousarray(frame.to_ndarray(format="rgb24", interpolation="BICUBIC"))
                index += 1
        except av.FFmpegError as error:
            raise InputError(
                f"{self._path}: decoding failed after frame {index} ({error.strerror}); the file may be damaged"
            ) from None
        finally:
            self._open_containers.discard(container)
            container.close()
        if index <= self._start:
            raise InputError(
                f"{self._path}: start frame {self._start} is past the end of the video ({index} frames); "
                f"use a start below {index}"
            )

    def close(self) -> None:
        while self._open_containers:
            self._open_containers.pop().close()
