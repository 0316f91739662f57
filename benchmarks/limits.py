"""What limits quality: capacity, quantization, rate weight, or the training budget?

A study of the ``siren`` network (:mod:`nirvana.network`, the paper's). Fits the first group
of a clip with the default siren network for the clip's size three ways and
records PSNR against iterations: (1) float weights, no rounding, no rate term (the network's
capacity), (2) quantization-aware with no rate term (the cost of rounding), (3) the real
loss at a given quality (what the codec does). The coded size of (2) and (3) is measured with
the real entropy coder.

Usage::

    python -m benchmarks.limits samples/carphone.mp4 --iterations 3000 --quality 8

Writes ``<out>/limits.json`` and ``limits.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from codec.entropy import encode_ints
from codec.video import open_video
from nirvana.config import NetworkConfig, fit_config
from nirvana.fit import GroupFitter, psnr_from_mse
from nirvana.kinds import KINDS
from nirvana.model import NirvanaNet
from nirvana.network import render
from nirvana.patches import PatchGrid

CHECKPOINTS = (300, 600, 1500, 3000, 6000)


def fit_float(frames: torch.Tensor, cfg: NetworkConfig, iterations: int, lr: float) -> dict[int, float]:
    """Train unquantized weights (initialised like the codec's) on MSE alone."""
    net = NirvanaNet(cfg, torch.Generator().manual_seed(0), fit_config(kind="siren").init_bits)
    weights = [torch.nn.Parameter(w) for w in net.exact_weights()]
    opt = torch.optim.Adam(weights, lr=lr)
    grid = PatchGrid(frames.shape[2], frames.shape[3], cfg.patch_size)
    coords, mask, target = grid.centres(), grid.valid_mask(), grid.to_patches(frames)
    valid = float(mask.sum()) * frames.shape[0] * 3
    curve = {}
    for it in range(1, iterations + 1):
        out = render([w[None] for w in weights], coords, cfg)[0][:, :frames.shape[0]]
        mse = ((out - target) ** 2 * mask).sum() / valid
        opt.zero_grad()
        mse.backward()
        opt.step()
        if it in CHECKPOINTS:
            curve[it] = psnr_from_mse(float(mse.detach()))
    return curve


def fit_codec(frames: torch.Tensor, cfg: NetworkConfig, iterations: int, quality: float | None,
              ) -> dict[int, dict]:
    """The codec's own key-group fit, stopped at each checkpoint, with its coded size."""
    pixels = frames.shape[0] * frames.shape[2] * frames.shape[3]
    curve = {}
    for budget in (c for c in CHECKPOINTS if c <= iterations):
        fit_cfg = replace(fit_config(quality=quality, kind="siren"), key_iterations=budget,
                          patience=budget)
        if quality is None:
            fit_cfg = replace(fit_cfg, rate_lambda=0.0)
        fitter = GroupFitter(KINDS["siren"], cfg, fit_cfg, frames.shape[2], frames.shape[3])
        fit = fitter.fit(frames, key=True, group_index=0)
        size = sum(len(encode_ints(q)) for q in fit.latents)
        curve[budget] = {"psnr": fit.psnr, "bytes": size, "bpp": size * 8 / pixels}
    return curve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--quality", type=float, default=8.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    with open_video(args.input) as src:
        cfg = NetworkConfig.for_resolution(src.info.width, src.info.height)
        group = next(src.groups(cfg.group_size))
    frames = torch.from_numpy(group).permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(0)
    results = {
        "input": args.input, "network": cfg.__dict__, "lr": args.lr,
        "float": fit_float(frames, cfg, args.iterations, args.lr),
        "quantized_no_rate": fit_codec(frames, cfg, args.iterations, None),
        f"quality_{args.quality:g}": fit_codec(frames, cfg, args.iterations, args.quality),
    }
    print(json.dumps(results, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "limits.json").write_text(json.dumps(results, indent=1))
    rows = ["# What limits quality: first group of " + args.input, "",
            f"Network {cfg}. PSNR (dB) of the key group after N iterations; coded bpp of that group "
            "in brackets (the whole file adds residual groups, which cost far less).", "",
            "| iterations | float, MSE only | quantized, MSE only | quantized, quality "
            f"{args.quality:g} |", "|---|---|---|---|"]
    q_no = results["quantized_no_rate"]
    q_re = results[f"quality_{args.quality:g}"]
    for it in sorted(results["float"]):
        rows.append(f"| {it} | {results['float'][it]:.2f} | {q_no[it]['psnr']:.2f} ({q_no[it]['bpp']:.2f}) | "
                    f"{q_re[it]['psnr']:.2f} ({q_re[it]['bpp']:.2f}) |")
    (args.out / "limits.md").write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
