"""Exact integer coding: round trips, model choice, efficiency and hostile blobs."""

import numpy as np
import pytest

from codec import entropy
from codec.entropy import coded_size, decode_ints, encode_ints, runs, split_sizes
from codec.errors import BitstreamError

RNG = np.random.default_rng(1234)
INT32 = np.iinfo(np.int32)


def laplace_ints(n: int, scale: float, mean: float = 0.0) -> np.ndarray:
    return np.round(RNG.laplace(mean, scale, n)).astype(np.int64)


def empirical_entropy_bytes(x: np.ndarray) -> float:
    _, counts = np.unique(x, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum() / 8)


CASES = {
    "laplace_small": laplace_ints(300, 1.5),
    "laplace_medium": laplace_ints(20_000, 4.0, mean=3.0),
    "laplace_2d": laplace_ints(64 * 48, 0.6).reshape(64, 48),
    "gaussian_uint8": np.clip(RNG.normal(128, 20, 5000), 0, 255).astype(np.uint8),
    "all_zero": np.zeros(1000, np.int32),
    "single_value": np.full((7, 3), -17, np.int16),
    "one_element": np.array([123456]),
    "empty": np.zeros(0, np.int32),
    "two_values": np.array([0] * 999 + [1]),
    "range_1e6": RNG.integers(-(10**6), 10**6, 3000),
    "int32_extremes": np.array([INT32.min, INT32.max, 0, -1, INT32.min]),
    "int32_random": RNG.integers(INT32.min, INT32.max, 2000, endpoint=True),
    "outlier": np.concatenate([laplace_ints(5000, 2.0), [400_000]]),
    "heavy_tail": np.concatenate([laplace_ints(3000, 0.3), RNG.integers(-80, 80, 40)]),
}


@pytest.mark.parametrize("name", CASES)
def test_round_trip(name):
    x = CASES[name]
    blob = encode_ints(x)
    y = decode_ints(blob, x.size)
    assert y.dtype == np.int32 and y.shape == (x.size,)
    np.testing.assert_array_equal(y, x.reshape(-1))
    payload, side = coded_size(x)
    assert payload + side == len(blob)
    assert split_sizes(blob) == (payload, side)


def test_round_trip_large_tensor():
    x = laplace_ints(2_500_000, 3.0).astype(np.int32)
    blob = encode_ints(x)
    assert blob[0] in (entropy.CATEGORICAL, entropy.ESCAPED)  # a table
    np.testing.assert_array_equal(decode_ints(blob, x.size), x)


def test_model_choice():
    assert encode_ints(np.zeros(10**5, np.int32)) == bytes([entropy.CONSTANT, 0])
    assert encode_ints(np.zeros(0, np.int32))[0] == entropy.CONSTANT
    assert encode_ints(laplace_ints(1000, 2.0))[0] == entropy.LAPLACE
    assert encode_ints(laplace_ints(200_000, 2.0))[0] in (entropy.CATEGORICAL, entropy.ESCAPED)
    assert encode_ints(CASES["int32_random"])[0] == entropy.PACKED | 31 << 3  # 32 bits
    # raw bit packing is exact: 2000 values of 32 bits
    assert coded_size(CASES["int32_random"])[0] == 2000 * 4


def test_heavy_tail_pays_a_short_table_and_codes_the_tail_apart(monkeypatch):
    """Motion-like changes (mostly 0 and ±1, a few up to ±80): a table over the core and an
    escape beats one count per value of the whole range, and decodes exactly."""
    x = CASES["heavy_tail"]
    blob = encode_ints(x)
    assert blob[0] == entropy.ESCAPED
    np.testing.assert_array_equal(decode_ints(blob, x.size), x)
    monkeypatch.setattr(entropy, "ESCAPE_WIDTHS", ())
    plain = encode_ints(x)
    assert plain[0] != entropy.ESCAPED and len(blob) < 0.95 * len(plain)


@pytest.mark.parametrize("n, slack", [(200_000, 0.002), (4096, 0.03)])
def test_close_to_empirical_entropy(n, slack):
    x = laplace_ints(n, 3.0)
    payload, side = coded_size(x)
    assert payload <= empirical_entropy_bytes(x) * (1 + slack) + 8
    assert side < 200


def test_small_tensor_beats_table():
    """On a small tensor the parametric model pays no table and stays near the true entropy."""
    x = laplace_ints(512, 1.0)
    payload, side = coded_size(x)
    assert side <= 8
    assert payload + side < 1.2 * empirical_entropy_bytes(x) + 8


def test_rejects_bad_input():
    with pytest.raises(TypeError):
        encode_ints(np.array([0.5, 1.0]))
    with pytest.raises(ValueError):
        encode_ints(np.array([0, 2**31]))
    with pytest.raises(ValueError):
        decode_ints(encode_ints(np.arange(3)), -1)


def zigzag(v: int) -> bytes:
    return entropy._zigzag_varint(v)


def varint(v: int) -> bytes:
    return entropy.varint(v)


