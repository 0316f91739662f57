"""The NIRVANA (``siren``) network of one frame group (docs/ARCHITECTURE.md, "Network kinds").

A patch's centre coordinate (x, y) goes through a SIREN stem to a C×(P/2)×(P/2) feature
map; a fixed sinusoidal encoding of each frame index is added, giving G stacked copies; two
grouped 3×3 convolutions (one group per frame) with a PixelShuffle(2) and a GELU between
them produce the G×3×P×P pixels of the patch.

The weights are a flat list of tensors in a fixed order (:func:`tensor_shapes`). The same
:func:`render` serves training (straight-through quantized weights, :mod:`nirvana.model`)
and decoding (weights rebuilt from the file's integers), so the decoder reproduces the
encoder's reconstruction. This module holds no training code; the decoder imports it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .config import NetworkConfig
from .kernels import sine_linear


def tensor_shapes(cfg: NetworkConfig) -> list[tuple[int, ...]]:
    """Shapes of the weight tensors, in file order: stem (W, b)…, conv1 (W, b), conv2 (W, b)."""
    c, g, f = cfg.channels, cfg.group_size, cfg.feature_size
    widths = [2] + [cfg.hidden] * cfg.hidden_layers + [c * f * f]
    shapes: list[tuple[int, ...]] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        shapes += [(fan_out, fan_in), (fan_out,)]
    shapes += [(2 * c * g, c, 3, 3), (2 * c * g,)]
    shapes += [(3 * g, c // 2, 3, 3), (3 * g,)]
    return shapes


def temporal_encoding(cfg: NetworkConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(G, C)`` fixed encoding of frame index t: sin/cos of t · 100^(-2k/C)."""
    c = cfg.channels
    freqs = 100.0 ** (-torch.arange(0, c, 2, dtype=torch.float32) / c)
    t = torch.arange(cfg.group_size, dtype=torch.float32)[:, None] * freqs[None, :]
    return torch.stack([torch.sin(t), torch.cos(t)], dim=2).reshape(cfg.group_size, c).to(device)


def render(weights: list[torch.Tensor], coords: torch.Tensor, cfg: NetworkConfig) -> torch.Tensor:
    """Pixels of every patch for a batch of B networks.

    ``weights`` are the tensors of :func:`tensor_shapes`, each with a leading batch dimension
    B; ``coords`` is ``(N, 2)``. Returns ``(B, N, G, 3, P, P)``, about [0, 1]. The B networks
    run as batched matmuls and as grouped convolutions with B·G groups, so decoding many
    groups at once costs a few large kernels instead of many small ones.
    """
    n_stem = 2 * cfg.hidden_layers
    b, n = weights[0].shape[0], coords.shape[0]
    x = coords.expand(b, n, 2)
    for i in range(0, n_stem, 2):
        x = sine_linear(x, weights[i], weights[i + 1], cfg.w0)
    x = torch.baddbmm(weights[n_stem + 1][:, None, :], x, weights[n_stem].transpose(1, 2))
    c, g, f, p = cfg.channels, cfg.group_size, cfg.feature_size, cfg.patch_size
    x = x.reshape(b, n, 1, c, f, f) + temporal_encoding(cfg, x.device)[None, None, :, :, None, None]
    x = x.transpose(0, 1).reshape(n, b * g * c, f, f)
    w1, b1, w2, b2 = weights[n_stem + 2:n_stem + 6]
    x = F.conv2d(x, w1.flatten(0, 1), b1.flatten(), padding=1, groups=b * g)
    x = F.gelu(F.pixel_shuffle(x, 2))
    x = F.conv2d(x, w2.flatten(0, 1), b2.flatten(), padding=1, groups=b * g)
    return x.reshape(n, b, g, 3, p, p).transpose(0, 1) + 0.5


def weights_from_integers(
    latents: list[np.ndarray], steps: list[float], device: torch.device | str = "cpu"
) -> list[torch.Tensor]:
    """Rebuild float weights from coded integers and steps (the decoder's path)."""
    return [
        torch.from_numpy(np.asarray(q, dtype=np.float32)).to(device)
        * torch.tensor(s, dtype=torch.float32, device=device)
        for q, s in zip(latents, steps)
    ]
