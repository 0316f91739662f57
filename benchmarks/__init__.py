"""Benchmark scripts: standard-codec anchors and the rate-distortion harness."""
