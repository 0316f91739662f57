"""Where a file's motion bytes go, and what a spatial prediction of them would save.

A warm group's motion tensor holds, per frame and block, the change of the displacement from
the frame before (:mod:`nirvana.motion`): frame 0's values are displacements from the
previous group's last frame, the later frames' are frame-to-frame changes. For each warm group
of a ``.nirv`` made with motion, this re-codes the motion tensor with the file's own
entropy coder (:func:`codec.entropy.encode_ints`) and reports:

* ``coded``: the blob as the encoder chooses it (intra, or residual against the previous group);
* ``frame0`` / ``later``: frame 0 and the later frames coded as two blobs;
* ``median``: frame 0 predicted per block from the median of its left, upper and upper-right
  neighbours (H.264's motion vector prediction), the rest as they are, in one blob.

Usage::

    nirvana encode samples/carphone.mp4 -o /tmp/cp.nirv --quality 5 --frames 0:64
    python -m benchmarks.motion_bytes /tmp/cp.nirv --out benchmarks/results --tag carphone_q5

Writes ``<out>/motion_bytes_<tag>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from codec.bitstream import NirvReader
from codec.decoder import group_payloads
from codec.entropy import coded_size
from codec.info import tensor_names


def median_residual(field: np.ndarray) -> np.ndarray:
    """``field`` ``(..., By, Bx)`` less its causal median prediction: the median of the left,
    upper and upper-right neighbours (upper-left at the right edge), one neighbour where
    only one exists, 0 at the first block."""
    rows, cols = field.shape[-2:]
    out = field.copy()
    for i in range(rows):
        for j in range(cols):
            left = field[..., i, j - 1] if j else None
            up = field[..., i - 1, j] if i else None
            if up is None:
                guess = 0 if left is None else left
            elif left is None:
                guess = up
            else:
                corner = field[..., i - 1, j + 1] if j + 1 < cols else field[..., i - 1, j - 1]
                guess = np.median(np.stack([left, up, corner]), axis=0).astype(field.dtype)
            out[..., i, j] -= guess
    return out


def motion_rows(path: str) -> list[dict]:
    """One row per warm group of the file at ``path``: its bytes, the motion tensor's coded
    bytes and the alternatives' (module doc)."""
    rows = []
    with NirvReader(path) as reader:
        header = reader.header
        names = tensor_names(header.kind, header.network)
        if "motion" not in names:
            raise SystemExit(f"{path}: the file has no motion tensor (made with --motion 0 or siren)")
        at = names.index("motion")
        for index, payload in group_payloads(reader, 0, header.num_groups - 1):
            motion = payload.latents[at].astype(np.int64)
            if not payload.is_key:
                rows.append(dict(group=index, bytes=len(reader.read_group(index)),
                                 coded=payload.tensor_bytes[at],
                                 nonzero_frame0=int(np.count_nonzero(motion[:1])),
                                 nonzero_later=int(np.count_nonzero(motion[1:])),
                                 frame0=_size(motion[:1]), later=_size(motion[1:]),
                                 median=_size(np.concatenate([median_residual(motion[:1]), motion[1:]]))))
    return rows


def _size(values: np.ndarray) -> int:
    return sum(coded_size(values))


def markdown(path: str, rows: list[dict]) -> str:
    total = {k: sum(r[k] for r in rows) for k in ("bytes", "coded", "frame0", "later", "median")}
    lines = [f"# Motion bytes: {path}", "",
             "Per warm group: the group's payload bytes, the motion tensor as coded (with its record), "
             "frame 0 and the later frames coded apart, and frame 0 by median prediction "
             "(benchmarks/motion_bytes.py).", "",
             "| group | bytes | motion coded | nonzero frame 0 / later | frame 0 | later | median |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['group']} | {r['bytes']} | {r['coded']} | {r['nonzero_frame0']} / {r['nonzero_later']} | "
              f"{r['frame0']} | {r['later']} | {r['median']} |" for r in rows]
    lines.append(f"| all | {total['bytes']} | {total['coded']} | | {total['frame0']} | {total['later']} | "
                 f"{total['median']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default="motion")
    args = parser.parse_args()
    rows = motion_rows(args.file)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"motion_bytes_{args.tag}.json").write_text(json.dumps(dict(file=args.file, rows=rows), indent=2) + "\n")
    (out / f"motion_bytes_{args.tag}.md").write_text(markdown(args.file, rows))


if __name__ == "__main__":
    main()
