"""The search space of `rnnkit tune`: what a study may search, the default space, TOML files.

A parameter given as a table is searched, one given as a plain value is fixed for every
trial; anything else (a tokenize setting, a command-line setting, a typo) is a one-line
error naming the file, the parameter and the fix. docs/tuning.md is the user's view.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError

SPACE_DOC = "see docs/tuning.md and docs/space.example.toml"


@dataclass(frozen=True)
class _Kind:
    """What values a tunable parameter takes: its Python type and its valid range."""

    type: type
    check: Callable[[Any], bool] = lambda value: True
    valid: str = ""  # the valid range in words, for messages


def _tunable() -> dict[str, _Kind]:
    """The settings a space may search or fix: those declared `tunable=True` in ModelOptions
    (models/config.py) and LoopOptions (training/loop.py), with their declared types and ranges.
    Everything else is a tokenize-stage setting (needs re-tokenizing) or a command-line setting."""
    import typing

    from rnnkit.models.config import ModelOptions
    from rnnkit.options import declared
    from rnnkit.training.loop import LoopOptions

    kinds: dict[str, _Kind] = {}
    for options_type in (ModelOptions, LoopOptions):
        hints = typing.get_type_hints(options_type)
        for f, spec in declared(options_type):
            if not spec.tunable:
                continue
            # int | None (automatic when unset) and int | str (--hidden-dim's budget:...) search ints.
            kind = next(t for t in (bool, int, float, str) if t is hints[f.name] or t in typing.get_args(hints[f.name]))
            words = spec.valid() or ("true or false" if kind is bool else "a name from `rnnkit models`")
            kinds[f.name] = _Kind(kind, spec.accepts, words)
    return kinds


TUNABLE: dict[str, _Kind] = _tunable()
# Settings that belong to `rnnkit tokenize`: searching them would mean re-tokenizing per trial.
TOKENIZE_SETTINGS = ("max_length", "vocab_size", "tokenizer", "min_df", "max_df", "stop_words",
                     "lowercase", "bos", "eos", "truncate")
COMMAND_LINE = {"epochs": "--epochs-per-trial (trials) and --final-epochs (the tuned run)",
                "seed": "--seed", "device": "--device", "threads": "--threads", "embeddings": "--embeddings"}


@dataclass(frozen=True)
class Param:
    """One searched parameter: a list of choices, or an int/float range (optionally log or stepped)."""

    name: str
    choices: tuple = ()  # categorical when non-empty
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False  # sample uniformly in log space (learning rates)
    step: float | int | None = None  # grid step within [low, high]

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if TUNABLE[self.name].type is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)

    def describe(self) -> str:
        if self.choices:
            return "{" + ", ".join(json.dumps(c) for c in self.choices) + "}"
        text = f"[{self.low:g}, {self.high:g}]"
        return text + (" log" if self.log else "") + (f" step {self.step:g}" if self.step else "")

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a study searches and the values it fixes for every trial."""

    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    source: str = "default"  # where it came from: "default" or the TOML file

    def suggest(self, trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"search": {p.name: p.to_dict() for p in self.params}, "fixed": dict(self.fixed)}

    def describe(self) -> str:
        searched = ", ".join(f"{p.name} {p.describe()}" for p in self.params)
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        return searched + (f"; fixed {fixed}" if fixed else "")


def default_space(model: str | None = None) -> SearchSpace:
    """The source notebooks' space, fitted to `model`: hidden size (for models that have one),
    dropout, and a log-uniform learning rate from a tenth to three times the model's default
    (1e-4 to 3e-3 for the recurrent models, as in the notebooks; 1e-3 to 3e-2 for ngram, whose
    default is 1e-2)."""
    from rnnkit.models import get_spec

    spec = get_spec(model) if model is not None else None
    lr = spec.lr if spec is not None else 1e-3
    params = [Param("dropout", low=0.2, high=0.6), Param("lr", low=lr / 10, high=lr * 3, log=True)]
    if spec is None or "hidden_dim" in spec.takes:
        params.insert(0, Param("hidden_dim", choices=(64, 128, 256)))
    return SearchSpace(params=tuple(params))


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space TOML file (format: docs/tuning.md).

    A parameter given as a table is searched (`lr = { low = 1e-4, high = 3e-3, log = true }`,
    `hidden_dim = { choices = [64, 128] }`); one given as a plain value is fixed for every
    trial (`embedding_dim = 64`). Any problem is a one-line RnnkitError naming the file,
    the parameter and the fix.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise RnnkitError("--space needs Python 3.11+ (tomllib) or `pip install tomli`") from None

    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"no search-space file at {path} — {SPACE_DOC}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RnnkitError(f"{path} is not valid TOML ({exc}) — {SPACE_DOC}") from None
    params: list[Param] = []
    fixed: dict[str, Any] = {}
    for name, value in raw.items():
        _check_name(path, name)
        if isinstance(value, dict):
            params.append(_parse_param(path, name, value))
        elif isinstance(value, list):
            raise RnnkitError(f"{path}: {name} is a plain list — to search it write "
                              f"{name} = {{ choices = {_toml(value)} }}")
        else:
            fixed[name] = _checked_value(path, name, value, what="value")
    if not params:
        raise RnnkitError(f"{path} searches no parameter — give at least one as a table, e.g. "
                          f"lr = {{ low = 1e-4, high = 3e-3, log = true }} ({SPACE_DOC})")
    return SearchSpace(params=tuple(params), fixed=fixed, source=str(path))


