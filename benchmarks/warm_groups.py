"""What limits warm groups: fit a clip's key group once, then its warm groups under variants.

The key group (the first G frames from ``--start``) is fitted with the preset's settings and
its fitter state cached under ``--cache``; each run then fits the following groups with
the variant's FitConfig overrides (``--fit '{"iterations": 300}'``), or as key groups
(``--as-key``), and prints one JSON line: each group's PSNR, bytes (its payload as the
encoder packs it), bytes per tensor and seconds. A network override (``--net
'{"halve_time": 1}'``) changes the key group too, so it gets its own cache entry.

Example (bikes' second scene, three groups, quality 4, preset fast):
    python -m benchmarks.warm_groups samples/bikes.mp4 --start 30 --frames 24 --fit '{"iterations": 300}'
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from codec.bitstream import GroupPayload, pack_group
from codec.bitstream.group import ContextLayout
from codec.video import open_video
from nirvana.config import fit_config
from nirvana.fit import GroupFitter
from nirvana.kinds import KINDS


def _row(index: int, fit, payload: GroupPayload, data: bytes, seconds: float) -> dict:
    return dict(group=index, key=fit.key, psnr=fit.psnr, bytes=len(data), tensor_bytes=payload.tensor_bytes,
                seconds=seconds, frame_psnrs=[round(p, 2) for p in fit.frame_psnrs])


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
    parser.add_argument("--cache", default="/tmp/nirvana-warm-groups")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fit_overrides, net_overrides = json.loads(args.fit), json.loads(args.net)

    with open_video(args.clip, start=args.start, stop=args.start + args.frames) as src:
        frames = np.stack(list(src.frames()))
    height, width = frames.shape[1:3]
    kind = KINDS["grid"]
    net = kind.default_config(width, height, **net_overrides)
    group = kind.default_group_size(width, height)
    key_cfg = fit_config(args.preset, args.quality, kind="grid")
    context = ContextLayout.of("grid", net)

    def tensor(stack: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(stack).permute(0, 3, 1, 2).float() / 255

    fitter = GroupFitter(kind, net, key_cfg, height, width, group_size=group)
    digest = zlib.crc32(json.dumps([Path(args.clip).name, args.start, args.quality, args.preset,
                                    net_overrides], sort_keys=True).encode())
    cache = Path(args.cache) / f"key_{digest:08x}.pt"
    if cache.exists():  # our own file, written below
        state, prev, first = torch.load(cache, weights_only=False)
        fitter.__dict__.update(state)
    else:
        t0 = time.perf_counter()
        fit = fitter.fit(tensor(frames[:group]), key=True, group_index=0)
        prev = GroupPayload(True, group, fit.iterations, fit.psnr, fit.latents, fit.steps)
        first = _row(0, fit, prev, pack_group(prev, None, context, None), time.perf_counter() - t0)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(({k: v for k, v in fitter.__dict__.items() if k != "kind"}, prev, first), cache)

    fitter.fit_cfg = replace(key_cfg, **fit_overrides)
    rows = [first]
    for start in range(group, args.frames, group):
        t0 = time.perf_counter()
        stack = frames[start:start + group]
        fit = fitter.fit(tensor(stack), key=args.as_key, group_index=start // group)
        payload = GroupPayload(fit.key, stack.shape[0], fit.iterations, fit.psnr, fit.latents, fit.steps)
        data = pack_group(payload, None if fit.key else prev.latents, context, None if fit.key else prev.scales)
        prev = payload
        rows.append(_row(start // group, fit, payload, data, time.perf_counter() - t0))
    later = rows[1:]
    print(json.dumps(dict(fit=fit_overrides, net=net_overrides, as_key=args.as_key, groups=rows,
                          later_psnr=sum(r["psnr"] * len(r["frame_psnrs"]) for r in later)
                          / sum(len(r["frame_psnrs"]) for r in later),
                          later_bytes=sum(r["bytes"] for r in later))))


if __name__ == "__main__":
    main()
