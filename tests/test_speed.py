"""The speed benchmarks run end to end on the CPU (both network kinds; a chained group's two
ways of moving frames) and write their results."""

import json

import pytest

from benchmarks import chain_speed
from benchmarks.speed import run
from nirvana.config import PRESETS

# 40x24 frames: siren picks G=6 and 8x8 patches, grid G=8 and 3 levels.
CELLS = {"siren": "| 40x24 | siren | 6 | patch_size 8, hidden 32, channels 16 |",
         "grid": "| 40x24 | grid | 8 | levels 3, channels 1, hidden 16, layers 1, convs 0 |"}


@pytest.mark.parametrize("model", ["grid", "siren"])
def test_speed_benchmark_writes_positive_rates(tmp_path, model):
    results = run(["40x24"], model=model, fit_iterations=2, render_seconds=0.01, out=tmp_path,
                  tag="t", log=False)
    saved = json.loads((tmp_path / "speed_t.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["settings"]["model"] == model
    assert saved["settings"]["key_iterations"] == PRESETS[model]["medium"]["key_iterations"]
    (row,) = saved["rows"]
    assert row["size"] == "40x24" and row["kind"] == model
    assert row["fit_iterations_per_second"] > 0 and row["render_fps"] > 0
    assert row["render_batch"] >= 1 and row["macs_per_pixel"] > 0
    assert row["key_group_seconds_per_frame"] == pytest.approx(
        saved["settings"]["key_iterations"] / row["fit_iterations_per_second"] / row["group_size"])
    assert "render_fps_torch" not in row  # the torch/Triton split exists only on CUDA
    markdown = (tmp_path / "speed_t.md").read_text()
    assert CELLS[model] in markdown and "decode render fps" in markdown


def test_chain_speed_benchmark_times_both_ways_of_moving_frames(tmp_path):
    results = chain_speed.run(["48x32"], seconds=0.0, out=tmp_path, tag="t")
    assert json.loads((tmp_path / "chain_speed_t.json").read_text()) == json.loads(json.dumps(results))
    (row,) = results["rows"]
    for way in ("gather", "sparse"):
        assert len(row[way]) == 2 and all(r["seconds_per_iteration"] > 0 and r["iterations"] == 1 for r in row[way])
    assert row["speedup"] > 0
    assert "| 48x32 |" in (tmp_path / "chain_speed_t.md").read_text()
