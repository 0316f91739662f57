"""Screen fit settings in minutes: fit a clip's first groups under each variant, score the loss.

An RD point of bikes costs most of an hour on 2 cores. This fits only the first ``--groups``
groups (a key group, then warm groups), every group under the variant's FitConfig
overrides, packs each group's payload as the encoder does (real bytes, no container) and
scores it by what the ``psnr`` loss minimises, in dB:

    score = mean frame PSNR − λ · bpp / (LOG_MSE_SCALE · ln 10 / 10)

(higher is better; the λ of each quality). A setting that raises the score at low and high
qualities on two clips is worth an RD run; the RD benchmark is what decides. A variant's
``"network"`` entry overrides fields of the grid network (``GridConfig``) instead, for
example ``{"block32": {"network": {"motion": 32}}}``; the others are the encoder's defaults
at each quality's λ (quarter pixels from quality 6).

Writes ``<out>/screen_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.screen samples/carphone.mp4 --groups 4 --preset medium --qualities 2 6 \\
        --variants '{"cost4": {"motion_bit_cost": 4}, "cost1": {"motion_bit_cost": 1}}' --tag motioncost_carphone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import torch

from benchmarks.warm_groups import fit_and_pack, read_frames
from codec.schedule import keep_freed_memory
from codec.video import open_video
from nirvana.config import check_names, check_ranges, fit_config
from nirvana.fit import LOG_MSE_SCALE
from nirvana.kinds import KINDS

DB_PER_LOSS = 1 / (LOG_MSE_SCALE * math.log(10) / 10)  # a unit of the psnr loss, in dB of mean PSNR


def score(psnr: float, bpp: float, rate_lambda: float) -> float:
    """Mean PSNR less the bits' worth at ``rate_lambda`` under the psnr loss, in dB.

    Example: ``score(30.0, 0.0, 0.01) == 30.0``.
    """
    return psnr - rate_lambda * bpp * DB_PER_LOSS


class VariantError(ValueError):
    """A variant's setting that no fit can take (raised before the first fit)."""


def screen(clip: str, variants: dict[str, dict], qualities: list[float], groups: int = 4,
           preset: str = "medium", start: int = 0) -> tuple[list[dict], int]:
    """One row per quality and variant (mean PSNR, bytes, bpp, score, seconds, and each
    group's PSNR and bytes), and the number of frames fitted (from frame ``start``, the first
    as a key group)."""
    kind = KINDS["grid"]
    with open_video(clip) as src:
        group = kind.default_group_size(src.info.width, src.info.height)
    frames = read_frames(clip, start, groups * group)
    n, height, width = frames.shape[:3]
    nets, configs = {}, {}
    for name, overrides in variants.items():  # every variant checked before the first fit
        try:
            network = overrides.get("network", {})
            check_names(kind.config_type, network, "network field")
            configs[name] = {q: fit_config(preset, q, "grid", **{k: v for k, v in overrides.items() if k != "network"})
                             for q in qualities}
            # the encoder's defaults at each quality's λ, then the variant's fields
            nets[name] = {q: dataclasses.replace(kind.default_config(width, height, cfg.rate_lambda), **network)
                          for q, cfg in configs[name].items()}
            for net in nets[name].values():
                check_ranges(net)
        except ValueError as error:
            raise VariantError(f"variant {name!r}: {error}") from None
    rows = []
    for quality in qualities:
        for name, overrides in variants.items():
            cfg = configs[name][quality]
            fitted = fit_and_pack(frames, nets[name][quality], cfg, cfg)
            psnr = sum(r["psnr"] * len(r["frame_psnrs"]) for r in fitted) / n
            size = sum(r["bytes"] for r in fitted)
            bpp = 8 * size / (n * height * width)
            rows.append(dict(variant=name, overrides=overrides, quality=quality, psnr=psnr, bytes=size, bpp=bpp,
                             score=score(psnr, bpp, cfg.rate_lambda),
                             seconds=sum(r["seconds"] for r in fitted),
                             groups=[dict(psnr=r["psnr"], bytes=r["bytes"]) for r in fitted]))
            print(json.dumps(rows[-1]), flush=True)
    return rows, n


def markdown(clip: str, frames: int, preset: str, rows: list[dict], start: int = 0) -> str:
    first = {q: next(r for r in rows if r["quality"] == q) for q in dict.fromkeys(r["quality"] for r in rows)}
    span = f"first {frames} frames" if start == 0 else f"frames {start}–{start + frames - 1}"
    lines = [f"# Fit screen: {clip}, {span}, preset {preset}", "",
             "Every group fitted under the variant; bytes are the packed group payloads. Score: mean "
             "PSNR less the bits' worth at the quality's λ under the psnr loss (dB, higher is better); "
             f"Δ against the first variant ({rows[0]['variant']}).", "",
             "| variant | settings | quality | PSNR (dB) | bytes | bpp | score | Δ score | s | groups (dB / B) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        groups = ", ".join(f"{g['psnr']:.2f} / {g['bytes']}" for g in r.get("groups", []))
        lines.append(f"| {r['variant']} | `{json.dumps(r['overrides'])}` | {r['quality']:g} | {r['psnr']:.3f} | "
                     f"{r['bytes']} | {r['bpp']:.4f} | {r['score']:.3f} | "
                     f"{r['score'] - first[r['quality']]['score']:+.3f} | {r['seconds']:.0f} | {groups} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--variants", required=True, help='JSON: {"name": {FitConfig overrides, "network": {GridConfig overrides}}, ...}')
    parser.add_argument("--qualities", type=float, nargs="+", default=[2.0, 6.0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--start", type=int, default=0, help="first frame (a key group starts there)")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="screen")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the encoder does, so that the seconds compare
    try:
        variants = json.loads(args.variants)
    except json.JSONDecodeError as error:
        raise SystemExit(f"error: --variants is not JSON ({error})") from None
    try:
        rows, frames = screen(args.clip, variants, args.qualities, args.groups, args.preset, args.start)
    except VariantError as error:
        raise SystemExit(f"error: {error}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(clip=args.clip, start=args.start, frames=frames, preset=args.preset, groups=args.groups)
    (out / f"screen_{args.tag}.json").write_text(json.dumps(dict(settings=settings, rows=rows), indent=2) + "\n")
    (out / f"screen_{args.tag}.md").write_text(markdown(args.clip, frames, args.preset, rows, args.start))


if __name__ == "__main__":
    main()
