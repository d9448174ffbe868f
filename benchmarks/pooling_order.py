"""bilstm-pool with its backward direction put back in order before pooling, and without.

    python benchmarks/pooling_order.py --artifacts artifacts [--batches 33] [--rounds 3] [--amp]

Needs a tokenized artifacts folder (the sample is enough). Mean and max over time do not
depend on the order of the steps, so bilstm-pool calls RaggedRNN with in_order=False: the
backward direction's outputs stay reversed within each sequence and padding is not zeroed.
In one process, from the same weights and on the same training batches (the first
--batches of an epoch, batch 64), it times training steps (forward, backward, Adam) with
in_order=True and in_order=False, alternating, --rounds times each, and prints the medians
and the ratio. The pooled features agree to float rounding (tests/models/test_layers.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit.artifacts import artifact_paths
from rnnkit.models import build_model
from rnnkit.models.layers import length_mask, masked_mean_max
from rnnkit.stages.train import Options, model_config
from rnnkit.text.dataset import load_dataset
from rnnkit.training.batching import bucketed_order, iterate
from rnnkit.training.device import configure_cpu
from rnnkit.training.loop import train_step
from rnnkit.training.optim import Optimizers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--batches", type=int, default=33)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    args = parser.parse_args()
    configure_cpu(args.threads)
    device = torch.device("cpu")
    data = load_dataset(artifact_paths(args.artifacts), check_lineage=False)
    torch.manual_seed(0)
    model = build_model("bilstm-pool", model_config(Options(), data))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    order = bucketed_order(data["lengths_train"], 64, generator=torch.Generator().manual_seed(0))
    batches = list(iterate(data["X_train"], data["lengths_train"], data["y_train"], order))[: args.batches]

    class Variant(torch.nn.Module):
        """bilstm-pool's forward with the backward direction in order or not."""

        def __init__(self, in_order: bool):
            super().__init__()
            self.model, self.in_order = model, in_order

        def forward(self, ids, lengths):
            embedded = self.model.embedding_dropout(self.model.embedding(ids))
            outputs, _ = self.model.rnn(embedded, lengths, in_order=self.in_order)
            return self.model.head(masked_mean_max(outputs, length_mask(lengths, ids.size(1))))

    def steps(in_order: bool) -> float:
        model.load_state_dict(state)
        # rnnkit's own training step (training/loop.py), with clipping as `rnnkit train` does.
        optimizers = Optimizers(model, lr=1e-3, weight_decay=0.0, schedule="constant", total_steps=len(batches))
        variant = Variant(in_order)
        started = time.perf_counter()
        for batch in batches:
            train_step(variant, batch, optimizers, task="binary", device=device, amp=args.amp, clip=1.0)
        return time.perf_counter() - started

    steps(True)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for in_order in (True, False):
            times[in_order].append(steps(in_order))
    ordered, unordered = statistics.median(times[True]), statistics.median(times[False])
    print(f"bilstm-pool, hidden 128, {len(batches)} batches of 64, {args.threads} thread(s), "
          f"{'bf16' if args.amp else 'fp32'}; median of {args.rounds}")
    print(f"  in_order=True:  {ordered:6.2f} s")
    print(f"  in_order=False: {unordered:6.2f} s")
    print(f"  speed-up: {ordered / unordered:.3f}x")


if __name__ == "__main__":
    main()
