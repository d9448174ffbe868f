"""Prediction latency and throughput.

    python benchmarks/predict_latency.py --artifacts artifacts [--run NAME] [--repeats 5]
        [--variants "--threads 1" "--threads 1 --amp" "--threads 2" "--threads 2 --amp"] [--rounds 1]

(1) Wall time of `rnnkit predict "great film"` as a fresh process against
    `python -c "import torch"` in the same run (medians of --repeats alternating runs),
    and their ratio: the start-up rnnkit adds on top of torch itself. --repeats 0 skips it.
(2) Batch throughput of each variant side by side: the test split's texts (from
    artifacts/prepared/test.parquet, or --file, one text per line) classified by
    `rnnkit predict --file F VARIANT-FLAGS` as one process; reviews per second, start-up,
    tokenization and output included. A variant is a string of extra `rnnkit predict` flags;
    a `--threads N` in it also sets OMP_NUM_THREADS=N for that process. --rounds R runs the
    variants R times in turn (interleaved, so load from other jobs hits them alike) and
    reports the median. For each variant: how many labels differ from the first variant's,
    and the accuracy against the split's labels when they are known.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_VARIANTS = ["--threads 1 --workers 1 --batch-size 256", "--threads 1", "--threads 1 --amp",
                    "--threads 2 --workers 1 --batch-size 256", "--threads 2", "--threads 2 --amp"]


def timed(cmd: list[str], env: dict, stdout=subprocess.DEVNULL) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def variant_env(env: dict, flags: list[str]) -> dict:
    if "--threads" in flags:
        return {**env, "OMP_NUM_THREADS": flags[flags.index("--threads") + 1]}
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--run", default=None)
    parser.add_argument("--repeats", type=int, default=5, help="start-up runs (0: skip the start-up part)")
    parser.add_argument("--threads", type=int, default=None, help="--threads for the start-up part")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS,
                        help="extra `rnnkit predict` flags, one string per variant")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--file", default=None, help="texts, one per line (default: the test split)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N texts")
    args = parser.parse_args()
    env = {**os.environ, "RNNKIT_ARTIFACTS": args.artifacts}
    rnnkit = [sys.executable, "-m", "rnnkit", "predict"] + (["--run", args.run] if args.run else [])

    if args.repeats > 0:
        start = rnnkit + (["--threads", str(args.threads)] if args.threads else [])
        start_env = variant_env(env, start)
        predict_times, torch_times = [], []
        for _ in range(args.repeats):
            predict_times.append(timed([*start, "great film"], start_env))
            torch_times.append(timed([sys.executable, "-c", "import torch"], start_env))
        p, t = statistics.median(predict_times), statistics.median(torch_times)
        print(f"rnnkit predict 'great film': median {p:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in predict_times)})")
        print(f"python -c 'import torch':     median {t:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in torch_times)})")
        print(f"ratio {p / t:.2f}x")

    labels = None
    if args.file:
        texts = [line for line in Path(args.file).read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        import pandas as pd

        frame = pd.read_parquet(Path(args.artifacts) / "prepared" / "test.parquet")
        texts = [" ".join(t.split()) for t in frame["text"]]  # one review per line
        if frame["label"].dtype.kind in "iub":
            labels = [int(v) for v in frame["label"]]
    if args.limit:
        texts, labels = texts[: args.limit], labels and labels[: args.limit]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reviews.txt"
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        seconds: dict[str, list[float]] = {v: [] for v in args.variants}
        predicted: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for variant in args.variants:
                flags = shlex.split(variant)
                out = Path(tmp) / "out.tsv"
                with open(out, "w", encoding="utf-8") as handle:
                    seconds[variant].append(timed([*rnnkit, "--file", str(path), *flags],
                                                  variant_env(env, flags), stdout=handle))
                predicted[variant] = [line.split("\t", 1)[0] for line in out.read_text(encoding="utf-8").splitlines()]

    first = predicted[args.variants[0]]
    label_ids = None
    if labels is not None:
        import json

        meta = json.loads((Path(args.artifacts) / "prepared" / "labels.json").read_text(encoding="utf-8"))
        if meta.get("task") == "binary":
            label_ids = {name: i for i, name in enumerate(meta["label_names"])}
    print(f"\nbatch: {len(texts):,} texts, one process per run, start-up included, median of {args.rounds} round(s)")
    width = max(len(v) for v in args.variants)
    for variant in args.variants:
        s = statistics.median(seconds[variant])
        diff = sum(a != b for a, b in zip(predicted[variant], first))
        line = (f"  {variant:<{width}}  {s:6.1f} s  {len(texts) / s:6,.0f} texts/s  "
                f"{diff:5,} labels differ from the first")
        if label_ids is not None:
            accuracy = sum(label_ids.get(p) == y for p, y in zip(predicted[variant], labels)) / len(labels)
            line += f"  accuracy {accuracy:.4f}"
        print(line, flush=True)

if __name__ == "__main__":
    main()
