"""Merge rate-distortion runs made in parallel (one per quality, say) into one results file.

Points of the same clip, method and setting are kept once. ``--baseline OLD.json`` adds the
codec points of an earlier results file under another method name (``--baseline-method``),
so that the plot and the BD-rate table compare the two versions of this codec; the BD-rate
of the new codec against that baseline is written into the notes and the JSON.

Usage::

    python -m benchmarks.rd samples/carphone.mp4 --frames 120 --qualities 2 6 --tag part_a ...
    python -m benchmarks.rd samples/carphone.mp4 --frames 120 --qualities 4 8 --tag part_b ...
    python -m benchmarks.rd_merge grid_context_carphone benchmarks/results/rd_part_a.json \\
        benchmarks/results/rd_part_b.json --baseline benchmarks/results/rd_grid_carphone.json \\
        --baseline-method nirvana-grid-nocontext
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from benchmarks import rd
from codec.bdrate import bd_rate

KEY = ("clip", "method", "param", "value")


def merge(tag: str, parts: Sequence[str], out: str = "benchmarks/results", baseline: str | None = None,
          baseline_method: str = "baseline", note: str = "") -> dict:
    docs = [json.loads(Path(p).read_text()) for p in parts]
    points: list[dict] = []
    for doc in docs:
        for p in doc["points"]:
            if not any(all(q[k] == p[k] for k in KEY) for q in points):
                points.append(p)
    codec_methods = {p["method"] for p in points if p["method"] not in rd.ANCHORS}
    if baseline:
        old = json.loads(Path(baseline).read_text())["points"]
        points += [dict(p, method=baseline_method) for p in old if p["method"] in codec_methods]
    points.sort(key=lambda p: (p["clip"], p["method"] not in rd.ANCHORS, p["method"], p["value"]))
    settings = dict(docs[0]["settings"])
    crfs = settings.pop("crfs")
    for derived in ("anchors", "metrics", "bd_rate"):
        settings.pop(derived, None)
    settings["qualities"] = sorted({p["value"] for p in points if p["method"] in codec_methods})
    settings["merged_from"] = [str(p) for p in parts]
    results = rd.collect_results(tag, settings, crfs, points)
    notes = [note] if note else []
    if baseline:
        gains = {}
        for clip in dict.fromkeys(p["clip"] for p in points):
            for method in sorted(codec_methods):
                try:
                    gains[f"{clip} {method}"] = bd_rate(*rd._curve(points, clip, baseline_method),
                                                        *rd._curve(points, clip, method))
                except ValueError:  # the curves do not overlap
                    gains[f"{clip} {method}"] = None
        results["bd_rate_vs_baseline"] = gains
        notes += [f"`{baseline_method}`: the codec points of `{Path(baseline).name}`. BD-rate against "
                  "them: " + ", ".join(f"{k} {'n/a' if v is None else f'{v:+.1f} %'}" for k, v in gains.items())
                  + "."]
    rd._write(results, Path(out), tag, notes + [""] if notes else ())
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rd_merge", description=__doc__.split("\n")[0])
    parser.add_argument("tag")
    parser.add_argument("parts", nargs="+", help="rd_*.json files to merge")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--baseline", help="an earlier rd_*.json whose codec points to compare against")
    parser.add_argument("--baseline-method", default="baseline", help="method name for those points")
    parser.add_argument("--note", default="", help="a markdown line under the header")
    args = parser.parse_args(argv)
    results = merge(args.tag, args.parts, args.out, args.baseline, args.baseline_method, args.note)
    print(json.dumps(results.get("bd_rate_vs_baseline", {}), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
