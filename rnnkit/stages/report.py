"""`rnnkit report`: a run -> reports/<run>.html, one self-contained page about it.

    reports/<run>.html   settings, data, training curves, test metrics with the confusion
                         matrix (binary, multi-class) or the per-label table (multi-label), ROC
                         and precision-recall curves, calibration, the most confident mistakes
                         on the test split, the other runs, and the study for a tuned-<study> run

Which run: --run, else training/checkpoints.py's rule (as `evaluate`); --all: every finished
run (those trained on another dataset.pt than the one here are skipped, and named).

`run` starts where `evaluate` starts (stages/evaluate.py `load_run_split`: the checkpoint and
dataset.pt checked against their lineage), predicts the test split the same way
(training.inference, the run's decision rule) and scores it with training/metrics.py. It adds
what the page needs beside that: the splits (dataset.pt for sizes, labels and token lengths;
prepared/ for the texts and their words), config.json and metrics.jsonl, the other runs
(config.json, and evaluate's saved reports) and, for a run that `rnnkit tune` trained, the
study's summary and trials. rnnkit/report/ turns that into the page; figures are embedded as
data URIs, so the HTML file is all there is. The write is atomic and recorded in the manifest
under report/<run>.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths
from rnnkit.errors import RnnkitError
from rnnkit.options import check, option
from rnnkit.training import checkpoints
from rnnkit.training.checkpoints import RunOptions
from rnnkit.training.inference import InferenceOptions

CHECKPOINTS = ("best", "last")


@dataclass
class Options(InferenceOptions, RunOptions):
    """Everything `rnnkit report` takes."""

    all_runs: bool = option(False, "A report for every finished run (runs trained on another dataset.pt are "
                            "skipped, and named).", flags=("--all",), panel="Run")
    checkpoint: str = option("best", "best.pt (the best --monitor value) or last.pt (the last epoch).",
                             choices=CHECKPOINTS, panel="Run")
    mistakes: int = option(10, "The most confident mistakes on the test split to show (0: none).", low=0,
                           high=500, panel="Output")
    explain: bool = option(True, "Colour the words of the first 5 mistakes by their integrated-gradients "
                           "attributions (`rnnkit explain`); --no-explain is faster.", panel="Output")


@dataclass
class Written:
    """One report written."""

    run: str
    why: str  # how the run was chosen ("--run", "--all", the default rule's reason)
    path: Path  # reports/<run>.html
    sections: list[str]  # the page's section anchors, in order
    notes: list[str] = field(default_factory=list)


@dataclass
class Result:
    reports: list[Written]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run, why) under --all


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Write the report of the chosen run (or, with --all, of every finished run)."""
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.run_config import FINISHED, check_run_name

    check(options)
    if options.all_runs and options.run is not None:
        raise RnnkitError(f"--all and --run {options.run}: give one of them — --all writes a report for every "
                          f"finished run")
    if options.run is not None:
        check_run_name(options.run, "--run")
    configure_cpu(options.threads)
    if not options.all_runs:
        choice = checkpoints.choose_run(paths, options.run)
        return Result([write_report(paths, choice.name, choice.why, options)])
    runs = [r for r in checkpoints.list_runs(paths) if r.has_checkpoint and r.status == FINISHED]
    if not runs:
        raise RnnkitError(f"no finished run in {paths.checkpoints}/ — {checkpoints.TRAIN_FIX}")
    result = Result([])
    for info in runs:
        try:
            result.reports.append(write_report(paths, info.name, "--all", options))
        except RnnkitError as exc:  # another dataset.pt, a damaged checkpoint: the others still get theirs
            result.skipped.append((info.name, str(exc)))
    if not result.reports:
        shown = "; ".join(f"{name}: {why}" for name, why in result.skipped[:3])
        raise RnnkitError(f"no report written — every finished run was skipped ({shown})")
    return result


def write_report(paths: ArtifactPaths, name: str, why: str, options: Options) -> Written:
    """Predict the run's test split, gather the page's data, write reports/<name>.html and record it."""
    import tempfile

    import numpy as np

    from rnnkit.artifacts import write_text
    from rnnkit.report.sections import Inputs, build
    from rnnkit.stages.evaluate import SplitOptions, load_run_split, run_facts, saved_reports
    from rnnkit.training import inference
    from rnnkit.training.loop import metrics_from_logits
    from rnnkit.training.metrics import per_label_table, probabilities

    loaded = load_run_split(paths, SplitOptions(run=name, checkpoint=options.checkpoint, split="test"),
                            device=options.device, command="report")
    ckpt, model, dev, manifest = loaded.checkpoint, loaded.model, loaded.device, loaded.manifest
    logits = inference.predict_logits(model, loaded.x, loaded.lengths, device=dev, amp=options.amp,
                                      batch_size=options.batch_size or inference.default_batch_size(dev),
                                      workers=inference.resolve_workers(options.workers, dev))
    task, names = ckpt["task"], list(ckpt["label_names"])
    decision = checkpoints.decision_of(ckpt)
    metrics = metrics_from_logits(logits, loaded.y, task, decision=decision)
    probs = probabilities(logits, task).numpy().astype(np.float64)
    targets = loaded.y.numpy().astype(int)
    if task != "multilabel":
        targets = targets.reshape(-1)
    run_dir = paths.run_dir(name)
    config, notes = _config(run_dir)
    tokenizer = checkpoints.tokenizer_of(ckpt, loaded.checkpoint_path)
    splits, text_of, decoded, data_notes, prepared_hashes = _data(paths, loaded, tokenizer, names, task)
    study, trials, trials_note = _study(paths, name)
    inputs = Inputs(
        run=name, why=why, checkpoint_name=options.checkpoint,
        checkpoint={k: v for k, v in ckpt.items() if k not in ("state_dict", "tokenizer_json")},
        config=config, history=_history(run_dir), facts=run_facts(run_dir, model), device=str(dev), task=task,
        label_names=names, decision=decision, metrics=metrics, probs=probs, targets=targets,
        per_label=per_label_table(task, probs, targets, names, decision), splits=splits,
        max_length=tokenizer.max_length, text_of=text_of, texts_decoded=decoded, runs=checkpoints.list_runs(paths),
        saved_reports=saved_reports(paths, "test"), dataset_sha256=ckpt.get("dataset_sha256", ""), study=study,
        trials=trials, trials_note=trials_note, data_notes=data_notes, mistakes_shown=options.mistakes)
    paths.reports.mkdir(parents=True, exist_ok=True)
    # The figures are drawn into a scratch folder beside the report and embedded; it goes at the end.
    with tempfile.TemporaryDirectory(prefix=".report-", dir=paths.reports) as scratch:
        page, sections = build(inputs, Path(scratch), checkpoint_path=loaded.checkpoint_path,
                               explain=options.explain)
    target = paths.reports / f"{name}.html"
    write_text(target, page)
    manifest.record(f"report/{name}",
                    params={"run": name, "checkpoint": options.checkpoint, "split": "test", "amp": options.amp,
                            "mistakes": options.mistakes, "explain": options.explain},
                    input_hashes={**loaded.dataset_hashes, **prepared_hashes,
                                  **manifest.hashes([loaded.checkpoint_path])},
                    outputs=[target])
    return Written(name, why, target, sections, notes)


