"""Encoding: video in, ``.nirv`` out.

The frames are cut into **segments** of ``key_interval`` groups' worth of frames. A segment
starts with a key group (a fresh network, coded intra) and its other groups warm-start from
the group before and code residuals. Inside a segment, a group ends early before a scene cut
and the group that starts at the cut is a key group too (:func:`cut_groups`), so no network
spends its capacity on two scenes. Segments depend on nothing outside themselves, so they can
be fitted by any worker in any order; the boundaries depend only on the frame count, the
group size and the key interval, never on the number of workers, so the file is the same
however many made it. Each worker opens the input itself and streams just its segment's
frames, one group at a time; the main process writes the chunks in order as segments complete.

Example:
    >>> report = encode("samples/carphone.mp4", "carphone.nirv", preset="fast")  # doctest: +SKIP
    >>> print(report.summary())                                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from codec.bitstream import GroupPayload, Header, NirvWriter, pack_group
from codec.bitstream.group import CARRIED, RESIDUAL, ContextLayout
from codec.errors import InputError
from codec.options import check_options, check_outputs, check_plan, check_resume, interpolation_code
from codec.progress import progress_bar
from codec.resume import SegmentStore, manifest, segment_store
from codec.schedule import Placement, configure_device, keep_freed_memory, placement, run_segments
from codec.tempfiles import write_atomic
from codec.video import VideoWriter, open_video
from nirvana.config import FitConfig, check_names, fit_config
from nirvana.fit import GroupFitter, psnr_from_mse
from nirvana.kinds import KINDS
from nirvana.render import to_uint8

DEFAULT_MODEL = "grid"

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Segment:
    """A run of groups starting at a key group: the unit of work of one worker."""

    index: int
    first_group: int  # the group it would start at without scene cuts (seeds its fits)
    first_frame: int  # relative to the encoded range
    num_frames: int


@dataclass
class GroupStats:
    index: int
    key: bool
    first_frame: int  # relative to the encoded range
    frames: int
    iterations: int
    psnr: float
    frame_psnrs: list[float]
    bytes: int
    weight_bytes: int
    side_bytes: int
    estimated_bytes: float
    residual_tensors: int
    seconds: float


@dataclass
class EncodeReport:
    """What an encode produced; ``bpp`` and ``kbps`` come from the file's size."""

    path: str
    width: int
    height: int
    frames: int
    fps: float
    file_bytes: int
    psnr: float  # RGB PSNR per frame, averaged over frames, of what the decoder will produce
    seconds: float
    network: dict
    fit: dict
    groups: list[GroupStats] = field(default_factory=list)
    resumed: tuple[int, int] | None = None  # with resume: (segments kept from before, segments fitted)

    @property
    def bpp(self) -> float:
        return self.file_bytes * 8 / (self.width * self.height * self.frames)

    @property
    def kbps(self) -> float:
        return self.file_bytes * 8 / (self.frames / self.fps) / 1000

    def summary(self) -> str:
        text = (
            f"encoded {self.frames} frames {self.width}x{self.height} -> {self.path}\n"
            f"PSNR {self.psnr:.2f} dB  bpp {self.bpp:.4f}  {self.kbps:.1f} kbit/s  "
            f"{self.file_bytes} bytes  time {self.seconds:.1f} s "
            f"({self.seconds / self.frames:.2f} s/frame)"
        )
        if self.resumed is not None:
            kept, fitted = self.resumed
            text += f"\nresumed: kept {kept} of {kept + fitted} segments from the interrupted encode, fitted {fitted}"
        return text

    def to_json(self) -> dict:
        return {**asdict(self), "bpp": self.bpp, "kbps": self.kbps}


