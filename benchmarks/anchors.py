"""Standard-codec anchors: x264, x265 and SVT-AV1 through PyAV at one CRF, measured in memory.

Settings (the same for every clip and CRF):

* x264: ``preset=medium``; x265: ``preset=medium``; SVT-AV1: ``preset=8`` (SVT's presets run
  0 = slowest to 13; on carphone and bikes, 8 encodes faster than x264/x265 medium).
* Encoder defaults otherwise, B-frames included (x264 medium: up to 3 B-frames; x265 medium:
  up to 4; SVT-AV1: its default random-access hierarchy), default keyframe interval, so short
  clips have a single intra frame.
* One thread each (x264 ``threads=1``; x265 ``pools=none:frame-threads=1``; SVT-AV1 ``lp=1``;
  decoders ``thread_count=1``) so results are deterministic and timings comparable.
* ``yuv420p``: RGB is converted by swscale's default (untagged BT.601 limited range, as
  ffmpeg does) and decoded back to RGB the same way. The conversions count toward encode and
  decode time respectively.
* Bytes are the sum of the encoded packet sizes (parameter sets and sequence headers are
  in-band, so they are counted; no container overhead).
* Quiet: x265 ``log-level=error``; SVT-AV1 reads ``SVT_LOG`` from the environment when an
  encoder starts, and it is set to ``1`` (errors only) unless the user already set it.

Frames stream through encoder and decoder together; only the frames still inside the codec
pipeline (its lookahead) are held in memory.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import av
import numpy as np

from codec.metrics import SequenceMetrics
from codec.video import VideoSource

__all__ = ["AnchorCodec", "ANCHORS", "DEFAULT_CRFS", "AnchorResult", "encode_anchor"]


@dataclass(frozen=True)
class AnchorCodec:
    """How one anchor is run: PyAV encoder and decoder names and the encoder options."""

    encoder: str
    decoder: str
    options: dict[str, str] = field(default_factory=dict)


ANCHORS: dict[str, AnchorCodec] = {
    "x264": AnchorCodec("libx264", "h264", {"preset": "medium", "threads": "1"}),
    "x265": AnchorCodec(
        "libx265",
        "hevc",
        {"preset": "medium", "x265-params": "log-level=error:pools=none:frame-threads=1"},
    ),
    "svtav1": AnchorCodec("libsvtav1", "libdav1d", {"preset": "8", "svtav1-params": "lp=1"}),
}
"""The anchors by short name."""

DEFAULT_CRFS: dict[str, tuple[int, ...]] = {
    "x264": (13, 18, 23, 28, 33, 38, 43),
    "x265": (13, 18, 23, 28, 33, 38, 43),
    "svtav1": (10, 20, 30, 40, 50, 60),
}
"""CRF sweeps spanning about 0.015-0.5 bpp on carphone (QCIF) and 0.01-0.2 bpp on bikes."""


@dataclass(frozen=True)
class AnchorResult:
    """One anchor point: rate, quality (see :mod:`codec.metrics`) and time for a clip."""

    codec: str
    crf: int
    frames: int
    width: int
    height: int
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_yuv: float
    ms_ssim: float
    encode_seconds: float
    decode_seconds: float

    def as_dict(self) -> dict[str, str | int | float]:
        """Plain dict for JSON/CSV."""
        return asdict(self)


class _DecodeAndScore:
    """Decoder side of the pipeline: counts bytes, decodes, scores against queued originals."""

    def __init__(self, decoder: str) -> None:
        self.decoder = av.CodecContext.create(decoder, "r")
        self.decoder.thread_count = 1
        self.pending: deque[np.ndarray] = deque()
        self.metrics = SequenceMetrics()
        self.bytes = 0
        self.decode_seconds = 0.0

    def feed(self, packets: Iterable[av.Packet] | None) -> None:
        """Decode ``packets`` (``None`` flushes the decoder) and score each decoded frame."""
        for packet in [None] if packets is None else packets:
            if packet is not None:
                self.bytes += packet.size
            start = time.perf_counter()
            decoded = [f.to_ndarray(format="rgb24") for f in self.decoder.decode(packet)]
            self.decode_seconds += time.perf_counter() - start
            for rgb in decoded:
                if not self.pending:
                    raise RuntimeError("the decoder returned more frames than were encoded")
                self.metrics.update(self.pending.popleft(), rgb)


def _open_encoder(
    spec: AnchorCodec, crf: int, width: int, height: int, fps: Fraction
) -> av.VideoCodecContext:
    """A configured encoder context for ``spec`` at ``crf``."""
    if width % 2 or height % 2:
        raise ValueError(f"anchors need even frame sizes for yuv420p, got {width}x{height}")
    if spec.encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")
    encoder = av.CodecContext.create(spec.encoder, "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.framerate = fps
    encoder.time_base = 1 / fps
    encoder.options = {**spec.options, "crf": str(crf)}
    return encoder


def encode_anchor(
    frames: Iterable[np.ndarray] | VideoSource,
    codec: str,
    crf: int,
    *,
    fps: Fraction = Fraction(25),
) -> AnchorResult:
    """Encode RGB uint8 frames with one anchor at ``crf``, decode them back and measure.

    ``frames`` is any iterable of ``(H, W, 3)`` uint8 RGB frames, or a
    :class:`~codec.video.VideoSource` (its frame rate then replaces ``fps``).

    Example:
        >>> with open_video("samples/carphone.mp4", stop=30) as src:     # doctest: +SKIP
        ...     r = encode_anchor(src, "x264", 28)
        >>> round(r.bpp, 3), round(r.psnr_rgb, 1)                         # doctest: +SKIP
        (0.084, 31.4)
    """
    if codec not in ANCHORS:
        raise ValueError(f"unknown anchor {codec!r}; choose from {', '.join(ANCHORS)}")
    spec = ANCHORS[codec]
    if isinstance(frames, VideoSource):
        fps, frames = frames.info.fps, frames.frames()
    measured = _DecodeAndScore(spec.decoder)
    encoder = None
    encode_seconds = 0.0
    shape = None
    for index, rgb in enumerate(frames):
        if encoder is None:
            shape = rgb.shape
            encoder = _open_encoder(spec, crf, rgb.shape[1], rgb.shape[0], fps)
        elif rgb.shape != shape:
            raise ValueError(f"frame {index} is {rgb.shape}, the first frame was {shape}")
        start = time.perf_counter()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets = encoder.encode(frame)
        encode_seconds += time.perf_counter() - start
        measured.pending.append(rgb.copy())  # the source may reuse its buffer
        measured.feed(packets)
    if encoder is None:
        raise ValueError("no frames to encode")
    start = time.perf_counter()
    packets = encoder.encode(None)
    encode_seconds += time.perf_counter() - start
    measured.feed(packets)
    measured.feed(None)
    if measured.pending:
        raise RuntimeError(f"{len(measured.pending)} encoded frames never came out of the decoder")
    scores = measured.metrics.result()
    height, width = shape[:2]
    count = scores["frames"]
    return AnchorResult(
        codec=codec,
        crf=crf,
        frames=count,
        width=width,
        height=height,
        bytes=measured.bytes,
        bpp=measured.bytes * 8 / (width * height * count),
        psnr_rgb=scores["psnr_rgb"],
        psnr_yuv=scores["psnr_yuv"],
        ms_ssim=scores["ms_ssim"],
        encode_seconds=encode_seconds,
        decode_seconds=measured.decode_seconds,
    )
