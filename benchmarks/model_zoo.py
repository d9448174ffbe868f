"""Every model of the zoo trained with one shared recipe, then compared on the test split.

    python benchmarks/model_zoo.py --artifacts artifacts [--models rnn lstm ...] [--jobs 2]
                                   [--epochs 5] [-- extra `rnnkit train` flags]

For each registered model (or --models): `rnnkit train --model M --name zoo-M <recipe>`,
then `rnnkit evaluate --run zoo-M`; finally it prints a Markdown table of the zoo runs from
their test reports: test accuracy, F1, the best epoch (by validation loss), parameters
with and without the embedding, and median training seconds per epoch. The recipe is the
notebooks' (embedding 128, hidden 128, dropout 0.5, Adam 1e-3, batch 64, best checkpoint by
validation loss) for --epochs; flags after `--` are added to every `rnnkit train`.

--jobs N runs N models at once, each as its own process with one CPU thread (`--threads 1`
and OMP_NUM_THREADS=1): on a 2-core machine two one-thread runs finish sooner than two
two-thread runs one after the other, and one thread per process avoids OpenMP spin-waiting
between processes. Seconds per epoch are then those of one core. Runs that already exist
are kept (delete artifacts/checkpoints/zoo-M to redo one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECIPE = ["--embedding-dim", "128", "--hidden-dim", "128", "--dropout", "0.5", "--lr", "1e-3", "--batch-size", "64"]


def recipe_for(model: str) -> list[str]:
    """RECIPE less the hyper-parameters `model` does not take (`rnnkit train` refuses them: cnn
    and ngram have no hidden size)."""
    from rnnkit.models.registry import unused_by

    pairs = list(zip(RECIPE[::2], RECIPE[1::2]))
    unused = set(unused_by(model, [flag[2:].replace("-", "_") for flag, _ in pairs]))
    return [item for flag, value in pairs if flag[2:].replace("-", "_") not in unused for item in (flag, value)]


def rnnkit(*args: str, env: dict, log) -> None:
    log.write(f"$ rnnkit {' '.join(args)}\n")
    log.flush()
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], env=env, stdout=log, stderr=log)
    if done.returncode != 0:
        sys.exit(f"`rnnkit {' '.join(args)}` failed (exit {done.returncode}) — see {log.name}")


def run_model(model: str, args, extra: list[str], env: dict) -> str:
    name = f"zoo-{model}"
    log_path = Path(args.artifacts) / "reports" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        if not (Path(args.artifacts) / "checkpoints" / name / "best.pt").exists():
            rnnkit("train", "--model", model, "--name", name, "--epochs", str(args.epochs), "--threads", "1",
                   *recipe_for(model), *extra, env=env, log=log)
        rnnkit("evaluate", "--run", name, "--threads", "1", env=env, log=log)
    return f"{model}: {time.perf_counter() - started:.0f} s (log: {log_path})"


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    from rnnkit.models import model_names

    models = args.models or model_names()
    env = {**os.environ, "RNNKIT_ARTIFACTS": str(args.artifacts), "OMP_NUM_THREADS": "1"}
    print(f"{len(models)} models, {args.jobs} at a time, recipe: {' '.join(RECIPE + extra)} --epochs {args.epochs}",
          flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda m: run_model(m, args, extra, env), models):
            print(line, flush=True)
    print()
    print(markdown_table(Path(args.artifacts), models))


def markdown_table(root: Path, models: list[str]) -> str:
    """One row per zoo run from its test report (reports/zoo-M-test.json), in --models order."""
    import json

    lines = ["| model | test accuracy | test F1 | best epoch | parameters | without embedding | s per epoch |",
             "|---|---|---|---|---|---|---|"]
    for model in models:
        report = json.loads((root / "reports" / f"zoo-{model}-test.json").read_text(encoding="utf-8"))
        m = report["metrics"]
        lines.append(f"| `{model}` | {m['accuracy']:.4f} | {m['f1']:.4f} | {report['epoch']} | "
                     f"{report['parameters']:,} | {report['parameters_without_embedding']:,} | "
                     f"{report['seconds_per_epoch']:.1f} |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
