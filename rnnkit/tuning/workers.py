"""`rnnkit tune --jobs N`: N trials at once, each in a worker process of its own.

Why processes. On a CPU one recurrent trial uses extra cores badly: each time step is a
small matrix product, so a second intra-op thread speeds an epoch up far less than twice,
while two trials side by side, one core each, train twice the epochs in the same time
(BENCHMARKS.md, "Tuning on the sample"). Threads in one process would not do: they share
torch's global random generator, so one trial's dropout masks would depend on what the
other drew, and a trial would no longer be reproducible from its seed. A process per worker
keeps every trial exactly what it would be alone.

How it works.
* The parent (the tune stage) has opened the study and checked its settings. It starts N
  workers with multiprocessing's spawn (a fresh interpreter: safe with torch's thread pools);
  each loads a Search (tuning/search.py) from the same StudySpec: it loads dataset.pt and
  opens the same storage itself. Optuna's storages are made for several processes: the
  journal file takes a lock for each write, a database has transactions.
* The trials of this call are tickets in a shared counter. A worker takes one before each
  trial and stops when none is left, or once --timeout has passed. So exactly --trials
  trials are added however long each takes, and no worker idles while another still has
  several to do.
* Workers send their progress, messages and finished trials through a queue; the parent
  draws one progress bar per worker and prints a line per finished trial.
* Ctrl-C. A terminal sends SIGINT to the whole process group; the workers ignore it and the
  parent stops each with SIGTERM, which a worker turns into KeyboardInterrupt inside its
  trial, so that Optuna records the trial as FAIL exactly as in one process. A worker whose
  parent is killed (kill -9) dies with it (Linux: PR_SET_PDEATHSIG; elsewhere it notices
  within a second), and the next `rnnkit tune` marks its RUNNING trial FAIL
  (storage.fail_orphaned_trials).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import RnnkitError
from rnnkit.training.progress import Quiet
from rnnkit.tuning.search import Search, StudySpec
from rnnkit.tuning.storage import fail_orphaned_trials

# Seconds a worker may take to stop after SIGTERM (it finishes recording its trial) before
# it is killed.
STOP_GRACE = 60.0
# Memory one CPU worker may hold at its peak, growing over a search as freed memory is kept
# for reuse (training.device.keep_freed_memory): BENCHMARKS.md, "Tuning on the sample". The
# default --jobs leaves each worker this much.
WORKER_MEMORY = 3 << 30


def available_memory() -> int | None:
    """Bytes of memory that new processes can have now, or None where that cannot be asked.

    Linux's MemAvailable counts the page cache the kernel would give back; the free pages
    alone (sysconf's SC_AVPHYS_PAGES, the fallback on other Unixes) can be a small part of it
    on a machine that has read large files.
    """
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_jobs(jobs: int | None, threads: int | None, device, trials: int, *,
                 memory: int | None = None) -> tuple[int, int | None]:
    """(trials trained at once, CPU threads for each) for --jobs and --threads.

    On the CPU, --threads (default: torch's thread count, which follows OMP_NUM_THREADS) is
    the whole call's budget, and by default each trial gets one of those threads: one
    recurrent trial uses extra cores badly, side-by-side trials use them fully (see the
    module's docstring). The default also leaves each worker WORKER_MEMORY of the `memory`
    free now. On CUDA one trial at a time has the GPU. Never more jobs than trials. (`jobs`
    is at least 1: the tune stage's Options check it.)
    """
    import torch

    budget = threads if threads is not None else torch.get_num_threads()
    if jobs is None:
        jobs = 1 if device.type == "cuda" else budget
        if device.type == "cpu" and memory is not None:
            jobs = min(jobs, max(1, memory // WORKER_MEMORY))
    jobs = max(1, min(jobs, trials))
    if jobs == 1:
        return 1, threads
    return jobs, max(1, budget // jobs) if device.type == "cpu" else threads


@dataclass
class WorkerSpec:
    index: int  # 0-based; shown 1-based
    root: str  # the artifacts folder
    study: StudySpec
    input_hashes: dict[str, str]  # the inputs as the parent checked them
    threads: int | None  # CPU threads of this worker
    parent: int  # the parent's pid
    deadline: float | None  # time.time() after which no trial starts (--timeout)


# --------------------------------------------------------------------------- in the worker


class QueueProgress(Quiet):
    """fit's progress reports (training/progress.py), sent to the parent instead of drawn."""

    def __init__(self, events, index: int):
        self.events, self.index = events, index

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        self.events.put(("epoch", self.index, (epoch, epochs, batches)))

    def advance(self, done: int, stats: str) -> None:
        self.events.put(("advance", self.index, (done, stats)))

    def end_epoch(self, epoch: int, epochs: int, summary: str, seconds: float) -> None:
        self.events.put(("epoch_end", self.index, (epoch, epochs, summary, seconds)))

    def note(self, text: str) -> None:
        self.events.put(("note", self.index, text))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    """End this process when the parent goes, even by SIGKILL, which the parent cannot pass on."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # everywhere else: a look every second
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:  # gone before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="rnnkit-parent-watch").start()


def _take_ticket(tickets, deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return False
    with tickets.get_lock():
        if tickets.value <= 0:
            return False
        tickets.value -= 1
        return True


def worker_main(spec: WorkerSpec, tickets, events) -> None:
    """A worker process: open the study, then train trials while tickets last."""
    _die_with_parent(spec.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from rnnkit.artifacts import artifact_paths

        search = Search.load(artifact_paths(spec.root), spec.study, input_hashes=spec.input_hashes,
                             threads=spec.threads)
        search.open_study(create=False)
        while _take_ticket(tickets, spec.deadline):
            search.run(1, progress=QueueProgress(events, spec.index),
                       on_trial_start=lambda number: events.put(("trial_start", spec.index, number)),
                       on_trial=lambda row, best: events.put(("trial", spec.index, (row, best))))
        events.put(("done", spec.index, None))
    except KeyboardInterrupt:
        events.put(("stopped", spec.index, None))
    except RnnkitError as exc:
        events.put(("error", spec.index, str(exc)))
        sys.exit(2)
    except BaseException:
        events.put(("crash", spec.index, traceback.format_exc()))
        sys.exit(1)


# --------------------------------------------------------------------------- in the parent


class Board:
    """The parent's view of its workers: one progress bar each, and a line per finished trial."""

    def __init__(self, jobs: int, on_trial: Callable | None):
        from rnnkit.console import err_console, training_progress

        self.console = err_console
        self.bar = training_progress(transient=True)
        self.on_trial = on_trial
        self.tasks = [self.bar.add_task(f"worker {i + 1}: starting", total=None, stats="") for i in range(jobs)]
        self.trial: list[int | None] = [None] * jobs

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def _above_bars(self, show: Callable[[], None]) -> None:
        """Run `show`, which prints to stdout, without drawing over the bars on the terminal.

        Rich keeps its live bars clear of what goes through their own console (stderr here),
        but another console writes straight to its file. When both are the terminal, the
        lines are captured and printed through the bars' console instead.
        """
        from rich.text import Text

        from rnnkit.console import console

        if not (console.is_terminal and self.console.is_terminal):
            show()
            return
        with console.capture() as captured:
            show()
        self.console.print(Text.from_ansi(captured.get().rstrip("\n")), soft_wrap=True)

    def handle(self, kind: str, index: int, payload) -> None:
        task = self.tasks[index]
        name = f"worker {index + 1}"
        if kind == "trial_start":
            self.trial[index] = payload
            self.bar.update(task, description=f"{name}: trial {payload}", completed=0, total=None, stats="")
        elif kind == "epoch":
            epoch, epochs, batches = payload
            self.bar.reset(task, total=batches, description=f"{name}: trial {self.trial[index]} epoch {epoch}/{epochs}")
        elif kind == "advance":
            done, stats = payload
            self.bar.update(task, completed=done, stats=stats)
        elif kind == "epoch_end":
            epoch, epochs, summary, seconds = payload
            self.bar.update(task, stats=summary)
            if not self.console.is_terminal:  # logs: rich draws the bars only at the end there
                self.console.print(f"trial {self.trial[index]} epoch {epoch}/{epochs}: {summary}  ({seconds:.1f} s)")
        elif kind == "note":
            self.console.print(f"trial {self.trial[index]}: {payload}")
        elif kind == "trial":
            row, best = payload
            self.bar.update(task, description=f"{name}: trial {row.number} {row.state.lower()}")
            if self.on_trial is not None:
                self._above_bars(lambda: self.on_trial(row, best))
        elif kind in ("done", "stopped"):
            self.bar.update(task, description=f"{name}: {kind}", stats="")


def run(search: Search, *, trials: int, timeout: float | None, jobs: int, threads: int | None,
        on_trial: Callable | None = None) -> None:
    """Add `trials` trials to `search`'s study with `jobs` worker processes (none starts after
    `timeout` seconds).

    A worker killed from outside (the kernel's out-of-memory killer, say) says nothing: it is
    noticed by its exit code, its trial is marked FAIL and the others take its tickets. If
    every worker dies, that is an error.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    tickets = context.Value("i", trials)
    deadline = None if timeout is None else time.time() + timeout
    procs = [context.Process(target=worker_main, name=f"rnnkit-tune-{i + 1}",
                             args=(WorkerSpec(i, str(search.paths.root), search.spec, search.input_hashes, threads,
                                              os.getpid(), deadline), tickets, events))
             for i in range(jobs)]
    for proc in procs:
        proc.start()
    ended: set[int] = set()  # workers that said their last word, or died
    died: list[str] = []  # "worker N (exit code C)"
    failure: tuple[str, int, str] | None = None
    try:
        with Board(jobs, on_trial) as board:
            while len(ended) < jobs:
                try:
                    kind, index, payload = events.get(timeout=0.5)
                except queue.Empty:
                    for i, proc in enumerate(procs):
                        if i not in ended and proc.exitcode is not None:
                            ended.add(i)
                            died.append(f"worker {i + 1} (exit code {proc.exitcode})")
                            board.console.print(f"{died[-1]} died; its running trial will be marked FAIL, and "
                                                f"the workers left take the trials it had not started")
                    continue
                board.handle(kind, index, payload)
                if kind in ("done", "stopped", "error", "crash"):
                    ended.add(index)
                    if kind in ("error", "crash") and failure is None:
                        failure = (kind, index, payload)
                        _stop(procs)  # a bug or a bad setting: the other trials would meet it too
    except KeyboardInterrupt:
        _stop(procs)
        _drain_until_exit(procs, events)
        raise
    for proc in procs:
        proc.join(timeout=STOP_GRACE)
        if proc.is_alive():
            proc.kill()
    if died:
        fail_orphaned_trials(search.study)
        if len(died) == jobs:
            raise RnnkitError(f"every tuning worker died ({', '.join(died)}), {tickets.value} trial(s) not run — "
                              f"out of memory? Try fewer at once with --jobs, or --jobs 1")
    if failure is not None:
        kind, index, message = failure
        if kind == "error":
            raise RnnkitError(message)
        raise RuntimeError(f"tuning worker {index + 1} failed:\n{message}")


def _stop(procs) -> None:
    for proc in procs:
        if proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _drain_until_exit(procs, events) -> None:
    """Wait for stopped workers to record their trials and exit; kill those that do not.

    The queue is read meanwhile: a process that has put items on a multiprocessing queue
    does not exit until they are read. A second Ctrl-C kills the workers at once.
    """
    end = time.monotonic() + STOP_GRACE
    try:
        while any(p.is_alive() for p in procs) and time.monotonic() < end:
            try:
                events.get(timeout=0.2)
            except queue.Empty:
                pass
    except KeyboardInterrupt:
        pass
    for proc in procs:
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)
