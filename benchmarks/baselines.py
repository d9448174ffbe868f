"""The baselines a user would pick instead of rnnkit, on the identical prepared splits.

    python benchmarks/baselines.py --artifacts artifacts [--fasttext-seconds 60] [--no-fasttext]
                                   [--no-fasttext-recipe] [--fasttext-bucket N] [--fasttext-tune-ngrams]
                                   [--grid 0.1 0.3 1 3 10 30] [--linear svc|logreg] [--threads 2]
                                   [--json OUT]

Needs only `rnnkit prepare` (artifacts/prepared/{train,val,test}.parquet and labels.json; no
tokenize, no torch) and, for the fastText rows, `pip install fasttext-numpy2` (imported as
`fasttext`). On those splits it fits, one after the other:

* tfidf+svc: scikit-learn's TfidfVectorizer (lower-cased word 1- and 2-grams, sublinear tf,
  min_df 2, or 1 when the train split has fewer than 200 texts) fitted on train, and a
  LinearSVC (liblinear, L2, squared hinge; --linear logreg: LogisticRegression instead,
  "tfidf+logreg") for each C of --grid; the C with the best validation score is refitted on
  train. Binary and multi-class: one model (multi-class: one-vs-rest, the class with the
  highest decision function); multi-label: OneVsRestClassifier, a label is predicted when its
  decision function is > 0 (probability > 0.5 for logreg).
* fasttext-recipe: fastText with the fixed settings its classification tutorial ends on
  (epoch 25, lr 1.0, dim 50, wordNgrams 2, bucket 200,000; multi-label: one-vs-all loss,
  lr 0.5); val is not used. A few seconds.
* fasttext-autotune: fastText's `train_supervised` with `autotuneValidationFile` = val for
  --fasttext-seconds, word bigrams and the loss kept fixed (autotune does not search an
  argument that is given; --fasttext-tune-ngrams lets it search wordNgrams 1-5). Softmax loss
  for binary and multi-class, one-vs-all for multi-label. Autotune tries few settings in a
  minute on two cores and may keep fastText's defaults (5 epochs), which underfit small
  corpora: compare with the recipe row, or give it fastText's default of 300 s.

fastText texts are lower-cased with punctuation split off, as in fastText's tutorial; its
multi-label predictions are k=-1 with probability threshold 0.5, single-label k=1. Every
baseline trains on train only (as `rnnkit train` does) and uses val at most to choose
hyperparameters; none is refitted on train+val. Test metrics are computed as `rnnkit evaluate`
computes them (rnnkit.training.metrics; scikit-learn, zero_division=0): binary accuracy and
F1 of label 1 (and precision, recall, macro-F1); multi-class accuracy and macro-F1 over every
class (and weighted F1); multi-label micro-F1, macro-F1 over every label name, subset accuracy
(every label right) and Hamming accuracy. The validation score that chooses C is the task's
headline metric: accuracy (binary, multi-class) or micro-F1 (multi-label); fastText's autotune
optimises its own F1 of the top label on val (see `fasttext_autotune`).

It prints a table (method, parameters chosen, test metrics, seconds); --json OUT writes every
metric as JSON. Seconds are wall time: "fit" is the tf-idf vectorizer and the final model's
fit, or fastText's `train_supervised` call (autotune and the final training included);
"total" adds the C grid search, writing the fastText files and scoring the test split. The
fastText figures vary from run to run (--threads hogwild threads; autotune stops on a clock).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
TASKS = ("binary", "multiclass", "multilabel")
HEADLINE = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "micro_f1"}
# The metrics the printed table shows, per task (the JSON has every metric of `score`).
SHOWN = {"binary": ("accuracy", "f1"), "multiclass": ("accuracy", "macro_f1"),
         "multilabel": ("micro_f1", "macro_f1", "subset_accuracy")}
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
TINY_TRAIN = 200  # fewer train texts than this: min_df=1, so that a handful of texts still has a vocabulary


def load_splits(artifacts_dir: str | Path) -> tuple[dict[str, pd.DataFrame], str, list[str]]:
    """({"train": DataFrame, "val": ..., "test": ...}, task, label_names) from DIR/prepared/."""
    prepared = Path(artifacts_dir) / "prepared"
    meta_path = prepared / "labels.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} is missing: run `rnnkit prepare ... --artifacts {artifacts_dir}` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    task, label_names = meta["task"], list(meta["label_names"])
    if task not in TASKS:
        raise ValueError(f"{meta_path}: unknown task {task!r} (expected one of {', '.join(TASKS)})")
    splits = {name: pd.read_parquet(prepared / f"{name}.parquet", columns=["text", "label"]) for name in SPLITS}
    return splits, task, label_names


def targets(frame: pd.DataFrame, task: str, n_labels: int) -> np.ndarray:
    """Labels as an int array: (n,) for binary and multi-class, (n, n_labels) multi-hot for multi-label."""
    if task == "multilabel":
        if len(frame) == 0:
            return np.zeros((0, n_labels), dtype=int)
        y = np.stack([np.asarray(v, dtype=int).reshape(-1) for v in frame["label"]])
        if y.shape[1] != n_labels:
            raise ValueError(f"multi-hot labels have {y.shape[1]} entries, labels.json names {n_labels}")
        return y
    return frame["label"].to_numpy().astype(int)


def score(task: str, y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict[str, float]:
    """Test metrics from predicted labels, by the very function `rnnkit evaluate` uses
    (rnnkit.training.metrics.compute_metrics; it imports numpy only): the predictions go in as
    probabilities that decide the same labels (0/1, or one-hot for multi-class)."""
    from rnnkit.training.metrics import compute_metrics

    y_pred = np.asarray(y_pred)
    probs = np.eye(n_labels)[y_pred] if task == "multiclass" else y_pred.astype(float)
    return compute_metrics(task, probs, y_true)


# --- tf-idf + linear model ----------------------------------------------------------------------

LINEAR = ("svc", "logreg")


def _linear_model(task: str, linear: str, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    # Both liblinear, solved in the dual (fast when features outnumber texts, as with word bigrams;
    # the primal LogisticRegression took 3x longer on Reuters-90). Multi-class: one-vs-rest either way.
    if linear == "svc":
        model = LinearSVC(C=c, dual=True, max_iter=1000)
    elif linear == "logreg":
        model = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000)
    else:
        raise ValueError(f"unknown linear model {linear!r} (expected one of {', '.join(LINEAR)})")
    return OneVsRestClassifier(model) if task == "multilabel" else model


def _fit(task: str, linear: str, c: float, x, y):
    """The fitted model and whether liblinear warned that it did not converge."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # Multi-label: a label with no positive train example gets a constant "never" model.
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        model = _linear_model(task, linear, c).fit(x, y)
    return model, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def tfidf_linear(splits: dict[str, pd.DataFrame], task: str, label_names: list[str],
                 grid: tuple[float, ...] = C_GRID, linear: str = "svc") -> dict:
    """TF-IDF word 1-2 grams + a linear model (linear="svc": LinearSVC, squared hinge;
    "logreg": LogisticRegression), C chosen on val by the task's headline metric, refitted on
    train only, scored on test. Binary and multi-class: one model (multi-class: one-vs-rest
    inside liblinear, the class with the highest decision function); multi-label:
    OneVsRestClassifier, a label is predicted when its decision function is > 0 (for logreg:
    probability > 0.5).

    On the prepared IMDB sample, R8 and Reuters-90, LinearSVC scored as well as or better than
    LogisticRegression on val and test (Reuters-90 micro-F1 0.85 against 0.81 at C=30), and its
    best C lies inside the default grid, where LogisticRegression wanted C >= 30.

    Returns method, model, params (C, linear, min_df, n_features, decision, converged),
    val_metric, val_scores ({str(C): validation score}), metrics (test), fit_seconds (vectorizer
    and final fit), total_seconds (with the grid search and scoring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    started = time.perf_counter()
    n_labels = len(label_names)
    y = {name: targets(splits[name], task, n_labels) for name in SPLITS}
    texts = {name: splits[name]["text"].astype(str).tolist() for name in SPLITS}
    min_df = 1 if len(texts["train"]) < TINY_TRAIN else 2
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, lowercase=True)
    fit_started = time.perf_counter()
    x_train = vectorizer.fit_transform(texts["train"])
    vectorize_seconds = time.perf_counter() - fit_started
    x_val, x_test = vectorizer.transform(texts["val"]), vectorizer.transform(texts["test"])

    headline = HEADLINE[task]
    val_scores: dict[float, float] = {}
    for c in grid:
        model, _ = _fit(task, linear, c, x_train, y["train"])
        val_scores[c] = score(task, y["val"], model.predict(x_val), n_labels)[headline]
    best_c = max(grid, key=lambda c: val_scores[c])  # ties: the first in the grid's order

    fit_started = time.perf_counter()
    model, converged = _fit(task, linear, best_c, x_train, y["train"])
    fit_seconds = vectorize_seconds + time.perf_counter() - fit_started
    metrics = score(task, y["test"], model.predict(x_test), n_labels)
    decision = {"binary": "decision function > 0", "multiclass": "argmax of the one-vs-rest decision functions",
                "multilabel": "per label, decision function > 0"}[task]
    estimator = "LinearSVC(dual=True)" if linear == "svc" else "LogisticRegression(liblinear, dual=True)"
    return {
        "method": f"tfidf+{linear}",
        "model": (f"TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df={min_df}) + "
                  f"{'OneVsRestClassifier(' + estimator + ')' if task == 'multilabel' else estimator}"),
        "params": {"C": best_c, "linear": linear, "min_df": min_df, "n_features": int(x_train.shape[1]),
                   "decision": decision, "converged": converged},
        "val_metric": headline,
        "val_scores": {str(c): s for c, s in val_scores.items()},
        "metrics": metrics,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - started,
    }


# --- fastText --------------------------------------------------------------------------------

_PUNCTUATION = re.compile(r"([.!?,'/()])")


def fasttext_text(text: str) -> str:
    """One line, lower-cased, punctuation split off: the preprocessing of fastText's tutorial
    (sed -e "s/\\([.\\!?,'/()]\\)/ \\1 /g" | tr "[:upper:]" "[:lower:]")."""
    return " ".join(_PUNCTUATION.sub(r" \1 ", str(text).lower()).split())


def fasttext_labels(label_names: list[str]) -> list[str]:
    """`__label__NAME` for each label name, spaces (and other white space) replaced with '_'."""
    tokens = ["__label__" + "_".join(str(name).split()) for name in label_names]
    if len(set(tokens)) != len(tokens):
        raise ValueError("label names collide once spaces become '_': " + ", ".join(label_names))
    return tokens


def _write_fasttext_file(path: Path, texts: list[str], y: np.ndarray, task: str, tokens: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for text, label in zip(texts, y):
            if task == "multilabel":
                names = [tokens[i] for i in np.flatnonzero(label)]
                if not names:  # fastText skips lines without a label anyway
                    continue
            else:
                names = [tokens[int(label)]]
            handle.write(" ".join(names) + " " + text + "\n")


def _fasttext(splits: dict[str, pd.DataFrame], task: str, label_names: list[str], arguments: dict,
              autotune: bool) -> tuple[object, dict, float, float]:
    """Train on train (autotune: against val), predict test. Returns the model, test metrics,
    seconds of the `train_supervised` call and seconds in all."""
    import fasttext

    started = time.perf_counter()
    n_labels = len(label_names)
    tokens = fasttext_labels(label_names)
    index = {token: i for i, token in enumerate(tokens)}
    y = {name: targets(splits[name], task, n_labels) for name in SPLITS}
    texts = {name: [fasttext_text(t) for t in splits[name]["text"]] for name in SPLITS}
    with tempfile.TemporaryDirectory(prefix="rnnkit-fasttext-") as tmp:
        train_path, val_path = Path(tmp) / "train.txt", Path(tmp) / "val.txt"
        _write_fasttext_file(train_path, texts["train"], y["train"], task, tokens)
        if autotune:
            _write_fasttext_file(val_path, texts["val"], y["val"], task, tokens)
            arguments = {**arguments, "autotuneValidationFile": str(val_path)}
        fit_started = time.perf_counter()
        model = fasttext.train_supervised(input=str(train_path), **arguments)
        fit_seconds = time.perf_counter() - fit_started

    if task == "multilabel":
        predicted, _ = model.predict(texts["test"], k=-1, threshold=0.5)
        y_pred = np.zeros((len(predicted), n_labels), dtype=int)
        for row, labels in enumerate(predicted):
            for label in labels:
                if label in index:
                    y_pred[row, index[label]] = 1
    else:
        predicted, _ = model.predict(texts["test"], k=1)
        # An empty text gets no label back from fastText: count it as class 0 (wrong or right by chance).
        y_pred = np.array([index.get(labels[0], 0) if len(labels) else 0 for labels in predicted], dtype=int)
    metrics = score(task, y["test"], y_pred, n_labels)
    return model, metrics, fit_seconds, time.perf_counter() - started


def _fasttext_args(model) -> dict:
    """The arguments the model was trained with (autotune's choice, after autotune)."""
    chosen = {name: getattr(model, name) for name in ("epoch", "lr", "dim", "wordNgrams", "minn", "maxn", "bucket")
              if hasattr(model, name)}
    return {k: (round(float(v), 4) if isinstance(v, float) else int(v)) for k, v in chosen.items()}


def _fasttext_decision(task: str) -> str:
    return "k=-1, probability >= 0.5" if task == "multilabel" else "k=1"


def fasttext_autotune(splits: dict[str, pd.DataFrame], task: str, label_names: list[str], duration: int = 60,
                      threads: int = 2, word_ngrams: int | None = 2, bucket: int | None = None, verbose: int = 2,
                      seed: int = 0) -> dict:
    """fastText supervised, hyperparameters autotuned on val for `duration` seconds, scored on test.

    Autotune keeps every argument passed to `train_supervised` fixed ("Warning : wordNgrams is
    manually set to a specific value. It will not be automatically optimized.") and searches
    epoch, lr, dim, wordNgrams (1-5), minn/maxn, bucket and dsub otherwise, by random steps
    around the best trial so far, starting from fastText's defaults (epoch 5, lr 0.1, dim 100).
    word_ngrams=2 (default) therefore fixes word bigrams, the setting of fastText's
    classification results; word_ngrams=None leaves wordNgrams to autotune (it starts from 1
    and may try 1 to 5). The loss is fixed too: softmax for binary and multi-class, one-vs-all
    ("ova") for multi-label (an unset loss would be reset to softmax by autotune).

    bucket=None (default) leaves the number of n-gram hash buckets to autotune, which starts
    from fastText's 2,000,000 and tries up to 10,000,000: every trial then allocates and
    initialises a (words + buckets) x dim input matrix (800 MB at dim 100; trials with dim in
    the hundreds ask for several GB), seconds per trial however small the corpus. An int fixes
    it. Either way a short autotune on two cores tries only a handful of settings (one trial of
    epoch 87, dim 309 takes ~50 s on R8), and may keep the defaults, which underfit small
    corpora: `fasttext_recipe` is the fixed alternative.

    Autotune's objective is fastText's F1 on the validation file of its top
    `autotunePredictions` labels at threshold 0; that is accuracy for single-label tasks with
    the default of 1. For multi-label we keep 1 (F1 of the top label): -1 would predict every
    label at threshold 0 and tune for nothing. The test predictions are then k=-1 with
    threshold 0.5 (multi-label), k=1 otherwise. The final model is retrained on train (not
    train+val) with the best arguments inside `train_supervised`, after the `duration`.

    Returns method, model, params (the arguments autotune chose, and the fixed ones), metrics
    (test), fit_seconds (the `train_supervised` call: autotune and the final training),
    total_seconds."""
    fixed = {"loss": "ova" if task == "multilabel" else "softmax", "thread": threads, "seed": seed}
    if word_ngrams is not None:
        fixed["wordNgrams"] = word_ngrams
    if bucket is not None:
        fixed["bucket"] = bucket
    arguments = {**fixed, "autotuneDuration": int(duration), "autotuneMetric": "f1", "autotunePredictions": 1,
                 "verbose": verbose}
    model, metrics, fit_seconds, total_seconds = _fasttext(splits, task, label_names, arguments, autotune=True)
    return {
        "method": "fasttext-autotune",
        "model": (f"fasttext.train_supervised(autotuneDuration={int(duration)}, loss={fixed['loss']}"
                  + ("" if word_ngrams is None else f", wordNgrams={word_ngrams}")
                  + ("" if bucket is None else f", bucket={bucket}") + ")"),
        "params": {**_fasttext_args(model), "loss": fixed["loss"], "autotune_seconds": int(duration),
                   "threads": threads, "fixed": sorted(k for k in fixed if k not in ("thread", "seed")),
                   "decision": _fasttext_decision(task)},
        "metrics": metrics,
        "fit_seconds": fit_seconds,
        "total_seconds": total_seconds,
    }


def fasttext_recipe(splits: dict[str, pd.DataFrame], task: str, label_names: list[str], threads: int = 2,
                    epoch: int = 25, lr: float | None = None, dim: int = 50, word_ngrams: int = 2,
                    bucket: int = 200_000, verbose: int = 0, seed: int = 0) -> dict:
    """fastText supervised with the fixed settings its text-classification tutorial ends on
    (-lr 1.0 -epoch 25 -wordNgrams 2 -bucket 200000 -dim 50; -lr 0.5 -loss ova for multi-label),
    no validation split used: the few-second baseline a user copies from the tutorial. The
    tutorial's last single-label command also switches to -loss hs for speed; this keeps
    softmax (exact, and cheap with few labels). lr=None: 1.0 (softmax) or 0.5 (ova).
    Same test predictions and returned keys as `fasttext_autotune`."""
    loss = "ova" if task == "multilabel" else "softmax"
    lr = (0.5 if loss == "ova" else 1.0) if lr is None else lr
    params = {"epoch": epoch, "lr": lr, "dim": dim, "wordNgrams": word_ngrams, "bucket": bucket, "loss": loss}
    _, metrics, fit_seconds, total_seconds = _fasttext(
        splits, task, label_names, {**params, "thread": threads, "seed": seed, "verbose": verbose}, autotune=False)
    return {
        "method": "fasttext-recipe",
        "model": "fasttext.train_supervised(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")",
        "params": {**params, "threads": threads, "decision": _fasttext_decision(task)},
        "metrics": metrics,
        "fit_seconds": fit_seconds,
        "total_seconds": total_seconds,
    }


