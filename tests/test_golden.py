"""Golden files: one small committed .nirv per format version and the md5 of its decoded
frames, so that a change to writer and reader together cannot pass unnoticed.
(``tests/data/make_golden.py`` rebuilds the current version's file after a deliberate change.)"""

import importlib.util

import pytest

from codec.bitstream import NirvReader
from codec.info import describe
from conftest import REPO

DATA = REPO / "tests" / "data"
GOLDEN = {
    # version 1: siren, written by the version-1 writer (commit 668c2bf), 32x24, 5 frames
    "golden_v1.nirv": (1, "siren", (32, 24, 5), "870d705be33ab7b242837b7bde7a752a"),
    # version 2: grid, before the context model (6-byte config block), 32x24, 5 frames
    "golden_v2.nirv": (2, "grid", (32, 24, 5), "00fe05c3a6980e4284a38ef640927330"),
    # version 2: grid with context-coded levels in key and warm groups, 160x96, 4 frames
    "golden_v2_context.nirv": (2, "grid", (160, 96, 4), "672117e117fc5337ba1245d938dc5386"),
    # version 3: compact payloads (inherited scales, empty blobs), motion in warm groups
    "golden_v3.nirv": (3, "grid", (160, 96, 4), "5588f6f641644f7a3c7a78135ed6ab2e"),
    # version 3: a chained key group, half-pixel overlapped motion in the warm group
    "golden_v3_subpel.nirv": (3, "grid", (160, 96, 4), "2d219fef22f1abccaee58f644b04b79c"),
    # version 4: a scene cut; groups of 3, 1 (ended before the cut), 3 (a key from it), 1
    "golden_v4_cut.nirv": (4, "grid", (160, 96, 8), "43da80f04335376cf30b13c6f9979a1a"),
    # version 5: the same encode as v4's (later encoder), short record lengths, packed raw
    # blobs, ANS words without trailing zero bytes
    "golden_v5.nirv": (5, "grid", (160, 96, 8), "d80ef3d0221b22b1d629abb7bb9eeca9"),
    # version 6: the same recipe (later encoder), every motion tensor context-coded
    "golden_v6.nirv": (6, "grid", (160, 96, 8), "def6f36ca0fadc5bdb834dbbbd2a08d8"),
    # version 7: the same recipe (later encoder), one ANS stream per group, context tables that adapt
    "golden_v7.nirv": (7, "grid", (160, 96, 8), "430765531560384086f4ebd6cb72fa48"),
    # version 8: the same recipe (the same fit, so the same frames), context tables split by the
    # neighbours' misses
    "golden_v8.nirv": (8, "grid", (160, 96, 8), "430765531560384086f4ebd6cb72fa48"),
    # version 9: the same recipe, motion between whole pixels read by the cubic filter (a
    # 13-byte grid config block; its chained key groups and warm groups move by half pixels)
    "golden_v9.nirv": (9, "grid", (160, 96, 8), "bb5ffc32e7f06844dc0c8a828e9383f9"),
}
CONTEXT_CODED = {"golden_v2_context.nirv", "golden_v3.nirv", "golden_v3_subpel.nirv", "golden_v4_cut.nirv",
                 "golden_v5.nirv", "golden_v6.nirv", "golden_v7.nirv", "golden_v8.nirv", "golden_v9.nirv"}


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_file_decodes_to_its_md5(name):
    version, kind, size, md5 = GOLDEN[name]
    with NirvReader(DATA / name) as reader:
        assert (reader.version, reader.header.kind) == (version, kind)
        assert (reader.header.width, reader.header.height, reader.header.num_frames) == size
    assert _make_golden().decoded_md5(DATA / name) == md5


@pytest.mark.parametrize("name", ["golden_v4_cut.nirv", "golden_v5.nirv", "golden_v6.nirv", "golden_v7.nirv",
                                  "golden_v8.nirv", "golden_v9.nirv"])
def test_golden_groups_follow_the_cut_and_decode_from_it(name):
    import torch

    from codec.decoder import decoded_groups

    with NirvReader(DATA / name) as reader:
        assert [reader.frame_range(i) for i in range(4)] == [(0, 3), (3, 4), (4, 7), (7, 8)]
        assert [reader.is_key(i) for i in range(4)] == [True, False, True, False]
        whole = torch.cat([g for _, g in decoded_groups(reader, 0, 8)])
        assert [i for i, _ in decoded_groups(reader, 3, 6)] == [1, 2]
        assert torch.equal(torch.cat([g for _, g in decoded_groups(reader, 4, 8)]), whole[4:])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_file_info(name):
    d = describe(DATA / name)
    assert d["version"] == GOLDEN[name][0] and d["header"]["kind"] == GOLDEN[name][1]
    assert sum(t["bytes"] for t in d["tensors"]) + sum(g["head_bytes"] for g in d["groups"]) == \
        d["totals"]["weight_bytes"] + d["totals"]["side_bytes"]
    assert (sum(g["context_tensors"] for g in d["groups"]) > 0) == (name in CONTEXT_CODED)


def test_info_shows_kind_and_bytes_per_level():
    from click.testing import CliRunner

    from codec.cli import main

    r = CliRunner().invoke(main, ["info", str(DATA / "golden_v2.nirv")])
    assert r.exit_code == 0, r.output
    assert "NIRVANA format v2" in r.output and "network: grid (levels" in r.output
    assert "level0" in r.output and "linear0.w" in r.output and "encoder stats 24" in r.output


def _rewrite_header(src, dst, edit) -> None:
    """Copy a v2 file with its header bytes edited by ``edit`` and the header CRC fixed."""
    import struct
    import zlib

    data = bytearray(src.read_bytes())
    size = struct.unpack_from("<H", data, 6)[0]
    head = bytearray(data[8:8 + size])
    edit(head)
    data[8:8 + size] = head
    struct.pack_into("<I", data, 8 + size, zlib.crc32(bytes(head)))
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("name, offset, value, field", [
    ("golden_v2.nirv", 27, 9, "kind"),        # kind byte: no such kind
    ("golden_v2.nirv", 30, 0, "levels"),      # grid config: levels 0
    ("golden_v2.nirv", 33, 200, "hidden"),    # grid config: synthesis width 200
    ("golden_v2_context.nirv", 36, 33, "context"),          # context model width 33
    ("golden_v2_context.nirv", 37, 16, "context_inputs"),   # an input bit that does not exist
    ("golden_v3.nirv", 38, 6, "motion"),    # motion blocks of 6: not a multiple of 4
    ("golden_v3.nirv", 38, 68, "motion"),   # motion blocks of 68: over the bound
    ("golden_v3_subpel.nirv", 39, 2, "chain"),     # chain 2
    ("golden_v3_subpel.nirv", 40, 3, "subpel"),    # eighth pixels: not a precision we have
    ("golden_v3_subpel.nirv", 41, 255, "overlap"),
])
def test_hostile_network_fields_get_one_error_line(tmp_path, name, offset, value, field):
    from click.testing import CliRunner

    from codec.cli import main

    bad = tmp_path / "bad.nirv"

    def edit(head):
        head[offset] = value

    _rewrite_header(DATA / name, bad, edit)
    for command in (["info", str(bad)], ["decode", str(bad), "-o", str(tmp_path / "o.y4m"), "-q"]):
        r = CliRunner().invoke(main, command)
        assert r.exit_code == 1
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "bad.nirv" in lines[0]
        assert field in lines[0]
    assert not (tmp_path / "o.y4m").exists()
