"""Batched inference: logits for many rows, in row order, optionally on several worker threads.

Why worker threads. On the CPU a recurrent model's forward pass is a chain of small
per-step matrix products; spreading each one over several cores (torch's intra-op threads)
scales badly — on two cores, two intra-op threads gave 1.3x. Two batches computed at once,
one per core, scale nearly 2x instead: `nn.LSTM`'s whole-sequence forward is one C++ op that
releases the GIL, so plain Python threads run it in parallel. With `workers > 1` each worker
computes whole batches with one intra-op thread (torch's thread count is set to 1 while the
batches run and restored afterwards). BENCHMARKS.md has the figures.

Batches are `(index, ids, lengths)`: the rows of the output they fill, their (batch, width)
ids and real lengths. They may come from a generator — `Predictor` tokenizes the next texts
in the calling thread while the workers compute the batches already made — and their
logits are written back at their rows, so the order of the input is kept whatever order
the batches finish in.

inference_mode and autocast are thread-local in torch: each worker enters them itself.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from rnnkit.errors import RnnkitError

# Batch size at prediction time on the CPU: small batches keep each step's working set in
# cache (measured: 32 beats 256 by ~1.8x for a BiLSTM-128); GPUs want large ones.
CPU_BATCH_SIZE = 32
CUDA_BATCH_SIZE = 256


def default_batch_size(device) -> int:
    return CUDA_BATCH_SIZE if getattr(device, "type", str(device)) == "cuda" else CPU_BATCH_SIZE


def resolve_workers(workers: int | None, device) -> int:
    """--workers: None means one per torch CPU thread on the CPU (so --threads / OMP_NUM_THREADS
    decide), one on CUDA (the GPU runs a batch at a time anyway)."""
    import torch

    if workers is None:
        return 1 if getattr(device, "type", str(device)) == "cuda" else max(1, torch.get_num_threads())
    if workers < 1:
        raise RnnkitError(f"--workers {workers} must be at least 1")
    return workers


@contextlib.contextmanager
def _intra_op_threads(n: int):
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sorted_batches(x, lengths, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
    """(index, ids, lengths) batches of in-memory rows, longest first, each padded only to
    its own longest row."""
    from rnnkit.training.batching import sorted_order

    for index in sorted_order(lengths, batch_size):
        batch_lengths = lengths[index]
        yield index, x[index, : int(batch_lengths.max())], batch_lengths


def logits_of_batches(model, batches: Iterable[tuple[Any, Any, Any]], n: int, *, device, amp: bool = False,
                      workers: int = 1):
    """(n, outputs) float32 logits on the CPU; row `index[i]` of each batch gets its i-th logits.

    `workers == 1` runs the batches in the calling thread with torch's thread settings as
    they are. `workers > 1` runs up to `workers` batches at once on as many threads, each
    with one intra-op thread; the calling thread keeps drawing batches from `batches`
    (tokenizing, padding) meanwhile, with a few batches queued ahead.
    """
    import torch

    from rnnkit.training.device import autocast

    if workers < 1:
        raise RnnkitError(f"--workers {workers} must be at least 1")
    model.eval()
    out: list[Any] = [None]

    def store(index, logits) -> None:
        if out[0] is None:
            out[0] = torch.empty((n, logits.size(1)), dtype=torch.float32)
        out[0][index] = logits

    def compute(ids, batch_lengths):
        with torch.inference_mode(), autocast(device, amp):
            return model(ids.to(device, non_blocking=True), batch_lengths).float().cpu()

    if workers == 1:
        for index, ids, batch_lengths in batches:
            store(index, compute(ids, batch_lengths))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with _intra_op_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="rnnkit-infer") as pool:
            pending: deque = deque()
            for index, ids, batch_lengths in batches:
                pending.append((index, pool.submit(compute, ids, batch_lengths)))
                while len(pending) > 2 * workers:  # bound the batches held in memory
                    done_index, future = pending.popleft()
                    store(done_index, future.result())
            while pending:
                done_index, future = pending.popleft()
                store(done_index, future.result())
    if out[0] is None:
        raise RnnkitError("nothing to predict — no rows were given")
    return out[0]


def predict_logits(model, x, lengths, *, batch_size: int = 256, device=None, amp: bool = False,
                   workers: int = 1):
    """Logits for every row of (x, lengths), in row order, batched longest-first."""
    device = device or next(model.parameters()).device
    workers = max(1, min(workers, -(-len(lengths) // batch_size)))  # no more workers than batches
    return logits_of_batches(model, sorted_batches(x, lengths, batch_size), len(lengths), device=device,
                             amp=amp, workers=workers)
