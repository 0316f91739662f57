"""Hostile files and careless inputs: bounded work, one-line errors, no lost data, cleanup.

Hostile files are built CRC-valid from a header and constant entropy blobs, so they are
cheap however large the network they claim; they must be refused from the header alone.
Encodes here are tiny (3 frames of 32x24, a handful of iterations).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import codec
from codec import limits
from codec.bitstream import Header, NirvWriter, container
from codec.bitstream.group import LENGTH_SHIFT, SCALE_FLAG
from codec.cli import main
from codec.decoder import group_shapes
from codec.entropy import varint
from codec.errors import BitstreamError, InputError
from codec.tempfiles import remove_stale, temp_path
from nirvana.config import NetworkConfig
from nirvana.grid import GridConfig
from test_cli import fails

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "clip32x24.y4m"  # 5 frames of 32x24
TINY = ["--frames", "0:3", "--key-iterations", "5", "--iterations", "2", "--threads", "1", "-q"]
NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max


def hostile(path: Path, kind: str, width: int, height: int, frames: int, group_size: int, network,
            fps: tuple[int, int] = (25, 1), psnr: float = 30.0) -> Path:
    """A valid .nirv whose every tensor is one constant blob (value 1), key groups only."""
    groups = -(-frames // group_size)
    header = Header(width=width, height=height, num_frames=frames, fps_num=fps[0], fps_den=fps[1],
                    group_size=group_size, key_interval=1, num_groups=groups, kind=kind, network=network)
    shapes, blob = group_shapes(header), bytes([0, 2])  # entropy kind 0 (constant), zigzag(1)
    with NirvWriter(path, header.size) as writer:
        for i in range(groups):
            n = min(group_size, frames - i * group_size)
            head = bytes([1, n]) + varint(1) + struct.pack("<f", psnr) + varint(len(shapes))
            # intra, a scale, the blob's length in the mode byte (format 5)
            records = (bytes([SCALE_FLAG | len(blob) << LENGTH_SHIFT]) + struct.pack("<f", 0.01)) * len(shapes)
            writer.add_group(head + records + blob * len(shapes), is_key=True, frames=n)
        writer.close(header)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def encode_ok(*args: str) -> None:
    result = CliRunner().invoke(main, ["encode", str(CLIP), *TINY, *args])
    assert result.exit_code == 0, result.output


# --- item 1: a resource budget from the header -----------------------------------------------

HOSTILE = {
    # the largest siren network on a 1x1 frame: 1.7e10 coded values (a 64 GiB allocation before)
    "values": ("siren", 1, 1, 16, 16, NetworkConfig(group_size=16, patch_size=256, hidden=4096,
                                                    hidden_layers=8, channels=256), "values_per_group"),
    # 8K from 4x4 patches with a 2048-wide stem: minutes of work for one frame
    "work-8k": ("siren", 8192, 4320, 1, 1, NetworkConfig(group_size=1, patch_size=4, hidden=2048,
                                                         channels=4), "group_work"),
    # a 1x1 frame rendered as a 256x256 patch with 256 channels: the padding is the work
    "work-padding": ("siren", 1, 1, 16, 16, NetworkConfig(group_size=16, patch_size=256, hidden=8,
                                                          channels=256), "group_work"),
    # 64 frames of 1080p latent grid per group
    "grid-values": ("grid", 1920, 1080, 64, 64, GridConfig(levels=1, channels=1, hidden=1, layers=0,
                                                           convs=0), "values_per_group"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_header_refused_by_every_entry_point(tmp_path, case):
    *spec, quantity = HOSTILE[case]
    path = hostile(tmp_path / "h.nirv", *spec)
    line = fails("info", str(path), expect=quantity)
    assert "h.nirv" in line and "over the limit" in line
    assert fails("decode", str(path), "-o", str(tmp_path / "o.mkv"), expect=quantity) == line
    with pytest.raises(BitstreamError, match=quantity):
        codec.decode(path, tmp_path / "o.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.nirv"]


def test_batch_shrinks_to_the_budget(tmp_path):
    # 32 groups of 50 M coded values on 4x4 frames (peaked at 12.8 GB with 32 groups at once)
    wide = hostile(tmp_path / "w.nirv", "siren", 4, 4, 32, 1,
                   NetworkConfig(group_size=1, patch_size=256, hidden=762, channels=4))
    with limits.open_nirv(wide) as reader:
        spent = limits.budget(reader.header)
    assert spent.values_per_group > 50_000_000
    assert spent.batch(32) * spent.group_bytes <= limits.BATCH_BYTES
    assert spent.batch(32) * spent.group_work <= limits.BATCH_WORK
    # a small file keeps the batch asked for
    small = hostile(tmp_path / "s.nirv", "grid", 32, 24, 4, 2, GridConfig(levels=2))
    with limits.open_nirv(small) as reader:
        assert limits.budget(reader.header).batch(32) == 32


def test_the_budget_counts_the_motions_working_memory():
    """A move holds per pixel its taps' indices and weights, and cubic reads the frame's
    sub-pixel planes (16 at quarter pixels): the budget's memory grows with them."""
    from codec.bitstream import Header

    def group_bytes(**motion) -> float:
        header = Header(width=1920, height=1080, num_frames=8, fps_num=25, fps_den=1, group_size=8,
                        key_interval=20, num_groups=1, kind="grid", network=GridConfig(levels=7, **motion))
        return limits.budget(header).group_bytes

    still = group_bytes()
    bilinear = group_bytes(motion=32, subpel=1, overlap=1)
    assert still < bilinear < group_bytes(motion=32, subpel=2, overlap=1, interpolation=1)
    assert group_bytes(motion=32, subpel=1, overlap=1, interpolation=1) < bilinear  # 4 taps and 12 plane values, not 16 taps


