"""Bad input, generated (hypothesis): every error a user can cause is one line that starts
"error: ", exit code non-zero, no traceback, and nothing written; input that is in fact valid
succeeds.

* Options: every declared option of every command (rnnkit/options.py `declared()` over the
  Options each command is built from, found through the command line itself, so a new option
  or command is covered without an edit here): a number below its low or above its high,
  nan and inf, values of the wrong type, choices that are not among the choices.
* Huge values of options without a high, on the commands cheap enough to run to the end.
* Files: CSV/TSV corpora for `prepare csv` (random bytes, truncated or mislabelled gzip,
  missing columns, one class, 1-5 rows, empty texts, other separators, other encodings),
  `predict --file` contents, dataset.pt files damaged or edited, tune journal lines.

The suite runs in-process (support.run_cli) against the session's tiny trained pipeline; the
cases are derandomized, so that CI runs the same ones every time.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import io
import math
import pkgutil
import shutil
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import run_cli, snapshot
from typer.main import get_command

from rnnkit.cli import app
from rnnkit.options import Spec, declared, flag


def _settings(n: int):
    # No shrinking: the first failing case is shown as found (a shrink reruns commands for minutes).
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# --------------------------------------------------------------------------- what a clean result is


def written(root: Path) -> dict:
    """The files below root with size and mtime, lock files aside (artifacts/.locks/ keeps them)."""
    return {name: stat for name, stat in snapshot(root).items() if not name.startswith(".locks/")}


def outcome(result) -> str | None:
    """None for a success (exit 0); the error line of a clean failure. Anything else — an
    exception that escaped, a traceback, several lines, no "error: " — fails the test."""
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        return None
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert " — " in lines[0] or "see `" in lines[0] or "must be" in lines[0], f"names no fix: {lines[0]}"
    return lines[0]


def refused(args, root: Path, input=None) -> str:
    """`args` fails cleanly and writes nothing under root."""
    before = written(root)
    result = run_cli([*args, "--artifacts", root], input=input)
    line = outcome(result)
    assert line is not None, f"{args} was accepted:\n{result.output}"
    assert written(root) == before, f"{args} failed but wrote files"
    return line


# --------------------------------------------------------------------------- the declared options


def _options_types() -> set[type]:
    import rnnkit.stages

    found = set()
    for info in pkgutil.iter_modules(rnnkit.stages.__path__):
        module = importlib.import_module(f"rnnkit.stages.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and declared(value):
                found.add(value)
    return found


def _commands() -> list[tuple[tuple[str, ...], type, dict[str, str]]]:
    """(words, Options type, {argument: its click name}) of every command built from declarations."""
    candidates = _options_types()
    found = []

    def walk(command, words):
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*words, name))
            return
        names = {p.name for p in command.params} - {"artifacts", "quiet", "help"}
        matches = [c for c in candidates if {f.name for f, _ in declared(c)} == names]
        assert len(matches) <= 1, f"{words}: {matches}"
        if matches:
            arguments = {p.name: p.name for p in command.params if p.param_type_name == "argument" and p.required}
            found.append((words, matches[0], arguments))

    walk(get_command(app), ())
    return found


COMMANDS = _commands()
# A valid value of each required argument (a command with a new one fails here: add it).
ARGUMENTS = {"path": "{csv}", "name": "tiny", "texts": "great film"}


def _number_type(options_type, name: str) -> type | None:
    """int or float when the option takes a number (`int | None`, `int | str` for --hidden-dim,
    a tuple of ints for --kernel-sizes), else None."""
    hint = typing.get_type_hints(options_type)[name]
    args = typing.get_args(hint) or (hint,)
    if typing.get_origin(hint) is tuple:
        return int
    for kind in (float, int):
        if kind in args and bool not in args:
            return kind
    return None


def _option_cases() -> list[tuple[tuple[str, ...], str, str, type | None, Spec, dict]]:
    cases = []
    for words, options_type, arguments in COMMANDS:
        for f, spec in declared(options_type):
            if spec.argument:
                continue
            kind = _number_type(options_type, f.name)
            if spec.choices or (kind is not None and (spec.low is not None or spec.high is not None)):
                cases.append((words, f.name, flag(f.name, spec), kind, spec, arguments))
    return cases


OPTION_CASES = _option_cases()
OPTION_IDS = [f"{' '.join(words)} {name}" for words, name, *_ in OPTION_CASES]


def _show(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _below(kind: type, spec: Spec):
    if spec.low is None:
        return None
    if kind is int:
        return math.ceil(spec.low) - (0 if spec.low_open and spec.low == int(spec.low) else 1)
    return spec.low if spec.low_open else spec.low - max(1.0, abs(spec.low)) * 1e-3


def _above(kind: type, spec: Spec):
    if spec.high is None:
        return None
    if kind is int:
        return math.floor(spec.high) + (0 if spec.high_open and spec.high == int(spec.high) else 1)
    return spec.high if spec.high_open else spec.high + max(1.0, abs(spec.high)) * 1e-3


def bad_values(kind: type | None, spec: Spec):
    """A strategy of command-line strings that the option must refuse."""
    if spec.choices:
        return st.one_of(
            st.sampled_from(["", " ", "none", "GPU", "1", "-1", "nan"]),
            st.text(min_size=1, max_size=12),
        ).filter(lambda text: text not in {str(c) for c in spec.choices})
    wrong = ["", "abc", "nan", "inf", "-inf", "NaN", "Infinity", "1,5", "0x10", "--", "1e999"]
    if kind is int:
        wrong += ["1.5", "2e9", "1e3"]
    parts = [st.sampled_from(wrong)]
    # Just outside each bound: below `low`, above `high`.
    for bound, side in ((spec.low, "max_value"), (spec.high, "min_value")):
        if bound is None:
            continue
        if kind is int:
            edge = _below(kind, spec) if side == "max_value" else _above(kind, spec)
            parts.append(st.integers(**{side: edge}).map(str))
        else:
            parts.append(st.floats(**{side: bound}, allow_nan=False, allow_infinity=False, allow_subnormal=False)
                         .filter(lambda x: not spec.accepts(x)).map(_show))
    return st.one_of(*parts)


def _edges(kind: type | None, spec: Spec) -> list[str]:
    """The values next to the valid range, and the non-finite ones, for every option."""
    if spec.choices:
        return ["", "not-a-choice", str(spec.choices[0]).upper() + "x"]
    values = ["nan", "inf", "-inf", "abc", ""]
    for edge in (_below(kind, spec), _above(kind, spec)):
        if edge is not None:
            values.append(_show(edge))
    return values


@pytest.fixture(scope="module")
def pipeline(trained_pipeline, tmp_path_factory) -> Path:
    """A private copy of the tiny trained pipeline (the option cases must leave it as it is)."""
    root = tmp_path_factory.mktemp("bad-input") / "artifacts"
    shutil.copytree(trained_pipeline, root)
    return root


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "tiny.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(20)))
    return path


def _command_line(words, arguments: dict, csv: Path) -> list[str]:
    values = [ARGUMENTS[name].format(csv=csv) for name in arguments]
    return [*words, *values]


def test_every_command_is_found_with_its_options():
    found = {" ".join(words) for words, *_ in COMMANDS}
    assert {"prepare csv", "prepare imdb", "tokenize", "embed", "train", "tune", "evaluate", "predict", "models",
            "ablate-gates", "runs show"} <= found
    assert len(OPTION_CASES) >= 60


@pytest.mark.parametrize("case", OPTION_CASES, ids=OPTION_IDS)
def test_values_next_to_the_range_are_refused(case, pipeline, tiny_csv):
    words, name, option, kind, spec, arguments = case
    for value in _edges(kind, spec):
        line = refused([*_command_line(words, arguments, tiny_csv), option, value], pipeline)
        assert option in line or "Invalid value" in line or name in line, line


@pytest.mark.parametrize("case", OPTION_CASES, ids=OPTION_IDS)
@_settings(4)
@given(data=st.data())
def test_generated_bad_values_are_refused(case, pipeline, tiny_csv, data):
    words, name, option, kind, spec, arguments = case
    value = data.draw(bad_values(kind, spec), label=option)
    refused([*_command_line(words, arguments, tiny_csv), option, value], pipeline)


# Commands cheap enough to run to the end, where a huge value of an option without a high must
# either work or be refused in one line (a valid value runs the command).
CHEAP = {("predict",), ("prepare", "csv"), ("models",)}
HUGE_CASES = [case for case in OPTION_CASES if case[0] in CHEAP and case[3] is not None and case[4].high is None]


@pytest.mark.parametrize("case", HUGE_CASES, ids=[f"{' '.join(c[0])} {c[1]}" for c in HUGE_CASES])
@_settings(3)
@given(value=st.one_of(st.sampled_from([2**31, 2**32, 2**63, 10**30]), st.integers(min_value=2**31)))
def test_huge_values_work_or_are_refused(case, pipeline, tiny_csv, tmp_path_factory, value):
    words, name, option, kind, spec, arguments = case
    root = pipeline if words != ("prepare", "csv") else tmp_path_factory.mktemp("huge") / "artifacts"
    before = written(root)
    quiet = [] if words == ("models",) else ["-q"]  # (models has no progress to silence)
    result = run_cli([*_command_line(words, arguments, tiny_csv), option, str(value), *quiet, "--artifacts", root])
    if outcome(result) is not None:
        assert written(root) == before


# --------------------------------------------------------------------------- prepare csv: file contents

SEPARATORS = {",": ",", "\t": "\\t", ";": ";", "|": "|"}
words = st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,5}", fullmatch=True)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=25)
# What is wrong with a generated table: nothing (it must be prepared), or one fault (it must be
# refused in one line), or something that may or may not be fine (either, but cleanly).
VALID = ("none", "gzip", "tsv", "bom", "quoted texts", "other columns", "test size", "non-ascii sep")
INVALID = ("few rows", "one class", "missing label", "no text column", "no label column", "utf-16", "latin-1",
           "truncated gzip", "gz name only", "sep flag", "other sep", "extreme split")
EITHER = ("odd texts", "unquoted", "random sep flag")


@st.composite
def tables(draw, fault: str):
    """(file bytes, file name, flags): a table of 12-40 rows written right, or with `fault`."""
    import pandas as pd

    n = draw(st.integers(1, 2)) if fault == "few rows" else draw(st.integers(12, 40))
    classes = draw(st.sampled_from([["pos", "neg"], ["a", "b", "c"], ["x", "y", "z", "w"]]))
    if fault == "one class":
        classes = classes[:1]
    text = any_text if fault == "odd texts" else words
    texts = [draw(text) for _ in range(n)]
    if fault == "quoted texts":
        texts = [f'{t}, "{t}"\t;|' for t in texts]
    if fault == "latin-1":
        texts[draw(st.integers(0, n - 1))] += " caf\u00e9"
    labels = [classes[i % len(classes)] for i in range(n)]
    if fault == "missing label":
        labels[draw(st.integers(0, n - 1))] = ""
    columns = {"text": texts, "label": labels}
    if fault == "other columns":
        columns = {"id": list(range(n)), **columns, "note": ["x"] * n}
    elif fault == "no text column":
        columns = {"review": texts, "label": labels}
    elif fault == "no label column":
        columns = {"text": texts}
    sep = "\t" if fault == "tsv" else "§" if fault == "non-ascii sep" else draw(st.sampled_from(list(SEPARATORS)))
    frame = pd.DataFrame(columns)
    body = frame.to_csv(index=False, sep=sep)
    if fault == "unquoted":  # written by hand: a text may hold the separator
        body = sep.join(columns) + "\n" + "".join(sep.join(str(v[i]) for v in columns.values()) + "\n"
                                                 for i in range(n))
    encoding = {"utf-16": "utf-16", "latin-1": "latin-1", "bom": "utf-8-sig"}.get(fault, "utf-8")
    data = body.encode(encoding, errors="surrogatepass" if encoding == "utf-8" else "strict")
    name = "corpus.tsv" if fault == "tsv" else "corpus.csv"
    flags = [] if sep == "," or fault == "tsv" else ["--sep", SEPARATORS.get(sep, sep)]
    if fault == "sep flag":
        flags = ["--sep", draw(st.sampled_from(["", "ab", "\\", "\\x", "\\n", '"']))]
    elif fault == "other sep":
        flags = ["--sep", draw(st.sampled_from([s for s in SEPARATORS.values() if s != SEPARATORS[sep]]))]
    elif fault == "random sep flag":
        flags = ["--sep", draw(st.text(max_size=3))]
    if fault == "gzip":
        data, name = gzip.compress(data), name + ".gz"
    elif fault == "truncated gzip":
        packed = gzip.compress(data)
        data, name = packed[: draw(st.integers(0, len(packed) - 1))], name + ".gz"
    elif fault == "gz name only":
        name += ".gz"
    if fault == "test size":
        flags += ["--test-size", draw(st.sampled_from(["0.001", "0.3", "0.5"]))]
    elif fault == "extreme split":
        flags += [draw(st.sampled_from(["--test-size", "--val-size"])), draw(st.sampled_from(["0.99", "0.999"]))]
    return data, name, flags


def _prepare(tmp_path_factory, data: bytes, name: str, flags: list[str]):
    folder = tmp_path_factory.mktemp("corpus")
    (folder / name).write_bytes(data)
    root = folder / "artifacts"
    result = run_cli(["prepare", "csv", folder / name, *flags, "-q", "--artifacts", root])
    line = outcome(result)
    if line is None:
        assert (root / "prepared" / "labels.json").exists(), result.output
    else:
        assert written(root) == {}, f"{line} — yet files were written"
    return line


@pytest.mark.parametrize("fault", VALID + INVALID + EITHER)
@_settings(8)
@given(data=st.data())
def test_generated_tables(tmp_path_factory, fault, data):
    contents, name, flags = data.draw(tables(fault), label="table")
    line = _prepare(tmp_path_factory, contents, name, flags)
    if fault in VALID:
        assert line is None, f"a valid table ({fault}) was refused: {line}"
    elif fault in INVALID:
        assert line is not None, f"{name} {flags} ({fault}) was accepted"


@_settings(25)
@given(data=st.binary(max_size=600), name=st.sampled_from(["x.csv", "x.tsv", "x.csv.gz", "x.csv.bz2", "x.csv.zip"]))
def test_random_bytes(tmp_path_factory, data, name):
    line = _prepare(tmp_path_factory, data, name, [])
    assert line is not None
    if data.strip() == b"" and not name.endswith((".gz", ".bz2", ".zip")):
        assert "is empty" in line


@_settings(20)
@given(sep=st.text(max_size=3))
def test_any_separator(tmp_path_factory, tiny_csv, sep):
    folder = tmp_path_factory.mktemp("sep")
    result = run_cli(["prepare", "csv", tiny_csv, "--sep", sep, "-q", "--artifacts", folder / "a"])
    line = outcome(result)
    if sep != ",":
        assert line is not None, f"--sep {sep!r} was accepted"
        assert written(folder / "a") == {}


# --------------------------------------------------------------------------- predict --file


@_settings(25)
@given(content=st.one_of(st.binary(max_size=300),
                         st.text(max_size=200).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
                         st.text(max_size=200).map(lambda t: t.encode("latin-1", errors="replace"))))
def test_predict_file_contents(pipeline, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("file") / "in.txt"
    path.write_bytes(content)
    before = written(pipeline)
    line = outcome(run_cli(["predict", "--file", path, "-q", "--artifacts", pipeline]))
    assert written(pipeline) == before  # predict never writes
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        assert line is not None and ("not UTF-8" in line or "binary" in line), line
        return
    if not text.strip() or "\0" in text:
        assert line is not None


# --------------------------------------------------------------------------- dataset.pt, damaged or edited


@pytest.fixture(scope="module")
def dataset_bytes(trained_pipeline) -> bytes:
    return (trained_pipeline / "dataset.pt").read_bytes()


def _load(tmp_path_factory, data: bytes):
    from rnnkit.artifacts import artifact_paths
    from rnnkit.text.dataset import load_dataset

    root = tmp_path_factory.mktemp("dataset")
    (root / "dataset.pt").write_bytes(data)
    return load_dataset(artifact_paths(root), check_lineage=False)


@_settings(25)
@given(data=st.data())
def test_damaged_dataset_files(tmp_path_factory, dataset_bytes, data):
    from rnnkit.errors import RnnkitError

    damaged = bytearray(dataset_bytes)
    if data.draw(st.booleans(), label="truncate"):
        damaged = damaged[: data.draw(st.integers(0, len(damaged) - 1), label="at")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            i = data.draw(st.integers(0, len(damaged) - 1), label="byte")
            damaged[i] ^= data.draw(st.integers(1, 255), label="xor")
    try:
        _load(tmp_path_factory, bytes(damaged))
    except RnnkitError as exc:
        assert "\n" not in str(exc) and "dataset.pt" in str(exc)


EDITS = {
    "id above the vocabulary": lambda d, t: d["X_train"].__setitem__((0, 0), d["vocab_size"]),
    "negative id": lambda d, t: d["X_test"].__setitem__((1, 1), -3),
    "rows of y": lambda d, t: d.__setitem__("y_val", d["y_val"][1:]),
    "rows of lengths": lambda d, t: d.__setitem__("lengths_train", d["lengths_train"][:-2]),
    "length beyond the width": lambda d, t: d["lengths_val"].__setitem__(0, 10**6),
    "zero length": lambda d, t: d["lengths_test"].__setitem__(0, 0),
    "label 2 in binary": lambda d, t: d["y_train"].__setitem__(0, 2.0),
    "1-D ids": lambda d, t: d.__setitem__("X_val", d["X_val"].flatten()),
    "float ids": lambda d, t: d.__setitem__("X_train", d["X_train"].double()),
    "no label names": lambda d, t: d.__setitem__("label_names", []),
    "vocab size 0": lambda d, t: d.__setitem__("vocab_size", 0),
    "unknown task": lambda d, t: d.__setitem__("task", "ranking"),
    "missing split": lambda d, t: d.pop("X_test"),
    "multi-label without its columns": lambda d, t: d.__setitem__("task", "multilabel"),
    "empty split": lambda d, t: [d.__setitem__(f"{k}_val", d[f"{k}_val"][:0]) for k in ("X", "lengths", "y")],
}


@_settings(30)
@given(edits=st.lists(st.sampled_from(sorted(EDITS)), min_size=1, max_size=3, unique=True))
def test_edited_dataset_contents(tmp_path_factory, dataset_bytes, edits):
    import torch

    from rnnkit.errors import RnnkitError

    data = torch.load(io.BytesIO(dataset_bytes), weights_only=True)
    for edit in edits:
        EDITS[edit](data, torch)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    with pytest.raises(RnnkitError, match=r"dataset.pt is inconsistent: .* — re-run `rnnkit tokenize --force`"):
        _load(tmp_path_factory, buffer.getvalue())


# --------------------------------------------------------------------------- tune journal lines

CREATE = b'{"op_code":0,"worker_id":"w-1","study_name":"s","directions":[2]}\n'


@_settings(30)
@given(lines=st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                                st.sampled_from([b"[]", b"{}", b'{"op_code": "0"}', b"null", b"1", b'"x"'])),
                      min_size=1, max_size=3))
def test_junk_lines_in_a_journal(tmp_path_factory, lines):
    from rnnkit.artifacts import artifact_paths
    from rnnkit.errors import RnnkitError
    from rnnkit.tuning.storage import open_storage

    root = tmp_path_factory.mktemp("journal")
    paths = artifact_paths(root)
    path = paths.tune / "s.journal"
    path.parent.mkdir(parents=True)
    junk = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)
    path.write_bytes(CREATE + junk)
    try:
        storage = open_storage(paths, None, "s")
    except RnnkitError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:  # only blank lines or real operations can be read
        storage.get_all_studies()
