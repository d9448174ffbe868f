"""Typer commands built from a stage's Options: the flags, their help and defaults come from
the one declaration of each option (rnnkit/options.py), never typed a second time here.

How --help shows an option: its panel (`panel=`; panels in PANELS order, the general options
--artifacts, -q and -h first), a flag without a type, choices as `[a|b|c]` in the type
column (a list too long for it is written out in the help), and the valid range after the
help, e.g. `(>=1)` or `(0<=x<1)`.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import MISSING
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.cli.common import ArtifactsOption, QuietOption, friendly_errors, paths_for
from rnnkit.options import Spec, declared, flag, number

# The --help panels, in the order they are listed; an option without one is in the general
# "Options" panel (with --artifacts, -q, -h), listed first. A panel not named here follows these.
PANELS = ("Data", "Split", "Vocabulary", "Encoding", "Word2vec", "Search", "Study", "Run", "Model",
          "Optimisation", "Hardware", "Output")
# Choices longer than this ("[auto|cpu|cuda]") would widen the type column of every row of
# their panel: they are written out in the help instead.
CHOICES_WIDTH = 16


def command(options_type, body: Callable[..., None], *, artifacts: bool = True,
            quiet: bool = True) -> Callable[..., None]:
    """A Typer command whose parameters are `options_type`'s declared fields (+ --artifacts, -q).

    `body(paths, options, given)` runs the stage and prints its result; `given` is the set of
    field names the user typed (as opposed to defaults), which lets a stage tell "not given"
    from "given the default value" (an option a model doesn't use is an error only if given).
    The options' ranges and choices are checked before `body` runs (and before any heavy
    import): a bad value is one line at once. `quiet`: the command takes -q/--quiet
    (rnnkit/console.py: no progress, stderr only for warnings and errors).
    """
    hints = typing.get_type_hints(options_type)
    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    annotations: dict[str, Any] = {"ctx": typer.Context}
    parsers: dict[str, Callable[[Any], Any]] = {}
    rank = {name: i for i, name in enumerate(PANELS)}
    ordered = sorted(declared(options_type), key=lambda fs: rank.get(fs[1].panel, len(rank)) if fs[1].panel else -1)
    for f, spec in ordered:
        field_type = spec.cli_type or hints[f.name]
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty
        if spec.cli_type is not None and default not in (None, inspect.Parameter.empty) and spec.show:
            default = spec.show(default)
        metavar, help_text = describe(spec)
        if spec.argument:
            info = typer.Argument(help=help_text, metavar=metavar, show_default=False)
        else:
            names = spec.flags or (flag(f.name),)
            if _is_bool(field_type) and not spec.flags:
                names = (f"{names[0]}/--no-{names[0][2:]}",) if default is not False else names
            info = typer.Option(*names, help=help_text, metavar=metavar, rich_help_panel=spec.panel,
                                envvar=spec.env)
        annotation = Annotated[field_type, info]
        parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
        annotations[f.name] = annotation
        if spec.parse is not None:
            parsers[f.name] = spec.parse
    general = {"artifacts": (ArtifactsOption, None)} if artifacts else {}
    if quiet:
        general["quiet"] = (QuietOption, False)
    for name, (annotation, default) in general.items():
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
        annotations[name] = annotation

    def run_command(ctx: typer.Context, **values: Any) -> None:
        from typer._click.core import ParameterSource

        from rnnkit.console import is_quiet, set_quiet
        from rnnkit.options import check

        root = values.pop("artifacts", None)
        was_quiet = is_quiet()
        if values.pop("quiet", False):
            set_quiet(True)
        try:
            given = {name for name in values
                     if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
            for name, parse in parsers.items():
                if values[name] is not None:
                    values[name] = parse(values[name])
            options = options_type(**values)
            check(options)
            body(paths_for(root) if artifacts else None, options, given)
        finally:
            set_quiet(was_quiet)

    run_command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run_command.__annotations__ = annotations
    run_command.__doc__ = body.__doc__
    run_command.__name__ = body.__name__
    return friendly_errors(run_command)


def describe(spec: Spec) -> tuple[str | None, str]:
    """(metavar, help) of an option in --help: its choices and its valid range shown. A
    metavar that is one upper-case word reads as Typer's own: NAME -> <name>."""
    metavar, help_text = spec.metavar, spec.help
    if metavar is not None and re.fullmatch(r"[A-Z][A-Z_]*", metavar):
        metavar = f"<{metavar.lower()}>"
    if spec.choices:
        listed = "[" + "|".join(map(str, spec.choices)) + "]"
        if metavar is None and len(listed) <= CHOICES_WIDTH:
            metavar = listed
        else:
            metavar = metavar or "<choice>"
            help_text += f" One of: {', '.join(map(str, spec.choices))}."
    elif spec.low is not None or spec.high is not None:
        help_text += f" ({_range(spec)})"
    return metavar, help_text


def _range(spec: Spec) -> str:
    """">=1", ">0", "0<=x<1": one word, so that --help never breaks it across lines."""
    low = f"{number(spec.low)}{'<' if spec.low_open else '<='}" if spec.low is not None else ""
    high = f"{'<' if spec.high_open else '<='}{number(spec.high)}" if spec.high is not None else ""
    if low and high:
        return f"{low}x{high}"
    if low:
        return f"{'>' if spec.low_open else '>='}{number(spec.low)}"
    return high


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or (typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"),
                                  "UnionType", None)) and bool in typing.get_args(annotation))


__all__ = ["command", "describe", "Path"]
