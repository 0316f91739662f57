"""Fitting one network per frame group, each warm-started from the previous one.

The whole loop is here, top to bottom, for every network kind (:mod:`nirvana.kinds` makes
the model): a key group starts from a fresh network (seeded by its group index, so segments
can be fitted anywhere, in any order) with the key budget and learnable quantization steps;
every other group continues from the previous group's network and Adam state with the steps
frozen, so that its integers can be coded as residuals. Each iteration renders the group
and minimises ``distortion + λ · bits-per-pixel``: the group's MSE, or (``distortion="psnr"``)
a scaled mean of its frames' ln MSE, which is their mean PSNR up to sign and scale, the
figure the RD benchmark reports. The first ``noise_fraction`` of a budget
replaces rounding by uniform noise (smooth gradients); the rest rounds straight-through,
so what is coded is what was trained. The learning rate is constant or follows a cosine
down to a twentieth. A group stops at its budget, at the target PSNR, or when it stops
improving; the best rounded state seen is what gets coded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .config import FitConfig
from .kinds import Kind
from .network import weights_from_integers
from .render import to_uint8

# distortion "psnr": a frame at 30 dB (MSE 1e-3) weighs what it weighs with "mse"; one
# below it weighs less, one above it more, so that bits go where they buy the most dB
LOG_MSE_SCALE = 1e-3


@dataclass
class GroupFit:
    """What fitting one group produced."""

    key: bool  # coded on its own (a planned key group or a detected scene cut)
    latents: list[np.ndarray]  # integer latents, file order
    steps: list[float]  # float32 quantization steps, file order
    reconstruction: torch.Tensor  # (n, 3, H, W) float in [0, 1], exactly what a decoder renders
    frame_psnrs: list[float]  # RGB PSNR of each reconstructed frame, rounded to 8 bits
    iterations: int
    estimated_bits: float

    @property
    def psnr(self) -> float:
        return sum(self.frame_psnrs) / len(self.frame_psnrs)


def psnr_from_mse(mse: float) -> float:
    return 100.0 if mse <= 1e-10 else -10.0 * math.log10(mse)


class GroupFitter:
    """Fits groups in order, carrying the network and optimizer from one to the next.

    >>> from nirvana.config import NetworkConfig
    >>> from nirvana.kinds import KINDS
    >>> fitter = GroupFitter(KINDS["siren"], NetworkConfig(patch_size=8, hidden=16, channels=4),
    ...                      FitConfig(key_iterations=5, min_iterations=5), 8, 8)
    >>> fit = fitter.fit(torch.rand(3, 3, 8, 8), key=True, group_index=0)
    >>> fit.reconstruction.shape, fit.iterations
    (torch.Size([3, 3, 8, 8]), 5)
    """

    def __init__(self, kind: Kind, net_cfg, fit_cfg: FitConfig, height: int, width: int,
                 device: torch.device | str = "cpu", group_size: int | None = None):
        self.kind = kind
        self.net_cfg = net_cfg
        self.fit_cfg = fit_cfg
        self.group_size = group_size or net_cfg.group_size
        self.height, self.width = height, width
        self.device = torch.device(device)
        self.net: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.previous: torch.Tensor | None = None  # flat latents of the last group
        self.last_frame: torch.Tensor | None = None  # the previous group's last source frame
        self.reference: torch.Tensor | None = None  # the last decoded frame (3, H, W), for motion
        self.last_mse: float | None = None  # the previous group's coded MSE (None after a key reset)

    def _start_key_group(self, group_index: int) -> None:
        gen = torch.Generator().manual_seed(self.fit_cfg.seed * 1_000_003 + group_index)
        self.net = self.kind.make_model(self.net_cfg, self.group_size, self.height, self.width, gen,
                                        self.fit_cfg.init_bits).to(self.device)
        self.optimizer = torch.optim.Adam([
            {"params": self.net.weight_parameters(), "lr": self.fit_cfg.lr},
            {"params": self.net.step_parameters(), "lr": self.fit_cfg.step_lr},
        ])
        self.previous = None

    def fit(self, frames: torch.Tensor, key: bool, group_index: int,
            progress: Callable[[int, float], None] | None = None) -> GroupFit:
        """Fit ``frames`` (n, 3, H, W) in [0, 1], n <= the group size: a key group (a fresh
        network with the key budget; the first group of a segment, or one that starts at a
        scene cut) or a warm group continuing from the group before.
        """
        cfg = self.fit_cfg
        target = frames.to(self.device)
        if key:  # forget what came before, so that a segment fits the same on any worker
            self.last_frame, self.last_mse = None, None
        source, self.last_frame = self.last_frame, target[-1:]
        if not key and self.net is not None:
            reference = self.reference if self.kind.uses_reference(self.net_cfg) else None
            if reference is not None:
                self.net.set_motion(reference, target, self.motion_bit_price(), source[0], cfg.chain_gain)
            return self._run(target, cfg.iterations, progress, group_index, reference, key=False)
        self._start_key_group(group_index)
        if self.kind.uses_reference(self.net_cfg):
            self.net.set_key_motion(target, self.motion_bit_price(key=True))
        return self._run(target, cfg.key_iterations, progress, group_index, None, key=True)

    def rate_lambda(self, key: bool) -> float:
        """λ of a group: ``rate_lambda``, times ``key_rate_scale`` for a key group (every
        group after it up to the next key group is predicted, through the motion, from it)."""
        cfg = self.fit_cfg
        return cfg.rate_lambda * (cfg.key_rate_scale if key else 1.0)

    def motion_bit_price(self, key: bool = False) -> float:
        """What the motion search charges per motion bit, in squared error summed over the
        channels: ``loss · 3 · pixels`` is that error plus 3λ · bits under distortion mse.
        Under psnr a unit of error weighs ``LOG_MSE_SCALE / MSE`` of its mse weight, so with
        ``motion_cost_follows_mse`` a warm group scales the price by the previous group's MSE
        over LOG_MSE_SCALE, clamped to ``motion_cost_mse_floor``..10 (a key group, which must
        fit alike on any worker, by 1)."""
        cfg = self.fit_cfg
        price = cfg.motion_bit_cost * 3 * self.rate_lambda(key)
        if cfg.motion_cost_follows_mse and cfg.distortion == "psnr" and self.last_mse is not None:
            price *= min(max(self.last_mse / LOG_MSE_SCALE, cfg.motion_cost_mse_floor), 10.0)
        return price

    def _run(self, frames: torch.Tensor, budget: int, progress, group_index: int,
             reference: torch.Tensor | None, key: bool) -> GroupFit:
        """The training loop of one group (rendered on the motion prediction from ``reference``)."""
        cfg = self.fit_cfg
        net, opt, previous = self.net, self.optimizer, self.previous
        if not cfg.residual_coding:
            previous = None
        references = [] if previous is None else [previous]
        if previous is not None and cfg.carry_time and hasattr(net, "carry"):
            # start from the previous group's last time slot (the nearest in time) and let
            # the coder also predict from it (payload mode CARRIED)
            with torch.no_grad():
                net.quant.weight.copy_(net.carry(net.quant.weight))
            references.append(net.carry(previous))
        opt.param_groups[1]["lr"] = cfg.step_lr if previous is None else 0.0
        # Warm-started groups take small steps: every flipped integer is a coded residual.
        base_lr = cfg.lr if previous is None else cfg.residual_lr
        step_lr = opt.param_groups[1]["lr"]
        n = frames.shape[0]
        target = net.prepare(frames)
        mask = torch.ones((), device=self.device) if net.mask is None else net.mask
        valid = float(torch.broadcast_to(mask, target.shape).sum())  # real pixels × channels
        pixels = self.height * self.width * n
        noisy = int(budget * cfg.noise_fraction)
        noise = torch.Generator(device=self.device).manual_seed(cfg.seed * 1_000_003 + group_index)
        rate_lambda = self.rate_lambda(key)
        # the last frame is the next group's motion reference: its error weighs more
        last_weight = cfg.reference_weight if self.kind.uses_reference(self.net_cfg) else 1.0

        best_loss, best_state, best_at = math.inf, None, 0
        best_psnr, last_gain = -math.inf, 0
        it = 0
        while it < budget:
            it += 1
            scale = 1.0 if cfg.schedule == "constant" else 0.05 + 0.475 * (1 + math.cos(math.pi * (it - 1) / budget))
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = base_lr * scale, step_lr * scale
            out, symbols = net.predict(noise if it <= noisy else None)
            squared = (_first(out, n) - target) ** 2 * mask
            distortion, mse = distortion_term(squared, valid, n, cfg.distortion, last_weight)
            loss = distortion + rate_lambda * net.coded_bits(symbols, references) / pixels
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if it <= noisy:  # the noisy loss is not the coded one: no best state, no stopping
                opt.step()
                if progress is not None:
                    progress(it, psnr_from_mse(float(mse)))
                continue

            value, mse_value = torch.stack([loss.detach(), mse]).tolist()  # one sync
            psnr = psnr_from_mse(mse_value)
            if value < best_loss:  # keep the state that scored this loss, before its update
                best_loss, best_at = value, it
                best_state = [p.detach().clone() for p in net.parameters()]
            opt.step()
            if psnr > best_psnr + 0.02:
                best_psnr, last_gain = psnr, it
            if progress is not None:
                progress(it, psnr)
            if it >= cfg.min_iterations:
                if cfg.target_psnr is not None and psnr >= cfg.target_psnr:
                    break
                if it - last_gain >= cfg.patience and it - best_at >= cfg.patience:
                    break

        with torch.no_grad():
            for p, saved in zip(net.parameters(), best_state):
                p.copy_(saved)
            latents, steps = net.integer_latents(), net.steps()  # what the file will hold
            tensors = weights_from_integers(latents, steps, self.device)
            recon = self.kind.render_groups([tensors], self.net_cfg, self.group_size, self.height,
                                            self.width, [reference])[0, :n]
            err = (to_uint8(recon).float() - torch.round(frames * 255)) / 255
            frame_mses = (err ** 2).mean(dim=(1, 2, 3)).tolist()
            frame_psnrs = [psnr_from_mse(e) for e in frame_mses]
            ints = net.quant.flat_integers()
            est = float(net.coded_bits(ints, references))
        self.previous = ints
        self.last_mse = sum(frame_mses) / n
        self.reference = to_uint8(recon[n - 1]).float() / 255
        return GroupFit(previous is None, latents, steps, recon, frame_psnrs, it, est)


def distortion_term(squared: torch.Tensor, valid: float, n: int, kind: str,
                    last_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss's distortion term from the masked squared errors of ``n`` frames (``valid``
    real values in all), and their MSE (detached), from one reduction. The term is the MSE,
    or :data:`LOG_MSE_SCALE` times the mean of each frame's ln(MSE); a frame's gradient is
    then its MSE's scaled by 1e-3 / its MSE. The last frame's share counts ``last_weight``
    times (the others still count once each, and the sum is still divided by ``n``)."""
    frame_axis = 1 if squared.dim() == 5 else 0  # patches (N, G, ...) or frames (G, ...)
    dims = [d for d in range(squared.dim()) if d != frame_axis]
    frame_mse = squared.sum(dim=dims) * (n / valid)
    per_frame = frame_mse if kind == "mse" else LOG_MSE_SCALE * torch.log(frame_mse.clamp_min(1e-10))
    term = per_frame.mean()
    if last_weight != 1.0:
        term = term + (last_weight - 1.0) * per_frame[-1] / n
    return term, frame_mse.detach().mean()


def _first(pred: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` frames of a prediction in patches ``(N, G, ...)`` or frames ``(G, ...)``."""
    return pred[:, :n] if pred.dim() == 5 else pred[:n]
