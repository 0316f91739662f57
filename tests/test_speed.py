"""The speed benchmark runs end to end on the CPU and writes its results."""

import json

from benchmarks.speed import run


def test_speed_benchmark_writes_positive_rates(tmp_path):
    results = run(["40x24"], fit_iterations=2, render_seconds=0.01, out=tmp_path, tag="t", log=False)
    saved = json.loads((tmp_path / "speed_t.json").read_text())
    assert saved == json.loads(json.dumps(results))
    (row,) = saved["rows"]
    assert row["size"] == "40x24" and row["network"]["patch_size"] == 8
    assert row["fit_iterations_per_second"] > 0 and row["render_fps"] > 0
    assert "render_fps_torch" not in row  # the torch/Triton split exists only on CUDA
    assert "| 40x24 | 6, 8, 32, 16 |" in (tmp_path / "speed_t.md").read_text()