def plan_segments(num_frames: int, group_size: int, key_interval: int) -> list[Segment]:
    """Cut the frames into segments of ``key_interval`` groups' worth of frames.

    >>> [(s.first_group, s.first_frame, s.num_frames) for s in plan_segments(10, 3, 2)]
    [(0, 0, 6), (2, 6, 4)]
    """
    groups = -(-num_frames // group_size)
    segments = []
    for index, first in enumerate(range(0, groups, key_interval)):
        first_frame = first * group_size
        frames = min(key_interval * group_size, num_frames - first_frame)
        segments.append(Segment(index, first, first_frame, frames))
    return segments


def frame_change(before: np.ndarray, after: np.ndarray) -> float:
    """PSNR (dB) of ``after`` against ``before`` (uint8 frames): low where the picture changed."""
    diff = after.astype(np.float32) - before.astype(np.float32)
    return psnr_from_mse(float(np.mean(diff * diff)) / 255**2)


def cut_groups(frames: Iterable[np.ndarray], group_size: int, cut_psnr: float, cut_drop: float
               ) -> Iterator[tuple[np.ndarray, bool]]:
    """Stack ``frames`` into groups of ``group_size``, ending a group early before a scene cut.

    Yields ``(group (n, H, W, 3) uint8, cut)``: ``cut`` says the group starts at a scene cut.
    A cut is a frame whose change from the frame before (:func:`frame_change`) is below
    ``cut_psnr`` and ``cut_drop`` dB below the median of the changes lately (the last 16 and
    the group's own), so a fast pan, whose every frame changes a lot, makes none. After a cut
    the changes lately are the new scene's only: a still scene cut to a fast one does not
    make every fast frame a cut.

    >>> dark, bright = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 200, np.uint8)
    >>> [(len(g), cut) for g, cut in cut_groups([dark] * 5 + [bright] * 5, 4, 20.0, 6.0)]
    [(4, False), (1, False), (4, True), (1, False)]
    """
    source = iter(frames)
    pending: list[np.ndarray] = []
    changes: list[float | None] = []  # each pending frame's change from the frame before it
    recent: list[float] = []
    last: np.ndarray | None = None  # the previous group's last frame
    cut = False
    while True:
        before = pending[-1] if pending else last
        for frame in itertools.islice(source, group_size - len(pending)):
            changes.append(None if before is None else frame_change(before, frame))
            pending.append(frame)
            before = frame
        if not pending:
            return
        limit = _cut_limit(recent + [c for c in changes if c is not None], cut_psnr, cut_drop)
        if cut or (changes[0] is not None and changes[0] < limit):
            cut, recent = True, []  # a new scene, judged by its own changes from here on
            limit = _cut_limit(changes[1:], cut_psnr, cut_drop)
        n = next((i for i in range(1, len(pending)) if changes[i] < limit), len(pending))
        yield np.stack(pending[:n]), cut
        recent = (recent + [c for c in changes[int(cut):n] if c is not None])[-16:]
        last, pending, changes, cut = pending[n - 1], pending[n:], changes[n:], n < len(pending)


def _cut_limit(changes: list[float], cut_psnr: float, cut_drop: float) -> float:
    """The change (dB) below which a frame is a cut, given the changes lately."""
    return min(cut_psnr, float(np.median(changes)) - cut_drop) if changes else -math.inf


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to fit one segment (picklable for spawn)."""

    input: str
    size: tuple[int, int] | None
    fps: Fraction | None
    start: int
    segment: Segment
    kind: str
    group_size: int
    net: object  # the kind's config
    fit: FitConfig
    keep_reconstruction: bool
    ignore_trailing_bytes: bool = False  # of a raw .yuv input
    device: str = "cpu"  # set by the scheduler
    threads: int = 1  # set by the scheduler


Fitted = tuple[bytes, GroupStats, np.ndarray | None]  # chunk payload, stats, reconstruction


def _fit_segment(job: _Job, on_group: Callable[[GroupStats], None] | None = None,
                 on_step: Callable[[int, int, float], None] | None = None) -> list[Fitted]:
    """Fit and pack every group of one segment, in order; ``on_step(first frame of the group,
    iteration, PSNR)`` reports progress inside a group."""
    torch.set_num_threads(job.threads)
    keep_freed_memory()
    configure_device(job.device)
    seg = job.segment
    out = []
    with open_video(job.input, size=job.size, fps=job.fps, start=job.start + seg.first_frame,
                    stop=job.start + seg.first_frame + seg.num_frames,
                    ignore_trailing_bytes=job.ignore_trailing_bytes) as src:
        fitter = GroupFitter(KINDS[job.kind], job.net, job.fit, src.info.height, src.info.width,
                             job.device, group_size=job.group_size)
        prev = None
        context = ContextLayout.of(job.kind, job.net)
        groups = cut_groups(src.frames(), job.group_size, job.fit.cut_psnr, job.fit.cut_drop)
        first_frame = seg.first_frame
        for local, (group, cut) in enumerate(groups):
            t0 = time.perf_counter()
            index = seg.first_group + local  # the file's group index only up to the first cut
            frames = torch.from_numpy(group).to(job.device).permute(0, 3, 1, 2).float() / 255
            step = None if on_step is None else (lambda it, psnr: on_step(first_frame, it, psnr))
            fit = fitter.fit(frames, key=local == 0 or cut, group_index=index, progress=step)
            payload = GroupPayload(fit.key, group.shape[0], fit.iterations, fit.psnr,
                                   fit.latents, fit.steps)
            data = pack_group(payload, None if prev is None else prev.latents, context,
                              None if prev is None else prev.scales, residuals=job.fit.residual_coding,
                              prev_tables=None if prev is None else prev.tables)
            prev = payload
            stats = GroupStats(index, fit.key, first_frame, group.shape[0], fit.iterations, fit.psnr,
                               fit.frame_psnrs, len(data), payload.weight_bytes, payload.side_bytes,
                               fit.estimated_bits / 8, sum(m in (RESIDUAL, CARRIED) for m in payload.modes),
                               time.perf_counter() - t0)
            first_frame += group.shape[0]
            if on_group is not None:
                on_group(stats)
            recon = None
            if job.keep_reconstruction:
                recon = to_uint8(fit.reconstruction).permute(0, 2, 3, 1).cpu().numpy()
            out.append((data, stats, recon))
    return out


def encode(
    input: PathLike,
    output: PathLike,
    *,
    model: str = DEFAULT_MODEL,
    preset: str = "medium",
    quality: float | None = None,
    distortion: str | None = None,
    target_psnr: float | None = None,
    group_size: int | None = None,
    patch_size: int | None = None,
    hidden: int | None = None,
    channels: int | None = None,
    levels: int | None = None,
    halve_time: int | None = None,
    context: int | None = None,
    motion: int | None = None,
    chain: bool | None = None,
    subpel: int | None = None,
    overlap: bool | None = None,
    interpolation: str | None = None,
    key_interval: int | None = None,
    iterations: int | None = None,
    key_iterations: int | None = None,
    start: int = 0,
    stop: int | None = None,
    size: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    ignore_trailing_bytes: bool = False,
    device: str = "cpu",
    workers: int = 1,
    threads: int | None = None,
    seed: int = 0,
    stats_path: PathLike | None = None,
    reconstruction: PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    fit_overrides: dict | None = None,
    network_overrides: dict | None = None,
) -> EncodeReport | None:
    """Encode frames ``[start, stop)`` of ``input`` into the ``.nirv`` file ``output``.

    ``model`` picks the network kind (``grid`` or ``siren``, :mod:`nirvana.kinds`);
    ``distortion`` what fitting trades against bits: ``"psnr"`` (the frames' mean PSNR) or
    ``"mse"`` (the squared error of each group as a whole), default by kind
    (:data:`nirvana.config.KIND_DEFAULTS`);
    ``patch_size`` applies to ``siren`` only, ``levels``, ``halve_time`` (time slots of the
    latent levels: the finest has ``ceil(G / 2^(halve_time - 1))``), ``context`` (the width of the
    context entropy model, 0 for none), ``motion`` (the block size of warm groups' motion,
    0 for none), ``chain`` (whether a warm group may predict each frame from the frame
    before), ``subpel`` (motion in ``1/2^subpel`` pixels), ``overlap`` (blend the
    nearest blocks' predictions) and ``interpolation`` (``"bilinear"`` or ``"cubic"``: how
    motion between whole pixels reads the frame) to ``grid`` only.

    ``device`` names one device or a comma-separated list (one worker each);
    ``workers`` runs that many worker processes on a single named device, each with
    ``threads`` CPU threads (default: the cores shared out). The file is byte-identical for
    any number of workers or ranks at the same ``threads``. Under torchrun
    every rank calls this; rank 0 writes the file and gets the report, the others None.
    ``reconstruction`` also writes the encoder's reconstruction there (lossless for
    .mp4/.mkv/.mov): the frames a decoder of ``output`` will produce. ``fit_overrides`` sets
    other :class:`~nirvana.config.FitConfig` fields and ``network_overrides`` other fields of
    the kind's config (for experiments and ablations).
    ``ignore_trailing_bytes`` lets a raw ``.yuv`` input end in a partial frame (dropped).
    Finished segments are kept beside ``output`` until it is complete (:mod:`codec.resume`);
    ``resume`` continues an interrupted encode from them (same input and options), and the
    file is byte-identical to an uninterrupted encode's.

    Every option, the output paths and the file the options describe are checked before any
    fitting (:mod:`codec.options`); an InputError names the option or file at fault.
    """
    t0 = time.perf_counter()
    where = placement(device, workers, threads)
    writes = where.rank == 0
    check_options(model=model, preset=preset, quality=quality, distortion=distortion, target_psnr=target_psnr,
                  group_size=group_size, patch_size=patch_size, hidden=hidden, channels=channels,
                  levels=levels, halve_time=halve_time, context=context, motion=motion, chain=chain,
                  subpel=subpel, overlap=overlap, interpolation=interpolation, key_interval=key_interval,
                  iterations=iterations, key_iterations=key_iterations, start=start, stop=stop, size=size, fps=fps, seed=seed)
    check_resume(resume, reconstruction, where.world)
    output = Path(output)
    if writes:
        check_outputs(input, output, stats_path, reconstruction)
    if reconstruction is not None and (where.world > 1 or len(where.devices) > 1):
        raise InputError("--recon needs a single worker; drop --workers/--device lists or --recon")
    try:
        fit_cfg = fit_config(preset, quality, kind=model, distortion=distortion, target_psnr=target_psnr,
                             key_interval=key_interval, iterations=iterations,
                             key_iterations=key_iterations, seed=seed, **(fit_overrides or {}))
        check_names(KINDS[model].config_type, network_overrides or {}, f"{model} network setting", owner="it")
    except ValueError as e:
        raise InputError(str(e)) from None

    with open_video(input, size=size, fps=fps, start=start, stop=stop,
                    ignore_trailing_bytes=ignore_trailing_bytes) as src:
        info = src.info
        num_frames = info.num_frames
        if num_frames is None:
            num_frames = sum(1 for _ in src.frames())
    if num_frames == 0:
        raise InputError(f"{input}: no frames in the selected range; check --frames")
    kind = KINDS[model]
    group_size = group_size or kind.default_group_size(info.width, info.height)
    if model == "siren":
        net_cfg = kind.default_config(info.width, info.height, fit_cfg.rate_lambda, group_size=group_size,
                                      patch_size=patch_size, hidden=hidden, channels=channels)
    else:
        net_cfg = kind.default_config(info.width, info.height, fit_cfg.rate_lambda, levels=levels,
                                      halve_time=halve_time, hidden=hidden, channels=channels, context=context,
                                      motion=motion, chain=None if chain is None else int(chain), subpel=subpel,
                                      overlap=None if overlap is None else int(overlap),
                                      interpolation=interpolation_code(interpolation))
    net_cfg = replace(net_cfg, **(network_overrides or {}))
    header = Header(width=info.width, height=info.height, num_frames=num_frames,
                    fps_num=info.fps.numerator, fps_den=info.fps.denominator, group_size=group_size,
                    key_interval=fit_cfg.key_interval, num_groups=-(-num_frames // group_size), kind=model,
                    network=net_cfg)
    check_plan(input, header)
    segments = plan_segments(num_frames, group_size, fit_cfg.key_interval)
    jobs = [_Job(str(input), size, None if fps is None else Fraction(fps), start, seg, model,
                 group_size, net_cfg, fit_cfg, reconstruction is not None, ignore_trailing_bytes)
            for seg in segments]
    if not writes:  # a torchrun rank other than 0: fit its segments, rank 0 writes
        for _ in run_segments(_fit_segment, jobs, where):
            pass
        return None

    groups: list[GroupStats] = []
    store_or_none = (segment_store(output, manifest(input, start, header, fit_cfg, where), resume)
                     if where.world == 1 else contextlib.nullcontext())  # torchrun: nothing to keep
    with (store_or_none as store, NirvWriter(output, header.size) as writer,
          _reconstruction_writer(reconstruction, info) as recon_out, progress_bar(num_frames, "frame", progress) as bar):
        show_group, show_step = _bar_group(bar), _bar_step(bar)
        on_result = None if bar is None else (lambda chunk: [show_group(s) for _, s, _ in chunk])
        kept = 0 if store is None else len(store.kept)
        for chunk in _segment_results(jobs, where, store, on_result, on_group=show_group, on_step=show_step):
            for data, stats, recon in chunk:
                writer.add_group(data, stats.key, stats.frames)
                stats.index = len(groups)
                groups.append(stats)
                if recon_out is not None:
                    recon_out.write(recon)
        num_frames = sum(g.frames for g in groups)  # what was really read
        file_bytes = writer.close(replace(header, num_frames=num_frames, num_groups=len(groups)))
        if store is not None:
            store.discard()
    frame_psnrs = [p for g in groups for p in g.frame_psnrs]
    report = EncodeReport(str(output), info.width, info.height, num_frames, float(info.fps),
                          file_bytes, float(np.mean(frame_psnrs)), time.perf_counter() - t0,
                          {"kind": model, "group_size": group_size, **asdict(net_cfg)},
                          asdict(fit_cfg), groups, (kept, len(segments) - kept) if resume else None)
    if stats_path is not None:
        write_atomic(stats_path, json.dumps(report.to_json(), indent=1))
    return report


def _segment_results(jobs: list[_Job], where: Placement, store: SegmentStore | None,
                     on_result: Callable[[list[Fitted]], None] | None, **callbacks) -> Iterator[list[Fitted]]:
    """Every segment's groups in order: those ``store`` kept from an interrupted encode, the
    others fitted by :func:`run_segments` and stored as they arrive."""
    kept = {} if store is None else store.kept
    missing = [job for job in jobs if job.segment.index not in kept]
    with contextlib.closing(run_segments(_fit_segment, missing, where, on_result, **callbacks)) as fitted:
        for job in jobs:
            index = job.segment.index
            if index in kept:
                chunk = [(data, GroupStats(**stats), None) for data, stats in kept[index]]
                if on_result is not None:
                    on_result(chunk)
            else:
                chunk = next(fitted)
                if store is not None:
                    store.save(index, [(data, asdict(stats)) for data, stats, _ in chunk])
            yield chunk


def _reconstruction_writer(path: PathLike | None, info) -> contextlib.AbstractContextManager:
    if path is None:
        return contextlib.nullcontext()
    lossless = Path(path).suffix.lower() in (".mp4", ".mkv", ".mov")
    return VideoWriter(path, info.width, info.height, info.fps, lossless=lossless)


def _bar_group(bar) -> Callable[[GroupStats], None] | None:
    if bar is None:
        return None

    def update(stats: GroupStats) -> None:
        last = stats.first_frame + stats.frames - 1
        bar.set_postfix_str(f"frames {stats.first_frame}-{last} {'key' if stats.key else 'res'} {stats.psnr:.2f} dB "
                            f"{stats.bytes * 8} bits {stats.iterations} it")
        bar.update(stats.frames)

    return update


def _bar_step(bar) -> Callable[[int, int, float], None] | None:
    if bar is None:
        return None

    def step(first_frame: int, it: int, psnr: float) -> None:
        if it % 25 == 0:
            bar.set_postfix_str(f"frames {first_frame}- it {it} {psnr:.2f} dB", refresh=True)

    return step
