"""Options declared once: a stage's Options dataclass is the single source of every setting.

Each field of a stage's `Options` (rnnkit/stages/<command>.py) is declared with `option()`:
its default, its valid range or choices, and one line of help that says what it does and
why the default is what it is. From that one declaration:

* the command line is built (rnnkit/cli/build.py turns each field into a Typer option, with
  the help, the default and the range shown in `--help`);
* the values are checked (`check` below: one line naming the flag, the value and the fix);
* `rnnkit tune` knows which settings a search space may search (`tunable=True`) and their
  ranges (tuning/space.py reads them from here).

So a new setting is one field: nothing else to keep in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from rnnkit.errors import RnnkitError

_KEY = "rnnkit"


@dataclass(frozen=True)
class Spec:
    """What the command line, the checks and the tuner need to know about one option."""

    help: str
    low: float | None = None  # smallest valid value (inclusive unless low_open)
    high: float | None = None  # largest valid value (inclusive unless high_open)
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()  # the valid values, when they are a list
    example: str = ""  # a valid value for messages ("e.g. 1e-3")
    flags: tuple[str, ...] = ()  # command-line names; default: --field-name
    argument: bool = False  # a positional argument rather than a --flag
    tunable: bool = False  # `rnnkit tune` may search or fix it (tuning/space.py)
    panel: str | None = None  # the --help panel it is listed in
    metavar: str | None = None
    # The command line's type and parser when they differ from the field's: "3,4,5" -> (3, 4, 5).
    cli_type: type | None = None
    parse: Callable[[Any], Any] | None = None
    show: Callable[[Any], str] | None = None  # the default as --help shows it
    env: str | None = None  # an environment variable that sets it

    def valid(self) -> str:
        """The valid values in words: "in [0, 1)", "> 0", "one of: a, b"."""
        if self.choices:
            return "one of: " + ", ".join(map(str, self.choices))
        low, high = number(self.low), number(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return ""

    def accepts(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False  # nan passes no comparison; inf is never a useful setting
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def number(value: float | None) -> str:
    """A bound as users type it: whole numbers in full (4294967295, not 4.29497e+09), others
    as %g (1e-05, 0.5)."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def option(default: Any = MISSING, help: str = "", **spec: Any) -> Any:
    """A dataclass field with its Spec: `lr: float = option(1e-3, "Adam's peak rate.", low=0, low_open=True)`."""
    metadata = {_KEY: Spec(help=help, **spec)}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def spec_of(f: Field) -> Spec | None:
    return f.metadata.get(_KEY)


def declared(options_type) -> list[tuple[Field, Spec]]:
    """The fields of an Options dataclass that are options, in declaration order."""
    return [(f, spec) for f in fields(options_type) if (spec := spec_of(f)) is not None]


def flag(name: str, spec: Spec | None = None) -> str:
    """The flag users type for a field: `embedding_dim` -> `--embedding-dim`."""
    if spec is not None and spec.flags:
        return spec.flags[0]
    return "--" + name.replace("_", "-")


def check(options) -> None:
    """Every declared option of `options` within its range: RnnkitError naming the flag, the
    value and what is valid. None means "not given, decide later" and is always accepted."""
    for f, spec in declared(type(options)):
        value = getattr(options, f.name)
        values = value if isinstance(value, tuple) and spec.cli_type is not None else (value,)
        for v in values:
            if v is not None and not spec.accepts(v):
                example = f", e.g. {spec.example}" if spec.example else ""
                shown = spec.show(value) if spec.show else (repr(value) if isinstance(value, str) else value)
                raise RnnkitError(f"{flag(f.name, spec)} {shown} must be {spec.valid()}{example}")


def defaults(options_type) -> dict[str, Any]:
    """{field: default} of an Options dataclass (what a run records beside the values given)."""
    out = {}
    for f in fields(options_type):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out
