"""Resumable encodes: an encode stopped between segments (SIGKILL, SIGTERM, SIGINT) continues
with ``--resume`` into the same bytes as an uninterrupted one, fitting only the missing segments.

The 5 frames of the clip in groups of 2 with a key group every group make 3 segments. The
hook ``NIRVANA_TEST_HOLD_AFTER_SEGMENTS=1`` makes an encode wait, once it has stored its first
segment, until it is killed: the signal always falls between segments, however slow the machine.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codec import encoder
from codec.resume import HOLD_ENV, store_folder
from conftest import run
from test_cli import fails

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "clip32x24.y4m"  # 5 frames of 32x24
OPTS = ["--group-size", "2", "--key-interval", "1", "--key-iterations", "30", "--iterations", "5",
        "--threads", "1", "-q"]
RESUMED = "resumed: kept 1 of 3 segments from the interrupted encode, fitted 2"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    """The file of an uninterrupted encode with OPTS."""
    out = tmp_path_factory.mktemp("reference") / "o.nirv"
    run("encode", str(CLIP), "-o", str(out), *OPTS)
    return out.read_bytes()


@pytest.fixture
def fitted(monkeypatch) -> list[int]:
    """The indices of the segments that encodes in this process fit."""
    indices: list[int] = []
    fit = encoder._fit_segment

    def counting(job, **callbacks):
        indices.append(job.segment.index)
        return fit(job, **callbacks)

    monkeypatch.setattr(encoder, "_fit_segment", counting)
    return indices


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, even where the test runner ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupted(folder: Path, sig: int, input: Path = CLIP) -> str:
    """Run `nirvana encode INPUT -o folder/o.nirv` in a process, stop it with ``sig`` once it has
    stored one segment, and return its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "codec", "encode", str(input), "-o", str(folder / "o.nirv"), *OPTS],
        env={**os.environ, HOLD_ENV: "1"}, preexec_fn=_default_sigint,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = store_folder(folder / "o.nirv") / "segment-000000.bin"
    give_up = time.monotonic() + 300
    while not first.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < give_up, "the encode never stored a segment"
        time.sleep(0.1)
    process.send_signal(sig)
    _, err = process.communicate(timeout=300)
    assert process.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill", "term", "int"])
def test_stopped_encode_resumes_into_the_same_bytes(tmp_path, reference, fitted, sig):
    err = interrupted(tmp_path, sig)
    store = store_folder(tmp_path / "o.nirv")
    assert sorted(p.name for p in store.iterdir()) == ["manifest.json", "segment-000000.bin"]
    assert not (tmp_path / "o.nirv").exists()
    if sig == signal.SIGKILL:  # no cleanup at all: and say it died writing segments 1 and 2
        (store / "segment-000001.bin.part").write_bytes(b"half a segment")
        (store / "segment-000002.bin").write_bytes((store / "segment-000000.bin").read_bytes()[:-1])
    else:
        assert err.strip().splitlines()[-2:] == [
            f"1 finished segment kept in {store}; run the same encode with --resume to continue",
            "interrupted; no output written"]

    out = run("encode", str(CLIP), "-o", str(tmp_path / "o.nirv"), *OPTS, "--resume")
    assert RESUMED in out
    assert fitted == [1, 2]
    assert (tmp_path / "o.nirv").read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.nirv"]


def test_resume_refuses_another_input_options_or_a_running_encode(tmp_path, reference, fitted):
    clip = tmp_path / "clip.y4m"
    shutil.copy(CLIP, clip)
    interrupted(tmp_path, signal.SIGKILL, clip)
    out, store = tmp_path / "o.nirv", store_folder(tmp_path / "o.nirv")
    again = ["encode", str(clip), "-o", str(out), *OPTS, "--resume"]
    advice = "rerun with the input and options of the interrupted encode, or without --resume to start over"
    fails(*again, "--key-iterations", "31",
          expect=f"error: {out}: cannot resume: fit.key_iterations was 30 in the interrupted encode, 31 now; {advice}")
    fails(*again, "--threads", "2", expect="cannot resume: threads was 1 in the interrupted encode, 2 now")
    fails(*again, "--recon", str(tmp_path / "r.mkv"),
          expect="error: --resume cannot be combined with --recon: reconstructions are not kept")
    fails("encode", str(CLIP), *again[2:], expect=f"the interrupted encode read {clip}, this one reads {CLIP}")
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    fails(*again, expect=f"cannot resume: the input {clip} changed since the interrupted encode")

    locked = os.open(store, os.O_RDONLY)  # as another live encode of the same output would
    try:
        fcntl.flock(locked, fcntl.LOCK_EX)
        fails(*again, expect="another encode of it is running")
        run(*again[:-1])  # without --resume: encodes as ever, keeping no segments of its own
        assert sorted(p.name for p in store.iterdir()) == ["manifest.json", "segment-000000.bin"]
    finally:
        os.close(locked)
    assert fitted == [0, 1, 2]

    report = run(*again[:-1])  # without --resume: starts over
    assert fitted == [0, 1, 2] * 2 and "resumed" not in report
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.y4m", "o.nirv"]
