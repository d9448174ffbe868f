"""Denormal floats in recurrent backward passes, and what flushing them to zero saves.

    python benchmarks/denormals.py [--models lstm bilstm-pool gru-scratch cnn] [--width 200]
                                   [--steps 5] [--threads 1]

For each model: training steps (forward, backward, Adam) on random batches of 64 reviews
of --width tokens, first as torch runs by default (denormals computed), then with
`torch.set_flush_denormal(True)` (what rnnkit's `configure_cpu` sets), from the same
weights, in one process. Prints median seconds per step for both, the ratio, and the share
of denormal values among the first step's gradients: gradients that vanish through
hundreds of steps fall below float32's normal range (~1.2e-38), where x86 CPUs compute
10-100x slower.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from rnnkit.models import ModelConfig, build_model

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32


def denormal_share(model) -> float:
    grads = [p.grad.detach().abs().flatten() for p in model.parameters() if p.grad is not None]
    values = torch.cat(grads)
    return float(((values > 0) & (values < TINY)).float().mean())


def steps(model, batches, flush: bool) -> tuple[list[float], float]:
    torch.set_flush_denormal(flush)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, share = [], 0.0
    for i, (ids, lengths, y) in enumerate(batches):
        started = time.perf_counter()
        loss = F.binary_cross_entropy_with_logits(model(ids, lengths).squeeze(1), y)
        optimizer.zero_grad()
        loss.backward()
        if i == 0:
            share = denormal_share(model)
        optimizer.step()
        times.append(time.perf_counter() - started)
    torch.set_flush_denormal(False)
    return times, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lstm", "bilstm-pool", "gru-scratch", "cnn"])
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.steps):
        lengths = torch.randint(args.width // 2, args.width + 1, (64,), generator=g)
        lengths[0] = args.width
        ids = torch.randint(2, 20000, (64, args.width), generator=g)
        ids[torch.arange(args.width) >= lengths.unsqueeze(1)] = 0
        batches.append((ids, lengths, torch.randint(0, 2, (64,), generator=g).float()))
    print(f"batch 64 x {args.width} tokens, embedding 128, hidden 128, {args.threads} thread(s), "
          f"median of {args.steps} training steps, torch {torch.__version__}")
    print(f"{'model':<14}{'denormals':>12}{'flushed':>12}{'ratio':>8}{'denormal grads':>16}")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, ModelConfig(vocab_size=20000, num_outputs=1))
        flushed_model = copy.deepcopy(model)
        slow, share = steps(model, batches, flush=False)
        fast, _ = steps(flushed_model, batches, flush=True)
        a, b = statistics.median(slow), statistics.median(fast)
        print(f"{name:<14}{a:11.3f}s{b:11.3f}s{a / b:7.1f}x{share:15.1%}", flush=True)


if __name__ == "__main__":
    main()
