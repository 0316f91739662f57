"""Rate-distortion benchmark: this codec at several qualities against x264, x265 and SVT-AV1.

For every clip, the first ``frames`` frames are coded

* by this codec with one network kind (``--model grid`` or ``siren``, labelled
  ``nirvana-grid`` or ``nirvana-siren``) at each ``quality`` (``codec.encode`` to a ``.nirv``
  in a temporary folder, ``codec.decode`` to a lossless FFV1 ``.mkv``, then
  :func:`codec.evaluate.evaluate`; bpp from the ``.nirv`` file size), and
* by each anchor over its CRF sweep (:mod:`benchmarks.anchors`; bpp from packet bytes).

Results go to ``<out>/rd_<tag>.json`` (settings, environment, every point, BD-rates),
``.csv`` (the points), ``.md`` (tables, BD-rate of every method against every anchor on RGB
PSNR with PCHIP) and ``.png`` (one panel per clip, bpp on a log axis against RGB PSNR).

Usage::

    python -m benchmarks.rd --anchors-only --frames 120 60 --tag anchors
    python -m benchmarks.rd --qualities 0.3 1 3 --tag main
    python -m benchmarks.rd --model siren --qualities 2 4 6 --group-size 6 --tag main_siren
    python -m benchmarks.rd --quick --qualities 1 --out /tmp/rd     # a smoke run
    python -m benchmarks.rd --qualities 2 4 6 8 --preset slow --device cuda \
        --reuse-anchors benchmarks/results/rd_anchors.json --tag gpu_slow

``--reuse-anchors`` takes the anchor points of the same clips and frame counts from an
earlier results file instead of encoding them again. ``--update`` keeps the points of other
clips already in ``rd_<tag>.json`` and replaces only those of the clips given. Points of
results written before there were two kinds, labelled ``nirvana``, are read as ``nirvana-siren``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import codec
from benchmarks.anchors import ANCHORS, DEFAULT_CRFS, encode_anchor
from codec.bdrate import bd_rate
from codec.encoder import DEFAULT_MODEL
from codec.errors import CodecError
from codec.evaluate import evaluate
from codec.video import VideoSource, open_video
from nirvana.config import check_names, check_ranges, fit_config
from nirvana.kinds import KINDS

__all__ = ["run", "main", "Clip", "clip_points", "collect_results", "codec_method", "DEFAULT_CLIPS",
           "QUICK_FRAMES", "QUICK_CRFS"]

LEGACY_METHOD = "nirvana"  # this codec's label before there were two kinds: always siren
DEFAULT_CLIPS = ("samples/carphone.mp4", "samples/bikes.mp4")
DEFAULT_FRAMES = 60
QUICK_FRAMES = 8
QUICK_CRFS: dict[str, tuple[int, ...]] = {"x264": (23, 38), "x265": (23, 38), "svtav1": (25, 50)}
FIELDS = (
    "clip", "method", "param", "value", "frames", "width", "height", "bytes", "bpp",
    "psnr_rgb", "psnr_yuv", "ms_ssim", "encode_seconds", "decode_seconds",
)  # fmt: skip

Point = dict[str, str | int | float]


def codec_method(model: str) -> str:
    """This codec's label in results for network kind ``model``.

    >>> codec_method("grid")
    'nirvana-grid'
    """
    return f"nirvana-{model}"


def _read_points(path: str | os.PathLike[str]) -> dict:
    """An earlier results document, with legacy ``nirvana`` points relabelled as siren."""
    results = json.loads(Path(path).read_text())
    for point in results["points"]:
        if point["method"] == LEGACY_METHOD:
            point["method"] = codec_method("siren")
    return results


@dataclass(frozen=True)
class Clip:
    """One benchmarked input: frames ``[start, stop)`` of ``path``, labelled ``name`` in results.

    ``size`` and ``fps`` go to every reader (a raw ``.yuv`` without them in its name needs the
    size); ``name`` defaults to the file's stem.

    Example:
        >>> Clip("samples/carphone.mp4", stop=8).label
        'carphone'
    """

    path: str | os.PathLike[str]
    stop: int | None = None
    start: int = 0
    size: tuple[int, int] | None = None
    fps: Fraction | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.path).stem

    def open(self) -> VideoSource:
        """The clip's frames, streamed."""
        return open_video(self.path, size=self.size, fps=self.fps, start=self.start, stop=self.stop)

    def reader_options(self) -> dict:
        """The frame selection as keyword arguments of ``codec.encode`` and ``evaluate``."""
        return {"size": self.size, "fps": self.fps, "start": self.start, "stop": self.stop}


