"""What every command shares: the --artifacts option and turning RnnkitError into one line."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.errors import RnnkitError

ArtifactsOption = Annotated[
    Path | None,
    typer.Option("--artifacts", envvar="RNNKIT_ARTIFACTS", help="Artifacts folder.", show_default="artifacts"),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Run even when the outputs are up to date.")]


def paths_for(root: Path | None):
    from rnnkit.artifacts import artifact_paths

    return artifact_paths(root)


def fail(message: str, code: int = 2) -> None:
    from rich.text import Text

    from rnnkit.console import err_console

    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(command):
    """Print an RnnkitError as one line and exit 2; Ctrl-C exits 130. No traceback either way."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RnnkitError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            from rnnkit.console import err_console

            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper
