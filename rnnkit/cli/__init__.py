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
app.add_typer(prepare.app, name="prepare")
app.command("tokenize")(tokenize.tokenize)
app.command("embed")(embed.embed)
app.command("train")(train.train)
app.command("tune")(tune.tune)
app.command("evaluate")(evaluate.evaluate)
app.command("ablate-gates")(ablate.ablate_gates)
app.command("predict")(predict.predict)
app.command("models")(models.models)


def main() -> None:
    app()
