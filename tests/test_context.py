"""The context entropy model of grid levels: exact integer path, coder round trips, hostile
blobs, and an encode whose context-coded file decodes to the encoder's integers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from codec.bitstream import GroupPayload, pack_group, unpack_group
from codec.bitstream.group import CONTEXT, ContextLayout
from codec.context_coder import decode_level, encode_level
from codec.entropy import ans_bytes, ans_decoder
from codec.errors import BitstreamError
from nirvana.context import (ALL_INPUTS, FEATURES, MEAN_FRACTIONS, PHASES, RANGE, SCALES, SPATIAL,
                             FixedPointContext, context_shapes, dense_features, fill_phase, frequency_table,
                             phase_columns, phase_features, phase_values)
from nirvana.grid import GridConfig, context_start, tensor_shapes

from conftest import CARPHONE, frames_of, run


def random_model(seed: int, hidden: int = 8, levels: int = 3, inputs: int = ALL_INPUTS):
    """Integer latents and steps of a context MLP, as a file would hold them."""
    rng = np.random.default_rng(seed)
    latents = [rng.integers(-40, 41, s).astype(np.int32) for s in context_shapes(hidden, levels)]
    steps = [1 / 64, 1 / 16, 1 / 256, 1 / 64, 1 / 32]
    return latents, steps, FixedPointContext(latents, steps, inputs)


def smooth_level(seed: int, shape) -> np.ndarray:
    """Spatially correlated integers with a few outliers (escapes)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 3, (shape[0], shape[1], shape[2] // 2 + 1, shape[3] // 2 + 1))
    level = np.repeat(np.repeat(base, 2, axis=2), 2, axis=3)[:, :, :shape[2], :shape[3]]
    level = np.round(level + rng.normal(0, 0.7, shape)).astype(np.int32)
    level.flat[rng.integers(0, level.size, 3)] = [90, -200, 1000]
    return level


@pytest.mark.parametrize("shape", [(1, 2, 9, 11), (2, 1, 1, 1), (1, 3, 4, 1)])
@pytest.mark.parametrize("inputs", [ALL_INPUTS, SPATIAL, 0])
def test_level_round_trips_exactly(shape, inputs):
    _, _, model = random_model(1, inputs=inputs)
    values = smooth_level(2, shape)
    coarser = smooth_level(3, (shape[0], 1, (shape[2] + 1) // 2, (shape[3] + 1) // 2))
    previous = values + np.random.default_rng(4).integers(-1, 2, shape).astype(np.int32)
    for prev in (None, previous):
        coded = encode_level(values, coarser, prev, model, level=1)
        assert np.array_equal(decode_level(coded.data, shape, coarser, prev, model, level=1, stream=coded.stream()),
                              values)


def test_context_pays_on_correlated_values():
    """A model that predicts a value from its neighbours codes a smooth level in fewer bytes
    than one that sees nothing (whose tables adapt to the level's spread: the margin is what
    the neighbours tell, 5 % here)."""
    hidden = 2
    w1 = np.zeros((hidden, FEATURES), np.int32)
    w1[0, :4], w1[1, :4] = 16, -16  # h0 = relu(sum of neighbours), h1 = relu(-sum)
    w2 = np.array([[4, -4], [0, 0]], np.int32)  # mu = (h0 - h1) / 4 / 16 ... the mean
    latents = [w1, np.zeros(hidden, np.int32), w2, np.array([0, 0]), np.zeros(1, np.int32)]
    steps = [1 / 16, 1.0, 1 / 16, 1.0, 1.0]
    values = smooth_level(5, (1, 1, 32, 32))
    sees = encode_level(values, None, None, FixedPointContext(latents, steps), 0)
    blind = encode_level(values, None, None, FixedPointContext(latents, steps, inputs=0), 0)
    assert sees.size < 0.97 * blind.size


def test_tables_adapt_to_what_the_model_mispredicts():
    """Format 7: a table's counts grow by every symbol coded with it, so a level whose values
    sit where the model does not expect them (here: a constant 2 above a model that predicts
    every value near 0) costs fewer bytes than the fixed tables' own code length."""
    from codec.context_coder import SYMBOLS, LevelTables, _Passes, _frequencies

    _, _, model = random_model(12, inputs=0)  # no features: the same Laplace everywhere
    values = np.full((1, 2, 48, 48), 2, np.int32)
    values[0, :, ::5, ::3] = 0
    coded = encode_level(values, None, None, model, 0, LevelTables(activity=False))  # format 7's tables
    fixed_bits, passes = 0.0, _Passes(values.shape, None, None, model, 0)
    for t, phase in passes.order():
        tables, means = passes.context(t, phase)
        truth = passes.truth(values, t, phase)
        symbols = np.clip(truth - means, -RANGE - 1, RANGE + 1) + RANGE + 1
        for table, symbol in zip(tables.tolist(), symbols.tolist()):
            counts = _frequencies(table)
            assert counts.size == SYMBOLS
            fixed_bits -= np.log2(counts[symbol] / counts.sum())
        passes.fill(t, phase, truth, truth - means)
    assert coded.size < 0.6 * fixed_bits / 8, (coded.size, fixed_bits / 8)  # 0.51 measured
    assert np.array_equal(decode_level(coded.data, values.shape, None, None, model, 0, stream=coded.stream(),
                                       level_tables=LevelTables(activity=False)), values)


def test_tables_split_by_the_neighbours_misses():
    """Format 8: a table's values are split by how far their decoded neighbours missed
    their means (:func:`codec.context_coder.activity`), and each part adapts on its own, so
    a level whose misses come in patches (busy regions in a calm one) costs fewer bytes than
    with one table per (mean, scale); the decoder rebuilds the split from what it decoded."""
    from codec.context_coder import LevelTables

    weights = [np.zeros((2, FEATURES), np.int32), np.zeros(2, np.int32), np.zeros((2, 2), np.int32),
               np.array([0, 8]), np.zeros(1, np.int32)]
    model = FixedPointContext(weights, [1.0, 1.0, 1.0, 0.125, 1.0])  # mu = 0, b = 2 everywhere
    rng = np.random.default_rng(3)
    values = np.zeros((1, 8, 64, 64), np.int32)  # ACTIVITY_MIN_CELLS: the least that is split
    for y, x in rng.integers(0, 56, (10, 2)):
        values[0, :, y:y + 8, x:x + 8] = rng.integers(-6, 7, (8, 8, 8))
    split = encode_level(values, None, None, model, 0)
    whole = encode_level(values, None, None, model, 0, LevelTables(activity=False))
    assert split.size < 0.8 * whole.size, (split.size, whole.size)  # 0.74 measured
    small = values[:, :, :32, :32]  # below ACTIVITY_MIN_CELLS: one bucket, the same code as unsplit
    assert encode_level(small, None, None, model, 0).size == \
        encode_level(small, None, None, model, 0, LevelTables(activity=False)).size
    for coded, tables in ((split, None), (whole, LevelTables(activity=False))):
        back = decode_level(coded.data, values.shape, None, None, model, 0, stream=coded.stream(), level_tables=tables)
        assert np.array_equal(back, values)
    try:  # read with the other kind of tables, it must not come out right
        wrong = decode_level(split.data, values.shape, None, None, model, 0, stream=split.stream(),
                             level_tables=LevelTables(activity=False))
        assert not np.array_equal(wrong, values)
    except BitstreamError:
        pass


def test_warm_groups_carry_the_level_tables():
    """Format 7: a warm group's context-coded levels start from the tables the previous group
    left, a key group's from fresh ones; the decoder must be given the same tables."""
    w1 = np.zeros((2, FEATURES), np.int32)
    w1[0, :4], w1[1, :4] = 16, -16  # as in test_context_pays_on_correlated_values: mu from the neighbours
    latents = [w1, np.zeros(2, np.int32), np.array([[4, -4], [0, 0]], np.int32), np.zeros(2, np.int32),
               np.zeros(3, np.int32)]
    steps = [1 / 16, 1.0, 1 / 16, 1.0, 1.0]
    shapes = [(1, 4, 32, 32), (1, 1, 16, 16), (1, 1, 8, 8)]
    layout = ContextLayout(levels=3, start=3)
    groups = [GroupPayload(k == 0, 4, 10, 30.0, [smooth_level(20 + 3 * k + i, s) for i, s in enumerate(shapes)]
                           + latents, [1.0] * 3 + steps) for k in range(3)]
    groups[2].is_key = True
    datas, prev = [], None
    for g in groups:
        datas.append(pack_group(g, None if prev is None else prev.latents, layout,
                                None if prev is None else prev.scales, residuals=False,
                                prev_tables=None if prev is None else prev.tables))
        prev = g
    assert groups[1].modes[0] == CONTEXT
    every_shape = shapes + [x.shape for x in latents]
    key = unpack_group(datas[0], every_shape, None, layout)
    warm = unpack_group(datas[1], every_shape, key.latents, layout, key.scales, prev_tables=key.tables)
    assert all(np.array_equal(a, b) for a, b in zip(warm.latents, groups[1].latents))
    fresh = pack_group(GroupPayload(False, 4, 10, 30.0, groups[1].latents, groups[1].scales), key.latents,
                       layout, key.scales, residuals=False)
    assert len(datas[1]) < len(fresh)  # the same statistics as the key group's: the counts carry over
    try:
        wrong = unpack_group(datas[1], every_shape, key.latents, layout, key.scales)  # fresh tables
        assert not all(np.array_equal(a, b) for a, b in zip(wrong.latents, groups[1].latents))
    except BitstreamError:
        pass
    again = unpack_group(datas[2], every_shape, warm.latents, layout, warm.scales, prev_tables=warm.tables)
    assert all(np.array_equal(a, b) for a, b in zip(again.latents, groups[2].latents))  # a key group resets
    assert unpack_group(datas[2], every_shape, None, layout).latents[0].tolist() == again.latents[0].tolist()


def test_integer_path_ignores_batching_and_threads():
    _, _, model = random_model(7)
    level = torch.from_numpy(smooth_level(8, (2, 2, 17, 13)).astype(np.float64))
    lattices = phase_columns(level, None, level, t=1, phase=2)
    whole = model.table_indices(lattices, 2, 1, sum(columns[0].numel() for columns in lattices))
    threads = torch.get_num_threads()
    try:  # the same cells, a few rows at a time, on one thread
        torch.set_num_threads(1)
        pieces = [model.table_indices([[None if c is None else c[ch:ch + 1, i:i + 2] for c in columns]],
                                      2, 1, columns[0][ch:ch + 1, i:i + 2].numel())
                  for columns in lattices for ch in range(2) for i in range(0, columns[0].shape[1], 2)]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(whole, zip(*pieces)):
        assert torch.equal(a, torch.cat(b))
    assert int(whole[0].min()) >= 0 and int(whole[0].max()) < MEAN_FRACTIONS * SCALES


def test_frequency_tables_are_fixed():
    """The tables are part of the format: their digest must not change on any machine."""
    digest = hashlib.sha256()
    for fraction in range(MEAN_FRACTIONS):
        for scale in range(SCALES):
            table = frequency_table(fraction, scale)
            assert table.shape == (2 * RANGE + 3,) and table.min() >= 1
            digest.update(table.astype("<i8").tobytes())
    assert digest.hexdigest()[:16] == "fe4f2a86e53de3b8"


def test_split_tables_code_to_fixed_bytes():
    """Format 8's activity buckets are part of the format: a seeded level of 64x64 cells per
    slot (split) codes to the same bytes on every machine and in every later version. (The
    golden files' levels that are context-coded are too small to be split.)"""
    _, _, model = random_model(7)
    values = smooth_level(11, (1, 3, 64, 64))
    coded = encode_level(values, None, None, model, 0)
    stream = coded.stream()
    digest = hashlib.sha256(coded.data + ans_bytes(stream)).hexdigest()[:16]
    assert digest == "e7b317dc3decfb30", digest
    assert np.array_equal(decode_level(coded.data, values.shape, None, None, model, 0, stream=coded.stream()), values)


def test_damaged_blobs_end_in_bitstream_errors():
    _, _, model = random_model(9)
    shape = (1, 2, 8, 8)
    values = smooth_level(10, shape)
    coded = encode_level(values, None, None, model, 0)
    blob, n = coded.data + ans_bytes(coded.stream()), len(coded.data)
    rng = np.random.default_rng(11)
    for _ in range(200):
        bad = bytearray(blob)
        cut = rng.integers(0, 3)
        if cut == 0:
            bad = bad[: rng.integers(0, len(bad))]
        else:
            for i in rng.integers(0, len(bad), cut):
                bad[i] ^= 1 << int(rng.integers(0, 8))
        try:  # the blob, then the group's shared stream
            out = decode_level(bytes(bad[:n]), shape, None, None, model, 0, stream=ans_decoder(bad[n:]))
        except BitstreamError:
            continue
        assert out.shape == shape and out.dtype == np.int32


def test_group_payload_codes_levels_with_the_context_model():
    cfg = GridConfig(levels=3, hidden=4, layers=1, convs=0, context=8)
    shapes = tensor_shapes(cfg, 4, 24, 20)
    start = context_start(cfg)
    model_latents, model_steps, _ = random_model(12)
    rng = np.random.default_rng(13)
    latents = [smooth_level(14 + i, s) if i < 3 else rng.integers(-5, 6, s).astype(np.int32)
               for i, s in enumerate(shapes[:start])] + model_latents
    steps = [0.1] * start + model_steps
    layout = ContextLayout(cfg.levels, start)
    g = GroupPayload(True, 4, 10, 30.0, latents, steps)
    data = pack_group(g, None, layout)
    back = unpack_group(data, shapes, None, layout)
    assert all(np.array_equal(a, b) for a, b in zip(latents, back.latents))
    assert back.modes == g.modes
    if CONTEXT in g.modes:
        with pytest.raises(BitstreamError, match="context-coded"):
            unpack_group(data, shapes, None, None)


def test_old_grid_config_block_reads_as_no_context():
    cfg = GridConfig(levels=4, context=0)
    assert GridConfig.unpack(cfg.pack()[:-2]) == cfg
    with pytest.raises(ValueError, match="context=40"):
        GridConfig.unpack(GridConfig(context=40).pack())


def test_context_encode_decodes_to_the_encoders_reconstruction(tmp_path):
    out = tmp_path / "c.nirv"
    run("encode", str(CARPHONE), "-o", str(out), "--frames", "0:4", "--group-size", "2", "--context", "8", "--quality", "7",
        "--key-iterations", "60", "--iterations", "30", "--threads", "1", "--recon", str(tmp_path / "r.mkv"),
        "--stats", str(tmp_path / "s.json"), "-q")
    run("decode", str(out), "-o", str(tmp_path / "d.mkv"), "--codec", "ffv1", "-q")

    assert np.array_equal(frames_of(tmp_path / "d.mkv"), frames_of(tmp_path / "r.mkv"))
    info = json.loads(run("info", str(out), "--json"))
    assert info["network"]["context"] == 8
    assert any(t["name"] == "context.w1" for t in info["tensors"])
    assert sum(g["context_tensors"] for g in info["groups"]) > 0


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (1, 2, 1, 5), (1, 1, 4, 1)])
def test_passes_cover_each_cell_once_and_read_only_earlier_passes(shape):
    """Every cell is coded in exactly one pass, and a pass's features are the same whatever
    the cells of its own and later passes hold (the decoder has not filled them yet)."""
    rng = np.random.default_rng(20)
    level = torch.from_numpy(rng.integers(-9, 10, shape).astype(np.float64))
    coarser = torch.from_numpy(rng.integers(-9, 10, (shape[0], 1, (shape[2] + 1) // 2,
                                                      (shape[3] + 1) // 2)).astype(np.float64))
    marks = torch.zeros(shape[2:])
    for phase in range(PHASES):
        fill_phase(marks[None], phase, phase_values(marks[None], phase) + 1)
    assert torch.equal(marks, torch.ones(shape[2:]))
    cells = [phase_values(level[:, 0], p) for p in range(PHASES)]
    assert sorted(torch.cat(cells).tolist()) == sorted(level[:, 0].reshape(-1).tolist())
    for t in range(shape[1]):
        for phase in range(PHASES):
            partial = level.clone()
            partial[:, t + 1:] = 99
            for later in range(phase, PHASES):
                fill_phase(partial[:, t], later, torch.full_like(phase_values(partial[:, t], later), 77.0))
            for inputs in (ALL_INPUTS, SPATIAL):
                assert torch.equal(phase_features(partial, coarser, level, t, phase, inputs),
                                   phase_features(level, coarser, level, t, phase, inputs))


def test_trained_group_decodes_to_the_encoders_integers():
    """Two fitted groups (key, then warm): the decoder rebuilds every integer the fitter
    trained, and each level also round-trips through the context coder on its own."""
    from nirvana.config import fit_config
    from nirvana.fit import GroupFitter
    from nirvana.kinds import KINDS

    frames = torch.from_numpy(frames_of(CARPHONE, stop=8)[:, 40:88, 60:124]).permute(0, 3, 1, 2).float() / 255
    cfg = GridConfig(levels=3, hidden=8, layers=1, convs=1, context=4)
    fitter = GroupFitter(KINDS["grid"], cfg, fit_config("fast", 6, kind="grid", key_iterations=40, iterations=20),
                         48, 64, group_size=4)
    layout = ContextLayout(cfg.levels, context_start(cfg))
    shapes = tensor_shapes(cfg, 4, 48, 64)
    prev = None
    for index in range(2):
        fit = fitter.fit(frames[4 * index:4 * index + 4], key=index == 0, group_index=index)
        data = pack_group(GroupPayload(fit.key, 4, fit.iterations, fit.psnr, fit.latents, fit.steps), prev, layout)
        back = unpack_group(data, shapes, prev, layout)
        assert all(np.array_equal(a, b) for a, b in zip(fit.latents, back.latents))
        model = layout.model(fit.latents, fit.steps)
        for level in range(cfg.levels):
            coarser = fit.latents[level + 1] if level + 1 < cfg.levels else None
            reference = None if prev is None else prev[level]
            coded = encode_level(fit.latents[level], coarser, reference, model, level)
            assert np.array_equal(decode_level(coded.data, shapes[level], coarser, reference, model, level,
                                               stream=coded.stream()), fit.latents[level])
        prev = fit.latents


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (1, 1, 4, 5), (1, 4, 1, 3), (1, 2, 6, 1)])
@pytest.mark.parametrize("inputs", [ALL_INPUTS, SPATIAL, ALL_INPUTS & ~SPATIAL, 0])
def test_training_features_are_the_decoders_for_every_cell(shape, inputs):
    """Training's features of a whole level at once give each cell the features its own pass
    gives it (one time slot and phase at a time, as the decoder computes them)."""
    rng = np.random.default_rng(30)
    C, T, H, W = shape
    level = torch.from_numpy(rng.integers(-9, 10, shape).astype(np.float64))
    coarser = torch.from_numpy(rng.integers(-9, 10, (C, max(1, T - 1), (H + 1) // 2, (W + 1) // 2)).astype(np.float64))
    previous = torch.from_numpy(rng.integers(-9, 10, shape).astype(np.float64))
    for above, before in ((coarser, previous), (None, None)):
        dense = dense_features(level, above, before, inputs)
        cell = torch.arange(level.numel(), dtype=torch.float64).view(shape)  # each cell's column
        for t in range(T):
            for phase in range(PHASES):
                columns = phase_values(cell[:, t], phase).long()
                assert torch.equal(dense[:, columns], phase_features(level, above, before, t, phase, inputs))
        bands = [(top, bottom) for top, bottom in ((0, 1), (1, 3), (2, H), (H - 1, H)) if top < bottom <= H]
        for top, bottom in bands:  # bands of rows: the same features
            band = dense_features(level, above, before, inputs, top, bottom)
            assert torch.equal(band, dense.view(FEATURES, C, T, H, W)[..., top:bottom, :].reshape(FEATURES, -1))
