"""The ``grid`` network kind: shapes, quantization-aware fitting, exact reconstruction, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codec.bitstream import GroupPayload, pack_group, unpack_group
from nirvana.config import fit_config
from nirvana.fit import LOG_MSE_SCALE, GroupFitter, distortion_term
from nirvana.grid import GridConfig, render, tensor_shapes, upsample_levels
from nirvana.grid_model import GridNet
from nirvana.kinds import KINDS, by_code
from nirvana.network import weights_from_integers

GRID = KINDS["grid"]
TINY = GridConfig(levels=3, channels=1, hidden=8, layers=1, convs=1)


def smooth_frames(n: int, h: int, w: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([torch.stack([x, y, (x + y + t / n) / 2.2]) for t in range(n)])


def test_shapes_halve_space_and_time():
    cfg = GridConfig(levels=4, channels=2, halve_time=1, hidden=6, layers=2, convs=1)
    shapes = tensor_shapes(cfg, 8, 36, 50)
    assert shapes[:4] == [(2, 8, 36, 50), (2, 4, 18, 25), (2, 2, 9, 13), (2, 1, 5, 7)]
    assert shapes[4:] == [(6, 8), (6,), (6, 6), (6,), (3, 6), (3,), (3, 3, 3, 3), (3,),
                          (8, 10), (8,), (2, 8), (2,), (4,)]  # the context model, width 8
    assert len(tensor_shapes(GridConfig(levels=4, context=0), 8, 36, 50)) == 4 + 4  # one hidden layer
    assert len(tensor_shapes(GridConfig(levels=4, context=0, layers=2, convs=2), 8, 36, 50)) == 4 + 6 + 4
    assert tensor_shapes(GridConfig(levels=4, context=0, motion=16), 8, 36, 50)[-1] == (8, 2, 3, 4)
    assert tensor_shapes(GridConfig(levels=2, halve_time=0), 8, 36, 50)[1] == (1, 8, 18, 25)
    assert tensor_shapes(GridConfig(levels=2, halve_time=2), 8, 36, 50)[:2] == [(1, 4, 36, 50), (1, 2, 18, 25)]


def test_registry_round_trips_configs_and_refuses_unknown_codes():
    for kind in KINDS.values():
        cfg = kind.default_config(176, 144)
        assert kind.unpack_config(kind.pack_config(cfg), group_size=cfg.group_size
                                  if kind.name == "siren" else 8) == cfg
        assert by_code(kind.code) is kind
    with pytest.raises(ValueError, match="unknown network kind 9"):
        by_code(9)
    with pytest.raises(ValueError, match="levels=0"):
        GridConfig.unpack(GridConfig(levels=0).pack())


def test_default_synthesis_is_small():
    cfg = GRID.default_config(1920, 1080)
    assert cfg.levels == 7
    assert cfg.macs_per_pixel() <= 2000  # the budget for the synthesis network


def test_render_handles_odd_sizes_and_short_groups():
    shapes = tensor_shapes(TINY, 5, 7, 9)
    tensors = [torch.randn(s) * 0.1 for s in shapes]
    assert render(tensors, TINY, 5, 7, 9).shape == (5, 3, 7, 9)
    assert torch.equal(render(tensors, TINY, 5, 7, 9, count=2), render(tensors, TINY, 5, 7, 9)[:2])


@pytest.mark.parametrize("group_size", [8, 5, 3])
def test_features_of_any_frames_are_those_of_the_whole_group(group_size):
    shapes = tensor_shapes(GridConfig(levels=3, halve_time=2, context=0), group_size, 12, 10)
    grids = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes[:3])]
    whole = upsample_levels(grids, group_size, 12, 10)
    for t in range(group_size):  # the decoder's frame-by-frame features: the very same floats
        assert torch.equal(upsample_levels(grids, group_size, 12, 10, slice(t, t + 1)), whole[t:t + 1])
    # linear in time as PyTorch's own interpolation (up to a fused product's last bit)
    level = grids[1]  # (1, ceil(G / 2), 6, 5)
    expected = torch.nn.functional.interpolate(level[None], size=(group_size, 6, 5), mode="trilinear",
                                               align_corners=False)[0].transpose(0, 1)
    up = torch.nn.functional.interpolate(expected, size=(12, 10), mode="bilinear", align_corners=False)
    torch.testing.assert_close(whole[:, 1:2], up, rtol=0, atol=1e-6)


def test_noise_phase_is_reproducible_and_differs_from_rounding():
    net = GridNet(TINY, 2, 8, 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.quant.weight.add_(0.3)
        a, _ = net.quant(torch.Generator().manual_seed(5))
        b, _ = net.quant(torch.Generator().manual_seed(5))
        rounded, _ = net.quant()
    assert torch.equal(a, b)
    assert torch.equal(rounded, torch.round(rounded)) and not torch.equal(a, torch.round(a))


def fit_group(frames: torch.Tensor, key_iterations: int, **overrides):
    cfg = fit_config("fast", kind="grid", key_iterations=key_iterations, **overrides)
    fitter = GroupFitter(GRID, TINY, cfg, frames.shape[2], frames.shape[3], group_size=4)
    return fitter, fitter.fit(frames, key=True, group_index=0)


def test_fit_reconstruction_is_what_a_decoder_renders():
    frames = smooth_frames(3, 10, 14)  # a short last group: 3 of 4 frames
    _, fit = fit_group(frames, 12)
    tensors = weights_from_integers(fit.latents, fit.steps)
    again = GRID.render_groups([tensors], TINY, 4, 10, 14)[0, :3]
    assert torch.equal(again, fit.reconstruction)
    assert [q.shape for q in fit.latents] == tensor_shapes(TINY, 4, 10, 14)


@pytest.mark.parametrize("distortion", ["psnr", "mse"])
def test_both_distortions_fit_what_a_decoder_renders(distortion):
    frames = smooth_frames(4, 10, 14)
    fitter, key = fit_group(frames, 12, distortion=distortion)
    warm = fitter.fit(frames.flip(0), key=False, group_index=1)
    for fit in (key, warm):
        again = GRID.render_groups([weights_from_integers(fit.latents, fit.steps)], TINY, 4, 10, 14)[0]
        assert torch.equal(again, fit.reconstruction)


def test_psnr_distortion_weighs_each_frame_by_its_error():
    """``psnr``: LOG_MSE_SCALE · mean ln(frame MSE), so a pixel's gradient is its MSE
    gradient over its frame's MSE: a frame with 10x smaller errors (100x smaller MSE) gets
    100x the weight per unit of error, where ``mse`` weighs every pixel alike."""
    target = torch.zeros(2, 3, 4, 5)
    errors = torch.tensor([0.1, 0.01]).view(2, 1, 1, 1).expand(2, 3, 4, 5)
    valid = float(target.numel())
    grads = {}
    for kind in ("psnr", "mse"):
        pred = errors.clone().requires_grad_(True)
        squared = (pred - target) ** 2
        loss, mse = distortion_term(squared, valid, 2, kind)
        assert math.isclose(float(mse), (1e-2 + 1e-4) / 2, rel_tol=1e-6)  # the MSE either way
        loss.backward()
        grads[kind] = pred.grad[:, 0, 0, 0] / errors[:, 0, 0, 0]  # weight per unit of error
        if kind == "psnr":
            assert math.isclose(float(loss.detach()), LOG_MSE_SCALE * (math.log(1e-2) + math.log(1e-4)) / 2, rel_tol=1e-6)
            # patches (N, G, ...) with the frames on axis 1 give the same value
            patches = squared.detach().reshape(2, 3, 2, 2, 5).permute(2, 0, 1, 3, 4)
            assert math.isclose(float(distortion_term(patches, valid, 2, kind)[0]), float(loss.detach()), rel_tol=1e-6)
    assert math.isclose(float(grads["psnr"][1] / grads["psnr"][0]), 100.0, rel_tol=1e-4)
    assert math.isclose(float(grads["mse"][1] / grads["mse"][0]), 1.0, rel_tol=1e-6)


def test_last_frame_weight_counts_the_reference_frame_more():
    """``last_weight`` w: the last frame's term counts w times, the others once, over n."""
    errors = torch.tensor([0.1, 0.01]).view(2, 1, 1, 1).expand(2, 3, 4, 5)
    valid = float(errors.numel())
    for kind, per_frame in (("psnr", [LOG_MSE_SCALE * math.log(1e-2), LOG_MSE_SCALE * math.log(1e-4)]),
                            ("mse", [1e-2, 1e-4])):
        grads = []
        for weight in (1.0, 3.0):
            pred = errors.clone().requires_grad_(True)
            loss, mse = distortion_term(pred ** 2, valid, 2, kind, last_weight=weight)
            assert math.isclose(float(loss.detach()), (per_frame[0] + weight * per_frame[1]) / 2, rel_tol=1e-6)
            assert math.isclose(float(mse), (1e-2 + 1e-4) / 2, rel_tol=1e-6)  # the plain MSE
            loss.backward()
            grads.append(pred.grad[:, 0, 0, 0])
        assert math.isclose(float(grads[1][0]), float(grads[0][0]), rel_tol=1e-6)
        assert math.isclose(float(grads[1][1]), 3 * float(grads[0][1]), rel_tol=1e-6)


