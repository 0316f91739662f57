"""Shared test setup and helpers (TRITON_INTERPRET is set in the repository's root conftest.py).

Torch uses one thread so that runs are quick on shared 2-core machines and identical
between the encoder's worker processes and the tests.
"""

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from codec.cli import main
from codec.video import open_video

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # small real clips, cut by tests/data/make_small_data.py
CARPHONE = REPO / "samples" / "carphone.mp4"

# Small but real encoder settings: 9 carphone frames = 3 groups, key groups 0 and 2.
FAST = ["--group-size", "3", "--key-iterations", "150", "--iterations", "40", "--key-interval", "2",
        "--threads", "1", "-q"]  # one thread: the same file from any number of workers


def run(*args: str) -> str:
    """Run the ``nirvana`` CLI in-process; assert success and return its output."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def frames_of(path, **kw) -> np.ndarray:
    """Every frame of a video as one ``(n, H, W, 3)`` uint8 array."""
    with open_video(path, **kw) as src:
        return np.stack(list(src.frames()))
