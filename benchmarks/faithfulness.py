"""Faithfulness of `rnnkit explain`'s attributions: deleting the tokens they rank highest
should lower the predicted label's probability far more than deleting as many random tokens.

    python benchmarks/faithfulness.py --artifacts ART --runs ngram cnn bilstm-pool \
        [--texts 1000] [--max-k 20] [--steps 50] [--threads 1] [--seed 0] [--plot aopc.png]

For each run and each of --texts test reviews (a seeded sample of prepared/test.parquet), the
predicted label is explained (rnnkit/interpret: layer integrated gradients, --steps), then for
k = 1 .. --max-k two copies of the text's token ids are shortened by k tokens: the k with the
largest attribution for the predicted label, and k drawn at random (seeded, the same draw for
every run). The drop of the predicted label's probability, p(text) - p(text less k tokens),
is averaged over the texts: one curve per ranking. AOPC (area over the perturbation curve,
Samek et al. 2017) = mean drop over k = 1 .. max-k. Printed: both curves and their ratio,
per run, as a Markdown table; timing per text; with --plot, the curves as a PNG (one panel per run).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path


def label_probability(predictor, sequences: list[list[int]], label: int) -> list[float]:
    """The probability of label `label` for each id sequence (one padded batch)."""
    import torch

    from rnnkit.text.base import PAD_ID, UNK_ID
    from rnnkit.training.metrics import BINARY, probabilities

    sequences = [s or [UNK_ID] for s in sequences]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), PAD_ID, dtype=torch.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    with torch.no_grad():
        probs = probabilities(predictor.model(ids.to(predictor.device), lengths).cpu(), predictor.task)
    if predictor.task == BINARY:  # one output, P(positive): label 0 is the negative one
        return (probs[:, 0] if label == 1 else 1 - probs[:, 0]).tolist()
    return probs[:, label].tolist()


def ratio(top: float, random_: float) -> str:
    """top / random, or "—" when random deletion did not lower the probability (no ratio to speak of)."""
    return f"{top / random_:.1f}x" if random_ > 0 else "—"


def delete(ids: list[int], positions) -> list[int]:
    gone = set(positions)
    return [t for i, t in enumerate(ids) if i not in gone]


def measure(paths, run: str, texts: list[str], *, max_k: int, steps: int, seed: int) -> dict:
    from rnnkit.interpret.attributions import Explainer
    from rnnkit.training.inference import Predictor

    predictor = Predictor.from_run(paths, run, device="cpu")
    explainer = Explainer(predictor, steps=steps)
    predictions = predictor.predict(texts)
    top = [0.0] * (max_k + 1)
    rand = [0.0] * (max_k + 1)
    deltas, seconds = [], []
    draw = random.Random(seed)
    for text, prediction in zip(texts, predictions):
        started = time.perf_counter()
        explanation = explainer.explain(text, prediction)
        seconds.append(time.perf_counter() - started)
        target = explanation.targets[0]
        deltas.append(abs(target.delta) / max(abs(target.f_text - target.f_baseline), 1e-6))
        ids = explanation.ids
        order = sorted(range(len(ids)), key=lambda i: -target.attributions[i])
        shuffled = list(range(len(ids)))
        draw.shuffle(shuffled)
        variants = [ids] + [delete(ids, order[:k]) for k in range(1, max_k + 1)] + \
                   [delete(ids, shuffled[:k]) for k in range(1, max_k + 1)]
        p = label_probability(predictor, variants, target.index)
        for k in range(1, max_k + 1):
            top[k] += p[0] - p[k]
            rand[k] += p[0] - p[max_k + k]
    n = len(texts)
    top = [x / n for x in top]
    rand = [x / n for x in rand]
    seconds.sort()
    return {"run": run, "model": predictor.model_name, "top": top, "random": rand,
            "aopc_top": sum(top[1:]) / max_k, "aopc_random": sum(rand[1:]) / max_k,
            "median_seconds": seconds[len(seconds) // 2], "median_delta": sorted(deltas)[len(deltas) // 2],
            "p90_delta": sorted(deltas)[int(0.9 * (len(deltas) - 1))], "max_delta": max(deltas)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--max-k", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write both curves of every run to this PNG")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from rnnkit.artifacts import artifact_paths

    torch.set_num_threads(args.threads)
    paths = artifact_paths(args.artifacts)
    test = pd.read_parquet(Path(paths.prepared) / "test.parquet")
    texts = test.sample(n=min(args.texts, len(test)), random_state=args.seed)["text"].tolist()
    results = []
    for run in args.runs:
        started = time.perf_counter()
        result = measure(paths, run, texts, max_k=args.max_k, steps=args.steps, seed=args.seed)
        results.append(result)
        print(f"{run}: AOPC top-k {result['aopc_top']:.4f}, random {result['aopc_random']:.4f}, ratio "
              f"{ratio(result['aopc_top'], result['aopc_random'])}; median {result['median_seconds']:.3f} "
              f"s/text; |delta| / |f(text) - f(baseline)|: median {result['median_delta']:.3f}, 90th percentile "
              f"{result['p90_delta']:.3f}, max {result['max_delta']:.3g}; {time.perf_counter() - started:.0f} s",
              flush=True)
    print(f"\n{len(texts)} test texts, {args.steps} steps; drop of the predicted label's probability after "
          f"deleting k tokens (top-k by attribution / k random)\n")
    ks = [k for k in (1, 2, 3, 5, 10, 15, 20) if k <= args.max_k]
    print("| run (model) | " + " | ".join(f"k={k}" for k in ks) + " | AOPC top-k | AOPC random | ratio |")
    print("|---|" + "---|" * (len(ks) + 3))
    for r in results:
        cells = " | ".join(f"{r['top'][k]:.3f} / {r['random'][k]:.3f}" for k in ks)
        print(f"| {r['run']} ({r['model']}) | {cells} | {r['aopc_top']:.4f} | {r['aopc_random']:.4f} | "
              f"{ratio(r['aopc_top'], r['aopc_random'])} |")
    print("\nfull curves (k = 1..max-k):")
    for r in results:
        print(f"{r['run']} top-k: " + " ".join(f"{x:.3f}" for x in r["top"][1:]))
        print(f"{r['run']} random: " + " ".join(f"{x:.3f}" for x in r["random"][1:]))
    if args.plot:
        plot(results, args.plot, texts=len(texts), steps=args.steps)
        print(f"curves -> {args.plot}")


def plot(results: list[dict], path: Path, *, texts: int, steps: int) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    width = max(6.4, 4.2 * len(results))
    fig, axes = plt.subplots(1, len(results), figsize=(width, 4.0), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], results):
        ks = range(1, len(r["top"]))
        ax.plot(ks, r["top"][1:], marker="o", markersize=3, label=f"top-k by attribution (AOPC {r['aopc_top']:.3f})")
        ax.plot(ks, r["random"][1:], marker="s", markersize=3, label=f"k random (AOPC {r['aopc_random']:.3f})")
        ax.set_title(f"{r['run']} ({r['model']})", fontsize=10)
        ax.set_xlabel("tokens deleted (k)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("drop of P(predicted label)")
    title = f"Deletion curves: {texts} test texts, integrated gradients ({steps} steps)"
    fig.suptitle(textwrap.fill(title, width=int(width * 11)), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
