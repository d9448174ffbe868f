"""A run folder's config.json: every setting of the run and where it stands.

    checkpoints/<run>/config.json
      format_version, run, status (running | finished | interrupted | failed), pid, created, updated,
      options (every `rnnkit train` option, defaults included), resolved (lr, epochs, patience,
      monitor as this data decided them), model, model_config, task, label_names, seed,
      versions (rnnkit, torch, python), data (dataset_sha256, tokenizer_sha256),
      epochs_run, best_epoch, best (the best epoch's metrics)

Written atomically when the run starts, after every epoch and when it ends, so that a folder
always says what it holds, even after a kill. `rnnkit train --config` reads the "options" of
one back; `rnnkit runs` lists them.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

from rnnkit.artifacts import write_json
from rnnkit.errors import RnnkitError

CONFIG_FORMAT = 1
CONFIG_FILE = "config.json"
STATE_FILE = "state.pt"  # the training state after the last finished epoch (training/loop.py fit's on_state)
RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"
STATUSES = (RUNNING, FINISHED, INTERRUPTED, FAILED)
# A run name is a folder name under checkpoints/: never a path ("..", "/", "") that reaches elsewhere.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_run_name(name: str, flag: str = "--name") -> str:
    """`name` if it is a run name; otherwise a one-line RnnkitError (it could name another folder)."""
    if not isinstance(name, str) or not RUN_NAME.match(name):
        raise RnnkitError(f"{flag} {name!r} is not a run name — use letters, digits, '.', '_' and '-', starting "
                          f"with a letter or digit (e.g. bilstm-pool-lr3e-4)")
    return name


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's config.json, or None for a folder without one (a run from before config.json)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RnnkitError(f"{path} is not readable JSON ({exc}) — the run folder is damaged; train it again") from None
    if not isinstance(data, dict) or data.get("format_version") != CONFIG_FORMAT:
        raise RnnkitError(f"{path} is not an rnnkit run config (format {CONFIG_FORMAT}) — train the run again")
    return data


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write config.json atomically, stamping format_version and the time."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    config = {"format_version": CONFIG_FORMAT, **config, "updated": now}
    config.setdefault("created", now)
    write_json(Path(run_dir) / CONFIG_FILE, config)


def versions() -> dict[str, str]:
    import platform

    import torch

    from rnnkit import __version__

    return {"rnnkit": __version__, "torch": torch.__version__, "python": platform.python_version()}


def options_from_file(path: Path) -> dict[str, Any]:
    """The train options a settings file holds: a run's config.json ("options"), a study's
    best_params.json ("final_options"), or a plain JSON object of options."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RnnkitError(f"--config {path}: no such file — give a run's config.json or a study's "
                          f"best_params.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RnnkitError(f"--config {path} is not readable JSON ({exc}) — give a run's config.json or a "
                          f"study's best_params.json") from None
    if isinstance(data, dict) and isinstance(data.get("options"), dict):
        return data["options"]
    if isinstance(data, dict) and isinstance(data.get("final_options"), dict):
        return data["final_options"]
    if isinstance(data, dict):
        return data
    raise RnnkitError(f"--config {path} holds no options object — give a run's config.json or a study's "
                      f"best_params.json")
