"""How training shows its progress: rows that keep their figures at 80 columns, one line per
epoch on a pipe, nothing under --quiet (training/progress.py, console.py)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from support import TINY_TRAIN, ok, run_cli

from rnnkit.console import duration, is_quiet, set_quiet, training_progress
from rnnkit.training.progress import Quiet, RichEpochBars, epoch_label, epoch_line, resolve

# What loop.py reports: the running figures during an epoch, the summary at its end (the
# longest headline metric name, two-digit epochs).
RUNNING = "loss 0.4123  accuracy 0.8120"
SUMMARY = "loss 0.4123  val_loss 0.3999  val_micro_f1 0.8123  *best"


def render_rows(width: int) -> list[str]:
    """The epoch rows of a 12-epoch run as a terminal `width` columns wide shows them: epochs
    1 and 2 done, epoch 3 a third of the way."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None, legacy_windows=False)
    bars = training_progress(console=console)
    for epoch, seconds in ((1, 41.2), (2, 39.8)):
        task = bars.add_task(epoch_label(epoch, 12), total=391, stats="")
        bars.update(task, completed=391, stats=SUMMARY, seconds=seconds)
    task = bars.add_task(epoch_label(3, 12), total=391, stats="")
    bars.update(task, completed=130, stats=RUNNING)
    console.print(bars.get_renderable())
    return out.getvalue().rstrip("\n").split("\n")


@pytest.mark.parametrize("width", [80, 100, 150])
def test_epoch_rows_keep_their_figures_and_timing(width):
    lines = render_rows(width)
    assert len(lines) == 3, lines  # one line per epoch, nothing wrapped
    for line in lines:
        assert len(line.rstrip()) <= width and "…" not in line
    done, _, running = lines
    assert done.startswith("epoch  1/12   41s") and done.rstrip().endswith(SUMMARY)
    assert running.startswith("epoch  3/12") and running.rstrip().endswith(RUNNING)
    assert re.search(r" 130/391 eta \S+ ", running)  # the count and the time left
    if width >= 100:  # room for the bar, on finished epochs too
        assert "━" in running and "━" in done and "391/391" in done


def test_duration_reads_short():
    assert [duration(s) for s in (0.42, 9.94, 12.4, 59.4, 185, 3723)] == ["0.4s", "9.9s", "12s", "59s", "3:05",
                                                                        "1:02:03"]
    assert duration(None) == "-:--"
    assert epoch_line(3, 10, SUMMARY, 41.2) == f"epoch  3/10   41s  {SUMMARY}"


def test_off_a_terminal_each_epoch_is_one_line(monkeypatch):
    from rnnkit import console as console_module

    out = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", console_module._Messages(file=out, width=150))
    with resolve(True) as report:
        assert isinstance(report, RichEpochBars)
        for epoch in (1, 2):
            report.start_epoch(epoch, 2, 10)
            report.advance(5, RUNNING)
            report.advance(10, RUNNING)
            report.end_epoch(epoch, 2, SUMMARY, 1.5)
        report.note("early stop: val_accuracy has not improved for 2 epochs")
    assert out.getvalue().splitlines() == [f"epoch 1/2  1.5s  {SUMMARY}", f"epoch 2/2  1.5s  {SUMMARY}",
                                           "early stop: val_accuracy has not improved for 2 epochs"]


def test_quiet_reports_nothing_but_warnings_and_errors(monkeypatch):
    from rnnkit import console as console_module

    out = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", console_module._Messages(file=out, width=150))
    set_quiet(True)
    try:
        assert type(resolve(True)) is Quiet
        assert training_progress().disable
        console_module.err_console.print("schedule: 5 epochs")
        console_module.err_console.print("[yellow]warning:[/] the model predicts one class")
        console_module.err_console.print("error: something is wrong")
    finally:
        set_quiet(False)
    assert out.getvalue().splitlines() == ["warning: the model predicts one class", "error: something is wrong"]


def epoch_lines(text: str) -> list[str]:
    return re.findall(r"^epoch +\d+/\d+ .*$", text, flags=re.MULTILINE)


def test_piped_training_prints_each_epoch_once(pipeline_copy):
    """CliRunner's stderr is not a terminal: what `rnnkit train ... 2>&1 | cat` shows."""
    result = ok([*TINY_TRAIN, "--epochs", "2", "--name", "piped", "--artifacts", pipeline_copy])
    lines = epoch_lines(result.output)
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"], result.output
    for line in lines:
        assert "val_loss" in line and re.search(r"\d+(\.\d)?s ", line)
    assert "run piped: best epoch" in result.output


@pytest.mark.parametrize("where", ["after", "before"])
def test_quiet_training_prints_only_its_result(pipeline_copy, where):
    args = [*TINY_TRAIN, "--epochs", "2", "--name", f"quiet-{where}", "--artifacts", pipeline_copy]
    result = ok([*args, "-q"] if where == "after" else ["-q", *args])
    assert result.stderr == ""  # no progress, no schedule line
    assert result.stdout.startswith(f"run quiet-{where}: best epoch") and len(result.stdout.splitlines()) == 1
    assert not is_quiet()  # reset once the command ends


def test_quiet_still_shows_errors(pipeline_copy):
    result = run_cli(["train", "-q", "--name", "tiny", "--epochs", "1", "--artifacts", pipeline_copy])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "--force" in result.stderr
