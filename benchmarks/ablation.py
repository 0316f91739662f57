"""Ablation of the ``grid`` network: what each part of the codec buys, on real video.

Every variant encodes the same frames with :func:`codec.encode` at each quality and reports
the file's bpp and the encoder's PSNR (the decoder's, bit for bit), then its BD-rate
against the default settings (PCHIP on RGB PSNR; ``-`` where the curves do not overlap).
Variants change one thing: latent levels, time slots, values per cell, synthesis width
and depth, group size, warm start, carrying the last time slot and residual coding across groups, the iteration budget, the noise
phase, the learning-rate schedule. Encodes run in ``--jobs`` processes of one thread each.

Writes ``<out>/ablation_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.ablation samples/carphone.mp4 --frames 24 --qualities 4 7 --tag carphone
    python -m benchmarks.ablation samples/bikes.mp4 --frames 16 --variants default hidden32 --tag bikes
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from codec.bdrate import bd_rate

# name -> (what changes, codec.encode keyword arguments)
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("the defaults", {}),
    "levels4": ("4 latent levels instead of 6-7", {"levels": 4}),
    "channels2": ("2 values per grid cell", {"channels": 2}),
    "time1": ("finest level with G time slots (halve_time 1, the default from 320x180)",
              {"network_overrides": {"halve_time": 1}}),
    "time2": ("finest level with G/2 time slots (halve_time 2, the default below 320x180)",
              {"network_overrides": {"halve_time": 2}}),
    "time3": ("finest level with G/4 time slots (halve_time 3)", {"network_overrides": {"halve_time": 3}}),
    "hidden8": ("synthesis width 8", {"hidden": 8}),
    "hidden32": ("synthesis width 32", {"hidden": 32}),
    "group4": ("4-frame groups", {"group_size": 4}),
    "group12": ("12-frame groups", {"group_size": 12}),
    "no_warm_start": ("every group a key group (no warm start, no residuals)", {"key_interval": 1}),
    "no_carry": ("warm start and residuals from the same time slot, not the last one",
                 {"fit_overrides": {"carry_time": False}}),
    "no_residual": ("warm start, but every tensor coded intra", {"fit_overrides": {"residual_coding": False}}),
    "old_synthesis": ("two per-pixel layers and two 3x3 convolutions (the default before)",
                      {"network_overrides": {"layers": 2, "convs": 2}}),
    "psnr": ("distortion psnr: the loss weighs each frame's ln MSE (its PSNR), not the group's MSE",
             {"distortion": "psnr"}),
    "mse": ("distortion mse: the loss weighs the group's MSE", {"distortion": "mse"}),
    "fast": ("preset fast (about 1/3 of the iterations)", {"preset": "fast"}),
    "slow": ("preset slow (2.5x the iterations)", {"preset": "slow"}),
    "no_noise": ("straight-through rounding from the start (no noise phase)",
                 {"fit_overrides": {"noise_fraction": 0.0}}),
    "cosine_lr": ("cosine learning rate down to a twentieth (the default before)",
                  {"fit_overrides": {"schedule": "cosine"}}),
    # the context model (nirvana.context; the default reads all its inputs, width 8)
    "no_context": ("no context model: a count table or Laplace per level", {"context": 0}),
    "ctx_spatial": ("context model on same-level neighbours only (space, and t-1)",
                    {"network_overrides": {"context_inputs": 3}}),
    "ctx_coarser": ("context model on neighbours and the next-coarser level (no previous group)",
                    {"network_overrides": {"context_inputs": 7}}),
    "ctx4": ("context model of width 4", {"context": 4}),
    "ctx16": ("context model of width 16", {"context": 16}),
    # motion (nirvana.motion; the default: 16x16 blocks below 720p, half pixels, overlapped)
    "no_motion": ("no motion: warm groups render on mid-gray, not on the motion prediction", {"motion": 0}),
    "motion8": ("motion in 8x8 blocks", {"motion": 8}),
    "motion32": ("motion in 32x32 blocks", {"motion": 32}),
    "whole_pixel": ("motion in whole pixels (no half-pixel positions)", {"subpel": 0}),
    "quarter_pixel": ("motion in quarter pixels", {"subpel": 2}),
    "no_overlap": ("no overlap: each pixel takes its own block's motion only", {"overlap": False}),
    "no_chain": ("no chain: every frame of a warm group moved from the previous group's last frame",
                 {"chain": False}),
    "chain_always": ("chain in every warm group, however little it saves",
                     {"fit_overrides": {"chain_gain": 1e9}}),
    "motion_cost4": ("the motion search prices a motion bit at 4 bits of the loss (the default before), not 1",
                     {"fit_overrides": {"motion_bit_cost": 4.0}}),
    "motion_plain_price": ("the motion price not scaled by the previous group's MSE (plain motion_bit_cost)",
                           {"fit_overrides": {"motion_cost_follows_mse": False}}),
    "motion_price_two_sided": ("the motion price's MSE factor clamped to 0.1..10, not 1..10 (cheaper at high quality)",
                               {"fit_overrides": {"motion_cost_mse_floor": 0.1}}),
    "warm_lr": ("warm groups at the key groups' learning rate (0.01, not 0.005)",
                {"fit_overrides": {"residual_lr": 0.01}}),
}


def _encode(job: tuple[str, str, int, float, str, dict]) -> dict:
    """One encode in a worker process: ``(variant, clip, frames, quality, kwargs)`` -> point."""
    import codec

    name, clip, frames, quality, preset, kwargs = job
    kwargs = {"preset": preset, **kwargs}
    with tempfile.TemporaryDirectory() as tmp:
        r = codec.encode(clip, Path(tmp) / "a.nirv", model="grid", quality=quality, stop=frames,
                         threads=1, **kwargs)
    return {"variant": name, "quality": quality, "bpp": r.bpp, "psnr": r.psnr, "bytes": r.file_bytes,
            "seconds": r.seconds, "group_size": r.network["group_size"]}


def run(clip: str, *, frames: int = 24, qualities: Sequence[float] = (4.0, 7.0),
        variants: Sequence[str] = tuple(VARIANTS), jobs: int = 2, out: str | Path = "benchmarks/results",
        tag: str = "ablation", preset: str = "medium") -> dict:
    """Encode every variant at every quality; write ``ablation_<tag>.{json,md}``; return the JSON."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    work = [(v, clip, frames, q, preset, VARIANTS[v][1]) for v in variants for q in qualities]
    with ProcessPoolExecutor(jobs) as pool:
        points = list(pool.map(_encode, work))
    results = {"clip": clip, "frames": frames, "preset": preset, "qualities": list(qualities), "points": points,
               "bd_rate_vs_default": _bd_rates(points)}
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"ablation_{tag}.json").write_text(json.dumps(results, indent=1) + "\n")
    (path / f"ablation_{tag}.md").write_text(_markdown(results))
    return results


