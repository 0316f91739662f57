"""The representation: patching, quantized weights, the rate estimate, the Triton kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec.entropy import encode_ints
from nirvana.config import FitConfig, NetworkConfig, fit_config, quality_to_lambda
from nirvana.fit import GroupFitter
from nirvana.kinds import KINDS
from nirvana.kernels import sine_linear_torch, sine_linear_triton, triton
from nirvana.model import NirvanaNet
from nirvana.network import tensor_shapes, weights_from_integers
from nirvana.patches import PatchGrid
from nirvana.rate import LOG2E, coded_bits, laplace_bits, laplace_mass_bits
from nirvana.render import render_frames

TINY = NetworkConfig(patch_size=8, hidden=16, channels=4)
SIREN = KINDS["siren"]


@pytest.mark.parametrize("h,w,p", [(1, 1, 4), (29, 37, 8), (144, 176, 16), (17, 64, 32), (32, 32, 32)])
def test_patch_round_trip_any_size(h, w, p):
    grid = PatchGrid(h, w, p)
    frames = torch.rand(3, 3, h, w)
    patches = grid.to_patches(frames)
    assert patches.shape == (grid.count, 3, 3, p, p)
    assert torch.equal(grid.from_patches(patches), frames)
    assert grid.valid_mask().sum() == h * w


def test_patch_centres_are_symmetric_in_unit_square():
    c = PatchGrid(40, 70, 8).centres()
    assert c.shape == (5 * 9, 2)
    assert torch.allclose(c.min(0).values, -c.max(0).values) and c.abs().max() < 1


def test_network_shapes_match_tensor_list():
    net = NirvanaNet(TINY, torch.Generator().manual_seed(0))
    assert [tuple(t.shape) for t in net.exact_weights()] == tensor_shapes(TINY)
    pixels, latents = net(torch.zeros(7, 2))
    assert pixels.shape == (7, 3, 3, 8, 8)
    assert latents.shape == (sum(int(np.prod(s)) for s in tensor_shapes(TINY)),)


def test_paper_sizes_at_1080p():
    cfg = NetworkConfig.for_resolution(1920, 1080)
    count = sum(int(np.prod(s)) for s in tensor_shapes(cfg))
    assert 2.2e6 < count < 2.6e6  # the paper: about 2.4 M weights per group


def test_coded_weights_are_exactly_integers_times_steps():
    net = NirvanaNet(TINY, torch.Generator().manual_seed(1))
    rebuilt = weights_from_integers(net.integer_latents(), net.steps())
    for a, b in zip(net.exact_weights(), rebuilt):
        assert torch.equal(a, b)
    # the training forward uses the same rounded values (up to float rounding of the STE)
    symbols, trained = net.quant()
    assert torch.equal(symbols, torch.cat([torch.from_numpy(q).float().flatten()
                                           for q in net.integer_latents()]))
    for t, w in zip(trained, rebuilt):
        assert torch.allclose(t, w, rtol=0, atol=1e-6 * float(w.abs().max() + 1))


def test_fit_reconstruction_is_what_a_decoder_renders():
    frames = torch.rand(2, 3, 12, 20)
    fitter = GroupFitter(SIREN, TINY, FitConfig(key_iterations=20, min_iterations=20), 12, 20)
    fit = fitter.fit(frames, key=True, group_index=0)
    weights = weights_from_integers(fit.latents, fit.steps)
    again = render_frames(weights, PatchGrid(12, 20, 8), TINY, 2)
    assert torch.equal(again, fit.reconstruction)


def test_fit_is_deterministic():
    frames = torch.rand(3, 3, 16, 16)
    runs = []
    for _ in range(2):
        fitter = GroupFitter(SIREN, TINY, FitConfig(key_iterations=15, iterations=5, min_iterations=5), 16, 16)
        a = fitter.fit(frames, key=True, group_index=0)
        b = fitter.fit(frames * 0.9, key=False, group_index=1)
        runs.append([q.tobytes() for q in a.latents + b.latents])
    assert runs[0] == runs[1]


def test_fitting_improves_quality():
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 24), indexing="ij")
    frames = torch.stack([torch.stack([x, y, (x + y) / 2])] * 3)
    cfg = FitConfig(key_iterations=150, min_iterations=150, rate_lambda=0.0)
    short = GroupFitter(SIREN, TINY, FitConfig(key_iterations=2, min_iterations=2), 16, 24).fit(frames, True, 0)
    long = GroupFitter(SIREN, TINY, cfg, 16, 24).fit(frames, True, 0)
    assert long.psnr > short.psnr + 5


def test_rate_estimate_tracks_coded_size():
    """The Laplace estimate should be within 15 % of what the entropy coder writes for
    Laplace-like integers (the tables' side info is the difference on small tensors)."""
    rng = np.random.default_rng(0)
    for scale, n in [(0.7, 20000), (3.0, 20000), (12.0, 50000)]:
        q = np.round(rng.laplace(0, scale, n)).astype(np.int32)
        estimate = float(laplace_bits(torch.from_numpy(q).float())) / 8
        coded = len(encode_ints(q))
        assert abs(estimate - coded) / coded < 0.15, (scale, estimate, coded)


def test_per_tensor_rate_equals_the_per_symbol_laplace_cost_and_its_gradient():
    def per_symbol(q):  # the definition: -log2 P(q) for every symbol, P fitted to the tensor
        scale = q.detach().abs().mean().clamp_min(1e-3)
        a = q.abs()
        zero = -torch.log2(-torch.expm1(-0.5 / scale))
        other = -torch.log2(0.5 * -torch.expm1(-1.0 / scale)) + (a - 0.5) / scale * LOG2E
        return torch.where(a < 0.5, zero, other).sum()

    gen = torch.Generator().manual_seed(0)
    sizes = [50, 300, 7]
    flat = torch.cat([torch.round(torch.randn(n, generator=gen) * s) for n, s in zip(sizes, (0.3, 4, 0))])
    x = flat.clone().requires_grad_()
    laplace_bits(x, sizes).sum().backward()
    y = flat.clone().requires_grad_()
    expected = torch.stack([per_symbol(part) for part in y.split(sizes)])
    expected.sum().backward()
    assert torch.allclose(laplace_bits(flat, sizes), expected, rtol=1e-5)
    assert torch.allclose(x.grad, y.grad, rtol=1e-5)
    # with a previous group, each tensor costs the cheaper of intra and residual
    previous = flat.clone()
    previous[:50] = 0
    both = coded_bits(flat, sizes, [previous])
    assert torch.allclose(both, expected[0])  # tensors 1 and 2 equal the previous: 0 bits


def test_laplace_mass_bits_and_gradients_follow_the_laplace_cdf():
    """The context model's rate term (gradient worked out by hand) against float64 autograd
    of its definition: -log2 of the Laplace CDF's difference over x ± ½, floored at 2^-16."""
    def cdf(v, mean, b):
        z = (v - mean) / b
        return torch.where(z < 0, 0.5 * torch.exp(z), 1 - 0.5 * torch.exp(-z))

    gen = torch.Generator().manual_seed(0)
    n = 4000
    x = torch.round(torch.randn(n, generator=gen) * 4)
    mean = torch.randn(n, generator=gen) * 2
    mean[:100] = x[:100] + 0.5  # a cell edge on the mean
    log2_scale = torch.rand(n, generator=gen) * 9 - 4
    inputs = [t.clone().requires_grad_() for t in (x, mean, log2_scale)]
    bits = laplace_mass_bits(*inputs)
    bits.sum().backward()
    exact = [t.double().requires_grad_() for t in (x, mean, log2_scale)]
    b = torch.exp2(exact[2])
    mass = cdf(exact[0] + 0.5, exact[1], b) - cdf(exact[0] - 0.5, exact[1], b)
    expected = -torch.log2(mass.clamp_min(2.0 ** -16))
    expected.sum().backward()
    assert (bits == 16).any() and (bits < 0.01).any()  # both the floor and near-certain cells
    assert torch.allclose(bits.double(), expected, rtol=1e-4, atol=1e-5)
    for mine, reference in zip(inputs, exact):
        assert torch.allclose(mine.grad.double(), reference.grad, rtol=1e-3, atol=1e-4)


def test_rate_term_of_real_network_tracks_coded_size():
    net = NirvanaNet(NetworkConfig(patch_size=16, hidden=64, channels=8), torch.Generator().manual_seed(0), 6)
    est = sum(float(laplace_bits(torch.from_numpy(q).float())) for q in net.integer_latents()) / 8
    coded = sum(len(encode_ints(q)) for q in net.integer_latents())
    # uniform-initialised weights are far from Laplace: the estimate is an upper bound here
    assert coded <= est * 1.02 and est < coded * 1.4


def test_quality_knob_is_monotonic():
    lams = [quality_to_lambda(q) for q in range(11)]
    assert all(a > b for a, b in zip(lams, lams[1:]))
    assert fit_config("fast").key_iterations < fit_config("slow").key_iterations
    with pytest.raises(ValueError):
        fit_config("turbo")


@pytest.mark.skipif(triton is None, reason="triton is not installed on this platform")
@pytest.mark.parametrize("m,k,n", [(5, 2, 16), (37, 16, 40), (64, 33, 7)])
def test_triton_sine_linear_matches_torch(m, k, n):
    g = torch.Generator().manual_seed(m)
    x, w, b = torch.randn(2, m, k, generator=g), torch.randn(2, n, k, generator=g) / k, torch.randn(2, n, generator=g)
    got = sine_linear_triton(x, w, b, 30.0)
    assert torch.allclose(got, sine_linear_torch(x, w, b, 30.0), atol=1e-4)
