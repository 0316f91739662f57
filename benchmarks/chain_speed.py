"""Training speed of a chained ``grid`` group: each frame's move as the decoder's gather and as
the training's sparse matrix (:class:`nirvana.grid_model.SparseMove`), in one process.

For each size, the codec's default network for that size and an 8-frame group whose frames
after the first are all chained, with seeded small motion, seeded frames and seeded
latents. One iteration is the fit's work: render, squared error plus the rate estimate,
backward, an Adam step, repeated for at least ``--seconds`` after one warm-up
iteration. The two ways alternate (gather, sparse, gather, sparse) so
that a busy machine slows both alike. Writes ``<out>/chain_speed_<tag>.json`` and ``.md``.

Usage::

    python -m benchmarks.chain_speed --sizes 176x144 640x272 1920x1080 --seconds 10 --tag cpu_1thread
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nirvana.grid_model import GridNet
from nirvana.kinds import KINDS
from nirvana.motion import displacements

GROUP = 8


def measure(width: int, height: int, seconds: float) -> dict:
    """Seconds per training iteration and seconds to make the moves, per way, twice each."""
    cfg = KINDS["grid"].default_config(width, height)
    net = GridNet(cfg, GROUP, height, width, torch.Generator().manual_seed(0))
    seeded = torch.Generator().manual_seed(1)
    net.motion.copy_(torch.randint(-2, 3, net.motion.shape, generator=seeded))
    net.chain.fill_(1)
    net.chain[0] = 0
    with torch.no_grad():
        net.quant.weight.normal_(0, 2, generator=seeded)
    moves = displacements(net.motion, cfg.subpel)
    target = torch.rand(GROUP, 3, height, width, generator=seeded)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step() -> None:
        out, symbols = net.predict()
        loss = ((out - target) ** 2).mean() + 1e-6 * net.coded_bits(symbols, [])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    row: dict = {"size": f"{width}x{height}", "gather": [], "sparse": []}
    for way in ("gather", "sparse", "gather", "sparse"):
        t0 = time.perf_counter()
        net.moves = net._gathers(moves, net.chain, sparse=way == "sparse")  # at any size
        build = time.perf_counter() - t0
        step()  # warm-up
        done, t0 = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - t0 < seconds:
            step()
            done += 1
        row[way].append({"seconds_per_iteration": (time.perf_counter() - t0) / done, "iterations": done,
                         "build_seconds": build})
    best = {way: min(r["seconds_per_iteration"] for r in row[way]) for way in ("gather", "sparse")}
    row["speedup"] = best["gather"] / best["sparse"]
    return row


def run(sizes: list[str], seconds: float, out: Path, tag: str) -> dict:
    """Measure every size (``WxH``) and write ``chain_speed_<tag>.json`` and ``.md`` in ``out``."""
    rows = []
    for size in sizes:
        width, height = map(int, size.split("x"))
        rows.append(measure(width, height, seconds))
        print(json.dumps(rows[-1]), flush=True)
    results = {"threads": torch.get_num_threads(), "seconds": seconds, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"chain_speed_{tag}.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# Training a chained group: gather vs sparse move ({results['threads']} thread(s))", "",
             "| size | gather s/it | sparse s/it | speedup (best of two) | sparse build s |", "|---|---|---|---|---|"]
    for r in rows:
        gather, sparse = (" / ".join(f"{x['seconds_per_iteration']:.3f}" for x in r[way]) for way in ("gather", "sparse"))
        lines.append(f"| {r['size']} | {gather} | {sparse} | {r['speedup']:.2f}× | {r['sparse'][-1]['build_seconds']:.2f} |")
    (out / f"chain_speed_{tag}.md").write_text("\n".join(lines) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["176x144", "640x272"])
    parser.add_argument("--seconds", type=float, default=10.0, help="least time of each measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run(args.sizes, args.seconds, Path(args.out), args.tag)


if __name__ == "__main__":
    main()
