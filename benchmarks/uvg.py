"""UVG benchmark: this codec and the x264/x265/SVT-AV1 anchors on the UVG 1080p sequences.

Give the folder that holds the UVG raw 8-bit 4:2:0 ``.yuv`` files (Beauty, Bosphorus,
HoneyBee, Jockey, ReadySteadyGo, ShakeNDry, YachtRide, named the UVG way, e.g.
``Beauty_1920x1080_120fps_420_8bit_YUV.yuv``). Files are found by sequence name at the start
of the file name, case-insensitive; size and frame rate come from the name (any size works);
missing sequences are skipped with a note. Each sequence is coded by this codec at every
``--qualities`` value and by each anchor over its CRF sweep (:mod:`benchmarks.anchors`), and
the results are written exactly as :mod:`benchmarks.rd` writes them
(``<out>/rd_<tag>.{json,csv,md,png}``, points labelled by sequence name). The markdown adds
the average over sequences (plain mean of bpp and of PSNR, as the literature does), this run's
averages interpolated at the published bpp points, and the published UVG anchors for reference.

Networks (``--model``): ``grid`` (default, labelled ``nirvana-grid``) takes the grid kind's
defaults for the resolution; ``siren`` (``nirvana-siren``) is the paper's network, G=3 frames
per group and 32x32 patches unless ``--group-size``/``--patch-size`` say otherwise (sized to
the resolution: the paper's 2.4 M weights per group at 1080p).

Setups:

* paper (default): full frames, every frame;
* quick: ``--frames N`` codes the first N frames and ``--crop WxH`` a centre crop (offsets
  rounded down to even, so the crop keeps whole 4:2:0 chroma blocks). The cropped RGB frames
  are written once to a temporary lossless FFV1 ``.mkv`` and that same clip feeds this codec
  and the anchors.

YUV to RGB is :mod:`codec.video.rawyuv`'s conversion: swscale with untagged BT.601 limited
range, ffmpeg's default, which is how the literature makes its RGB frames from UVG.

Usage::

    python -m benchmarks.uvg /data/uvg --qualities 2 4 6 --model siren        # paper setup
    python -m benchmarks.uvg /data/uvg --qualities 4 --frames 30 --crop 320x180 \\
        --preset fast --sequences Beauty Jockey --tag uvg_quick                # a quick run
    python -m benchmarks.uvg /data/uvg --anchors-only --frames 120
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.anchors import ANCHORS, DEFAULT_CRFS
from benchmarks.rd import Clip, Point, _write, clip_points, collect_results
from codec.encoder import DEFAULT_MODEL
from codec.errors import CodecError
from codec.video import VideoWriter, open_video
from codec.video.rawyuv import parse_yuv_name
from nirvana.kinds import KINDS

__all__ = ["run", "main", "find_sequences", "crop_box", "SEQUENCES", "PUBLISHED", "PUBLISHED_BPP"]

SEQUENCES = ("Beauty", "Bosphorus", "HoneyBee", "Jockey", "ReadySteadyGo", "ShakeNDry", "YachtRide")
ALIASES = {"ReadySteadyGo": ("ReadySteadyGo", "ReadySetGo")}  # the paper name vs the file name
PAPER_GROUP_SIZE = 3  # the paper's siren setup
PAPER_PATCH_SIZE = 32
COLOUR = ("YUV to RGB: swscale, untagged BT.601 limited range (ffmpeg's default), as the "
          "literature converts UVG; metrics on RGB.")

PUBLISHED_SOURCE = (
    "RGB PSNR (dB) averaged over the 7 UVG 1080p sequences, interpolated on log-bpp from the "
    "published points collected by DeepMind's c3_neural_compression `baselines/uvg.py` "
    "(as tabulated in the project's shared REFERENCE.md)"
)
PUBLISHED_BPP = (0.02, 0.05, 0.10, 0.20, 0.30)
PUBLISHED: dict[str, tuple[float | None, ...]] = {
    "VTM (H.266) random access": (35.7, 37.6, 38.8, 39.6, None),
    "HM-18 (H.265) random access": (35.3, 37.3, 38.5, 39.5, 40.1),
    "x265 medium, no B-frames": (33.1, 35.5, 37.0, 38.1, 38.8),
    "HiNeRV (INR, NeurIPS 2023)": (35.2, 37.1, 38.4, 39.4, None),
    "C3 (INR, CVPR 2024)": (33.6, 36.1, 37.8, 39.2, 40.0),
    "FFNeRV": (33.0, 35.3, 37.0, 38.6, None),
    "HNeRV": (33.0, 34.7, 35.9, 37.1, None),
    "NeRV": (31.8, 34.1, 35.7, 37.3, None),
}
"""Published UVG anchors: RGB PSNR at each of :data:`PUBLISHED_BPP` (``None``: no point there)."""


def find_sequences(folder: Path, names: Sequence[str] = SEQUENCES) -> tuple[dict[str, Path], list[str]]:
    """Map each sequence name to its ``.yuv`` file in ``folder``; also return the names not found.

    A file matches when its name starts with the sequence name (or an alias), case-insensitive,
    followed by a non-alphanumeric character; an 8-bit file is preferred over a 10-bit one.

    Example:
        >>> find_sequences(Path("/data/uvg"), ["Beauty", "Jockey"])          # doctest: +SKIP
        ({'Beauty': PosixPath('/data/uvg/Beauty_1920x1080_120fps_420_8bit_YUV.yuv')}, ['Jockey'])
    """
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder; give the folder holding the UVG .yuv files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".yuv")
    found, missing = {}, []
    for name in names:
        prefixes = "|".join(re.escape(alias) for alias in ALIASES.get(name, (name,)))
        pattern = re.compile(rf"^(?:{prefixes})(?![a-z0-9])", re.IGNORECASE)
        matches = sorted((p for p in files if pattern.match(p.name)), key=lambda p: parse_yuv_name(p.name)[2])
        if matches:
            found[name] = matches[0]
        else:
            missing.append(name)
    return found, missing


def parse_crop(text: str) -> tuple[int, int]:
    """``"320x180"`` -> ``(320, 180)``.

    >>> parse_crop("320x180")
    (320, 180)
    """
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", text.strip())
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"crop {text!r} is not WxH with positive numbers, e.g. 320x180")
    return int(match[1]), int(match[2])


def crop_box(width: int, height: int, crop: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of a centre crop of ``crop`` (w, h) from a ``width`` x ``height`` frame.

    The offsets are rounded down to even numbers so that the crop keeps whole chroma blocks.

    >>> crop_box(1920, 1080, (320, 180))
    (800, 450, 320, 180)
    """
    w, h = crop
    if w > width or h > height:
        raise ValueError(f"crop {w}x{h} is larger than the {width}x{height} frames")
    return (width - w) // 4 * 2, (height - h) // 4 * 2, w, h


