"""Checkpoints: everything needed to rebuild a model and predict, as plain data + tensors.

    checkpoints/<run>/best.pt        model at the best --monitor value
    checkpoints/<run>/last.pt        model after the last epoch
    checkpoints/<run>/metrics.jsonl  one line per epoch
    checkpoints/<run>/curves.png     loss and the headline metric per epoch, train and val

A model checkpoint holds: format version, model name, config (plain dict), state_dict,
task, label names, the tokenizer (its JSON text, so predict needs nothing else, plus the
sha256 of the tokenizer.json it came from), the sha256 of the dataset.pt it was trained
on, where pretrained embeddings came from (`--embeddings`; None without) and the decision
rule (per-label thresholds for multi-label runs). All of it
loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import (
    CHECKPOINT_FORMAT,
    ArtifactPaths,
    Manifest,
    check_format,
    torch_load,
    torch_save,
)
from rnnkit.errors import RnnkitError
from rnnkit.options import option

TRAIN_FIX = "run `rnnkit train` first"


@dataclass
class RunOptions:
    """Which trained run a command reads (`rnnkit evaluate`, `ablate-gates`, `predict`)."""

    run: str | None = option(None, "Run name. Default: the latest run.")


def model_payload(model, *, name: str, config, task: str, label_names: list[str],
                  tokenizer_json: str, tokenizer_sha256: str, dataset_sha256: str,
                  epoch: int, metrics: dict[str, float], embeddings: dict[str, Any] | None = None,
                  decision=None) -> dict[str, Any]:
    state = model.state_dict()
    # torch.compile wraps a model; its state_dict keys gain a prefix that a plain model lacks.
    state = {k.removeprefix("_orig_mod."): v.detach().cpu() for k, v in state.items()}
    return {
        "format_version": CHECKPOINT_FORMAT,
        "model": name,
        "config": config.to_dict(),
        "state_dict": state,
        "task": task,
        "label_names": list(label_names),
        "tokenizer_json": tokenizer_json,
        "tokenizer_sha256": tokenizer_sha256,
        "dataset_sha256": dataset_sha256,
        "epoch": epoch,
        "metrics": dict(metrics),
        # Where the initial embedding came from (path, sha256, rows, scale factor, frozen
        # epochs), or None; the weights themselves are in state_dict, so predict needs nothing.
        "embeddings": embeddings,
        # How probabilities become labels (training.metrics.Decision): multi-label runs keep
        # the per-label thresholds fitted on validation at this epoch; None: 0.5.
        "decision": decision.to_dict() if decision is not None else None,
    }


def save(path: Path, payload: dict[str, Any]) -> None:
    torch_save(path, payload)


def load(path: Path) -> dict[str, Any]:
    fix = "train the run again with `rnnkit train --force`"
    data = torch_load(path, what="checkpoint", fix=TRAIN_FIX if not Path(path).exists() else fix)
    if not isinstance(data, dict):
        raise RnnkitError(f"{path} is not an rnnkit checkpoint — {fix}")
    check_format(data.get("format_version"), CHECKPOINT_FORMAT, path, fix)
    return data


def rebuild(checkpoint: dict[str, Any]):
    """The model of a checkpoint, with its weights, in eval mode."""
    from rnnkit.models import ModelConfig, build_model

    model = build_model(checkpoint["model"], ModelConfig.from_dict(checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def decision_of(checkpoint: dict[str, Any]):
    """The checkpoint's decision rule (thresholds); 0.5 for checkpoints written before there was one."""
    from rnnkit.training.metrics import Decision, num_outputs

    return Decision.from_dict(checkpoint.get("decision"), num_outputs(checkpoint["task"], checkpoint["label_names"]))


def tokenizer_of(checkpoint: dict[str, Any]):
    from rnnkit.text.base import Tokenizer

    return Tokenizer.from_json_text(checkpoint["tokenizer_json"])


def run_names(paths: ArtifactPaths) -> list[str]:
    """Finished runs, oldest first (by the time their `train` record was written)."""
    manifest = Manifest(paths)
    runs = []
    for key, entry in manifest.stages.items():
        if key.startswith("train/") and (paths.run_dir(key[6:]) / "best.pt").exists():
            runs.append((entry.get("time", ""), key[6:]))
    return [name for _, name in sorted(runs)]


def resolve_run(paths: ArtifactPaths, name: str | None) -> str:
    """The named run, or the latest one."""
    runs = run_names(paths)
    if name is None:
        if not runs:
            raise RnnkitError(f"no trained run in {paths.checkpoints}/ — {TRAIN_FIX}")
        return runs[-1]
    if name not in runs:
        known = ", ".join(runs[-8:]) or "none"
        raise RnnkitError(f"no run named {name!r} in {paths.checkpoints}/ (runs: {known}) — pass --run NAME")
    return name

