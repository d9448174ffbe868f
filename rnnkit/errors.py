"""The one exception type the library raises for problems a user can fix.

Messages name the bad value and the fix ("no dataset.pt in artifacts/ — run
`rnnkit tokenize` first"). Only the CLI prints them, as one line, and exits non-zero.

Also the one way a stop from outside ends a command: SIGTERM becomes KeyboardInterrupt, as
Ctrl-C does (`sigterm_as_interrupt`).
"""

import contextlib


class RnnkitError(Exception):
    """A problem with the user's input or artifacts, with a message that says how to fix it."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's or `kill`'s stop) raises KeyboardInterrupt, as Ctrl-C does: a command
    cleans up what it was writing, and training keeps its finished epochs, resumable. Only in the
    main thread, where signals are delivered."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM back while a short step that must not be cut runs (putting a trained
    run in place); when one came meanwhile, raise KeyboardInterrupt once the step is done. Only
    in the main thread, where signals are delivered."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: pending.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if pending:
        raise KeyboardInterrupt
