"""Shared test setup (TRITON_INTERPRET is set in the repository's root conftest.py).

Torch uses one thread so that runs are quick on shared 2-core machines and identical
between the encoder's worker processes and the tests.
"""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CARPHONE = REPO / "samples" / "carphone.mp4"


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data folder {DATA} is missing")
    return DATA