def run(
    clips: Sequence[str | os.PathLike[str]] = DEFAULT_CLIPS,
    *,
    frames: int | Sequence[int] = DEFAULT_FRAMES,
    qualities: Sequence[float] = (),
    crfs: dict[str, Sequence[int]] = DEFAULT_CRFS,
    anchors_only: bool = False,
    out: str | os.PathLike[str] = "benchmarks/results",
    tag: str = "default",
    model: str = DEFAULT_MODEL,
    preset: str = "medium",
    device: str = "cpu",
    workers: int = 1,
    encode_options: dict | None = None,
    reuse_anchors: str | os.PathLike[str] | None = None,
    update: bool = False,
    log: bool = True,
    stats_dir: str | os.PathLike[str] | None = None,
) -> dict:
    """Run the benchmark, write ``rd_<tag>.{json,csv,md,png}`` under ``out``, return the JSON.

    ``frames`` is one count for every clip (an int or a 1-list) or one per clip. ``crfs`` maps anchor names to CRF
    sweeps (an anchor left out is not run). ``qualities`` are this codec's ``quality`` values
    with the ``model`` network kind; they are required unless ``anchors_only``.
    ``encode_options`` go to every ``codec.encode`` (e.g. ``key_iterations``).
    ``reuse_anchors`` names an earlier results JSON whose anchor points for the same clip and
    frame count are taken instead of encoding them again.
    ``update`` keeps the points of other clips found in an existing ``rd_<tag>.json``.

    Example:
        >>> r = run(["samples/carphone.mp4"], frames=4, crfs={"x264": (23, 38)},
        ...         anchors_only=True, out="/tmp/rd", tag="t", log=False)     # doctest: +SKIP
        >>> [p["value"] for p in r["points"]]                                   # doctest: +SKIP
        [23, 38]
    """
    counts = [frames] if isinstance(frames, int) else list(frames)
    if len(counts) == 1:
        counts *= len(clips)
    if len(counts) != len(clips):
        raise ValueError(f"{len(counts)} frame counts given for {len(clips)} clips")
    if not anchors_only and not qualities:
        raise ValueError("give at least one codec quality, or run with anchors_only")
    unknown = set(crfs) - set(ANCHORS)
    if unknown:
        raise ValueError(f"unknown anchors {sorted(unknown)}; choose from {', '.join(ANCHORS)}")
    if model not in KINDS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(KINDS)}")
    settings = {
        "clips": [str(c) for c in clips],
        "frames": counts,
        "qualities": list(qualities) if not anchors_only else [],
        "model": model,
        "preset": preset,
        "device": device,
        "workers": workers,
        "encode_options": encode_options or {},
        "reused_anchors": str(reuse_anchors) if reuse_anchors else None,
    }
    earlier = _read_points(reuse_anchors)["points"] if reuse_anchors else []
    points: list[Point] = []
    existing = Path(out) / f"rd_{tag}.json"
    if update and existing.is_file():
        kept = _read_points(existing)
        labels = {Clip(c).label for c in clips}
        points = [p for p in kept["points"] if p["clip"] not in labels]
        others = [(c, n) for c, n in zip(kept["settings"]["clips"], kept["settings"]["frames"])
                  if Clip(c).label not in labels]
        settings["clips"] = [c for c, _ in others] + settings["clips"]
        settings["frames"] = [n for _, n in others] + settings["frames"]
    for clip, count in zip(clips, counts):
        clip = Clip(clip, stop=count)
        reused = [p for p in earlier if p["clip"] == clip.label and p["frames"] == count
                  and p["method"] in crfs]
        todo = {name: sweep for name, sweep in crfs.items() if all(p["method"] != name for p in reused)}
        points += reused + clip_points(clip, qualities=(), crfs=todo, log=log)
        for quality in () if anchors_only else qualities:
            # written after every point, so that an interrupted run keeps what it finished
            _write(collect_results(tag, settings, crfs, points), Path(out), tag)
            points += clip_points(clip, qualities=[quality], crfs={}, model=model, preset=preset,
                                  device=device, workers=workers, encode_options=encode_options,
                                  log=log, stats_dir=stats_dir)
    results = collect_results(tag, settings, crfs, points)
    _write(results, Path(out), tag)
    return results


