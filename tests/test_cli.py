"""User mistakes: one clear line on stderr, exit status 1, no traceback, no output left."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from codec.cli import main
from conftest import CARPHONE, DATA


def fails(*args: str, expect: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # what a terminal shows: a progress bar erases itself with a carriage return
    lines = [ln.split("\r")[-1] for ln in result.output.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expect in lines[0], lines[0]
    return lines[0]


def test_missing_input(tmp_path):
    fails("encode", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "x.nirv"), expect="nope.mp4")
    assert not (tmp_path / "x.nirv").exists()


def test_input_that_is_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 10)
    fails("encode", str(bad), "-o", str(tmp_path / "x.nirv"), expect="notes.mp4")
    assert list(tmp_path.iterdir()) == [bad]


def test_unreadable_nirv(tmp_path):
    bad = tmp_path / "junk.nirv"
    bad.write_bytes(b"\x00" * 100)
    fails("decode", str(bad), "-o", str(tmp_path / "out.mp4"), expect="junk.nirv")
    fails("info", str(bad), expect="junk.nirv")
    assert not (tmp_path / "out.mp4").exists()


def test_damaged_nirv_chunk_is_caught(tmp_path):
    from codec.bitstream import NirvReader

    runner = CliRunner()
    good = tmp_path / "g.nirv"
    r = runner.invoke(main, ["encode", str(CARPHONE), "-o", str(good), "--frames", "0:3",
                             "--key-iterations", "5", "-q"])
    assert r.exit_code == 0, r.output
    with NirvReader(good) as reader:
        first_chunk = reader.prelude_size
    data = bytearray(good.read_bytes())
    data[first_chunk + 8 + 20] ^= 0xFF  # inside group 0's payload, past its length and CRC
    bad = tmp_path / "bad.nirv"
    bad.write_bytes(bytes(data))
    fails("decode", str(bad), "-o", str(tmp_path / "out.mkv"), expect="CRC32")
    assert not (tmp_path / "out.mkv").exists()


def test_wrong_size_for_raw_yuv(tmp_path):
    src = DATA / "CiscoVT2people_160x96_12fps.yuv"
    fails("encode", str(src), "-o", str(tmp_path / "x.nirv"), "--size", "333x200", expect="333x200")
    assert not (tmp_path / "x.nirv").exists()


def test_raw_yuv_without_size(tmp_path):
    raw = tmp_path / "clip.yuv"
    raw.write_bytes(bytes(1000))
    fails("encode", str(raw), "-o", str(tmp_path / "x.nirv"), expect="--size")


def test_output_folder_missing(tmp_path):
    fails("encode", str(CARPHONE), "-o", str(tmp_path / "no" / "x.nirv"), expect="does not exist")


def test_decode_output_folder_missing(tmp_path):
    runner = CliRunner()
    good = tmp_path / "g.nirv"
    assert runner.invoke(main, ["encode", str(CARPHONE), "-o", str(good), "--frames", "0:3",
                                "--key-iterations", "5", "-q"]).exit_code == 0
    fails("decode", str(good), "-o", str(tmp_path / "no" / "x.mp4"), expect="does not exist")
    fails("decode", str(good), "-o", str(tmp_path / "x.mp4"), "--frames", "2:9", expect="--frames")
    fails("decode", str(good), "-o", str(tmp_path / "x.mp4"), "--device", "gpu0", expect="device")
    assert not (tmp_path / "x.mp4").exists()


def test_bad_frame_range_and_device(tmp_path):
    fails("encode", str(CARPHONE), "-o", str(tmp_path / "x.nirv"), "--frames", "500:600", expect="carphone")
    fails("encode", str(CARPHONE), "-o", str(tmp_path / "x.nirv"), "--device", "cuda:7",
          expect="device")
    assert not (tmp_path / "x.nirv").exists()


def test_real_process_prints_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "codec", "decode", str(tmp_path / "missing.nirv"),
                        "-o", str(tmp_path / "o.mp4")], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().startswith("error: ") and "Traceback" not in p.stderr
    assert p.stdout == ""


BAD_ENCODE_OPTIONS = [
    (["--frames", "5:2"], "--frames 5:2: need 0 <= START < STOP"),
    (["--frames", "x"], "--frames 'x': expected START:STOP"),
    (["--size", "0x5"], "--size 0x5: width must be between 1 and 16384"),
    (["--size", "99999x99999"], "--size 99999x99999"),
    (["--quality", "-3"], "--quality -3.0: must be between 0 and 10"),
    (["--quality", "11"], "--quality 11.0"),
    (["--quality", "inf"], "--quality inf"),
    (["--quality", "nan"], "--quality nan"),
    (["--distortion", "ssim"], "--distortion 'ssim': choose one of psnr, mse"),
    (["--target-psnr", "nan"], "--target-psnr nan"),
    (["--group-size", "0"], "--group-size 0: must be between 1 and 64"),
    (["--group-size", "-1"], "--group-size -1"),
    (["--model", "siren", "--group-size", "17"], "--group-size 17: must be between 1 and 16"),
    (["--model", "siren", "--patch-size", "0"], "--patch-size 0: must be between 4 and 256"),
    (["--model", "siren", "--patch-size", "512"], "--patch-size 512"),
    (["--model", "siren", "--patch-size", "6"], "--patch-size 6: must be a multiple of 4"),
    (["--patch-size", "8"], "--patch-size applies to --model siren only"),
    (["--model", "siren", "--levels", "3"], "--levels applies to --model grid only"),
    (["--hidden", "0"], "--hidden 0: must be between 1 and 64"),
    (["--context", "33"], "--context 33: must be between 0 and 32"),
    (["--context", "-1"], "--context -1"),
    (["--model", "siren", "--context", "4"], "--context applies to --model grid only"),
    (["--motion", "6"], "--motion 6: must be a multiple of 4"),
    (["--motion", "68"], "--motion 68: must be between 0 and 64"),
    (["--model", "siren", "--motion", "16"], "--motion applies to --model grid only"),
    (["--subpel", "3"], "--subpel 3: must be between 0 and 2"),
    (["--halve-time", "9"], "--halve-time 9: must be between 0 and 8"),
    (["--model", "siren", "--halve-time", "1"], "--halve-time applies to --model grid only"),
    (["--model", "siren", "--no-overlap"], "--overlap applies to --model grid only"),
    (["--model", "siren", "--interpolation", "cubic"], "--interpolation applies to --model grid only"),
    (["--interpolation", "bicubic"], "--interpolation 'bicubic': choose one of bilinear, cubic"),
    (["--key-interval", "0"], "--key-interval 0: must be between 1 and 65535"),
    (["--key-interval", "70000"], "--key-interval 70000"),
    (["--iterations", "0"], "--iterations 0: must be between 1 and 4294967295"),
    (["--iterations", "-5"], "--iterations -5"),
    (["--fps", "nan"], "--fps nan"),
    (["--fps", "1e-9"], "--fps 1e-09"),
    (["--seed", "-1"], "--seed -1"),
]


@pytest.mark.parametrize(("args", "expect"), BAD_ENCODE_OPTIONS, ids=[" ".join(a) for a, _ in BAD_ENCODE_OPTIONS])
def test_bad_encode_option_is_refused_before_anything_is_read(tmp_path, args, expect):
    # the input does not exist: an option error must come before the input is opened
    fails("encode", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.nirv"), *args, expect=expect)
    assert list(tmp_path.iterdir()) == []


def test_bad_decode_and_eval_options(tmp_path):
    good = tmp_path / "g.nirv"
    assert CliRunner().invoke(main, ["encode", str(CARPHONE), "-o", str(good), "--frames", "0:3",
                                     "--key-iterations", "5", "--iterations", "2", "--threads", "1",
                                     "-q"]).exit_code == 0
    for crf in ("-1", "100"):
        fails("decode", str(good), "-o", str(tmp_path / "x.mp4"), "--crf", crf, expect=f"--crf {crf} is outside 0..51")
    fails("decode", str(good), "-o", str(tmp_path / "x.mkv"), "--codec", "libsvtav1", "--crf", "64",
          expect="outside 0..63")
    fails("decode", str(good), "-o", str(tmp_path / "x.mp4"), "--batch", "0", expect="--batch 0")
    fails("eval", str(CARPHONE), "--ref", str(CARPHONE), "--frames", "5:2", expect="stop frame 2")
    fails("eval", str(CARPHONE), "--ref", str(CARPHONE), "--size", "0x5", expect="0x5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nirv"]
