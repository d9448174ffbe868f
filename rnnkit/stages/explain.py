"""`rnnkit explain`: which tokens made a trained run label a text as it did.

Layer integrated gradients on the model's token embeddings (rnnkit/interpret/attributions.py:
what f is, the baseline, completeness and the ngram model). Reads only the run's best.pt, as
`predict` does (Predictor); writes nothing but the --html page when asked. Texts come as
`predict` takes them (arguments, --file, '-' for stdin); blank lines of a file or stdin have
nothing to explain and are skipped.

Which label: --target (by name), else the predicted one — for a multi-label run each
predicted label, or the most probable one when none passes its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.options import check, option
from rnnkit.training.checkpoints import RunOptions
from rnnkit.training.device import DeviceOptions


@dataclass
class Options(DeviceOptions, RunOptions):
    """Everything `rnnkit explain` takes."""

    texts: list[str] | None = option(None, "Texts to explain; '-' reads stdin (one per line).", argument=True)
    file: str | None = option(None, "One text per line; '-' for stdin. Blank lines are skipped.",
                              flags=("--file", "-f"), panel="Data")
    target: str | None = option(None, "The label to explain, by name. Default: the predicted label (multi-label: "
                                "each predicted label, or the most probable one when none is).", metavar="LABEL",
                                panel="Output")
    steps: int = option(50, "Integration steps of integrated gradients: more make the attributions add up more "
                        "exactly to f(text) - f(baseline) (the reported delta), at a cost linear in them.",
                        low=1, high=10000, panel="Output")
    json_output: bool = option(False, "One JSON object per text: tokens, attributions, target, prediction, "
                               "delta (and attention for attn-lstm).", flags=("--json",), panel="Output")
    html: str | None = option(None, "Also write a self-contained HTML page (no external assets) with the "
                              "coloured tokens to this file.", metavar="FILE", panel="Output")


@dataclass
class Result:
    run: str
    why: str  # how the run was chosen (checkpoints.resolve_run)
    model: str  # the registry name: bilstm-pool, ngram, ...
    task: str
    steps: int
    explanations: list[Any]  # interpret.attributions.Explanation, one per text
    html: Path | None  # the page written, if --html
    method_notes: list[str] = field(default_factory=list)  # how this model is explained: said once, not per text


def run(paths, options: Options, given: set[str] | None = None) -> Result:
    """Attributions for every text with the run's checkpoint (the run `checkpoints.resolve_run` picks)."""
    from rnnkit.console import training_progress
    from rnnkit.interpret.attributions import Explainer
    from rnnkit.stages.predict import read_texts
    from rnnkit.training import checkpoints
    from rnnkit.training.device import configure_cpu
    from rnnkit.training.inference import Predictor

    check(options)
    from_lines = options.file is not None or options.texts == ["-"]
    texts = read_texts(options.texts or [], options.file)
    if from_lines:
        texts = [text for text in texts if text.strip()]
    else:
        Predictor.check_texts(texts)
    html = _html_path(options.html) if options.html is not None else None
    configure_cpu(options.threads)
    choice = checkpoints.choose_run(paths, options.run)
    predictor = Predictor.from_run(paths, choice.name, device=options.device)
    if options.target is not None and options.target not in predictor.label_names:
        raise RnnkitError(f"--target {options.target!r} is not a label of run {choice.name!r} — use one of: "
                          f"{', '.join(predictor.label_names)}")
    explainer = Explainer(predictor, steps=options.steps)
    predictions = predictor.predict(texts, workers=1)
    explanations = []
    # A file of long texts takes a while (about 0.5 s a review for a recurrent model): a bar on
    # stderr while it runs, gone when it ends (stdout, --json included, holds only the results).
    with training_progress(transient=True) as bar:
        task = bar.add_task("explaining", total=len(texts), stats="", visible=len(texts) > 1)
        for text, prediction in zip(texts, predictions):
            explanations.append(explainer.explain(text, prediction, options.target))
            bar.advance(task)
    result = Result(choice.name, choice.why, predictor.model_name, predictor.task, options.steps, explanations, html,
                    list(explainer.notes))
    if html is not None:
        from rnnkit.artifacts import write_text
        from rnnkit.interpret.render import html_page

        write_text(html, html_page(result))
    return result


def _html_path(name: str) -> Path:
    """--html FILE, checked before any work: a file in a folder that exists."""
    path = Path(name)
    if path.is_dir():
        raise RnnkitError(f"--html {name} is a folder — give the path of a file, e.g. {path / 'explain.html'}")
    if not path.parent.is_dir():
        raise RnnkitError(f"--html {name}: the folder {path.parent} does not exist — create it or write the page "
                          f"elsewhere")
    return path
