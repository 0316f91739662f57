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
    rows, prev = [], None
    for start in range(0, args.frames, group):
        t0 = time.perf_counter()
        stack = frames[start:start + group]
        key = start == 0 or args.as_key
        fit = fitter.fit(tensor(stack), key=key, group_index=start // group)
        fitter.fit_cfg = replace(key_cfg, **fit_overrides)  # the later groups' settings
        payload = GroupPayload(fit.key, stack.shape[0], fit.iterations, fit.psnr, fit.latents, fit.steps)
        data = pack_group(payload, None if key else prev.latents, context, None if key else prev.scales)
        prev = payload
        rows.append(_row(start // group, fit, payload, data, time.perf_counter() - t0))
    later = rows[1:] or rows
    print(json.dumps(dict(fit=fit_overrides, net=net_overrides, as_key=args.as_key, groups=rows,
                          later_psnr=sum(r["psnr"] * len(r["frame_psnrs"]) for r in later)
                          / sum(len(r["frame_psnrs"]) for r in later),
                          later_bytes=sum(r["bytes"] for r in later))))


if __name__ == "__main__":
    main()