def _check_name(path: Path, name: str) -> None:
    if name in TUNABLE:
        return
    if name in TOKENIZE_SETTINGS:
        raise RnnkitError(f"{path}: {name} is a tokenize setting, fixed when dataset.pt was built, and trials "
                          f"reuse dataset.pt without re-tokenizing — run `rnnkit tokenize --{name.replace('_', '-')} "
                          f"...` and tune each setting in its own --study")
    if name in COMMAND_LINE:
        raise RnnkitError(f"{path}: {name} is not part of the space — set it with {COMMAND_LINE[name]}")
    close = difflib.get_close_matches(name, list(TUNABLE), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise RnnkitError(f"{path}: unknown parameter {name!r}{hint} — tunable: {', '.join(TUNABLE)}")


def _parse_param(path: Path, name: str, table: dict[str, Any]) -> Param:
    kind = TUNABLE[name]
    where = f"{path}: {name}"
    unknown = sorted(set(table) - {"choices", "low", "high", "log", "step"})
    if unknown:
        raise RnnkitError(f"{where}: unknown key {unknown[0]!r} — a range takes low, high and optionally "
                          f"log = true or step; a list takes choices")
    if "choices" in table:
        if set(table) != {"choices"}:
            raise RnnkitError(f"{where}: give either choices or low/high, not both")
        choices = table["choices"]
        if not isinstance(choices, list) or not choices:
            raise RnnkitError(f"{where}: choices must be a non-empty list, e.g. choices = [64, 128]")
        values = tuple(_checked_value(path, name, c, what="choice") for c in choices)
        if len(set(values)) != len(values):
            raise RnnkitError(f"{where}: choices {_toml(choices)} repeat a value")
        return Param(name, choices=values)
    if kind.type not in (int, float):
        raise RnnkitError(f"{where}: a {kind.type.__name__} parameter takes a list, e.g. "
                          f"{name} = {{ choices = {_toml(_example_choices(name))} }}")
    if "low" not in table or "high" not in table:
        missing = "high" if "low" in table else "low"
        raise RnnkitError(f"{where}: {missing} is missing — a range needs both low and high")
    low = _checked_value(path, name, table["low"], what="low")
    high = _checked_value(path, name, table["high"], what="high")
    if low > high:
        raise RnnkitError(f"{where}: low {low:g} is above high {high:g} — low must not exceed high")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise RnnkitError(f"{where}: log must be true or false, got {_toml(log)}")
    step = table.get("step")
    if step is not None:
        if log:
            raise RnnkitError(f"{where}: log and step cannot be combined — drop one of them")
        step_ok = (isinstance(step, int) and not isinstance(step, bool) if kind.type is int
                   else isinstance(step, int | float) and not isinstance(step, bool))
        if not step_ok or step <= 0:
            raise RnnkitError(f"{where}: step must be a positive {_type_word(kind.type)}, got {_toml(step)}")
        step = kind.type(step)
    if log and low <= 0:
        raise RnnkitError(f"{where}: log = true needs low > 0, got {low:g}")
    return Param(name, low=low, high=high, log=log, step=step)


def _checked_value(path: Path, name: str, value: Any, *, what: str) -> Any:
    """A value of the parameter's type (ints accepted for floats) and within its valid range."""
    kind = TUNABLE[name]
    where = f"{path}: {name}"
    ok = isinstance(value, kind.type) and (kind.type is bool or not isinstance(value, bool))
    if kind.type is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise RnnkitError(f"{where}: {what} must be {_type_word(kind.type)}, got {_toml(value)} "
                          f"({_toml_type(value)})")
    if name == "model":
        from rnnkit.models import get_spec

        try:
            get_spec(value)
        except RnnkitError as exc:
            raise RnnkitError(f"{where}: {exc}") from None
    elif not kind.check(value):
        raise RnnkitError(f"{where}: {what} {_toml(value)} is out of range — {name} must be {kind.valid}")
    return value


def _type_word(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[kind]


def _toml_type(value: Any) -> str:
    for kind, word in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (list, "array"), (dict, "table")):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def _toml(value: Any) -> str:
    return json.dumps(value, default=str)


def _example_choices(name: str) -> list:
    return ["bilstm-pool", "gru"] if name == "model" else [True, False]
