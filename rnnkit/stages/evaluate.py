"""`rnnkit evaluate`: a run's checkpoint on the test (or validation) split -> reports/.

    reports/<run>-<split>.json    every metric, the decision rule, per-label precision/recall/F1,
                                  the run's size and cost, the confusion matrix (binary,
                                  multi-class)
    reports/<run>-<split>.png     confusion matrix (binary, multi-class)
    reports/comparison-<split>.md every evaluated run that still exists, side by side (--compare)

Which run: --run, else training/checkpoints.py's rule (`resolve_run`: the run marked with
`rnnkit runs use`, else the best finished run on this dataset.pt); the result says why.
`run` checks that the checkpoint is the one the train stage recorded and that dataset.pt is
the one it was trained on, scores the split with the run's decision rule (its thresholds)
and records the report in the manifest. `load_run_split` is where `ablate-gates` starts too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json, write_text
from rnnkit.errors import RnnkitError
from rnnkit.options import check, option
from rnnkit.training import checkpoints
from rnnkit.training.checkpoints import RunOptions
from rnnkit.training.inference import InferenceOptions

SPLITS = ("test", "val")
CHECKPOINTS = ("best", "last")


@dataclass
class SplitOptions(RunOptions):
    """Which checkpoint of which run, scored on which split (`rnnkit evaluate`, `ablate-gates`)."""

    checkpoint: str = option("best", "best.pt (the best --monitor value) or last.pt (the last epoch).",
                             choices=CHECKPOINTS, panel="Run")
    split: str = option("test", "The split to score; val is what training chose best.pt on.", choices=SPLITS,
                        panel="Run")


@dataclass
class Options(InferenceOptions, SplitOptions):
    """Everything `rnnkit evaluate` takes."""

    compare: bool = option(False, "Also print every evaluated run side by side (and write it as Markdown).",
                           panel="Output")
    per_label: int = option(30, "Rows of the per-class / per-label table (most frequent first; 0: all).", low=0,
                            panel="Output")


@dataclass
class Comparison:
    """Every evaluated run on one split, best first: the table --compare prints and writes."""

    columns: list[str]
    rows: list[list[str]]
    path: Path  # reports/comparison-<split>.md


@dataclass
class Result:
    report: dict[str, Any]  # what reports/<run>-<split>.json holds
    why: str  # how the run was chosen: "--run", "marked current ...", "best finished run ..." (resolve_run)
    report_path: Path
    figure_path: Path | None  # the confusion matrix (binary, multi-class)
    comparison: Comparison | None  # --compare


@dataclass
class LoadedRun:
    """A run's checkpoint and model with one split of the dataset, lineage checked."""

    run: str
    why: str  # how the run was chosen (checkpoints.choose_run)
    checkpoint_path: Path
    checkpoint: dict[str, Any]
    model: Any
    device: Any
    x: Any  # (n, width) ids
    lengths: Any  # (n,)
    y: Any  # (n,) or (n, labels)
    manifest: Manifest
    dataset_hashes: dict[str, str]


