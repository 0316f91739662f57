"""The .nirv format: header, group payloads, container, and damaged files."""

import dataclasses
import os
import struct
import zlib

import numpy as np
import pytest

from codec.bitstream import GroupPayload, Header, NirvReader, NirvWriter, pack_group, unpack_group
from codec.bitstream import container, header
from codec.bitstream.group import CARRIED, INTRA, RESIDUAL, _read_table
from codec.entropy import encode_ints
from codec.errors import BitstreamError
from nirvana.config import NetworkConfig
from nirvana.grid import GridConfig

RNG = np.random.default_rng(99)
SHAPES = [(32, 2), (32,), (48, 32), (48,), (3, 6, 3, 3)]

HEADER = Header(
    width=64,
    height=48,
    num_frames=8,
    fps_num=30000,
    fps_den=1001,
    group_size=3,
    key_interval=2,
    num_groups=3,
    kind="siren",
    network=NetworkConfig(group_size=3, patch_size=32, hidden=32, hidden_layers=2, channels=16, w0=30.0),
)
GRID_HEADER = dataclasses.replace(HEADER, kind="grid", network=GridConfig(levels=5, hidden=12))


def random_latents(scale: float = 3.0) -> list[np.ndarray]:
    return [np.round(RNG.laplace(0, scale, s)).astype(np.int32) for s in SHAPES]


def make_group(is_key: bool, latents: list[np.ndarray], num_frames: int = 3) -> GroupPayload:
    scales = [float(np.float32(0.01 * (i + 1))) for i in range(len(latents))]
    return GroupPayload(is_key, num_frames, 1200, 31.25, latents, scales)


# ----------------------------------------------------------------------------- header


@pytest.mark.parametrize("h", [HEADER, GRID_HEADER])
def test_header_round_trip(h):
    data = h.pack()
    assert len(data) == h.size
    assert Header.unpack(data) == h


def _raw(h: Header, network_bytes: bytes | None = None, code: int | None = None) -> bytes:
    """A version-2 record packed without validation (to test the reader's checks)."""
    from nirvana.kinds import KINDS

    kind = KINDS[h.kind]
    common = header._COMMON.pack(*(getattr(h, name) for name in header._COMMON_FIELDS))
    block = kind.pack_config(h.network) if network_bytes is None else network_bytes
    return common + header._KIND.pack(kind.code if code is None else code, len(block)) + block


@pytest.mark.parametrize(
    "change",
    [
        {"width": 0},
        {"height": 16385},
        {"num_frames": 10**7 + 1},
        {"fps_den": 0},
        {"group_size": 65},
        {"num_groups": 2},  # fewer groups than hold every frame
        {"num_groups": 9},  # more groups than frames
    ],
)
def test_header_rejects_bad_field(change):
    bad = dataclasses.replace(HEADER, **change)
    with pytest.raises(ValueError):
        bad.pack()
    with pytest.raises(BitstreamError, match=next(iter(change))):
        Header.unpack(_raw(bad))


@pytest.mark.parametrize(
    "h, change",
    [
        (HEADER, {"patch_size": 30}),
        (HEADER, {"channels": 260}),
        (HEADER, {"hidden_layers": 0}),
        (HEADER, {"w0": float("nan")}),
        (HEADER, {"w0": -1.0}),
        (GRID_HEADER, {"levels": 0}),
        (GRID_HEADER, {"levels": 11}),
        (GRID_HEADER, {"hidden": 65}),
        (GRID_HEADER, {"halve_time": 9}),
    ],
)
def test_header_rejects_bad_network_field(h, change):
    bad = dataclasses.replace(h, network=dataclasses.replace(h.network, **change))
    with pytest.raises(ValueError, match=next(iter(change))):
        bad.pack()
    with pytest.raises(BitstreamError, match=f"{h.kind} config.*{next(iter(change))}"):
        Header.unpack(_raw(bad))


def test_header_rejects_unknown_kind_and_bad_block():
    with pytest.raises(BitstreamError, match="kind: unknown network kind 7"):
        Header.unpack(_raw(GRID_HEADER, code=7))
    with pytest.raises(BitstreamError, match="grid config.*bytes"):
        Header.unpack(_raw(GRID_HEADER, network_bytes=b"\x01\x02"))
    with pytest.raises(BitstreamError, match="config_length"):
        Header.unpack(GRID_HEADER.pack()[:-1])


def test_header_rejects_wrong_length():
    with pytest.raises(BitstreamError):
        Header.unpack(HEADER.pack()[:5])


# ----------------------------------------------------------------------------- group


