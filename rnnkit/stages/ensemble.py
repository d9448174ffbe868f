"""`rnnkit ensemble RUN RUN ... --name NAME`: trained runs -> one run that averages their probabilities.

    checkpoints/<NAME>/best.pt      references to the members (run, model, sha256 of best.pt, weight),
                                    task, label names, tokenizer, decision rule, validation metrics
    checkpoints/<NAME>/last.pt      the same file (an ensemble has no epochs: `--checkpoint last` works)
    checkpoints/<NAME>/config.json  model "ensemble", members, status finished, best = validation metrics

The combining model and the weight fit are training/ensemble.py's; docs/ensemble.md says why
and how. The run is built in checkpoints/.<NAME>.partial/, recorded in the manifest as
"train/<NAME>" (so evaluate, predict, explain, report, `runs` and the default-run rule take it
as any finished run) and swapped into place, holding the run's lock, as `rnnkit train` does.

Members must be finished runs trained on the dataset.pt in the folder (hence one task, one set
of labels, one tokenizer: the one that encoded dataset.pt). Each member's best.pt is checked
against its train record and read under that member's lock (a member being trained or deleted
right now is refused). An ensemble is not a member: give its members instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, data_lock, run_lock, sha256_file, torch_save
from rnnkit.errors import RnnkitError, interrupts_deferred, sigterm_as_interrupt
from rnnkit.options import check, option
from rnnkit.training import checkpoints
from rnnkit.training.inference import InferenceOptions

WEIGHTINGS = ("fit", "equal")


@dataclass
class Options(InferenceOptions):
    """Everything `rnnkit ensemble` takes."""

    members: list[str] | None = option(None, "The runs to combine (`rnnkit runs` lists them): finished runs "
                                       "trained on the dataset.pt here.", argument=True)
    name: str | None = option(None, "Name of the ensemble run (required): checkpoints/NAME/.", panel="Run",
                              metavar="NAME")
    weights: str = option("fit", "fit: non-negative weights summing to 1 that minimise the validation log-loss "
                          "of the averaged probabilities; equal: every member alike.", choices=WEIGHTINGS,
                          panel="Run")
    force: bool = option(False, "Replace an existing run of this --name (e.g. an ensemble whose members were "
                         "retrained).", panel="Run")


@dataclass
class Member:
    run: str
    model: str
    weight: float
    val: dict[str, float]  # the member's own validation metrics (on the same split, as the ensemble's)
    sha256: str  # its best.pt


@dataclass
class Result:
    run: str
    run_dir: Path
    task: str
    weighting: str  # "fit" or "equal"
    members: list[Member]
    best: dict[str, float]  # the ensemble's validation metrics (val_loss, val_accuracy, ...)
    loss_equal: float  # validation log-loss with equal weights
    loss: float  # with the weights used
    iterations: int  # of the weight fit (0: equal weights)
    decision: str  # decision.describe(task)
    replaced: bool  # an older run of this name was replaced (--force)
    seconds: float


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Check the members, score each on the validation split, weigh them, write the ensemble run."""
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.run_config import check_run_name

    check(options)
    members = list(options.members or [])
    if not members:
        raise RnnkitError("no runs to combine — give them: `rnnkit ensemble RUN RUN ... --name NAME` (`rnnkit runs` "
                          "lists the runs)")
    if options.name is None:
        raise RnnkitError(f"--name is required: the ensemble is a run of its own — e.g. `rnnkit ensemble "
                          f"{' '.join(members)} --name ens`")
    name = check_run_name(options.name, "--name")
    for member in members:
        check_run_name(member, "RUN")
    twice = sorted({m for m in members if members.count(m) > 1})
    if twice:
        raise RnnkitError(f"run {twice[0]!r} is given twice — give each member once (--weights fit weighs them)")
    if name in members:
        raise RnnkitError(f"--name {name} is one of the members — give the ensemble another name")
    configure_cpu(options.threads)
    start = time.perf_counter()
    with contextlib.ExitStack() as held:
        held.enter_context(run_lock(paths, name, doing="being built", fix="wait for it, or pick another --name"))
        for note in checkpoints.repair_run(paths, name):
            from rnnkit.console import err_console

            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        if paths.run_dir(name).exists() and not options.force:
            raise RnnkitError(f"run {name!r} already exists in {paths.checkpoints}/ — pick another --name, or pass "
                              f"--force to replace it")
        return _build(paths, options, name, members, start)