def test_key_rate_scale_sets_the_key_groups_lambda_only():
    frames = smooth_frames(4, 12, 16)
    _, plain = fit_group(frames, 20, rate_lambda=0.0)
    scaled, zero = fit_group(frames, 20, rate_lambda=1.0, key_rate_scale=0.0)
    assert [q.tobytes() for q in zero.latents] == [q.tobytes() for q in plain.latents]
    assert scaled.rate_lambda(key=True) == 0.0 and scaled.rate_lambda(key=False) == 1.0
    assert scaled.motion_bit_price(key=True) == 0.0 < scaled.motion_bit_price()


def test_reference_weight_steers_only_networks_with_motion():
    """The last frame weighs ``reference_weight`` only where the next group moves it."""
    frames = smooth_frames(4, 16, 16)
    frames[-1] = frames[-1].flip(-1)  # a last frame unlike the others
    runs = {}
    for motion in (0, 4):
        net = GridConfig(levels=3, channels=1, hidden=8, layers=1, convs=0, motion=motion)
        for weight in (1.0, 4.0):
            cfg = fit_config("fast", kind="grid", key_iterations=20, reference_weight=weight)
            fit = GroupFitter(GRID, net, cfg, 16, 16, group_size=4).fit(frames, key=True, group_index=0)
            runs[motion, weight] = [q.tobytes() for q in fit.latents]
    assert runs[0, 1.0] == runs[0, 4.0]
    assert runs[4, 1.0] != runs[4, 4.0]


