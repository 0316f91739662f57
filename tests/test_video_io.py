"""Tests for codec.video: reading every input kind, writing every output kind, user errors."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from skimage import io as skio

from codec.errors import InputError
from codec.video import VideoInfo, VideoWriter, open_video

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # small real clips, cut by tests/data/make_small_data.py
CARPHONE = REPO / "samples" / "carphone.mp4"


def clip(width: int, height: int, n: int) -> np.ndarray:
    """A smooth moving RGB test clip, (n, height, width, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = [
        np.stack([128 + 100 * np.sin((x + 4 * t) / 9), 128 + 100 * np.cos(y / 7), (x + y + 10 * t) % 256], axis=-1)
        for t in range(n)
    ]
    return np.clip(frames, 0, 255).astype(np.uint8)


def read_all(path: Path, **kwargs) -> tuple[VideoInfo, np.ndarray]:
    with open_video(path, **kwargs) as src:
        frames = list(src.frames())
    assert all(f.dtype == np.uint8 and f.flags.c_contiguous for f in frames)
    return src.info, np.stack(frames)


def y4m_planes(path: Path, width: int, height: int) -> bytes:
    """The raw 4:2:0 bytes of an 8-bit y4m file whose FRAME lines carry no parameters."""
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    frame = width * height * 3 // 2
    chunks, pos = [], header_end
    while pos < len(data):
        assert data[pos : pos + 6] == b"FRAME\n"
        chunks.append(data[pos + 6 : pos + 6 + frame])
        pos += 6 + frame
    return b"".join(chunks)


def one_line_error(call, *words: str) -> None:
    with pytest.raises(InputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


# --- reading ---------------------------------------------------------------------------------


def test_y4m_input():
    info, frames = read_all(DATA / "foreman_qcif6.y4m")
    assert (info.width, info.height, info.num_frames, info.bit_depth) == (176, 144, 6, 8)
    assert info.fps == Fraction(30000, 1001)
    assert frames.shape == (6, 144, 176, 3)


def test_raw_yuv_matches_y4m_conversion(tmp_path):
    raw = tmp_path / "foreman_176x144_30fps.yuv"
    raw.write_bytes(y4m_planes(DATA / "foreman_qcif6.y4m", 176, 144))
    info, frames = read_all(raw, start=2, stop=5)
    assert (info.width, info.height, info.fps, info.num_frames) == (176, 144, Fraction(30), 3)
    _, reference = read_all(DATA / "foreman_qcif6.y4m", start=2, stop=5)
    np.testing.assert_array_equal(frames, reference)


def test_raw_yuv_size_from_name_and_explicit(tmp_path):
    info, frames = read_all(DATA / "CiscoVT2people_160x96_12fps.yuv")
    assert (info.width, info.height, info.fps, info.num_frames) == (160, 96, Fraction(12), 4)
    plain = tmp_path / "capture.yuv"
    plain.write_bytes((DATA / "CiscoVT2people_160x96_12fps.yuv").read_bytes())
    info2, frames2 = read_all(plain, size=(160, 96), fps=12)
    assert info2 == info
    np.testing.assert_array_equal(frames2, frames)


def test_raw_yuv_odd_size_matches_pyav_rawvideo(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "odd_175x143.yuv"
    path.write_bytes(rng.integers(16, 236, 2 * (175 * 143 + 2 * 88 * 72), dtype=np.uint8).tobytes())
    info, frames = read_all(path)
    assert (info.num_frames, frames.shape) == (2, (2, 143, 175, 3))
    options = {"video_size": "175x143", "pixel_format": "yuv420p", "framerate": "25"}
    with av.open(str(path), format="rawvideo", options=options) as container:
        decoded = container.decode(video=0)
        reference = np.stack([f.to_ndarray(format="rgb24", interpolation="BICUBIC") for f in decoded])
    np.testing.assert_array_equal(frames, reference)


def test_raw_yuv_10bit(tmp_path):
    rng = np.random.default_rng(2)
    luma = rng.integers(16, 236, (2, 64 * 32), dtype=np.uint8)
    chroma = np.repeat(rng.integers(16, 240, (2, 2, 1), dtype=np.uint8), 32 * 16, axis=2).reshape(2, -1)
    planes8 = np.concatenate([luma, chroma], axis=1)  # flat chroma: 8 and 10-bit paths upsample alike
    (tmp_path / "a_64x32_8bit.yuv").write_bytes(planes8.tobytes())
    (tmp_path / "a_64x32_10bit.yuv").write_bytes((planes8.astype("<u2") << 2).tobytes())
    _, frames8 = read_all(tmp_path / "a_64x32_8bit.yuv")
    info, frames10 = read_all(tmp_path / "a_64x32_10bit.yuv")
    assert (info.bit_depth, info.num_frames) == (10, 2)
    assert np.abs(frames10.astype(int) - frames8).max() <= 2


@pytest.mark.parametrize("size", [(48, 32), (35, 23)])
def test_png_folder_input(tmp_path, size):
    frames = clip(*size, 3)
    for i, frame in enumerate(frames):
        skio.imsave(tmp_path / f"img{i:02d}.png", frame, check_contrast=False)
    info, got = read_all(tmp_path, fps=12.5)
    assert (info.width, info.height, info.fps, info.num_frames) == (*size, Fraction(25, 2), 3)
    np.testing.assert_array_equal(got, frames)


def test_single_png_frame_folder(tmp_path):
    source = DATA / "YachtRide_480x270_crop.png"
    (tmp_path / "only.png").write_bytes(source.read_bytes())
    info, frames = read_all(tmp_path)
    assert (info.num_frames, frames.shape) == (1, (1, 270, 480, 3))
    np.testing.assert_array_equal(frames[0], skio.imread(source)[..., :3])


def test_mp4_start_stop_exact_count():
    info, frames = read_all(CARPHONE, start=100, stop=110)
    assert (info.width, info.height, info.num_frames, info.fps) == (176, 144, 10, Fraction(30000, 1001))
    assert frames.shape == (10, 144, 176, 3)
    tail_info, tail = read_all(CARPHONE, start=117, stop=500)
    assert tail_info.num_frames == 3 and len(tail) == 3


def test_groups_chunking_with_short_last_group():
    with open_video(CARPHONE, start=3, stop=13) as src:
        groups = list(src.groups(4))
        again = np.concatenate(list(src.groups(10)))
    assert [g.shape for g in groups] == [(4, 144, 176, 3)] * 2 + [(2, 144, 176, 3)]
    np.testing.assert_array_equal(np.concatenate(groups), again)


# --- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [("out.mp4", {}), ("out.mkv", {}), ("out.mkv", {"codec": "ffv1"}), ("frames", {})],
    ids=["x264rgb-mp4", "x264rgb-mkv", "ffv1-mkv", "png-folder"],
)
@pytest.mark.parametrize("size", [(48, 32), (35, 23)], ids=["even", "odd"])
def test_lossless_round_trip(tmp_path, name, options, size):
    frames = clip(*size, 5)
    path = tmp_path / name
    with VideoWriter(path, *size, Fraction(24), lossless=True, **options) as out:
        out.write(frames[:3])
        out.write(frames[3])
        out.write(frames[4:])
    info, got = read_all(path)
    assert (info.width, info.height, info.num_frames) == (*size, 5)
    np.testing.assert_array_equal(got, frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("size", [(64, 48), (35, 23)], ids=["even", "odd"])
def test_lossy_mp4_readable(tmp_path, size):
    frames = clip(*size, 6)
    path = tmp_path / "out.mp4"
    with VideoWriter(path, *size, Fraction(30000, 1001)) as out:
        out.write(frames)
    info, got = read_all(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (*size, 6, Fraction(30000, 1001))
    assert np.abs(got.astype(int) - frames).mean() < 4


@pytest.mark.parametrize("size", [(64, 48), (35, 23)], ids=["even", "odd"])
def test_y4m_write_readable(tmp_path, size):
    frames = clip(*size, 3)
    path = tmp_path / "out.y4m"
    with VideoWriter(path, *size, Fraction(25)) as out:
        out.write(frames)
    info, got = read_all(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (*size, 3, Fraction(25))
    assert np.abs(got.astype(int) - frames).mean() < 4


def test_png_folder_overwrite_and_abort(tmp_path):
    target = tmp_path / "frames"
    with VideoWriter(target, 16, 8, Fraction(25)) as out:
        out.write(clip(16, 8, 4))
    with VideoWriter(f"{target}/", 16, 8, Fraction(25)) as out:
        out.write(clip(16, 8, 2))
    assert sorted(p.name for p in target.iterdir()) == ["frame_000000.png", "frame_000001.png"]
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "gone.mkv", 16, 8, Fraction(25)) as out:
        out.write(clip(16, 8, 1))
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


# --- user errors -----------------------------------------------------------------------------


def test_reader_errors(tmp_path):
    one_line_error(lambda: open_video(tmp_path / "missing.mp4"), "missing.mp4", "no such file")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 8)
    one_line_error(lambda: open_video(junk), "junk.mp4", "cannot be opened as a video")
    one_line_error(lambda: open_video(tmp_path), "no .png files")
    one_line_error(lambda: open_video(CARPHONE, start=120), "start frame 120", "120 frames")
    one_line_error(lambda: open_video(CARPHONE, start=5, stop=5), "stop frame 5")
    one_line_error(lambda: open_video(CARPHONE, size=(64, 64)), "176x144")


def test_audio_only_file_has_no_video(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    one_line_error(lambda: open_video(path), "tone.wav", "no video stream")


def test_raw_yuv_errors(tmp_path):
    plain = tmp_path / "clip.yuv"
    plain.write_bytes(bytes(320 * 192 * 3 // 2 * 2))
    one_line_error(lambda: open_video(plain), "clip.yuv", "--size")
    one_line_error(lambda: open_video(plain, size=(320, 190)), "clip.yuv", "not a multiple", "91200 bytes")
    one_line_error(lambda: open_video(plain, size=(320, 192), start=2), "start frame 2", "2 frames")


def test_png_folder_size_mismatch(tmp_path):
    skio.imsave(tmp_path / "a.png", clip(16, 8, 1)[0], check_contrast=False)
    skio.imsave(tmp_path / "b.png", clip(16, 10, 1)[0], check_contrast=False)
    one_line_error(lambda: open_video(tmp_path), "b.png", "16x10", "same size")


def test_writer_errors(tmp_path):
    fps = Fraction(25)
    one_line_error(lambda: VideoWriter(tmp_path / "no" / "x.mp4", 16, 16, fps), "does not exist")
    one_line_error(lambda: VideoWriter(tmp_path / "x.avi", 16, 16, fps), "unknown output suffix")
    one_line_error(lambda: VideoWriter(tmp_path / "x.mkv", 16, 16, fps, codec="libsvtav1", lossless=True), "losslessly")
    one_line_error(lambda: VideoWriter(tmp_path / "x.y4m", 16, 16, fps, lossless=True), ".y4m")
    one_line_error(lambda: VideoWriter(tmp_path / "x.mp4", 16, 16, fps, codec="ffv1"), ".mkv")
    one_line_error(lambda: VideoWriter(tmp_path / "x.mp4", 16, 16, fps, codec="vp8"), "unknown codec")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_bad_crf_and_unstorable_frame_rates(tmp_path):
    fps = Fraction(25)
    one_line_error(lambda: VideoWriter(tmp_path / "x.mp4", 16, 16, fps, crf=-1), "--crf -1", "0..51")
    one_line_error(lambda: VideoWriter(tmp_path / "x.mp4", 16, 16, fps, crf=52), "--crf 52", "0..51")
    one_line_error(lambda: VideoWriter(tmp_path / "x.mkv", 16, 16, fps, codec="libsvtav1", crf=64), "0..63")
    for rate in (Fraction(2**31), Fraction(1, 2**31), Fraction(1, 2**20)):
        for name in ("x.mp4", "x.mkv", "x.y4m"):
            one_line_error(lambda: VideoWriter(tmp_path / name, 16, 16, rate), f"frame rate {rate}", "PNG folder")
    assert list(tmp_path.iterdir()) == []
    odd = Fraction(2**32 - 1, 2**32 - 2)  # terms beyond 32 bits: rounded to a storable rate
    with VideoWriter(tmp_path / "x.mp4", 16, 16, odd) as out:
        out.write(clip(16, 16, 2))
    assert read_all(tmp_path / "x.mp4")[0].fps == 1


def test_writer_refuses_to_replace_another_kind_of_file(tmp_path):
    plain = tmp_path / "frames"
    plain.write_text("notes")
    one_line_error(lambda: VideoWriter(plain, 16, 16, Fraction(25)), "frames: is a file", "frames.mp4")
    (tmp_path / "x.mp4").mkdir()  # an existing folder is a PNG output, whatever its name
    with VideoWriter(tmp_path / "x.mp4", 16, 16, Fraction(25)) as out:
        out.write(clip(16, 16, 1))
    assert [p.name for p in (tmp_path / "x.mp4").iterdir()] == ["frame_000000.png"]
    one_line_error(lambda: VideoWriter(plain / "x.mp4", 16, 16, Fraction(25)), "is a file, not a folder")
    assert plain.read_text() == "notes"


def test_raw_yuv_size_must_agree_with_name_and_length(tmp_path):
    frame = 32 * 24 * 3 // 2
    named = tmp_path / "clip_32x24.yuv"
    named.write_bytes(bytes(3 * frame))
    one_line_error(lambda: open_video(named, size=(16, 16)), "the name says 32x24", "--size is 16x16")
    assert read_all(named, size=(32, 24))[0].num_frames == 3
    partial = tmp_path / "clip.yuv"
    partial.write_bytes(bytes(2 * frame + 7))
    one_line_error(lambda: open_video(partial, size=(32, 24)), "not a multiple", "--ignore-trailing-bytes")
    info, frames = read_all(partial, size=(32, 24), ignore_trailing_bytes=True)
    assert info.num_frames == 2 and frames.shape == (2, 24, 32, 3)
    one_line_error(lambda: open_video(partial, size=(99999, 99999)), "99999x99999", "16384")


def test_pipes_and_devices_are_not_opened(tmp_path):
    fifo = tmp_path / "clip.yuv"
    os.mkfifo(fifo)
    one_line_error(lambda: open_video(fifo, size=(32, 24)), "clip.yuv", "pipe (FIFO)")
    one_line_error(lambda: open_video("/dev/zero"), "/dev/zero", "character device")
    one_line_error(lambda: open_video(CARPHONE, fps=float("nan")), "frame rate nan")
