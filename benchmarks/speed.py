"""Speed of the two hot loops on one device: fitting (encode) and rendering (decode).

For each frame size, with one network kind (``--model``, :mod:`nirvana.kinds`) at the
config and group size the codec picks for that size:

* **fit**: training iterations per second of a key group (the codec's own loop and loss,
  :class:`nirvana.fit.GroupFitter`, at the kind's medium preset with early stopping off), and
  the seconds per frame that makes at that preset's key budget;
* **decode render**: frames per second of rendering groups from their weights to 8-bit
  frames, batched as the decoder batches them (:func:`codec.decoder.auto_batch`); for the
  ``siren`` kind on CUDA, also with the plain torch layers instead of the fused Triton ones.

Frames and weights are seeded noise: the work per iteration does not depend on the content.
Writes ``<out>/speed_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.speed --device cuda --tag gpu_grid
    python -m benchmarks.speed --model siren --sizes 176x144 640x272 --fit-iterations 20 --tag cpu_siren
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from codec.bitstream import Header
from codec.decoder import auto_batch
from codec.schedule import check_device, configure_device
from nirvana.config import fit_config
from nirvana.fit import GroupFitter
from nirvana.kernels import torch_fallback
from nirvana.kinds import KINDS, Kind
from nirvana.network import weights_from_integers
from nirvana.render import to_uint8

DEFAULT_SIZES = ("176x144", "640x272", "1920x1080")
MAIN_FIELDS = {  # the config values the markdown table shows, per kind
    "siren": ("patch_size", "hidden", "channels"),
    "grid": ("levels", "channels", "hidden", "layers", "convs"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_speed(kind: Kind, cfg, group_size: int, width: int, height: int, device: torch.device,
              iterations: int) -> float:
    """Key-group training iterations per second (after a short warm-up fit)."""
    frames = torch.rand(group_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    frames = frames.to(device)
    medium = fit_config("medium", kind=kind.name, patience=10**9)

    def run(n: int) -> float:
        fitter = GroupFitter(kind, cfg, replace(medium, key_iterations=n),
                             height, width, device, group_size=group_size)
        _sync(device)
        t0 = time.perf_counter()
        fitter.fit(frames, key=True, group_index=0)
        _sync(device)
        return time.perf_counter() - t0

    run(3)
    return iterations / run(iterations)


def render_batch(kind: Kind, cfg, group_size: int, width: int, height: int) -> int:
    """Groups the decoder renders together for a file of this kind, config and size."""
    header = Header(width=width, height=height, num_frames=group_size, fps_num=1, fps_den=1,
                    group_size=group_size, key_interval=1, num_groups=1, kind=kind.name, network=cfg)
    return auto_batch(header)


def render_speed(kind: Kind, cfg, group_size: int, width: int, height: int, device: torch.device,
                 seconds: float, batch: int) -> float:
    """Frames per second of rendering ``batch`` groups at a time to 8-bit frames, as the decoder
    does."""
    models = [kind.make_model(cfg, group_size, height, width, torch.Generator().manual_seed(i))
              for i in range(batch)]
    # every tensor of the file, searched ones (grid motion) included, as the decoder has them
    weights = [weights_from_integers(m.integer_latents(), m.steps(), device) for m in models]

    def render() -> None:
        to_uint8(kind.render_groups(weights, cfg, group_size, height, width))
        _sync(device)

    with torch.no_grad():
        render()  # warm-up (and Triton compilation)
        done, t0 = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - t0 < seconds:
            render()
            done += batch * group_size
    return done / (time.perf_counter() - t0)


def measure(kind: Kind, width: int, height: int, device: torch.device, fit_iterations: int,
            render_seconds: float) -> dict:
    """One results row: the kind's default network for ``width × height``, fitted and rendered."""
    group_size = kind.default_group_size(width, height)
    cfg = kind.default_config(width, height)
    its = fit_speed(kind, cfg, group_size, width, height, device, fit_iterations)
    batch = render_batch(kind, cfg, group_size, width, height)
    row = {
        "size": f"{width}x{height}",
        "kind": kind.name,
        "group_size": group_size,
        "network": asdict(cfg),
        "macs_per_pixel": kind.macs_per_pixel(cfg, group_size, height, width),
        "render_batch": batch,
        "fit_iterations_per_second": its,
        "key_group_seconds_per_frame": fit_config("medium", kind=kind.name).key_iterations / its / group_size,
        "render_fps": render_speed(kind, cfg, group_size, width, height, device, render_seconds, batch),
    }
    if device.type == "cuda" and kind.name == "siren":  # the fused Triton layers are siren's
        with torch_fallback():
            row["render_fps_torch"] = render_speed(kind, cfg, group_size, width, height, device,
                                                   render_seconds, batch)
    return row


def run(sizes: Sequence[str] = DEFAULT_SIZES, *, model: str = "grid", device: str = "cpu",
        fit_iterations: int = 100, render_seconds: float = 2.0, out: str | Path = "benchmarks/results",
        tag: str = "cpu", log: bool = True) -> dict:
    """Measure every size with the ``model`` kind, write ``speed_<tag>.{json,md}`` under ``out``,
    return the JSON."""
    kind = KINDS[model]
    dev = torch.device(check_device(device))
    configure_device(device)
    rows = []
    for size in sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows.append(measure(kind, width, height, dev, fit_iterations, render_seconds))
        if log:
            print(json.dumps(rows[-1]), file=sys.stderr)
    results = {
        "tag": tag,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
        "settings": {"model": model, "fit_iterations": fit_iterations, "render_seconds": render_seconds,
                     "key_iterations": fit_config("medium", kind=model).key_iterations},
        "rows": rows,
    }
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"speed_{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    (path / f"speed_{tag}.md").write_text(_markdown(results))
    return results


def _network_cell(row: dict) -> str:
    """The kind's main config values, e.g. ``levels 3, channels 1, hidden 16, layers 2, convs 2``."""
    return ", ".join(f"{name} {row['network'][name]}" for name in MAIN_FIELDS[row["kind"]])


def _markdown(results: dict) -> str:
    settings = results["settings"]
    torch_layers = any("render_fps_torch" in r for r in results["rows"])
    head = "| size | kind | G | network | fit it/s | key group s/frame | decode render fps |"
    rule = "|---|---|---|---|---|---|---|"
    if torch_layers:
        head += " decode render fps, torch layers |"
        rule += "---|"
    lines = [f"# Speed of the {settings['model']} network on {results['device']} "
             f"({results['environment']['torch']})", "",
             "Fit: training iterations per second of one key group; s/frame at the medium "
             f"preset's {settings['key_iterations']} key iterations per group of G frames. "
             "Decode render: frames per second rendered from weights to 8-bit frames, batched "
             "as the decoder batches them.", "", head, rule]
    for r in results["rows"]:
        line = (f"| {r['size']} | {r['kind']} | {r['group_size']} | {_network_cell(r)} | "
                f"{r['fit_iterations_per_second']:.1f} | {r['key_group_seconds_per_frame']:.2f} | "
                f"{r['render_fps']:.1f} |")
        if torch_layers:
            line += f" {r.get('render_fps_torch', float('nan')):.1f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; see the module docstring for usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="WIDTHxHEIGHT")
    parser.add_argument("--model", choices=sorted(KINDS), default="grid", help="network kind")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fit-iterations", type=int, default=100)
    parser.add_argument("--render-seconds", type=float, default=2.0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args(argv)
    results = run(args.sizes, model=args.model, device=args.device, fit_iterations=args.fit_iterations,
                  render_seconds=args.render_seconds, out=args.out, tag=args.tag)
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
