"""Encode → decode through the CLI on real video: exactness, determinism, random access."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from codec.bitstream import NirvReader
from codec.bitstream.container import VERSION
from conftest import CARPHONE, DATA, FAST, frames_of, run


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    out = run("encode", str(CARPHONE), "-o", str(d / "c.nirv"), "--frames", "0:9",
              "--recon", str(d / "recon.mkv"), "--stats", str(d / "stats.json"), *FAST)
    return d, out


def test_decoded_frames_equal_encoder_reconstruction(encoded, tmp_path):
    d, _ = encoded
    run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "dec.mkv"), "--lossless", "-q")
    decoded, recon = frames_of(tmp_path / "dec.mkv"), frames_of(d / "recon.mkv")
    assert decoded.shape == (9, 144, 176, 3)
    assert np.array_equal(decoded, recon)


def test_reported_psnr_and_bpp_are_the_files(encoded, tmp_path):
    d, out = encoded
    stats = json.loads((d / "stats.json").read_text())
    size = (d / "c.nirv").stat().st_size
    assert stats["file_bytes"] == size
    assert stats["bpp"] == pytest.approx(size * 8 / (176 * 144 * 9))
    assert f"bpp {stats['bpp']:.4f}" in out
    run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "png"), "-q")
    measured = run("eval", str(tmp_path / "png"), "--ref", str(CARPHONE), "--frames", "0:9",
                   "--nirv", str(d / "c.nirv"), "--json")
    m = json.loads(measured)
    assert m["psnr_rgb"] == pytest.approx(stats["psnr"], abs=1e-6)
    # An untrained network (flat grey) scores about 11 dB on carphone; 150 iterations of
    # the key group reach about 23 dB. 20 dB can only be passed by a network that really fits.
    assert m["psnr_rgb"] > 20.0
    assert [g["key"] for g in stats["groups"]] == [True, False, True]


def test_decoding_twice_and_in_batches_is_identical(encoded, tmp_path):
    d, _ = encoded
    for name, batch in (("a", "1"), ("b", "1"), ("c", "2"), ("d", "3")):
        run("decode", str(d / "c.nirv"), "-o", str(tmp_path / f"{name}.mkv"), "--lossless",
            "--batch", batch, "-q")
    first = frames_of(tmp_path / "a.mkv")
    assert np.array_equal(first, frames_of(d / "recon.mkv"))
    for name in "bcd":
        assert np.array_equal(first, frames_of(tmp_path / f"{name}.mkv"))


def test_encoding_is_deterministic(encoded, tmp_path):
    d, _ = encoded
    run("encode", str(CARPHONE), "-o", str(tmp_path / "again.nirv"), "--frames", "0:9", *FAST)
    assert (tmp_path / "again.nirv").read_bytes() == (d / "c.nirv").read_bytes()


def test_random_access_reads_only_needed_chunks(encoded, tmp_path):
    d, _ = encoded
    run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "all.mkv"), "--lossless", "-q")
    full = frames_of(tmp_path / "all.mkv")
    out = run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "part.mkv"), "--lossless",
              "--frames", "7:9", "-q")
    assert np.array_equal(frames_of(tmp_path / "part.mkv"), full[7:9])
    with NirvReader(d / "c.nirv") as r:
        only_last = r.read_group(2)
    assert f"{len(only_last)} payload bytes read" in out  # group 2 is a key group: nothing else
    out = run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "mid.mkv"), "--lossless",
              "--frames", "4:5", "-q")
    assert np.array_equal(frames_of(tmp_path / "mid.mkv"), full[4:5])


def test_info_lists_groups_and_totals(encoded):
    d, _ = encoded
    out = run("info", str(d / "c.nirv"))
    assert "176x144, 9 frames" in out and "2 key groups" in out
    desc = json.loads(run("info", str(d / "c.nirv"), "--json"))
    assert desc["totals"]["file_bytes"] == (d / "c.nirv").stat().st_size
    assert [g["key"] for g in desc["groups"]] == [True, False, True]
    assert desc["groups"][1]["residual_tensors"] > 0


def test_y4m_input(tmp_path):
    src = DATA / "foreman_qcif6.y4m"
    run("encode", str(src), "-o", str(tmp_path / "f.nirv"), "--frames", "0:4", *FAST)
    run("decode", str(tmp_path / "f.nirv"), "-o", str(tmp_path / "f.y4m"), "-q")
    assert frames_of(tmp_path / "f.y4m").shape == (4, 144, 176, 3)


def test_raw_yuv_input_sized_by_name(tmp_path):
    src = DATA / "CiscoVT2people_160x96_12fps.yuv"
    out = run("encode", str(src), "-o", str(tmp_path / "c.nirv"), "--frames", "0:2", "--key-iterations", "20", "-q")
    assert "2 frames 160x96" in out
    with NirvReader(tmp_path / "c.nirv") as r:
        assert (r.header.fps_num, r.header.fps_den) == (12, 1)


def test_odd_sized_single_frame_png_folder(tmp_path):
    from skimage import io as skio

    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    skio.imsave(folder / "f0.png", rng.integers(0, 255, (29, 37, 3), dtype=np.uint8), check_contrast=False)
    run("encode", str(folder), "-o", str(tmp_path / "p.nirv"), "--key-iterations", "10", "-q")
    run("decode", str(tmp_path / "p.nirv"), "-o", str(tmp_path / "out"), "-q")
    assert frames_of(tmp_path / "out").shape == (1, 29, 37, 3)


def test_module_entry_point(encoded):
    d, _ = encoded
    out = subprocess.run([sys.executable, "-m", "codec", "info", str(d / "c.nirv")],
                         capture_output=True, text=True, check=True).stdout
    assert "key groups" in out


def joined_clip(tmp_path):
    """Six carphone frames, then six foreman frames (same size): a scene cut at frame 6."""
    from codec.video import VideoWriter

    joined = tmp_path / "joined.mkv"
    with VideoWriter(joined, 176, 144, 25, lossless=True) as w:
        w.write(np.concatenate([frames_of(CARPHONE, stop=6), frames_of(DATA / "foreman_qcif6.y4m", stop=6)]))
    return joined


def test_scene_cut_becomes_a_key_group(tmp_path):
    """The first foreman group must be coded as a key."""
    joined = joined_clip(tmp_path)
    run("encode", str(joined), "-o", str(tmp_path / "j.nirv"), "--group-size", "3",
        "--key-iterations", "150", "--iterations", "40", "--key-interval", "10",
        "--stats", str(tmp_path / "s.json"), "-q")
    groups = json.loads((tmp_path / "s.json").read_text())["groups"]
    assert [g["key"] for g in groups] == [True, False, True, False]
    assert groups[2]["bytes"] > 2 * groups[1]["bytes"]


def test_a_group_ends_at_a_scene_cut_and_the_next_starts_a_key_group(tmp_path):
    """A cut two frames into a group: that group ends before it (2 frames), the group from the
    cut is a key, and the file decodes, whole and from the cut, to the encoder's frames."""
    joined = joined_clip(tmp_path)
    path = tmp_path / "j.nirv"
    run("encode", str(joined), "-o", str(path), "--group-size", "4", "--key-iterations", "40",
        "--iterations", "20", "--stats", str(tmp_path / "s.json"), "--recon", str(tmp_path / "r.mkv"), "-q")
    groups = json.loads((tmp_path / "s.json").read_text())["groups"]
    assert [(g["index"], g["first_frame"], g["frames"], g["key"]) for g in groups] == [
        (0, 0, 4, True), (1, 4, 2, False), (2, 6, 4, True), (3, 10, 2, False)]
    with NirvReader(path) as reader:
        assert reader.version == VERSION and reader.header.num_groups == 4
        assert [reader.frame_range(i) for i in range(4)] == [(0, 4), (4, 6), (6, 10), (10, 12)]
        assert [reader.is_key(i) for i in range(4)] == [True, False, True, False]
    recon = frames_of(tmp_path / "r.mkv")
    run("decode", str(path), "-o", str(tmp_path / "d.mkv"), "--lossless", "-q")
    assert np.array_equal(frames_of(tmp_path / "d.mkv"), recon)
    run("decode", str(path), "-o", str(tmp_path / "part.mkv"), "--frames", "5:11", "--lossless", "-q")
    assert np.array_equal(frames_of(tmp_path / "part.mkv"), recon[5:11])
    table = run("info", str(path))
    assert "4-5" in table and "6-9" in table  # the groups' frames