def _build(paths: ArtifactPaths, options: Options, name: str, members: list[str], start: float) -> Result:
    from rnnkit.text.dataset import load_dataset

    with data_lock(paths, "ensemble", write=False):
        manifest = Manifest(paths)
        data_hashes = manifest.verify([paths.dataset], produced_by="tokenize", rerun="rnnkit tokenize")
        dataset_sha = data_hashes[paths.rel(paths.dataset)]
        loaded = [_read_member(paths, manifest, run) for run in members]
        check_members(loaded, dataset_sha)
        data = load_dataset(paths, manifest=manifest, check_lineage=False)
    work = checkpoints.partial_dir(paths, name)
    try:
        with sigterm_as_interrupt():
            return _weigh_and_write(paths, manifest, options, name, loaded, data, data_hashes, work, start)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # nothing of value: the members are untouched
        raise


def _read_member(paths: ArtifactPaths, manifest: Manifest, run: str) -> dict[str, Any]:
    """A member's best.pt (checked against its train record, read under its lock) and its facts."""
    info = checkpoints.find_run(paths, run)
    if info is None or not info.has_checkpoint:
        known = ", ".join(checkpoints.run_names(paths)[-8:]) or "none"
        raise RnnkitError(f"no run named {run!r} with a best.pt in {paths.checkpoints}/ (runs: {known}) — "
                          f"`rnnkit runs` lists them")
    if info.status != "finished":
        raise RnnkitError(f"run {run!r} is {info.status}, not finished — finish it (`rnnkit train --resume {run}`) or "
                          f"leave it out")
    path = paths.run_dir(run) / "best.pt"
    with run_lock(paths, run, doing="being read by `rnnkit ensemble`",
                  fix="wait for it to end, then run `rnnkit ensemble` again"):
        hashes = manifest.verify([path], produced_by=f"train/{run}", rerun=f"rnnkit train --name {run} --force")
        ckpt = checkpoints.load(path)
    return {"run": run, "path": path, "sha256": hashes[paths.rel(path)], "checkpoint": ckpt}


def check_members(loaded: list[dict[str, Any]], dataset_sha256: str | None) -> None:
    """One task, one list of labels, one tokenizer and the dataset.pt here for every member (each
    a loaded checkpoint: {"run", "checkpoint"}); an ensemble is not a member. One line naming
    the mismatch and the fix otherwise."""
    from rnnkit.training.ensemble import ENSEMBLE, members_of

    first = loaded[0]
    for member in loaded:
        ckpt = member["checkpoint"]
        if ckpt["model"] == ENSEMBLE:
            try:
                inner = " ".join(m["run"] for m in members_of(ckpt["config"]))
            except ValueError:
                inner = "RUN ..."
            raise RnnkitError(f"run {member['run']!r} is an ensemble itself — give its members instead "
                              f"(`rnnkit ensemble {inner} ...`)")
        if dataset_sha256 is not None and ckpt.get("dataset_sha256") != dataset_sha256:
            raise RnnkitError(f"run {member['run']!r} was trained on another dataset.pt than the one here (it was "
                              f"re-tokenized since) — ensemble runs trained on this dataset.pt, or train "
                              f"{member['run']!r} again with `rnnkit train --name {member['run']} --force`")
    for member in loaded[1:]:
        a, b = first["checkpoint"], member["checkpoint"]
        pair = f"runs {first['run']!r} and {member['run']!r}"
        if a["task"] != b["task"]:
            raise RnnkitError(f"{pair} differ in task ({a['task']} vs {b['task']}) — ensemble runs of one task")
        if list(a["label_names"]) != list(b["label_names"]):
            raise RnnkitError(f"{pair} differ in label names ({', '.join(a['label_names'][:5])} vs "
                              f"{', '.join(b['label_names'][:5])}) — ensemble runs trained on the same labels")
        if a.get("dataset_sha256") != b.get("dataset_sha256"):
            raise RnnkitError(f"{pair} were trained on different dataset.pt files — ensemble runs of one dataset.pt "
                              f"(retrain the older one on it with `rnnkit train --name NAME --force`)")
        if a.get("tokenizer_json") != b.get("tokenizer_json"):
            raise RnnkitError(f"{pair} read text with different tokenizers — ensemble runs of one tokenize "
                              f"(retrain the older one with `rnnkit train --name NAME --force`)")