def clip_points(
    clip: Clip,
    *,
    qualities: Sequence[float],
    crfs: dict[str, Sequence[int]],
    model: str = DEFAULT_MODEL,
    preset: str = "medium",
    device: str = "cpu",
    workers: int = 1,
    encode_options: dict | None = None,
    log: bool = True,
    stats_dir: str | os.PathLike[str] | None = None,
) -> list[Point]:
    """Every anchor point of ``clip`` over its CRF sweep, then this codec with the ``model``
    network kind at each quality.

    ``encode_options`` are extra keyword arguments of ``codec.encode`` (``group_size``,
    ``iterations``, ...).

    Example:
        >>> clip_points(Clip("samples/carphone.mp4", stop=4), qualities=[],
        ...             crfs={"x264": (23,)}, log=False)[0]["method"]          # doctest: +SKIP
        'x264'
    """
    points: list[Point] = []
    for name, sweep in crfs.items():
        for crf in sweep:
            with clip.open() as src:
                result = encode_anchor(src, name, crf)
            points.append(_point(clip.label, name, "crf", crf, result.as_dict()))
            _log(log, points[-1])
    for quality in qualities:
        points.append(_codec_point(clip, quality, model, preset, device, workers, encode_options or {},
                                   stats_dir))
        _log(log, points[-1])
    return points


