"""The command line reads well: commands in pipeline order, --version, -h, an example in every
command's help, real choices and no `<bool>` in --help, one-line usage errors, shell
completion, and `rnnkit models` one line per model at 80 columns."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from rich.console import Console
from support import ok, run_cli
from typer.main import get_command

from rnnkit.cli import app

PIPELINE = ["prepare", "tokenize", "embed", "pretrain", "train", "tune", "ensemble", "evaluate", "predict"]


def command_paths() -> list[list[str]]:
    """Every command and sub-command, as the words typed: ["train"], ["prepare", "csv"], ..."""
    import typer

    root = get_command(app)
    found = []

    def walk(group, ctx, prefix):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            found.append([*prefix, name])
            if isinstance(command, typer.core.TyperGroup):
                walk(command, typer.Context(command, parent=ctx, info_name=name), [*prefix, name])

    walk(root, typer.Context(root, info_name="rnnkit"), [])
    return found


COMMANDS = command_paths()


def test_commands_are_listed_in_pipeline_order():
    names = [path[0] for path in COMMANDS if len(path) == 1]
    assert names[: len(PIPELINE)] == PIPELINE
    listed = re.findall(r"^│ ([a-z-]+) ", ok(["--help"]).output, flags=re.MULTILINE)
    assert [name for name in listed if name in names] == names  # the Commands panel, in that order
    assert listed.index("prepare") < listed.index("tokenize") < listed.index("models")


def test_version():
    import importlib.metadata

    import rnnkit

    out = ok(["--version"]).output
    assert out == f"rnnkit {rnnkit.__version__}\n"
    assert rnnkit.__version__ == importlib.metadata.version("rnnkit")


@pytest.mark.parametrize("path", [[]] + COMMANDS, ids=lambda p: " ".join(p) or "rnnkit")
def test_h_is_help_and_every_command_shows_an_example(path):
    help_text = ok([*path, "--help"]).output
    assert ok([*path, "-h"]).output == help_text
    assert "-h" in help_text and "<bool>" not in help_text  # a flag takes no value
    if path:
        example = re.search(r"Example: (rnnkit .*)", help_text)
        assert example, help_text
        assert re.match(rf"rnnkit {' '.join(path)}\b", example.group(1))  # the example runs this command


def flat(help_text: str) -> str:
    """--help's words in order, without the panels' frames and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text).split())


def test_flags_and_choices_read_as_such():
    text = flat(ok(["train", "--help"]).output)
    assert "[auto|cpu|cuda]" in text  # short choices in the type column
    assert "One of: val_loss, val_accuracy, val_micro_f1, val_macro_f1." in text  # long ones in the help
    assert "--amp Mixed precision" in text  # a flag: no type between name and help
    assert "(>=1)" in text and "(0<=x<1)" in text  # ranges, never broken over two lines


def test_every_option_with_choices_shows_them():
    from rnnkit.cli.build import describe
    from rnnkit.options import declared
    from rnnkit.stages import embed, evaluate, tokenize, train, tune

    for stage in (embed, evaluate, tokenize, train, tune):
        for _, spec in declared(stage.Options):
            if spec.choices:
                metavar, help_text = describe(spec)
                words = ", ".join(map(str, spec.choices))
                assert metavar == "[" + "|".join(map(str, spec.choices)) + "]" or words in help_text


def test_train_help_has_panels_and_fits_80_columns():
    out = subprocess.run([sys.executable, "-m", "rnnkit", "train", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "TERM": "dumb"}, check=True).stdout
    for panel in ("Options", "Run", "Model", "Optimisation", "Hardware"):
        assert f"─ {panel} ─" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Example: rnnkit train" in out


@pytest.mark.parametrize("args", [["train", "--device", "gpu"], ["tune", "--sampler", "grid"],
                                  ["train", "--epochs", "abc"], ["train", "--bogus"], ["bogus"],
                                  ["evaluate", "--split", "dev"]])
def test_bad_values_are_one_line(args, tmp_path):
    result = run_cli([*args, "--artifacts", tmp_path] if args != ["bogus"] else args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr


def test_a_bad_choice_is_refused_before_any_heavy_import():
    code = ("import sys\nfrom rnnkit.cli import app\n"
            "try:\n    app(['train', '--device', 'gpu'])\nexcept SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('HEAVY', [m for m in ('torch', 'pandas', 'optuna') if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "EXIT 2" in done.stdout and "HEAVY []" in done.stdout
    assert done.stderr == "error: --device 'gpu' must be one of: auto, cpu, cuda\n"


def test_shell_completion_offline():
    from typer.testing import CliRunner

    runner = CliRunner()
    env = {"_RNNKIT_COMPLETE": "complete_bash", "COMP_WORDS": "rnnkit tr", "COMP_CWORD": "1"}
    result = runner.invoke(app, [], env=env, prog_name="rnnkit")
    assert result.output.split() == ["train"]
    env = {"_RNNKIT_COMPLETE": "complete_bash", "COMP_WORDS": "rnnkit train --dev", "COMP_CWORD": "2"}
    assert runner.invoke(app, [], env=env, prog_name="rnnkit").output.split() == ["--device"]
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="rnnkit")
    assert "_RNNKIT_COMPLETE" in script.output
    assert "--install-completion" in ok(["--help"]).output


def test_models_rows_are_one_line_at_80_columns():
    from rnnkit.artifacts import artifact_paths
    from rnnkit.cli.models import models_table, shorten
    from rnnkit.models import model_names
    from rnnkit.stages.models import Options, run

    options = Options()
    result = run(artifact_paths("/nonexistent-artifacts"), options)
    for width in (80, 100):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(models_table(result, options, width=width))
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        for name in model_names():
            rows = [line for line in lines if line.startswith(name + " ")]
            assert len(rows) == 1, (name, lines)
            assert re.search(r" \d{1,3}(,\d{3})+ +\d{1,3}(,\d{3})* ", rows[0])  # both counts, whole
    assert shorten("LSTM + causal additive (Bahdanau) self-attention", 30) == "LSTM + causal additive…"
