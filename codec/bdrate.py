"""Bjøntegaard delta rate and delta PSNR between two rate-distortion curves (pure numpy).

Both measures fit one curve per codec and average the gap between the fits over the interval
where the curves overlap:

* :func:`bd_rate` fits log-rate as a function of PSNR and reports the average rate difference
  of curve *b* against curve *a* in percent (negative: *b* needs fewer bits for equal PSNR).
* :func:`bd_psnr` fits PSNR as a function of log-rate and reports the average PSNR difference
  ``b - a`` in dB (positive: *b* is better at equal rate).

Two fits are offered. ``"pchip"`` (default) is the piecewise cubic Hermite interpolant of
Fritsch & Carlson, shape preserving, as used by the JVET/AOM BD-rate tools; it needs at least
2 points. ``"cubic"`` is Bjøntegaard's original least-squares cubic polynomial (VCEG-M33);
it needs at least 4 points. Points may come in any order; after sorting by rate, both rate and
PSNR must be strictly increasing. Rates may be in any unit (bpp, kbit/s) as long as both curves
use the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bd_rate", "bd_psnr", "pchip_slopes", "pchip_integral"]

_MIN_POINTS = {"pchip": 2, "cubic": 4}


def _curve(rates: Sequence[float], psnrs: Sequence[float], method: str, name: str):
    """Validate one RD curve; return (log-rate, PSNR) sorted by rate."""
    if method not in _MIN_POINTS:
        raise ValueError(f"method must be 'pchip' or 'cubic', got {method!r}")
    r = np.asarray(rates, dtype=np.float64).ravel()
    p = np.asarray(psnrs, dtype=np.float64).ravel()
    if r.size != p.size:
        raise ValueError(f"curve {name}: {r.size} rates but {p.size} PSNR values")
    if r.size < _MIN_POINTS[method]:
        raise ValueError(
            f"curve {name}: method {method!r} needs at least {_MIN_POINTS[method]} points, "
            f"got {r.size}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise ValueError(f"curve {name}: rates and PSNR values must be finite")
    if np.any(r <= 0):
        raise ValueError(f"curve {name}: rates must be positive")
    order = np.argsort(r, kind="stable")
    r, p = r[order], p[order]
    if np.any(np.diff(r) <= 0) or np.any(np.diff(p) <= 0):
        raise ValueError(
            f"curve {name}: after sorting by rate, rate and PSNR must both be strictly "
            f"increasing (rates {r.tolist()}, PSNR {p.tolist()})"
        )
    return np.log(r), p


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson derivatives of the monotone cubic Hermite interpolant through (x, y).

    ``x`` must be strictly increasing. Interior slopes are the weighted harmonic mean of the
    neighbouring secants (zero where they change sign); end slopes use the three-point
    shape-preserving formula.

    Example:
        >>> pchip_slopes(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])).tolist()
        [1.0, 1.0, 1.0]
    """
    h = np.diff(x)
    delta = np.diff(y) / h
    n = x.size
    if n == 2:
        return np.full(2, delta[0])
    d = np.zeros(n)
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same_sign, harmonic, 0.0)
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    """Shape-preserving non-centred three-point end derivative (Moler, Numerical Computing)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return d


def pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over ``[lo, hi]`` (inside ``[x[0], x[-1]]``) of the PCHIP through (x, y).

    Example:
        >>> pchip_integral(np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0, 3.0]), 0.5, 2.0)
        1.875
    """
    return _antiderivative(x, y, hi) - _antiderivative(x, y, lo)


def _antiderivative(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """Integral of the PCHIP from ``x[0]`` to ``at``."""
    d = pchip_slopes(x, y)
    h = np.diff(x)
    # Full segments: the Hermite cubic integrates to h (y0 + y1) / 2 + h^2 (d0 - d1) / 12.
    full = h * (y[:-1] + y[1:]) / 2 + h * h * (d[:-1] - d[1:]) / 12
    k = int(np.clip(np.searchsorted(x, at, side="right") - 1, 0, x.size - 2))
    t = (at - x[k]) / h[k]
    # Antiderivatives (in t) of the Hermite basis h00, h10, h01, h11, from 0 to t.
    t2, t3, t4 = t * t, t**3, t**4
    b00 = t4 / 2 - t3 + t
    b10 = t4 / 4 - 2 * t3 / 3 + t2 / 2
    b01 = -t4 / 2 + t3
    b11 = t4 / 4 - t3 / 3
    partial = h[k] * (b00 * y[k] + b10 * h[k] * d[k] + b01 * y[k + 1] + b11 * h[k] * d[k + 1])
    return float(full[:k].sum() + partial)


def _mean_over(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Average of the fitted curve y(x) over ``[lo, hi]``."""
    if method == "cubic":
        antiderivative = np.polyint(np.polyfit(x, y, 3))
        area = np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo)
    else:
        area = pchip_integral(x, y, lo, hi)
    return float(area / (hi - lo))


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if lo >= hi:
        raise ValueError(
            f"the two curves do not overlap in {what} "
            f"([{a.min():.4g}, {a.max():.4g}] vs [{b.min():.4g}, {b.max():.4g}])"
        )
    return lo, hi


def bd_rate(
    rates_a: Sequence[float],
    psnrs_a: Sequence[float],
    rates_b: Sequence[float],
    psnrs_b: Sequence[float],
    method: str = "pchip",
) -> float:
    """Average rate difference of curve *b* against *a*, in percent, at equal PSNR.

    Example:
        >>> psnr = [30.0, 33.0, 36.0, 39.0]
        >>> round(bd_rate([0.1, 0.2, 0.4, 0.8], psnr, [0.05, 0.1, 0.2, 0.4], psnr), 6)
        -50.0
    """
    log_ra, pa = _curve(rates_a, psnrs_a, method, "a")
    log_rb, pb = _curve(rates_b, psnrs_b, method, "b")
    lo, hi = _overlap(pa, pb, "PSNR")
    diff = _mean_over(pb, log_rb, lo, hi, method) - _mean_over(pa, log_ra, lo, hi, method)
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(
    rates_a: Sequence[float],
    psnrs_a: Sequence[float],
    rates_b: Sequence[float],
    psnrs_b: Sequence[float],
    method: str = "pchip",
) -> float:
    """Average PSNR difference ``b - a`` in dB at equal rate.

    Example:
        >>> rates = [0.1, 0.2, 0.4, 0.8]
        >>> round(bd_psnr(rates, [30, 33, 36, 39], rates, [31, 34, 37, 40]), 6)
        1.0
    """
    log_ra, pa = _curve(rates_a, psnrs_a, method, "a")
    log_rb, pb = _curve(rates_b, psnrs_b, method, "b")
    lo, hi = _overlap(log_ra, log_rb, "rate")
    return _mean_over(log_rb, pb, lo, hi, method) - _mean_over(log_ra, pa, lo, hi, method)
