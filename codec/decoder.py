"""Decoding: ``.nirv`` in, video out.

Reads the header, rebuilds each needed group's integer tensors (following the residual
chain from the nearest key group at or before the first requested frame), renders the
groups in batches with the network kind's render (:mod:`nirvana.kinds`), the function behind
the encoder's own reconstruction, and streams the frames to the writer. Imports no training
code.

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

from codec import limits
from codec.bitstream import Header, NirvReader
from codec.errors import InputError
from codec.options import check_distinct
from codec.progress import progress_bar
from codec.schedule import check_device, configure_device
from codec.video import VideoWriter
from nirvana.kinds import KINDS, Kind
from nirvana.network import weights_from_integers
from nirvana.patches import PatchGrid
from nirvana.render import to_uint8

PathLike = str | os.PathLike[str]


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


def group_shapes(header: Header) -> list[tuple[int, ...]]:
    """The tensor shapes of every group of a file, in file order."""
    return KINDS[header.kind].tensor_shapes(header.network, header.group_size, header.height,
                                            header.width)


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


def auto_batch(header: Header) -> int:
    """Groups rendered together by default, 1..32: about 4096 patches' worth for ``siren``
    (its stem is batched across groups), about 4 M pixels' worth for ``grid``, and no more
    than the batch budget allows (:mod:`codec.limits`)."""
    if header.kind == "siren":
        wanted = 4096 // PatchGrid(header.height, header.width, header.network.patch_size).count
    else:
        wanted = (1 << 22) // (header.group_size * header.height * header.width)
    return limits.budget(header).batch(min(32, wanted))


def decoded_groups(reader: NirvReader, start: int, stop: int, device: str = "cpu",
                   batch: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(group index, frames (n, 3, H, W) uint8)`` covering frames ``[start, stop)``.

    Only the chunks from the key group at or before ``start`` onward are read. Weights are
    rebuilt group by group (cheap); ``batch`` groups are rendered together, fewer if the
    batch budget says so. A header over the limits of :mod:`codec.limits` raises BitstreamError.
    """
    header = reader.header
    kind: Kind = KINDS[header.kind]
    cfg = header.network
    shapes = group_shapes(header)
    batch = limits.check(header, reader.name).batch(batch or auto_batch(header))
    g = header.group_size
    first, last = start // g, (stop - 1) // g
    pending: list[tuple[int, list[torch.Tensor], int]] = []

    def render_pending() -> Iterator[tuple[int, torch.Tensor]]:
        with torch.no_grad():
            frames = to_uint8(kind.render_groups([w for _, w, _ in pending], cfg, g, header.height,
                                                 header.width))
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

    ``batch`` groups are rendered at once (default: about 4096 patches' worth; at most what
    the batch budget of :mod:`codec.limits` allows). Files over its limits, pipes and devices
    are refused, and so is an ``output`` that is the input.
    """
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch}: must be at least 1")
    configure_device(check_device(device))
    t0 = time.perf_counter()
    check_distinct({"the input": input, "the output": output})
    with limits.open_nirv(input) as reader:
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
