"""Write the small real-content test clips in tests/data/ from the shared data folder.

The tests use only the files this writes, never the shared folder itself; rerun this after
changing a cut below (and update tests/data/SOURCES.md). Run from the repository root:

    python tests/data/make_small_data.py

It reads ``../shared/data`` beside the repository (see its SOURCES.md for origins).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

FOREMAN_FRAMES = 6  # test_scene_cut_becomes_a_key_group needs 6 foreman frames at 176x144
CISCO_SIZE, CISCO_FRAMES = (320, 192), 4
CISCO_CROP = (144, 8, 160, 96)  # x, y, width, height (even, for 4:2:0): the woman's face and hands
YACHT_CROP = (240, 400, 480, 270)  # x, y, width, height: the people aboard and the water


def cut_y4m(src: Path, dst: Path, frames: int) -> None:
    """The header and first ``frames`` frames of an 8-bit 4:2:0 y4m, byte for byte."""
    data = src.read_bytes()
    header_end = data.index(b"\n") + 1
    fields = dict((f[:1], f[1:]) for f in data[:header_end].split()[1:])
    frame = int(fields[b"W"]) * int(fields[b"H"]) * 3 // 2
    pos = header_end
    for _ in range(frames):
        assert data[pos : pos + 5] == b"FRAME"
        pos = data.index(b"\n", pos) + 1 + frame
    dst.write_bytes(data[:pos])


def cut_yuv420(src: Path, dst: Path, size: tuple[int, int], frames: int, crop: tuple[int, int, int, int]) -> None:
    """The first ``frames`` frames of a raw 8-bit 4:2:0 file, each cropped to ``crop``."""
    (w, h), (x, y, cw, ch) = size, crop
    assert x % 2 == y % 2 == cw % 2 == ch % 2 == 0
    frame = np.fromfile(src, np.uint8, count=frames * w * h * 3 // 2).reshape(frames, -1)
    luma = frame[:, : w * h].reshape(frames, h, w)
    u = frame[:, w * h : w * h * 5 // 4].reshape(frames, h // 2, w // 2)
    v = frame[:, w * h * 5 // 4 :].reshape(frames, h // 2, w // 2)
    planes = [luma[:, y : y + ch, x : x + cw]] + [p[:, y // 2 : (y + ch) // 2, x // 2 : (x + cw) // 2] for p in (u, v)]
    dst.write_bytes(np.concatenate([p.reshape(frames, -1) for p in planes], axis=1).tobytes())


def cut_png(src: Path, dst: Path, crop: tuple[int, int, int, int]) -> None:
    x, y, cw, ch = crop
    with Image.open(src) as image:
        image.crop((x, y, x + cw, y + ch)).save(dst, optimize=True)


def main() -> None:
    foreman = OUT / f"foreman_qcif{FOREMAN_FRAMES}.y4m"
    cut_y4m(SHARED / "foreman_qcif8.y4m", foreman, FOREMAN_FRAMES)
    cisco = OUT / "CiscoVT2people_{}x{}_12fps.yuv".format(*CISCO_CROP[2:])
    cut_yuv420(SHARED / "CiscoVT2people_320x192_12fps.yuv", cisco, CISCO_SIZE, CISCO_FRAMES, CISCO_CROP)
    yacht = OUT / "YachtRide_{}x{}_crop.png".format(*YACHT_CROP[2:])
    cut_png(SHARED / "YachtRide_1920x1080_ref.png", yacht, YACHT_CROP)
    for path in (foreman, cisco, yacht):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