def test_encoder_refuses_a_file_the_decoder_would(tmp_path):
    out = tmp_path / "o.nirv"
    fails("encode", str(CLIP), "-o", str(out), *TINY, "--model", "siren", "--patch-size", "256",
          "--hidden", "4096", "--channels", "256", expect="values_per_group")
    assert not out.exists()


def test_unrepresentable_frame_rate_and_nan_stats(tmp_path):
    fast = hostile(tmp_path / "f.nirv", "grid", 16, 16, 2, 1, GridConfig(levels=2), fps=(2**31, 1))
    for name in ("o.mp4", "o.y4m"):
        fails("decode", str(fast), "-o", str(tmp_path / name), expect="frame rate 2147483648")
    slow = hostile(tmp_path / "s.nirv", "grid", 16, 16, 2, 1, GridConfig(levels=2), fps=(1, 2**31))
    fails("decode", str(slow), "-o", str(tmp_path / "o.mp4"), expect="PNG folder")
    result = CliRunner().invoke(main, ["decode", str(fast), "-o", str(tmp_path / "png"), "-q"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "png").iterdir())) == 2
    nan = hostile(tmp_path / "n.nirv", "grid", 16, 16, 2, 1, GridConfig(levels=2), psnr=float("nan"))
    out = CliRunner().invoke(main, ["info", "--json", str(nan)]).output

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    assert json.loads(out, parse_constant=no_constants)["groups"][0]["psnr"] is None


# --- item 2: encoder options before any fitting ----------------------------------------------


def test_codec_encode_checks_options_before_opening_anything(tmp_path):
    missing = tmp_path / "missing.mp4"  # the option error must come first
    for options, expect in [({"quality": float("nan")}, "--quality"), ({"iterations": 0}, "--iterations"),
                            ({"group_size": 65}, "--group-size"), ({"model": "siren", "patch_size": 512},
                                                                 "--patch-size"),
                            ({"fps": float("nan")}, "--fps"), ({"size": (99999, 99999)}, "--size"),
                            ({"distortion": "ssim"}, "--distortion 'ssim': choose one of psnr, mse"),
                            ({"fit_overrides": {"bogus": 1}}, "unknown fit setting bogus; FitConfig has "),
                            ({"fit_overrides": {"motion_bit_cost": -1}},
                             r"fit setting motion_bit_cost = -1 is invalid; it takes a number in 0\.\.inf"),
                            ({"fit_overrides": {"lr": float("nan")}}, "fit setting lr = nan is invalid"),
                            ({"fit_overrides": {"schedule": "linear"}},
                             "fit setting schedule = 'linear' is invalid; it takes one of constant, cosine"),
                            ({"fit_overrides": {"patience": 2.5}}, r"it takes an integer in 1\.\.inf"),
                            ({"fit_overrides": {"carry_time": 1}}, "carry_time = 1 is invalid; it takes true or false"),
                            ({"network_overrides": {"bogus": 1}}, "unknown grid network setting bogus; it has levels")]:
        with pytest.raises(InputError, match=expect):
            codec.encode(missing, tmp_path / "o.nirv", **options)
    assert list(tmp_path.iterdir()) == []


