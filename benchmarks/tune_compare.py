"""The notebooks' tuning procedure against `rnnkit tune` with pruning, on the same data.

    python benchmarks/tune_compare.py --artifacts artifacts [--trials 15] [--epochs-per-trial 3]
                                      [--timeout SECONDS] [--pruner median] [--space FILE]
                                      [--seed 0] [--threads N] [--device auto] [--amp]
                                      [--parallel] [--keep DIR]
                                      [--embeddings PATH --freeze-embeddings-epochs N]

Needs a tokenized artifacts folder (`rnnkit prepare imdb` + `rnnkit tokenize`). In this one
process it runs, one after the other on the same dataset.pt:

* notebook: what the source notebooks did — TPE, --trials trials of --epochs-per-trial
  epochs each, every trial trained to the end (no pruning), maximising validation
  accuracy over the notebooks' space (hidden_dim {64, 128, 256}, dropout [0.2, 0.6],
  lr [1e-4, 3e-3] log) unless --space says otherwise;
* rnnkit: the same, with `rnnkit tune`'s pruner (--pruner, median by default), which stops
  a trial after an epoch when it is behind the median of the earlier trials at that epoch.

Both go through `rnnkit.stages.tune.run` with the same seed, so they draw the same
configurations while TPE is still sampling at random (its first 10 trials): the difference
is the pruning. --timeout bounds each procedure (no new trial starts after it; the running
one finishes). It prints wall time, trials completed and pruned, epochs trained and the
best validation accuracy of each, and the ratios. The studies live in a temporary copy of
the artifacts folder, so the real one is not touched; no final run is trained.

--parallel runs the two procedures at the same time, each in its own process (give
--threads 1 on a 2-core machine: one core each), so both see the same machine for the same
--timeout. --keep DIR keeps the studies' journals in DIR/tune/ (and the copied inputs), so
that the best configuration can be trained afterwards as an ordinary run:

    rnnkit tune --study rnnkit --storage DIR/tune/rnnkit.journal --trials 0 --final-epochs 5

--amp trains both procedures' trials in bf16 (1.8x faster on a CPU on full IMDB: more trials fit a
--timeout); give the final run above --amp too, so that it reproduces the best trial.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.tune import Options as TuneOptions
from rnnkit.stages.tune import run as tune

# What `tune` reads from the artifacts folder (the manifest, for the lineage check).
INPUTS = ("dataset.pt", "tokenizer.json", "word2idx.pkl", "manifest.json")


def copy_inputs(source: Path, target: Path) -> None:
    """Hard links where the file system allows (dataset.pt can be large), copies elsewhere."""
    if target.exists():
        sys.exit(f"{target} exists — give --keep a new folder (studies in it would be resumed, not compared)")
    target.mkdir(parents=True)
    for name in INPUTS:
        if not (source / name).exists():
            sys.exit(f"{source / name} is missing — run `rnnkit prepare` and `rnnkit tokenize` first")
        try:
            os.link(source / name, target / name)
        except OSError:
            shutil.copy2(source / name, target / name)


def run(name: str, root: Path, args, pruner: str) -> dict:
    options = TuneOptions(trials=args.trials, study=name, model=args.model, epochs_per_trial=args.epochs_per_trial,
                          sampler="tpe", pruner=pruner, timeout=args.timeout, seed=args.seed,
                          space=args.space, final_epochs=0,
                          device=args.device, threads=args.threads, amp=args.amp,
                          embeddings=None if args.embeddings is None else str(args.embeddings.resolve()),
                          freeze_embeddings_epochs=args.freeze_embeddings_epochs)

    def on_trial(row, best) -> None:
        value = "-" if row.value is None else f"{row.value:.4f}"
        print(f"  [{name}] trial {row.number:>2} {row.state.lower():<8} after {row.epochs} epoch(s)  "
              f"{value}  {row.seconds or 0:.0f} s", flush=True)

    started = time.perf_counter()
    result = tune(artifact_paths(root), options, on_trial=on_trial)
    seconds = time.perf_counter() - started
    return {"procedure": name, "pruner": pruner, "seconds": seconds, "complete": result.count("COMPLETE"),
            "pruned": result.count("PRUNED"), "failed": result.count("FAIL"),
            "epochs": sum(t.epochs for t in result.trials), "best": result.best.value,
            "best_trial": result.best.number, "params": result.best.params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="a tokenized artifacts folder")
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--epochs-per-trial", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per procedure")
    parser.add_argument("--pruner", default="median", choices=("median", "hyperband"))
    parser.add_argument("--space", type=Path, default=None, help="search-space TOML (docs/tuning.md)")
    parser.add_argument("--model", default="bilstm-pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true", help="both procedures' trials in mixed precision (bf16 on CPU)")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="every trial of both starts from these vectors (as `rnnkit tune --embeddings`)")
    parser.add_argument("--freeze-embeddings-epochs", type=int, default=0)
    parser.add_argument("--parallel", action="store_true", help="both procedures at once, one process each")
    parser.add_argument("--keep", type=Path, default=None, help="keep the studies (and inputs) in this folder")
    args = parser.parse_args()

    procedures = (("notebook", "none"), ("rnnkit", args.pruner))
    with tempfile.TemporaryDirectory(prefix="tune-compare-") as tmp:
        root = args.keep if args.keep is not None else Path(tmp) / "artifacts"
        copy_inputs(args.artifacts, root)
        for name, pruner in procedures:
            print(f"{name}: {args.trials} trials x {args.epochs_per_trial} epochs, TPE, pruner {pruner}"
                  + (f", timeout {args.timeout:g} s" if args.timeout else ""), flush=True)
        try:
            if args.parallel:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn: each worker starts its own torch with its own thread pool.
                with ProcessPoolExecutor(len(procedures), mp_context=multiprocessing.get_context("spawn")) as pool:
                    rows = list(pool.map(run, *zip(*[(name, root, args, pruner) for name, pruner in procedures])))
            else:
                rows = [run(name, root, args, pruner) for name, pruner in procedures]
        except RnnkitError as exc:
            sys.exit(f"error: {exc}")

    print()
    print(f"{'procedure':<10} {'pruner':<9} {'wall s':>8} {'complete':>8} {'pruned':>6} {'epochs':>6} "
          f"{'best val acc':>12}  best configuration")
    for r in rows:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['procedure']:<10} {r['pruner']:<9} {r['seconds']:>8.1f} {r['complete']:>8} {r['pruned']:>6} "
              f"{r['epochs']:>6} {r['best']:>12.4f}  trial {r['best_trial']}: {params}")
    notebook, pruned = rows
    print(f"\nrnnkit/notebook: wall time x{pruned['seconds'] / notebook['seconds']:.2f}, epochs trained "
          f"x{pruned['epochs'] / max(notebook['epochs'], 1):.2f}, best val accuracy "
          f"{pruned['best'] - notebook['best']:+.4f}")


if __name__ == "__main__":
    main()
