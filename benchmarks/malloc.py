"""glibc's default handling of large allocations against keeping freed memory (keep_freed_memory).

    python benchmarks/malloc.py --artifacts artifacts [--model bilstm-pool] [--hidden-dim 128]
                                [--batches 33] [--rounds 3] [--threads 1] [--amp]

Needs a tokenized artifacts folder (the sample is enough: `rnnkit prepare imdb --sample &&
rnnkit tokenize`). In one process, on the same training batches (the first --batches of
an epoch of train, batch 64, length-bucketed as `fit` cuts them) and from the same weights:

1. a warm-up pass (not counted);
2. --rounds passes with glibc as it starts (large allocations mmap'd and handed back on free);
3. `rnnkit.training.device.keep_freed_memory()` (what configure_cpu calls), then --rounds passes.

Prints wall and kernel (system) seconds per pass for both, and the ratio. glibc's mallopt
cannot be undone to its adaptive default, which is why the default runs first. Linux/glibc only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from rnnkit.artifacts import artifact_paths
from rnnkit.models import build_model
from rnnkit.stages.train import Options, model_config
from rnnkit.text.dataset import load_dataset
from rnnkit.training.batching import bucketed_order, iterate
from rnnkit.training.device import keep_freed_memory
from rnnkit.training.loop import train_step
from rnnkit.training.optim import Optimizers


def one_pass(model, state, batches, amp: bool) -> tuple[float, float]:
    """Wall and system seconds of training steps over `batches`, from the weights in `state`."""
    model.load_state_dict(state)
    # rnnkit's own training step (training/loop.py), as `rnnkit train` runs it.
    optimizers = Optimizers(model, lr=1e-3, weight_decay=0.0, schedule="constant", total_steps=len(batches))
    device = torch.device("cpu")
    wall, system = time.perf_counter(), os.times().system
    for batch in batches:
        train_step(model, batch, optimizers, task="binary", device=device, amp=amp, clip=1.0)
    return time.perf_counter() - wall, os.times().system - system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--model", default="bilstm-pool")
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--batches", type=int, default=33)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast, as `rnnkit tune` on a CPU with bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    data = load_dataset(artifact_paths(args.artifacts), check_lineage=False)
    options = Options(model=args.model, hidden_dim=args.hidden_dim)
    torch.manual_seed(0)
    model = build_model(args.model, model_config(options, data))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    order = bucketed_order(data["lengths_train"], 64, generator=torch.Generator().manual_seed(0))
    batches = list(iterate(data["X_train"], data["lengths_train"], data["y_train"], order))[: args.batches]

    one_pass(model, state, batches, args.amp)  # warm-up: oneDNN primitives, first touches
    default = [one_pass(model, state, batches, args.amp) for _ in range(args.rounds)]
    if not keep_freed_memory():
        raise SystemExit("keep_freed_memory() did not apply (not glibc?): nothing to compare")
    kept = [one_pass(model, state, batches, args.amp) for _ in range(args.rounds)]

    print(f"{args.model}, hidden {args.hidden_dim}, {len(batches)} batches of 64, {args.threads} thread(s), "
          f"{'bf16' if args.amp else 'fp32'}; median of {args.rounds} passes")
    for name, runs in (("glibc default", default), ("freed memory kept", kept)):
        print(f"  {name:<18} {statistics.median(w for w, _ in runs):7.2f} s wall, "
              f"{statistics.median(s for _, s in runs):6.2f} s in the kernel")
    ratio = statistics.median(w for w, _ in default) / statistics.median(w for w, _ in kept)
    print(f"  speed-up: {ratio:.2f}x")


if __name__ == "__main__":
    main()