# --- item 3: no path aliasing, raw .yuv sizes -------------------------------------------------


def test_outputs_never_alias_the_input_or_each_other(tmp_path):
    src = tmp_path / "in.y4m"
    shutil.copy(CLIP, src)
    before = md5(src)
    os.link(src, tmp_path / "hard.y4m")
    (tmp_path / "soft.nirv").symlink_to(src)
    out = str(tmp_path / "o.nirv")
    cases = [(["-o", str(src)], "the output is the same file as the input"),
             (["-o", str(tmp_path / "." / "in.y4m")], "same file as the input"),
             (["-o", str(tmp_path / "hard.y4m")], "same file as the input"),
             (["-o", str(tmp_path / "soft.nirv")], "same file as the input"),
             (["-o", out, "--recon", str(src)], "--recon is the same file as the input"),
             (["-o", out, "--stats", out], "--stats is the same file as the output"),
             (["-o", out, "--stats", str(tmp_path / "s.json"), "--recon", str(tmp_path / "s.json")],
              "--recon is the same file as --stats")]
    for args, expect in cases:
        fails("encode", str(src), *TINY, *args, expect=expect)
    assert md5(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.y4m", "in.y4m", "soft.nirv"]
    nirv = tmp_path / "clip.mkv"  # a .nirv under a video name, decoded onto itself
    encode_ok("-o", str(tmp_path / "c.nirv"))
    shutil.move(tmp_path / "c.nirv", nirv)
    fails("decode", str(nirv), "-o", str(nirv), expect="the output is the same file as the input")


def test_raw_yuv_with_a_different_size_or_a_partial_frame(tmp_path):
    frame = 32 * 24 * 3 // 2
    named = tmp_path / "clip_32x24.yuv"
    named.write_bytes((bytes(range(256)) * 14)[: 3 * frame])
    fails("encode", str(named), "-o", str(tmp_path / "o.nirv"), *TINY, "--size", "16x16",
          expect="the name says 32x24 but --size is 16x16")
    partial = tmp_path / "part.yuv"
    partial.write_bytes(named.read_bytes()[: 2 * frame + 100])
    fails("encode", str(partial), "-o", str(tmp_path / "o.nirv"), *TINY, "--size", "32x24",
          expect="--ignore-trailing-bytes")
    assert not (tmp_path / "o.nirv").exists()
    result = CliRunner().invoke(main, ["encode", str(partial), "-o", str(tmp_path / "p.nirv"), *TINY,
                                       "--size", "32x24", "--ignore-trailing-bytes"])
    assert result.exit_code == 0, result.output
    assert "encoded 2 frames" in result.output


# --- item 4: the environment ------------------------------------------------------------------


def _failing_open(error: int, after_bytes: int | None = None):
    """A stand-in for ``open`` in the container module: fails at once, or once ``after_bytes``
    have been written (a disk that fills up)."""

    def fake(path, mode="r", *args, **kwargs):
        if after_bytes is None:
            raise OSError(error, os.strerror(error), str(path))
        handle = open(path, mode, *args, **kwargs)
        real_write, written = handle.write, [0]

        def write(data):
            written[0] += len(data)
            if written[0] > after_bytes:
                raise OSError(error, os.strerror(error))
            return real_write(data)

        handle.write = write
        return handle

    return fake


@pytest.mark.parametrize(("error", "after", "expect"), [
    (errno.EROFS, None, "Read-only file system; write elsewhere"),
    (errno.EACCES, None, "Permission denied; check the permissions"),
    (errno.ENOSPC, 200, "No space left on device; free some space"),
], ids=["read-only", "permission", "disk-full"])
def test_os_errors_are_one_line(tmp_path, monkeypatch, error, after, expect):
    monkeypatch.setattr(container, "open", _failing_open(error, after), raising=False)
    line = fails("encode", str(CLIP), "-o", str(tmp_path / "o.nirv"), *TINY, expect=expect)
    assert line.startswith(f"error: {tmp_path / 'o.nirv'}: ")
    assert list(tmp_path.iterdir()) == []


def test_paths_through_files_and_onto_files(tmp_path):
    encode_ok("-o", str(tmp_path / "c.nirv"))
    fails("encode", str(CLIP), "-o", str(CLIP / "x.nirv"), *TINY, expect="is a file, not a folder")
    fails("decode", str(tmp_path / "c.nirv"), "-o", str(CLIP / "x.mkv"), expect="is a file, not a folder")
    plain = tmp_path / "frames"
    plain.write_text("notes")
    fails("decode", str(tmp_path / "c.nirv"), "-o", str(plain), expect="is a file")
    assert plain.read_text() == "notes"
    fails("encode", str(CLIP), "-o", os.devnull, *TINY, expect="not a regular file")


@pytest.fixture
def deadline():
    """Fail a test, rather than hang the suite, if a call blocks for 60 seconds."""

    def expire(signum, frame):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_pipes_and_devices_are_refused(tmp_path, deadline):
    fifo = tmp_path / "pipe.nirv"
    os.mkfifo(fifo)
    fails("info", str(fifo), expect="pipe (FIFO)")
    fails("decode", str(fifo), "-o", str(tmp_path / "o.mkv"), expect="pipe (FIFO)")
    fails("encode", str(fifo), "-o", str(tmp_path / "o.nirv"), *TINY, expect="pipe (FIFO)")
    fails("eval", str(fifo), "--ref", str(CLIP), expect="pipe (FIFO)")
    fails("eval", str(CLIP), "--ref", str(CLIP), "--nirv", str(fifo), expect="pipe (FIFO)")
    fails("info", "/dev/zero", expect="character device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.nirv"]


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path):
    out, recon = tmp_path / "o.nirv", tmp_path / "r.mkv"
    dead = [tmp_path / f".o.nirv.tmp-{NO_SUCH_PID}-0a1b2c3d", tmp_path / f".o.nirv.tmp-{NO_SUCH_PID}",
            tmp_path / f".r.mkv.tmp-{NO_SUCH_PID}-0a1b2c3d.part.mkv"]
    for path in dead:
        path.write_bytes(b"left by a killed encode")
    alive = temp_path(out)  # this process is alive: its temporary must stay
    alive.write_bytes(b"in progress")
    other = tmp_path / f".x.nirv.tmp-{NO_SUCH_PID}-0a1b2c3d"  # another target's: not ours to touch
    other.write_bytes(b"x")
    encode_ok("-o", str(out), "--recon", str(recon))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "o.nirv", "r.mkv"])
    assert remove_stale(tmp_path / "x.nirv") == [other]


def _start_encode(tmp_path: Path) -> subprocess.Popen:
    """A real `nirvana encode` that runs until stopped, once its temporary file exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "codec", "encode", str(CLIP), "-o", str(tmp_path / "o.nirv"), "--recon",
         str(tmp_path / "r.mkv"), "--key-iterations", "100000000", "--threads", "1", "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    give_up = time.monotonic() + 300
    while not any(p.name.startswith(".o.nirv.tmp-") for p in tmp_path.iterdir()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < give_up, "the encode never started writing"
        time.sleep(0.2)
    return process


def test_sigterm_cleans_up_like_ctrl_c_and_sigkill_leftovers_go_next_run(tmp_path):
    process = _start_encode(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "interrupted; no output written" and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []

    process = _start_encode(tmp_path)
    process.kill()
    process.communicate(timeout=300)
    assert any(p.name.startswith(".") for p in tmp_path.iterdir())  # SIGKILL cannot be cleaned up
    encode_ok("-o", str(tmp_path / "o.nirv"), "--recon", str(tmp_path / "r.mkv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.nirv", "r.mkv"]
