"""Re-pack .nirv files with today's writer: what a change of the entropy coding alone is worth.

Every group's integers and steps are read from the file and packed again by
:func:`codec.bitstream.pack_group` (the current format version), into a new file beside the
output; the fit is untouched, so the PSNR stays the file's and only the bytes move. Reports
per file the bytes before and after, in all and per tensor name (``nirvana info``'s names),
and checks that the new file holds exactly the same integers. With ``--no-motion-context``
the motion tensors are packed as before format 6 (by the best single-table blob): the
context coder's share, measured on files that the current encoder wrote.

Usage::

    python -m benchmarks.repack a.nirv b.nirv --out benchmarks/results --tag motion_context
    python -m benchmarks.repack c.nirv --no-motion-context --tag motion_tables

Writes ``<out>/repack_<tag>.json`` and ``.md`` (and ``<file>.repacked.nirv`` beside each input
with ``--keep``). With ``--rd rd_X.json`` (a results file of ``benchmarks.rd --stats DIR``,
whose files ``DIR/<clip>_q<quality>.nirv`` are the inputs) it also writes
``<out>/repack_<tag>_rd.json``: those results with each codec point's bytes and bpp those of
its re-packed file, for :mod:`benchmarks.rd_merge`.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import rd
from codec.bitstream import NirvReader, NirvWriter, pack_group
from codec.decoder import group_payloads
from codec.info import tensor_names


def repack(path: Path, out: Path, motion_context: bool = True) -> dict:
    """Write ``path``'s groups re-packed to ``out`` (the motion tensors by a single table
    unless ``motion_context``); their sizes before and after."""
    before, after = defaultdict(int), defaultdict(int)
    with NirvReader(path) as reader:
        header, version = reader.header, reader.version
        names = tensor_names(header.kind, header.network)
        count = header.num_groups
        context = header.context_layout
        if context is not None and not motion_context:
            context = replace(context, motion=None)
        payloads = [g for _, g in group_payloads(reader, 0, count - 1)]
        frames = [reader.frame_range(i) for i in range(count)]
    with NirvWriter(out, header.size) as writer:
        prev = None
        for g, (start, stop) in zip(payloads, frames):
            old_bytes = list(g.tensor_bytes)
            data = pack_group(g, None if prev is None else prev.latents, context,
                              None if prev is None else prev.scales,
                              prev_tables=None if prev is None else prev.tables)
            for name, old, new in zip(names, old_bytes, g.tensor_bytes):
                before[name] += old
                after[name] += new
            writer.add_group(data, g.is_key, stop - start)
            prev = g
        size = writer.close(header)
    with NirvReader(out) as reader:
        for (_, g), h in zip(group_payloads(reader, 0, count - 1), payloads):
            if not all(np.array_equal(a, b) for a, b in zip(g.latents, h.latents)):
                raise AssertionError(f"{out}: re-packed integers differ from {path}'s")
    return {"file": str(path), "version": version, "motion_context": motion_context, "groups": count, "bytes": path.stat().st_size,
            "repacked_bytes": size, "tensor_bytes": dict(before), "repacked_tensor_bytes": dict(after)}


def repacked_points(doc: dict, rows: list[dict]) -> dict:
    """``doc`` (an rd results document) with each codec point whose file ``<clip>_q<quality>.nirv``
    was re-packed in ``rows`` given that file's bytes and bpp."""
    sizes = {(Path(r["file"]).name, r["bytes"]): r["repacked_bytes"] for r in rows}
    points = []
    for p in doc["points"]:
        name = (f"{p['clip']}_q{p['value']:g}.nirv", p["bytes"])  # that file, not a baseline's
        if p["method"] not in rd.ANCHORS and name in sizes:
            p = dict(p, bytes=sizes[name], bpp=p["bpp"] * sizes[name] / p["bytes"])
        points.append(p)
    return dict(doc, points=points)


def _markdown(rows: list[dict], tag: str) -> str:
    lines = [f"# Re-packed with the current writer: {tag}", "",
             "The same integers and steps (so the same PSNR), packed again (`benchmarks/repack.py`).", "",
             "| file | groups | bytes (format) | re-packed | change | motion bytes | re-packed | change |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        motion, new_motion = r["tensor_bytes"].get("motion", 0), r["repacked_tensor_bytes"].get("motion", 0)
        lines.append(
            f"| {Path(r['file']).name} | {r['groups']} | {r['bytes']} (v{r['version']}) | {r['repacked_bytes']} "
            f"| {100 * (r['repacked_bytes'] / r['bytes'] - 1):+.1f} % | {motion} | {new_motion} "
            f"| {100 * (new_motion / motion - 1) if motion else 0:+.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="repack")
    parser.add_argument("--keep", action="store_true", help="keep <file>.repacked.nirv beside each input")
    parser.add_argument("--rd", type=Path, metavar="JSON",
                        help="an rd results file whose codec points the inputs are (see the doc)")
    parser.add_argument("--no-motion-context", action="store_true",
                        help="pack motion tensors by a single table, as before format 6")
    args = parser.parse_args(argv)
    rows = []
    for path in args.files:
        out = path.with_suffix(".repacked.nirv")
        rows.append(repack(path, out, motion_context=not args.no_motion_context))
        if not args.keep:
            out.unlink()
        print(json.dumps({k: v for k, v in rows[-1].items() if not k.endswith("tensor_bytes")}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"repack_{args.tag}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / f"repack_{args.tag}.md").write_text(_markdown(rows, args.tag))
    if args.rd:
        doc = repacked_points(json.loads(args.rd.read_text()), rows)
        (args.out / f"repack_{args.tag}_rd.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
