"""CUDA paths: the compiled Triton layer, and encode → decode exactness on one GPU.

Skipped without a GPU. Run them with the kernels compiled rather than interpreted::

    TRITON_INTERPRET=0 python -m pytest tests/test_gpu.py

(``benchmarks/gpu_check.sh`` does this on the GPU machine.)
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from codec.schedule import configure_device
from conftest import CARPHONE, FAST, frames_of, run
from nirvana.kernels import sine_linear, sine_linear_torch, sine_linear_triton, torch_fallback

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1",
                       reason="set TRITON_INTERPRET=0 to test the compiled kernels"),
]

@pytest.mark.parametrize("b, m, k, n", [(1, 1, 2, 3), (2, 396, 2, 64), (3, 1024, 64, 64),
                                        (2, 700, 148, 148), (1, 1024, 512, 512)])
def test_compiled_triton_layer_matches_torch(b, m, k, n):
    configure_device("cuda")
    gen = torch.Generator().manual_seed(b * m + k)
    x = (torch.rand(b, m, k, generator=gen) * 2 - 1).cuda()
    w = (torch.randn(b, n, k, generator=gen) / k ** 0.5 / 30).cuda()
    bias = (torch.randn(b, n, generator=gen) / 30).cuda()
    got = sine_linear_triton(x, w, bias, 30.0)
    assert torch.allclose(got, sine_linear_torch(x, w, bias, 30.0), atol=1e-4)
    with torch.no_grad():
        assert torch.equal(sine_linear(x, w, bias, 30.0), got)  # the decoder takes the fused path
        with torch_fallback():
            assert torch.equal(sine_linear(x, w, bias, 30.0), sine_linear_torch(x, w, bias, 30.0))


@pytest.fixture(scope="module")
def cuda_encoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    run("encode", str(CARPHONE), "-o", str(d / "c.nirv"), "--frames", "0:9", "--device", "cuda",
        "--recon", str(d / "recon.mkv"), *FAST)
    return d


@pytest.mark.parametrize("batch", ["1", "2", "3"])
def test_cuda_decode_equals_cuda_encoder_reconstruction(cuda_encoded, tmp_path, batch):
    d = cuda_encoded
    run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "dec.mkv"), "--lossless",
        "--device", "cuda", "--batch", batch, "-q")
    assert np.array_equal(frames_of(tmp_path / "dec.mkv"), frames_of(d / "recon.mkv"))


def test_cuda_siren_encoding_is_deterministic_across_runs_and_workers(tmp_path):
    # siren only: the grid kind's bilinear upsampling has no deterministic CUDA backward
    # (atomic adds), so its GPU encodes are not bit-reproducible (README, "GPUs")
    args = ["--frames", "0:9", "--device", "cuda", "--model", "siren", *FAST]
    run("encode", str(CARPHONE), "-o", str(tmp_path / "one.nirv"), *args)
    run("encode", str(CARPHONE), "-o", str(tmp_path / "again.nirv"), *args)
    run("encode", str(CARPHONE), "-o", str(tmp_path / "two.nirv"), "--workers", "2", *args)
    first = (tmp_path / "one.nirv").read_bytes()
    assert (tmp_path / "again.nirv").read_bytes() == first
    assert (tmp_path / "two.nirv").read_bytes() == first


def test_cpu_decode_of_a_cuda_file_is_close(cuda_encoded, tmp_path):
    # Not promised bit-exact (different float arithmetic), but it must be the same picture.
    d = cuda_encoded
    run("decode", str(d / "c.nirv"), "-o", str(tmp_path / "cpu.mkv"), "--lossless", "-q")
    cpu = frames_of(tmp_path / "cpu.mkv").astype(np.float64)
    gpu = frames_of(d / "recon.mkv").astype(np.float64)
    mse = np.mean((cpu - gpu) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) > 45
