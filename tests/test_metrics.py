"""Frame metrics: PSNR on known errors, the YUV weighting, MS-SSIM and the sequence accumulator."""

import math

import numpy as np
import pytest

from codec.metrics import PSNR_CAP, SequenceMetrics, ms_ssim, ms_ssim_scales, psnr_rgb, psnr_yuv


def _textured(shape, seed=0):
    """Smooth random texture (so SSIM is meaningful), uint8 RGB."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(*shape[:-3], shape[-3] // 4 + 1, shape[-2] // 4 + 1, 3))
    up = np.repeat(np.repeat(noise, 4, axis=-3), 4, axis=-2)[..., : shape[-3], : shape[-2], :]
    return np.clip(128 + 40 * up, 0, 255).astype(np.uint8)


def test_psnr_rgb_known_mse():
    ref = np.full((2, 8, 8, 3), 100, np.uint8)
    test = ref.copy()
    test[0] += 2  # MSE 4
    test[1, ..., 0] += 3  # MSE 9 / 3 = 3
    expected = [10 * math.log10(255**2 / 4), 10 * math.log10(255**2 / 3)]
    assert psnr_rgb(ref, test) == pytest.approx(expected, abs=1e-12)


def test_single_frame_gives_one_value():
    frame = np.zeros((8, 8, 3), np.uint8)
    assert psnr_rgb(frame, frame + 1).shape == (1,)


def test_identical_frames_are_capped():
    frame = _textured((16, 16, 3))
    assert psnr_rgb(frame, frame)[0] == PSNR_CAP
    assert psnr_yuv(frame, frame)[0] == PSNR_CAP


def test_shape_and_dtype_are_checked():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_rgb(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        psnr_rgb(a, a.astype(np.float32))


def test_yuv_weighting_is_six_one_one():
    """A pure-luma error (grey shift) costs Y only: U and V are exact, so they sit at the cap."""
    ref = np.full((1, 8, 8, 3), 100, np.uint8)
    test = ref + 10  # grey: R=G=B shifted, so Cb and Cr do not move
    y_shift = 10 * 219 / 255  # BT.601 limited range squeezes 255 codes into 219
    psnr_y = 10 * math.log10(255**2 / y_shift**2)
    expected = (6 * psnr_y + 2 * PSNR_CAP) / 8
    assert psnr_yuv(ref, test)[0] == pytest.approx(expected, abs=1e-9)


def test_yuv_chroma_is_compared_at_420():
    """A chroma pattern that averages out over 2x2 blocks is invisible to 4:2:0 chroma."""
    ref = np.full((1, 8, 8, 3), 128, np.uint8)
    test = ref.copy()
    test[0, 0::2, :, 2] += 8
    test[0, 1::2, :, 2] -= 8
    test[0, 0::2, :, 0] -= 8
    test[0, 1::2, :, 0] += 8
    # Y moves by 8 * (24.966 - 65.481) / 255 per pixel; Cb and Cr average to zero per block.
    y_err = 8 * (65.481 - 24.966) / 255
    expected = (6 * 10 * math.log10(255**2 / y_err**2) + 2 * PSNR_CAP) / 8
    assert psnr_yuv(ref, test)[0] == pytest.approx(expected, abs=1e-6)


def test_ms_ssim_identical_is_one():
    frame = _textured((64, 64, 3))
    assert ms_ssim(frame, frame)[0] == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_decreases_with_noise():
    ref = _textured((96, 96, 3))
    rng = np.random.default_rng(1)
    scores, expected = [], []
    for sigma in (2, 8, 32):
        noisy = np.clip(ref + rng.normal(0, sigma, ref.shape), 0, 255).astype(np.uint8)
        scores.append(ms_ssim(ref, noisy)[0])
        expected.append(_reference_ms_ssim(ref, noisy))
    assert scores == pytest.approx(expected, abs=1e-9)  # the definition's values, not just their order
    assert 1 > scores[0] > scores[1] > scores[2] > 0


def _reference_ms_ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM of one RGB frame from its definition (Wang et al. 2003) with SciPy's Gaussian
    filter and scikit-image's SSIM, not codec.metrics: 11-tap window, sigma 1.5, the
    window's borders cropped, 2x2 averaging between scales, weights renormalised."""
    from scipy.ndimage import gaussian_filter
    from skimage.metrics import structural_similarity

    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])[:ms_ssim_scales(*ref.shape[:2])]
    weights = weights / weights.sum()
    c2 = (0.03 * 255) ** 2

    def blur(a):
        return gaussian_filter(a, 1.5, truncate=3.5)[5:-5, 5:-5]

    def halve(a):
        h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
        return a[:h:2, :w:2] / 4 + a[1:h:2, :w:2] / 4 + a[:h:2, 1:w:2] / 4 + a[1:h:2, 1:w:2] / 4

    channels = []
    for c in range(3):
        x, y = ref[..., c].astype(np.float64), test[..., c].astype(np.float64)
        value = 1.0
        for level, weight in enumerate(weights):
            if level == len(weights) - 1:
                term = structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=255)
            else:
                mx, my = blur(x), blur(y)
                vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
                term = np.mean((2 * cov + c2) / (vx + vy + c2))
            value *= max(term, 0.0) ** weight
            x, y = halve(x), halve(y)
        channels.append(value)
    return float(np.mean(channels))


@pytest.mark.parametrize("shape, sigma", [((20, 20, 3), 20), ((96, 96, 3), 8), ((144, 176, 3), 32)])
def test_ms_ssim_matches_an_independent_reference(shape, sigma):
    ref = _textured(shape)
    noisy = np.clip(ref + np.random.default_rng(3).normal(0, sigma, ref.shape), 0, 255).astype(np.uint8)
    assert ms_ssim(ref, noisy)[0] == pytest.approx(_reference_ms_ssim(ref, noisy), abs=1e-9)


def test_ms_ssim_scales_follow_frame_size():
    assert ms_ssim_scales(1080, 1920) == 5
    assert ms_ssim_scales(144, 176) == 4  # QCIF: 144 / 16 = 9 < 11
    assert ms_ssim_scales(11, 11) == 1
    with pytest.raises(ValueError, match="at least"):
        ms_ssim_scales(10, 64)
    frame = _textured((144, 176, 3))
    assert ms_ssim(frame, frame)[0] == pytest.approx(1.0)


def test_sequence_metrics_matches_batch_means():
    ref = _textured((4, 32, 32, 3), seed=2)
    test = np.clip(ref.astype(int) + 3, 0, 255).astype(np.uint8)
    acc = SequenceMetrics()
    acc.update(ref[0], test[0])  # one frame
    acc.update(ref[1:], test[1:])  # then a batch
    result = acc.result()
    assert result["frames"] == 4
    assert result["psnr_rgb_per_frame"] == pytest.approx(psnr_rgb(ref, test).tolist())
    assert result["psnr_rgb"] == pytest.approx(psnr_rgb(ref, test).mean())
    assert result["psnr_yuv"] == pytest.approx(psnr_yuv(ref, test).mean())
    assert result["ms_ssim"] == pytest.approx(ms_ssim(ref, test).mean())


def test_sequence_metrics_empty_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        SequenceMetrics().result()
