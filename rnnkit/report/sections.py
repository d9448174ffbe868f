"""The sections of a run's report, each from plain data the stage gathered (stages/report.py):

    settings     the run: model, every option and what "auto" resolved to, size, device, time
    data         split sizes, label counts per split, text lengths
    training     loss and the headline metric per epoch (metrics.jsonl)
    test         the test metrics, and the confusion matrix (binary, multi-class) or the per-label
                 table (multi-label); the per-class table for multi-class
    curves       ROC and precision-recall curves: one (binary), or the micro average and the
                 largest classes / labels
    calibration  the reliability plot and the expected calibration error
    mistakes     the most confident mistakes on the test split, with token attributions for
                 the first few where `rnnkit explain`'s code is there (explain_mistakes)
    runs         this run beside the project's other runs
    tuning       the study's trials and best-so-far, for a run trained by `rnnkit tune`

Figures are drawn by rnnkit/plots.py into a scratch folder and embedded as data URIs.
Metrics come from rnnkit/training/metrics.py; this module adds only what the page draws:
curve points (scikit-learn) and calibration bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.report import html as h
from rnnkit.report.html import Section

BINS = 10  # calibration bins, 0.1 wide
CURVE_CLASSES = 4  # the largest classes / labels drawn beside the micro average
EXCERPT = 320  # characters of a mistake's text shown before "more"
FULL_TEXT = 4000  # characters of it behind "more"
EXPLAINED = 5  # the mistakes explained token by token


@dataclass
class Split:
    """One split's size, label counts and text lengths."""

    name: str
    texts: int
    label_counts: dict[str, int]
    words: list[int] | None = None  # words per text (prepared/), None when prepared/ is not there
    tokens: list[int] | None = None  # tokens the model reads per text (dataset.pt)


@dataclass
class Mistake:
    row: int  # the row of the test split
    text: str
    true: list[str]
    predicted: list[str]
    probability: float  # how sure the wrong decision was (mistakes()): what they are sorted by
    about: str  # that, in words: "P(neg) 0.912", "missed ships: P(ships) 0.21"
    explained_label: str  # the label whose attributions are shown
    p_true: float | None = None  # binary, multi-class: the probability given to the true class
    tokens: list[tuple[str, float]] | None = None  # (token or word, attribution)


@dataclass
class Inputs:
    """Everything a report is made from (gathered by stages/report.py)."""

    run: str
    why: str  # how the run was chosen
    checkpoint_name: str  # best or last
    checkpoint: dict[str, Any]  # the checkpoint's metadata (its state_dict left out)
    config: dict[str, Any] | None  # config.json (None: a run from before config.json)
    history: list[dict]  # metrics.jsonl
    facts: dict[str, Any]  # parameters, parameters without embedding, seconds per epoch
    device: str  # where this report's predictions ran
    task: str
    label_names: list[str]
    decision: Any  # training.metrics.Decision
    metrics: dict[str, float]  # on the test split
    probs: np.ndarray  # (n, outputs)
    targets: np.ndarray  # (n,) or (n, labels)
    per_label: list[dict]
    splits: list[Split]
    max_length: int | None  # the tokenizer's cut
    text_of: Any  # test row -> its text (prepared/; else decoded from the token ids the model read)
    texts_decoded: bool  # True: prepared/ is not there, text_of decodes ids
    runs: list[Any]  # checkpoints.RunInfo of every run
    saved_reports: list[dict]  # evaluate's reports on the test split
    dataset_sha256: str
    study: dict[str, Any] | None = None  # best_params.json of the study behind a tuned-<study> run
    trials: list[Any] | None = None  # its trials (tuning.search.TrialRow), None: storage not readable
    trials_note: str = ""
    data_notes: list[str] = field(default_factory=list)
    mistakes_shown: int = 10


# --------------------------------------------------------------------------- computing


def predictions(inputs: Inputs) -> np.ndarray:
    from rnnkit.training.metrics import decide

    return decide(inputs.probs, inputs.task, inputs.decision)


