"""What every command shares: --artifacts and --quiet, the group class of the `rnnkit` command
(commands in pipeline order, flags without a type in --help, usage errors as one line), and
turning RnnkitError into one line."""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from rnnkit.errors import RnnkitError, sigterm_as_interrupt

ArtifactsOption = Annotated[
    Path | None,
    typer.Option("--artifacts", envvar="RNNKIT_ARTIFACTS", show_default=False, show_envvar=False,
                 help="Artifacts folder. Default: $RNNKIT_ARTIFACTS, else ./artifacts."),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress: only the result and any warning or error."),
]


def with_example(help_text: str | None, example: str) -> str:
    """A command's help with its example as a last paragraph (unless it has one already). The
    paragraphs are reflowed: rich would keep a docstring's line breaks in --help."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(help_text or "").split("\n\n") if p.strip()]
    if not any("Example" in p for p in paragraphs):
        paragraphs.append(f"Example: {example}")
    return "\n\n".join(paragraphs)


def paths_for(root: Path | None):
    from rnnkit.artifacts import artifact_paths

    return artifact_paths(root)


def fail(message: str, code: int = 2) -> None:
    from rich.text import Text

    from rnnkit.console import err_console

    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(command):
    """Print an RnnkitError as one line and exit 2; an OSError (a folder that cannot be written,
    a full disk, a file where a folder should be) too, as "cannot write PATH: REASON — fix";
    Ctrl-C, and SIGTERM likewise, exit 130. No traceback in any case."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        root = kwargs.get("artifacts")
        try:
            if root is not None and Path(root).exists() and not Path(root).is_dir():
                raise RnnkitError(f"--artifacts {root} is a file, not a folder — pass a folder (it is created "
                                  f"when missing)")
            with sigterm_as_interrupt():
                return command(*args, **kwargs)
        except RnnkitError as exc:
            fail(str(exc))
        except OSError as exc:
            _os_error(exc, root)
        except KeyboardInterrupt:
            from rnnkit.console import err_console

            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _os_error(exc: OSError, root: Path | None) -> None:
    """An OSError as one line: what could not be read or written, why, and what to do."""
    import errno
    import os

    if exc.errno == errno.EPIPE:  # `rnnkit predict ... | head`: the reader left; nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        raise typer.Exit(141)
    path = exc.filename if exc.filename is not None else None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path is None:  # a write that failed mid-file (a full disk) names no file: name the folder
        path = str(root if root is not None else paths_for(None).root) + "/"
    reason = exc.strerror or str(exc) or type(exc).__name__
    elsewhere = "or pass --artifacts a folder elsewhere"
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        fail(f"cannot write {path}: {reason} — free some space ({elsewhere}) and run the command again")
    elif code == errno.EROFS:
        fail(f"cannot write {path}: {reason} — {elsewhere.removeprefix('or ')} on a writable disk")
    elif code in (errno.EACCES, errno.EPERM):
        verb = "read" if os.path.exists(path) and not os.access(path, os.R_OK) else "write"
        fail(f"cannot {verb} {path}: {reason} — give yourself access to it (chmod, chown), {elsewhere}")
    elif code == errno.ENOTDIR or code == errno.EEXIST:
        blocker = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), None)
        what = f"{blocker} is a file, not a folder" if blocker is not None else reason
        fail(f"cannot use {path}: {what} — move that file away, {elsewhere}")
    elif code == errno.EISDIR:
        fail(f"cannot use {path}: it is a folder, not a file — give the path of a file")
    elif code == errno.ENOENT:
        fail(f"cannot read {path}: {reason} — check the path")
    else:
        fail(f"cannot read or write {path}: {reason} — check the path and the disk, and run the command again")


class Group(TyperGroup):
    """The `rnnkit` command and its sub-groups.

    * `order`: the commands in this order in --help (Typer lists sub-groups such as `prepare`
      after the plain commands); names not in it follow, as registered.
    * A flag shows no `<bool>` type in --help: it takes no value.
    * A command listed without a one-line summary is listed with its help's first paragraph,
      as one line (rich would keep the docstring's line breaks).
    * A usage error (an unknown option, a value of the wrong type) is one line on stderr, exit 2.
    """

    order: tuple[str, ...] = ()

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def get_params(self, ctx):
        params = super().get_params(ctx)
        _plain_flags(params)
        return params

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy(command, ctx)
        return command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer._click.exceptions import ClickException
        from typer.exceptions import Abort

        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # the help was shown: nothing to add
                _usage_error(exc)
            sys.exit(exc.exit_code)
        except Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _plain_flags(params) -> None:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


def _tidy(command, ctx) -> None:
    """The flags of `command` without a type, its summary on one line; the same for the
    sub-commands of a sub-group made without this class (Typer's own)."""
    _plain_flags(command.get_params(ctx))
    if command.short_help is None and command.help:
        command.short_help = " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split())
    if isinstance(command, TyperGroup) and not isinstance(command, Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                _tidy(sub, ctx)


def _usage_error(exc) -> None:
    from rich.text import Text

    from rnnkit.console import err_console

    ctx = getattr(exc, "ctx", None)
    hint = f" — see `{ctx.command_path} {ctx.help_option_names[0]}`" if ctx is not None else ""
    message = " ".join(exc.format_message().split()).rstrip(".")
    err_console.print(Text("error: ", style="bold red") + Text(message + hint), soft_wrap=True)
