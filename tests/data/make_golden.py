"""Rebuild the golden .nirv files of the current format version and print their md5s.

Run from the repository root after a deliberate change to the writer, a kind's render or
the entropy coder; then update the md5s in ``tests/test_golden.py``. Older files must never
be rebuilt: ``golden_v1.nirv`` was written by the version-1 writer (commit 668c2bf),
``golden_v2.nirv`` by the version-2 writer before the context model (commit fb630b0, a
6-byte grid config block), ``golden_v2_context.nirv`` (context-coded grid levels) by the
version-2 writer of commit 2179a45, ``golden_v3.nirv`` (compact payloads: inherited
scales, empty blobs; context-coded levels; whole-pixel motion in its warm groups, a 9-byte
grid config block) by the writer of commit 2512982, ``golden_v3_subpel.nirv`` (two-frame
groups with the chain in its key groups and half-pixel, overlapped motion in its warm
groups, a 12-byte grid config block) by the writer of commit fac1b14.
``golden_v4_cut.nirv`` (a scene cut: the clip's four frames, then the same turned upside
down, in groups of up to 3, so its groups hold frames 0-2, 3 (ended early before the cut),
4-6 (a key group from the cut) and 7 (warm)) by the writer of commit 411fe31.
``golden_v5.nirv`` is the same encode written by the version-5 writer of commit c395955:
short blob lengths in the records, packed raw blobs, ANS words without their trailing zero
bytes. ``golden_v6.nirv`` is the same recipe written by the version-6 writer of commit
4e48ede: motion tensors coded with adaptive context counts. ``golden_v7.nirv`` is the same
recipe written by the version-7 writer of commit a17b686: one ANS stream per group and
context tables that adapt. ``golden_v8.nirv`` is the same recipe written by the version-8
writer of commit 1979678: context tables split by the neighbours' misses.
``golden_v9.nirv`` (what this script builds) is the same recipe written by the version-9
writer: motion between whole pixels read by the cubic filter (a 13-byte grid config block).

    python tests/data/make_golden.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import tempfile

import numpy as np
import torch

import codec
from codec.bitstream import NirvReader
from codec.decoder import decoded_groups
from codec.video import VideoWriter, open_video

DATA = Path(__file__).resolve().parent


def decoded_md5(path: Path) -> str:
    """md5 of every decoded frame, ``(n, H, W, 3)`` uint8 in C order."""
    with NirvReader(path) as reader:
        frames = torch.cat([g for _, g in decoded_groups(reader, 0, reader.header.num_frames)])
    return hashlib.md5(frames.permute(0, 2, 3, 1).contiguous().numpy().tobytes()).hexdigest()


def main() -> None:
    with open_video(DATA / "CiscoVT2people_160x96_12fps.yuv") as src:
        frames = np.stack(list(src.frames()))
    frames = np.concatenate([frames, frames[:, ::-1]])  # the cut
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "cut.mkv"
        with VideoWriter(joined, 160, 96, 12, lossless=True) as writer:
            writer.write(np.ascontiguousarray(frames))
        codec.encode(joined, DATA / "golden_v9.nirv", model="grid", preset="fast", key_iterations=40,
                     iterations=20, group_size=3, key_interval=3, threads=1, quality=8)
    for name in ("golden_v1.nirv", "golden_v2.nirv", "golden_v2_context.nirv", "golden_v3.nirv",
                 "golden_v3_subpel.nirv", "golden_v4_cut.nirv", "golden_v5.nirv", "golden_v6.nirv", "golden_v7.nirv",
                 "golden_v8.nirv", "golden_v9.nirv"):
        print(name, decoded_md5(DATA / name))


if __name__ == "__main__":
    main()
