"""Compare a decoded video with its original, frame by frame, and report quality and rate.

This backs ``nirvana eval DECODED --ref ORIGINAL [--nirv FILE]``. Both videos are streamed
through :func:`codec.video.open_video`, one frame pair in memory at a time, into
:class:`codec.metrics.SequenceMetrics` (RGB PSNR, YUV 6:1:1 PSNR, MS-SSIM; see that module for
the exact definitions). With the ``.nirv`` file given, bpp is ``file bytes * 8 / (W * H *
frames)``, the whole file counted.
"""

from __future__ import annotations

import os
from fractions import Fraction
from itertools import zip_longest
from pathlib import Path

from codec.errors import InputError
from codec.metrics import SequenceMetrics
from codec.video import VideoInfo, open_video
from codec.video.source import require_regular_file

PathLike = str | os.PathLike[str]

__all__ = ["evaluate"]


def evaluate(
    decoded: PathLike,
    reference: PathLike,
    *,
    nirv: PathLike | None = None,
    size: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    start: int = 0,
    stop: int | None = None,
    ignore_trailing_bytes: bool = False,
) -> dict[str, float | int | list[float] | None]:
    """Metrics of ``decoded`` against frames ``[start, stop)`` of ``reference``.

    ``start``/``stop`` select the reference frames that were encoded (as given to
    ``codec.encode``); the decoded video is compared from its first frame. ``size`` (width,
    height), ``fps`` and ``ignore_trailing_bytes`` are passed to both readers (raw ``.yuv``
    inputs need the size). Different frame sizes or frame counts raise
    :class:`~codec.errors.InputError`.

    Returns ``frames``, ``width``, ``height``, ``psnr_rgb``, ``psnr_yuv``, ``ms_ssim`` (None
    for frames under 11x11, too small for its window), ``psnr_rgb_per_frame`` and, with
    ``nirv``, ``file_bytes`` and ``bpp``.

    Example:
        >>> r = evaluate("out.mkv", "samples/carphone.mp4", nirv="c.nirv", stop=8)  # doctest: +SKIP
        >>> r["frames"], round(r["bpp"], 3)                                         # doctest: +SKIP
        (8, 0.112)
    """
    file_bytes = None
    if nirv is not None:
        nirv = Path(nirv)
        if not nirv.exists():
            raise InputError(f"{nirv}: no such .nirv file; check --nirv")
        require_regular_file(nirv, "the .nirv file to --nirv")
        file_bytes = nirv.stat().st_size
    with (
        open_video(reference, size=size, fps=fps, start=start, stop=stop,
                   ignore_trailing_bytes=ignore_trailing_bytes) as ref,
        open_video(decoded, size=size, fps=fps, ignore_trailing_bytes=ignore_trailing_bytes) as dec,
    ):
        _check_same_shape(decoded, dec.info, reference, ref.info)
        metrics = SequenceMetrics()
        for ref_frame, dec_frame in zip_longest(ref.frames(), dec.frames()):
            if ref_frame is None:
                raise _count_error(decoded, f"more than {metrics.frames}", reference, metrics.frames)
            if dec_frame is None:
                raise _count_error(decoded, metrics.frames, reference, f"more than {metrics.frames}")
            metrics.update(ref_frame, dec_frame)
        width, height = ref.info.width, ref.info.height
    if metrics.frames == 0:
        raise InputError(f"{reference}: no frames in the selected range; check --frames")
    result = {"width": width, "height": height, **metrics.result()}
    if file_bytes is not None:
        result["file_bytes"] = file_bytes
        result["bpp"] = file_bytes * 8 / (width * height * metrics.frames)
    return result


def _check_same_shape(
    decoded: PathLike, dec_info: VideoInfo, reference: PathLike, ref_info: VideoInfo
) -> None:
    """Raise InputError when frame sizes differ, or when both known frame counts differ."""
    if (dec_info.width, dec_info.height) != (ref_info.width, ref_info.height):
        raise InputError(
            f"{decoded} is {dec_info.width}x{dec_info.height} but {reference} is "
            f"{ref_info.width}x{ref_info.height}; compare videos of the same size"
        )
    counts = (dec_info.num_frames, ref_info.num_frames)
    if None not in counts and counts[0] != counts[1]:
        raise _count_error(decoded, counts[0], reference, counts[1])


def _count_error(
    decoded: PathLike, decoded_frames: int | str, reference: PathLike, reference_frames: int | str
) -> InputError:
    """The one-line frame-count mismatch error (counts may be ints or 'more than N')."""
    return InputError(
        f"{decoded} has {decoded_frames} frames but the selected range of {reference} has "
        f"{reference_frames}; pass the same --frames used for encoding"
    )
