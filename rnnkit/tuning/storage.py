"""Where a study lives: an Optuna journal file (the default) or a database, and the trials
that killed workers leave behind in it."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from pathlib import Path

from rnnkit.artifacts import ArtifactPaths, pid_alive
from rnnkit.errors import RnnkitError


def journal_path(paths: ArtifactPaths, study: str) -> Path:
    return paths.tune / f"{study}.journal"


def storage_label(paths: ArtifactPaths, storage: str | None, study: str) -> str:
    """Where the study lives, for messages and the manifest (never a password)."""
    if storage is None:
        return str(journal_path(paths, study))
    if "://" not in storage:
        return storage
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage.split("@")[-1]


def open_storage(paths: ArtifactPaths, storage: str | None, study: str):
    """The Optuna storage: a journal file (default, or a path), or a database URL.

    Databases get a heartbeat: a worker killed on another machine leaves a RUNNING trial
    that the others mark FAIL once its heartbeat is older than the grace period.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is None or "://" not in storage:
        path = journal_path(paths, study) if storage is None else Path(storage)
        if path.is_dir():
            raise RnnkitError(f"--storage {path} is a folder — give a journal file's path or a database URL")
        path.parent.mkdir(parents=True, exist_ok=True)
        check_journal(path)
        try:
            return JournalStorage(JournalFileBackend(str(path), lock_obj=_journal_lock(path)))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            raise RnnkitError(f"{path} is not a readable Optuna journal ({reason}) — {_JOURNAL_FIX}") from None

    import sqlalchemy.exc

    label = storage_label(paths, storage, study)
    url = _with_installed_driver(storage)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" (since Optuna 2.9)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                                  heartbeat_interval=60, grace_period=180)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers that start together on an empty database race to create Optuna's
            # tables; PostgreSQL's CREATE TABLE IF NOT EXISTS is not atomic, so the loser
            # fails with a duplicate key. The tables exist by then: try again.
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
        except ImportError as exc:
            raise RnnkitError(f"--storage {label}: the database driver is missing ({exc}) — "
                              f"pip install 'rnnkit[postgres]' (psycopg2-binary) for postgresql://") from None
        except (ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise RnnkitError(f"cannot open --storage {label} ({reason}) — check the URL, that the "
                              f"database server is running and that the user may connect") from None
    raise AssertionError("unreachable")


class _FlockJournalLock:
    """Optuna's journal-file lock as an fcntl lock on tune/.<study>.journal.flock.

    The system drops it when its holder dies, however it dies, so a killed `tune` never leaves
    the next one waiting. (Optuna's default, a symlink beside the journal, outlives a killed
    holder and makes every later writer sleep through its 30 s grace period first.) Tuning
    workers and threads each open their own descriptor, so they exclude one another. The file
    is made at the first write and stays: deleting a lock file would race with a process about
    to lock it. On a file system without fcntl locks, Optuna's symlink lock takes over.
    """

    def __init__(self, journal: Path):
        self.journal = journal
        self.path = journal.parent / f".{journal.name}.flock"
        self.fd: int | None = None
        self.fallback = None

    def acquire(self) -> bool:
        import errno
        import fcntl

        if self.fallback is not None:
            return self.fallback.acquire()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            from optuna.storages.journal import JournalFileSymlinkLock

            self.fallback = JournalFileSymlinkLock(str(self.journal))
            return self.fallback.acquire()
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fallback is not None:
            self.fallback.release()
            return
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


def _journal_lock(path: Path):
    """The lock Optuna takes around each journal write: an fcntl one where there is fcntl (not
    on Windows: there, Optuna's own symlink lock)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return None
    return _FlockJournalLock(path)


_JOURNAL_FIX = "restore it from a backup, or start a new study with --study NAME"


def check_journal(path: Path) -> None:
    """Each complete line of a journal file is one Optuna operation (a JSON object with an
    op_code): else one RnnkitError naming the line. A last line without its newline is left
    alone: a worker may be writing it (Optuna skips it too)."""
    import json

    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break
            try:
                entry = json.loads(line)
            except ValueError:  # not JSON, or not UTF-8
                entry = None
            if not (isinstance(entry, dict) and isinstance(entry.get("op_code"), int)
                    and not isinstance(entry.get("op_code"), bool)):
                shown = line.decode("utf-8", "replace").strip()
                shown = (shown[:40] + "...") if len(shown) > 40 else shown
                raise RnnkitError(f"{path} line {number} is not a study journal entry ({shown!r}) — delete that "
                                  f"line, or start a new study with --study NAME")


def _with_installed_driver(url: str) -> str:
    """A postgresql:// URL with a driver named when SQLAlchemy's default one is not installed.

    SQLAlchemy 2.1 made psycopg (version 3) the default driver of postgresql:// URLs, where
    2.0 used psycopg2; `rnnkit[postgres]` installs psycopg2-binary. Naming the installed
    driver lets the same plain URL work with either version. An explicit driver
    (postgresql+psycopg://...) is left alone.
    """
    import importlib.util

    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql://{rest}"
    return url


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphaned_trials(study, *, worker: str | None = None) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker was on this host and is gone (killed).

    A killed process cannot tell the storage that its trial stopped, and the journal
    storage has no heartbeat, so such a trial would stay RUNNING for ever. Each trial
    records host:pid when it starts; a RUNNING trial from this host whose process no
    longer exists is certainly dead. Trials of other hosts are left alone (their workers
    may be alive); database storage handles those through its heartbeat.

    With `worker` (this process's host:pid), fail that worker's RUNNING trials instead:
    after a Ctrl-C that landed while Optuna was recording a finished trial, Optuna itself
    cannot mark the trial FAIL.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get("worker", ""))
        worker_host, _, pid = owner.rpartition(":")
        if worker is not None:
            if owner != worker:
                continue
        elif worker_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        with contextlib.suppress(UpdateFinishedTrialError):  # another worker did it first
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
    return failed