def _config(run_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    from rnnkit.training.run_config import read_config

    try:
        return read_config(run_dir), []
    except RnnkitError as exc:  # a damaged config.json costs the settings table, not the report
        return None, [str(exc)]


def _history(run_dir: Path) -> list[dict]:
    """metrics.jsonl: one dict per epoch (a torn last line, from a kill, is left out)."""
    import json

    out = []
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "epoch" in entry:
            out.append(entry)
    return out


def _data(paths: ArtifactPaths, loaded, tokenizer, names: list[str], task: str):
    """(splits, text_of, texts decoded?, notes, prepared/'s hashes): sizes, label counts and token
    lengths from dataset.pt (what the model read), words and texts from prepared/ when it holds
    the splits dataset.pt was made from; otherwise the texts are decoded from the ids."""
    import numpy as np

    from rnnkit.data.prepared import load_prepared
    from rnnkit.report.sections import Split
    from rnnkit.text.dataset import load_dataset

    data = load_dataset(paths, manifest=loaded.manifest, check_lineage=False)  # load_run_split checked it
    notes: list[str] = []
    try:
        frames, _, prepared_hashes = load_prepared(paths, loaded.manifest)
    except RnnkitError as exc:
        frames, prepared_hashes = None, {}
        notes.append(f"prepared/ could not be read ({exc}): words per text are not shown")
    if frames is not None and any(len(frames[s]) != len(data[f"y_{s}"]) for s in ("train", "val", "test")):
        frames, prepared_hashes = None, {}
        notes.append("prepared/ does not hold the splits dataset.pt was made from: words per text are not shown")
    splits = []
    for s in ("train", "val", "test"):
        y = data[f"y_{s}"].numpy()
        if task == "multilabel":
            counts = y.sum(axis=0).astype(int)
        else:
            counts = np.bincount(y.reshape(-1).astype(int), minlength=len(names))
        words = None
        if frames is not None:
            words = [len(str(t).split()) for t in frames[s]["text"]]
        splits.append(Split(s, len(y), {n: int(c) for n, c in zip(names, counts)}, words,
                            data[f"lengths_{s}"].tolist()))
    del data
    if frames is not None:
        texts = frames["test"]["text"]
        return splits, lambda i: str(texts.iloc[i]), False, notes, prepared_hashes
    x, lengths = loaded.x, loaded.lengths
    return (splits, lambda i: tokenizer.decode(x[i, : int(lengths[i])].tolist()), True, notes, prepared_hashes)


def _study(paths: ArtifactPaths, name: str):
    """(best_params.json, trials, note) of the study behind a tuned-<study> run; (None, None, "")
    for other runs. The trials are read from the study's journal file; a study in a database is
    summarised from best_params.json alone (its URL is stored without the password)."""
    import json

    if not name.startswith("tuned-"):
        return None, None, ""
    study = name.removeprefix("tuned-")
    summary_path = paths.tune / study / "best_params.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None, ""
    if not isinstance(summary, dict) or summary.get("final_run") != name:
        return None, None, ""
    from rnnkit.tuning.storage import journal_path

    label = str(summary.get("storage") or "")
    journal = journal_path(paths, study)
    storage = None if journal.exists() else (label if label and "://" not in label and Path(label).exists()
                                              else "")
    if storage == "":
        where = label or "its storage"
        return summary, None, f"the trials are in {where}, which this report does not open: the summary above " \
                              f"is best_params.json's"
    import optuna

    from rnnkit.tuning.search import TrialRow
    from rnnkit.tuning.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        opened = optuna.load_study(study_name=study, storage=open_storage(paths, storage, study))
        trials = [TrialRow.of(t) for t in opened.get_trials(deepcopy=False)]
    except (RnnkitError, KeyError, ValueError) as exc:
        return summary, None, f"the study's trials could not be read ({exc})"
    return summary, trials, ""