def _escapes_without_tail() -> bytes:
    """A valid ESCAPED blob of ten values, one escaped, with its tail blob cut out."""
    x = np.array([0] * 6 + [1] * 3 + [90])
    blob = entropy._escaped(x, 0, 90, None)[0].standalone
    assert entropy._escaped(x, 0, 90, np.bincount(x))[0].standalone == blob  # the caller's counts, same blob
    assert blob[0] == entropy.ESCAPED and np.array_equal(decode_ints(blob, 10), x)
    reader = entropy.BlobReader(blob)
    _, (_, _, tail) = entropy._read_params(reader)
    return blob[: reader.pos - len(varint(tail))] + varint(0) + blob[reader.pos + tail:]


ESCAPED_NO_TAIL = _escapes_without_tail()

HOSTILE = {
    "empty": b"",
    "unknown_kind": bytes([9]),
    "table_size_2^31": bytes([entropy.CATEGORICAL]) + zigzag(0) + varint(2**31) + b"\x01" * 8,
    "table_larger_than_data": bytes([entropy.CATEGORICAL]) + zigzag(0) + varint(2**20) + b"\x01",
    "table_of_one": bytes([entropy.CATEGORICAL]) + zigzag(0) + varint(1) + b"\x05",
    "table_all_zero": bytes([entropy.CATEGORICAL]) + zigzag(0) + varint(3) + b"\x00" * 3,
    "table_count_too_long": bytes([entropy.CATEGORICAL]) + zigzag(0) + varint(2) + b"\xff" * 9,
    "table_past_int32": bytes([entropy.CATEGORICAL]) + zigzag(INT32.max) + varint(2) + b"\x01\x01",
    "overlong_varint": bytes([entropy.CONSTANT]) + b"\xff" * 20,
    "constant_with_tail": bytes([entropy.CONSTANT, 0, 0]),
    "laplace_nan_scale": bytes([entropy.LAPLACE]) + zigzag(0) + varint(4) + zigzag(1)
    + np.float16(np.nan).tobytes(),
    "laplace_mean_outside": bytes([entropy.LAPLACE]) + zigzag(0) + varint(4) + zigzag(9)
    + np.float16(1).tobytes(),
    "raw_bits_0": bytes([entropy.RAW]) + zigzag(0) + bytes([0]),
    "raw_bits_40": bytes([entropy.RAW]) + zigzag(0) + bytes([40]) + b"\x00" * 50,
    "raw_short": bytes([entropy.RAW]) + zigzag(0) + bytes([8]) + b"\x00" * 9,
    "raw_past_int32": bytes([entropy.RAW]) + zigzag(INT32.max) + bytes([8]) + b"\x01" * 10,
    "packed_past_int32": bytes([entropy.PACKED | 7 << 3]) + zigzag(INT32.max) + b"\x01" * 10,
    "packed_short": bytes([entropy.PACKED | 7 << 3]) + zigzag(0) + b"\x00" * 9,
    "ans_not_words": encode_ints(laplace_ints(300, 3.0))[:-1],
    "ans_zero_last_word": encode_ints(laplace_ints(300, 3.0))[:-4] + bytes(4),
    # ESCAPED: core 0..1 and an escape symbol, counts 5 4 1, then the tail's length
    "escape_tail_too_long": bytes([entropy.ESCAPED]) + zigzag(0) + varint(3) + b"\x05\x04\x01"
    + varint(50) + b"\x00" * 8,
    "escape_tail_escaped": bytes([entropy.ESCAPED]) + zigzag(0) + varint(3) + b"\x05\x04\x01"
    + varint(1) + bytes([entropy.ESCAPED]) + b"\x00" * 8,
    "escape_without_tail": ESCAPED_NO_TAIL,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_blob_raises(name):
    with pytest.raises(BitstreamError):
        decode_ints(HOSTILE[name], 10)


def test_wrong_count_is_detected():
    x = laplace_ints(5000, 3.0)
    with pytest.raises(BitstreamError):
        decode_ints(encode_ints(x), x.size - 1)
    with pytest.raises(BitstreamError):
        decode_ints(encode_ints(CASES["int32_random"]), 1999)


def test_random_damage_only_raises_bitstream_error():
    blobs = [encode_ints(x) for x in (laplace_ints(400, 2.0), laplace_ints(30_000, 3.0), CASES["heavy_tail"])]
    sizes = [400, 30_000, CASES["heavy_tail"].size]
    assert blobs[2][0] == entropy.ESCAPED
    rng = np.random.default_rng(7)
    for trial in range(450):
        k = trial % 3
        damaged = bytearray(blobs[k])
        if trial % 3 == 0:
            damaged = damaged[: rng.integers(len(damaged))]
        else:
            damaged[rng.integers(len(damaged))] ^= 1 << int(rng.integers(8))
        try:
            decode_ints(bytes(damaged), sizes[k])
        except BitstreamError:
            pass


@pytest.mark.parametrize("high", [5, 300])  # bytes (radix sort) and wider keys
def test_runs_order_values_stably_by_key(high):
    keys = np.random.default_rng(3).integers(0, high, 5000)
    order, present, lengths = runs(keys)
    assert np.array_equal(order, sorted(range(keys.size), key=lambda i: (keys[i], i)))
    assert np.array_equal(present, np.unique(keys))
    assert np.array_equal(lengths, [np.count_nonzero(keys == k) for k in present])
    assert lengths.sum() == keys.size


def test_runs_of_nothing():
    order, present, lengths = runs(np.zeros(0, np.int64))
    assert order.size == present.size == lengths.size == 0
