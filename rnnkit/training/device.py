"""Where and how tensors are computed: the device, the CPU's threads and memory, mixed precision.

Every command that runs a model sets these up first (configure_cpu before any computation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import RnnkitError
from rnnkit.options import option

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DeviceOptions:
    """Where a model trains or runs (`rnnkit train`, `evaluate`, `ablate-gates`, `predict`)."""

    device: str = option("auto", "Where to run: the GPU when torch sees one, or cpu, cuda.",
                         choices=DEVICES, panel="Hardware")
    threads: int | None = option(None, "CPU threads (default: torch's, OMP_NUM_THREADS).", low=1, high=1024,
                                 panel="Hardware")


def resolve_device(name: str):
    """--device auto|cpu|cuda -> a torch.device ("auto": the GPU when torch sees one)."""
    import torch

    if name not in DEVICES:
        raise RnnkitError(f"--device {name!r} — use one of: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RnnkitError("--device cuda but no CUDA GPU is visible to torch — use --device cpu or auto")
    return torch.device(name)


def configure_cpu(threads: int | None) -> None:
    """Set up torch's CPU side before any computation: honour --threads (otherwise torch's
    default, which follows OMP_NUM_THREADS), flush denormal floats to zero and keep freed memory.

    Why flush denormals: backpropagating through hundreds of recurrent steps shrinks
    gradients geometrically (the vanishing gradient), and once they fall below ~1e-38 they
    become denormal numbers, which x86 CPUs compute many times slower than normal ones
    (benchmarks/denormals.py; BENCHMARKS.md, "Denormal floats"). Values that small are far below
    anything that moves a float32 weight, so flushing them changes no result that matters.
    The flag lives in each thread's floating-point control register and threads inherit it
    from the thread that creates them, so it is set here, before torch's OpenMP pool and
    rnnkit's inference threads exist. Freed memory is kept for reuse too (keep_freed_memory).
    """
    import torch

    torch.set_flush_denormal(True)
    keep_freed_memory()
    if threads is not None:
        if threads < 1:
            raise RnnkitError(f"--threads {threads} must be at least 1")
        torch.set_num_threads(threads)


def keep_freed_memory() -> bool:
    """glibc: serve large tensors from the heap and keep freed memory for the next ones.

    Why: a training step allocates and frees the same large activations (megabytes each)
    every batch. glibc gives allocations above its mmap threshold fresh pages from the
    kernel and hands them back when they are freed, and trims the heap's free top too, so
    every batch faults in and zeroes its memory anew (benchmarks/malloc.py; BENCHMARKS.md,
    "Tuning on the sample"). PyTorch's performance guide
    suggests jemalloc or tcmalloc for the same reason; raising both thresholds gets the
    effect with the allocator already loaded. The cost: the process keeps its peak memory
    until it exits. Elsewhere (macOS, Windows, musl) this does nothing. Returns whether it
    applied.
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return True
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    _FREED_MEMORY_KEPT = bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))
    return _FREED_MEMORY_KEPT


_FREED_MEMORY_KEPT = False


def amp_is_native(device) -> bool:
    """Whether mixed precision runs on hardware made for it here: a CUDA GPU with tensor cores
    (compute capability 7.0 or newer), or a CPU with bf16 instructions (AVX512-BF16 or AMX).

    Elsewhere torch still runs bf16 on the CPU, but by converting to float32 and back in
    software, which is slower than float32 itself; so `rnnkit tune`'s default precision
    (--amp/--no-amp unset) asks this first.
    """
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 7
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no cheap way to ask, so assume not
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def autocast(device, enabled: bool):
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)