def test_fit_is_deterministic_and_warm_starts():
    frames = smooth_frames(4, 12, 16)
    runs = []
    for _ in range(2):
        fitter, a = fit_group(frames, 10, iterations=6)
        b = fitter.fit(frames.flip(0), key=False, group_index=1)
        assert not b.key
        runs.append([q.tobytes() for q in a.latents + b.latents])
    assert runs[0] == runs[1]


def test_fitting_reaches_a_quality_floor_and_rate_lowers_the_bits():
    frames = smooth_frames(4, 12, 16)
    _, short = fit_group(frames, 2, rate_lambda=0.0)
    _, long = fit_group(frames, 200, rate_lambda=0.0)
    assert long.psnr > 22 and long.psnr > short.psnr + 8
    _, cheap = fit_group(frames, 200, rate_lambda=1.0)
    assert cheap.estimated_bits < 0.7 * long.estimated_bits


def test_grid_payload_codes_levels_and_residuals_exactly():
    frames = smooth_frames(4, 12, 16)
    fitter, a = fit_group(frames, 20, iterations=10)
    b = fitter.fit(frames.flip(0) * 0.95, key=False, group_index=1)  # no cut: a warm group
    assert not b.key
    shapes = tensor_shapes(TINY, 4, 12, 16)
    first = pack_group(GroupPayload(True, 4, a.iterations, a.psnr, a.latents, a.steps), None)
    second_payload = GroupPayload(False, 4, b.iterations, b.psnr, b.latents, b.steps)
    second = pack_group(second_payload, a.latents, prev_scales=a.steps)
    g0 = unpack_group(first, shapes, None)
    g1 = unpack_group(second, shapes, g0.latents, prev_scales=g0.scales)
    for x, y in zip(g1.latents, b.latents):
        np.testing.assert_array_equal(x, y)
    # a warm group keeps its steps: no scale is stored again
    assert g1.scales == b.steps == a.steps and sum(g1.tensor_bytes) + g1.head_bytes == len(second)
    assert math.isclose(sum(second_payload.tensor_bytes), sum(g1.tensor_bytes))
    assert len(second) == len(pack_group(second_payload, a.latents)) - 4 * len(shapes)


@pytest.mark.parametrize("convs", [0, 1])
def test_synthesis_in_pieces_is_the_synthesis_of_the_whole_group(monkeypatch, convs):
    """Frames synthesized a piece at a time give the floats of the whole group at once (the
    very floats through the per-pixel layers; the convolutions and the backward may pick
    other kernels for another batch size), and its gradients."""
    from nirvana import grid

    cfg = GridConfig(levels=3, hidden=8, layers=2, convs=convs)
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(5, 3, 6, 7, generator=gen)
    weights = [torch.randn(s, generator=gen) * 0.3 for s in tensor_shapes(cfg, 5, 6, 7)[cfg.levels:]]
    base = torch.rand(5, 3, 6, 7, generator=gen)
    outputs = []
    for pixels in (10**9, 6 * 7, 2 * 6 * 7):  # all at once, one frame, two frames a piece
        monkeypatch.setattr(grid, "SYNTH_PIXELS", pixels)
        x = features.clone().requires_grad_()
        out = grid.synthesize(x, weights, cfg, base)
        out.backward(torch.ones_like(out))
        outputs.append((out.detach(), x.grad))
    for out, grad in outputs[1:]:
        assert torch.equal(out, outputs[0][0]) if convs == 0 else torch.allclose(out, outputs[0][0], atol=1e-6)
        assert torch.allclose(grad, outputs[0][1], atol=1e-6)
