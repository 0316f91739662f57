"""Damage concealment: ``nirvana decode --conceal`` decodes past a damaged group.

The clip: 5 frames of 32x24 in 3 groups of 2 frames, a key every 2 groups: group 0 (frames
0-1, key), group 1 (frames 2-3, residual of group 0), group 2 (frame 4, key).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import codec
from benchmarks import fuzz
from codec.cli import main
from codec.decoder import GRAY, Concealed
from conftest import REPO, frames_of, run
from test_cli import fails

CLIP = REPO / "tests" / "data" / "clip32x24.y4m"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("conceal") / "clip.nirv"
    run("encode", str(CLIP), "-o", str(path), "--group-size", "2", "--key-interval", "2",
        "--key-iterations", "5", "--iterations", "2", "--threads", "1", "-q")
    return path


@pytest.fixture(scope="module")
def clean(clip, tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("clean") / "frames"
    run("decode", str(clip), "-o", str(out), "-q")
    return frames_of(out)


def flipped(clip: Path, dst: Path, *groups: int) -> Path:
    """``clip`` with one byte of each group's payload flipped: their CRC checks fail."""
    data = bytearray(clip.read_bytes())
    for offset, _ in (fuzz.load(clip).chunks[g] for g in groups):
        data[offset + 8 + 20] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def unparsable(clip: Path, dst: Path, group: int) -> Path:
    """``clip`` with group ``group``'s tensor count set to 127 (one more varint byte would
    shift the payload) and its CRC recomputed."""
    base = fuzz.load(clip)
    field = next(f for f in base.fields if f.name == f"group {group} tensors")
    dst.write_bytes(fuzz.set_field(base, field, 0x7F).data)
    return dst


DAMAGE = {"crc": flipped, "payload": unparsable}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_without_conceal_the_error_names_the_group_and_its_frames(clip, tmp_path, damage):
    bad = DAMAGE[damage](clip, tmp_path / "bad.nirv", 1)
    line = fails("decode", str(bad), "-o", str(tmp_path / "out"), "-q", expect="group 1")
    assert "frames 2..3" in line and "--conceal" in line and "bad.nirv" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_conceal_repeats_the_last_good_frame_until_the_next_key_group(clip, clean, tmp_path, damage):
    bad = DAMAGE[damage](clip, tmp_path / "bad.nirv", 1)
    r = CliRunner().invoke(main, ["decode", str(bad), "-o", str(tmp_path / "out"), "-q", "--conceal"])
    assert r.exit_code == 0, r.output
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: frames 2..3 concealed: ")
    assert "group 1" in warnings[0] and "5 frames" in r.stdout and "(2 concealed)" in r.stdout
    frames = frames_of(tmp_path / "out")
    assert all(np.array_equal(frames[i], clean[i]) for i in (0, 1, 4))  # group 2 is a key
    assert all(np.array_equal(frames[i], clean[1]) for i in (2, 3))
    assert not np.array_equal(clean[2], clean[1])  # so the repeat is visible


def test_damage_with_no_good_frame_before_it_is_gray_and_runs_are_reported(clip, clean, tmp_path):
    bad = flipped(clip, tmp_path / "bad.nirv", 0, 2)
    report = codec.decode(bad, tmp_path / "out", conceal=True)
    assert [(c.start, c.stop) for c in report.concealed] == [(0, 4), (4, 5)]  # two damaged groups
    assert "group 0" in report.concealed[0].reason and "group 2" in report.concealed[1].reason
    assert report.frames == 5 and (frames_of(tmp_path / "out") == GRAY).all()


def test_a_range_reports_only_its_frames(clip, clean, tmp_path):
    bad = flipped(clip, tmp_path / "bad.nirv", 1)
    report = codec.decode(bad, tmp_path / "out", frames="3:5", conceal=True)
    assert report.concealed == [Concealed(3, 4, report.concealed[0].reason)] and report.frames == 2
    frames = frames_of(tmp_path / "out")
    # group 0 (frames 0..1) is rendered first, as group 1 would render on it (motion): its
    # last frame is what the concealed frame 3 repeats
    assert np.array_equal(frames[0], clean[1]) and np.array_equal(frames[1], clean[4])


def test_without_motion_a_range_conceals_with_gray(tmp_path):
    path = tmp_path / "still.nirv"
    run("encode", str(CLIP), "-o", str(path), "--group-size", "2", "--key-interval", "2", "--motion", "0",
        "--key-iterations", "5", "--iterations", "2", "--threads", "1", "-q")
    bad = flipped(path, tmp_path / "bad.nirv", 1)
    codec.decode(bad, tmp_path / "out", frames="3:5", conceal=True)
    assert (frames_of(tmp_path / "out")[0] == GRAY).all()  # no group before the range was decoded


def test_a_clean_file_reports_nothing_concealed(clip, clean, tmp_path):
    report = codec.decode(clip, tmp_path / "out", conceal=True)
    assert report.concealed == [] and "concealed" not in report.summary()
    assert np.array_equal(frames_of(tmp_path / "out"), clean)
