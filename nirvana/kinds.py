"""The registry of group-network kinds: what a file's ``kind`` field selects.

A kind is everything the container, the decoder and the encoder need to know about one
family of group networks, in one record:

* its name (``--model``) and its code in the file header;
* its config: defaults for a frame size, and the header's config block (to and from bytes,
  with bounds checked before anything is allocated);
* the shapes of its tensors in file order, for a group size and frame size;
* its decode-side render (this package's shape-and-render modules, no training code), and
  whether a warm group's render reads the previous group's last decoded frame (motion);
* where its context-coded tensors sit, if it has any: the context model's grid levels
  (:mod:`nirvana.context`) and the motion tensor (:mod:`codec.motion_coder`);
* its trainer, named as ``module:factory`` and imported only by the encoder.

Kinds: ``siren`` (the paper's coordinate network, :mod:`nirvana.network`) and ``grid``
(multi-resolution latent grids and a small synthesis network, :mod:`nirvana.grid`).

Example:
    >>> kind = KINDS["grid"]
    >>> cfg = kind.default_config(176, 144)
    >>> kind.unpack_config(kind.pack_config(cfg), group_size=8) == cfg
    True
    >>> sorted(KINDS), by_code(1).name
    (['grid', 'siren'], 'grid')
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from importlib import import_module
from typing import Any

import torch

from . import grid, network
from .config import NetworkConfig, check_ranges, quality_to_lambda
from .grid import GridConfig
from .patches import PatchGrid
from .render import render_groups

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Kind:
    """One family of group networks (see the module doc)."""

    name: str
    code: int  # the header's kind byte
    config_type: type  # the dataclass of its config
    default_group_size: Callable[[int, int], int]  # (width, height) -> G
    # (width, height, rate_lambda=None, **overrides) -> config; rate_lambda: the fit's λ,
    # for defaults that follow the rate
    default_config: Callable[..., Any]
    pack_config: Callable[[Any], bytes]
    unpack_config: Callable[..., Any]  # (bytes, group_size=G) -> config; ValueError if bad
    tensor_shapes: Callable[[Any, int, int, int], list[Shape]]  # (cfg, G, H, W)
    # (B tensor lists, cfg, G, H, W, references) -> (B, G, 3, H, W); references: one per group,
    # the previous group's last decoded frame (3, H, W) in [0, 1], or None (key group)
    render_groups: Callable[..., torch.Tensor]
    uses_reference: Callable[[Any], bool]  # (cfg): whether render reads the references
    macs_per_pixel: Callable[[Any, int, int, int], float]  # (cfg, G, H, W): decode work
    # (context-coded levels, first context tensor, its inputs, motion tensor or None), or None
    context_layout: Callable[[Any], tuple[int, int, int, int | None] | None]
    trainer: str  # "module:factory" of the encoder's trainable model

    def make_model(self, *args, **kwargs):
        """The trainable model (imported on first use: the decode path never loads it)."""
        module, factory = self.trainer.split(":")
        return getattr(import_module(module), factory)(*args, **kwargs)


# ------------------------------------------------------------------------------ siren

_SIREN_BLOCK = ("patch_size", "hidden", "hidden_layers", "channels", "w0")  # G is in the header
_SIREN_STRUCT = struct.Struct("<" + "".join(
    f.metadata["fmt"] for f in fields(NetworkConfig) if f.name in _SIREN_BLOCK))


def _siren_pack(cfg: NetworkConfig) -> bytes:
    return _SIREN_STRUCT.pack(*(getattr(cfg, name) for name in _SIREN_BLOCK))


def _siren_unpack(data: bytes, group_size: int) -> NetworkConfig:
    if len(data) != _SIREN_STRUCT.size:
        raise ValueError(f"siren config block has {len(data)} bytes, expected {_SIREN_STRUCT.size}")
    cfg = NetworkConfig(group_size, *_SIREN_STRUCT.unpack(data))
    check_ranges(cfg)
    return cfg


def _siren_shapes(cfg: NetworkConfig, group_size: int, height: int, width: int) -> list[Shape]:
    return network.tensor_shapes(replace(cfg, group_size=group_size))


def _siren_render(tensors: list[list[torch.Tensor]], cfg: NetworkConfig, group_size: int,
                  height: int, width: int, references: list | None = None) -> torch.Tensor:
    return render_groups(tensors, PatchGrid(height, width, cfg.patch_size), cfg)


def _siren_macs(cfg: NetworkConfig, group_size: int, height: int, width: int) -> float:
    """The stem runs once per patch for all G frames; the heads run per pixel."""
    patches = PatchGrid(height, width, cfg.patch_size).count
    stem = sum(math.prod(s) for s in network.tensor_shapes(cfg)[:2 * cfg.hidden_layers + 2])
    heads = 9 * (2 * cfg.channels * cfg.channels / 4 + 3 * cfg.channels / 2)
    return patches * stem / (height * width * group_size) + heads


SIREN = Kind(
    name="siren", code=0, config_type=NetworkConfig,
    default_group_size=lambda w, h: NetworkConfig.for_resolution(w, h).group_size,
    default_config=lambda w, h, rate_lambda=None, **overrides: NetworkConfig.for_resolution(w, h, **overrides),
    pack_config=_siren_pack, unpack_config=_siren_unpack, tensor_shapes=_siren_shapes,
    render_groups=_siren_render, uses_reference=lambda cfg: False, macs_per_pixel=_siren_macs,
    context_layout=lambda cfg: None,
    trainer="nirvana.model:siren_model",
)


# ------------------------------------------------------------------------------ grid

# quarter pixels pay where a bit is cheap. Carphone's 120 frames, against half pixels: q6
# +0.34 dB for 1 % more bytes, q5 +0.29 dB for 11 % more (on the curve), q4 -0.05 dB for 12 %
# more; BD-rate -2.8 % over q5-q6, +7.9 % over q4-q5. Bikes' first 24 frames: q6 +0.15 dB for
# 2 % fewer, q4 -0.06 dB for 2 % more (benchmarks/results/rd_quarter_carphone.md,
# quarter_bikes24_fast.md)
QUARTER_PIXEL_LAMBDA = quality_to_lambda(6.0)


def _grid_group_size(width: int, height: int) -> int:
    return 8


def _grid_config(width: int, height: int, rate_lambda: float | None = None, **overrides) -> GridConfig:
    """Grid defaults: levels down to about 4×4 cells at the coarsest, at most 7; from 320×180
    a time slot per frame at the finest level, below that one per two frames; motion in
    16×16 blocks, 32×32 from 720p, read by the cubic filter, overlapped, with the chain; in
    half pixels, or quarter pixels where ``rate_lambda`` is at most
    :data:`QUARTER_PIXEL_LAMBDA` (None: half pixels)."""
    levels = max(1, min(7, int(math.log2(max(1, min(width, height) // 4))) + 1))
    # A slot per frame: bikes 640x272 -14.4 %, bigbuckbunny 320x180 -10.5 %, carphone 176x144
    # +21.0 % BD-rate (benchmarks/results/warm_groups_bikes.md); the same motion moves more
    # pixels in a larger frame, and two frames' corrections of it differ more.
    halve_time = 1 if width * height >= 320 * 180 else 2
    motion = 16 if width * height < 1280 * 720 else 32
    # cubic half pixels: carphone +0.15 / +0.11 dB of screen score at q4 / q6 against bilinear,
    # bikes' fast scene -0.05 (benchmarks/results/screen_cubic_*.md)
    subpel = 2 if rate_lambda is not None and rate_lambda <= QUARTER_PIXEL_LAMBDA else 1
    return replace(GridConfig(levels=levels, halve_time=halve_time, motion=motion, chain=1, subpel=subpel,
                              overlap=1, interpolation=1),
                   **{k: v for k, v in overrides.items() if v is not None})


def _grid_render(tensors: list[list[torch.Tensor]], cfg: GridConfig, group_size: int,
                 height: int, width: int, references: list | None = None) -> torch.Tensor:
    references = references or [None] * len(tensors)
    return torch.stack([grid.render(t, cfg, group_size, height, width, reference=r)
                        for t, r in zip(tensors, references)])


GRID = Kind(
    name="grid", code=1, config_type=GridConfig,
    default_group_size=_grid_group_size, default_config=_grid_config,
    pack_config=GridConfig.pack,
    unpack_config=lambda data, group_size: GridConfig.unpack(data),
    tensor_shapes=grid.tensor_shapes, render_groups=_grid_render,
    uses_reference=lambda cfg: cfg.motion > 0,
    macs_per_pixel=lambda cfg, g, h, w: cfg.macs_per_pixel(),
    context_layout=grid.context_layout,
    trainer="nirvana.grid_model:GridNet",
)

KINDS: dict[str, Kind] = {k.name: k for k in (SIREN, GRID)}


def by_code(code: int) -> Kind:
    """The kind stored as ``code`` in a header; ValueError for an unknown code."""
    for kind in KINDS.values():
        if kind.code == code:
            return kind
    raise ValueError(f"unknown network kind {code} (this decoder knows "
                     f"{', '.join(f'{k.code}={k.name}' for k in KINDS.values())})")
