"""Properties (hypothesis): the entropy coder and the container give back exactly what they
were given, for arbitrary int32 tensors, payloads and key flags; damaged blobs fail cleanly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from codec.bitstream import GroupPayload, Header, NirvReader, NirvWriter, pack_group, unpack_group
from codec.entropy import INT32_MAX, INT32_MIN, decode_ints, encode_ints
from codec.errors import BitstreamError
from nirvana.grid import GridConfig

FAST = settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ left behind
WIDTHS = (0, 1, 2, 5, 40, 1000, 2**20, 2**32 - 1)  # value ranges: constant .. every int32


@st.composite
def int32_arrays(draw, max_side: int) -> np.ndarray:
    """An int32 array of 0-3 dimensions (empty ones too) whose values span one of
    :data:`WIDTHS` from a random low end, so that every model of the entropy coder gets its turn."""
    width = draw(st.sampled_from(WIDTHS))
    lo = draw(st.integers(INT32_MIN, INT32_MAX - width))
    shape = draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))
    return draw(arrays(np.int32, shape, elements=st.integers(lo, lo + width)))


@FAST
@given(int32_arrays(max_side=40))
@example(np.array([0, INT32_MAX, INT32_MAX, INT32_MAX], np.int32))  # an escaped core ending at INT32_MAX
def test_entropy_round_trip_is_exact(x):
    out = decode_ints(encode_ints(x), x.size)
    assert out.dtype == np.int32 and np.array_equal(out, x.reshape(-1))


@FAST
@given(int32_arrays(max_side=20), st.data())
def test_damaged_blob_fails_cleanly_or_gives_count_values(x, data):
    """Any byte changed or the blob cut short: a BitstreamError, or ``count`` int32 values."""
    blob = bytearray(encode_ints(x))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = decode_ints(bytes(blob), x.size)
    except BitstreamError:
        return
    assert out.dtype == np.int32 and out.shape == (x.size,)


@st.composite
def groups(draw) -> tuple[GroupPayload, list[np.ndarray] | None]:
    """A group payload and the previous group's latents: none, unrelated, or close to it (so
    that residual and carried-in-time coding are chosen)."""
    latents = draw(st.lists(int32_arrays(max_side=6), min_size=0, max_size=5))
    scales = [draw(st.floats(width=32, allow_nan=False, allow_infinity=False)) for _ in latents]
    g = GroupPayload(is_key=draw(st.booleans()), num_frames=draw(st.integers(1, 255)),
                     iterations=draw(st.integers(0, 2**32 - 1)), psnr=draw(st.floats(width=32)),
                     latents=latents, scales=scales)
    prev = draw(st.sampled_from(["none", "unrelated", "close"]))
    if prev == "none":
        return g, None
    if prev == "unrelated":
        return g, [draw(arrays(np.int32, x.shape)) for x in latents]
    return g, [np.clip(x.astype(np.int64) - draw(arrays(np.int8, x.shape, elements=st.integers(-2, 2))),
                       INT32_MIN, INT32_MAX).astype(np.int32) for x in latents]


@FAST
@given(groups())
def test_group_payload_round_trip_is_exact(case):
    g, prev = case
    data = pack_group(g, prev)
    back = unpack_group(data, [x.shape for x in g.latents], prev)
    assert (back.is_key, back.num_frames, back.iterations) == (g.is_key, g.num_frames, g.iterations)
    assert np.float32(back.psnr).tobytes() == np.float32(g.psnr).tobytes()  # NaN included
    assert back.scales == [float(np.float32(s)) for s in g.scales] and back.modes == g.modes
    assert all(np.array_equal(a, b) for a, b in zip(back.latents, g.latents))
    assert len(back.latents) == len(g.latents) and back.side_bytes + back.weight_bytes == len(data)
    if g.is_key or prev is None:
        assert set(g.modes) <= {0}  # intra only without a usable reference


@FAST
@given(st.lists(st.tuples(st.binary(max_size=300), st.booleans(), st.integers(1, 4)), min_size=1, max_size=8),
       st.integers(0, 3))
def test_container_round_trip_is_exact(chunks, extra):
    """Groups of any length up to the group size (ended early at scene cuts) tile the frames."""
    keys = [True] + [key for _, key, _ in chunks[1:]]  # the first group is always a key
    lengths = [n for _, _, n in chunks]
    header = Header(width=16, height=8, num_frames=sum(lengths), fps_num=30000,
                    fps_den=1001, group_size=max(lengths) + extra, key_interval=3, num_groups=len(chunks),
                    kind="grid", network=GridConfig(levels=2))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.nirv"
        with NirvWriter(path, header.size) as writer:
            for (payload, _, n), key in zip(chunks, keys):
                writer.add_group(payload, is_key=key, frames=n)
            size = writer.close(header)
        assert path.stat().st_size == size
        with NirvReader(path) as reader:
            assert reader.header == header and reader.num_groups == len(chunks)
            assert [reader.read_group(i) for i in range(len(chunks))] == [p for p, _, _ in chunks]
            assert [reader.is_key(i) for i in range(len(chunks))] == keys
            frame = 0
            for i in range(len(chunks)):
                assert reader.key_group_at_or_before(i) == max(k for k in range(i + 1) if keys[k])
                assert reader.frame_range(i) == (frame, frame + lengths[i])
                assert [reader.group_at(f) for f in range(frame, frame + lengths[i])] == [i] * lengths[i]
                frame += lengths[i]
