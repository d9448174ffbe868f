"""Gate ablation of an `lstm-scratch` run: how much does each LSTM gate matter?

The run's checkpoint is evaluated intact and then with one gate forced fully open (its
output replaced by 1 in every layer and direction; see ScratchLSTM.open_gates):

    forget open   f = 1: the cell never forgets, c_t = c_{t-1} + i * g
    input open    i = 1: every candidate is written in full, c_t = f * c_{t-1} + g
    output open   o = 1: the whole cell is exposed, h_t = tanh(c_t)

    reports/<run>-ablate-<split>.json    the table: each variant's metrics and change

The change is against the intact model on the same split, so a large drop in the headline
metric (accuracy, or micro-F1 for multi-label) means the trained model relies on the gate.
"""

from __future__ import annotations

from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, write_json
from rnnkit.errors import RnnkitError
from rnnkit.training import checkpoints

MODEL = "lstm-scratch"
# (variant name, gates forced open); the intact model first: the others are compared to it.
VARIANTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("intact", frozenset()),
    ("forget open (f=1)", frozenset("f")),
    ("input open (i=1)", frozenset("i")),
    ("output open (o=1)", frozenset("o")),
)


def ablate_gates(paths: ArtifactPaths, run: str | None = None, split: str = "test", which: str = "best",
                 device: str = "auto", batch_size: int = 256) -> dict[str, Any]:
    """Evaluate a run's checkpoint intact and with each gate forced open; write the report.

    Returns the report (also written to reports/<run>-ablate-<split>.json and recorded in
    the manifest as ablate/<run>/<split>) with `report_path` added.
    """
    from rnnkit.text.dataset import load_dataset
    from rnnkit.training.evaluate import SPLIT_CHOICES
    from rnnkit.training.metrics import headline
    from rnnkit.training.trainer import metrics_from_logits, predict_logits, resolve_device

    if split not in SPLIT_CHOICES:
        raise RnnkitError(f"--split {split!r} — use test or val")
    if which not in ("best", "last"):
        raise RnnkitError(f"--checkpoint {which!r} — use best or last")
    manifest = Manifest(paths)
    run = checkpoints.resolve_run(paths, run)
    checkpoint_path = paths.run_dir(run) / f"{which}.pt"
    manifest.verify([checkpoint_path], produced_by=f"train/{run}", rerun=f"rnnkit train --name {run} --force")
    ckpt = checkpoints.load(checkpoint_path)
    # Checked before anything heavier: only the scratch LSTM's gates can be forced.
    if ckpt["model"] != MODEL:
        raise RnnkitError(
            f"run {run!r} is a {ckpt['model']} model: ablate-gates needs an {MODEL} run — "
            f"train one with `rnnkit train --model {MODEL}`"
        )
    hashes = manifest.verify([paths.dataset], produced_by="tokenize", rerun="rnnkit tokenize")
    if ckpt["dataset_sha256"] != hashes[paths.rel(paths.dataset)]:
        raise RnnkitError(
            f"run {run!r} was trained on another dataset.pt than the one in {paths.root}/ (it was re-tokenized "
            f"since) — train a new run on it with `rnnkit train --model {MODEL}`"
        )
    data = load_dataset(paths, manifest=manifest, check_lineage=False)
    dev = resolve_device(device)
    model = checkpoints.rebuild(ckpt).to(dev)
    x, lengths, y = data[f"X_{split}"], data[f"lengths_{split}"], data[f"y_{split}"]
    metric = headline(ckpt["task"])

    rows: list[dict[str, Any]] = []
    for name, gates in VARIANTS:
        model.rnn.open_gates = gates
        logits = predict_logits(model, x, lengths, batch_size=batch_size, device=dev)
        metrics = metrics_from_logits(logits, y, ckpt["task"])
        rows.append({"variant": name, "open_gates": sorted(gates), metric: metrics[metric],
                     "loss": metrics["loss"], "metrics": metrics})
    model.rnn.open_gates = frozenset()
    intact = rows[0]
    for row in rows:
        row[f"delta_{metric}"] = row[metric] - intact[metric]
        row["delta_loss"] = row["loss"] - intact["loss"]

    report: dict[str, Any] = {
        "run": run, "model": ckpt["model"], "checkpoint": which, "epoch": ckpt["epoch"], "split": split,
        "task": ckpt["task"], "examples": len(y), "metric": metric, "variants": rows,
    }
    out = paths.reports / f"{run}-ablate-{split}.json"
    write_json(out, report)
    manifest.record(f"ablate/{run}/{split}", params={"run": run, "split": split, "checkpoint": which},
                    input_hashes={**hashes, **manifest.hashes([checkpoint_path])}, outputs=[out])
    report["report_path"] = str(out)
    return report
