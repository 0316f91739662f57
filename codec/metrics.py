"""Frame quality metrics: RGB PSNR, YUV 6:1:1 PSNR and MS-SSIM, per frame and per sequence.

Conventions (the ones the learned-video-coding literature reports):

* Every function takes 8-bit RGB frames, one ``(H, W, 3)`` frame or a batch ``(N, H, W, 3)``,
  and returns one value per frame as a 1-D ``float64`` array (length 1 for a single frame).
  A sequence figure is the plain mean of the per-frame values.
* PSNR uses ``data_range = 255``. Identical frames have no finite PSNR; they are reported as
  :data:`PSNR_CAP` (100 dB), and any PSNR above the cap is clipped to it, so means stay finite.
* YUV PSNR converts RGB to BT.601 limited-range YCbCr in floating point (no rounding), box-
  averages the chroma planes over 2x2 blocks to 4:2:0 (edge rows/columns are repeated for odd
  sizes), computes one PSNR per plane with ``data_range = 255`` and weights them
  ``(6 * Y + U + V) / 8`` (the DCVC / JVET weighting, not CompressAI's ``(4Y + U + V) / 6``).
* MS-SSIM follows Wang, Simoncelli & Bovik (2003): 11x11 Gaussian window (sigma 1.5, "valid"
  filtering), K1 = 0.01, K2 = 0.03, scale weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
  2x2 average-pool downsampling (an odd last row/column is dropped). It is computed on each RGB
  channel separately and averaged over the channels (as pytorch-msssim / CompressAI do).
  Negative contrast-structure terms are clamped to 0. Frames too small for five scales (the
  coarsest scale must still be at least 11 pixels on its short side, i.e. a short side of
  176 or more) use as many scales as fit, with the leading weights renormalised to sum to 1;
  176x144 (QCIF) therefore uses 4 scales. Frames under 11x11 have no MS-SSIM:
  :func:`ms_ssim` raises ValueError and :class:`SequenceMetrics` reports ``None``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PSNR_CAP", "psnr_rgb", "psnr_yuv", "ms_ssim", "ms_ssim_scales", "SequenceMetrics"]

PSNR_CAP = 100.0
"""PSNR (dB) reported for identical frames and the ceiling applied to every PSNR."""

_PEAK = 255.0
_YUV_WEIGHTS = (6.0, 1.0, 1.0)
# BT.601 limited range ("studio swing") from full-range 8-bit R'G'B'; rows are Y, Cb, Cr.
_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])

_MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
_WINDOW = 11
_SIGMA = 1.5
_C1 = (0.01 * _PEAK) ** 2
_C2 = (0.03 * _PEAK) ** 2


def _as_batch(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair of RGB uint8 frames or batches and return both as ``(N, H, W, 3)``."""
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape:
        raise ValueError(f"frame shapes differ: {ref.shape} vs {test.shape}")
    if ref.dtype != np.uint8 or test.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {ref.dtype} and {test.dtype}")
    if ref.ndim not in (3, 4) or ref.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) RGB frames, got shape {ref.shape}")
    if ref.ndim == 3:
        ref, test = ref[None], test[None]
    return ref, test


def _psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    """PSNR in dB for ``data_range = 255``, capped at :data:`PSNR_CAP` (also for MSE 0)."""
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(_PEAK**2 / mse)
    return np.minimum(psnr, PSNR_CAP)


