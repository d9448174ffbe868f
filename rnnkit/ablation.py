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

from rnnkit.artifacts import ArtifactPaths, write_json

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
    from rnnkit.training import checkpoints
    from rnnkit.training.evaluate import load_run_split
    from rnnkit.training.metrics import headline
    from rnnkit.training.inference import predict_logits
    from rnnkit.training.loop import metrics_from_logits

    loaded = load_run_split(paths, run=run, split=split, which=which, device=device, require_model=MODEL,
                            command="ablate-gates")
    run, ckpt, model, dev = loaded.run, loaded.checkpoint, loaded.model, loaded.device
    x, lengths, y = loaded.x, loaded.lengths, loaded.y
    manifest, hashes, checkpoint_path = loaded.manifest, loaded.dataset_hashes, loaded.checkpoint_path
    metric = headline(ckpt["task"])
    decision = checkpoints.decision_of(ckpt)  # the run's thresholds, as evaluate decides

    rows: list[dict[str, Any]] = []
    for name, gates in VARIANTS:
        model.rnn.open_gates = gates
        logits = predict_logits(model, x, lengths, batch_size=batch_size, device=dev)
        metrics = metrics_from_logits(logits, y, ckpt["task"], decision=decision)
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
