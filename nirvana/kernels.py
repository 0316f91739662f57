"""Fused kernels for the hot paths, with torch fallbacks.

``sine_linear`` computes a batch of SIREN layers, ``sin(w0 · (x @ Wᵀ + b))`` with x of shape
(B, M, K), W (B, N, K) and b (B, N). On a CUDA device, when
no gradient is needed (decoding, the encoder's exact reconstruction), it runs one Triton
kernel that fuses the matmul, the bias and the sine. Everywhere else it runs plain torch.

Triton runs on CPU tensors only under ``TRITON_INTERPRET=1`` set before this module is
imported; the tests do that to check the kernel against torch on tiny shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

try:  # triton is optional: no wheels on some platforms
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the platform
    triton = None

_triton_allowed = True


@contextlib.contextmanager
def torch_fallback() -> Iterator[None]:
    """Use the plain torch layers even on CUDA inside this block (for speed comparisons).

    >>> with torch_fallback():
    ...     pass
    """
    global _triton_allowed
    saved, _triton_allowed = _triton_allowed, False
    try:
        yield
    finally:
        _triton_allowed = saved


def sine_linear_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, w0: float) -> torch.Tensor:
    return torch.sin(w0 * torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2)))


if triton is not None:

    @triton.jit
    def _sine_linear_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr, M, N, K, w0,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        batch = tl.program_id(2)
        x_ptr += batch * M * K
        w_ptr += batch * N * K
        b_ptr += batch * N
        y_ptr += batch * M * N
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_ptr + rows[:, None] * K + ks[None, :],
                        mask=(rows[:, None] < M) & (ks[None, :] < K), other=0.0)
            w = tl.load(w_ptr + cols[None, :] * K + ks[:, None],
                        mask=(cols[None, :] < N) & (ks[:, None] < K), other=0.0)
            acc += tl.dot(x, w, input_precision="ieee")
        bias = tl.load(b_ptr + cols, mask=cols < N, other=0.0)
        y = tl.sin(w0 * (acc + bias[None, :]))
        tl.store(y_ptr + rows[:, None] * N + cols[None, :], y,
                 mask=(rows[:, None] < M) & (cols[None, :] < N))


def sine_linear_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, w0: float) -> torch.Tensor:
    """The fused Triton SIREN layer (float32, exact 'ieee' dot products)."""
    if triton is None:
        raise RuntimeError("triton is not installed")
    x, weight, bias = (t.contiguous().float() for t in (x, weight, bias))
    b, m, k = x.shape
    n = weight.shape[1]
    y = torch.empty((b, m, n), dtype=torch.float32, device=x.device)
    block_m, block_n, block_k = 32, 32, 16
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n), b)
    _sine_linear_kernel[grid](x, weight, bias, y, m, n, k, float(w0),
                              BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k)
    return y


def sine_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, w0: float) -> torch.Tensor:
    """``sin(w0 · (x @ weightᵀ + bias))``, fused on CUDA when no gradient is needed.

    >>> sine_linear(torch.zeros(1, 1, 2), torch.zeros(1, 3, 2), torch.zeros(1, 3), 30.0).tolist()
    [[[0.0, 0.0, 0.0]]]
    """
    use_triton = (
        triton is not None
        and _triton_allowed
        and x.is_cuda
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    )
    if use_triton:
        return sine_linear_triton(x, weight, bias, w0)
    return sine_linear_torch(x, weight, bias, w0)