@contextmanager
def prepared_clip(
    path: Path, name: str, frames: int | None, crop: tuple[int, int] | None
) -> Iterator[Clip]:
    """The clip to benchmark: the ``.yuv`` itself, or with ``crop`` a temporary lossless
    FFV1 ``.mkv`` of the centre-cropped first ``frames`` frames (removed afterwards)."""
    if crop is None:
        yield Clip(path, stop=frames, name=name)
        return
    with tempfile.TemporaryDirectory(prefix="nirvana-uvg-") as tmp:
        target = Path(tmp) / f"{name}.mkv"
        with open_video(path, stop=frames) as src:
            x, y, w, h = crop_box(src.info.width, src.info.height, crop)
            with VideoWriter(target, w, h, src.info.fps, codec="ffv1", lossless=True) as out:
                for group in src.groups(8):
                    out.write(np.ascontiguousarray(group[:, y : y + h, x : x + w]))
        yield Clip(target, name=name)


def _frame_count(clip: Clip) -> int:
    with clip.open() as src:
        return src.info.num_frames


def run(
    folder: str | os.PathLike[str],
    *,
    sequences: Sequence[str] = SEQUENCES,
    qualities: Sequence[float] = (),
    frames: int | None = None,
    crop: tuple[int, int] | None = None,
    crfs: dict[str, Sequence[int]] = DEFAULT_CRFS,
    anchors_only: bool = False,
    out: str | os.PathLike[str] = "benchmarks/results",
    tag: str = "uvg",
    preset: str = "medium",
    device: str = "cpu",
    workers: int = 1,
    model: str = DEFAULT_MODEL,
    iterations: int | None = None,
    key_iterations: int | None = None,
    group_size: int | None = None,
    patch_size: int | None = None,
    log: bool = True,
) -> dict:
    """Benchmark the UVG sequences found in ``folder``; write ``rd_<tag>.*`` under ``out``.

    ``frames`` limits each sequence to its first frames (``None``: all); ``crop`` (w, h) takes
    a centre crop. Other arguments as in :func:`benchmarks.rd.run`; ``model``, ``iterations``,
    ``key_iterations``, ``group_size`` and ``patch_size`` go to ``codec.encode`` (see
    :func:`encode_options` for the defaults).

    Example:
        >>> r = run("/data/uvg", qualities=[4], frames=30, crop=(320, 180))   # doctest: +SKIP
        >>> sorted({p["method"] for p in r["points"]})                         # doctest: +SKIP
        ['nirvana-grid', 'svtav1', 'x264', 'x265']
    """
    _check_request(qualities, anchors_only, crfs, frames)
    options = encode_options(model, iterations, key_iterations, group_size, patch_size)
    found, missing = find_sequences(Path(folder), sequences)
    for name in missing:
        _note(log, f"{name}: no {name}_*.yuv in {folder}, skipped")
    if not found:
        raise ValueError(f"none of the UVG sequences {', '.join(sequences)} is in {folder}")
    points: list[Point] = []
    counts = []
    for name, path in found.items():
        with prepared_clip(path, name, frames, crop) as clip:
            counts.append(_frame_count(clip))
            points += clip_points(clip, qualities=() if anchors_only else qualities, crfs=crfs,
                                  model=model, preset=preset, device=device, workers=workers,
                                  encode_options=options, log=log)
    settings = {
        "clips": [str(p) for p in found.values()],
        "frames": counts,
        "qualities": [] if anchors_only else list(qualities),
        "model": model,
        "preset": preset,
        "device": device,
        "workers": workers,
        "sequences": list(found),
        "missing": missing,
        "crop": None if crop is None else f"{crop[0]}x{crop[1]} centre",
        "encode_options": options,
        "colour": COLOUR,
    }
    results = collect_results(tag, settings, crfs, points)
    _write(results, Path(out), tag, notes=_notes(results))
    return results


