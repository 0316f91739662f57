"""Configuration: the network's shape (stored in the file) and the fitting budget (not stored).

``NetworkConfig`` is everything a decoder needs to rebuild a group's network; the container
header carries it. ``FitConfig`` only steers the encoder. Presets trade encode time for
quality; ``NetworkConfig.for_resolution`` sizes the network to the frame size, because the
paper's 2.4 M weights per group are meant for 1080p and swamp small videos with bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any


def spec(fmt: str, lo: float, hi: float, default: Any, multiple_of: int = 1) -> Any:
    """A config field carrying its little-endian struct format and inclusive bounds, so that
    packing, parsing and validation all walk one declaration."""
    return field(default=default, metadata={"fmt": fmt, "lo": lo, "hi": hi, "multiple_of": multiple_of})


def range_problem(cfg: Any) -> str | None:
    """The first field of ``cfg`` outside its :func:`spec` bounds, as a sentence; None if all fit."""
    for f in fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if "lo" not in meta:
            continue
        if not meta["lo"] <= value <= meta["hi"]:  # also rejects NaN
            return f"field {f.name}={value} is outside {meta['lo']}..{meta['hi']}"
        if meta["multiple_of"] > 1 and value % meta["multiple_of"]:
            return f"field {f.name}={value} is not a multiple of {meta['multiple_of']}"
    return None


def check_ranges(cfg: Any) -> None:
    """Raise ValueError naming the first field of ``cfg`` outside its bounds."""
    problem = range_problem(cfg)
    if problem:
        raise ValueError(f"{type(cfg).__name__} {problem}")


def check_names(config_type: type, names, what: str, owner: str | None = None) -> None:
    """Raise ValueError naming any of ``names`` that is not a field of the dataclass
    ``config_type`` (``what`` says what they are), with the fields that ``owner`` (default:
    the class's name) has."""
    known = [f.name for f in fields(config_type)]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; {owner or config_type.__name__} has "
                         f"{', '.join(known)}")


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of one group's ``siren`` network (docs/ARCHITECTURE.md, "Network kinds")."""

    group_size: int = spec("B", 1, 16, 3)  # G: frames rendered by one network (in the common header)
    patch_size: int = spec("H", 4, 256, 32, multiple_of=4)  # P: patch side in pixels
    hidden: int = spec("H", 1, 4096, 512)  # width of the SIREN stem
    hidden_layers: int = spec("B", 1, 8, 2)  # sine layers before the last stem layer
    channels: int = spec("H", 4, 256, 16, multiple_of=4)  # C: feature channels per frame at P/2 × P/2
    w0: float = spec("f", 1e-6, 1e6, 30.0)  # SIREN frequency

    @property
    def feature_size(self) -> int:
        return self.patch_size // 2

    @classmethod
    def for_resolution(cls, width: int, height: int, **overrides) -> "NetworkConfig":
        """A network sized to the frame: the paper's sizes at 1080p, smaller below.

        Capacity grows roughly with the pixel count: the stem width follows the square root
        of the area relative to 1080p, within [32, 512]; the patch size shrinks for small
        frames so that there are enough patches to share the stem, and frames below 320×240
        are fitted six to a network instead of three.

        >>> NetworkConfig.for_resolution(1920, 1080)
        NetworkConfig(group_size=3, patch_size=32, hidden=512, hidden_layers=2, channels=16, w0=30.0)
        """
        area_ratio = (width * height) / (1920 * 1080)
        hidden = int(min(512, max(32, 16 * round(512 * math.sqrt(area_ratio) / 16))))
        # Tuned on carphone 176x144: P=8, C=16 (396 patches) beat P=16, C=8 at equal λ.
        patch = 32 if width * height >= 640 * 360 else 16 if width * height >= 320 * 240 else 8
        channels = 16
        # Carphone (176x144, 120 frames): G=6 gave the same PSNR in 12-18 % fewer bits than G=3
        # at qualities 4 and 6, and beat G=9. Bikes (640x272, fast motion) lost with G=6
        # (+13 % bits, -0.2 dB at quality 4), so larger frames keep the paper's G=3.
        group = 6 if width * height < 320 * 240 else 3
        base = cls(group_size=group, patch_size=patch, hidden=hidden, channels=channels)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class FitConfig:
    """How hard the encoder works on each group."""

    key_iterations: int = 600  # budget of a key group (fresh start)
    iterations: int = 200  # budget of a group warm-started from the previous one
    min_iterations: int = 30  # never stop a group before this
    lr: float = 2e-3  # Adam learning rate on the weights (key groups)
    residual_lr: float = 2e-4  # Adam learning rate on the weights of warm-started groups
    step_lr: float = 0.01  # Adam step on log quantization steps (key groups only)
    rate_lambda: float = 0.004  # loss = distortion + lambda * bits-per-pixel
    # "mse": the group's mean squared error; "psnr": LOG_MSE_SCALE times the mean over frames
    # of ln(MSE), i.e. the frames' mean PSNR (what the RD benchmark scores) up to a scale
    distortion: str = "mse"  # one of DISTORTIONS
    target_psnr: float | None = None  # stop a group once it reaches this
    patience: int = 60  # stop after this many iterations without a 0.02 dB gain
    init_bits: int = 6  # initial step = init range / 2**(init_bits-1)
    noise_fraction: float = 0.0  # share of each budget trained with noise instead of rounding
    schedule: str = "constant"  # learning rate: "constant" or "cosine" (down to lr / 20)
    cut_psnr: float = 20.0  # a frame change below this PSNR (dB) may be a scene cut ...
    cut_drop: float = 6.0  # ... if it is also this many dB below the median recent change
    key_interval: int = 20  # a key group every this many groups (2 s at 30 fps with G=3)
    residual_coding: bool = True  # code tensors against the previous group where smaller (ablation)
    carry_time: bool = True  # grid: warm start from, and predict from, the last time slot (ablation)
    # grid with chain: a warm group moves each frame from the frame before where that search
    # (frames after the first, less the motion bits every block pays) costs below this
    # fraction of the search from the previous group's last frame, both on source frames.
    # Per-group ratios: bikes 0.04..0.29 (chaining wins big), bigbuckbunny 0.16..0.38,
    # carphone 0.27..0.76 (chaining every group cost 16..30 % more bits there, even at 0.68)
    chain_gain: float = 0.25
    # motion search: a bit of motion weighs this many bits of the loss. Under distortion mse,
    # carphone q4 once chose 4 over 1 and 16; with psnr, chain and half pixels, 1 gives bikes
    # -8.6 % and carphone +0.1 % BD-rate against 4 (benchmarks/results/rd_motioncost_*.md);
    # the fit screen favours 1 at q6 and 4 at q2 (screen_motioncost_carphone_q*.md)
    motion_bit_cost: float = 1.0
    # under distortion psnr, a warm group's motion bit also weighs the previous group's MSE
    # / LOG_MSE_SCALE, clamped to motion_cost_mse_floor..10: what a unit of squared error is
    # worth in the loss falls as the error grows, so a bit of motion is dearer at low quality.
    # The floor 1 makes it one-sided (never cheaper than motion_bit_cost): with it, BD-rate
    # carphone -2.9 %, bikes -1.7 % against the plain price (rd_up_*.md). Floor 0.1 (two-sided)
    # made bikes' slow scene spend more bytes for no gain (rd_follow_bikes_q2.md)
    motion_cost_follows_mse: bool = True
    motion_cost_mse_floor: float = 1.0
    # λ of a key group is rate_lambda times this: every warm group after it is predicted from
    # it. 0.5 lost on carphone's first 48 frames (screen_refw_carphone.md), so 1
    key_rate_scale: float = 1.0
    # the distortion of a group's last frame counts this many times: it is the motion
    # reference of the next group (grid with motion; the grid default is 4, KIND_DEFAULTS)
    reference_weight: float = 1.0
    seed: int = 0


