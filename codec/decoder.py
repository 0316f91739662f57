"""Decoding: ``.nirv`` in, video out.

Reads the header, rebuilds each needed group's integer tensors (following the residual
chain from the nearest key group at or before the first requested frame), renders the
groups in batches with the network kind's render (:mod:`nirvana.kinds`), the function behind
the encoder's own reconstruction, and streams the frames to the writer. Imports no training
code.

A damaged group (CRC failure or unparsable payload) stops the decode with an error naming the
group and its frames; with ``conceal=True`` (``nirvana decode --conceal``) its frames, and
those of every group after it up to the next key group (their residuals build on it), repeat
the last good frame (gray where none was decoded before), and the report lists them.

Example:
    >>> report = decode("carphone.nirv", "carphone_decoded.mp4")   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from codec import limits
from codec.bitstream import GroupPayload, Header, NirvReader
from codec.errors import BitstreamError, InputError
from codec.options import check_distinct
from codec.progress import progress_bar
from codec.schedule import check_device, configure_device
from codec.video import VideoWriter
from nirvana.kinds import KINDS, Kind
from nirvana.network import weights_from_integers
from nirvana.patches import PatchGrid
from nirvana.render import to_uint8

PathLike = str | os.PathLike[str]
OnDamage = Callable[[int, BitstreamError], None]  # (concealed group, the error that broke the chain)
GRAY = 128  # what a concealed frame shows when no good frame was decoded before it


def frames_text(start: int, stop: int) -> str:
    """Frames ``[start, stop)`` in words.

    >>> frames_text(2, 4), frames_text(4, 5)
    ('frames 2..3', 'frame 4')
    """
    return f"frame {start}" if stop - start == 1 else f"frames {start}..{stop - 1}"


@dataclass(frozen=True)
class Concealed:
    """A run of frames ``[start, stop)`` replaced because a group was damaged (``reason``)."""

    start: int
    stop: int
    reason: str

    def __str__(self) -> str:
        return f"{frames_text(self.start, self.stop)} concealed: {self.reason}"


@dataclass
class DecodeReport:
    path: str
    frames: int
    width: int
    height: int
    seconds: float
    bytes_read: int  # chunk payload bytes read: less than the file when decoding a range
    concealed: list[Concealed] = field(default_factory=list)  # decode(conceal=True) only

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.inf

    def summary(self) -> str:
        hidden = sum(c.stop - c.start for c in self.concealed)
        return (f"decoded {self.frames} frames {self.width}x{self.height} -> {self.path}"
                + (f" ({hidden} concealed)" if hidden else "") + "\n"
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


def group_payloads(reader: NirvReader, first: int, last: int, on_damage: OnDamage | None = None
                   ) -> Iterator[tuple[int, GroupPayload | None]]:
    """Yield ``(group index, payload)`` for groups ``first..last``, read along the residual
    chain from the key group at or before ``first``.

    A damaged group raises BitstreamError naming it and its frames. With ``on_damage`` it is
    concealed instead: its payload is None, and so is that of every group after it up to the
    next key group (residuals of it); each is reported as ``on_damage(index, error)``.
    """
    shapes = group_shapes(reader.header)
    prev, damage = None, None
    for index in range(reader.key_group_at_or_before(first), last + 1):
        if damage is None or reader.is_key(index):
            try:
                payload, damage = reader.read_payload(index, shapes, prev), None
            except BitstreamError as e:
                if on_damage is None:
                    where = frames_text(*reader.frame_range(index))
                    raise BitstreamError(f"{e}; group {index} holds {where} (decode with --conceal "
                                         "to repeat the last good frame over them)") from None
                damage = e
        prev = None if damage is not None else payload
        if index < first:
            continue
        if damage is not None:
            on_damage(index, damage)
        yield index, None if damage is not None else payload


def decoded_groups(reader: NirvReader, start: int, stop: int, device: str = "cpu",
                   batch: int | None = None, on_damage: OnDamage | None = None
                   ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(group index, frames (n, 3, H, W) uint8)`` covering frames ``[start, stop)``.

    Only the chunks from the key group at or before ``start`` onward are read. Weights are
    rebuilt group by group (cheap); ``batch`` groups are rendered together, fewer if the
    batch budget says so, and one at a time where a warm group renders on the previous
    group's last frame (motion): then the groups from that key group on are rendered too.
    A header over the limits of :mod:`codec.limits` raises BitstreamError; so does a damaged
    group, unless ``on_damage`` is given (see :func:`group_payloads`): then a concealed group
    repeats the last frame decoded before it (gray if there is none).
    """
    header = reader.header
    kind: Kind = KINDS[header.kind]
    cfg = header.network
    batch = limits.check(header, reader.name).batch(batch or auto_batch(header))
    g = header.group_size
    chained = kind.uses_reference(cfg)  # a warm group renders on the previous group's last frame
    if chained:
        batch = 1
    first = reader.group_at(start)
    # a chained kind renders (without yielding) the groups from the key group up to `first`
    read_from = reader.key_group_at_or_before(first) if chained else first
    pending: list[tuple[int, list[torch.Tensor], int, torch.Tensor | None]] = []
    still: torch.Tensor | None = None  # the last frame decoded, which a concealed group repeats

    def render_pending() -> Iterator[tuple[int, torch.Tensor]]:
        nonlocal still
        with torch.no_grad():
            frames = to_uint8(kind.render_groups([w for _, w, _, _ in pending], cfg, g, header.height,
                                                 header.width, [r for _, _, _, r in pending]))
        for (index, _, count, _), group in zip(pending, frames):
            if index >= first:
                yield index, group[:count]
        still = group[count - 1 : count].clone()  # not a view that keeps the batch alive
        pending.clear()

    def report(index: int, error: BitstreamError) -> None:  # groups before the range: not reported
        if index >= first:
            on_damage(index, error)

    for index, payload in group_payloads(reader, read_from, reader.group_at(stop - 1),
                                         None if on_damage is None else report):
        if payload is not None:
            reference = None if payload.is_key or not chained or still is None else still[0].float() / 255
            pending.append((index, weights_from_integers(payload.latents, payload.scales, device),
                            payload.num_frames, reference))
        if pending and (payload is None or len(pending) == batch):
            yield from render_pending()
        if payload is None:
            if still is None:
                still = torch.full((1, 3, header.height, header.width), GRAY, dtype=torch.uint8,
                                   device=device)
            if index >= first:
                first_frame, end = reader.frame_range(index)
                yield index, still.repeat(end - first_frame, 1, 1, 1)
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
    conceal: bool = False,
) -> DecodeReport:
    """Decode ``input`` (a .nirv file) to ``output`` (.mp4/.mkv/.y4m or a PNG folder).

    ``batch`` groups are rendered at once (default: about 4096 patches' worth; at most what
    the batch budget of :mod:`codec.limits` allows). Files over its limits, pipes and devices
    are refused, and so is an ``output`` that is the input. A damaged group raises
    BitstreamError naming it and its frames; with ``conceal``, its frames up to the next key
    group repeat the last good frame instead, and ``report.concealed`` lists them.
    """
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch}: must be at least 1")
    configure_device(check_device(device))
    t0 = time.perf_counter()
    check_distinct({"the input": input, "the output": output})
    with limits.open_nirv(input) as reader:
        h = reader.header
        start, stop = parse_frame_range(frames, h.num_frames, str(input))
        concealed: list[Concealed] = []

        def note(index: int, error: BitstreamError) -> None:
            first, end = reader.frame_range(index)
            _add_run(concealed, Concealed(max(first, start), min(end, stop), str(error)))

        written = 0
        with (VideoWriter(output, h.width, h.height, Fraction(h.fps_num, h.fps_den),
                          codec=codec, crf=crf, lossless=lossless) as writer,
              progress_bar(stop - start, "frame", progress) as bar):
            for index, group in decoded_groups(reader, start, stop, device, batch,
                                               note if conceal else None):
                first = reader.frame_range(index)[0]
                lo, hi = max(start - first, 0), min(stop - first, group.shape[0])
                chunk = group[lo:hi].permute(0, 2, 3, 1).cpu().numpy()
                writer.write(np.ascontiguousarray(chunk))
                written += chunk.shape[0]
                if bar is not None:
                    bar.update(chunk.shape[0])
        bytes_read = reader.bytes_read
    return DecodeReport(str(output), written, h.width, h.height, time.perf_counter() - t0, bytes_read,
                        concealed)


def _add_run(runs: list[Concealed], run: Concealed) -> None:
    """Append ``run``, merged into the last run when it continues it for the same reason."""
    if runs and runs[-1].stop == run.start and runs[-1].reason == run.reason:
        runs[-1] = Concealed(runs[-1].start, run.stop, run.reason)
    else:
        runs.append(run)
