"""Peak memory of encode and decode against video length: it must not grow with frames.

Builds a 1080p raw 4:2:0 ``.yuv`` clip by panning across a real UVG frame (from the shared
test data, or any RGB image given with ``--image``), then encodes and decodes its first N
frames for each N in ``--frames`` in a fresh process each, with tiny iteration budgets (the
point is the memory, not the quality), and records the peak resident set size (RSS) of each
process, the wall time, and decode frames per second.

Usage::

    python -m benchmarks.memory                       # 30 and 300 frames at 1920x1080
    python -m benchmarks.memory --frames 6 12 --size 320x192 --out /tmp/mem   # a smoke run
    python -m benchmarks.memory --model siren

Writes ``<out>/memory.json`` and ``memory.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from skimage import io as skio

from codec.encoder import DEFAULT_MODEL
from nirvana.kinds import KINDS

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "Bosphorus_1920x1080_frame0.png"


def write_panning_yuv(image: np.ndarray, width: int, height: int, frames: int, path: Path) -> None:
    """Write ``frames`` frames panning 4 px per frame across ``image`` as raw yuv420p."""
    tiled = np.concatenate([image, image[:, ::-1]], axis=1)  # mirror so the pan never jumps
    tiled = np.concatenate([tiled, tiled], axis=0)
    with open(path, "wb") as f:
        for t in range(frames):
            x = (4 * t) % (tiled.shape[1] - width)
            rgb = np.ascontiguousarray(tiled[:height, x:x + width])
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.write(yuv.to_ndarray().tobytes())


_RUN_AND_REPORT_RSS = (
    "import resource, sys\n"
    "from codec.cli import main\n"
    "main(sys.argv[1:], standalone_mode=False)\n"
    "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def _child(args: list[str]) -> dict:
    """Run one ``nirvana`` command in a fresh interpreter; its own peak RSS (MiB) and time."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _RUN_AND_REPORT_RSS, *args, "-q"], check=True,
                       capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    kib = int(p.stdout.split("peak_rss_kib")[-1])
    return {"peak_rss_mib": kib / 1024, "seconds": seconds}


def measure(frames: int, width: int, height: int, image: np.ndarray, work: Path, model: str) -> dict:
    """Encode (with the ``model`` network kind) and decode ``frames`` panning frames."""
    src = work / f"pan_{width}x{height}_25fps_420_8bit.yuv"
    write_panning_yuv(image, width, height, frames, src)
    nirv, out = work / f"pan{frames}.nirv", work / f"pan{frames}.mp4"
    enc = _child(["encode", str(src), "-o", str(nirv), "--model", model, "--key-iterations", "2",
                  "--iterations", "1"])
    dec = _child(["decode", str(nirv), "-o", str(out)])
    result = {"frames": frames, "width": width, "height": height, "model": model,
              "file_bytes": nirv.stat().st_size, "encode": enc, "decode": dec,
              "decode_fps": frames / dec["seconds"]}
    for p in (src, nirv, out):
        p.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[30, 300])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--model", choices=sorted(KINDS), default=DEFAULT_MODEL, help="network kind")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    image = _fit_image(skio.imread(args.image)[..., :3], width, height)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.frames):
            runs.append(measure(n, width, height, image, Path(tmp), args.model))
            print(json.dumps(runs[-1]), flush=True)
    results = {"machine": platform.platform(), "python": platform.python_version(), "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(results, indent=1))
    (args.out / "memory.md").write_text(_markdown(results))
    return 0


def _fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Reflect-pad ``image`` if it is smaller than the clip."""
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    return image


def _markdown(results: dict) -> str:
    lines = ["# Peak memory against video length", "",
             f"Machine: {results['machine']}. Tiny iteration budgets (key 2, others 1): this "
             "measures memory and decode speed, not quality. RSS is each process's peak.", "",
             "| frames | size | model | encode peak RSS MiB | encode s | decode peak RSS MiB | decode s "
             "| decode fps |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(f"| {r['frames']} | {r['width']}x{r['height']} | {r['model']} | "
                     f"{r['encode']['peak_rss_mib']:.0f} | {r['encode']['seconds']:.1f} | "
                     f"{r['decode']['peak_rss_mib']:.0f} | "
                     f"{r['decode']['seconds']:.1f} | {r['decode_fps']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
