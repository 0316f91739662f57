"""What ``nirvana info`` shows: a .nirv file's header, each group's sizes and stats, totals.

Every group is parsed (and its residual chain rebuilt), so a damaged chunk is reported here
as it would be by the decoder. Nothing is rendered. Besides the per-group table, the bytes
are broken down per tensor of the network (for ``grid``: each latent level and each
synthesis tensor), summed over groups, and the encoder statistics carried in each group
(iterations and PSNR, which the decoder does not need) are counted separately. A file over
the limits of :mod:`codec.limits` is refused before any group is parsed, as by the decoder.

Example:
    >>> print(format_description(describe("carphone.nirv")))   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict

from codec.limits import open_nirv
from codec.bitstream.group import CARRIED, CONTEXT, RESIDUAL, SHARED_STREAM
from codec.decoder import group_shapes
from nirvana.kinds import KINDS


def tensor_names(kind: str, network) -> list[str]:
    """Readable names of a kind's tensors in file order.

    >>> from nirvana.grid import GridConfig
    >>> tensor_names("grid", GridConfig(levels=2, layers=1, convs=1))[:8]
    ['level0', 'level1', 'linear0.w', 'linear0.b', 'linear1.w', 'linear1.b', 'conv0.w', 'conv0.b']
    >>> tensor_names("grid", GridConfig(levels=2, layers=1, convs=1))[8:]
    ['context.w1', 'context.b1', 'context.w2', 'context.b2', 'context.offsets']
    """
    if kind == "grid":
        names = [f"level{i}" for i in range(network.levels)]
        for i in range(network.layers + 1):
            names += [f"linear{i}.w", f"linear{i}.b"]
        for i in range(network.convs):
            names += [f"conv{i}.w", f"conv{i}.b"]
        if network.context:
            names += ["context.w1", "context.b1", "context.w2", "context.b2", "context.offsets"]
        if network.motion:
            names += ["motion", "chain"] if network.chain else ["motion"]
        return names
    names = []
    for i in range(network.hidden_layers + 1):
        names += [f"stem{i}.w", f"stem{i}.b"]
    return names + ["conv0.w", "conv0.b", "conv1.w", "conv1.b"]


def _finite(x: float) -> float | None:
    """JSON has no NaN or infinity: such stats become null."""
    return round(x, 3) if math.isfinite(x) else None


def describe(path: str | os.PathLike[str]) -> dict:
    """Header, per-group stats, per-tensor bytes and totals of a .nirv file, as plain data."""
    with open_nirv(path) as reader:
        h = reader.header
        shapes = group_shapes(h)
        names = tensor_names(h.kind, h.network)
        per_tensor = [0] * len(shapes)
        chain_at = names.index("chain") if "chain" in names else None
        groups, prev = [], None
        for i in range(reader.num_groups):
            g = prev = reader.read_payload(i, shapes, prev)
            per_tensor = [a + b for a, b in zip(per_tensor, g.tensor_bytes)]
            groups.append({
                "index": i, "key": g.is_key, "first_frame": reader.frame_range(i)[0],
                "frames": g.num_frames, "iterations": g.iterations,
                "psnr": _finite(g.psnr), "bytes": g.weight_bytes + g.side_bytes,
                "weight_bytes": g.weight_bytes, "side_bytes": g.side_bytes,
                "residual_tensors": sum(m in (RESIDUAL, CARRIED) for m in g.modes),
                "context_tensors": sum(m == CONTEXT for m in g.modes), "tensors": len(g.modes),
                "head_bytes": g.head_bytes, "stats_bytes": g.stats_bytes,
                "chained_frames": None if chain_at is None else int(sum(v == 1 for v in g.latents[chain_at].tolist())),
            })
        file_bytes = reader.file_size
        version = reader.version
    pixels = h.width * h.height * h.num_frames
    seconds = h.num_frames * h.fps_den / h.fps_num
    payload = sum(g["bytes"] for g in groups)
    psnrs = [(g["psnr"], g["frames"]) for g in groups if g["psnr"] is not None]
    header = {k: v for k, v in asdict(h).items() if k != "network"}
    return {
        "path": str(path),
        "version": version,
        "header": header,
        "network": asdict(h.network),
        "values_per_group": sum(math.prod(s) for s in shapes),
        "macs_per_pixel": round(KINDS[h.kind].macs_per_pixel(h.network, h.group_size, h.height, h.width), 1),
        "tensors": [{"name": n, "shape": list(s), "bytes": b}
                    for n, s, b in zip(names, shapes, per_tensor)],
        "groups": groups,
        "totals": {
            "file_bytes": file_bytes,
            "weight_bytes": sum(g["weight_bytes"] for g in groups),
            "side_bytes": sum(g["side_bytes"] for g in groups),
            "stats_bytes": sum(g["stats_bytes"] for g in groups),
            "container_bytes": file_bytes - payload,
            "key_groups": sum(g["key"] for g in groups),
            "bpp": file_bytes * 8 / pixels,
            "kbps": file_bytes * 8 / seconds / 1000,
            "mean_group_psnr": (sum(p * f for p, f in psnrs) / sum(f for _, f in psnrs)) if psnrs else None,
        },
    }


def _group_kind(g: dict) -> str:
    """key, res (warm), or chain (warm, its frames moved from the frame before)."""
    return "key" if g["key"] else "chain" if g.get("chained_frames") else "res"


def _frame_span(g: dict) -> str:
    """``first-last`` frame of a group (a group ends early before a scene cut)."""
    last = g["first_frame"] + g["frames"] - 1
    return str(last) if g["frames"] == 1 else f"{g['first_frame']}-{last}"


def format_description(d: dict) -> str:
    """A human-readable table of :func:`describe`'s result."""
    h, t, net = d["header"], d["totals"], d["network"]
    config = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in net.items()
                       if k != "group_size")
    lines = [
        f"{d['path']}: NIRVANA format v{d['version']}, {h['width']}x{h['height']}, "
        f"{h['num_frames']} frames at {h['fps_num']}/{h['fps_den']} fps",
        f"network: {h['kind']} ({config}); group {h['group_size']} frames, "
        f"{d['values_per_group']} coded values/group, {d['macs_per_pixel']:g} MAC/pixel to render; "
        f"key interval {h['key_interval']}",
        "",
        f"{'group':>5} {'kind':>5} {'frames':>11} {'iters':>6} {'PSNR':>7} {'bytes':>8} "
        f"{'weights':>8} {'side':>6} {'resid':>6} {'ctx':>3}",
    ]
    for g in d["groups"]:
        psnr = f"{g['psnr']:>7.2f}" if g["psnr"] is not None else f"{'-':>7}"
        lines.append(
            f"{g['index']:>5} {_group_kind(g):>5} {_frame_span(g):>11} {g['iterations']:>6} "
            f"{psnr} {g['bytes']:>8} {g['weight_bytes']:>8} {g['side_bytes']:>6} "
            f"{g['residual_tensors']:>3}/{g['tensors']:<2} {g['context_tensors']:>3}"
        )
    shared = " (its share of the group's ANS stream)" if d["version"] >= SHARED_STREAM else ""
    lines += ["", f"bytes per tensor, all groups (coded data{shared} + model + record):"]
    lines += [f"  {x['name']:<16} {'x'.join(map(str, x['shape'])):>14} {x['bytes']:>9}" for x in d["tensors"]]
    mean = t["mean_group_psnr"]
    lines += [
        "",
        f"total {t['file_bytes']} bytes: weights {t['weight_bytes']}, side info {t['side_bytes']} "
        f"(of which encoder stats {t['stats_bytes']}), container {t['container_bytes']}; "
        f"{t['key_groups']} key groups",
        f"bpp {t['bpp']:.4f}  {t['kbps']:.1f} kbit/s  mean PSNR (encoder) "
        + (f"{mean:.2f} dB" if mean is not None else "-"),
    ]
    return "\n".join(lines)