def test_a_cut_to_a_fast_scene_starts_one_key_group_not_one_per_frame():
    """After a cut from a still scene to one whose every frame changes a lot, the new scene's
    frames are judged by its own changes: one group from the cut, then groups of G."""
    from codec.encoder import cut_groups

    rng = np.random.default_rng(0)
    still = [np.full((8, 8, 3), 40, np.uint8)] * 5
    fast = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(9)]
    groups = [(len(g), cut) for g, cut in cut_groups(still + fast, 4, 20.0, 6.0)]
    assert groups == [(4, False), (1, False), (4, True), (4, False), (1, False)]
    # a fast pan alone has no cut
    assert [cut for _, cut in cut_groups(fast, 4, 20.0, 6.0)] == [False] * 3


def test_two_workers_write_the_same_file(encoded, tmp_path):
    d, _ = encoded
    run("encode", str(CARPHONE), "-o", str(tmp_path / "w2.nirv"), "--frames", "0:9", "--workers", "2", *FAST)
    assert (tmp_path / "w2.nirv").read_bytes() == (d / "c.nirv").read_bytes()


def test_torchrun_two_ranks_write_the_same_file(encoded, tmp_path):
    d, _ = encoded
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", "29517", "-m", "codec", "encode", str(CARPHONE),
           "-o", str(tmp_path / "tr.nirv"), "--frames", "0:9", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "tr.nirv").read_bytes() == (d / "c.nirv").read_bytes()
    assert p.stdout.count("encoded 9 frames") == 1  # only rank 0 reports