def encode_options(model: str, iterations: int | None, key_iterations: int | None,
                   group_size: int | None, patch_size: int | None) -> dict:
    """This codec's ``codec.encode`` options: ``siren`` defaults to the paper's G=3 and 32x32
    patches, ``grid`` to its own defaults for the resolution (``None``: the default).

    >>> encode_options("siren", None, 5, None, None)
    {'group_size': 3, 'iterations': None, 'key_iterations': 5, 'patch_size': 32}
    >>> encode_options("grid", None, None, 4, None)
    {'group_size': 4, 'iterations': None, 'key_iterations': None}
    """
    if model not in KINDS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(KINDS)}")
    options = {"group_size": group_size, "iterations": iterations, "key_iterations": key_iterations}
    if model == "siren":
        return {**options, "group_size": group_size or PAPER_GROUP_SIZE,
                "patch_size": patch_size or PAPER_PATCH_SIZE}
    if patch_size is not None:
        raise ValueError(f"patch_size applies to model siren only, not {model}")
    return options


def _check_request(
    qualities: Sequence[float], anchors_only: bool, crfs: dict[str, Sequence[int]], frames: int | None
) -> None:
    if not anchors_only and not qualities:
        raise ValueError("give at least one codec quality, or run with anchors_only")
    unknown = set(crfs) - set(ANCHORS)
    if unknown:
        raise ValueError(f"unknown anchors {sorted(unknown)}; choose from {', '.join(ANCHORS)}")
    if frames is not None and frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")


def _note(enabled: bool, text: str) -> None:
    if enabled:
        print(f"note: {text}", file=sys.stderr)


def average_curves(points: Sequence[Point]) -> dict[str, list[tuple[str, float, float, int]]]:
    """``{method: [(setting, mean bpp, mean RGB PSNR, sequences), ...]}`` sorted by bpp.

    Each setting (a quality or a CRF) is averaged over the sequences that have it.

    >>> pts = [{"clip": c, "method": "x264", "param": "crf", "value": 30, "bpp": b, "psnr_rgb": q}
    ...        for c, b, q in (("A", 0.1, 30.0), ("B", 0.3, 34.0))]
    >>> average_curves(pts)
    {'x264': [('crf 30', 0.2, 32.0, 2)]}
    """
    groups: dict[str, dict[str, list[Point]]] = {}
    for p in points:
        groups.setdefault(p["method"], {}).setdefault(f"{p['param']} {p['value']}", []).append(p)
    curves = {}
    for method, settings in groups.items():
        rows = [(setting, float(np.mean([p["bpp"] for p in chosen])),
                 float(np.mean([p["psnr_rgb"] for p in chosen])), len(chosen))
                for setting, chosen in settings.items()]
        curves[method] = sorted(rows, key=lambda row: row[1])
    return curves


def psnr_at(curve: Sequence[tuple[str, float, float, int]], bpp: float) -> float | None:
    """PSNR of an averaged curve at ``bpp``, linear on log-bpp; ``None`` outside its range.

    >>> psnr_at([("a", 0.01, 30.0, 1), ("b", 0.1, 40.0, 1)], 10 ** -1.5)
    35.0
    """
    rates = np.log([row[1] for row in curve])
    if len(curve) < 2 or not rates[0] <= np.log(bpp) <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), rates, [row[2] for row in curve]))


