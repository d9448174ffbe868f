"""The `rnnkit` command. Each command lives in its own module and imports heavy libraries
(torch, pandas, gensim, optuna) only inside its body, so `rnnkit --help` starts fast."""

from __future__ import annotations

import typer

from rnnkit.cli import ablate, embed, evaluate, models, predict, prepare, tokenize, train, tune

app = typer.Typer(
    name="rnnkit",
    help="Recurrent and convolutional text classifiers: prepare -> tokenize -> train -> evaluate -> predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # an unexpected error is a bug: show the plain traceback
)
# In the order of the workflow. Each module's COMMAND is its Typer command; prepare is a group.
app.add_typer(prepare.app, name="prepare")
app.command("tokenize")(tokenize.COMMAND)
app.command("embed")(embed.COMMAND)
app.command("train")(train.COMMAND)
app.command("tune")(tune.COMMAND)
app.command("evaluate")(evaluate.COMMAND)
app.command("ablate-gates")(ablate.COMMAND)
app.command("predict")(predict.COMMAND)
app.command("models")(models.COMMAND)


def main() -> None:
    app()
