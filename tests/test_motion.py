"""Block motion of warm grid groups: exact prediction, the encoder's search, hostile motion
values, and files whose warm groups render on the previous group's last decoded frame."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import codec
from codec.bitstream import NirvReader
from codec.decoder import decoded_groups, group_shapes
from codec.video import VideoWriter
from nirvana.grid import GridConfig, render, tensor_shapes
from nirvana import grid_model, motion as motion_module
from nirvana.grid_model import GridNet, SparseMove
from nirvana.kinds import KINDS
from nirvana.motion import (MOTION_RANGE, _broadcast_shape, displacements, estimate, motion_shape, predict, shift,
                            shift_gather, subpel_planes, to_reference)

from conftest import CARPHONE, FAST, frames_of, run


def smooth_image(seed: int, height: int, width: int) -> torch.Tensor:
    """A textured (3, H, W) image in [0, 1] that block matching can lock onto."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.random((1, 3, height // 4 + 1, width // 4 + 1))).float()
    big = torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)[0]
    return big + 0.05 * torch.from_numpy(rng.random((3, height, width))).float()


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` whose pixel (y, x) is the original's (y + dy, x + dx), edges repeated."""
    _, h, w = image.shape
    rows = (torch.arange(h) + dy).clamp(0, h - 1)
    cols = (torch.arange(w) + dx).clamp(0, w - 1)
    return image[:, rows][:, :, cols]


def test_prediction_copies_each_block_from_its_displacement():
    ref = smooth_image(0, 24, 40)
    deltas = torch.zeros(motion_shape(3, 24, 40, 8), dtype=torch.int32)
    deltas[0, 0, 1, 2], deltas[0, 1, 1, 2] = 2, -3  # frame 0, block (1, 2): 2 down, 3 left
    deltas[1, 1, 0, 0] = 5  # frame 1 keeps block (1, 2)'s move and moves block (0, 0) 5 right
    frames = predict(ref, deltas, 8, 3)
    moved = shifted(ref, 2, -3)
    assert torch.equal(frames[0, :, 8:16, 16:24], moved[:, 8:16, 16:24])
    assert torch.equal(frames[0, :, :8, :16], ref[:, :8, :16])
    assert torch.equal(frames[1, :, 8:16, 16:24], moved[:, 8:16, 16:24])
    assert torch.equal(frames[1, :, :8, :8], shifted(ref, 0, 5)[:, :8, :8])
    assert torch.equal(frames[2], frames[1])  # no change: the same displacements


def test_hostile_motion_is_clamped_to_the_range():
    deltas = torch.full((3, 2, 2, 2), 2**31 - 1, dtype=torch.int32)
    assert displacements(deltas).max() == MOTION_RANGE
    deltas[:] = -(2**31)
    assert displacements(deltas).min() == -MOTION_RANGE
    ref = smooth_image(1, 16, 16)
    frames = predict(ref, deltas, 8, 3)  # every pixel from the top-left corner, no error
    assert torch.equal(frames, ref[:, :1, :1].expand(3, 3, 16, 16))
    # the decoder's tensors are floats (integer times the stored scale): any value is safe
    floats = torch.tensor([float("nan"), float("inf"), -float("inf"), 3e38]).view(4, 1, 1, 1).expand(4, 2, 2, 2)
    assert displacements(floats).abs().max() <= MOTION_RANGE
    assert predict(ref, floats, 8, 4).shape == (4, 3, 16, 16)


def test_search_finds_a_known_motion():
    ref = smooth_image(2, 64, 96)
    velocity = (1, -2)  # pixels per frame
    frames = torch.stack([shifted(ref, velocity[0] * (t + 1), velocity[1] * (t + 1)) for t in range(4)])
    deltas, _ = estimate(ref, frames, 16, bit_cost=0.01)
    moves = displacements(deltas)
    inner = moves[:, :, 1:-1, 1:-1]  # border blocks see repeated edge pixels
    for t in range(4):
        assert inner[t, 0].eq(velocity[0] * (t + 1)).all() and inner[t, 1].eq(velocity[1] * (t + 1)).all()
    stored = deltas[:, :, 1:-1, 1:-1]  # per frame, the change of displacement: the velocity
    assert stored[:, 0].eq(velocity[0]).all() and stored[:, 1].eq(velocity[1]).all()
    assert torch.allclose(predict(ref, deltas, 16, 4)[:, :, 16:48, 16:80], frames[:, :, 16:48, 16:80])


def test_subpel_shift_is_bilinear_between_whole_pixels():
    ref = smooth_image(5, 16, 16)
    move = torch.zeros(2, 1, 1, dtype=torch.int64)
    move[1] = 6  # 1.5 pixels right, in quarter pixels
    half = shift(ref, move, 16, subpel=2)
    whole = [shifted(ref, 0, d) for d in (1, 2)]
    assert torch.allclose(half, (whole[0] + whole[1]) / 2, atol=1e-7)
    move[1] = -1  # a quarter pixel left: 3/4 of the pixel, 1/4 of its left neighbour
    left = shift(ref, move, 16, subpel=2)
    expected = 0.75 * ref + 0.25 * shifted(ref, 0, -1)
    assert torch.allclose(left, expected, atol=1e-7)
    assert torch.equal(shift(ref, move * 4, 16, subpel=2), shift(ref, move, 16))  # whole pixels
    # a hostile file: clamped to ±MOTION_RANGE pixels, whatever the precision
    assert displacements(torch.full((2, 2, 1, 1), 1e9), subpel=2).max() == MOTION_RANGE * 4


def cubic_read(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """``image`` ``(C, H, W)`` read at ``(y, x)`` by the 4 × 4 pixels around it, each tap's
    row and column clamped to the image, with Keys' cubic weights (a = -1/2)."""
    def keys(d: float) -> float:
        d = abs(d)
        return 1.5 * d**3 - 2.5 * d**2 + 1 if d < 1 else -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2 if d < 2 else 0.0

    _, h, w = image.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = torch.zeros(image.shape[0], dtype=torch.float64)
    for i in range(y0 - 1, y0 + 3):
        for j in range(x0 - 1, x0 + 3):
            total += keys(y - i) * keys(x - j) * image[:, min(max(i, 0), h - 1), min(max(j, 0), w - 1)].double()
    return total


@pytest.mark.parametrize("subpel", [1, 2])
def test_subpel_planes_read_the_image_between_its_pixels_with_cubic_weights(subpel):
    image = smooth_image(3, 9, 11)
    planes = subpel_planes(image, subpel)
    unit = 1 << subpel
    assert planes.shape == (3, unit * unit, 9, 11) and torch.equal(planes[:, 0], image)
    for a in range(unit):
        for b in range(unit):
            for y, x in ((0, 0), (4, 5), (8, 10), (7, 0)):
                torch.testing.assert_close(planes[:, a * unit + b, y, x].double(),
                                           cubic_read(image, y + a / unit, x + b / unit), rtol=0, atol=1e-6)
    # a move reads its fraction's plane at the whole part of the displacement
    move = torch.zeros(2, 1, 1, dtype=torch.int64)
    move[0], move[1] = -unit - 1, 2 * unit + 1  # up by 1 + 1/unit, right by 2 + 1/unit
    moved = shift(image, move, 16, subpel, interpolation=motion_module.CUBIC)
    a = unit - 1  # -(1 + 1/unit) = -2 + (unit - 1) / unit
    torch.testing.assert_close(moved[:, 5, 3].double(), cubic_read(image, 5 - 2 + a / unit, 3 + 2 + 1 / unit),
                               rtol=0, atol=1e-6)


def test_cubic_motion_keeps_the_detail_that_bilinear_blurs():
    """Half a pixel right and back, four times over (a chain of eight moves): the cubic
    planes return close to the image, bilinear reads blur its fine texture away."""
    rng = np.random.default_rng(4)
    small = torch.from_numpy(rng.random((1, 3, 17, 25))).float()  # texture of about two pixels
    image = F.interpolate(small, size=(32, 48), mode="bilinear", align_corners=False)[0]
    right = torch.zeros(2, 2, 3, dtype=torch.int64)
    right[1] = 1
    errors = []
    for interpolation in (motion_module.BILINEAR, motion_module.CUBIC):
        frame = image
        for move in (right, -right) * 4:
            frame = shift(frame, move, 16, subpel=1, overlap=1, interpolation=interpolation)
        errors.append(float(((frame - image)[:, :, 4:-4] ** 2).mean()))
    assert errors[1] < 0.5 * errors[0]
    # a smooth ramp moves exactly (away from the borders): cubic reads reproduce it
    ramp = torch.arange(48.0).expand(3, 32, 48) / 64
    half = shift(ramp, right, 16, subpel=1, interpolation=motion_module.CUBIC)
    assert torch.equal(half[:, :, 1:-2], ramp[:, :, 1:-2] + 0.5 / 64)


def test_cubic_search_finds_half_pixel_motion_better_than_bilinear():
    big = smooth_image(6, 128, 192)
    ref = F.avg_pool2d(big[None], 2)[0]
    frames = F.avg_pool2d(torch.stack([torch.roll(big, (1, -3), (1, 2))]), 2)  # (0.5, -1.5) pixels
    found = [estimate(ref, frames, 16, bit_cost=1e-4, subpel=1, interpolation=i)
             for i in (motion_module.BILINEAR, motion_module.CUBIC)]
    inner = displacements(found[1][0], 1)[0, :, 1:-1, 1:-1]
    assert inner[0].eq(-1).all() and inner[1].eq(3).all()  # in half pixels
    errors = [((predict(ref, d, 16, 1, 1, interpolation=i) - frames)[:, :, 16:-16, 16:-16] ** 2).mean()
              for (d, _), i in zip(found, (motion_module.BILINEAR, motion_module.CUBIC))]
    assert errors[1] < errors[0] and found[1][1][0] < found[0][1][0]


def test_overlap_blends_the_nearest_blocks_without_edges():
    ref = smooth_image(7, 32, 32)
    move = torch.zeros(2, 4, 4, dtype=torch.int64)
    assert torch.allclose(shift(ref, move + 3, 8, overlap=1), shift(ref, move + 3, 8), atol=1e-6)  # one motion
    move[1, 1, 1] = 4  # one block moves 4 pixels right
    plain, blended = shift(ref, move, 8), shift(ref, move, 8, overlap=1)
    moved = shifted(ref, 0, 4)
    # the block's weight falls linearly from its centre (11.5, 11.5) to its neighbours' centres
    # 8 pixels away, where its influence stops
    for y, x in ((11, 11), (12, 11), (11, 7), (5, 16)):
        w = (1 - abs(y - 11.5) / 8) * (1 - abs(x - 11.5) / 8)
        assert torch.allclose(blended[:, y, x], w * moved[:, y, x] + (1 - w) * ref[:, y, x], atol=1e-6)
    assert torch.allclose(blended[:, :, :4], ref[:, :, :4], atol=1e-6)
    assert torch.allclose(blended[:, 20:], ref[:, 20:], atol=1e-6)
    # the plain prediction jumps at the block's border; the blended one moves in steps of 1/8
    row = 11
    jump = (plain[:, row, 8] - plain[:, row, 7]).abs().max()
    assert jump > 4 * (blended[:, row, 8] - blended[:, row, 7]).abs().max()


def test_subpel_search_finds_half_pixel_motion():
    big = smooth_image(6, 128, 192)
    ref = F.avg_pool2d(big[None], 2)[0]
    frames = F.avg_pool2d(torch.stack([torch.roll(big, (1, -3), (1, 2))]), 2)  # (0.5, -1.5) pixels
    whole, _ = estimate(ref, frames, 16, bit_cost=1e-4)
    deltas, costs = estimate(ref, frames, 16, bit_cost=1e-4, subpel=2)
    inner = displacements(deltas, 2)[0, :, 1:-1, 1:-1]
    assert inner[0].eq(-2).all() and inner[1].eq(6).all()  # in quarter pixels
    error = [((predict(ref, d, 16, 1, s) - frames)[:, :, 16:-16, 16:-16] ** 2).mean() for d, s in ((whole, 0), (deltas, 2))]
    assert error[1] < 0.5 * error[0]


def test_old_config_blocks_read_as_no_motion():
    cfg = GridConfig(levels=4, context=8, motion=16, chain=1, subpel=2, overlap=1, interpolation=1)
    packed = cfg.pack()
    assert GridConfig.unpack(packed) == cfg
    assert GridConfig.unpack(packed[:-1]) == replace(cfg, interpolation=0)  # versions 6 to 8: bilinear
    packed = packed[:-1]
    assert GridConfig.unpack(packed[:-1]) == GridConfig(levels=4, context=8, motion=16, chain=1, subpel=2)
    assert GridConfig.unpack(packed[:-2]) == GridConfig(levels=4, context=8, motion=16, chain=1)
    assert GridConfig.unpack(packed[:-3]) == GridConfig(levels=4, context=8, motion=16, chain=0)
    assert GridConfig.unpack(packed[:-4]) == GridConfig(levels=4, context=8, motion=0)
    assert GridConfig.unpack(packed[:-6]).context == 0
    with pytest.raises(ValueError, match="motion=6 is not a multiple of 4"):
        GridConfig.unpack(packed[:-4] + bytes([6, 0, 0, 0]))
    with pytest.raises(ValueError, match="chain=2 is outside 0..1"):
        GridConfig.unpack(packed[:-3] + bytes([2, 0, 0]))
    with pytest.raises(ValueError, match="subpel=3 is outside 0..2"):
        GridConfig.unpack(packed[:-2] + bytes([3, 0]))
    with pytest.raises(ValueError, match="overlap=2 is outside 0..1"):
        GridConfig.unpack(packed[:-1] + bytes([2]))
    with pytest.raises(ValueError, match="interpolation=2 is outside 0..1"):
        GridConfig.unpack(packed + bytes([2]))


def test_default_grid_config_has_motion():
    assert KINDS["grid"].default_config(176, 144).motion == 16
    assert KINDS["grid"].default_config(176, 144).interpolation == motion_module.CUBIC
    assert KINDS["grid"].default_config(1920, 1080).motion == 32
    assert KINDS["grid"].default_config(176, 144).chain == 1


def test_default_motion_precision_follows_the_rate():
    """Half pixels by default and where bits are dear, quarter pixels where they are cheap;
    an explicit --subpel wins."""
    from nirvana.config import quality_to_lambda
    from nirvana.kinds import QUARTER_PIXEL_LAMBDA

    grid = KINDS["grid"]
    assert grid.default_config(176, 144).subpel == 1
    assert grid.default_config(176, 144, QUARTER_PIXEL_LAMBDA * 2).subpel == 1
    assert grid.default_config(176, 144, QUARTER_PIXEL_LAMBDA).subpel == 2
    assert grid.default_config(176, 144, quality_to_lambda(10)).subpel == 2
    assert grid.default_config(176, 144, quality_to_lambda(10), subpel=1).subpel == 1
    assert grid.default_config(176, 144, quality_to_lambda(0), subpel=2).subpel == 2


def test_default_time_slots_follow_the_frame_size():
    grid = KINDS["grid"]
    assert grid.default_config(176, 144).halve_time == 2  # two frames share the finest latents
    assert grid.default_config(320, 180).halve_time == 1  # a slot per frame
    assert grid.default_config(1920, 1080, halve_time=3).halve_time == 3
    assert KINDS["grid"].uses_reference(GridConfig(motion=16))
    assert not KINDS["grid"].uses_reference(GridConfig(motion=0))


@pytest.fixture(scope="module")
def motion_clip(tmp_path_factory):
    """9 carphone frames in 3 groups, key groups 0 and 2 (conftest.FAST), with motion, and its
    reconstruction."""
    folder = tmp_path_factory.mktemp("motion")
    path, recon = folder / "m.nirv", folder / "recon.y4m"
    run("encode", str(CARPHONE), "-o", str(path), "--frames", "0:12", "--motion", "16", "--recon", str(recon),
        *FAST)
    return path, recon


def test_a_file_with_motion_decodes_to_the_encoders_reconstruction(motion_clip, tmp_path):
    path, recon = motion_clip
    with NirvReader(path) as reader:
        cfg = reader.header.network
        assert (cfg.motion, cfg.subpel, cfg.overlap) == (16, 1, 1)  # half pixels, overlapped
        keys = [reader.is_key(i) for i in range(reader.num_groups)]
    assert keys == [True, False, True, False]
    run("decode", str(path), "-o", str(tmp_path / "out.y4m"), "-q")
    assert np.array_equal(frames_of(tmp_path / "out.y4m"), frames_of(recon))
    assert "motion" in run("info", str(path))


def test_motion_bytes_reports_each_warm_groups_motion(motion_clip):
    from benchmarks.motion_bytes import median_residual, motion_rows

    field = np.array([[[4, 4, 5], [4, 6, 5]]])  # (1, By=2, Bx=3): each block less its neighbours' median
    assert median_residual(field).tolist() == [[[4, 0, 1], [0, 2, 0]]]
    path, _ = motion_clip
    rows = motion_rows(str(path))
    assert [r["group"] for r in rows] == [1, 3]  # the warm groups
    with NirvReader(path) as reader:
        shapes = group_shapes(reader.header)
        at = len(shapes) - 2  # the motion tensor, before the chain's
        for row in rows:  # groups 0 and 2 are keys: each warm group's previous group
            payload = reader.read_payload(row["group"], shapes, reader.read_payload(row["group"] - 1, shapes, None))
            assert row["coded"] == payload.tensor_bytes[at] and row["bytes"] == len(reader.read_group(row["group"]))
            assert row["nonzero_frame0"] + row["nonzero_later"] == np.count_nonzero(payload.latents[at])


def test_whole_pixel_motion_without_overlap_and_a_slot_per_frame_decodes_to_the_reconstruction(tmp_path):
    path, recon = tmp_path / "w.nirv", tmp_path / "recon.y4m"
    run("encode", str(CARPHONE), "-o", str(path), "--frames", "0:6", "--subpel", "0", "--no-overlap",
        "--halve-time", "1", "--recon", str(recon), *FAST)
    with NirvReader(path) as reader:
        cfg = reader.header.network
        assert (cfg.subpel, cfg.overlap, cfg.halve_time) == (0, 0, 1)
        assert group_shapes(reader.header)[0][1] == reader.header.group_size  # finest level: a slot per frame
    run("decode", str(path), "-o", str(tmp_path / "out.y4m"), "-q")
    assert np.array_equal(frames_of(tmp_path / "out.y4m"), frames_of(recon))
    text = run("info", str(path))
    assert "subpel 0, overlap 0" in text and "halve_time 1" in text


def test_a_range_inside_a_warm_group_decodes_the_same_frames(motion_clip):
    """Random access renders the chain from the key group, so a warm group's frames do not
    depend on where decoding started."""
    path, _ = motion_clip
    with NirvReader(path) as reader:
        whole = torch.cat([g for _, g in decoded_groups(reader, 0, 12)])
        part = torch.cat([g for _, g in decoded_groups(reader, 4, 6)])
    assert torch.equal(part, whole[3:6])  # group 1 (frames 3..5), which holds the range


def test_warm_groups_score_better_with_motion(tmp_path):
    """On carphone the motion prediction makes warm groups better where the encoder looks:
    higher PSNR, and a higher score on the loss it minimises (mean PSNR less the bits' worth
    at the quality's λ; which way the bytes go depends on the machine's arithmetic at these
    tiny budgets)."""
    from benchmarks.screen import score
    from nirvana.config import quality_to_lambda

    reports = {m: codec.encode(CARPHONE, tmp_path / f"{m}.nirv", model="grid", preset="fast", quality=6,
                               stop=16, key_iterations=80, iterations=30, motion=m, threads=1)
               for m in (0, 16)}
    warm = {m: [g for g in r.groups if not g.key] for m, r in reports.items()}

    def warm_score(groups):
        bpp = sum(g.bytes for g in groups) * 8 / (176 * 144 * sum(g.frames for g in groups))
        return score(sum(g.psnr for g in groups) / len(groups), bpp, quality_to_lambda(6))

    assert min(g.psnr for g in warm[16]) > max(g.psnr for g in warm[0])
    assert warm_score(warm[16]) > warm_score(warm[0]) + 1.0
    with NirvReader(tmp_path / "16.nirv") as reader:  # q6's λ: quarter pixels by default
        assert reader.header.network.subpel == 2


def cross_fade(frames: int, height: int, width: int) -> torch.Tensor:
    """``(n, 3, H, W)``: one texture fading into another, 1/16 per frame, which no motion of
    an earlier frame predicts but the frame before predicts well."""
    a, b = smooth_image(5, height, width), smooth_image(6, height, width)
    return torch.stack([(1 - t / 16) * a + t / 16 * b for t in range(frames)]).clamp(0, 1)


@pytest.mark.parametrize("subpel", [0, 1])
def test_the_search_finds_the_same_motion_whatever_its_batch(subpel, monkeypatch):
    """Candidates weighed a batch at a time pick what one at a time picks, ties included
    (a flat image ties every candidate: the first, the most negative, must win)."""
    frames = cross_fade(4, 32, 48)
    flat = torch.full((2, 3, 32, 48), 0.5)
    batched = [estimate(f[0], f[1:], 16, bit_cost=0.01, subpel=subpel) for f in (frames, flat)]
    monkeypatch.setattr(motion_module, "SEARCH_BATCH", 1)  # one candidate at a time
    single = [estimate(f[0], f[1:], 16, bit_cost=0.01, subpel=subpel) for f in (frames, flat)]
    for (a, cost_a), (b, cost_b) in zip(batched, single):
        assert torch.equal(a, b) and cost_a == cost_b


def test_the_chained_search_moves_each_frame_from_the_frame_before():
    frames = cross_fade(9, 32, 48)
    fixed, fixed_cost = estimate(frames[0], frames[1:], 16, bit_cost=0.01)
    chained, chained_cost = estimate(frames[0], frames[1:], 16, bit_cost=0.01, chain=True)
    assert sum(chained_cost) < 0.1 * sum(fixed_cost)  # errors 1 + 1 + ... against 1 + 4 + 9 + ...
    assert len(fixed_cost) == 8 and fixed_cost[-1] > 50 * fixed_cost[0]  # per frame
    velocity = torch.stack([shifted(frames[0], 0, 2 * t) for t in range(1, 5)])  # 2 px per frame
    deltas, _ = estimate(frames[0], velocity, 16, bit_cost=0.01, chain=True)
    inner = displacements(deltas)[:, 1, 1:-1, :-1]
    assert inner.eq(2).all()  # each frame moves 2 px from the frame before, not 2t from the first


@pytest.mark.parametrize("warm", [False, True])
def test_training_renders_chained_frames_as_the_decoder_does(warm):
    """The fit's forward pass (each chained move made once, for every iteration) gives the
    frames that the decoder's render gives from the same integers."""
    cfg = GridConfig(levels=2, hidden=4, layers=1, convs=0, context=0, motion=8, chain=1, subpel=1, overlap=1)
    frames = torch.stack([shifted(smooth_image(5, 16, 24), 0, t) for t in range(4)])
    net = GridNet(cfg, 4, 16, 24, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.quant.weight.normal_(0, 3, generator=torch.Generator().manual_seed(1)).round_()
    reference = smooth_image(6, 16, 24) if warm else None
    if warm:
        net.set_motion(reference, frames, 0.01, frames[0], chain_gain=100.0)  # chained: a gain any search meets
    else:
        net.set_key_motion(frames, 0.01)
    assert net.chain.tolist()[1:] == [1, 1, 1]
    trained, _ = net.predict()
    _, tensors = net.quant()
    rendered = render(list(tensors) + [net.motion.float(), net.chain.float()], cfg, 4, 16, 24, reference=reference)
    torch.testing.assert_close(trained, rendered, rtol=0, atol=1e-6)


def test_a_chained_group_renders_each_frame_on_the_frame_before():
    """Warm: residual + the frame before moved; key: the residual's change + the frame before."""
    cfg = GridConfig(levels=2, hidden=4, layers=1, convs=0, context=0, motion=8, chain=1)
    shapes = tensor_shapes(cfg, group_size=3, height=16, width=24)
    assert shapes[-2:] == [motion_shape(3, 16, 24, 8), (3,)]
    gen = torch.Generator().manual_seed(1)
    tensors = [torch.randn(s, generator=gen) * 0.1 for s in shapes[:-2]]
    motion = torch.zeros(shapes[-2])
    motion[:, 1] = 1  # one column to the right per frame
    reference = smooth_image(3, 16, 24)
    chained = render(tensors + [motion, torch.tensor([0.0, 1.0, 1.0])], cfg, 3, 16, 24, reference=reference)
    residual = render(tensors + [torch.zeros(shapes[-2]), torch.zeros(3)], cfg, 3, 16, 24, reference=torch.zeros(3, 16, 24))
    moves = displacements(motion)
    expected = residual[0] + shift(reference, moves[0], 8)
    assert torch.allclose(chained[0], expected)
    for t in (1, 2):  # from the frame before, rounded as the decoder outputs it
        expected = residual[t] + shift(to_reference(chained[t - 1]), moves[t], 8)
        assert torch.allclose(chained[t], expected)
    # a key group (no reference) adds the change of the residual: its grids hold the content
    key = render(tensors + [motion, torch.tensor([0.0, 1.0, 1.0])], cfg, 3, 16, 24)
    assert torch.allclose(key[0], residual[0] + 0.5)
    for t in (1, 2):
        expected = residual[t] - residual[t - 1] + shift(to_reference(key[t - 1]), moves[t], 8)
        assert torch.allclose(key[t], expected)
    # whatever else a hostile chain tensor holds means "from the previous group's frame"
    hostile = render(tensors + [motion, torch.tensor([float("nan"), 7.0, -1.0])], cfg, 3, 16, 24,
                     reference=reference)
    unchained = render(tensors + [motion, torch.zeros(3)], cfg, 3, 16, 24, reference=reference)
    assert torch.equal(hostile, unchained)
    assert not torch.allclose(unchained[2], chained[2])


@pytest.fixture(scope="module")
def fading_clip(tmp_path_factory):
    """16 frames of a cross-fade in two groups of 8 (a key group and a warm one) with chain
    on, and its reconstruction."""
    folder = tmp_path_factory.mktemp("chain")
    frames = (cross_fade(16, 32, 48) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    with VideoWriter(folder / "fade", 48, 32, Fraction(25)) as out:
        for frame in frames:
            out.write(frame)
    path, recon = folder / "c.nirv", folder / "recon.y4m"
    run("encode", str(folder / "fade"), "--fps", "25", "-o", str(path), "--group-size", "8", "--motion", "16",
        "--chain", "--key-iterations", "150", "--iterations", "40", "--recon", str(recon), "--threads", "1", "-q")
    return path, recon, folder


def test_a_chained_warm_group_decodes_to_the_encoders_reconstruction(fading_clip):
    path, recon, folder = fading_clip
    with NirvReader(path) as reader:
        assert reader.header.network.chain == 1
        shapes = KINDS["grid"].tensor_shapes(reader.header.network, 8, 32, 48)
        key = reader.read_payload(0, shapes, None)
        warm = reader.read_payload(1, shapes, key)
        assert list(key.latents[-1]) == [0, 1, 1, 1, 1, 1, 1, 1]  # every frame after a cut-free first
        assert list(warm.latents[-1]) == [0, 1, 1, 1, 1, 1, 1, 1]  # the search chose the chain
        whole = torch.cat([g for _, g in decoded_groups(reader, 0, 16)])
        part = torch.cat([g for _, g in decoded_groups(reader, 11, 13)])
    assert torch.equal(part, whole[8:16])  # group 1, rendered from its first frame on
    run("decode", str(path), "-o", str(folder / "out.y4m"), "-q")
    assert np.array_equal(frames_of(folder / "out.y4m"), frames_of(recon))
    text = run("info", str(path))
    assert "    1 chain " in text and "chain  " in text.split("bytes per tensor")[1]  # group 1; the tensor


def test_no_chain_leaves_the_chain_out_of_the_file(fading_clip, tmp_path):
    _, _, folder = fading_clip
    path = tmp_path / "n.nirv"
    run("encode", str(folder / "fade"), "--fps", "25", "-o", str(path), "--frames", "0:9", "--group-size", "8",
        "--no-chain", "--key-iterations", "20", "--iterations", "5", "--threads", "1", "-q")
    with NirvReader(path) as reader:
        assert reader.header.network.chain == 0
    assert "chain" not in run("info", str(path)).split("bytes per tensor")[1]


def test_a_key_group_chains_every_frame_but_the_first_and_a_cut():
    cfg = GridConfig(levels=2, hidden=4, layers=1, convs=0, context=0, motion=16, chain=1)
    net = GridNet(cfg, 8, 32, 48, torch.Generator().manual_seed(0))
    a, b = smooth_image(7, 32, 48), smooth_image(8, 32, 48)
    frames = torch.stack([shifted(a, 0, t) for t in range(4)] + [shifted(b, 0, t) for t in range(4)])
    net.set_key_motion(frames, bit_cost=0.01)
    assert net.chain.tolist() == [0, 1, 1, 1, 0, 1, 1, 1]
    inner = displacements(net.motion)[:, 1, 1:-1, :-1]
    assert inner[[1, 2, 3, 5, 6, 7]].eq(1).all()  # one column per frame, from the frame before


def test_motion_bit_cost_prices_the_search(monkeypatch):
    """``FitConfig.motion_bit_cost`` is what one motion bit costs the search, in units of the
    loss's bits (× 3λ: squared error summed over channels), in key and warm groups; a dearer
    bit leaves small, noisy moves at zero."""
    from nirvana.config import fit_config
    from nirvana.fit import GroupFitter

    seen = []
    monkeypatch.setattr(GridNet, "set_key_motion", lambda self, frames, bit_cost: seen.append(bit_cost))
    monkeypatch.setattr(GridNet, "set_motion", lambda self, ref, frames, bit_cost, *rest: seen.append(bit_cost))
    kind = KINDS["grid"]
    net = kind.default_config(16, 16, levels=2, context=0)
    for weight in (1.0, 4.0):
        cfg = fit_config("fast", 6, "grid", key_iterations=2, iterations=2, min_iterations=1,
                         motion_bit_cost=weight, motion_cost_follows_mse=False)
        fitter = GroupFitter(kind, net, cfg, 16, 16, group_size=2)
        fitter.fit(torch.rand(2, 3, 16, 16), key=True, group_index=0)
        fitter.fit(torch.rand(2, 3, 16, 16), key=False, group_index=1)
        assert seen[-2:] == [weight * 3 * cfg.rate_lambda] * 2

    # following the MSE (the default): a warm group's price × the previous group's coded MSE
    # / 1e-3, clamped to 1..10 (one-sided); a key group's is never scaled, so a segment fits
    # alike anywhere
    cfg = fit_config("fast", 6, "grid", key_iterations=2, iterations=2, min_iterations=1)
    assert cfg.motion_cost_follows_mse and cfg.motion_cost_mse_floor == 1.0
    base = 3 * cfg.rate_lambda
    fitter = GroupFitter(kind, net, cfg, 16, 16, group_size=2)
    frames = 0.5 + 0.1 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    first = fitter.fit(frames, key=True, group_index=0)
    fitter.fit(frames, key=False, group_index=1)
    coded_mse = sum(10 ** (-p / 10) for p in first.frame_psnrs) / len(first.frame_psnrs)
    assert seen[-2] == base
    assert seen[-1] == pytest.approx(base * min(max(coded_mse / 1e-3, 1.0), 10.0), rel=1e-5)
    for mse, factor in ((1e-6, 1.0), (3e-3, 3.0), (1.0, 10.0)):
        fitter.last_mse = mse
        assert fitter.motion_bit_price() == pytest.approx(base * factor)
    fitter.fit_cfg = replace(cfg, motion_cost_mse_floor=0.1)  # two-sided: cheaper at high quality
    for mse, factor in ((1e-6, 0.1), (3e-3, 3.0), (1.0, 10.0)):
        fitter.last_mse = mse
        assert fitter.motion_bit_price() == pytest.approx(base * factor)
    fitter.fit_cfg = replace(cfg, distortion="mse")
    assert fitter.motion_bit_price() == base  # under mse a unit of error weighs the same at any quality
    fitter.fit(frames, key=True, group_index=0)
    assert fitter.last_mse is not None and seen[-1] == base  # keys: never scaled

    ref = smooth_image(3, 64, 64)
    jitter = torch.stack([shifted(ref, 1, 0) + 0.002 * torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(t))
                          for t in range(2)])
    moved_blocks = [int(estimate(ref, jitter, 16, bit_cost=c)[0].ne(0).sum()) for c in (1e-4, 10.0)]
    assert moved_blocks[0] > 0 and moved_blocks[1] < moved_blocks[0]


@pytest.mark.parametrize("shapes", [[(3, 1), (1, 4)], [(2, 3, 4), (3, 1)], [(5,), (1, 1, 5)], [(4, 6), (4, 6)]])
def test_broadcast_shape_is_torchs(shapes):
    assert _broadcast_shape([torch.Size(s) for s in shapes]) == torch.broadcast_shapes(*shapes)


@pytest.mark.parametrize("subpel, overlap, interpolation", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0),
                                                           (1, 0, 1), (1, 1, 1), (2, 1, 1)])
def test_training_moves_frames_as_the_decoders_gather(subpel, overlap, interpolation):
    """The training's sparse move gives the gather's frame (up to the order of a pixel's
    taps) and the same gradient, on one thread or two; with cubic planes, which the sparse
    move folds into its taps, the same up to rounding."""
    move = torch.randint(-20, 21, (2, 3, 4), generator=torch.Generator().manual_seed(subpel + 2 * overlap))
    gather = shift_gather(move, 8, subpel, overlap, (20, 30), interpolation)
    image = smooth_image(7, 20, 30).requires_grad_()
    weights = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(8))
    expected = gather.apply(image)
    (grad,) = torch.autograd.grad((expected * weights).sum(), image)
    sparse = SparseMove(gather, (20, 30))
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            moved = sparse.apply(image)
            torch.testing.assert_close(moved, expected, rtol=0, atol=1e-6)
            moved_grad = torch.autograd.grad((moved * weights).sum(), image)[0]
            if interpolation:
                torch.testing.assert_close(moved_grad, grad, rtol=0, atol=1e-5)
            else:
                assert torch.equal(moved_grad, grad)
    finally:
        torch.set_num_threads(threads)


def test_large_frames_train_their_chained_moves_with_the_gather(monkeypatch):
    """Above SPARSE_MOVE_PIXELS the fit keeps the gather (the matrices take more memory)."""
    cfg = GridConfig(levels=2, hidden=4, layers=1, convs=0, context=0, motion=8, chain=1, subpel=1, overlap=1)
    net = GridNet(cfg, 3, 16, 24, torch.Generator().manual_seed(0))
    moves, chain = torch.zeros(3, 2, 2, 3, dtype=torch.int64), torch.tensor([0, 1, 1])
    assert all(isinstance(m, SparseMove) for m in net._gathers(moves, chain)[1:])
    monkeypatch.setattr(grid_model, "SPARSE_MOVE_PIXELS", 16 * 24 - 1)
    made = net._gathers(moves, chain)
    assert made[0] is None and all(isinstance(m, motion_module.Gather) for m in made[1:])