def test_decoder_imports_no_training_code():
    code = "import sys, codec.decoder; print(sorted(m for m in sys.modules if m.startswith('nirvana')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "nirvana.network" in loaded
    for training in ("nirvana.fit", "nirvana.model", "nirvana.quant", "nirvana.rate"):
        assert training not in loaded


def test_distortion_option_reaches_the_fit(tmp_path):
    """``--distortion mse`` is what the encoder fits with (stats), it changes the file, and the
    default for grid is psnr."""
    files = {}
    for extra in ([], ["--distortion", "mse"]):
        name = extra[-1] if extra else "default"
        files[name] = tmp_path / f"{name}.nirv"
        run("encode", str(CARPHONE), "-o", str(files[name]), "--frames", "0:3", "--group-size", "3",
            "--key-iterations", "30", "--stats", str(tmp_path / f"{name}.json"), *extra, "-q")
        assert json.loads((tmp_path / f"{name}.json").read_text())["fit"]["distortion"] == (
            "mse" if extra else "psnr")
    assert files["default"].read_bytes() != files["mse"].read_bytes()


def test_training_keeps_freed_memory_in_the_process(monkeypatch):
    """glibc is asked to keep freed blocks up to 32 MB (the mmap threshold) and 1 GB of free
    memory (the trim threshold); anything else, or a libc without mallopt, is reported."""
    from codec import schedule

    calls, answer = [], [1]

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return answer[0]

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    assert schedule.keep_freed_memory()
    assert calls == [(-3, 32 << 20), (-1, 1 << 30)]
    answer[0] = 0  # refused
    assert not schedule.keep_freed_memory()

    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert not schedule.keep_freed_memory()
    monkeypatch.undo()
    if platform.libc_ver()[0] == "glibc":  # the real allocator takes them
        assert schedule.keep_freed_memory()