def psnr_rgb(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame PSNR over all RGB samples, ``data_range = 255``, capped at 100 dB.

    Example:
        >>> a = np.zeros((2, 8, 8, 3), np.uint8)
        >>> psnr_rgb(a, a + 1).round(2).tolist()   # MSE 1 -> 20 log10(255)
        [48.13, 48.13]
    """
    ref, test = _as_batch(ref, test)
    diff = ref.astype(np.float64) - test
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    return _psnr_from_mse(mse)


def _to_yuv420(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 ``(N, H, W, 3)`` to float BT.601 limited-range Y ``(N, H, W)`` and 4:2:0 U, V."""
    ycc = frames.astype(np.float64) @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET
    chroma = ycc[..., 1:]
    n, h, w, _ = chroma.shape
    chroma = np.pad(chroma, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    chroma = chroma.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, 2).mean(axis=(2, 4))
    return ycc[..., 0], chroma[..., 0], chroma[..., 1]


def psnr_yuv(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame YUV PSNR ``(6 Y + U + V) / 8`` on BT.601 limited-range 4:2:0 (see module doc).

    Example:
        >>> a = np.full((1, 16, 16, 3), 100, np.uint8)
        >>> b = a.copy(); b[..., 1] += 4                  # a green shift moves Y, U and V
        >>> bool(psnr_yuv(a, b)[0] > psnr_rgb(a, b)[0])   # YUV hides some of it
        True
    """
    ref, test = _as_batch(ref, test)
    planes = zip(_to_yuv420(ref), _to_yuv420(test))
    psnrs = [_psnr_from_mse(np.mean((r - t) ** 2, axis=(1, 2))) for r, t in planes]
    weighted = sum(w * p for w, p in zip(_YUV_WEIGHTS, psnrs))
    return weighted / sum(_YUV_WEIGHTS)


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used for a frame size: up to 5, fewer for small frames.

    Example:
        >>> ms_ssim_scales(1080, 1920), ms_ssim_scales(144, 176)
        (5, 4)
    """
    side = min(height, width)
    if side < _WINDOW:
        raise ValueError(f"MS-SSIM needs frames at least {_WINDOW}x{_WINDOW}, got {width}x{height}")
    return min(len(_MS_SSIM_WEIGHTS), 1 + int(math.floor(math.log2(side / _WINDOW))))


def _gaussian_window() -> np.ndarray:
    x = np.arange(_WINDOW, dtype=np.float64) - (_WINDOW - 1) / 2
    g = np.exp(-(x * x) / (2 * _SIGMA**2))
    return g / g.sum()


def _filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of ``(..., H, W)`` with the 1-D window ``g``."""
    x = np.lib.stride_tricks.sliding_window_view(x, g.size, axis=-1) @ g
    return np.lib.stride_tricks.sliding_window_view(x, g.size, axis=-2) @ g


def _ssim_terms(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean SSIM and mean contrast-structure term over the last two axes."""
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    var_x = _filter(x * x, g) - mu_x * mu_x
    var_y = _filter(y * y, g) - mu_y * mu_y
    cov = _filter(x * y, g) - mu_x * mu_y
    cs_map = (2 * cov + _C2) / (var_x + var_y + _C2)
    luminance = (2 * mu_x * mu_y + _C1) / (mu_x * mu_x + mu_y * mu_y + _C1)
    return np.mean(luminance * cs_map, axis=(-2, -1)), np.mean(cs_map, axis=(-2, -1))


def _downsample(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return 0.25 * (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2])


def ms_ssim(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame MS-SSIM, mean over RGB channels, in [0, 1] (see module doc for details).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
        >>> float(ms_ssim(a, a)[0])
        1.0
    """
    ref, test = _as_batch(ref, test)
    scales = ms_ssim_scales(ref.shape[1], ref.shape[2])
    weights = _MS_SSIM_WEIGHTS[:scales] / _MS_SSIM_WEIGHTS[:scales].sum()
    g = _gaussian_window()
    # (N, 3, H, W) so that filtering runs over the last two axes of every channel at once.
    x = np.moveaxis(ref.astype(np.float64), -1, 1)
    y = np.moveaxis(test.astype(np.float64), -1, 1)
    value = np.ones(x.shape[:2])
    for level, weight in enumerate(weights):
        ssim, cs = _ssim_terms(x, y, g)
        term = ssim if level == scales - 1 else cs
        value *= np.maximum(term, 0.0) ** weight
        x, y = _downsample(x), _downsample(y)
    return np.minimum(value.mean(axis=1), 1.0)


class SequenceMetrics:
    """Streaming accumulator of per-frame metrics over a sequence (memory: a few floats a frame).

    Example:
        >>> acc = SequenceMetrics()
        >>> frame = np.zeros((32, 32, 3), np.uint8)
        >>> acc.update(frame, frame + 1)
        >>> acc.result()["psnr_rgb"].__round__(2)
        48.13
    """

    def __init__(self) -> None:
        self._psnr_rgb: list[float] = []
        self._psnr_yuv: list[float] = []
        self._ms_ssim: list[float] = []

    @property
    def frames(self) -> int:
        """Number of frame pairs seen so far."""
        return len(self._psnr_rgb)

    def update(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Add one frame pair ``(H, W, 3)`` or a batch of pairs ``(N, H, W, 3)`` (uint8 RGB)."""
        self._psnr_rgb.extend(psnr_rgb(ref, test).tolist())
        self._psnr_yuv.extend(psnr_yuv(ref, test).tolist())
        if min(np.shape(ref)[-3:-1]) >= _WINDOW:
            self._ms_ssim.extend(ms_ssim(ref, test).tolist())

    def result(self) -> dict[str, float | int | list[float] | None]:
        """Means over frames plus the per-frame RGB PSNR list.

        Keys: ``frames``, ``psnr_rgb``, ``psnr_yuv``, ``ms_ssim`` (None for frames under
        11x11) and ``psnr_rgb_per_frame``.
        """
        if not self._psnr_rgb:
            raise ValueError("no frames were added")
        return {
            "frames": self.frames,
            "psnr_rgb": float(np.mean(self._psnr_rgb)),
            "psnr_yuv": float(np.mean(self._psnr_yuv)),
            "ms_ssim": float(np.mean(self._ms_ssim)) if self._ms_ssim else None,
            "psnr_rgb_per_frame": list(self._psnr_rgb),
        }
