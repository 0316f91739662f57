"""The motion tensor's context coder (codec.motion_coder) and its mode in group payloads."""

import numpy as np
import pytest

from benchmarks.context_speed import seeded_motion
from codec.bitstream import GroupPayload, pack_group, unpack_group
from codec.bitstream.group import CONTEXT, INTRA, SHORT_LENGTHS, ContextLayout
from codec.entropy import ans_bytes, ans_decoder, encode_ints
from codec.errors import BitstreamError
from codec.motion_coder import decode_motion, encode_motion


def clustered_motion(seed: int, shape=(8, 2, 9, 11), escapes: bool = True) -> np.ndarray:
    """Like a real motion tensor: zero but for a few regions where blocks change together."""
    motion = seeded_motion(np.random.default_rng(seed), shape)
    return motion if escapes else np.clip(motion, -2, 2)


def round_trip(motion: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    coded = encode_motion(motion, previous)
    return decode_motion(coded.data, motion.shape, previous, coded.stream())


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_with_and_without_the_previous_group(seed):
    motion, previous = clustered_motion(seed), clustered_motion(seed + 100)
    for prev in (None, previous):
        assert round_trip(motion, prev).tolist() == motion.tolist()


def test_round_trip_of_extremes_and_odd_shapes():
    rng = np.random.default_rng(5)
    for shape in [(1, 2, 1, 1), (3, 2, 1, 7), (2, 2, 5, 1), (4, 2, 6, 6)]:
        motion = rng.integers(-300, 301, shape).astype(np.int32)
        motion.flat[0] = 2**31 - 1
        motion.flat[-1] = -(2**31) + 1
        assert round_trip(motion, None).tolist() == motion.tolist()
    zeros = np.zeros((8, 2, 9, 11), np.int32)
    assert round_trip(zeros, None).tolist() == zeros.tolist()


def test_clustered_motion_costs_less_than_one_table():
    motions = [clustered_motion(seed, escapes=False) for seed in range(6)]
    context = sum(encode_motion(m, p).size for m, p in zip(motions, [None] + motions[:-1]))
    table = sum(len(encode_ints(m)) for m in motions)
    assert context < 0.9 * table


def test_the_previous_group_seeds_the_counts():
    motion = clustered_motion(1, escapes=False)
    assert encode_motion(motion, motion).size < encode_motion(motion, None).size
    # the decoder must be given the same previous group: another one decodes other values or fails
    coded = encode_motion(motion, motion)
    try:
        wrong = decode_motion(coded.data, motion.shape, None, coded.stream())
    except BitstreamError:
        return
    assert wrong.tolist() != motion.tolist()


def test_damaged_blobs_end_in_a_bitstream_error_or_values_of_the_shape():
    motion = clustered_motion(2)
    coded = encode_motion(motion, None)
    blob, n = coded.data + ans_bytes(coded.stream()), len(coded.data)
    rng = np.random.default_rng(0)
    mutants = [blob[:n] for n in range(len(blob))] + [b"\xff" * 12, b"\x80" * 12]
    for _ in range(200):
        data = bytearray(blob)
        data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        mutants.append(bytes(data))
    for data in mutants:
        try:  # the blob, then the group's shared stream
            out = decode_motion(data[:n], motion.shape, None, ans_decoder(data[n:]))
        except BitstreamError:
            continue
        assert out.shape == motion.shape and out.dtype == np.int32


def _motion_group(is_key: bool, motion: np.ndarray) -> GroupPayload:
    return GroupPayload(is_key=is_key, num_frames=8, iterations=10, psnr=30.0,
                        latents=[np.zeros((4, 4), np.int32), motion], scales=[0.1, 1.0])


def test_payload_codes_the_motion_tensor_by_context_and_back():
    layout = ContextLayout(levels=0, start=0, motion=1)
    shapes = [(4, 4), (8, 2, 9, 11)]
    key = _motion_group(True, clustered_motion(3, escapes=False))
    key_data = pack_group(key, None, layout)
    assert key.modes == [INTRA, CONTEXT]
    warm = _motion_group(False, clustered_motion(4, escapes=False))
    data = pack_group(warm, key.latents, layout, key.scales)
    assert warm.modes[1] == CONTEXT
    back = unpack_group(key_data, shapes, None, layout)
    assert back.latents[1].tolist() == key.latents[1].tolist()
    back = unpack_group(data, shapes, key.latents, layout, key.scales)
    assert back.latents[1].tolist() == warm.latents[1].tolist()
    # residual coding off: the motion still reads the previous group's counts
    pack_group(warm, key.latents, layout, key.scales, residuals=False)
    assert unpack_group(data, shapes, key.latents, layout, key.scales).latents[1].tolist() == \
        warm.latents[1].tolist()
    with pytest.raises(BitstreamError, match="previous group"):
        unpack_group(data, shapes, None, layout, key.scales)
    with pytest.raises(BitstreamError, match="does not match its tensor table"):  # format 7's stream
        unpack_group(key_data, shapes, None, layout, version=SHORT_LENGTHS)      # is no format-5 blob
    with pytest.raises(BitstreamError, match="no grid level"):
        unpack_group(key_data, shapes, None, None)


def test_repack_keeps_the_integers_and_measures_the_motion_coder(tmp_path):
    from benchmarks.repack import repack
    from conftest import REPO

    golden = REPO / "tests" / "data" / "golden_v5.nirv"
    current = repack(golden, tmp_path / "current.nirv")  # raises if an integer differs
    tables = repack(tmp_path / "current.nirv", tmp_path / "tables.nirv", motion_context=False)
    assert current["repacked_tensor_bytes"]["motion"] < current["tensor_bytes"]["motion"]
    assert tables["repacked_tensor_bytes"]["motion"] > tables["tensor_bytes"]["motion"]
    assert current["repacked_bytes"] < tables["repacked_bytes"] < current["bytes"]


def test_repacked_points_replace_only_the_runs_own_points():
    from benchmarks.repack import repacked_points

    doc = {"points": [
        {"clip": "c", "method": "nirvana-grid", "value": 4.0, "bytes": 1000, "bpp": 0.1},
        {"clip": "c", "method": "nirvana-grid-old", "value": 4.0, "bytes": 1100, "bpp": 0.11},
        {"clip": "c", "method": "x264", "value": 23, "bytes": 900, "bpp": 0.09}]}
    rows = [{"file": "/d/c_q4.nirv", "bytes": 1000, "repacked_bytes": 950}]
    points = repacked_points(doc, rows)["points"]
    assert [p["bytes"] for p in points] == [950, 1100, 900]
    assert points[0]["bpp"] == pytest.approx(0.095) and points[1]["bpp"] == 0.11