def test_key_group_round_trip():
    g = make_group(True, random_latents())
    data = pack_group(g, prev=random_latents())  # prev is ignored for a key group
    assert g.modes == [INTRA] * len(SHAPES)
    assert g.weight_bytes + g.side_bytes == len(data)
    out = unpack_group(data, SHAPES, prev=None)
    assert out.is_key and out.num_frames == 3 and out.iterations == 1200 and out.psnr == 31.25
    assert out.scales == g.scales and out.modes == g.modes
    assert (out.weight_bytes, out.side_bytes) == (g.weight_bytes, g.side_bytes)
    for a, b in zip(out.latents, g.latents):
        assert a.dtype == np.int32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_residual_group_chooses_mode_per_tensor():
    prev = random_latents(scale=20.0)
    latents = [p + RNG.integers(-1, 2, p.shape).astype(np.int32) for p in prev]
    latents[2] = np.round(RNG.laplace(0, 1.0, SHAPES[2])).astype(np.int32)  # unrelated to prev
    g = make_group(False, latents, num_frames=2)
    data = pack_group(g, prev)
    assert g.modes[0] == RESIDUAL and g.modes[2] == INTRA
    out = unpack_group(data, SHAPES, prev)
    assert out.modes == g.modes and not out.is_key and out.num_frames == 2
    for a, b in zip(out.latents, latents):
        np.testing.assert_array_equal(a, b)
    assert len(data) < len(pack_group(make_group(False, latents), None))


def test_carried_mode_predicts_from_the_last_slot():
    prev = random_latents(scale=20.0)
    latents = [np.ascontiguousarray(np.broadcast_to(p[:, -1:], p.shape)) if p.ndim >= 2 else p
               for p in prev]
    latents[0] = latents[0] + 1  # residual vs the carried slot is a constant: nearly free
    g = make_group(False, latents)
    data = pack_group(g, prev)
    assert g.modes == [CARRIED, RESIDUAL, CARRIED, RESIDUAL, CARRIED]
    out = unpack_group(data, SHAPES, prev)
    for a, b in zip(out.latents, latents):
        np.testing.assert_array_equal(a, b)
    # a one-dimensional tensor has no time axis to carry: refused as damage
    head, records, _ = _read_table(data, len(SHAPES), short_lengths=True)
    bad = bytearray(data)
    at = head.head_bytes + records[0][3]  # tensor 1's mode byte
    bad[at] = bad[at] & ~0x03 | CARRIED
    with pytest.raises(BitstreamError, match="tensor 1 .*carried"):
        unpack_group(bytes(bad), SHAPES, prev)


def test_one_ans_stream_holds_every_tensors_symbols():
    """Format 7: the symbols of all a group's tensors follow their blobs in one ANS stream,
    which saves each blob's own stream end; encoder and decoder split the stream among the
    tensors alike, and a stream with more in it than the tensors read is refused."""
    prev = random_latents(scale=20.0)
    g = make_group(False, [p + RNG.integers(-1, 2, p.shape).astype(np.int32) for p in prev])
    data = pack_group(g, prev)
    head, records, blobs_start = _read_table(data, len(SHAPES), short_lengths=True)
    own_streams = [len(encode_ints(x.astype(np.int64) - p)) for x, p in zip(g.latents, prev)]
    assert len(data) - blobs_start < sum(own_streams)
    out = unpack_group(data, SHAPES, prev)
    assert out.tensor_bytes == g.tensor_bytes and sum(g.tensor_bytes) + g.head_bytes == len(data)
    assert all(np.array_equal(a, b) for a, b in zip(out.latents, g.latents))
    with pytest.raises(BitstreamError, match="stream holds more"):
        unpack_group(data + b"\x01\x00\x00\x80", SHAPES, prev)
    with pytest.raises(BitstreamError, match="does not match its tensor table"):  # a stream is no
        unpack_group(data, SHAPES, prev, version=6)                              # format-6 blob


def test_group_errors():
    prev = random_latents(scale=20.0)
    data = pack_group(make_group(False, [p + 1 for p in prev]), prev)
    with pytest.raises(BitstreamError, match="residual"):
        unpack_group(data, SHAPES, prev=None)
    with pytest.raises(BitstreamError, match="residual"):
        unpack_group(data, SHAPES, prev=[np.zeros((1,), np.int32)] * len(SHAPES))
    with pytest.raises(BitstreamError, match="tensors"):
        unpack_group(data, SHAPES[:-1], prev)
    with pytest.raises(BitstreamError):
        unpack_group(data, [(33, 2)] + SHAPES[1:], prev)
    with pytest.raises(BitstreamError):
        unpack_group(data[:-3], SHAPES, prev)
    with pytest.raises(BitstreamError):
        unpack_group(data[:5], SHAPES, prev)
    with pytest.raises(ValueError):
        pack_group(GroupPayload(True, 3, 1, 30.0, random_latents(), [1.0]), None)


