"""Speed of the two hot loops on one device: fitting (encode) and rendering (decode).

For each frame size, with the network the codec picks for that size:

* **fit**: training iterations per second of a key group (the codec's own loop and loss,
  :class:`nirvana.fit.GroupFitter`), and the seconds per frame that makes at the medium
  preset's key budget;
* **render**: frames per second of rendering groups from their weights, batched as the
  decoder batches them, with the fused Triton layers and with the plain torch layers (the
  two differ only on CUDA).

Frames are seeded noise: the work per iteration does not depend on the content. Writes
``<out>/speed_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.speed --device cuda --tag gpu
    python -m benchmarks.speed --sizes 176x144 640x272 --fit-iterations 20 --tag cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from codec.decoder import auto_batch
from codec.schedule import check_device, configure_device
from nirvana.config import FitConfig, NetworkConfig
from nirvana.fit import GroupFitter
from nirvana.kernels import torch_fallback
from nirvana.model import NirvanaNet
from nirvana.patches import PatchGrid
from nirvana.render import render_groups

DEFAULT_SIZES = ("176x144", "640x272", "1920x1080")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_speed(cfg: NetworkConfig, width: int, height: int, device: torch.device,
              iterations: int) -> float:
    """Key-group training iterations per second (after a short warm-up fit)."""
    frames = torch.rand(cfg.group_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    frames = frames.to(device)

    def run(n: int) -> float:
        fitter = GroupFitter(cfg, FitConfig(key_iterations=n, min_iterations=n, patience=10**9),
                             height, width, device)
        _sync(device)
        t0 = time.perf_counter()
        fitter.fit(frames, key=True, group_index=0)
        _sync(device)
        return time.perf_counter() - t0

    run(3)
    return iterations / run(iterations)


def render_speed(cfg: NetworkConfig, width: int, height: int, device: torch.device,
                 seconds: float) -> float:
    """Frames per second of rendering batches of groups, as the decoder does."""
    grid = PatchGrid(height, width, cfg.patch_size)
    batch = auto_batch(grid)
    weights = [NirvanaNet(cfg, torch.Generator().manual_seed(i)).exact_weights() for i in range(batch)]
    weights = [[w.to(device) for w in ws] for ws in weights]
    with torch.no_grad():
        render_groups(weights, grid, cfg)  # warm-up (and Triton compilation)
        _sync(device)
        done, t0 = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - t0 < seconds:
            render_groups(weights, grid, cfg)
            _sync(device)
            done += batch * cfg.group_size
    return done / (time.perf_counter() - t0)


def run(sizes: Sequence[str] = DEFAULT_SIZES, *, device: str = "cpu", fit_iterations: int = 100,
        render_seconds: float = 2.0, out: str | Path = "benchmarks/results", tag: str = "cpu",
        log: bool = True) -> dict:
    """Measure every size, write ``speed_<tag>.{json,md}`` under ``out``, return the JSON."""
    dev = torch.device(check_device(device))
    configure_device(device)
    rows = []
    for size in sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        cfg = NetworkConfig.for_resolution(width, height)
        its = fit_speed(cfg, width, height, dev, fit_iterations)
        row = {
            "size": f"{width}x{height}",
            "network": {"group_size": cfg.group_size, "patch_size": cfg.patch_size,
                        "hidden": cfg.hidden, "channels": cfg.channels},
            "patches": PatchGrid(height, width, cfg.patch_size).count,
            "fit_iterations_per_second": its,
            "key_group_seconds_per_frame": FitConfig().key_iterations / its / cfg.group_size,
            "render_fps": render_speed(cfg, width, height, dev, render_seconds),
        }
        if dev.type == "cuda":
            with torch_fallback():
                row["render_fps_torch"] = render_speed(cfg, width, height, dev, render_seconds)
        rows.append(row)
        if log:
            print(json.dumps(row), file=sys.stderr)
    results = {
        "tag": tag,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
        "settings": {"fit_iterations": fit_iterations, "render_seconds": render_seconds},
        "rows": rows,
    }
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"speed_{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    (path / f"speed_{tag}.md").write_text(_markdown(results))
    return results


def _markdown(results: dict) -> str:
    cuda = any("render_fps_torch" in r for r in results["rows"])
    head = "| size | network (G, P, hidden, C) | fit it/s | key group s/frame | render fps |"
    rule = "|---|---|---|---|---|"
    if cuda:
        head += " render fps, torch layers |"
        rule += "---|"
    lines = [f"# Speed on {results['device']} ({results['environment']['torch']})", "",
             "Fit: training iterations per second of one key group; s/frame at the medium "
             "preset's 600 key iterations per group of G frames. Render: decoder-style batched "
             "rendering from weights.", "", head, rule]
    for r in results["rows"]:
        n = r["network"]
        line = (f"| {r['size']} | {n['group_size']}, {n['patch_size']}, {n['hidden']}, {n['channels']} | "
                f"{r['fit_iterations_per_second']:.1f} | {r['key_group_seconds_per_frame']:.2f} | "
                f"{r['render_fps']:.1f} |")
        if cuda:
            line += f" {r.get('render_fps_torch', float('nan')):.1f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring for usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="WIDTHxHEIGHT")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fit-iterations", type=int, default=100)
    parser.add_argument("--render-seconds", type=float, default=2.0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args(argv)
    results = run(args.sizes, device=args.device, fit_iterations=args.fit_iterations,
                  render_seconds=args.render_seconds, out=args.out, tag=args.tag)
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
