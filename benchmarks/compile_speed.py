"""Does `--compile` (torch.compile) speed up training on this machine? One process, same data.

    python benchmarks/compile_speed.py --artifacts artifacts [--model bilstm-pool]
                                       [--limit 4000] [--epochs 2] [--threads N] [--amp]

Trains the same model from the same initial weights with rnnkit's trainer (`fit`) twice on
the first --limit training reviews: eager, then wrapped in torch.compile (what
`rnnkit train --compile` does). Epoch 1 of the compiled model includes compilation (and the
recompilations that new batch shapes trigger); later epochs show the steady state. Prints
seconds per epoch for both, the steady-state ratio and validation accuracy, so a speed-up
is never bought with accuracy.
"""

from __future__ import annotations

import argparse
import copy

import torch

from rnnkit.artifacts import artifact_paths
from rnnkit.models import ModelConfig, build_model
from rnnkit.stages.train import Options
from rnnkit.text.dataset import load_dataset
from rnnkit.training.device import configure_cpu
from rnnkit.training.loop import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--model", default="bilstm-pool")
    parser.add_argument("--limit", type=int, default=4000, help="training reviews used")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for both")
    args = parser.parse_args()

    configure_cpu(args.threads)
    data = dict(load_dataset(artifact_paths(args.artifacts), check_lineage=False))
    for key in ("X_train", "lengths_train", "y_train"):
        data[key] = data[key][: args.limit]
    n_val = min(len(data["y_val"]), args.limit)
    for key in ("X_val", "lengths_val", "y_val"):
        data[key] = data[key][:n_val]
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=int(data["vocab_size"]), num_outputs=1, embedding_dim=128, hidden_dim=128,
                         dropout=0.5, pad_id=int(data["pad_id"]))
    eager = build_model(args.model, config)
    compiled = copy.deepcopy(eager)
    print(f"{args.model}, {args.limit:,} train / {n_val:,} val reviews, threads {torch.get_num_threads()}, "
          f"amp {args.amp}, torch {torch.__version__}")
    results = {}
    for label, model, use_compile in (("eager", eager, False), ("compiled", compiled, True)):
        options = Options(model=args.model, epochs=args.epochs, patience=0, amp=args.amp,
                               compile=use_compile, seed=0)
        result = fit(model, data, options, device=torch.device("cpu"), progress=False)
        results[label] = result.history
        for record in result.history:
            print(f"{label:9s} epoch {record['epoch']}: {record['train_seconds']:7.1f} s  "
                  f"val accuracy {record['val_accuracy']:.4f}")
    steady = [r["train_seconds"] for r in results["eager"][1:]], [r["train_seconds"] for r in results["compiled"][1:]]
    if steady[0]:
        e, c = sum(steady[0]) / len(steady[0]), sum(steady[1]) / len(steady[1])
        print(f"steady state (epochs 2+): eager {e:.1f} s, compiled {c:.1f} s per epoch -> "
              f"compiled is {e / c:.2f}x the eager speed")
    first = results["compiled"][0]["train_seconds"] - results["eager"][0]["train_seconds"]
    print(f"epoch 1 extra time of the compiled model (compilation): {first:+.1f} s")


if __name__ == "__main__":
    main()
