"""Fault injection (issue 16): run an rnnkit command in a forked child that counts every change
it makes to the file system under an artifacts folder ("write points") and, at the N-th, sends
itself a signal (SIGKILL, SIGINT or SIGTERM) just before the change happens.

A write point is a call of one of the primitives every write of rnnkit goes through: creating or
opening a file for writing, renaming, deleting, making a folder, removing a tree. Counting first
(no signal) lists the points a command passes; each is then a place to kill it. The injection is
exact, not timed: the N-th point of a deterministic command is the same in every run.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass(frozen=True)
class Outcome:
    status: int  # the exit code, or minus the signal that ended the process
    stdout: str
    stderr: str
    points: list[tuple[str, str]]  # (primitive, path relative to the artifacts folder) passed


class _Injector:
    def __init__(self, root: Path, kill_at: int | None, signum: int | None):
        self.root = str(Path(root).resolve())
        self.kill_at, self.signum = kill_at, signum
        self.points: list[tuple[str, str]] = []
        self.depth = 0  # inside a primitive: its own inner calls are not points of their own

    def _under_root(self, path) -> str | None:
        if isinstance(path, int):
            return None
        try:
            full = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return None
        if full == self.root or full.startswith(self.root + os.sep):
            return os.path.relpath(full, self.root)
        return None

    def point(self, primitive: str, path) -> None:
        rel = self._under_root(path)
        if rel is None or self.depth:
            return
        self.points.append((primitive, rel))
        if self.kill_at is not None and len(self.points) == self.kill_at:
            os.kill(os.getpid(), self.signum)

    def wrap(self, primitive: str, original, *, writes=lambda *a, **k: True):
        def wrapped(path, *args, **kwargs):
            if writes(*args, **kwargs):
                self.point(primitive, path)
            self.depth += 1
            try:
                return original(path, *args, **kwargs)
            finally:
                self.depth -= 1
        return wrapped

    def install(self) -> None:
        def opens_for_writing(mode="r", *args, **kwargs):
            return any(c in mode for c in "wax+")

        def os_open_writes(flags, *args, **kwargs):
            return bool(flags & _WRITE_FLAGS)

        builtins.open = io.open = self.wrap("open", io.open, writes=opens_for_writing)
        os.open = self.wrap("os.open", os.open, writes=os_open_writes)
        for name in ("replace", "rename", "unlink", "remove", "rmdir", "mkdir", "symlink", "link", "truncate"):
            setattr(os, name, self.wrap(name, getattr(os, name)))
        shutil.rmtree = self.wrap("rmtree", shutil.rmtree)
        shutil.copytree = self.wrap("copytree", shutil.copytree)


def run_command(args: list, root: Path, *, kill_at: int | None = None, signum: int = signal.SIGKILL,
                scratch: Path) -> Outcome:
    """Run `rnnkit ARGS` (with --artifacts ROOT) in a forked child; kill it at write point `kill_at`."""
    scratch.mkdir(parents=True, exist_ok=True)
    out, err, log = scratch / "stdout", scratch / "stderr", scratch / "points.json"
    for f in (out, err, log):
        f.unlink(missing_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            for fd, path in ((1, out), (2, err)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            import torch

            torch.set_num_threads(1)
            from rnnkit.cli import app

            injector = _Injector(root, kill_at, signum)
            points = injector.points
            injector.install()
            try:
                app([str(a) for a in args] + ["--artifacts", str(root)], prog_name="rnnkit")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os.write(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                         json.dumps(points).encode())
        except BaseException:  # noqa: BLE001 - report and leave the child
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    points = [tuple(p) for p in json.loads(log.read_text())] if log.exists() else []
    return Outcome(code, out.read_text(errors="replace"), err.read_text(errors="replace"), points)


def in_parallel(cases: list, check, *, workers: int | None = None, timeout: float = 600.0) -> list[str]:
    """Run `check(case)` for every case, each in a forked process, `workers` at a time (the
    machine's cores, at most 4); returns one message per case that failed (its assertion, or why
    it died). The cases are independent (each works on its own copy of the artifacts)."""
    import time
    import traceback

    workers = workers or max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                    else os.cpu_count() or 1))
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, float, Path]] = {}  # pid -> (case index, start, report file)
    failures: list[str] = []
    import tempfile

    reports = Path(tempfile.mkdtemp(prefix="rnnkit-faults-"))
    while pending or running:
        while pending and len(running) < workers:
            index, case = pending.pop(0)
            report = reports / f"{index}.txt"
            sys.stdout.flush(), sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    check(case)
                    code = 0
                except BaseException:  # noqa: BLE001 - the parent reports it
                    report.write_text(traceback.format_exc(limit=3))
                os._exit(code)
            running[pid] = (index, time.monotonic(), report)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.05)
            for worker, (_, started, _) in list(running.items()):
                if time.monotonic() - started > timeout:
                    os.kill(worker, signal.SIGKILL)
            continue
        if pid not in running:
            continue  # (a grandchild reaped by its own parent is never ours)
        index, _, report = running.pop(pid)
        if status != 0:
            why = report.read_text() if report.exists() else f"the check process ended with status {status}"
            failures.append(f"case {cases[index]}: {why.strip().splitlines()[-1]}\n{why}")
    shutil.rmtree(reports, ignore_errors=True)
    return failures
