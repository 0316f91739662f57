"""The rate-distortion harness end to end in quick mode, and the quality knob's direction."""

import json

import pytest

from benchmarks.rd import QUICK_CRFS, codec_method, run
from conftest import CARPHONE


def test_quick_mode_end_to_end_and_quality_orders_rate_and_psnr(tmp_path):
    results = run([str(CARPHONE)], frames=3, qualities=[2, 8], crfs={"x264": QUICK_CRFS["x264"]},
                  out=tmp_path, tag="q", preset="fast", encode_options={"group_size": 3, "key_iterations": 80},
                  log=False)
    for suffix in ("json", "csv", "md", "png"):
        assert (tmp_path / f"rd_q.{suffix}").is_file()
    saved = json.loads((tmp_path / "rd_q.json").read_text())
    assert saved["settings"]["model"] == "grid"  # the default kind
    ours = sorted((p for p in saved["points"] if p["method"] == codec_method("grid")),
                  key=lambda p: p["value"])
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


def test_update_replaces_only_the_clips_given(tmp_path):
    other = tmp_path / "other.mp4"
    other.write_bytes(CARPHONE.read_bytes())
    run([str(CARPHONE), str(other)], frames=[2, 3], crfs={"x264": (38,)}, anchors_only=True,
        out=tmp_path, tag="u", log=False)
    again = run([str(other)], frames=4, crfs={"x264": (38, 43)}, anchors_only=True, out=tmp_path,
                tag="u", update=True, log=False)
    assert [(p["clip"], p["frames"], p["value"]) for p in again["points"]] == [
        ("carphone", 2, 38), ("other", 4, 38), ("other", 4, 43)]
    assert again["settings"]["frames"] == [2, 4]
    assert set(again["bd_rate"]) == {"carphone", "other"}


def test_update_reads_legacy_codec_points_as_siren(tmp_path):
    run([str(CARPHONE)], frames=2, crfs={"x264": (38,)}, anchors_only=True, out=tmp_path, tag="l",
        log=False)
    legacy = json.loads((tmp_path / "rd_l.json").read_text())
    legacy["points"].append({**legacy["points"][0], "method": "nirvana", "param": "quality"})
    (tmp_path / "rd_l.json").write_text(json.dumps(legacy))
    other = tmp_path / "other.mp4"
    other.write_bytes(CARPHONE.read_bytes())
    again = run([str(other)], frames=2, crfs={"x264": (38,)}, anchors_only=True, out=tmp_path,
                tag="l", update=True, log=False)
    assert [(p["clip"], p["method"]) for p in again["points"]] == [
        ("carphone", "x264"), ("carphone", "nirvana-siren"), ("other", "x264")]


def test_merge_keeps_each_point_once_and_compares_with_a_baseline(tmp_path):
    from benchmarks import rd
    from benchmarks.rd_merge import merge

    def point(method, value, bpp, psnr):
        return {k: 1 for k in rd.FIELDS} | {"clip": "c", "method": method, "param": "p", "value": value,
                                            "bpp": bpp, "psnr_rgb": psnr}

    anchors = [point("x264", crf, bpp, psnr) for crf, bpp, psnr in ((20, 0.4, 36.0), (30, 0.1, 31.0))]
    settings = {"clips": ["c"], "frames": [9]}
    for name, qualities in (("a", [(2, 0.1, 30.0)]), ("b", [(6, 0.4, 35.0)])):
        doc = rd.collect_results(name, settings, {"x264": [20, 30]},
                                 anchors + [point("nirvana-grid", *q) for q in qualities])
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    old = rd.collect_results("old", settings, {"x264": [20, 30]},
                             anchors + [point("nirvana-grid", 2, 0.12, 30.0), point("nirvana-grid", 6, 0.48, 35.0)])
    (tmp_path / "old.json").write_text(json.dumps(old))
    r = merge("m", [str(tmp_path / "a.json"), str(tmp_path / "b.json")], str(tmp_path),
              baseline=str(tmp_path / "old.json"), baseline_method="before")
    methods = [p["method"] for p in r["points"]]
    assert methods.count("x264") == 2 and methods.count("nirvana-grid") == 2 and methods.count("before") == 2
    assert r["bd_rate_vs_baseline"]["c nirvana-grid"] < -10  # the same PSNRs at 1/1.2 the rate
    assert "BD-rate against them" in (tmp_path / "rd_m.md").read_text()


