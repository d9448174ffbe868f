"""Prediction latency and throughput.

    python benchmarks/predict_latency.py --artifacts artifacts [--run NAME] [--repeats 5]

(1) Wall time of `rnnkit predict "great film"` as a fresh process against
    `python -c "import torch"` in the same run (medians of --repeats alternating runs),
    and their ratio: the start-up rnnkit adds on top of torch itself.
(2) Batch throughput: the test split's texts (from artifacts/prepared/test.parquet) written
    one per line to a file and classified by `rnnkit predict --file F` as one process;
    reviews per second, start-up included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--run", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    env = {**os.environ, "RNNKIT_ARTIFACTS": args.artifacts}
    rnnkit = [sys.executable, "-m", "rnnkit", "predict"] + (["--run", args.run] if args.run else [])
    if args.threads:
        rnnkit += ["--threads", str(args.threads)]
        env["OMP_NUM_THREADS"] = str(args.threads)

    predict_times, torch_times = [], []
    for _ in range(args.repeats):
        predict_times.append(timed([*rnnkit, "great film"], env))
        torch_times.append(timed([sys.executable, "-c", "import torch"], env))
    p, t = statistics.median(predict_times), statistics.median(torch_times)
    print(f"rnnkit predict 'great film': median {p:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in predict_times)})")
    print(f"python -c 'import torch':     median {t:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in torch_times)})")
    print(f"ratio {p / t:.2f}x")

    import pandas as pd

    texts = pd.read_parquet(Path(args.artifacts) / "prepared" / "test.parquet")["text"]
    texts = [" ".join(t.split()) for t in texts]  # one review per line
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reviews.txt"
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        seconds = timed([*rnnkit, "--file", str(path)], env)
    print(f"batch: {len(texts):,} reviews in {seconds:.1f} s = {len(texts) / seconds:,.0f} reviews/s "
          f"(one process, start-up included)")


if __name__ == "__main__":
    main()