def _curve(points: list[dict], variant: str) -> tuple[list[float], list[float]]:
    mine = sorted((p for p in points if p["variant"] == variant), key=lambda p: p["bpp"])
    return [p["bpp"] for p in mine], [p["psnr"] for p in mine]


def _bd_rates(points: list[dict]) -> dict[str, float | None]:
    variants = list(dict.fromkeys(p["variant"] for p in points))
    if "default" not in variants:
        return {}
    base = _curve(points, "default")
    rates: dict[str, float | None] = {}
    for v in variants:
        try:
            rates[v] = bd_rate(*base, *_curve(points, v))
        except ValueError:  # curves that do not overlap in PSNR, or too few points
            rates[v] = None
    return rates


def _markdown(results: dict) -> str:
    qs = results["qualities"]
    lines = [f"# Ablation of the grid network: {results['clip']}, first {results['frames']} frames, "
             f"preset {results.get('preset', 'medium')}",
             "", "PSNR (RGB, the decoder's) and bpp (the file's) at each quality; BD-rate against "
             "the defaults (PCHIP; negative is better).", "",
             "| variant | what changes | " + " | ".join(f"quality {q:g}" for q in qs)
             + " | BD-rate vs default | encode s |",
             "|---|---|" + "---|" * len(qs) + "---|---|"]
    for v in dict.fromkeys(p["variant"] for p in results["points"]):
        mine = {p["quality"]: p for p in results["points"] if p["variant"] == v}
        cells = [f"{mine[q]['psnr']:.2f} dB @ {mine[q]['bpp']:.4f}" for q in qs]
        bd = results["bd_rate_vs_default"].get(v)
        seconds = sum(p["seconds"] for p in mine.values())
        lines.append(f"| {v} | {VARIANTS[v][0]} | " + " | ".join(cells)
                     + f" | {'-' if bd is None else f'{bd:+.1f} %'} | {seconds:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring for usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__.split("\n")[0])
    parser.add_argument("clip")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--qualities", type=float, nargs="+", default=[4.0, 7.0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="ablation")
    parser.add_argument("--preset", default="medium", help="the preset of every variant but fast/slow")
    args = parser.parse_args(argv)
    results = run(args.clip, frames=args.frames, qualities=args.qualities, variants=args.variants,
                  jobs=args.jobs, out=args.out, tag=args.tag, preset=args.preset)
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
