"""Encoding: video in, ``.nirv`` out.

The group sequence is cut into **segments** of ``key_interval`` groups. A segment starts with
a key group (a fresh network, coded intra) and its other groups warm-start from the group
before and code residuals. Segments depend on nothing outside themselves, so they can be
fitted by any worker in any order; the boundaries depend only on the frame count and the
key interval, never on the number of workers, so the file is the same however many made it.
Each worker opens the input itself and streams just its segment's frames, one group at a
time; the main process writes the chunks in order as segments complete.

Example:
    >>> report = encode("samples/carphone.mp4", "carphone.nirv", preset="fast")  # doctest: +SKIP
    >>> print(report.summary())                                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from codec.bitstream import GroupPayload, Header, NirvWriter, pack_group
from codec.errors import InputError
from codec.progress import progress_bar
from codec.schedule import configure_device, placement, run_segments
from codec.video import VideoWriter, open_video
from nirvana.config import FitConfig, NetworkConfig, fit_config
from nirvana.fit import GroupFitter
from nirvana.render import to_uint8

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Segment:
    """A run of groups starting at a key group: the unit of work of one worker."""

    index: int
    first_group: int
    num_groups: int
    first_frame: int  # relative to the encoded range
    num_frames: int


@dataclass
class GroupStats:
    index: int
    key: bool
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

    @property
    def bpp(self) -> float:
        return self.file_bytes * 8 / (self.width * self.height * self.frames)

    @property
    def kbps(self) -> float:
        return self.file_bytes * 8 / (self.frames / self.fps) / 1000

    def summary(self) -> str:
        return (
            f"encoded {self.frames} frames {self.width}x{self.height} -> {self.path}\n"
            f"PSNR {self.psnr:.2f} dB  bpp {self.bpp:.4f}  {self.kbps:.1f} kbit/s  "
            f"{self.file_bytes} bytes  time {self.seconds:.1f} s "
            f"({self.seconds / self.frames:.2f} s/frame)"
        )

    def to_json(self) -> dict:
        return {**asdict(self), "bpp": self.bpp, "kbps": self.kbps}


def plan_segments(num_frames: int, group_size: int, key_interval: int) -> list[Segment]:
    """Cut the frames into segments of ``key_interval`` groups.

    >>> [(s.first_group, s.num_groups, s.num_frames) for s in plan_segments(10, 3, 2)]
    [(0, 2, 6), (2, 2, 4)]
    """
    groups = -(-num_frames // group_size)
    segments = []
    for index, first in enumerate(range(0, groups, key_interval)):
        n = min(key_interval, groups - first)
        first_frame = first * group_size
        frames = min(n * group_size, num_frames - first_frame)
        segments.append(Segment(index, first, n, first_frame, frames))
    return segments


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to fit one segment (picklable for spawn)."""

    input: str
    size: tuple[int, int] | None
    fps: Fraction | None
    start: int
    segment: Segment
    net: NetworkConfig
    fit: FitConfig
    keep_reconstruction: bool
    device: str = "cpu"  # set by the scheduler
    threads: int = 1  # set by the scheduler


Fitted = tuple[bytes, GroupStats, np.ndarray | None]  # chunk payload, stats, reconstruction


