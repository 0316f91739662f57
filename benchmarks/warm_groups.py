"""What limits warm groups: fit a clip's key group, then its warm groups under a variant.

The key group (the first G frames from ``--start``) is fitted with the preset's settings
(seeded, so it is the same in every run whose network is the same); the following groups get
the variant's FitConfig overrides (``--fit '{"iterations": 300}'``), or are fitted as key
groups (``--as-key``). A network override (``--net '{"halve_time": 1}'``) changes every
group. Prints one JSON line: each group's PSNR, bytes (its payload as the encoder packs it),
bytes per tensor and seconds.

Example (bikes' second scene, three groups, quality 4, preset fast):
    python -m benchmarks.warm_groups samples/bikes.mp4 --start 30 --frames 24 --fit '{"iterations": 300}'
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from codec.bitstream import GroupPayload, pack_group
from codec.bitstream.group import ContextLayout
from codec.schedule import keep_freed_memory
from codec.video import open_video
from nirvana.config import FitConfig, fit_config
from nirvana.fit import GroupFitter
from nirvana.kinds import KINDS


def _row(index: int, fit, payload: GroupPayload, data: bytes, seconds: float) -> dict:
    return dict(group=index, key=fit.key, psnr=fit.psnr, bytes=len(data), tensor_bytes=payload.tensor_bytes,
                seconds=seconds, frame_psnrs=[round(p, 2) for p in fit.frame_psnrs])


def fit_and_pack(frames: np.ndarray, net, key_cfg: FitConfig, later_cfg: FitConfig,
                 as_key: bool = False) -> list[dict]:
    """Fit ``frames`` ``(n, H, W, 3)`` uint8 group by group with the grid kind's group size:
    the first as a key group under ``key_cfg``, the others under ``later_cfg`` (as warm
    groups, or as key groups with ``as_key``), and pack each payload as the encoder does.
    One row per group: PSNR, the payload's bytes, bytes per tensor, seconds, frame PSNRs."""
    height, width = frames.shape[1:3]
    kind = KINDS["grid"]
    group = kind.default_group_size(width, height)
    context = ContextLayout.of("grid", net)
    fitter = GroupFitter(kind, net, key_cfg, height, width, group_size=group)
    rows, prev = [], None
    for start in range(0, len(frames), group):
        t0 = time.perf_counter()
        stack = frames[start:start + group]
        key = start == 0 or as_key
        fit = fitter.fit(torch.from_numpy(stack).permute(0, 3, 1, 2).float() / 255, key=key,
                         group_index=start // group)
        fitter.fit_cfg = later_cfg
        payload = GroupPayload(fit.key, stack.shape[0], fit.iterations, fit.psnr, fit.latents, fit.steps)
        data = pack_group(payload, None if key else prev.latents, context, None if key else prev.scales,
                          prev_tables=None if key else prev.tables)
        prev = payload
        rows.append(_row(start // group, fit, payload, data, time.perf_counter() - t0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--fit", default="{}", help="FitConfig overrides of the warm groups (JSON)")
    parser.add_argument("--net", default="{}", help="GridConfig overrides of every group (JSON)")
    parser.add_argument("--as-key", action="store_true", help="fit the later groups as key groups")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the encoder does, so that the seconds compare
    fit_overrides, net_overrides = json.loads(args.fit), json.loads(args.net)

    frames = read_frames(args.clip, args.start, args.frames)
    height, width = frames.shape[1:3]
    net = KINDS["grid"].default_config(width, height, **net_overrides)
    key_cfg = fit_config(args.preset, args.quality, kind="grid")
    rows = fit_and_pack(frames, net, key_cfg, replace(key_cfg, **fit_overrides), args.as_key)
    later = rows[1:] or rows
    print(json.dumps(dict(fit=fit_overrides, net=net_overrides, as_key=args.as_key, groups=rows,
                          later_psnr=sum(r["psnr"] * len(r["frame_psnrs"]) for r in later)
                          / sum(len(r["frame_psnrs"]) for r in later),
                          later_bytes=sum(r["bytes"] for r in later))))


def read_frames(clip: str, start: int, count: int) -> np.ndarray:
    """Frames ``[start, start + count)`` of ``clip`` as ``(n, H, W, 3)`` uint8."""
    with open_video(clip, start=start, stop=start + count) as src:
        return np.stack(list(src.frames()))


if __name__ == "__main__":
    main()