def collect_results(tag: str, settings: dict, crfs: dict[str, Sequence[int]], points: list[Point]) -> dict:
    """The results document: ``settings`` plus the anchors' setup and metric definitions,
    the environment, the points and their BD-rates."""
    return {
        "tag": tag,
        "settings": {
            **settings,
            "crfs": {name: list(sweep) for name, sweep in crfs.items()},
            "anchors": {name: {"encoder": ANCHORS[name].encoder, "options": ANCHORS[name].options}
                        for name in crfs},
            "metrics": "RGB PSNR per frame averaged over frames; YUV (6Y+U+V)/8 BT.601 4:2:0; "
                       "MS-SSIM mean over RGB channels (codec/metrics.py)",
            "bd_rate": "PCHIP on log-rate vs RGB PSNR, percent, method vs anchor",
        },
        "environment": {
            "python": platform.python_version(),
            "av": av.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "points": points,
        "bd_rate": _bd_rates(points),
    }


def _point(label: str, method: str, param: str, value: float, data: dict) -> Point:
    """One row of the results table."""
    base = {"clip": label, "method": method, "param": param, "value": value}
    return {key: base.get(key, data.get(key)) for key in FIELDS}


def _codec_point(
    clip: Clip, quality: float, model: str, preset: str, device: str, workers: int, options: dict,
    stats_dir: str | os.PathLike[str] | None = None,
) -> Point:
    """Encode, decode losslessly and evaluate one quality point of this codec; with
    ``stats_dir``, the encode's per-group stats go to ``<stats_dir>/<clip>_q<quality>.json``
    and its file is kept beside them as ``<clip>_q<quality>.nirv``."""
    stats = None if stats_dir is None else Path(stats_dir) / f"{clip.label}_q{quality:g}.json"
    with tempfile.TemporaryDirectory(prefix="nirvana-rd-") as tmp:
        nirv, decoded = Path(tmp) / "clip.nirv", Path(tmp) / "decoded.mkv"
        enc = codec.encode(clip.path, nirv, model=model, preset=preset, quality=quality,
                           device=device, workers=workers, seed=0, stats_path=stats,
                           **clip.reader_options(), **options)
        dec = codec.decode(nirv, decoded, lossless=True, device=device.split(",")[0])
        scores = evaluate(decoded, clip.path, nirv=nirv, **clip.reader_options())
        if stats is not None:
            shutil.copyfile(nirv, stats.with_suffix(".nirv"))
    data = {**scores, "bytes": scores["file_bytes"], "encode_seconds": enc.seconds,
            "decode_seconds": dec.seconds}
    return _point(clip.label, codec_method(model), "quality", quality, data)


def _log(enabled: bool, point: Point) -> None:
    if enabled:
        print(
            f"{point['clip']:>10} {point['method']:>13} {point['param']}={point['value']:<6} "
            f"{point['bpp']:.4f} bpp {point['psnr_rgb']:.2f} dB "
            f"(enc {point['encode_seconds']:.2f} s, dec {point['decode_seconds']:.2f} s)",
            file=sys.stderr,
        )


def _curve(points: list[Point], clip: str, method: str) -> tuple[list[float], list[float]]:
    chosen = [p for p in points if p["clip"] == clip and p["method"] == method]
    return [p["bpp"] for p in chosen], [p["psnr_rgb"] for p in chosen]


def _bd_rates(points: list[Point]) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{clip: {method: {anchor: BD-rate %}}}``; ``None`` where curves cannot be compared."""
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    clips = list(dict.fromkeys(p["clip"] for p in points))
    for clip in clips:
        methods = list(dict.fromkeys(p["method"] for p in points if p["clip"] == clip))
        anchors = [m for m in methods if m in ANCHORS]
        table[clip] = {}
        for method in methods:
            row = {}
            for anchor in anchors:
                if anchor == method:
                    continue
                try:
                    row[anchor] = bd_rate(*_curve(points, clip, anchor), *_curve(points, clip, method))
                except ValueError:  # too few points, no overlap or a non-monotone curve
                    row[anchor] = None
            table[clip][method] = row
    return table


def _write(results: dict, out: Path, tag: str, notes: Sequence[str] = ()) -> None:
    """Write ``rd_<tag>.{json,csv,md,png}``; ``notes`` are markdown lines put under the header."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"rd_{tag}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(results["points"])
    stem.with_suffix(".md").write_text(_markdown(results, notes))
    _plot(results, stem.with_suffix(".png"))


def _markdown(results: dict, notes: Sequence[str] = ()) -> str:
    """Points per clip, then BD-rate of each method against each anchor; ``notes`` (lines)
    go between the header and the first clip."""
    settings = results["settings"]
    lines = [
        f"# Rate-distortion: {results['tag']}",
        "",
        f"Clips: {', '.join(f'{c} ({n} frames)' for c, n in zip(settings['clips'], settings['frames']))}. "
        f"Metrics: {settings['metrics']}. bpp from file / packet bytes.",
        "",
        *notes,
    ]
    for clip, rows in results["bd_rate"].items():
        lines += [f"## {clip}", "", "| method | setting | bpp | PSNR RGB | PSNR YUV | MS-SSIM | enc s | dec s |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in (p for p in results["points"] if p["clip"] == clip):
            lines.append(
                f"| {p['method']} | {p['param']} {p['value']} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} "
                f"| {p['psnr_yuv']:.2f} | {p['ms_ssim']:.4f} | {p['encode_seconds']:.2f} "
                f"| {p['decode_seconds']:.2f} |"
            )
        anchors = [a for a in ANCHORS if any(a in row for row in rows.values())]
        lines += ["", "BD-rate (RGB PSNR, PCHIP) of each method against each anchor, %; negative = "
                  "fewer bits:", "", "| method | " + " | ".join(f"vs {a}" for a in anchors) + " |",
                  "|---" * (len(anchors) + 1) + "|"]
        for method, row in rows.items():
            cells = [_percent(row[a]) if a in row else "–" for a in anchors]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _plot(results: dict, path: Path) -> None:
    """One panel per clip: bpp (log) against RGB PSNR, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    clips = list(results["bd_rate"])
    fig, axes = plt.subplots(1, len(clips), figsize=(5.5 * len(clips), 4.2), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        methods = results["bd_rate"][clip]
        for method in methods:
            rates, psnrs = _curve(results["points"], clip, method)
            order = np.argsort(rates)
            ax.plot(np.array(rates)[order], np.array(psnrs)[order], marker="o", label=method)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("bpp")
        ax.set_ylabel("RGB PSNR (dB)")
        ax.set_title(clip)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring for usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rd", description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*", default=list(DEFAULT_CLIPS), help="input videos")
    parser.add_argument("--frames", type=int, nargs="+", help=f"frames per clip, one or one per "
                        f"clip (default {DEFAULT_FRAMES}, {QUICK_FRAMES} with --quick)")
    parser.add_argument("--qualities", type=float, nargs="+", default=[], help="codec quality values")
    parser.add_argument("--anchors", nargs="+", choices=list(ANCHORS), default=list(ANCHORS))
    parser.add_argument("--anchors-only", action="store_true", help="skip this codec")
    parser.add_argument("--quick", action="store_true", help="few frames, two CRFs per anchor")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--tag", help="results name rd_<tag>.* (default: anchors, quick or main)")
    parser.add_argument("--model", choices=sorted(KINDS), default=DEFAULT_MODEL,
                        help="this codec's network kind")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--key-iterations", type=int, help="override the preset's key-group budget")
    parser.add_argument("--iterations", type=int, help="override the preset's budget of other groups")
    parser.add_argument("--group-size", type=int, help="frames per group (default: by kind and size)")
    parser.add_argument("--threads", type=int, help="CPU threads per encode (default: all cores)")
    parser.add_argument("--halve-time", type=int, help="grid: time slots of the latent levels "
                        "(nirvana encode --halve-time; default: the codec's)")
    parser.add_argument("--net", metavar="JSON", type=json.loads,
                        help='other network settings for every encode, e.g. \'{"subpel": 2}\'')
    parser.add_argument("--fit", metavar="JSON", type=json.loads,
                        help='other FitConfig fields for every encode, e.g. \'{"distortion": "mse"}\'')
    parser.add_argument("--reuse-anchors", metavar="JSON",
                        help="take anchor points from this earlier results file where it has them")
    parser.add_argument("--update", action="store_true",
                        help="keep other clips' points already in rd_<tag>.json")
    parser.add_argument("--stats", metavar="DIR",
                        help="also write each encode's per-group stats to DIR/<clip>_q<quality>.json "
                             "and keep its file as DIR/<clip>_q<quality>.nirv")
    args = parser.parse_args(argv)
    if not args.anchors_only and not args.qualities:
        parser.error("give --qualities for this codec, or --anchors-only")
    sweeps = QUICK_CRFS if args.quick else DEFAULT_CRFS
    default_tag = "quick" if args.quick else "anchors" if args.anchors_only else "main"
    try:
        # the encoder's own checks of --net and --fit, before minutes of anchors
        kind = KINDS[args.model]
        check_names(kind.config_type, args.net or {}, f"{args.model} network setting", owner="it")
        check_ranges(replace(kind.default_config(64, 64), **(args.net or {})))
        fit_config(args.preset, kind=args.model, **(args.fit or {}))
        results = run(
            args.clips,
            frames=args.frames or (QUICK_FRAMES if args.quick else DEFAULT_FRAMES),
            qualities=args.qualities,
            crfs={name: sweeps[name] for name in args.anchors},
            anchors_only=args.anchors_only,
            out=args.out,
            tag=args.tag or default_tag,
            model=args.model,
            preset=args.preset,
            device=args.device,
            workers=args.workers,
            encode_options={k: v for k, v in (("key_iterations", args.key_iterations),
                                              ("iterations", args.iterations),
                                              ("group_size", args.group_size),
                                              ("halve_time", args.halve_time),
                                              ("threads", args.threads),
                                              ("fit_overrides", args.fit),
                                              ("network_overrides", args.net)) if v is not None},
            reuse_anchors=args.reuse_anchors,
            update=args.update,
            stats_dir=args.stats,
        )
    except (CodecError, ValueError, OSError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(Path(args.out) / f"rd_{results['tag']}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
