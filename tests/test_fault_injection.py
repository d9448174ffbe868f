"""Fault injection (issue 16): every stage killed at every write point it passes.

Each stage's command is first run to the end with every file-system change under the artifacts
folder counted (tests/write_points.py); then, for each distinct write point and each of SIGKILL,
SIGINT and SIGTERM, a fresh copy of the artifacts is made, the command is run in a forked child
that sends itself the signal just before that change, and the outcome is judged:

1. the killed command printed no traceback;
2. what it left is the previous consistent state or one the next command refuses in one line
   (`rnnkit runs` always works, the stage's consumer works or refuses in one line);
3. running the stage again repairs it (or refuses in one line naming a fix that works), after
   which every output the manifest records has its recorded digest, no temporary file, unfinished
   run or stale lock is left, and the consumer works.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import TINY_EMBED, TINY_TRAIN, ok, run_cli
from write_points import Outcome, in_parallel, run_command

from rnnkit.artifacts import sha256_file

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
TINY_SPACE = 'embedding_dim = 16\nhidden_dim = { choices = [8, 12] }\nlr = { low = 1e-3, high = 1e-2, log = true }\n'


@dataclass(frozen=True)
class Stage:
    command: list[str]  # run with --artifacts ROOT
    probe: list[str]  # a command that uses what the stage writes: after a kill it works or refuses in one line
    base: str = "trained"  # which prepared artifacts folder it starts from
    final: list[list[str]] = field(default_factory=list)  # what must work once the stage ran again


STAGES = {
    # A new prepare over an existing pipeline (another validation split): its old outputs are the
    # previous consistent state.
    "prepare": Stage(["prepare", "imdb", "--sample", "--val-size", "0.2"], ["tokenize", "--max-length", "48"]),
    "tokenize": Stage(["tokenize", "--max-length", "48"], [*TINY_TRAIN, "--name", "probe", "--force"]),
    "embed": Stage(TINY_EMBED, [*TINY_TRAIN, "--name", "probe", "--force", "--embeddings", "artifacts:embeddings.pt"]),
    "train": Stage([*TINY_TRAIN, "--name", "new"], ["evaluate", "--run", "new"]),
    # --force over a finished run: at every point, the old run or the new one is in place and works.
    "train --force": Stage([*TINY_TRAIN, "--name", "tiny", "--force", "--dropout", "0.1"],
                           ["evaluate", "--run", "tiny"]),
    "evaluate": Stage(["evaluate", "--run", "tiny"], ["evaluate", "--run", "tiny", "--compare"]),
    # The search only: the final training of the best trial is `train`'s code, killed above.
    "tune": Stage(["tune", "--trials", "1", "--epochs-per-trial", "1", "--final-epochs", "0", "--space", "space:",
                   "--study", "st", "--threads", "1", "--model", "bilstm-pool"],
                  ["tune", "--trials", "0", "--epochs-per-trial", "1", "--final-epochs", "0", "--space", "space:",
                   "--study", "st", "--threads", "1", "--model", "bilstm-pool"]),
    "runs rm": Stage(["runs", "rm", "tiny", "--yes"], ["predict", "great film"], base="two runs"),
    "ablate-gates": Stage(["ablate-gates", "--run", "scratch"], ["runs"], base="two runs"),
}


def _normalised(point: tuple[str, str]) -> tuple[str, str]:
    """A write point without the random parts of its path (a temporary file's pid and suffix, the
    uuid of optuna's lock renames), so that the same step of two runs compares equal."""
    primitive, path = point
    path = re.sub(r"\.tmp-\d+-[0-9a-f]+$", ".tmp", path)
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", path)
    return primitive, path


def distinct_points(points: list[tuple[str, str]]) -> list[int]:
    """1-based indices of the first occurrence of each distinct write point: a step repeated with
    the same primitive on the same file (a journal append per trial event, a folder made again
    before each write into it) is killed once."""
    seen, kept = set(), []
    for i, point in enumerate(points, start=1):
        key = _normalised(point)
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return kept


# --------------------------------------------------------------------------- judging


def _resolve(args: list[str], root: Path, space: Path) -> list[str]:
    out = []
    for a in args:
        a = str(a)
        if a.startswith("artifacts:"):
            a = str(root / a.removeprefix("artifacts:"))
        elif a == "space:":
            a = str(space)
        out.append(a)
    return [*out, "--artifacts", str(root)]


def one_line_refusal(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2 and lines and lines[-1].startswith("error: ") and sum(
        line.startswith("error: ") for line in lines) == 1, result.output
    return lines[-1]


def works_or_refuses(args: list[str]):
    result = run_cli(args)
    if result.exit_code != 0:
        one_line_refusal(result)
    return result


def recorded_outputs_differing(root: Path) -> list[str]:
    manifest = json.loads((root / "manifest.json").read_text())
    differing = []
    for key, entry in manifest["stages"].items():
        for rel, digest in entry.get("outputs", {}).items():
            path = root / rel
            if not path.is_file() or sha256_file(path) != digest:
                differing.append(f"{key}: {rel}")
    return differing


def leftovers(root: Path) -> list[str]:
    """Temporary files, unfinished or superseded runs, Optuna symlink locks, and locks that some
    process still holds. (A lock file a SIGKILL left behind is no lock: the system released it.)"""
    import fcntl

    found = []
    for path in root.rglob("*"):
        name = path.name
        if re.search(r"\.tmp-\d+-[0-9a-f]+$", name) or name.endswith((".partial", ".old")):
            found.append(str(path.relative_to(root)))
        elif re.search(r"\.journal\.lock", name):
            found.append(str(path.relative_to(root)))
        elif name.endswith((".lock", ".flock")) and path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found.append(f"{path.relative_to(root)} (held)")
            finally:
                os.close(fd)
    return sorted(found)


def repair(args: list[str]) -> None:
    """Run the stage again: it works, or it refuses in one line naming a command (`rnnkit ...`)
    that does. (A run killed after its first epoch is kept; the refusal says to --resume it.)"""
    result = run_cli(args)
    if result.exit_code == 0:
        return
    line = one_line_refusal(result)
    if "already exists" in line:  # the killed run had finished and been recorded: nothing to repair
        return
    fixes = re.findall(r"`rnnkit ([^`]+)`", line)
    assert fixes, line
    fix = fixes[0].split()
    ok([*fix, *args[args.index("--artifacts"):]] if "--artifacts" not in fix else fix)


def judge(stage: Stage, outcome: Outcome, root: Path, space: Path, where: str) -> None:
    assert "Traceback" not in outcome.stderr + outcome.stdout, f"{where}: {outcome.stderr}"
    assert outcome.status in (-signal.SIGKILL, -signal.SIGTERM, 0, 130), f"{where}: exit {outcome.status}"
    if outcome.status == 130:
        assert outcome.stderr.rstrip().endswith("interrupted"), f"{where}: {outcome.stderr}"
    listing = run_cli(["runs", "--artifacts", root])
    assert listing.exit_code == 0, f"{where}: runs: {listing.output}"
    works_or_refuses(_resolve(stage.probe, root, space))
    repair(_resolve(stage.command, root, space))
    assert recorded_outputs_differing(root) == [], where
    assert leftovers(root) == [], where
    ok(_resolve(stage.probe, root, space))


# --------------------------------------------------------------------------- the grid


@pytest.fixture(scope="module")
def bases(trained_pipeline, tmp_path_factory) -> dict[str, Path]:
    two = tmp_path_factory.mktemp("faults") / "artifacts"
    shutil.copytree(trained_pipeline, two)
    ok([*TINY_TRAIN, "--model", "lstm-scratch", "--name", "scratch", "--artifacts", two])
    return {"trained": trained_pipeline, "two runs": two}


@pytest.mark.parametrize("stage_name", list(STAGES))
def test_a_kill_at_any_write_point_leaves_a_state_the_next_run_repairs(stage_name, bases, tmp_path):
    stage = STAGES[stage_name]
    space = tmp_path / "space.toml"
    space.write_text(TINY_SPACE)

    def fresh(name: str) -> Path:
        root = tmp_path / name / "artifacts"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(bases[stage.base], root)
        return root

    root = fresh("counted")
    counted = run_command(_resolve(stage.command, root, space)[:-2], root, scratch=tmp_path / "counted" / "child")
    assert counted.status == 0, counted.stderr
    kill_points = distinct_points(counted.points)
    assert len(kill_points) >= 8, counted.points  # every stage locks, writes and records
    cases = [(index, signal_name) for index in kill_points for signal_name in SIGNALS]

    def kill_and_judge(case) -> None:
        index, signal_name = case
        root = fresh(f"{signal_name}-{index}")
        where = f"{stage_name}: {signal_name} before write point {index} {counted.points[index - 1]}"
        outcome = run_command(_resolve(stage.command, root, space)[:-2], root, kill_at=index,
                              signum=SIGNALS[signal_name], scratch=root.parent / "child")
        judge(stage, outcome, root, space, where)
        shutil.rmtree(root.parent)

    failures = in_parallel(cases, kill_and_judge)
    assert not failures, f"{len(failures)} of {len(cases)} kills failed:\n" + "\n".join(failures)