DISTORTIONS = ("psnr", "mse")  # what the loss's distortion term measures (FitConfig.distortion)
SCHEDULES = ("constant", "cosine")  # FitConfig.schedule
_INF = math.inf
# what each FitConfig field may hold: choices for text, (low, high) for numbers (inclusive)
_FIT_VALUES: dict[str, tuple] = {
    "key_iterations": (1, _INF), "iterations": (1, _INF), "min_iterations": (0, _INF),
    "lr": (0, _INF), "residual_lr": (0, _INF), "step_lr": (0, _INF), "rate_lambda": (0, _INF),
    "distortion": DISTORTIONS, "target_psnr": (0, _INF), "patience": (1, _INF), "init_bits": (1, 16),
    "noise_fraction": (0, 1), "schedule": SCHEDULES, "cut_psnr": (0, _INF), "cut_drop": (0, _INF),
    "key_interval": (1, 0xFFFF), "residual_coding": (False, True), "carry_time": (False, True),
    "chain_gain": (0, _INF), "motion_bit_cost": (0, _INF), "motion_cost_follows_mse": (False, True),
    "motion_cost_mse_floor": (0, 10), "key_rate_scale": (0, 16), "reference_weight": (0, 64),
    "seed": (0, 2**63 - 1),
}


def check_fit_values(cfg: FitConfig) -> None:
    """Raise ValueError naming the first FitConfig field whose value is of the wrong type or
    out of range (a NaN never is in range); None passes only for ``target_psnr``."""
    for f in fields(cfg):
        value, allowed = getattr(cfg, f.name), _FIT_VALUES[f.name]
        if value is None and f.name == "target_psnr":
            continue
        if isinstance(allowed[0], str):
            ok = value in allowed
            wanted = "one of " + ", ".join(allowed)
        else:
            low, high = allowed
            kind = bool if isinstance(low, bool) else int if isinstance(f.default, int) else (int, float)
            ok = (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
                  and low <= value <= high)
            wanted = ("true or false" if kind is bool
                      else f"{'an integer' if kind is int else 'a number'} in {low}..{high}")
        if not ok:
            raise ValueError(f"fit setting {f.name} = {value!r} is invalid; it takes {wanted}")