def _weigh_and_write(paths: ArtifactPaths, manifest: Manifest, options: Options, name: str, loaded, data,
                     data_hashes, work: Path, start: float) -> Result:
    import numpy as np
    import torch

    from rnnkit.artifacts import CHECKPOINT_FORMAT
    from rnnkit.console import err_console
    from rnnkit.training import ensemble, inference
    from rnnkit.training.device import resolve_device
    from rnnkit.training.loop import metrics_from_logits
    from rnnkit.training.metrics import MULTILABEL, Decision, headline, probabilities
    from rnnkit.training.run_config import FINISHED, versions, write_config
    from rnnkit.training.thresholds import fit_thresholds, share_of_commonest_labels, share_without_label

    first = loaded[0]["checkpoint"]
    task, names = first["task"], list(first["label_names"])
    x, lengths, y = data["X_val"], data["lengths_val"], data["y_val"]
    dev = resolve_device(options.device)
    batch = options.batch_size or inference.default_batch_size(dev)
    workers = inference.resolve_workers(options.workers, dev)
    logits, own = [], []
    for member in loaded:
        err_console.print(f"scoring {member['run']} ({member['checkpoint']['model']}) on validation "
                          f"({len(lengths):,} texts)", highlight=False)
        model = checkpoints.rebuild(member["checkpoint"], member["path"]).to(dev)
        z = inference.predict_logits(model, x, lengths, device=dev, amp=options.amp, batch_size=batch,
                                     workers=workers)
        del model
        logits.append(z)
        decision = checkpoints.decision_of(member["checkpoint"], member["path"])
        own.append(metrics_from_logits(z, y, task, decision=decision))
    q = np.stack([ensemble.outcome_probabilities(z, y, task) for z in logits], axis=1)
    equal = np.full(len(loaded), 1.0 / len(loaded))
    weights, iterations = ensemble.fit_weights(q) if options.weights == "fit" else (equal, 0)
    kept = [i for i, w in enumerate(weights) if w > 0]
    log_w = torch.tensor([float(np.log(weights[i])) for i in kept])
    combined = ensemble.combine([logits[i] for i in kept], log_w, task)
    if task == MULTILABEL:  # thresholds fitted on the ensemble's own validation probabilities, as training does
        probs = probabilities(combined, task).numpy()
        at_least_one = bool((data["y_train"].sum(1) > 0).all())
        decision = fit_thresholds(probs, y.numpy(), at_least_one=at_least_one)
    else:
        decision = Decision([0.5] * (1 if combined.shape[1] == 1 else combined.shape[1]))
    metrics = metrics_from_logits(combined, y, task, decision=decision)
    if task == MULTILABEL:
        metrics["no_label_share"] = share_without_label(probs, decision)
        metrics["same_labels_share"] = share_of_commonest_labels(probs, decision)
    best = {f"val_{k}": float(v) for k, v in metrics.items()}
    head = "val_" + headline(task)
    members = [Member(m["run"], str(m["checkpoint"]["model"]), float(w), {f"val_{k}": float(v) for k, v in o.items()},
                      m["sha256"]) for m, w, o in zip(loaded, weights, own)]
    records = [{"run": m.run, "model": m.model, "sha256": m.sha256, "weight": m.weight, head: m.val.get(head)}
               for m in members]
    checkpoint = ensemble.payload(
        name=name, weighting=options.weights, members=records, task=task, label_names=names,
        tokenizer_json=first["tokenizer_json"], tokenizer_sha256=str(first.get("tokenizer_sha256", "")),
        dataset_sha256=data_hashes[paths.rel(paths.dataset)], metrics=best, decision=decision,
        checkpoint_format=CHECKPOINT_FORMAT)
    loss_equal, loss = ensemble.log_loss(q, equal), ensemble.log_loss(q, weights)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    torch_save(work / "best.pt", checkpoint)
    shutil.copyfile(work / "best.pt", work / "last.pt")
    write_config(work, {
        "run": name, "status": FINISHED, "pid": os.getpid(), "options": asdict(options),
        "resolved": {}, "model": ensemble.ENSEMBLE, "model_config": checkpoint["config"], "task": task,
        "label_names": names, "versions": versions(),
        "data": {"dataset_sha256": checkpoint["dataset_sha256"], "tokenizer_sha256": checkpoint["tokenizer_sha256"]},
        "members": records, "fit": {"weights": options.weights, "val_log_loss_equal": loss_equal,
                                    "val_log_loss": loss, "iterations": iterations},
        "epochs_run": None, "best_epoch": None, "best": best,
    })
    files = ("best.pt", "last.pt", "config.json")
    final = paths.run_dir(name)
    output_hashes = {paths.rel(final / f): sha256_file(work / f) for f in files}
    input_hashes = {**data_hashes, **{paths.rel(m["path"]): m["sha256"] for m in loaded}}
    # Ctrl-C or SIGTERM waits for the record and the swap (a second): cut there, the run would
    # be recorded but not in place (the next command would finish the swap, but say so).
    with interrupts_deferred():
        manifest.record(f"train/{name}", params={"ensemble": True, "members": [m.run for m in members],
                                                 "weights": options.weights, "interrupted": False},
                        input_hashes=input_hashes, output_hashes=output_hashes)
        replaced = checkpoints.swap_into_place(paths, name)
    return Result(name, final, task, options.weights, members, best, loss_equal, loss, iterations,
                  decision.describe(task), replaced, time.perf_counter() - start)