def one_vs_rest(task: str, probs: np.ndarray, targets: np.ndarray, label_names: list[str]):
    """(scores, truth, name) per curve: binary one; otherwise the micro average over every
    (text, class) pair, then the CURVE_CLASSES largest classes that have both outcomes."""
    from rnnkit.training.metrics import BINARY, MULTICLASS

    if task == BINARY:
        return [(probs.reshape(-1), targets.reshape(-1), f"{label_names[1]} vs {label_names[0]}")]
    if task == MULTICLASS:
        truth = np.zeros(probs.shape, dtype=int)
        truth[np.arange(len(targets)), targets.reshape(-1)] = 1
    else:
        truth = targets.astype(int)
    curves = [(probs.ravel(), truth.ravel(), "micro average")]
    support = truth.sum(axis=0)
    for c in np.argsort(-support, kind="stable"):
        if len(curves) > CURVE_CLASSES:
            break
        if 0 < support[c] < len(truth):
            curves.append((probs[:, c], truth[:, c], label_names[c]))
    return curves


def calibration_bins(task: str, probs: np.ndarray, targets: np.ndarray):
    """(mean predicted, observed frequency, count) per bin, the expected calibration error, and
    what was binned. Binary: P(positive) against being positive; multi-class: the top class's
    probability against being right; multi-label: every label's probability against the label."""
    from rnnkit.training.metrics import BINARY, MULTICLASS

    if task == BINARY:
        confidence, outcome = probs.reshape(-1), targets.reshape(-1)
        what = ("predicted P(positive)", "share positive")
    elif task == MULTICLASS:
        confidence = probs.max(axis=1)
        outcome = (probs.argmax(axis=1) == targets.reshape(-1)).astype(float)
        what = ("probability of the predicted class", "share correct")
    else:
        confidence, outcome = probs.ravel(), targets.ravel()
        what = ("predicted probability of a label (every text, every label)", "share with the label")
    which = np.clip((confidence * BINS).astype(int), 0, BINS - 1)
    counts = np.bincount(which, minlength=BINS).astype(float)
    sums = np.bincount(which, weights=confidence, minlength=BINS)
    hits = np.bincount(which, weights=outcome.astype(float), minlength=BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        observed = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    ece = float(np.nansum(counts / max(counts.sum(), 1) * np.abs(observed - mean_conf)))
    return mean_conf, observed, counts, ece, what


def mistakes(inputs: Inputs, preds: np.ndarray, limit: int) -> list[Mistake]:
    """The `limit` most confident wrong decisions on the test split.

    Binary and multi-class: texts whose predicted class is not the true one, by the predicted
    class's probability. Multi-label: texts whose predicted label set is not the true one, by
    their most confident wrong label: the probability of a label predicted but absent, or one
    minus the probability of a label present but missed."""
    from rnnkit.training.metrics import MULTILABEL

    names, probs, targets = inputs.label_names, inputs.probs, inputs.targets
    out: list[Mistake] = []
    if limit <= 0:
        return out
    if inputs.task != MULTILABEL:
        y = targets.reshape(-1)
        full = probs if probs.shape[1] > 1 else np.concatenate([1 - probs, probs], axis=1)
        wrong = np.flatnonzero(preds != y)
        confidence = full[wrong, preds[wrong]]
        for i in wrong[np.argsort(-confidence, kind="stable")][:limit]:
            out.append(Mistake(int(i), "", [names[y[i]]], [names[preds[i]]], float(full[i, preds[i]]),
                               f"P({names[preds[i]]}) {full[i, preds[i]]:.3f}", names[preds[i]],
                               p_true=float(full[i, y[i]])))
        return out
    y = targets.astype(int)
    # How sure each wrong label decision was: p for a false positive, 1 - p for a miss.
    sureness = np.where(preds != y, np.where(preds == 1, probs, 1 - probs), -1.0)
    worst = sureness.max(axis=1)
    for i in np.flatnonzero(worst >= 0)[np.argsort(-worst[worst >= 0], kind="stable")][:limit]:
        j = int(sureness[i].argmax())
        kind = "wrongly gave" if preds[i, j] else "missed"
        out.append(Mistake(int(i), "", [names[k] for k in np.flatnonzero(y[i])],
                           [names[k] for k in np.flatnonzero(preds[i])], float(sureness[i, j]),
                           f"{kind} {names[j]}: P({names[j]}) {probs[i, j]:.3f}", names[j]))
    return out


def explain_mistakes(checkpoint_path: Path, found: list[Mistake], *, device: str, limit: int = EXPLAINED) -> str:
    """THE HOOK for token explanations: fill `tokens` of the first `limit` mistakes with
    per-word attributions for the label each was wrongly given (or, for a missed multi-label
    label, the label missed), from `rnnkit explain`'s code (rnnkit/interpret/attributions.py,
    layer integrated gradients). Returns a note for the page: what the colours are, or why
    there are none (that code not installed, or the model reads no token embedding)."""
    if not found or limit <= 0:
        return ""
    try:
        from rnnkit.interpret.attributions import Explainer
    except ImportError as exc:
        return f"token attributions are not shown: `rnnkit explain`'s code is not available ({exc})"
    from rnnkit.training.inference import Predictor

    try:
        predictor = Predictor.from_checkpoint(checkpoint_path, device=device, verify=False)
        explainer = Explainer(predictor)
        for mistake in found[:limit]:
            prediction = predictor.predict([mistake.text])[0]
            explanation = explainer.explain(mistake.text, prediction, target=mistake.explained_label)
            values = explanation.word_values(explanation.targets[0].attributions)
            mistake.tokens = list(zip(explanation.words, values))
    except (RnnkitError, ImportError, AttributeError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        for mistake in found:
            mistake.tokens = None
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return f"token attributions are not shown: explaining failed ({reason})"
    return (f"The first {min(limit, len(found))} mistakes are coloured by integrated-gradients attributions "
            f"(the code of `rnnkit explain`) for the label shown as explained: green words pushed the model "
            f"toward it, red ones away; hover a word for its value.")


# --------------------------------------------------------------------------- the sections


def _png(folder: Path, name: str) -> Path:
    return folder / f"{name}.png"


def settings_section(inputs: Inputs) -> Section:
    config = inputs.config or {}
    options = config.get("options") or {}
    resolved = config.get("resolved") or {}
    ckpt = inputs.checkpoint
    history = inputs.history
    train_seconds = sum(e.get("epoch_seconds", e.get("train_seconds", 0.0)) or 0.0 for e in history)
    run_rows: list[tuple[str, object]] = [
        ("run", inputs.run),
        ("chosen by", inputs.why),
        ("model", ckpt["model"]),
        ("task", f"{inputs.task} ({len(inputs.label_names)} labels)"),
        ("checkpoint", f"{inputs.checkpoint_name}.pt: epoch {ckpt.get('epoch')} of "
                       f"{config.get('epochs_run', '?')} run"),
        ("status", config.get("status", "unknown (a run from before config.json)")),
        ("parameters", inputs.facts.get("parameters")),
        ("parameters without the embedding", inputs.facts.get("parameters_without_embedding")),
        ("decision", inputs.decision.describe(inputs.task).removeprefix("decision: ")),
        ("training", _training_line(options, resolved)),
        ("device (training, as given)", f"{options.get('device', '?')}, threads {options.get('threads') or 'auto'}"),
        ("device (this report's predictions)", inputs.device),
        ("training time", f"{train_seconds:,.1f} s over {len(history)} epochs" if history else "unknown"),
        ("median seconds per epoch (training only)", _seconds(inputs.facts.get("seconds_per_epoch"))),
        ("created", config.get("created", "")),
        ("updated", config.get("updated", "")),
        ("versions", ", ".join(f"{k} {v}" for k, v in (config.get("versions") or {}).items())),
        ("dataset.pt sha256", ckpt.get("dataset_sha256", "")[:16] + "…"),
    ]
    if ckpt.get("embeddings"):
        emb = ckpt["embeddings"]
        run_rows.append(("pretrained embeddings", emb.get("path", emb) if isinstance(emb, dict) else emb))
    if isinstance(config.get("init_from"), dict):
        init = config["init_from"]
        ppl = init.get("val_ppl")
        run_rows.append(("encoder from language model", f"{init.get('name')} ({init.get('directions')}"
                         + (f", held-out perplexity {ppl:.1f}" if isinstance(ppl, (int, float)) else "") + ")"))
    body = h.pairs(run_rows)
    if options:
        from rnnkit.models.registry import unused_by

        # Hyper-parameters the model does not take (a cnn's --hidden-dim) only hold their defaults.
        try:
            unused = set(unused_by(str(ckpt.get("model")), list(options)))
        except (RnnkitError, KeyError):  # a model this version does not know: show every option
            unused = set()
        rows = []
        for key, value in options.items():
            if key in unused:
                continue
            shown = _setting(value)
            if key in resolved and resolved[key] != value:
                shown = f"{shown or 'auto'} → {_setting(resolved[key])}"
            rows.append((f"--{key.replace('_', '-')}", shown))
        for key, value in resolved.items():
            if key not in options:
                rows.append((key, _setting(value)))
        body += (f"<details><summary>Every option given to train ({len(rows)}; auto → resolved)</summary>"
                 + h.pairs(rows, header=("option", "value")) + "</details>")
    model_config = config.get("model_config") or ckpt.get("config") or {}
    if model_config:
        body += ("<details><summary>The model's configuration, as built (checkpoint)</summary>"
                 + h.pairs(((k, _setting(v)) for k, v in model_config.items()), header=("field", "value"))
                 + "</details>")
    notes = [] if inputs.config else ["this run has no config.json: its options are not known"]
    return Section("settings", "Settings", body, notes)


def _training_line(options: dict, resolved: dict) -> str:
    """The settings that shape training, "auto" ones with what they resolved to."""
    parts = []
    for key, name in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch"), ("patience", "patience"),
                      ("monitor", "monitor"), ("schedule", "schedule"), ("seed", "seed")):
        if key not in options and key not in resolved:
            continue
        value = resolved.get(key, options.get(key))
        auto = " (auto)" if options.get(key) is None and key in resolved else ""
        parts.append(f"{name} {_setting(value)}{auto}")
    return ", ".join(parts)


def _seconds(value) -> str:
    return "" if value is None else f"{value:.2f} s"


def _setting(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_setting(v)}" for k, v in value.items()) or "–"
    return str(value)


def data_section(inputs: Inputs, folder: Path) -> Section:
    from rnnkit.plots import length_histogram

    splits = inputs.splits
    rows = []
    for s in splits:
        words = np.asarray(s.words) if s.words is not None else None
        tokens = np.asarray(s.tokens) if s.tokens is not None else None
        cut = (float((tokens >= inputs.max_length).mean()) * 100
               if tokens is not None and inputs.max_length and len(tokens) else None)
        rows.append([s.name, s.texts,
                     *(_stat(words, q) for q in (50, 90)), int(words.max()) if words is not None and len(words) else "",
                     *(_stat(tokens, q) for q in (50, 90)),
                     h.raw(f"{cut:.1f}%", True) if cut is not None else ""])
    limit = f" (cut at {inputs.max_length})" if inputs.max_length else ""
    body = h.table(["split", "texts", "median words", "90% words ≤", "max words", "median tokens",
                    "90% tokens ≤", f"tokens at the cut{limit}"], rows)
    names = list(inputs.label_names)
    totals = {n: sum(s.label_counts.get(n, 0) for s in splits) for n in names}
    ordered = sorted(names, key=lambda n: -totals[n])
    label_rows = []
    for n in ordered:
        row: list[object] = [n]
        for s in splits:
            count = s.label_counts.get(n, 0)
            row.append(h.raw(f"{count:,} <span class=muted>({100 * count / max(s.texts, 1):.1f}%)</span>", True))
        label_rows.append(row)
    per_text = " (a text may have several labels)" if inputs.task == "multilabel" else ""
    body += f"<h3>Labels per split{h.esc(per_text)}</h3>"
    body += h.table(["label", *(s.name for s in splits)], label_rows)
    lengths = {s.name: s.words for s in splits if s.words is not None}
    unit, cut = "words", None
    if not lengths:
        lengths = {s.name: s.tokens for s in splits if s.tokens is not None}
        unit, cut = "tokens", inputs.max_length
    if lengths:
        path = _png(folder, "lengths")
        length_histogram(lengths, path, unit=unit, title=f"Text length per split ({unit})", limit=cut)
        body += h.figures(h.figure(path, f"histogram of {unit} per text in each split"))
    return Section("data", "Data", body, list(inputs.data_notes))


def _stat(values: np.ndarray | None, q: int):
    if values is None or not len(values):
        return ""
    return int(np.percentile(values, q, method="higher"))


def training_section(inputs: Inputs, folder: Path) -> Section:
    from rnnkit.plots import epoch_curve
    from rnnkit.training.metrics import MULTILABEL, headline

    history = inputs.history
    if not history:
        return Section("training", "Training curves", h.para("metrics.jsonl is empty or missing: no curves.",
                                                             "note"))
    metric = headline(inputs.task)
    best = (inputs.config or {}).get("best_epoch") or inputs.checkpoint.get("epoch")
    labels = ({"train_label": "train (positive-weighted, F1 at 0.5)",
               "val_label": "val (unweighted, F1 at fitted thresholds)"} if inputs.task == MULTILABEL else {})
    loss, score = _png(folder, "loss"), _png(folder, "metric")
    epoch_curve(history, loss, key="loss", title=f"Loss per epoch: {inputs.run}", best=best, **labels)
    epoch_curve(history, score, key=metric, title=f"{metric} per epoch: {inputs.run}", best=best, **labels)
    monitor = ((inputs.config or {}).get("resolved") or {}).get("monitor", "the monitored metric")
    body = h.figures(h.figure(loss, "loss per epoch, train and validation"),
                     h.figure(score, f"{metric} per epoch, train and validation"))
    keys = [k for k in history[0] if k != "epoch"]
    rows = [[e.get("epoch"), *(e.get(k) for k in keys)] for e in history]
    body += ("<details><summary>Every epoch's figures</summary>"
             + h.table(["epoch", *keys], rows, row_class=lambda n: "this" if history[n].get("epoch") == best else "")
             + "</details>")
    return Section("training", "Training curves", body,
                   [f"The dotted line marks epoch {best}, the best by {monitor} (the checkpoint best.pt)."])


def test_section(inputs: Inputs, preds: np.ndarray, folder: Path) -> Section:
    from rnnkit.plots import confusion_matrix
    from rnnkit.training.metrics import MULTILABEL

    n = len(inputs.targets)
    rule = h.esc(inputs.decision.describe(inputs.task).removeprefix("decision: "))
    body = f"<p>{n:,} texts of the test split, decided as in training ({rule}); the figures are at the top.</p>"
    notes = []
    if inputs.task != MULTILABEL:
        from sklearn.metrics import confusion_matrix as sk_confusion

        y = inputs.targets.reshape(-1).astype(int)
        k = len(inputs.label_names)
        matrix = sk_confusion(y, preds, labels=list(range(k)))
        path = _png(folder, "confusion")
        confusion_matrix(matrix, inputs.label_names, path,
                         title=f"{inputs.run} on test (acc {inputs.metrics.get('accuracy', float('nan')):.4f})")
        body += "<h3>Confusion matrix</h3>"
        klass = "figs" if k <= 8 else "figs wide"
        body += (f'<div class="{klass}">'
                 + h.figure(path, "confusion matrix, rows true, columns predicted",
                            "Rows: true class; columns: predicted. Colour: share of the true class."
                            + (" On a small screen, scroll the matrix sideways." if k > 8 else ""), zoom=k > 8)
                 + "</div>")
        off = [(matrix[i, j], i, j) for i in range(k) for j in range(k) if i != j and matrix[i, j]]
        if k > 2 and off:
            off.sort(key=lambda t: (-t[0], t[1], t[2]))
            rows = [[inputs.label_names[i], inputs.label_names[j], int(c), h.raw(
                f"{100 * c / max(matrix[i].sum(), 1):.1f}%", True)] for c, i, j in off[:10]]
            body += "<h3>Most frequent confusions</h3>" + h.table(["true", "predicted as", "texts", "% of true"],
                                                                   rows)
    kind = "label" if inputs.task == MULTILABEL else "class"
    if inputs.task != "binary":
        columns = [kind, "precision", "recall", "F1", "support"]
        if inputs.task == MULTILABEL:
            columns.append("threshold")
        rows = []
        for r in inputs.per_label:
            row = [r["label"], r["precision"], r["recall"], r["f1"], r["support"]]
            if inputs.task == MULTILABEL:
                row.append(h.raw(f"{r['threshold']:.2f}" + ("" if r.get("fitted") else "*"), True))
            rows.append(row)
        shared = inputs.task == MULTILABEL and not all(r.get("fitted") for r in inputs.per_label)
        caption = "* too few validation texts to fit a threshold: the shared one" if shared else ""
        body += f"<h3>Per {kind}, by support</h3>" + h.table(columns, rows, caption=caption)
    return Section("test", "Test metrics", body, notes)


def curves_section(inputs: Inputs, folder: Path) -> Section:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    from rnnkit.plots import pr_curves, roc_curves

    roc, pr, rows, notes = [], [], [], []
    for scores, truth, name in one_vs_rest(inputs.task, inputs.probs, inputs.targets, inputs.label_names):
        if truth.min() == truth.max():
            notes.append(f"{name}: the test split has only one outcome, no curve")
            continue
        fpr, tpr, _ = roc_curve(truth, scores)
        precision, recall, _ = precision_recall_curve(truth, scores)
        area, ap = float(roc_auc_score(truth, scores)), float(average_precision_score(truth, scores))
        roc.append((name, fpr, tpr, area))
        pr.append((name, recall, precision, ap))
        rows.append([name, int(truth.sum()), area, ap])
    if not roc:
        return Section("curves", "ROC and precision-recall", h.para("No curve can be drawn.", "note"), notes)
    roc_path, pr_path = _png(folder, "roc"), _png(folder, "pr")
    roc_curves(roc, roc_path, title=f"ROC: {inputs.run} on test")
    pr_curves(pr, pr_path, title=f"Precision-recall: {inputs.run} on test")
    body = h.figures(h.figure(roc_path, "ROC curves"), h.figure(pr_path, "precision-recall curves"))
    body += h.table(["curve", "positives", "ROC AUC", "average precision"], rows)
    if inputs.task != "binary":
        kind = "labels" if inputs.task == "multilabel" else "classes"
        notes.append(f"The micro average pools every (text, {kind[:-1] if kind == 'labels' else 'class'}) pair; "
                     f"beside it the {CURVE_CLASSES} {kind} with the most test texts.")
    return Section("curves", "ROC and precision-recall", body, notes)


def calibration_section(inputs: Inputs, folder: Path) -> Section:
    from rnnkit.plots import reliability

    conf, observed, counts, ece, (xlabel, ylabel) = calibration_bins(inputs.task, inputs.probs, inputs.targets)
    path = _png(folder, "calibration")
    reliability(conf, observed, counts, path, title=f"Calibration: {inputs.run} on test (ECE {ece:.3f})",
                xlabel=xlabel, ylabel=ylabel)
    rows = [[f"{i / BINS:.1f}–{(i + 1) / BINS:.1f}", int(counts[i]), conf[i], observed[i]]
            for i in range(BINS) if counts[i]]
    body = h.figures(h.figure(path, "reliability plot"),
                     h.table(["bin", "predictions", "mean predicted", ylabel], rows, digits=3))
    note = (f"Expected calibration error (ECE): {ece:.4f}, the mean gap between predicted and observed, "
            f"weighted by the predictions in each bin. A point below the diagonal: the predicted probability is higher "
            f"than the observed frequency (over-confident there); above it: lower.")
    return Section("calibration", "Calibration", body, [note])


def mistakes_section(inputs: Inputs, found: list[Mistake], note: str) -> Section:
    if inputs.mistakes_shown <= 0:
        return Section("mistakes", "Most confident mistakes", h.para("--mistakes 0: none shown.", "note"))
    if not found:
        return Section("mistakes", "Most confident mistakes", h.para("No mistakes on the test split.", "note"))
    parts = []
    for rank, m in enumerate(found, 1):
        head = [f"<b>#{rank}</b> test row {m.row}", f"true: <b>{h.esc(', '.join(m.true) or '(none)')}</b>",
                f"predicted: <b>{h.esc(', '.join(m.predicted) or '(none)')}</b>",
                h.esc(m.about)]
        if m.p_true is not None:
            head.append(f"P(true) {m.p_true:.3f}")
        text = m.text
        whole = text[:FULL_TEXT] + (" …" if len(text) > FULL_TEXT else "")
        if m.tokens is not None:
            shown = f'<p class="text">{h.tokens(m.tokens)}</p>'
            head.append(f"explained: {h.esc(m.explained_label)}")
            if len(m.tokens) < len(text.split()):  # the model read a part of it (the tokenizer's cut)
                shown += (f"<details><summary>the whole text ({len(text):,} characters; above: the words the "
                          f"model read)</summary>{h.esc(whole)}</details>")
        else:
            excerpt = text if len(text) <= EXCERPT else text[:EXCERPT].rsplit(" ", 1)[0] + " …"
            shown = f'<p class="text">{h.esc(excerpt)}</p>'
            if len(text) > EXCERPT:
                shown += f"<details><summary>whole text ({len(text):,} characters)</summary>{h.esc(whole)}</details>"
        spans = "".join(f"<span>{x}</span>" for x in head)
        parts.append(f'<div class="mistake"><div class="head">{spans}</div>{shown}</div>')
    notes = [note] if note else []
    if inputs.texts_decoded:
        notes.append("prepared/ is not there: the texts are decoded from the token ids the model read")
    return Section("mistakes", "Most confident mistakes", "".join(parts), notes)


def runs_section(inputs: Inputs) -> Section:
    """This run beside every run in checkpoints/: validation at the best epoch (config.json),
    test figures where `rnnkit evaluate` wrote a report (this run's: computed here)."""
    from rnnkit.training.metrics import headline

    metric = headline(inputs.task)
    saved = {r["run"]: r for r in inputs.saved_reports}
    rows, order = [], []
    for info in inputs.runs:
        if info.partial:
            continue
        key = "val_" + headline(info.task) if info.task else None
        val = (info.best or {}).get(key) if key else None
        if info.name == inputs.run:
            test, macro, params = inputs.metrics.get(metric), inputs.metrics.get("macro_f1"), inputs.facts.get(
                "parameters")
        else:
            report = saved.get(info.name) or {}
            test = (report.get("metrics") or {}).get(metric)
            macro = (report.get("metrics") or {}).get("macro_f1")
            params = report.get("parameters")
        same = "this dataset" if info.dataset_sha256 == inputs.dataset_sha256 else (
            "other" if info.dataset_sha256 else "?")
        other_task = info.task is not None and info.task != inputs.task
        rows.append([info.name, info.model or "", info.status, info.best_epoch,
                     h.raw(_fig(val) + (f" <span class=muted>({key})</span>" if other_task and key else ""), True),
                     h.raw(_fig(test), True), h.raw(_fig(macro), True), params, same])
        order.append(info.name)
    if not rows:
        return Section("runs", "Other runs", h.para("No runs to compare.", "note"))
    ranked = sorted(range(len(rows)), key=lambda i: (
        -_value(rows[i][5].html), -_value(rows[i][4].html.split(" ")[0]), order[i]))
    rows = [rows[i] for i in ranked]
    names = [order[i] for i in ranked]
    table = h.table(["run", "model", "status", "best epoch", f"val {metric}", f"test {metric}", "test macro_f1",
                     "parameters", "data"], rows, row_class=lambda n: "this" if names[n] == inputs.run else "")
    notes = ["Best first by the test figure, then validation. Test figures of other runs come from their "
             "`rnnkit evaluate` report (blank: not evaluated); this run's (highlighted) were computed for this page."]
    return Section("runs", "Other runs", table, notes)


def _fig(value) -> str:
    return "" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.4f}"


