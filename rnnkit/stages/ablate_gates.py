"""`rnnkit ablate-gates`: an `lstm-scratch` run with each LSTM gate forced open -> reports/.

The run's checkpoint is evaluated intact and then with one gate forced fully open (its
output replaced by 1 in every layer and direction; see ScratchLSTM.open_gates):

    forget open   f = 1: the cell never forgets, c_t = c_{t-1} + i * g
    input open    i = 1: every candidate is written in full, c_t = f * c_{t-1} + g
    output open   o = 1: the whole cell is exposed, h_t = tanh(c_t)

    reports/<run>-ablate-<split>.json    the table: each variant's metrics and change

The change is against the intact model on the same split, so a large drop in the headline
metric (accuracy, or micro-F1 for multi-label) means the trained model relies on the gate.
The run and split are loaded as `evaluate` loads them (stages/evaluate.py), and decided with
the run's thresholds as evaluate decides, so the intact row is evaluate's report. The report
is recorded in the manifest as ablate/<run>/<split>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, write_json
from rnnkit.options import check
from rnnkit.stages.evaluate import SplitOptions, load_run_split
from rnnkit.training.device import DeviceOptions

MODEL = "lstm-scratch"
# (variant name, gates forced open); the intact model first: the others are compared to it.
VARIANTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("intact", frozenset()),
    ("forget open (f=1)", frozenset("f")),
    ("input open (i=1)", frozenset("i")),
    ("output open (o=1)", frozenset("o")),
)
# Texts per batch. The forced-open recurrence is a Python loop over time steps, so large
# batches keep its per-step overhead small.
BATCH_SIZE = 256


@dataclass
class Options(DeviceOptions, SplitOptions):
    """Everything `rnnkit ablate-gates` takes: which lstm-scratch run, on which split, where."""


@dataclass
class Result:
    report: dict[str, Any]  # what reports/<run>-ablate-<split>.json holds
    report_path: Path


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Evaluate the run's checkpoint intact and with each gate forced open; write and record the report."""
    from rnnkit.training import checkpoints
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.inference import predict_logits
    from rnnkit.training.loop import metrics_from_logits
    from rnnkit.training.metrics import headline

    check(options)
    configure_cpu(options.threads)
    loaded = load_run_split(paths, options, device=options.device, require_model=MODEL, command="ablate-gates")
    name, ckpt, model, y = loaded.run, loaded.checkpoint, loaded.model, loaded.y
    metric = headline(ckpt["task"])
    decision = checkpoints.decision_of(ckpt)  # the run's thresholds, as evaluate decides

    rows: list[dict[str, Any]] = []
    for variant, gates in VARIANTS:
        model.rnn.open_gates = gates
        logits = predict_logits(model, loaded.x, loaded.lengths, batch_size=BATCH_SIZE, device=loaded.device)
        metrics = metrics_from_logits(logits, y, ckpt["task"], decision=decision)
        rows.append({"variant": variant, "open_gates": sorted(gates), metric: metrics[metric],
                     "loss": metrics["loss"], "metrics": metrics})
    model.rnn.open_gates = frozenset()
    intact = rows[0]
    for row in rows:
        row[f"delta_{metric}"] = row[metric] - intact[metric]
        row["delta_loss"] = row["loss"] - intact["loss"]

    report: dict[str, Any] = {
        "run": name, "model": ckpt["model"], "checkpoint": options.checkpoint, "epoch": ckpt["epoch"],
        "split": options.split, "task": ckpt["task"], "examples": len(y), "metric": metric, "variants": rows,
    }
    out = paths.reports / f"{name}-ablate-{options.split}.json"
    write_json(out, report)
    manifest = loaded.manifest
    manifest.record(f"ablate/{name}/{options.split}",
                    params={"run": name, "split": options.split, "checkpoint": options.checkpoint},
                    input_hashes={**loaded.dataset_hashes, **manifest.hashes([loaded.checkpoint_path])},
                    outputs=[out])
    return Result(report, out)
