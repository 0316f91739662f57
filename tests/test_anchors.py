"""Anchors through PyAV: tiny clips, round trip and the CRF trade-off."""

import numpy as np
import pytest

from benchmarks.anchors import ANCHORS, encode_anchor


def _frames(count=4, height=64, width=64):
    """A moving smooth gradient with some texture, uint8 RGB."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    texture = rng.integers(0, 24, (height, width, 3))
    return [
        np.clip(np.stack([xx * 3 + 4 * t, yy * 3, (xx + yy) * 2 - 4 * t], -1) + texture, 0, 255)
        .astype(np.uint8)
        for t in range(count)
    ]


def test_x264_higher_crf_gives_fewer_bytes_and_lower_psnr():
    frames = _frames()
    fine, coarse = encode_anchor(frames, "x264", 18), encode_anchor(frames, "x264", 40)
    assert fine.frames == coarse.frames == 4
    assert (fine.width, fine.height) == (64, 64)
    assert coarse.bytes < fine.bytes
    assert coarse.psnr_rgb < fine.psnr_rgb
    assert fine.bpp == pytest.approx(fine.bytes * 8 / (64 * 64 * 4))


def test_x264_is_deterministic():
    frames = _frames()
    a, b = encode_anchor(frames, "x264", 30), encode_anchor(frames, "x264", 30)
    assert (a.bytes, a.psnr_rgb) == (b.bytes, b.psnr_rgb)


@pytest.mark.parametrize("codec", sorted(ANCHORS))
def test_every_anchor_round_trips(codec):
    result = encode_anchor(_frames(count=3), codec, 30)
    assert result.frames == 3
    assert result.bytes > 0
    assert result.psnr_rgb > 25


def test_bad_requests():
    with pytest.raises(ValueError, match="unknown anchor"):
        encode_anchor(_frames(), "vp9", 30)
    with pytest.raises(ValueError, match="even"):
        encode_anchor(_frames(height=63), "x264", 30)
    with pytest.raises(ValueError, match="no frames"):
        encode_anchor([], "x264", 30)
