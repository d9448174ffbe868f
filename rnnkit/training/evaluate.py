"""The `evaluate` stage: a run's checkpoint on the test (or validation) split -> a report.

    reports/<run>-<split>.json    every metric, the decision rule, per-label precision/recall/F1,
                                  the confusion matrix (binary, multi-class)
    reports/<run>-<split>.png     confusion matrix (binary, multi-class)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json
from rnnkit.errors import RnnkitError
from rnnkit.training import checkpoints

SPLIT_CHOICES = ("test", "val")


@dataclass
class LoadedRun:
    """A run's checkpoint and model with one split of the dataset, lineage checked."""

    run: str
    checkpoint_path: Path
    checkpoint: dict[str, Any]
    model: Any
    device: Any
    x: Any  # (n, width) ids
    lengths: Any  # (n,)
    y: Any  # (n,) or (n, labels)
    manifest: Manifest
    dataset_hashes: dict[str, str]


def load_run_split(paths: ArtifactPaths, *, run: str | None, split: str, which: str, device: str,
                   require_model: str | None = None, command: str = "evaluate") -> LoadedRun:
    """What `evaluate` and `ablate-gates` start from: the checkpoint, checked against the
    train stage's record, and the split, from a dataset.pt that is the one it was trained on.
    `require_model` refuses other model types before the dataset is loaded."""
    from rnnkit.text.dataset import load_dataset
    from rnnkit.training.device import resolve_device

    if split not in SPLIT_CHOICES:
        raise RnnkitError(f"--split {split!r} — use test or val")
    if which not in ("best", "last"):
        raise RnnkitError(f"--checkpoint {which!r} — use best or last")
    manifest = Manifest(paths)
    run = checkpoints.resolve_run(paths, run)
    checkpoint_path = paths.run_dir(run) / f"{which}.pt"
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
    return LoadedRun(run, checkpoint_path, ckpt, model, dev, data[f"X_{split}"], data[f"lengths_{split}"],
                     data[f"y_{split}"], manifest, hashes)


def evaluate(paths: ArtifactPaths, *, run: str | None = None, split: str = "test",
             which: str = "best", device: str = "auto", batch_size: int | None = None,
             amp: bool = False, workers: int | None = None) -> dict[str, Any]:
    """`batch_size` None: 32 on the CPU, 256 on CUDA; `workers` None: one per torch CPU thread
    on the CPU, 1 on CUDA (training/inference.py)."""
    from rnnkit.plots import confusion_matrix
    from rnnkit.training import inference
    from rnnkit.training.metrics import MULTILABEL, decide, per_label_table, probabilities
    from rnnkit.training.inference import predict_logits
    from rnnkit.training.loop import metrics_from_logits

    loaded = load_run_split(paths, run=run, split=split, which=which, device=device)
    run, ckpt, model, dev = loaded.run, loaded.checkpoint, loaded.model, loaded.device
    x, lengths, y = loaded.x, loaded.lengths, loaded.y
    manifest, hashes, checkpoint_path = loaded.manifest, loaded.dataset_hashes, loaded.checkpoint_path
    batch_size = batch_size or inference.default_batch_size(dev)
    if batch_size < 1:
        raise RnnkitError(f"--batch-size {batch_size} must be at least 1")
    logits = predict_logits(model, x, lengths, batch_size=batch_size, device=dev, amp=amp,
                            workers=inference.resolve_workers(workers, dev))
    task, names = ckpt["task"], ckpt["label_names"]
    decision = checkpoints.decision_of(ckpt)
    metrics = metrics_from_logits(logits, y, task, decision=decision)
    probs = probabilities(logits, task).numpy()
    targets = y.numpy().astype(int)
    report: dict[str, Any] = {
        "run": run, "model": ckpt["model"], "checkpoint": which, "epoch": ckpt["epoch"], "split": split,
        "task": task, "examples": len(y), "label_names": names, "metrics": metrics,
        "decision": decision.to_dict(), "decision_text": decision.describe(task),
        # Precision, recall, F1, support (and threshold) per class or label, most frequent first.
        "per_label": per_label_table(task, probs, targets, names, decision),
        # What the notebooks' comparison of experiments puts beside each score.
        **run_facts(paths.run_dir(run), model),
    }
    stem = paths.reports / f"{run}-{split}"
    outputs = [stem.with_suffix(".json")]
    if task != MULTILABEL:
        from sklearn.metrics import confusion_matrix as sk_confusion

        matrix = sk_confusion(targets.reshape(-1), decide(probs, task, decision), labels=list(range(len(names))))
        report["confusion_matrix"] = matrix.tolist()
        confusion_matrix(matrix, names, stem.with_suffix(".png"),
                         title=f"{run} on {split} (acc {metrics['accuracy']:.4f})")
        outputs.append(stem.with_suffix(".png"))
    write_json(outputs[0], report)
    manifest.record(f"evaluate/{run}/{split}", params={"run": run, "split": split, "checkpoint": which, "amp": amp},
                    input_hashes={**hashes, **manifest.hashes([checkpoint_path])}, outputs=outputs)
    report["report_path"] = str(outputs[0])
    return report


def run_facts(run_dir: Path, model) -> dict[str, Any]:
    """Size and cost of a run: parameters (with and without the embedding, which may have been
    frozen) and the median training seconds per epoch from its metrics.jsonl (absent: None).
    The median, not the mean: one epoch slowed by another job should not set the figure."""
    import json
    import statistics

    total = sum(p.numel() for p in model.parameters())
    embedding = getattr(model, "embedding", None)
    in_embedding = sum(p.numel() for p in embedding.parameters()) if embedding is not None else 0
    seconds = None
    try:
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
        times = [e["train_seconds"] for e in epochs if "train_seconds" in e]
        seconds = round(statistics.median(times), 2) if times else None
    except (OSError, ValueError):
        pass
    return {"parameters": total, "parameters_without_embedding": total - in_embedding,
            "seconds_per_epoch": seconds}


def all_reports(paths: ArtifactPaths, split: str = "test") -> list[dict]:
    """Every saved report for `split`, for the comparison table."""
    import json

    reports = []
    for path in sorted(Path(paths.reports).glob(f"*-{split}.json")):
        try:
            report = json.loads(path.read_text())
        except ValueError:
            continue
        if report.get("split") == split:
            reports.append(report)
    return reports
