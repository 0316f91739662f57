"""Decoding: ``.nirv`` in, video out.

Reads the header, rebuilds each needed group's integer weights (following the residual
chain from the nearest key group at or before the first requested frame), renders the
groups in batches with :func:`nirvana.render.render_groups`, the function behind the
encoder's own reconstruction, and streams the frames to the writer. Imports no training code.

Example:
    >>> report = decode("carphone.nirv", "carphone_decoded.mp4")   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from codec.bitstream import Header, NirvReader
from codec.errors import BitstreamError, InputError
from codec.progress import progress_bar
from codec.schedule import check_device, configure_device
from codec.video import VideoWriter
from nirvana.config import NetworkConfig
from nirvana.network import tensor_shapes, weights_from_integers
from nirvana.patches import PatchGrid
from nirvana.render import render_groups, to_uint8

PathLike = str | os.PathLike[str]

MAX_WEIGHTS = 64_000_000  # per group; the paper's 1080p network has 2.4 M
MAX_PIXELS = 8192 * 4320  # per frame (8K)


@dataclass
class DecodeReport:
    path: str
    frames: int
    width: int
    height: int
    seconds: float
    bytes_read: int  # chunk payload bytes read: less than the file when decoding a range

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.inf

    def summary(self) -> str:
        return (f"decoded {self.frames} frames {self.width}x{self.height} -> {self.path}\n"
                f"time {self.seconds:.2f} s ({self.fps:.1f} frames/s), {self.bytes_read} payload bytes read")


def network_config(header: Header) -> NetworkConfig:
    """The network a file's header describes."""
    return NetworkConfig(group_size=header.group_size, patch_size=header.patch_size,
                         hidden=header.hidden, hidden_layers=header.hidden_layers,
                         channels=header.channels, w0=header.w0)


def parse_frame_range(text: str | None, num_frames: int, what: str) -> tuple[int, int]:
    """``"A:B"`` (either side may be empty) → ``(start, stop)`` within ``num_frames``.

    >>> parse_frame_range("3:", 10, "x.nirv"), parse_frame_range(None, 10, "x.nirv")
    ((3, 10), (0, 10))
    """
    if text is None:
        return 0, num_frames
    try:
        a, b = text.split(":") if ":" in text else (text, str(int(text) + 1))
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else num_frames
    except ValueError:
        raise InputError(f"--frames {text!r}: expected START:STOP, e.g. 0:30") from None
    if not 0 <= start < stop <= num_frames:
        raise InputError(f"--frames {text}: {what} has frames 0..{num_frames - 1}; "
                         f"give START:STOP with 0 <= START < STOP <= {num_frames}")
    return start, stop


def auto_batch(grid: PatchGrid) -> int:
    """Groups rendered together by default: about 4096 patches per batch, 1..32 groups."""
    return max(1, min(32, 4096 // grid.count))


def decoded_groups(reader: NirvReader, start: int, stop: int, device: str = "cpu",
                   batch: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(group index, frames (n, 3, H, W) uint8)`` covering frames ``[start, stop)``.

    Only the chunks from the key group at or before ``start`` onward are read. Weights are
    rebuilt group by group (cheap); ``batch`` groups are rendered together.
    """
    header = reader.header
    cfg = network_config(header)
    shapes = tensor_shapes(cfg)
    if sum(math.prod(s) for s in shapes) > MAX_WEIGHTS or header.width * header.height > MAX_PIXELS:
        raise BitstreamError(f"{reader.path}: network or frame size in the header exceeds this "
                             "decoder's limits; the file is damaged or not supported")
    grid = PatchGrid(header.height, header.width, cfg.patch_size)
    batch = batch or auto_batch(grid)
    g = header.group_size
    first, last = start // g, (stop - 1) // g
    pending: list[tuple[int, list[torch.Tensor], int]] = []

    def render_pending() -> Iterator[tuple[int, torch.Tensor]]:
        with torch.no_grad():
            frames = to_uint8(render_groups([w for _, w, _ in pending], grid, cfg))
        for (index, _, count), group in zip(pending, frames):
            yield index, group[:count]
        pending.clear()

    prev = None
    for index in range(reader.key_group_at_or_before(first), last + 1):
        payload = reader.read_payload(index, shapes, prev)
        prev = payload.latents
        if index < first:
            continue
        pending.append((index, weights_from_integers(payload.latents, payload.scales, device),
                        payload.num_frames))
        if len(pending) == batch:
            yield from render_pending()
    if pending:
        yield from render_pending()


def decode(
    input: PathLike,
    output: PathLike,
    *,
    frames: str | None = None,
    device: str = "cpu",
    codec: str | None = None,
    crf: int | None = None,
    lossless: bool = False,
    batch: int | None = None,
    progress: bool = False,
) -> DecodeReport:
    """Decode ``input`` (a .nirv file) to ``output`` (.mp4/.mkv/.y4m or a PNG folder).

    ``batch`` groups are rendered at once (default: about 4096 patches' worth).
    """
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch}: must be at least 1")
    configure_device(check_device(device))
    t0 = time.perf_counter()
    with NirvReader(input) as reader:
        h = reader.header
        start, stop = parse_frame_range(frames, h.num_frames, str(input))
        written = 0
        with (VideoWriter(output, h.width, h.height, Fraction(h.fps_num, h.fps_den),
                          codec=codec, crf=crf, lossless=lossless) as writer,
              progress_bar(stop - start, "frame", progress) as bar):
            for index, group in decoded_groups(reader, start, stop, device, batch):
                lo = max(start - index * h.group_size, 0)
                hi = min(stop - index * h.group_size, group.shape[0])
                chunk = group[lo:hi].permute(0, 2, 3, 1).cpu().numpy()
                writer.write(np.ascontiguousarray(chunk))
                written += chunk.shape[0]
                if bar is not None:
                    bar.update(chunk.shape[0])
        bytes_read = reader.bytes_read
    return DecodeReport(str(output), written, h.width, h.height, time.perf_counter() - t0, bytes_read)
