"""rnnkit's defaults against the baselines a user would pick instead, on every task shape.

    python benchmarks/task_shapes.py --root /work/runs/shapes [--datasets sample r8 r90 r90-small imdb]
                                     [--models ngram cnn bilstm-pool] [--no-ensemble]
                                     [--fasttext-seconds 300] [--threads 2] [--json OUT]

For each dataset, in one run on the identical prepared splits:

1. `rnnkit prepare ...` (the dataset's own flags only: which columns, which split) and
   `rnnkit tokenize` with its defaults;
2. `rnnkit train --model M` with rnnkit's defaults for every model of --models (no other
   flag: epochs, patience, learning rate, monitor and thresholds are rnnkit's choice), then
   `rnnkit evaluate --run M` on the test split; with two or more models, `rnnkit ensemble`
   of them all (weights fitted on validation, the default), evaluated the same way;
3. benchmarks/baselines.py on the prepared splits: TF-IDF (1-2-grams) + a linear SVM with C
   chosen on validation, the fastText tutorial's recipe, and fastText's autotune on
   validation for --fasttext-seconds.

It prints one table per dataset (test metrics, seconds, and each row's headline metric as a
ratio to TF-IDF + linear's) and --json writes every figure. Data: ../shared/data (IMDB's
official tarball, Reuters-21578 R8 and R90) and the embedded sample. `r90-small` is a small
multi-label set drawn from R90 (small_multilabel below): 330 of its training texts and 600 of
its test texts, topics limited to those among the 330.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402  (benchmarks/baselines.py)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
R90 = SHARED / "reuters21578" / "reuters21578_modapte90.tsv.gz"
R90_FLAGS = ["--label-col", "labels", "--multi-label", "--split-col", "split"]
# `rnnkit prepare` arguments per dataset; r90-small's file is written when it is prepared
# (prepare_args).
DATASETS = {
    "sample": ["imdb", "--sample"],
    "imdb": ["imdb", "--source", str(SHARED / "aclImdb_v1.tar.gz")],
    "r8": ["csv", str(SHARED / "reuters21578" / "reuters21578_r8.tsv.gz"), "--split-col", "split"],
    "r90": ["csv", str(R90), *R90_FLAGS],
    "r90-small": None,
}
# r90-small: how many R90 texts it draws (seeded), from which split.
SMALL_TRAIN, SMALL_TEST = 330, 600
HEADLINE = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "micro_f1"}
COLUMNS = {"binary": ["accuracy", "f1", "macro_f1"], "multiclass": ["accuracy", "macro_f1"],
           "multilabel": ["micro_f1", "macro_f1", "subset_accuracy"]}


def rnnkit(*args: str, root: Path, threads: int) -> float:
    """Run one rnnkit command on `root`; its wall seconds. Output goes to root/../<command>.log."""
    env = {**os.environ, "RNNKIT_ARTIFACTS": str(root)}
    started = time.perf_counter()
    log = root.parent / f"{'-'.join(args[:3]).replace('/', '_')}.log"
    with open(log, "w") as handle:
        extra = ["--threads", str(threads)] if args[0] in ("train", "evaluate", "ensemble") else []
        command = [sys.executable, "-c", "from rnnkit.cli import main; main()", *args, *extra]
        done = subprocess.run(command, env=env, stdout=handle,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"rnnkit {' '.join(args)} failed: see {log}")
    return time.perf_counter() - started


def small_multilabel(folder: Path) -> Path:
    """A small multi-label set (a shape the issue names: a few hundred texts, a few dozen
    topics) drawn from R90 with a fixed seed: SMALL_TRAIN training and SMALL_TEST test texts,
    each text's topics limited to those among the training texts (texts left with none
    dropped). Written to folder/r90-small.tsv."""
    import pandas as pd

    full = pd.read_csv(R90, sep="\t")
    train = full[full["split"] == "train"].sample(SMALL_TRAIN, random_state=0)
    test = full[full["split"] == "test"].sample(SMALL_TEST, random_state=0)
    seen = {label for labels in train["labels"] for label in labels.split(", ")}
    small = pd.concat([train, test])
    small["labels"] = small["labels"].map(lambda labels: ", ".join(x for x in labels.split(", ") if x in seen))
    path = folder / "r90-small.tsv"
    small[small["labels"] != ""].to_csv(path, sep="\t", index=False)
    return path


def prepare_args(name: str, folder: Path) -> list[str]:
    """`rnnkit prepare` arguments for dataset `name` (r90-small: its file written into `folder` first)."""
    if name == "r90-small":
        return ["csv", str(small_multilabel(folder)), *R90_FLAGS]
    return DATASETS[name]


def run_dataset(name: str, args) -> dict:
    root = Path(args.root) / name / "artifacts"
    root.parent.mkdir(parents=True, exist_ok=True)
    prepare = prepare_args(name, root.parent)
    seconds = {"prepare": rnnkit("prepare", *prepare, "--force", root=root, threads=args.threads),
               "tokenize": rnnkit("tokenize", "--force", root=root, threads=args.threads)}
    splits, task, label_names = baselines.load_splits(root)
    rows = []
    for model in args.models:
        train_s = rnnkit("train", "--model", model, "--name", model, "--force", root=root, threads=args.threads)
        rows.append(evaluated(model, root, args, train_s))
        print(f"  {name}: rnnkit {model} {rows[-1]['metrics']}", flush=True)
    if len(args.models) > 1 and not args.no_ensemble:
        # The members' own training time counts: an ensemble costs what its members cost.
        started = time.perf_counter()
        rnnkit("ensemble", *args.models, "--name", "ensemble", "--force", root=root, threads=args.threads)
        total = time.perf_counter() - started + sum(r["total_seconds"] for r in rows)
        rows.append(evaluated("ensemble", root, args, total, method=f"rnnkit ensemble of {' + '.join(args.models)}"))
        print(f"  {name}: rnnkit ensemble {rows[-1]['metrics']}", flush=True)
    rows.append(baselines.tfidf_linear(splits, task, label_names))
    if not args.no_fasttext:
        rows.append(baselines.fasttext_recipe(splits, task, label_names, threads=args.threads))
        if args.fasttext_seconds > 0:
            rows.append(baselines.fasttext_autotune(splits, task, label_names, duration=args.fasttext_seconds,
                                                    threads=args.threads, verbose=0))
    return {"dataset": name, "task": task, "labels": len(label_names),
            "sizes": {s: len(f) for s, f in splits.items()}, "stage_seconds": seconds, "rows": rows}


def evaluated(run: str, root: Path, args, seconds: float, method: str | None = None) -> dict:
    """`rnnkit evaluate --run RUN` on the test split, as one row of the table."""
    rnnkit("evaluate", "--run", run, root=root, threads=args.threads)
    report = json.loads((root / "reports" / f"{run}-test.json").read_text())
    history_file = root / "checkpoints" / run / "metrics.jsonl"
    epochs = len(history_file.read_text().splitlines()) if history_file.exists() else None
    return {"method": method or f"rnnkit {run}", "metrics": report["metrics"], "total_seconds": seconds,
            "params": {"epochs": epochs, "best_epoch": report.get("epoch"), "decision": report["decision_text"]}}


def markdown(result: dict) -> str:
    task = result["task"]
    headline = HEADLINE[task]
    reference = next(r for r in result["rows"] if r["method"].startswith("tfidf"))["metrics"][headline]
    columns = COLUMNS[task]
    sizes = ", ".join(f"{k} {v:,}" for k, v in result["sizes"].items())
    lines = [f"{result['dataset']} ({task}, {result['labels']} labels; {sizes})", "",
             "| method | " + " | ".join(columns) + f" | {headline} / TF-IDF's | seconds |",
             "|---" * (len(columns) + 3) + "|"]
    for row in result["rows"]:
        m = row["metrics"]
        lines.append(f"| {row['method']} | " + " | ".join(f"{m[c]:.4f}" for c in columns)
                     + f" | {m[headline] / reference:.3f} | {row['total_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a folder for one artifacts folder per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["ngram", "cnn", "bilstm-pool"])
    parser.add_argument("--no-ensemble", action="store_true", help="no ensemble row (else one of all --models)")
    parser.add_argument("--fasttext-seconds", type=int, default=300, help="autotune budget (0: no autotune row)")
    parser.add_argument("--no-fasttext", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        results.append(run_dataset(name, args))
        print(markdown(results[-1]) + "\n", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
