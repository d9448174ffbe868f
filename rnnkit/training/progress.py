"""Where the training loop reports its progress: rich bars here, nothing, or another process.

`fit` (loop.py) calls four methods and knows nothing about how they are shown:

    start_epoch(epoch, epochs, batches)   a new epoch of `batches` batches begins
    advance(done, stats)                  `done` batches finished; stats: running loss and metric
    end_epoch(epoch, epochs, summary, seconds)
    note(text)                            a one-off message ("embeddings unfrozen", "early stop")

`RichEpochBars` is what `rnnkit train` shows: one bar per epoch on stderr (one line per
epoch off a terminal). `Quiet` shows nothing (benchmarks, tests, `--quiet`). `rnnkit tune
--jobs N` trains trials in worker processes, whose reports travel to the parent through a
queue (tuning/workers.py) and are drawn there, one bar per worker, so that N processes never
draw over each other.
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
    """One progress row per epoch on stderr (rnnkit/console.py's ProgressRow), with the running
    loss and metric, then the epoch's summary and training time.

    Off a terminal (a pipe, a log, CI) there are no bars: each epoch is one plain line once it
    ends. (Rich would draw the bars there only when the display closes, all of them at once,
    so every epoch would show twice.)
    """

    def __enter__(self):
        from rnnkit.console import err_console, training_progress

        self._console = err_console
        self._bar = training_progress() if err_console.is_terminal else None
        if self._bar is not None:
            self._bar.__enter__()
        self._task = None
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(epoch_label(epoch, epochs), total=batches, stats="")

    def advance(self, done: int, stats: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, stats=stats)

    def end_epoch(self, epoch: int, epochs: int, summary: str, seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, stats=summary, seconds=seconds)
        else:
            self._console.print(epoch_line(epoch, epochs, summary, seconds), highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        self._console.print(text, highlight=False)


def epoch_label(epoch: int, epochs: int) -> str:
    """`epoch  3/10`: padded, so that the rows of a run line up."""
    return f"epoch {epoch:>{len(str(epochs))}}/{epochs}"


def epoch_line(epoch: int, epochs: int, summary: str, seconds: float) -> str:
    """A finished epoch as one plain line, as its progress row reads without the bar."""
    from rnnkit.console import duration

    return f"{epoch_label(epoch, epochs)} {duration(seconds):>5}  {summary}"


def resolve(progress) -> Quiet:
    """fit's `progress` argument: True (rich bars; nothing under --quiet), False (nothing) or a
    reporter object."""
    if progress is True:
        from rnnkit.console import is_quiet

        return Quiet() if is_quiet() else RichEpochBars()
    if progress is False or progress is None:
        return Quiet()
    return progress
