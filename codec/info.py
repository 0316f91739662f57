"""What ``nirvana info`` shows: a .nirv file's header, each group's sizes and stats, totals.

Every group is parsed (and its residual chain rebuilt), so a damaged chunk is reported here
as it would be by the decoder. Nothing is rendered.

Example:
    >>> print(format_description(describe("carphone.nirv")))   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict

from codec.bitstream import NirvReader
from codec.decoder import network_config
from nirvana.network import tensor_shapes


def describe(path: str | os.PathLike[str]) -> dict:
    """Header, per-group stats and totals of a .nirv file, as plain data."""
    with NirvReader(path) as reader:
        h = reader.header
        shapes = tensor_shapes(network_config(h))
        groups, prev = [], None
        for i in range(reader.num_groups):
            g = reader.read_payload(i, shapes, prev)
            prev = g.latents
            groups.append({
                "index": i, "key": g.is_key, "frames": g.num_frames, "iterations": g.iterations,
                "psnr": round(g.psnr, 3), "bytes": g.weight_bytes + g.side_bytes,
                "weight_bytes": g.weight_bytes, "side_bytes": g.side_bytes,
                "residual_tensors": sum(g.modes), "tensors": len(g.modes),
            })
        file_bytes = reader.file_size
    pixels = h.width * h.height * h.num_frames
    seconds = h.num_frames * h.fps_den / h.fps_num
    payload = sum(g["bytes"] for g in groups)
    return {
        "path": str(path),
        "header": asdict(h),
        "weights_per_group": sum(math.prod(s) for s in shapes),
        "groups": groups,
        "totals": {
            "file_bytes": file_bytes,
            "weight_bytes": sum(g["weight_bytes"] for g in groups),
            "side_bytes": sum(g["side_bytes"] for g in groups),
            "container_bytes": file_bytes - payload,
            "key_groups": sum(g["key"] for g in groups),
            "bpp": file_bytes * 8 / pixels,
            "kbps": file_bytes * 8 / seconds / 1000,
            "mean_group_psnr": sum(g["psnr"] * g["frames"] for g in groups) / h.num_frames,
        },
    }


def format_description(d: dict) -> str:
    """A human-readable table of :func:`describe`'s result."""
    h, t = d["header"], d["totals"]
    lines = [
        f"{d['path']}: NIRVANA v1, {h['width']}x{h['height']}, {h['num_frames']} frames at "
        f"{h['fps_num']}/{h['fps_den']} fps",
        f"network: group {h['group_size']}, patch {h['patch_size']}, hidden {h['hidden']}x"
        f"{h['hidden_layers']}, channels {h['channels']}, w0 {h['w0']:g}, "
        f"{d['weights_per_group']} weights/group; key interval {h['key_interval']}",
        "",
        f"{'group':>5} {'kind':>4} {'frames':>6} {'iters':>6} {'PSNR':>7} {'bytes':>8} "
        f"{'weights':>8} {'side':>6} {'resid':>6}",
    ]
    for g in d["groups"]:
        lines.append(
            f"{g['index']:>5} {'key' if g['key'] else 'res':>4} {g['frames']:>6} {g['iterations']:>6} "
            f"{g['psnr']:>7.2f} {g['bytes']:>8} {g['weight_bytes']:>8} {g['side_bytes']:>6} "
            f"{g['residual_tensors']:>3}/{g['tensors']:<2}"
        )
    lines += [
        "",
        f"total {t['file_bytes']} bytes: weights {t['weight_bytes']}, side info {t['side_bytes']}, "
        f"container {t['container_bytes']}; {t['key_groups']} key groups",
        f"bpp {t['bpp']:.4f}  {t['kbps']:.1f} kbit/s  mean PSNR (encoder) {t['mean_group_psnr']:.2f} dB",
    ]
    return "\n".join(lines)
