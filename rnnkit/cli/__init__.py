"""The `rnnkit` command. Each command lives in its own module and imports heavy libraries
(torch, pandas, gensim, optuna) only inside its body, so `rnnkit --help` starts fast.

The commands are listed in the order of the workflow (prepare first), each with a one-line
summary and an example (COMMANDS below: keep an example runnable when a flag changes;
tests/cli/test_help.py checks that every command has one). `rnnkit --version`, `-h` as well as
`--help` everywhere, shell completion (`--install-completion`), and `-q` before the command
(`rnnkit -q train`) or after it (`rnnkit train -q`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from rnnkit.cli import (
    ablate,
    embed,
    ensemble,
    evaluate,
    explain,
    models,
    predict,
    prepare,
    pretrain,
    report,
    runs,
    tokenize,
    train,
    tune,
)
from rnnkit.cli.common import Group, QuietOption, with_example


class Pipeline(Group):
    order = ("prepare", "tokenize", "embed", "pretrain", "train", "tune", "ensemble", "evaluate", "predict", "explain",
             "report", "runs", "ablate-gates", "models")


app = typer.Typer(
    name="rnnkit",
    cls=Pipeline,
    help="Recurrent and convolutional text classifiers: prepare -> tokenize -> train -> evaluate -> predict.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion: click's, offline, at no cost to --help
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,  # an unexpected error is a bug: show the plain traceback
)

# In the order of the workflow (`Group` lists them so): each module's COMMAND, SUMMARY (its line in
# `rnnkit --help`) and EXAMPLE (the last line of its own --help).
COMMANDS = {"tokenize": tokenize, "embed": embed, "pretrain": pretrain, "train": train, "tune": tune,
            "ensemble": ensemble, "evaluate": evaluate, "predict": predict, "explain": explain, "report": report,
            "ablate-gates": ablate, "models": models}


app.add_typer(prepare.app, name="prepare", short_help=prepare.SUMMARY,
              help=with_example(prepare.app.info.help, "rnnkit prepare imdb --sample"))
for _name, _module in COMMANDS.items():
    app.command(_name, short_help=_module.SUMMARY,
                help=with_example(_module.COMMAND.__doc__, _module.EXAMPLE))(_module.COMMAND)
app.add_typer(runs.app, name="runs", short_help=runs.SUMMARY, help=with_example(runs.app.info.help, runs.EXAMPLE))


def _version(value: bool) -> None:
    if value:
        from rnnkit import __version__

        typer.echo(f"rnnkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print rnnkit's version and exit.")] = False,
    quiet: QuietOption = False,
) -> None:
    if quiet:
        from rnnkit.console import set_quiet

        set_quiet(True)
        ctx.call_on_close(lambda: set_quiet(False))


def main() -> None:
    app()
