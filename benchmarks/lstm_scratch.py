"""Forward + backward time of ScratchLSTM against nn.LSTM on the CPU.

    .venv/bin/python benchmarks/lstm_scratch.py [--repeats 7] [--threads N]

Sizes are the acceptance sizes: batch 64, length 400, embedding 128, hidden 128, one
layer, unidirectional and bidirectional, every sequence full length (so nn.LSTM runs on a
plain padded tensor, its fastest path). Both layers get the same weights and the same
input; a step is `out, state = layer(x); (out.sum() + h_n.sum()).backward()`. After a
warm-up, the two are timed alternately, so load from other processes on the machine hits
both alike, and the median of the repeats is reported. Threads: torch's default unless
--threads says otherwise (on a shared two-core machine, --threads 1 is far less disturbed
by other processes: a second OpenMP thread waits at every step for its descheduled twin).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from rnnkit.models.scratch import ScratchLSTM

BATCH, LENGTH, EMBEDDING, HIDDEN = 64, 400, 128, 128


def step(layer: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> float:
    start = time.perf_counter()
    out, (h_n, _) = layer(x) if lengths is None else layer(x, lengths)
    (out.sum() + h_n.sum()).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's choice")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}; batch {BATCH}, length {LENGTH}, "
        f"embedding {EMBEDDING}, hidden {HIDDEN}; forward + backward, median of {args.repeats}"
    )
    for bidirectional in (False, True):
        torch.manual_seed(0)
        reference = nn.LSTM(EMBEDDING, HIDDEN, batch_first=True, bidirectional=bidirectional)
        scratch = ScratchLSTM(EMBEDDING, HIDDEN, bidirectional=bidirectional)
        scratch.copy_from_torch(reference)
        x = torch.randn(BATCH, LENGTH, EMBEDDING, requires_grad=True)
        lengths = torch.full((BATCH,), LENGTH)
        times: dict[str, list[float]] = {"nn.LSTM": [], "ScratchLSTM": []}
        for i in range(args.warmup + args.repeats):
            for name, layer, lens in (
                ("nn.LSTM", reference, None),
                ("ScratchLSTM", scratch, lengths),
            ):
                elapsed = step(layer, x, lens)
                if i >= args.warmup:
                    times[name].append(elapsed)
        ref_ms, mine_ms = (statistics.median(times[k]) * 1000 for k in ("nn.LSTM", "ScratchLSTM"))
        ref_min, mine_min = (min(times[k]) * 1000 for k in ("nn.LSTM", "ScratchLSTM"))
        label = "bidirectional " if bidirectional else "unidirectional"
        print(
            f"{label}  nn.LSTM {ref_ms:7.1f} ms   ScratchLSTM {mine_ms:7.1f} ms   ratio {mine_ms / ref_ms:.2f}x"
            f"   (fastest runs: {ref_min:.1f} / {mine_min:.1f} ms, {mine_min / ref_min:.2f}x)"
        )


if __name__ == "__main__":
    main()
