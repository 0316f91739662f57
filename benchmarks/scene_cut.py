"""Bits and iterations follow content: encode two clips joined at a scene cut.

Joins the first N frames of two clips (the second centre-cropped to the first's size) into a
lossless clip, encodes it with per-group stats, and tabulates each group's frames, kind (key
or residual), iterations, bytes and PSNR. The group before the cut should end at it, the
group from the cut should be a key group with the key budget, and groups with more motion
should cost more bits. N need not be a multiple of the group size.

Usage::

    python samples/fetch_samples.py bikes
    python -m benchmarks.scene_cut samples/carphone.mp4 samples/bikes.mp4 --frames 28
    python -m benchmarks.scene_cut samples/carphone.mp4 samples/bikes.mp4 --model siren --frames 30

Writes ``<out>/scene_cut.json`` and ``scene_cut.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import codec
from codec.encoder import DEFAULT_MODEL
from codec.video import VideoWriter, open_video
from nirvana.kinds import KINDS


def centre_crop(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    top, left = (frame.shape[0] - height) // 2, (frame.shape[1] - width) // 2
    return frame[top:top + height, left:left + width]


def join(first: Path, second: Path, frames: int, out: Path) -> tuple[int, int]:
    """Write ``frames`` of each clip back to back (lossless); return the size."""
    with open_video(first, stop=frames) as a, open_video(second, stop=frames) as b:
        w, h = a.info.width, a.info.height
        with VideoWriter(out, w, h, a.info.fps, lossless=True) as writer:
            for f in a.frames():
                writer.write(f)
            for f in b.frames():
                writer.write(np.ascontiguousarray(centre_crop(f, w, h)))
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--frames", type=int, default=30, help="frames taken from each clip")
    ap.add_argument("--model", choices=sorted(KINDS), default=DEFAULT_MODEL, help="network kind")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "joined.mkv"
        join(Path(args.first), Path(args.second), args.frames, joined)
        report = codec.encode(joined, Path(tmp) / "joined.nirv", model=args.model, preset=args.preset,
                              progress=True)
    groups = [{k: getattr(g, k) for k in ("index", "key", "first_frame", "frames", "iterations", "psnr", "bytes")}
              for g in report.groups]
    cut_group = next((g["index"] for g in groups if g["first_frame"] == args.frames), None)
    results = {"first": args.first, "second": args.second, "frames_each": args.frames,
               "cut_at_group": cut_group, "model": args.model, "preset": args.preset,
               "group_size": report.network["group_size"], "psnr": report.psnr,
               "bpp": report.bpp, "groups": groups}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scene_cut.json").write_text(json.dumps(results, indent=1))
    lines = ["# Scene cut: bits and iterations follow content", "",
             f"{args.frames} frames of {args.first}, then {args.frames} of {args.second} (centre "
             f"crop); the group from the cut: {cut_group}. {args.model} network, G="
             f"{report.network['group_size']}, preset {args.preset}; overall "
             f"{report.psnr:.2f} dB at {report.bpp:.4f} bpp.", "",
             "| group | frames | kind | iterations | bytes | PSNR |", "|---|---|---|---|---|---|"]
    lines += [f"| {g['index']} | {g['first_frame']}-{g['first_frame'] + g['frames'] - 1} | "
              f"{'key' if g['key'] else 'residual'} | {g['iterations']} | "
              f"{g['bytes']} | {g['psnr']:.2f} |" for g in groups]
    (args.out / "scene_cut.md").write_text("\n".join(lines) + "\n")
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
