"""Shared test setup.

TRITON_INTERPRET must be set before triton kernels are defined, so it is set here, before
any test module imports nirvana. Torch uses one thread so that runs are quick on shared
2-core machines and identical between the encoder's worker processes and the tests.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CARPHONE = REPO / "samples" / "carphone.mp4"


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data folder {DATA} is missing")
    return DATA
