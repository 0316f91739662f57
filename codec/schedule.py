"""Where segments are fitted: this process, a pool of local workers, or torchrun ranks.

- One worker: segments run here, in order, with live progress.
- Several local workers (``--workers N`` on one device, or ``--device cuda:0,cuda:1``): one
  spawned process per worker, each pinned to its device; segments are handed out from a
  queue and their results come back in segment order.
- ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): rank r fits the segments whose index
  is r modulo the world size, on ``cuda:LOCAL_RANK`` (nccl) or the CPU (gloo); rank 0
  gathers every segment and writes the file. All ranks must see the input at the same path.

Which worker fits a segment never changes what is fitted: each segment starts from a key
group seeded by its index, so the output is the same for any number of workers.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from codec.errors import InputError


@dataclass(frozen=True)
class Placement:
    """The devices this process drives, and its place among torchrun ranks."""

    devices: tuple[str, ...]  # one per local worker
    rank: int = 0
    world: int = 1
    fixed_threads: int | None = None  # --threads

    @property
    def threads(self) -> int:
        """CPU threads per worker: ``--threads``, or the machine's cores shared by its workers.

        Float sums over many values depend on how many threads split them, so a fit's exact
        result (and the file) depends on this count: a file is byte-identical for any number
        of workers or ranks at the same thread count.
        """
        if self.fixed_threads is not None:
            return self.fixed_threads
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) * len(self.devices)
        return max(1, len(os.sched_getaffinity(0)) // local)


def check_device(name: str) -> str:
    """Validate one device name (``cpu``, ``cuda``, ``cuda:N``) or raise InputError."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} GPUs")
    return name


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEEP_BELOW = 32 << 20  # freed blocks up to this size stay in the process (glibc's largest threshold)
KEEP_FREE = 1 << 30  # free memory the process keeps before returning any to the system


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed blocks of up to :data:`KEEP_BELOW` bytes in the
    process instead of returning them to the system. A group's training allocates the same
    tens of MB of temporaries on every iteration; by default glibc soon hands such blocks
    back, and the next iteration pages them in again, fresh. On carphone (176×144, one thread)
    that cost about a fifth of a group's fit time. Changes no result, only where memory comes
    from. Returns whether the allocator took the settings (False where it is not glibc's).
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW) == 1 and mallopt(_M_TRIM_THRESHOLD, KEEP_FREE) == 1


def configure_device(device: str) -> None:
    """Make arithmetic on ``device`` repeatable and full precision before fitting or rendering.

    On CUDA: deterministic cuDNN algorithms chosen without benchmarking, and no TF32 in
    convolutions or matmuls, so that an encoder's reconstruction and a decoder's output on
    the same kind of GPU are the same pixels and stay close to a CPU's.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def placement(device: str, workers: int, threads: int | None = None) -> Placement:
    """Parse ``--device``/``--workers`` and the torchrun environment.

    >>> placement("cpu", 2).devices
    ('cpu', 'cpu')
    """
    names = [d.strip() for d in device.split(",") if d.strip()]
    if not names:
        raise InputError("--device is empty; give e.g. cpu, cuda or cuda:0,cuda:1")
    for name in names:
        check_device(name)
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    if threads is not None and not 1 <= threads <= 1024:
        raise InputError(f"--threads {threads}: must be between 1 and 1024")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        dev = f"cuda:{local_rank}" if names[0].startswith("cuda") else "cpu"
        return Placement((dev,), int(os.environ["RANK"]), world, threads)
    if len(names) == 1:
        names = names * workers
    return Placement(tuple(names), fixed_threads=threads)


def run_segments(fit: Callable[..., Any], jobs: Sequence, where: Placement,
                 on_result: Callable[[Any], None] | None = None,
                 **local_callbacks) -> Iterator[Any]:
    """Yield ``fit(job)`` for every job, in job order (on torchrun rank 0 only).

    Jobs are dataclasses with ``device`` and ``threads`` fields, filled in here.
    ``local_callbacks`` are passed to ``fit`` when it runs in this process (live progress).
    """
    if where.world > 1:
        yield from _run_distributed(fit, jobs, where)
        return
    if len(where.devices) == 1:
        for job in jobs:
            yield fit(replace(job, device=where.devices[0], threads=where.threads), **local_callbacks)
        return
    ctx = multiprocessing.get_context("spawn")
    devices = ctx.Queue()
    for d in where.devices:
        devices.put(d)
    jobs = [replace(job, threads=where.threads) for job in jobs]
    with ctx.Pool(len(where.devices), initializer=_pin_worker, initargs=(devices,)) as pool:
        for result in pool.imap(_PinnedCall(fit), jobs):
            if on_result is not None:
                on_result(result)
            yield result


_worker_device: str | None = None


def _pin_worker(devices) -> None:
    global _worker_device
    _worker_device = devices.get()


@dataclass(frozen=True)
class _PinnedCall:
    fit: Callable[..., Any]

    def __call__(self, job):
        return self.fit(replace(job, device=_worker_device))


def _run_distributed(fit: Callable[..., Any], jobs: Sequence, where: Placement) -> Iterator[Any]:
    import torch.distributed as dist

    device = where.devices[0]
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    mine = {i: fit(replace(job, device=device, threads=where.threads))
            for i, job in enumerate(jobs) if i % where.world == where.rank}
    gathered = [None] * where.world if where.rank == 0 else None
    dist.gather_object(mine, gathered, dst=0)
    if where.rank == 0:
        results = {i: r for part in gathered for i, r in part.items()}
        for i in range(len(jobs)):
            yield results[i]