def _value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -math.inf


def tuning_section(inputs: Inputs, folder: Path) -> Section | None:
    """The study behind a tuned-<study> run: its trials by number with the best so far, and the table."""
    from rnnkit.plots import optimization_history

    study = inputs.study
    if study is None:
        return None
    metric, direction = study.get("metric", "value"), study.get("direction", "maximize")
    head = [("study", study.get("study")), ("storage", study.get("storage")), ("metric", f"{metric} ({direction})"),
            ("best trial", study.get("best_trial")), ("best value", study.get("value")),
            ("best parameters", _setting(study.get("params") or {})),
            ("trials", _setting(study.get("trials") or {}))]
    body = h.pairs(head)
    notes = []
    trials = inputs.trials
    if trials:
        path = _png(folder, "trials")
        optimization_history(trials, path, metric=metric, direction=direction,
                             title=f"study {study.get('study')}: trial values and best so far")
        body += h.figures(h.figure(path, "trial values and the best so far"))
        params = sorted({k for t in trials for k in t.params})
        rows = []
        for t in sorted(trials, key=lambda t: t.number):
            rows.append([t.number, t.state, t.value, *(_setting(t.params.get(p)) for p in params), t.epochs,
                         None if t.seconds is None else round(t.seconds, 1)])
        best = study.get("best_trial")
        body += "<h3>Trials</h3>" + h.table(["trial", "state", metric, *params, "epochs", "seconds"], rows,
                                            row_class=lambda n: "this" if rows[n][0] == best else "")
        notes.append("Highlighted: the best trial, whose settings trained this run.")
    if inputs.trials_note:
        notes.append(inputs.trials_note)
    return Section("tuning", "Tuning history", body, notes)