# --- script ----------------------------------------------------------------------------------

def describe(result: dict) -> str:
    params = result["params"]
    if result["method"].startswith("tfidf+"):
        return f"C={params['C']:g}, min_df={params['min_df']}, {params['n_features']:,} features"
    shown = ("epoch", "lr", "dim", "wordNgrams", "minn", "maxn", "bucket")
    text = ", ".join(f"{k}={params[k]}" for k in shown if k in params)
    return f"autotune {params['autotune_seconds']} s: {text}" if "autotune_seconds" in params else text


def table(results: list[dict], task: str) -> str:
    columns = SHOWN[task]
    rows = [(r["method"], describe(r), *(f"{r['metrics'][m]:.4f}" for m in columns), f"{r['fit_seconds']:.1f}",
             f"{r['total_seconds']:.1f}") for r in results]
    header = ("method", "params", *columns, "fit s", "total s")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) if i < 2 else str(cell).rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in [header, *rows]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--fasttext-seconds", type=int, default=60,
                        help="fastText autotune duration (0: no autotune run, only the recipe)")
    parser.add_argument("--no-fasttext", action="store_true", help="only the tf-idf baseline")
    parser.add_argument("--no-fasttext-recipe", action="store_true", help="no fastText tutorial-recipe run")
    parser.add_argument("--fasttext-tune-ngrams", action="store_true",
                        help="let autotune choose wordNgrams (1-5) instead of fixing word bigrams")
    parser.add_argument("--fasttext-bucket", type=int, default=None,
                        help="fix fastText's n-gram hash buckets (default: autotune searches it, from 2,000,000)")
    parser.add_argument("--grid", type=float, nargs="+", default=list(C_GRID), help="C values for tf-idf")
    parser.add_argument("--linear", choices=LINEAR, default="svc",
                        help="the tf-idf baseline's linear model: LinearSVC or LogisticRegression")
    parser.add_argument("--threads", type=int, default=2, help="fastText threads")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results here")
    args = parser.parse_args()

    splits, task, label_names = load_splits(args.artifacts)
    counts = ", ".join(f"{name} {len(splits[name]):,}" for name in SPLITS)
    print(f"{args.artifacts}: {task} task, {len(label_names)} labels; {counts}", flush=True)
    results = [tfidf_linear(splits, task, label_names, grid=tuple(args.grid), linear=args.linear)]
    print(f"{results[0]['method']}: validation {results[0]['val_metric']} by C: "
          + ", ".join(f"{c}: {s:.4f}" for c, s in results[0]["val_scores"].items()), flush=True)
    if not args.no_fasttext and not args.no_fasttext_recipe:
        results.append(fasttext_recipe(splits, task, label_names, threads=args.threads))
    if not args.no_fasttext and args.fasttext_seconds > 0:
        results.append(fasttext_autotune(splits, task, label_names, duration=args.fasttext_seconds,
                                         threads=args.threads,
                                         word_ngrams=None if args.fasttext_tune_ngrams else 2,
                                         bucket=args.fasttext_bucket))
    print()
    print(table(results, task))
    if args.json:
        out = {"artifacts": str(args.artifacts), "task": task, "label_names": label_names,
               "counts": {name: len(splits[name]) for name in SPLITS}, "results": results}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