def test_fit_screen_packs_the_encoders_bytes_and_scores_the_psnr_loss(tmp_path):
    """benchmarks.screen: each variant's groups are the encoder's (same PSNR, same payload
    bytes), and the score is the psnr loss in dB: mean PSNR less λ · bpp in dB."""
    import math

    import codec
    from benchmarks.screen import DB_PER_LOSS, screen
    from nirvana.config import quality_to_lambda
    from nirvana.fit import LOG_MSE_SCALE

    budget = {"key_iterations": 6, "iterations": 4}
    rows, frames = screen(str(CARPHONE), {"short": budget, "block8": {**budget, "network": {"motion": 8}}},
                          [4.0], groups=2, preset="fast")
    assert frames == 16
    for row, motion in zip(rows, (None, 8)):  # None: the default network's motion blocks
        report = codec.encode(CARPHONE, tmp_path / "a.nirv", model="grid", preset="fast", quality=4, stop=16,
                              threads=1, motion=motion, **budget)
        assert [g["bytes"] for g in row["groups"]] == [g.bytes for g in report.groups]
        assert row["bytes"] == sum(g.bytes for g in report.groups)
        assert math.isclose(row["psnr"], sum(p for g in report.groups for p in g.frame_psnrs) / 16, abs_tol=1e-9)
    assert rows[0]["bytes"] != rows[1]["bytes"]  # 8-pixel blocks: four times the motion values
    row = rows[0]
    loss = -LOG_MSE_SCALE * math.log(10) / 10 * row["psnr"] + quality_to_lambda(4) * row["bpp"]
    assert math.isclose(row["score"], -loss * DB_PER_LOSS, rel_tol=1e-12)


def test_fit_screen_refuses_a_bad_variant_in_one_line_before_any_fit(tmp_path, monkeypatch, capsys):
    from benchmarks import screen

    monkeypatch.setattr(screen, "fit_and_pack", lambda *a: pytest.fail("fitted a bad variant"))
    for variants, says in (('{"w": {"reference_weight": -1}}', "variant 'w': fit setting reference_weight"),
                           ('{"m": {"network": {"motion": 5}}}', "variant 'm': GridConfig field motion=5"),
                           ('{"w": ', "error: --variants is not JSON")):
        monkeypatch.setattr("sys.argv", ["screen", str(CARPHONE), "--groups", "1", "--variants", variants,
                                         "--out", str(tmp_path / "out")])
        with pytest.raises(SystemExit) as exit_:
            screen.main()
        message = str(exit_.value.code)
        assert message.startswith("error: ") and "\n" not in message and says in message
    assert not (tmp_path / "out").exists()


def test_rd_refuses_bad_encode_settings_in_one_line_before_any_anchor(tmp_path, monkeypatch, capsys):
    from benchmarks import rd

    monkeypatch.setattr(rd, "encode_anchor", lambda *a, **k: pytest.fail("ran an anchor before the check"))
    for option, value, says in (("--net", '{"bogus": 1}', "unknown grid network setting bogus"),
                                ("--net", '{"subpel": 5}', "GridConfig field subpel=5 is outside 0..2"),
                                ("--fit", '{"lr": -1}', "fit setting lr = -1 is invalid")):
        code = rd.main([str(CARPHONE), "--frames", "4", "--qualities", "4", option, value,
                        "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and says in err
    assert not (tmp_path / "out").exists()
