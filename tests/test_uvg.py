"""UVG runner: a tiny synthetic UVG-named raw .yuv through this codec and every anchor."""

import json
import math

import numpy as np
import pytest

from benchmarks.anchors import ANCHORS
from benchmarks.uvg import crop_box, find_sequences, run

WIDTH, HEIGHT, FRAMES = 64, 48, 4


def _write_yuv(path, width=WIDTH, height=HEIGHT, frames=FRAMES):
    """Smooth moving gradients as 8-bit planar 4:2:0."""
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
    with open(path, "wb") as f:
        for t in range(frames):
            y = 60 + 40 * np.sin((xx + 3 * t) / 9) + 40 * np.cos((yy - 2 * t) / 7) + xx
            u = 128 + 30 * np.sin((cx + cy + t) / 5)
            v = 128 + 30 * np.cos((cx - cy - t) / 6)
            for plane in (y, u, v):
                f.write(np.clip(plane, 16, 235).astype(np.uint8).tobytes())


@pytest.mark.parametrize("crop, model", [(None, "grid"), ((32, 32), "siren")])
def test_run_writes_rd_results_for_codec_and_anchors(tmp_path, crop, model):
    folder = tmp_path / "uvg"
    folder.mkdir()
    _write_yuv(folder / f"Beauty_{WIDTH}x{HEIGHT}_120fps_420_8bit_YUV.yuv")
    out = tmp_path / "results"
    results = run(folder, qualities=[5], frames=3, crop=crop, crfs={name: (30,) for name in ANCHORS},
                  out=out, tag="t", model=model, iterations=2, key_iterations=5, log=False)
    for suffix in ("json", "csv", "md", "png"):
        assert (out / f"rd_t.{suffix}").is_file()
    saved = json.loads((out / "rd_t.json").read_text())
    assert saved["settings"]["sequences"] == ["Beauty"]
    assert "Bosphorus" in saved["settings"]["missing"]
    assert saved["settings"]["frames"] == [3]
    width, height = crop or (WIDTH, HEIGHT)
    methods = {p["method"]: p for p in saved["points"]}
    assert set(methods) == {f"nirvana-{model}", *ANCHORS}
    for point in saved["points"]:
        assert point["clip"] == "Beauty"
        assert (point["frames"], point["width"], point["height"]) == (3, width, height)
        assert point["bpp"] > 0
        assert math.isfinite(point["psnr_rgb"]) and point["psnr_rgb"] > 10
    markdown = (out / "rd_t.md").read_text()
    assert "BT.601" in markdown and "published" in markdown and "C3 (INR, CVPR 2024)" in markdown
    setup = {"grid": "grid network, preset medium, G=default, iterations 2",
             "siren": "siren network, preset medium, G=3, 32x32 patches, iterations 2"}[model]
    assert setup in markdown
    assert results["points"] == saved["points"]


def test_find_sequences_by_prefix_case_insensitive(tmp_path):
    for name in ("beauty_8x8_120fps_420_8bit_YUV.yuv", "BeautyX_8x8.yuv", "ReadySetGo_8x8_120fps.yuv",
                 "Jockey_8x8_120fps_420_10bit_YUV.yuv", "Jockey_8x8_120fps_420_8bit_YUV.yuv"):
        (tmp_path / name).write_bytes(b"")
    found, missing = find_sequences(tmp_path)
    assert {k: v.name for k, v in found.items()} == {
        "Beauty": "beauty_8x8_120fps_420_8bit_YUV.yuv",
        "Jockey": "Jockey_8x8_120fps_420_8bit_YUV.yuv",
        "ReadySteadyGo": "ReadySetGo_8x8_120fps.yuv",
    }
    assert missing == ["Bosphorus", "HoneyBee", "ShakeNDry", "YachtRide"]


def test_crop_box_and_bad_requests(tmp_path):
    assert crop_box(64, 48, (32, 32)) == (16, 8, 32, 32)
    assert crop_box(1920, 1080, (1920, 1080)) == (0, 0, 1920, 1080)
    with pytest.raises(ValueError, match="larger"):
        crop_box(64, 48, (64, 64))
    with pytest.raises(ValueError, match="none of the UVG sequences"):
        run(tmp_path, qualities=[5], log=False)
    with pytest.raises(ValueError, match="quality"):
        run(tmp_path, log=False)
    with pytest.raises(ValueError, match="siren only"):
        run(tmp_path, qualities=[5], patch_size=32, log=False)