# ----------------------------------------------------------------------------- container


def write_file(path, corrupt_header: Header | None = None) -> list[bytes]:
    payloads = [b"key zero" * 10, b"delta one" * 7, b"key two" * 3]
    with NirvWriter(path, HEADER.size) as w:
        for i, p in enumerate(payloads):
            w.add_group(p, is_key=i != 1, frames=(3, 3, 2)[i])
        size = w.close(corrupt_header or HEADER)
    assert size == os.path.getsize(path)
    return payloads


def test_container_round_trip(tmp_path):
    path = tmp_path / "clip.nirv"
    payloads = write_file(path)
    assert os.listdir(tmp_path) == ["clip.nirv"]
    with NirvReader(path) as r:
        assert r.header == HEADER and r.num_groups == 3
        assert r.file_size == os.path.getsize(path)
        assert [r.is_key(i) for i in range(3)] == [True, False, True]
        assert [r.key_group_at_or_before(i) for i in range(3)] == [0, 0, 2]
        assert r.read_group(2) == payloads[2]
        assert r.bytes_read == len(payloads[2])  # random access reads only that chunk
        assert r.read_group(0) == payloads[0]
        assert r.bytes_read == len(payloads[0]) + len(payloads[2])
        with pytest.raises(IndexError):
            r.read_group(3)


def test_read_payload_end_to_end(tmp_path):
    path = tmp_path / "net.nirv"
    h = dataclasses.replace(HEADER, num_frames=5, group_size=3, num_groups=2)
    first, second = random_latents(), random_latents()
    key = make_group(True, first)
    with NirvWriter(path, HEADER.size) as w:
        w.add_group(pack_group(key, None), is_key=True, frames=3)
        w.add_group(pack_group(make_group(False, second, num_frames=2), first, prev_scales=key.scales),
                    is_key=False, frames=2)
        w.close(h)
    with NirvReader(path) as r:
        g0 = r.read_payload(0, SHAPES, None)
        g1 = r.read_payload(1, SHAPES, g0)
        with pytest.raises(BitstreamError, match="net.nirv: group 1"):
            r.read_payload(1, SHAPES[:-1], g0)
        with pytest.raises(BitstreamError, match="group 1: tensor 0 has no scale"):
            r.read_payload(1, SHAPES, None)
    assert g1.scales == g0.scales == key.scales
    for a, b in zip(g1.latents, second):
        np.testing.assert_array_equal(a, b)


def test_compact_records_leave_out_inherited_scales_and_zero_blobs():
    prev = random_latents(scale=20.0)
    key = make_group(True, prev)
    full = pack_group(key, None)
    same = make_group(False, prev)  # nothing changed: every residual is zero
    data = pack_group(same, prev, prev_scales=key.scales)
    # per tensor: a mode byte that says the blob is empty; no scale, no blob
    assert same.tensor_bytes == [1] * len(SHAPES) and same.weight_bytes == 0
    assert len(data) == same.head_bytes + len(SHAPES) < len(full) // 4
    out = unpack_group(data, SHAPES, prev, prev_scales=key.scales)
    assert out.scales == key.scales and all(np.array_equal(a, b) for a, b in zip(out.latents, prev))
    changed = make_group(False, prev)
    changed.scales = [s * 2 for s in key.scales[:1]] + key.scales[1:]
    pack_group(changed, prev, prev_scales=key.scales)
    assert changed.tensor_bytes[0] == 1 + 4 and changed.tensor_bytes[1:] == [1] * (len(SHAPES) - 1)


@pytest.mark.parametrize("count", [1, 6, 7, 40, 1300])
def test_records_hold_short_blob_lengths_in_the_mode_byte(count):
    latent = np.random.default_rng(count).integers(-(2**31), 2**31, count, dtype=np.int64).astype(np.int32)
    length = len(encode_ints(latent))  # from 2 (a constant) to 5000+ bytes
    g = GroupPayload(True, 1, 10, 30.0, [latent], [0.5])
    data = pack_group(g, None)
    # mode byte, scale, and a varint of length - 31 only from 31 bytes on
    assert g.tensor_bytes == [length + 1 + 4 + (length >= 31) + (length - 31 >= 128)]
    assert data[g.head_bytes] >> 3 == min(length, 31)
    np.testing.assert_array_equal(unpack_group(data, [latent.shape], None).latents[0], latent)
    # before version 5 a mode byte's bits 3-7 were 0 and a varint length followed
    with pytest.raises(BitstreamError, match="tensor 0 has an unknown coding mode"):
        unpack_group(data, [latent.shape], None, version=4)


