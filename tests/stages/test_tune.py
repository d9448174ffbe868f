"""`rnnkit tune` (rnnkit/stages/tune.py): search, resume, interruption, concurrent workers, bad input.

Every search trains tiny models (embedding 16, hidden 8 or 12, one epoch per trial; 32 and
48 where a trial must last long enough to be interrupted) on the sample tokenized to 64
tokens, with one thread, so that a trial takes about a second or less.
Subprocesses are used where a real second process matters: a killed worker, two workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support import ok, run_cli, snapshot

from rnnkit.tuning.storage import journal_path, open_storage, pid_alive

REPO = Path(__file__).resolve().parents[2]
TINY_SPACE = """\
embedding_dim = 16
hidden_dim = { choices = [8, 12] }
lr = { low = 1e-3, high = 1e-2, log = true }
"""
POSTGRES_URL = os.environ.get("RNNKIT_TEST_POSTGRES_URL")
# A child process that turns SIGINT into KeyboardInterrupt even when the test runner was
# started with SIGINT ignored (a background job of a non-interactive shell passes that on).
CHILD = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from rnnkit.cli import main; main()"


@pytest.fixture
def space_file(tmp_path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(TINY_SPACE)
    return path


def tune_args(root, space, study, *, trials, final_epochs=0, extra=()):
    return ["tune", "--trials", trials, "--epochs-per-trial", 1, "--final-epochs", final_epochs, "--space", space,
            "--study", study, "--threads", 1, "--artifacts", root, "--model", "bilstm-pool", *extra]


def load_trials(root: Path, study: str, url: str | None = None):
    """The study's trials, read from its storage the way `tune` opens it."""
    import optuna

    from rnnkit.artifacts import artifact_paths

    if url is None and not journal_path(artifact_paths(root), study).exists():
        raise KeyError(f"no journal for {study}")  # (opening it would create it)
    storage = open_storage(artifact_paths(root), url, study)
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def spawn(args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# --------------------------------------------------------------------------- search and resume


def test_tune_writes_summary_plots_and_tuned_run_then_resumes(pipeline_copy, space_file, monkeypatch):
    import rnnkit.text.dataset as dataset

    loads = []
    real_load = dataset.load_dataset
    monkeypatch.setattr(dataset, "load_dataset", lambda *a, **k: loads.append(1) or real_load(*a, **k))

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("a trial re-tokenized")

    monkeypatch.setattr(dataset, "build_tokenizer", no_tokenizing)
    monkeypatch.setattr(dataset, "encode", no_tokenizing)
    args = tune_args(pipeline_copy, space_file, "t", trials=2, final_epochs=1)

    first = ok(args)
    assert len(loads) == 2  # once for all the trials, once for the final run (stages/train.py)
    out = pipeline_copy / "tune" / "t"
    best = json.loads((out / "best_params.json").read_text())
    assert best["metric"] == "val_accuracy" and best["direction"] == "maximize"
    assert best["trials"]["complete"] == 2 and set(best["params"]) == {"hidden_dim", "lr"}
    assert best["final_run"] == "tuned-t" and best["final_options"]["embedding_dim"] == 16
    for png in ("history.png", "importances.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "trial   1" in first.output and "best: trial" in first.output
    # Trials write no checkpoint: the only new run is the tuned one, an ordinary run.
    assert {p.name for p in (pipeline_copy / "checkpoints").iterdir()} == {"tiny", "tuned-t"}
    assert {p.name for p in (pipeline_copy / "checkpoints" / "tuned-t").iterdir()} == {
        "best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json", "state.pt"}
    manifest = json.loads((pipeline_copy / "manifest.json").read_text())
    assert {"tune/t", "train/tuned-t"} <= set(manifest["stages"])
    assert manifest["stages"]["tune/t"]["params"]["best_trial"] == best["best_trial"]
    ok(["evaluate", "--artifacts", pipeline_copy])  # picks the latest run: the tuned one
    assert (pipeline_copy / "reports" / "tuned-t-test.json").exists()

    # --trials 0: no trial, the summary again; the tuned run already has the best configuration.
    weights = (pipeline_copy / "checkpoints" / "tuned-t" / "best.pt").read_bytes()
    again = ok(args[:2] + [0] + args[3:])
    assert "already holds the best configuration" in again.output and len(load_trials(pipeline_copy, "t")) == 2
    assert (pipeline_copy / "checkpoints" / "tuned-t" / "best.pt").read_bytes() == weights

    loads.clear()
    second = ok(args[:-2] + ["--final-epochs", 0] + args[-2:])  # same study, same settings
    assert len(loads) == 1
    trials = load_trials(pipeline_copy, "t")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert "4 trials, 2 new" in " ".join(second.output.split())  # (the table's title wraps with the path)


def test_amp_is_a_setting_of_the_call_not_of_the_study(pipeline_copy, space_file):
    def final_params():
        return json.loads((pipeline_copy / "manifest.json").read_text())["stages"]["train/tuned-a"]["params"]

    ok(tune_args(pipeline_copy, space_file, "a", trials=1, final_epochs=1, extra=["--amp"]))
    assert final_params()["amp"] is True
    # The same study resumes with --no-amp, and the final run is retrained in full precision
    # rather than reported as already holding the best configuration.
    again = ok(tune_args(pipeline_copy, space_file, "a", trials=0, final_epochs=1, extra=["--no-amp"]))
    assert "already holds" not in again.output and final_params()["amp"] is False
    # Neither given: mixed precision where the hardware runs it natively.
    import torch

    from rnnkit.training.device import amp_is_native

    ok(tune_args(pipeline_copy, space_file, "a", trials=0, final_epochs=1))
    assert final_params()["amp"] is amp_is_native(torch.device("cpu"))


def test_tune_refuses_to_resume_a_study_with_other_settings(pipeline_copy, space_file):
    ok(tune_args(pipeline_copy, space_file, "s", trials=1))
    result = run_cli(tune_args(pipeline_copy, space_file, "s", trials=1, extra=["--metric", "val_loss"]))
    assert result.exit_code == 2 and "created with another metric" in result.output
    assert len(load_trials(pipeline_copy, "s")) == 1
    result = run_cli(tune_args(pipeline_copy, space_file, "nope", trials=0))
    assert result.exit_code == 2 and "no study 'nope'" in result.output
    assert not (pipeline_copy / "tune" / "nope.journal").exists()


# --------------------------------------------------------------------------- interruption


def states(root: Path, study: str) -> dict[int, tuple[str, float | None]]:
    try:
        return {t.number: (t.state.name, t.value) for t in load_trials(root, study)}
    except KeyError:  # no study yet
        return {}


def mid_epoch(root: Path, study: str, known: int) -> bool:
    """A trial numbered >= known has finished, and the newest one has started its epoch.

    The newest trial has written its parameters and nothing after them: it is training
    (it writes again at the end of the epoch). Killing it then, not while it appends to the
    journal, keeps the test fast: a process killed holding the journal's lock makes the
    next one wait for Optuna's 30 s grace period.
    """
    try:
        trials = load_trials(root, study)
    except KeyError:  # no study yet
        return False
    if not trials:
        return False
    newest = max(trials, key=lambda t: t.number)
    return (any(t.number >= known and t.state.name == "COMPLETE" for t in trials)
            and newest.state.name == "RUNNING" and len(newest.params) == 2 and not newest.intermediate_values)


def slower_space(tmp_path: Path) -> Path:
    """TINY_SPACE with epochs of about a second: time to land inside one."""
    space = tmp_path / "slower.toml"
    space.write_text(TINY_SPACE.replace("16", "32").replace("[8, 12]", "[32, 48]"))
    return space


def wait_mid_epoch(proc: subprocess.Popen, root: Path, study: str, known: int, seconds: float) -> None:
    """Wait until `mid_epoch`, failing if the process ends or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while not mid_epoch(root, study, known):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"no trial finished within {seconds:g} s"
        time.sleep(0.02)
    time.sleep(0.1)  # the worker releases the journal's lock after its last write


def test_killed_tune_loses_no_finished_trial(pipeline_copy, tmp_path):
    """Ctrl-C (SIGINT) and then a hard kill (SIGKILL), each mid-trial, then a normal run."""
    space = slower_space(tmp_path)
    study, args = "k", tune_args(pipeline_copy, space, "k", trials=500, extra=["--pruner", "none"])
    for sig in (signal.SIGINT, signal.SIGKILL):
        known = len(states(pipeline_copy, study))
        proc = spawn(args)
        try:
            wait_mid_epoch(proc, pipeline_copy, study, known, 90)
            now = states(pipeline_copy, study)
            proc.send_signal(sig)
            output = proc.communicate(timeout=60)[0]
        finally:
            proc.kill()
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "interrupted: the study keeps its" in output, output
            assert states(pipeline_copy, study)[max(now)][0] == "FAIL"  # Optuna records the stopped trial
        else:
            assert proc.returncode == -signal.SIGKILL
            assert states(pipeline_copy, study)[max(now)][0] == "RUNNING"  # nobody could tell the storage

    before = states(pipeline_copy, study)
    finished = {n: s for n, s in before.items() if s[0] == "COMPLETE"}
    assert len(finished) >= 2
    result = ok(tune_args(pipeline_copy, space, study, trials=1, extra=["--pruner", "none"]))
    after = states(pipeline_copy, study)
    assert all(after[n] == s for n, s in finished.items())  # every finished trial kept, unchanged
    assert sorted(after) == list(range(len(before) + 1))  # numbering continues, no gap, no repeat
    assert after[len(before)][0] == "COMPLETE"
    # The trial of the killed process is FAIL now instead of RUNNING for ever.
    assert after[max(before)][0] == "FAIL" and "RUNNING" not in {s for s, _ in after.values()}
    assert f"trial(s) {max(before)}" in result.output


# --------------------------------------------------------------------------- concurrent workers


@pytest.mark.parametrize("backend", [
    "journal",
    pytest.param("postgres", marks=pytest.mark.skipif(
        not POSTGRES_URL, reason="set RNNKIT_TEST_POSTGRES_URL (e.g. `. .ci/postgres.sh`) to test PostgreSQL")),
])
def test_two_workers_share_one_study(pipeline_copy, space_file, backend):
    study = f"w-{uuid.uuid4().hex[:8]}"
    extra = ["--pruner", "none", "--sampler", "random"]
    if backend == "postgres":
        extra += ["--storage", POSTGRES_URL]
    workers = [spawn(tune_args(pipeline_copy, space_file, study, trials=2, extra=extra)) for _ in range(2)]
    try:
        outputs = [w.communicate(timeout=180)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    trials = load_trials(pipeline_copy, study, POSTGRES_URL if backend == "postgres" else None)
    assert sorted(t.number for t in trials) == list(range(4))  # none lost, none duplicated
    assert all(t.state.name == "COMPLETE" for t in trials)
    by_worker: dict[str, int] = {}
    for t in trials:
        by_worker[t.user_attrs["worker"]] = by_worker.get(t.user_attrs["worker"], 0) + 1
    assert sorted(by_worker.values()) == [2, 2]
    # Samplers are seeded per trial number, so workers that share a seed draw different configurations.
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4
    if backend == "postgres":
        import optuna

        from rnnkit.artifacts import artifact_paths

        optuna.delete_study(study_name=study, storage=open_storage(artifact_paths(pipeline_copy), POSTGRES_URL, study))


# --------------------------------------------------------------------------- --jobs: worker processes


def test_jobs_train_trials_side_by_side_in_worker_processes(pipeline_copy, tmp_path):
    """--jobs 2: two worker processes share the call's trials, each trial exactly once, and a
    trial trained by a worker is the trial the parent process would train (same seed)."""
    space = slower_space(tmp_path)  # trials of a few seconds, so that both workers take one
    args = tune_args(pipeline_copy, space, "jobs", trials=2, final_epochs=1,
                     extra=["--jobs", 2, "--epochs-per-trial", 2, "--pruner", "none"])
    result = ok(args)
    assert "adding 2 trial(s) of 2 epoch(s), 2 at once" in result.output
    trials = load_trials(pipeline_copy, "jobs")
    assert sorted(t.number for t in trials) == [0, 1] and all(t.state.name == "COMPLETE" for t in trials)
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)
    # The final run (1 epoch, in this process) starts as the best trial started: its first
    # epoch gives the trial's first reported value.
    best = max(trials, key=lambda t: t.value)
    metrics = [json.loads(line) for line in
               (pipeline_copy / "checkpoints" / "tuned-jobs" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["val_accuracy"] == pytest.approx(best.intermediate_values[1], abs=1e-6)


def test_jobs_workers_end_with_their_parent(pipeline_copy, tmp_path):
    """Ctrl-C (SIGINT to the parent alone) stops the workers and their trials are FAIL; a hard
    kill of the parent takes the workers with it, and the next run marks their trials FAIL."""
    space = slower_space(tmp_path)
    study, args = "kj", tune_args(pipeline_copy, space, "kj", trials=500, extra=["--pruner", "none", "--jobs", 2])
    for sig in (signal.SIGINT, signal.SIGKILL):
        known = len(states(pipeline_copy, study))
        proc = spawn(args)
        try:
            wait_mid_epoch(proc, pipeline_copy, study, known, 120)
            running = [t for t in load_trials(pipeline_copy, study) if t.state.name == "RUNNING"]
            newest = max(t.number for t in running)  # has just started its first epoch
            pids = {int(t.user_attrs["worker"].rpartition(":")[2]) for t in running}
            assert pids and proc.pid not in pids
            proc.send_signal(sig)
            output = proc.communicate(timeout=90)[0]
        finally:
            proc.kill()
        gone = time.monotonic() + 10
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < gone:
            time.sleep(0.05)
        assert not any(pid_alive(pid) for pid in pids), "a worker outlived its parent"
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "interrupted: the study keeps its" in output, output
            now = states(pipeline_copy, study)
            assert now[newest][0] == "FAIL" and "RUNNING" not in {s for s, _ in now.values()}
        else:
            assert proc.returncode == -signal.SIGKILL

    before = states(pipeline_copy, study)
    finished = {n: s for n, s in before.items() if s[0] == "COMPLETE"}
    ok(tune_args(pipeline_copy, space, study, trials=1, extra=["--pruner", "none"]))
    after = states(pipeline_copy, study)
    assert all(after[n] == s for n, s in finished.items())
    assert sorted(after) == list(range(len(before) + 1))
    assert "RUNNING" not in {s for s, _ in after.values()}


def test_jobs_a_killed_worker_leaves_its_trials_to_the_other(pipeline_copy, tmp_path):
    """A worker killed from outside (as by the out-of-memory killer): its trial is FAIL, the
    other worker trains the trials it had not started, and the call ends normally."""
    study = "kw"
    proc = spawn(tune_args(pipeline_copy, slower_space(tmp_path), study, trials=4,
                           extra=["--pruner", "none", "--jobs", 2]))
    try:
        wait_mid_epoch(proc, pipeline_copy, study, 0, 120)
        newest = max(load_trials(pipeline_copy, study), key=lambda t: t.number)
        os.kill(int(newest.user_attrs["worker"].rpartition(":")[2]), signal.SIGKILL)
        output = proc.communicate(timeout=180)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert "died; its running trial will be marked FAIL" in output
    after = states(pipeline_copy, study)
    assert sorted(after) == [0, 1, 2, 3]  # the call's 4 trials, none more
    assert after[newest.number][0] == "FAIL"
    assert [s for n, (s, _) in after.items() if n != newest.number] == ["COMPLETE"] * 3


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content, match", [
    ("hiden_dim = { choices = [8, 16] }", "unknown parameter 'hiden_dim' (did you mean hidden_dim?)"),
    ("dropout = { low = 0.6, high = 0.2 }", "dropout: low 0.6 is above high 0.2"),
    ('hidden_dim = { choices = [8, "16"] }', 'hidden_dim: choice must be an integer, got "16" (string)'),
    ("hidden_dim = { low = 8, high = 16.5 }", "hidden_dim: high must be an integer, got 16.5"),
    ("max_length = { choices = [64, 128] }", "max_length is a tokenize setting"),
    ("lr = { low = 1e-4, hihg = 1e-2 }", "lr: unknown key 'hihg'"),
    ("lr = { low = 1e-4 high = 1e-2 }", "is not valid TOML"),
], ids=["unknown", "low-above-high", "wrong-type", "float-for-int", "max-length", "unknown-key", "syntax"])
def test_bad_space_is_one_line_and_writes_nothing(pipeline_copy, tmp_path, content, match):
    space = tmp_path / "bad.toml"
    space.write_text(content + "\n")
    before = snapshot(pipeline_copy)
    result = run_cli(tune_args(pipeline_copy, space, "bad", trials=1))
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.output
    assert snapshot(pipeline_copy) == before


@pytest.mark.parametrize("extra, match", [
    (["--jobs", 0], "--jobs 0 must be in [1, 1024]"),
    (["--metric", "val_f1"], "--metric 'val_f1' must be one of: val_loss"),
    (["--study", "a b"], "--study 'a b' — use up to 90 letters"),
    (["--metric", "val_micro_f1"], "--metric val_micro_f1 does not apply to a binary task"),
], ids=["jobs", "metric", "study", "metric-of-task"])
def test_bad_option_is_one_line_and_writes_nothing(pipeline_copy, space_file, extra, match):
    before = snapshot(pipeline_copy)
    result = run_cli(tune_args(pipeline_copy, space_file, "bad", trials=1, extra=extra))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and match in lines[0], result.output
    assert snapshot(pipeline_copy) == before


def test_unreachable_database_is_one_line_without_the_password(pipeline_copy, space_file):
    url = "postgresql://rnnkit:s3cret@127.0.0.1:1/nowhere"
    result = run_cli(tune_args(pipeline_copy, space_file, "db", trials=1, extra=["--storage", url]))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "s3cret" not in result.output and "127.0.0.1:1" in result.output


def test_tune_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom rnnkit.cli import app\ntry:\n    app(['tune', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('torch', 'optuna', 'pandas', 'sqlalchemy') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_the_default_space_fits_the_model():
    from rnnkit.tuning.space import default_space

    cnn = {p.name: p for p in default_space("cnn").params}
    assert "hidden_dim" not in cnn and set(cnn) == {"dropout", "lr"}
    ngram_lr = {p.name: p for p in default_space("ngram").params}["lr"]
    assert (ngram_lr.low, ngram_lr.high) == pytest.approx((1e-3, 3e-2))
    lstm = {p.name: p for p in default_space("bilstm-pool").params}
    assert lstm["hidden_dim"].choices == (64, 128, 256)
    assert (lstm["lr"].low, lstm["lr"].high) == pytest.approx((1e-4, 3e-3))  # the notebooks' range


def test_a_space_searching_what_the_model_does_not_take_is_refused(tmp_path):
    from rnnkit.errors import RnnkitError
    from rnnkit.stages.tune import check_space_fits_model
    from rnnkit.tuning.space import load_space

    path = tmp_path / "space.toml"
    path.write_text("hidden_dim = { choices = [64, 128] }\nchannels = 100\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="hidden_dim does not apply to model 'cnn'"):
        check_space_fits_model(load_space(path), "cnn")
    with pytest.raises(RnnkitError, match="channels does not apply to model 'bilstm-pool'"):
        check_space_fits_model(load_space(path), "bilstm-pool")
    path.write_text('model = { choices = ["cnn", "gru"] }\nhidden_dim = { choices = [64, 128] }\n',
                    encoding="utf-8")
    check_space_fits_model(load_space(path), "cnn")  # a mixed search: each trial takes what its model uses
