"""evaluate(): streams two videos, checks they match in shape, reports metrics and bpp."""

from fractions import Fraction

import numpy as np
import pytest

from codec.errors import InputError
from codec.evaluate import evaluate
from codec.metrics import psnr_rgb
from codec.video import VideoWriter


def _clip(path, frames):
    with VideoWriter(path, frames.shape[2], frames.shape[1], Fraction(25), lossless=True) as out:
        out.write(frames)
    return path


@pytest.fixture
def videos(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
    dec = np.clip(ref.astype(int) + rng.integers(-3, 4, ref.shape), 0, 255).astype(np.uint8)
    return ref, dec, _clip(tmp_path / "ref.mkv", ref), _clip(tmp_path / "dec.mkv", dec[2:5])


def test_metrics_and_bpp(videos, tmp_path):
    ref, dec, ref_path, dec_path = videos
    nirv = tmp_path / "clip.nirv"
    nirv.write_bytes(bytes(300))
    result = evaluate(dec_path, ref_path, nirv=nirv, start=2, stop=5)
    assert (result["frames"], result["width"], result["height"]) == (3, 48, 32)
    assert result["psnr_rgb_per_frame"] == pytest.approx(psnr_rgb(ref[2:5], dec[2:5]).tolist())
    assert result["file_bytes"] == 300
    assert result["bpp"] == pytest.approx(300 * 8 / (48 * 32 * 3))
    assert 0 < result["ms_ssim"] < 1


def test_frame_count_mismatch(videos):
    _, _, ref_path, dec_path = videos
    with pytest.raises(InputError, match="has 3 frames but .* has 6"):
        evaluate(dec_path, ref_path)


def test_size_mismatch(videos, tmp_path):
    _, _, ref_path, _ = videos
    other = _clip(tmp_path / "other.mkv", np.zeros((6, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="32x32 but .* is 48x32"):
        evaluate(other, ref_path)


def test_missing_nirv(videos, tmp_path):
    _, _, ref_path, dec_path = videos
    with pytest.raises(InputError, match="no such .nirv"):
        evaluate(dec_path, ref_path, nirv=tmp_path / "missing.nirv", start=2, stop=5)


def test_frames_under_the_ms_ssim_window_have_no_ms_ssim(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (2, 8, 10, 3), dtype=np.uint8)
    path = _clip(tmp_path / "tiny.mkv", frames)
    result = evaluate(path, path)
    assert result["ms_ssim"] is None
    assert (result["frames"], result["psnr_rgb"]) == (2, 100.0)


def test_errors_name_the_frames_option(videos):
    _, _, ref_path, dec_path = videos
    with pytest.raises(InputError, match="pass the same --frames used for encoding"):
        evaluate(dec_path, ref_path, start=0, stop=4)
