"""Typer commands built from a stage's Options: the flags, their help and defaults come from
the one declaration of each option (rnnkit/options.py), never typed a second time here."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.cli.common import ArtifactsOption, friendly_errors, paths_for
from rnnkit.options import declared, flag


def command(options_type, body: Callable[..., None], *, artifacts: bool = True) -> Callable[..., None]:
    """A Typer command whose parameters are `options_type`'s declared fields (+ --artifacts).

    `body(paths, options, given)` runs the stage and prints its result; `given` is the set of
    field names the user typed (as opposed to defaults), which lets a stage tell "not given"
    from "given the default value" (an option a model doesn't use is an error only if given).
    """
    hints = typing.get_type_hints(options_type)
    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    annotations: dict[str, Any] = {"ctx": typer.Context}
    parsers: dict[str, Callable[[Any], Any]] = {}
    for f, spec in declared(options_type):
        field_type = spec.cli_type or hints[f.name]
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty
        if spec.cli_type is not None and default not in (None, inspect.Parameter.empty) and spec.show:
            default = spec.show(default)
        help_text = spec.help + (f" ({spec.valid()})" if spec.valid() else "")
        if spec.argument:
            info = typer.Argument(help=help_text, metavar=spec.metavar, show_default=False)
        else:
            names = spec.flags or (flag(f.name),)
            if _is_bool(field_type) and not spec.flags:
                names = (f"{names[0]}/--no-{names[0][2:]}",) if default is not False else names
            info = typer.Option(*names, help=help_text, metavar=spec.metavar, rich_help_panel=spec.panel,
                                envvar=spec.env)
        annotation = Annotated[field_type, info]
        parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
        annotations[f.name] = annotation
        if spec.parse is not None:
            parsers[f.name] = spec.parse
    if artifacts:
        parameters.append(inspect.Parameter("artifacts", inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=ArtifactsOption))
        annotations["artifacts"] = ArtifactsOption

    def run_command(ctx: typer.Context, **values: Any) -> None:
        from typer._click.core import ParameterSource

        root = values.pop("artifacts", None)
        given = {name for name in values
                 if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
        for name, parse in parsers.items():
            if values[name] is not None:
                values[name] = parse(values[name])
        body(paths_for(root) if artifacts else None, options_type(**values), given)

    run_command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run_command.__annotations__ = annotations
    run_command.__doc__ = body.__doc__
    run_command.__name__ = body.__name__
    return friendly_errors(run_command)


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or (typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"),
                                  "UnionType", None)) and bool in typing.get_args(annotation))


__all__ = ["command", "Path"]
