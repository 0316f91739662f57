"""Decode speed of context-coded grid values: context evaluation and entropy decoding.

For each frame size, one group of the default ``grid`` network (its group size, levels and
time slots) gets seeded, spatially correlated integer values in every level and a seeded
context model; every level is coded with the context model (:mod:`codec.context_coder`) and
decoded from the coarsest, as a decoder does. The time is split into context evaluation
(features and the fixed-point MLP, :mod:`nirvana.context`) and entropy decoding (grouping by
table and ANS), and given as grid values per second and as frames per second of the group.
The group's motion tensor (seeded clusters of changes, like a searched one) is coded as a
warm group's (:mod:`codec.motion_coder`, seeded by a previous tensor) and its decode timed
apart (``motion s``; the last column counts it too). Writes ``<out>/context_speed_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.context_speed --tag cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from codec.context_coder import decode_level, encode_level
from codec.motion_coder import decode_motion, encode_motion
from nirvana.context import FixedPointContext, context_shapes
from nirvana.kinds import KINDS
from nirvana.motion import motion_shape

SIZES = ("176x144", "640x272", "1920x1080")


def seeded_level(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Integers with a smooth part (cells of 2×2) and noise, like trained latents."""
    c, t, h, w = shape
    base = rng.normal(0, 2, (c, t, (h + 1) // 2, (w + 1) // 2))
    smooth = np.repeat(np.repeat(base, 2, axis=2), 2, axis=3)[:, :, :h, :w]
    return np.round(smooth + rng.normal(0, 0.6, shape)).astype(np.int32)


def seeded_motion(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A motion tensor ``(G, 2, By, Bx)``: zero but for a few regions per frame (about a
    tenth of the blocks) whose blocks change by -2..2 together, and two large changes."""
    motion = np.zeros(shape, np.int32)
    frames, _, rows, cols = shape
    for t in range(frames):
        for _ in range(rng.integers(0, 3) * max(1, rows * cols // 100)):
            y, x = rng.integers(0, max(1, rows - 2)), rng.integers(0, max(1, cols - 2))
            region = (t, slice(None), slice(y, y + rng.integers(2, 5)), slice(x, x + rng.integers(2, 6)))
            motion[region] = rng.integers(-2, 3, motion[region].shape)
    motion.flat[rng.integers(motion.size, size=2)] = (40, -255)
    return motion


def measure(width: int, height: int, repeats: int = 2) -> dict:
    kind = KINDS["grid"]
    group = kind.default_group_size(width, height)
    cfg = kind.default_config(width, height, context=8)
    shapes = kind.tensor_shapes(cfg, group, height, width)[:cfg.levels]
    rng = np.random.default_rng(0)
    levels = [seeded_level(rng, s) for s in shapes]
    weights = [rng.integers(-30, 31, s).astype(np.int32) for s in context_shapes(cfg.context, cfg.levels)]
    model = FixedPointContext(weights, [1 / 64, 1 / 16, 1 / 256, 1 / 64, 1 / 32])
    coded = [encode_level(v, levels[i + 1] if i + 1 < len(levels) else None, None, model, i)
             for i, v in enumerate(levels)]
    moves = motion_shape(group, height, width, cfg.motion)
    previous, motion = seeded_motion(rng, moves), seeded_motion(rng, moves)
    motion_coded = encode_motion(motion, previous)
    best = None
    for _ in range(repeats):
        seconds: dict[str, float] = {}
        streams = [c.stream() for c in coded]  # each level's symbols, as a decoder's ANS stream holds them
        t0 = time.perf_counter()
        for i in reversed(range(len(levels))):
            coarser = levels[i + 1] if i + 1 < len(levels) else None
            out = decode_level(coded[i].data, shapes[i], coarser, None, model, i, seconds, streams[i])
            assert np.array_equal(out, levels[i])
        seconds["total"] = time.perf_counter() - t0
        stream = motion_coded.stream()
        t0 = time.perf_counter()
        assert np.array_equal(decode_motion(motion_coded.data, moves, previous, stream), motion)
        seconds["motion"] = time.perf_counter() - t0
        if best is None or seconds["total"] < best["total"]:
            best = seconds
    values = sum(v.size for v in levels)
    return {"size": f"{width}x{height}", "group_size": group, "levels": cfg.levels, "values": values,
            "bytes": sum(c.size for c in coded), **{f"{k}_s": round(v, 4) for k, v in best.items()},
            "motion_values": motion.size, "motion_bytes": motion_coded.size,
            "values_per_s": round(values / best["total"]), "frames_per_s": round(group / best["total"], 2),
            "frames_per_s_with_motion": round(group / (best["total"] + best["motion"]), 2)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.context_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [measure(*map(int, s.split("x"))) for s in args.sizes]
    result = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"context_speed_{args.tag}.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Context-model decode speed ({args.tag}, {result['threads']} threads)", "",
             "| size | G | values/group | context s | entropy s | total s | values/s | frames/s "
             "| motion values | motion s | frames/s with motion |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['group_size']} | {r['values']} | {r['context_s']} | {r['entropy_s']} | "
              f"{r['total_s']} | {r['values_per_s']:,} | {r['frames_per_s']} | {r['motion_values']} "
              f"| {r['motion_s']} | {r['frames_per_s_with_motion']} |" for r in rows]
    (out / f"context_speed_{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
