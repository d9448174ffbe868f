"""Where the training loop reports its progress: rich bars here, nothing, or another process.

`fit` (loop.py) calls four methods and knows nothing about how they are shown:

    start_epoch(epoch, epochs, batches)   a new epoch of `batches` batches begins
    advance(done, stats)                  `done` batches finished; stats: running loss and metric
    end_epoch(epoch, epochs, summary, seconds)
    note(text)                            a one-off message ("embeddings unfrozen", "early stop")

`RichEpochBars` is what `rnnkit train` shows: one bar per epoch on stderr. `Quiet` shows
nothing (benchmarks, tests). `rnnkit tune --jobs N` trains trials in worker processes, whose
reports travel to the parent through a queue (tuning/workers.py) and are drawn there, one
bar per worker, so that N processes never draw over each other.
"""

from __future__ import annotations

import contextlib


class Quiet(contextlib.AbstractContextManager):
    """Reports nothing."""

    def __exit__(self, *exc) -> None:
        return None

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def advance(self, done: int, stats: str) -> None:
        pass

    def end_epoch(self, epoch: int, epochs: int, summary: str, seconds: float) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class RichEpochBars(Quiet):
    """One rich progress bar per epoch on stderr, with running loss and metric.

    Off a terminal (logs, CI) rich draws the bars only when they close, so each epoch also
    gets a plain log line.
    """

    def __enter__(self):
        from rnnkit.console import training_progress

        self._bar = training_progress()
        self._bar.__enter__()
        self._task = None
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        self._task = self._bar.add_task(f"epoch {epoch}/{epochs}", total=batches, stats="")

    def advance(self, done: int, stats: str) -> None:
        self._bar.update(self._task, completed=done, stats=stats)

    def end_epoch(self, epoch: int, epochs: int, summary: str, seconds: float) -> None:
        from rnnkit.console import err_console

        self._bar.update(self._task, stats=summary)
        if not err_console.is_terminal:
            err_console.print(f"epoch {epoch}/{epochs}: {summary}  ({seconds:.1f} s)")

    def note(self, text: str) -> None:
        from rnnkit.console import err_console

        err_console.print(text)


def resolve(progress) -> Quiet:
    """fit's `progress` argument: True (rich bars), False (nothing) or a reporter object."""
    if progress is True:
        return RichEpochBars()
    if progress is False or progress is None:
        return Quiet()
    return progress