def test_flipped_chunk_byte_fails_crc(tmp_path):
    path = tmp_path / "x.nirv"
    write_file(path)
    data = bytearray(path.read_bytes())
    data[container.prelude_size(HEADER.size) + 8 + 80 + 8 + 5] ^= 0x10  # inside group 1's payload
    path.write_bytes(bytes(data))
    with NirvReader(path) as r:
        assert r.read_group(0)
        with pytest.raises(BitstreamError, match=r"x\.nirv: group 1 chunk fails its CRC32 check"):
            r.read_group(1)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.nirv"
    write_file(path)
    data = path.read_bytes()
    for n in (0, 3, 20, container.prelude_size(HEADER.size) + 30, len(data) - 1):
        path.write_bytes(data[:n])
        with pytest.raises(BitstreamError, match="cut.nirv"):
            NirvReader(path)


def test_bad_magic_and_newer_version(tmp_path):
    path = tmp_path / "x.nirv"
    write_file(path)
    data = path.read_bytes()
    path.write_bytes(b"RIFF" + data[4:])
    with pytest.raises(BitstreamError, match=r"x\.nirv: not a NIRVANA file \(bad magic\)"):
        NirvReader(path)
    path.write_bytes(data[:4] + struct.pack("<H", container.VERSION + 1) + data[6:])
    with pytest.raises(BitstreamError, match=f"version {container.VERSION + 1}.*upgrade"):
        NirvReader(path)


def test_missing_file(tmp_path):
    with pytest.raises(BitstreamError, match="nope.nirv"):
        NirvReader(tmp_path / "nope.nirv")


def test_every_single_byte_flip_is_caught(tmp_path):
    """Any one damaged byte outside payloads is refused on open; inside, on read."""
    path = tmp_path / "f.nirv"
    write_file(path)
    data = path.read_bytes()
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path.write_bytes(bytes(damaged))
        with pytest.raises(BitstreamError):
            with NirvReader(path) as r:
                for i in range(r.num_groups):
                    r.read_group(i)


def test_interrupted_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.nirv"
    with pytest.raises(RuntimeError):
        with NirvWriter(path, HEADER.size) as w:
            w.add_group(b"abc", is_key=True, frames=3)
            raise RuntimeError("encoder crashed")
    assert os.listdir(tmp_path) == []
    with NirvWriter(path, HEADER.size) as w:  # leaving without close() also discards the file
        w.add_group(b"abc", is_key=True, frames=3)
    assert os.listdir(tmp_path) == []


def test_writer_refuses_inconsistent_files(tmp_path):
    path = tmp_path / "out.nirv"
    with pytest.raises(ValueError, match="key"):
        with NirvWriter(path, HEADER.size) as w:
            w.add_group(b"abc", is_key=False, frames=3)
    with pytest.raises(ValueError, match="groups"):
        with NirvWriter(path, HEADER.size) as w:
            w.add_group(b"abc", is_key=True, frames=3)
            w.close(HEADER)  # the header says 3 groups
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("frames", [(3, 3, 1), (4, 2, 2), (0, 3, 5)])
def test_index_group_lengths_must_tile_the_frames(tmp_path, frames):
    """Index entries (version 4 on) give each group's frame count: 1..group_size, summing to
    the header's frame count, or the file is damaged."""
    path = tmp_path / "x.nirv"
    write_file(path)  # groups of 3, 3 and 2 of HEADER's 8 frames
    data = bytearray(path.read_bytes())
    index_offset, count = struct.unpack_from("<QI", data, len(data) - 20)
    for i, n in enumerate(frames):
        data[index_offset + 6 * i + 5] = n  # entries of 6 bytes: length, flags, frames
    index = bytes(data[index_offset:index_offset + 6 * count])
    struct.pack_into("<I", data, len(data) - 8, zlib.crc32(struct.pack("<QI", index_offset, count), zlib.crc32(index)))
    path.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match=r"x\.nirv: index group lengths do not tile 8 frames in groups of 1\.\.3"):
        NirvReader(path)


def test_writer_refuses_groups_that_do_not_tile_the_frames(tmp_path):
    with pytest.raises(ValueError, match="do not tile"):
        with NirvWriter(tmp_path / "out.nirv", HEADER.size) as w:
            for n in (3, 3, 3):
                w.add_group(b"abc", is_key=True, frames=n)
            w.close(HEADER)  # 9 frames, the header says 8
    assert os.listdir(tmp_path) == []
