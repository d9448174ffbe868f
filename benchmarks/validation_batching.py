"""Validation during training: batch sizes and worker threads for one pass over the val split.

    python benchmarks/validation_batching.py --artifacts artifacts [--hidden-dim 128] [--threads 2]

Needs a tokenized artifacts folder (the sample is enough). In one process, with one
bilstm-pool model, it times `evaluate_split` on the val split three times for each
(batch size, worker threads) pair: 256 on one thread was what `fit` used after every epoch
until session 4; 32 with one worker per torch thread is what it uses now (the defaults of
`rnnkit evaluate`). Prints each pair's median seconds and its speed-up over (256, 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnkit.artifacts import artifact_paths
from rnnkit.models import build_model
from rnnkit.stages.train import Options, model_config
from rnnkit.text.dataset import load_dataset
from rnnkit.training.device import configure_cpu
from rnnkit.training.inference import predict_logits
from rnnkit.training.loop import metrics_from_logits


def evaluate_split(model, x, lengths, y, task: str, *, batch_size: int = 32, workers: int = 1) -> dict:
    """Loss and metrics of one split as validation after an epoch computes them (training/loop.py `validate`),
    at the batch size and worker count given."""
    logits = predict_logits(model, x, lengths, batch_size=batch_size, device=torch.device("cpu"), workers=workers)
    return metrics_from_logits(logits, y, task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configure_cpu(args.threads)
    data = load_dataset(artifact_paths(args.artifacts), check_lineage=False)
    torch.manual_seed(0)
    model = build_model("bilstm-pool", model_config(Options(hidden_dim=args.hidden_dim), data))
    evaluate_split(model, data["X_val"], data["lengths_val"], data["y_val"], data["task"])  # warm-up
    results = {}
    for batch_size, workers in ((256, 1), (64, 1), (32, 1), (32, args.threads)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            evaluate_split(model, data["X_val"], data["lengths_val"], data["y_val"], data["task"],
                           batch_size=batch_size, workers=workers)
            times.append(time.perf_counter() - started)
        results[(batch_size, workers)] = statistics.median(times)
    base = results[(256, 1)]
    print(f"val split ({len(data['y_val']):,} reviews), bilstm-pool hidden {args.hidden_dim}, "
          f"{args.threads} torch thread(s); median of 3")
    for (batch_size, workers), seconds in results.items():
        print(f"  batch {batch_size:>3}, {workers} worker(s): {seconds:6.2f} s  ({base / seconds:.2f}x)")


if __name__ == "__main__":
    main()
