"""The rate-distortion harness end to end in quick mode, and the quality knob's direction."""

import json

from benchmarks.rd import QUICK_CRFS, run
from conftest import CARPHONE


def test_quick_mode_end_to_end_and_quality_orders_rate_and_psnr(tmp_path):
    results = run([str(CARPHONE)], frames=3, qualities=[2, 8], crfs={"x264": QUICK_CRFS["x264"]},
                  out=tmp_path, tag="q", preset="fast", log=False)
    for suffix in ("json", "csv", "md", "png"):
        assert (tmp_path / f"rd_q.{suffix}").is_file()
    saved = json.loads((tmp_path / "rd_q.json").read_text())
    ours = sorted((p for p in saved["points"] if p["method"] == "nirvana"), key=lambda p: p["value"])
    low, high = ours
    # the quality knob: more quality means a larger file and a higher PSNR
    assert high["bytes"] > low["bytes"]
    assert high["psnr_rgb"] > low["psnr_rgb"]
    # bpp is the .nirv file's size over the pixels
    assert low["bpp"] == low["bytes"] * 8 / (176 * 144 * 3)
    assert len([p for p in saved["points"] if p["method"] == "x264"]) == 2
    assert "x264" in (tmp_path / "rd_q.md").read_text()
    assert results["tag"] == "q"


def test_reused_anchor_points_are_not_encoded_again(tmp_path, monkeypatch):
    first = run([str(CARPHONE)], frames=2, crfs={"x264": (38,)}, anchors_only=True, out=tmp_path,
                tag="a", log=False)

    def refuse(*args, **kwargs):
        raise AssertionError("an anchor was encoded although its points were given")

    monkeypatch.setattr("benchmarks.rd.encode_anchor", refuse)
    again = run([str(CARPHONE)], frames=2, crfs={"x264": (38,)}, anchors_only=True, out=tmp_path,
                tag="b", reuse_anchors=tmp_path / "rd_a.json", log=False)
    assert again["points"] == first["points"]
    assert again["settings"]["reused_anchors"] == str(tmp_path / "rd_a.json")