def build(inputs: Inputs, folder: Path, *, checkpoint_path: Path, explain: bool = True) -> tuple[str, list[str]]:
    """The page's HTML and the keys of its sections. `folder`: scratch space for the figures."""
    import datetime as dt

    from rnnkit import __version__

    preds = predictions(inputs)
    found = mistakes(inputs, preds, inputs.mistakes_shown)
    for m in found:
        m.text = inputs.text_of(m.row)
    note = explain_mistakes(checkpoint_path, found, device=inputs.device) if explain else ""
    sections = [settings_section(inputs), data_section(inputs, folder), training_section(inputs, folder),
                test_section(inputs, preds, folder), curves_section(inputs, folder),
                calibration_section(inputs, folder), mistakes_section(inputs, found, note), runs_section(inputs)]
    tuning = tuning_section(inputs, folder)
    if tuning is not None:
        sections.append(tuning)
    from rnnkit.training.metrics import headline

    metric = headline(inputs.task)
    subtitle = (f"{inputs.checkpoint['model']} · {inputs.task}, {len(inputs.label_names)} labels · "
                f"test {metric} {inputs.metrics.get(metric, float('nan')):.4f} on {len(inputs.targets):,} texts")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    footer = (f"Written by rnnkit {__version__} (`rnnkit report --run {inputs.run}`) at {now}. "
              f"Self-contained: images are embedded, nothing is loaded from elsewhere.")
    head = h.cards((f"test {k}", f"{v:.4f}") for k, v in inputs.metrics.items())
    return h.page(f"Run {inputs.run}", subtitle, head, sections, footer), [s.key for s in sections]