# Budgets per network kind. The grid kind trains with noise for the first half of each budget,
# then straight-through rounding, to the end of its budget, its learning rate falling on a
# cosine from lr to lr / 20 over the whole budget (KIND_DEFAULTS). Its
# one-layer synthesis network (no convolutions) trains about 1.4x faster per iteration than
# the earlier two layers + two convolutions, which paid for 1.5x the iterations: -16 % BD-rate
# on carphone (benchmarks/results/ablation_lean_carphone.md).
PRESETS: dict[str, dict[str, dict]] = {
    "siren": {
        "fast": dict(key_iterations=250, iterations=80, patience=30),
        "medium": dict(key_iterations=600, iterations=200, patience=60),
        "slow": dict(key_iterations=1500, iterations=500, patience=150),
    },
    "grid": {
        "fast": dict(key_iterations=450, iterations=150),
        "medium": dict(key_iterations=1200, iterations=450),
        "slow": dict(key_iterations=3000, iterations=1200),
    },
}
KIND_DEFAULTS: dict[str, dict] = {
    "siren": {},
    # distortion psnr: bikes -28.6 % BD-rate (benchmarks/results/rd_distortion_bikes.md),
    # bigbuckbunny 320x180 -28.3 % (ablation_distortion_*.md), carphone +3.3 % (48 frames) and
    # +6.5 % (120 frames, rd_distortion_carphone.md)
    # reference_weight 4: carphone -16.2 % BD-rate against 1 (benchmarks/results/rd_refw4_carphone.md)
    # schedule cosine: BD-rate carphone -0.3 %, bikes -1.2 % against constant (small; the
    # bigbuckbunny 320x180 screen lost 0.05 dB of score; benchmarks/results/rd_cosine_*.md,
    # screen_cosine_*.md)
    "grid": dict(lr=0.01, residual_lr=0.005, step_lr=0.01, noise_fraction=0.5, schedule="cosine",
                 patience=10**9, distortion="psnr", reference_weight=4.0),
}


def quality_to_lambda(quality: float) -> float:
    """Map the user's quality knob (0 = smallest file … 10 = best quality) to λ.

    Each step of 1 halves λ (roughly +0.5–1 dB and more bits).

    >>> quality_to_lambda(5.0)
    0.004
    """
    return 0.004 * 2.0 ** (5.0 - quality)


def fit_config(preset: str = "medium", quality: float | None = None, kind: str = "siren",
               **overrides) -> FitConfig:
    """A FitConfig for a network kind from a preset name, a quality and explicit overrides
    (None = keep)."""
    if preset not in PRESETS[kind]:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS[kind])}")
    check_names(FitConfig, overrides, "fit setting")
    cfg = replace(FitConfig(), **KIND_DEFAULTS[kind], **PRESETS[kind][preset])
    if quality is not None:
        cfg = replace(cfg, rate_lambda=quality_to_lambda(quality))
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    check_fit_values(cfg)
    return cfg