def load_run_split(paths: ArtifactPaths, options: SplitOptions, *, device: str, require_model: str | None = None,
                   command: str = "evaluate") -> LoadedRun:
    """What `evaluate` and `ablate-gates` start from: the checkpoint, checked against the
    train stage's record, and the split, from a dataset.pt that is the one it was trained on.
    `require_model` refuses other model types before the dataset is loaded."""
    from rnnkit.text.dataset import load_dataset
    from rnnkit.training.device import resolve_device

    manifest = Manifest(paths)
    choice = checkpoints.choose_run(paths, options.run)
    run = choice.name
    checkpoint_path = paths.run_dir(run) / f"{options.checkpoint}.pt"
    manifest.verify([checkpoint_path], produced_by=f"train/{run}", rerun=f"rnnkit train --name {run} --force")
    ckpt = checkpoints.load(checkpoint_path)
    if require_model is not None and ckpt["model"] != require_model:
        raise RnnkitError(f"run {run!r} is a {ckpt['model']} model: {command} needs an {require_model} run — "
                          f"train one with `rnnkit train --model {require_model}`")
    hashes = manifest.verify([paths.dataset], produced_by="tokenize", rerun="rnnkit tokenize")
    if ckpt["dataset_sha256"] != hashes[paths.rel(paths.dataset)]:
        raise RnnkitError(
            f"run {run!r} was trained on another dataset.pt than the one in {paths.root}/ (it was re-tokenized "
            f"since) — train a new run on it with `rnnkit train`, or use a run trained after the last tokenize"
        )
    data = load_dataset(paths, manifest=manifest, check_lineage=False)
    dev = resolve_device(device)
    model = checkpoints.rebuild(ckpt).to(dev)
    split = options.split
    return LoadedRun(run, choice.why, checkpoint_path, ckpt, model, dev, data[f"X_{split}"],
                     data[f"lengths_{split}"], data[f"y_{split}"], manifest, hashes)


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Score the run's checkpoint on the split; write and record the report (and --compare's table)."""
    from rnnkit.plots import confusion_matrix
    from rnnkit.training import inference
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.loop import metrics_from_logits
    from rnnkit.training.metrics import MULTILABEL, decide, per_label_table, probabilities

    check(options)
    configure_cpu(options.threads)
    loaded = load_run_split(paths, options, device=options.device)
    name, ckpt, model, dev = loaded.run, loaded.checkpoint, loaded.model, loaded.device
    y, manifest, split = loaded.y, loaded.manifest, options.split
    logits = inference.predict_logits(model, loaded.x, loaded.lengths, device=dev, amp=options.amp,
                                      batch_size=options.batch_size or inference.default_batch_size(dev),
                                      workers=inference.resolve_workers(options.workers, dev))
    task, names = ckpt["task"], ckpt["label_names"]
    decision = checkpoints.decision_of(ckpt)
    metrics = metrics_from_logits(logits, y, task, decision=decision)
    probs = probabilities(logits, task).numpy()
    targets = y.numpy().astype(int)
    report: dict[str, Any] = {
        "run": name, "model": ckpt["model"], "checkpoint": options.checkpoint, "epoch": ckpt["epoch"],
        "split": split, "task": task, "examples": len(y), "label_names": names, "metrics": metrics,
        "decision": decision.to_dict(), "decision_text": decision.describe(task),
        # Precision, recall, F1, support (and threshold) per class or label, most frequent first.
        "per_label": per_label_table(task, probs, targets, names, decision),
        # What the comparison of runs (--compare) puts beside each score.
        **run_facts(paths.run_dir(name), model),
    }
    stem = paths.reports / f"{name}-{split}"
    outputs = [stem.with_suffix(".json")]
    figure = None
    if task != MULTILABEL:
        from sklearn.metrics import confusion_matrix as sk_confusion

        matrix = sk_confusion(targets.reshape(-1), decide(probs, task, decision), labels=list(range(len(names))))
        report["confusion_matrix"] = matrix.tolist()
        figure = stem.with_suffix(".png")
        confusion_matrix(matrix, names, figure, title=f"{name} on {split} (acc {metrics['accuracy']:.4f})")
        outputs.append(figure)
    write_json(outputs[0], report)
    manifest.record(f"evaluate/{name}/{split}",
                    params={"run": name, "split": split, "checkpoint": options.checkpoint, "amp": options.amp},
                    input_hashes={**loaded.dataset_hashes, **manifest.hashes([loaded.checkpoint_path])},
                    outputs=outputs)
    comparison = compare(paths, split, list(metrics)) if options.compare else None
    return Result(report, loaded.why, outputs[0], figure, comparison)


def run_facts(run_dir: Path, model) -> dict[str, Any]:
    """Size and cost of a run: parameters (with and without the embedding, which may have been
    frozen) and the median training seconds per epoch from its metrics.jsonl (absent: None).
    The median, not the mean: one epoch slowed by another job should not set the figure."""
    import json
    import statistics

    from rnnkit.models.sizing import count_parameters

    total, without_embedding = count_parameters(model)
    seconds = None
    try:
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
        times = [e["train_seconds"] for e in epochs if "train_seconds" in e]
        seconds = round(statistics.median(times), 2) if times else None
    except (OSError, ValueError):
        pass
    return {"parameters": total, "parameters_without_embedding": without_embedding, "seconds_per_epoch": seconds}


def compare(paths: ArtifactPaths, split: str, keys: list[str]) -> Comparison:
    """The saved report on `split` of every run that still exists (`rnnkit runs rm` deletes
    reports, but a run folder may also be deleted by hand), best first by the headline metric
    (the second of `keys`: accuracy, or the first F1 for multi-label), written to
    reports/comparison-<split>.md."""
    headline = keys[1]
    columns = ["run", "model", "epoch", *keys, "params", "params w/o emb.", "s/epoch"]
    existing = set(checkpoints.run_names(paths))
    reports = [r for r in saved_reports(paths, split) if r.get("run") in existing]
    rows = []
    for r in sorted(reports, key=lambda r: r["metrics"].get(headline, 0), reverse=True):
        rows.append([r["run"], r["model"], "" if r.get("epoch") is None else str(r["epoch"]),
                     *(f"{r['metrics'].get(k, float('nan')):.4f}" for k in keys),
                     _count(r.get("parameters")), _count(r.get("parameters_without_embedding")),
                     "" if r.get("seconds_per_epoch") is None else f"{r['seconds_per_epoch']:.1f}"])
    # The same table as Markdown, ready for a write-up or BENCHMARKS.md.
    path = paths.reports / f"comparison-{split}.md"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    write_text(path, "\n".join(lines) + "\n")
    return Comparison(columns, rows, path)


def saved_reports(paths: ArtifactPaths, split: str) -> list[dict]:
    """Every report in reports/ on `split` (not the ablation reports, which are on it too)."""
    import json

    reports = []
    for path in sorted(Path(paths.reports).glob(f"*-{split}.json")):
        try:
            report = json.loads(path.read_text())
        except ValueError:
            continue
        if report.get("split") == split and "metrics" in report:
            reports.append(report)
    return reports


def _count(n) -> str:
    return "" if n is None else f"{n:,}"