def _notes(results: dict) -> list[str]:
    """Markdown lines for the header: setup, averages and the published anchors."""
    settings = results["settings"]
    return [*_setup_lines(settings), *_average_lines(results["points"]), *_published_lines(results["points"])]


def _setup_lines(settings: dict) -> list[str]:
    options = settings["encode_options"]
    scope = "full frames" if settings["crop"] is None else f"{settings['crop']} crop"
    patches = f"{options['patch_size']}x{options['patch_size']} patches, " if "patch_size" in options else ""
    lines = [
        f"UVG sequences: {', '.join(settings['sequences'])}; {scope}. {settings['colour']}",
        "",
        f"This codec: {settings['model']} network, preset {settings['preset']}, "
        f"G={options['group_size'] or 'default'}, {patches}iterations "
        f"{options['iterations'] or 'preset'}, key iterations {options['key_iterations'] or 'preset'}.",
        "",
    ]
    if settings["missing"]:
        lines += [f"Not found, skipped: {', '.join(settings['missing'])}.", ""]
    return lines


def _average_lines(points: Sequence[Point]) -> list[str]:
    lines = ["## Average over sequences (measured here)", "",
             "Plain mean of bpp and of RGB PSNR over the sequences above, per setting.", "",
             "| method | setting | sequences | bpp | PSNR RGB |", "|---|---|---|---|---|"]
    for method, curve in average_curves(points).items():
        lines += [f"| {method} | {s} | {n} | {bpp:.4f} | {psnr:.2f} |" for s, bpp, psnr, n in curve]
    return lines + [""]


def _published_lines(points: Sequence[Point]) -> list[str]:
    head = " | ".join(f"{b:.2f} bpp" for b in PUBLISHED_BPP)
    lines = ["## Published UVG anchors (for reference, not measured here)", "",
             f"Published rows: {PUBLISHED_SOURCE}. Measured rows: this run's averages above, "
             "interpolated the same way where the run covers that rate; they match the published "
             "setup only for all 7 sequences, all frames and no crop.", "",
             f"| codec | {head} |", "|---" * (len(PUBLISHED_BPP) + 1) + "|"]
    for codec_name, psnrs in PUBLISHED.items():
        lines.append(f"| {codec_name} (published) | " + " | ".join(_db(v) for v in psnrs) + " |")
    for method, curve in average_curves(points).items():
        cells = [_db(psnr_at(curve, bpp)) for bpp in PUBLISHED_BPP]
        lines.append(f"| {method} (measured here) | " + " | ".join(cells) + " |")
    return lines + [""]


def _db(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring for usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.uvg", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="folder holding the UVG .yuv files")
    parser.add_argument("--qualities", type=float, nargs="+", default=[], help="codec quality values")
    parser.add_argument("--sequences", nargs="+", default=list(SEQUENCES), help="sequence names")
    parser.add_argument("--frames", type=int, help="first N frames of each sequence (default all)")
    parser.add_argument("--crop", type=parse_crop, help="centre crop WxH, e.g. 320x180")
    parser.add_argument("--anchors", nargs="+", choices=list(ANCHORS), default=list(ANCHORS))
    parser.add_argument("--anchors-only", action="store_true", help="skip this codec")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--tag", default="uvg", help="results name rd_<tag>.* (default uvg)")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", choices=sorted(KINDS), default=DEFAULT_MODEL,
                        help="this codec's network kind (siren: the paper's)")
    parser.add_argument("--iterations", type=int, help="budget of warm-started groups (default: preset)")
    parser.add_argument("--key-iterations", type=int, help="budget of key groups (default: preset)")
    parser.add_argument("--group-size", type=int,
                        help=f"frames per group (default: siren {PAPER_GROUP_SIZE} as in the paper, "
                             "grid by resolution)")
    parser.add_argument("--patch-size", type=int,
                        help=f"siren only: patch side (default {PAPER_PATCH_SIZE} as in the paper)")
    args = parser.parse_args(argv)
    if not args.anchors_only and not args.qualities:
        parser.error("give --qualities for this codec, or --anchors-only")
    try:
        results = run(
            args.folder, sequences=args.sequences, qualities=args.qualities, frames=args.frames,
            crop=args.crop, crfs={name: DEFAULT_CRFS[name] for name in args.anchors},
            anchors_only=args.anchors_only, out=args.out, tag=args.tag, preset=args.preset,
            device=args.device, workers=args.workers, model=args.model, iterations=args.iterations,
            key_iterations=args.key_iterations, group_size=args.group_size,
            patch_size=args.patch_size,
        )
    except (CodecError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(Path(args.out) / f"rd_{results['tag']}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