def _fit_segment(job: _Job, on_group: Callable[[GroupStats], None] | None = None,
                 on_step: Callable[[int, int, float], None] | None = None) -> list[Fitted]:
    """Fit and pack every group of one segment, in order."""
    torch.set_num_threads(job.threads)
    configure_device(job.device)
    seg = job.segment
    out = []
    with open_video(job.input, size=job.size, fps=job.fps, start=job.start + seg.first_frame,
                    stop=job.start + seg.first_frame + seg.num_frames) as src:
        fitter = GroupFitter(job.net, job.fit, src.info.height, src.info.width, job.device)
        prev = None
        for local, group in enumerate(src.groups(job.net.group_size)):
            t0 = time.perf_counter()
            index = seg.first_group + local
            frames = torch.from_numpy(group).to(job.device).permute(0, 3, 1, 2).float() / 255
            step = None if on_step is None else (lambda it, psnr: on_step(index, it, psnr))
            fit = fitter.fit(frames, key=local == 0, group_index=index, progress=step)
            payload = GroupPayload(fit.key, group.shape[0], fit.iterations, fit.psnr,
                                   fit.latents, fit.steps)
            data = pack_group(payload, prev)
            prev = fit.latents
            stats = GroupStats(index, fit.key, group.shape[0], fit.iterations, fit.psnr,
                               fit.frame_psnrs, len(data), payload.weight_bytes, payload.side_bytes,
                               fit.estimated_bits / 8, sum(payload.modes), time.perf_counter() - t0)
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
    preset: str = "medium",
    quality: float | None = None,
    target_psnr: float | None = None,
    group_size: int | None = None,
    patch_size: int | None = None,
    hidden: int | None = None,
    channels: int | None = None,
    key_interval: int | None = None,
    iterations: int | None = None,
    key_iterations: int | None = None,
    start: int = 0,
    stop: int | None = None,
    size: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    device: str = "cpu",
    workers: int = 1,
    seed: int = 0,
    stats_path: PathLike | None = None,
    reconstruction: PathLike | None = None,
    progress: bool = False,
) -> EncodeReport | None:
    """Encode frames ``[start, stop)`` of ``input`` into the ``.nirv`` file ``output``.

    ``device`` names one device or a comma-separated list (one worker each);
    ``workers`` runs that many worker processes on a single named device. Under torchrun
    every rank calls this; rank 0 writes the file and gets the report, the others None.
    ``reconstruction`` also writes the encoder's reconstruction there (lossless for
    .mp4/.mkv/.mov): the frames a decoder of ``output`` will produce.
    """
    t0 = time.perf_counter()
    where = placement(device, workers)
    writes = where.rank == 0
    output = Path(output)
    if writes and not output.parent.is_dir():
        raise InputError(f"{output}: folder {output.parent} does not exist; create it first")
    if writes and output.is_dir():
        raise InputError(f"{output}: is a folder; give a file name such as clip.nirv")
    if writes and stats_path is not None and not Path(stats_path).parent.is_dir():
        raise InputError(f"{stats_path}: folder {Path(stats_path).parent} does not exist; create it first")
    if reconstruction is not None and (where.world > 1 or len(where.devices) > 1):
        raise InputError("--recon needs a single worker; drop --workers/--device lists or --recon")
    try:
        fit_cfg = fit_config(preset, quality, target_psnr=target_psnr, key_interval=key_interval,
                             iterations=iterations, key_iterations=key_iterations, seed=seed)
    except ValueError as e:
        raise InputError(str(e)) from None

    with open_video(input, size=size, fps=fps, start=start, stop=stop) as src:
        info = src.info
        num_frames = info.num_frames
        if num_frames is None:
            num_frames = sum(1 for _ in src.frames())
    if num_frames == 0:
        raise InputError(f"{input}: no frames in the selected range; check --frames")
    net_cfg = NetworkConfig.for_resolution(info.width, info.height, group_size=group_size,
                                           patch_size=patch_size, hidden=hidden, channels=channels)
    _check_network(net_cfg)
    segments = plan_segments(num_frames, net_cfg.group_size, fit_cfg.key_interval)
    jobs = [_Job(str(input), size, None if fps is None else Fraction(fps), start, seg, net_cfg,
                 fit_cfg, reconstruction is not None) for seg in segments]
    if not writes:  # a torchrun rank other than 0: fit its segments, rank 0 writes
        for _ in run_segments(_fit_segment, jobs, where):
            pass
        return None

    groups: list[GroupStats] = []
    total_groups = segments[-1].first_group + segments[-1].num_groups
    with (NirvWriter(output) as writer, _reconstruction_writer(reconstruction, info) as recon_out,
          progress_bar(total_groups, "group", progress) as bar):
        show_group, show_step = _bar_group(bar), _bar_step(bar)
        on_result = None if bar is None else (lambda chunk: [show_group(s) for _, s, _ in chunk])
        for chunk in run_segments(_fit_segment, jobs, where, on_result,
                                  on_group=show_group, on_step=show_step):
            for data, stats, recon in chunk:
                writer.add_group(data, stats.key)
                groups.append(stats)
                if recon_out is not None:
                    recon_out.write(recon)
        num_frames = sum(g.frames for g in groups)  # what was really read
        header = Header(
            width=info.width, height=info.height, num_frames=num_frames,
            fps_num=info.fps.numerator, fps_den=info.fps.denominator,
            group_size=net_cfg.group_size, patch_size=net_cfg.patch_size,
            key_interval=fit_cfg.key_interval, hidden=net_cfg.hidden,
            hidden_layers=net_cfg.hidden_layers, channels=net_cfg.channels, w0=net_cfg.w0,
            num_groups=len(groups),
        )
        file_bytes = writer.close(header)
    frame_psnrs = [p for g in groups for p in g.frame_psnrs]
    report = EncodeReport(str(output), info.width, info.height, num_frames, float(info.fps),
                          file_bytes, float(np.mean(frame_psnrs)), time.perf_counter() - t0,
                          asdict(net_cfg), asdict(fit_cfg), groups)
    if stats_path is not None:
        Path(stats_path).write_text(json.dumps(report.to_json(), indent=1))
    return report


def _reconstruction_writer(path: PathLike | None, info) -> contextlib.AbstractContextManager:
    if path is None:
        return contextlib.nullcontext()
    lossless = Path(path).suffix.lower() in (".mp4", ".mkv", ".mov")
    return VideoWriter(path, info.width, info.height, info.fps, lossless=lossless)


def _check_network(cfg: NetworkConfig) -> None:
    if cfg.patch_size % 4 or cfg.channels % 4:
        raise InputError(f"patch size {cfg.patch_size} and channels {cfg.channels} must be multiples of 4")


def _bar_group(bar) -> Callable[[GroupStats], None] | None:
    if bar is None:
        return None

    def update(stats: GroupStats) -> None:
        bar.set_postfix_str(f"g{stats.index} {'key' if stats.key else 'res'} {stats.psnr:.2f} dB "
                            f"{stats.bytes * 8} bits {stats.iterations} it")
        bar.update(1)

    return update


def _bar_step(bar) -> Callable[[int, int, float], None] | None:
    if bar is None:
        return None

    def step(index: int, it: int, psnr: float) -> None:
        if it % 25 == 0:
            bar.set_postfix_str(f"g{index} it {it} {psnr:.2f} dB", refresh=True)

    return step
