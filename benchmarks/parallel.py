"""Encode time with 1 and N workers, and proof that the files are byte-identical.

Usage::

    python -m benchmarks.parallel samples/carphone.mp4 --frames 0:60 --key-interval 5 --workers 1 2
    python -m benchmarks.parallel samples/carphone.mp4 --model siren --threads 2

Every run gives each worker ``--threads`` CPU threads (default 1): a fit's floating-point sums
depend on the thread count, so files are byte-identical only at the same count. Writes
``<out>/parallel.json`` and ``parallel.md``. Timings on a shared machine are noisy: compare
the ratio within one run, not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import codec
from codec.encoder import DEFAULT_MODEL
from nirvana.kinds import KINDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--frames", default="0:60", help="START:STOP")
    ap.add_argument("--key-interval", type=int, default=5)
    ap.add_argument("--model", choices=sorted(KINDS), default=DEFAULT_MODEL, help="network kind")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per worker, in every run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    start, stop = (int(v) for v in args.frames.split(":"))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.workers:
            path = Path(tmp) / f"w{n}.nirv"
            t0 = time.perf_counter()
            report = codec.encode(args.input, path, model=args.model, preset=args.preset,
                                  key_interval=args.key_interval, start=start, stop=stop, workers=n,
                                  threads=args.threads)
            runs.append({"workers": n, "seconds": time.perf_counter() - t0, "psnr": report.psnr,
                         "bpp": report.bpp, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
            print(json.dumps(runs[-1]), flush=True)
    base = runs[0]["seconds"]
    for r in runs:
        r["speedup"] = base / r["seconds"]
    results = {"machine": platform.platform(), "input": args.input, "frames": args.frames,
               "key_interval": args.key_interval, "model": args.model, "preset": args.preset,
               "threads": args.threads, "runs": runs,
               "identical": len({r["sha256"] for r in runs}) == 1}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parallel.json").write_text(json.dumps(results, indent=1))
    lines = ["# Encode with 1 and N workers", "",
             f"{args.input} frames {args.frames}, {args.model} network, preset {args.preset}, key "
             f"interval {args.key_interval}, {args.threads} thread(s) per worker; machine "
             f"{results['machine']}. Files byte-identical: "
             f"{'yes' if results['identical'] else 'NO'}.", "",
             "| workers | seconds | speed-up | PSNR | bpp |", "|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['seconds']:.1f} | {r['speedup']:.2f}x | {r['psnr']:.2f} | "
              f"{r['bpp']:.4f} |" for r in runs]
    (args.out / "parallel.md").write_text("\n".join(lines) + "\n")
    return 0 if results["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
