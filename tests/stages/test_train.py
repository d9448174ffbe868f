"""The train stage's run folders: config.json, --config, --resume after Ctrl-C, SIGTERM or SIGKILL, --force
that is interrupted, and losses that are not finite."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from support import TINY_TRAIN, ok, run_cli, snapshot

from rnnkit.artifacts import Manifest, artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.train import Options, run
from rnnkit.training.run_config import read_config

# Small, and with what resuming must restore: dropout (the global RNG), batch order (its own
# generator), Adam's moments, the warm-up + cosine schedule and early-stopping state.
TINY = dict(model="bilstm-pool", embedding_dim=16, hidden_dim=8, batch_size=64, epochs=3, patience=0, threads=1, seed=3)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def stop_after(epoch: int):
    def hook(done: int, record: dict) -> None:
        if done == epoch:
            raise KeyboardInterrupt

    return hook


@pytest.mark.parametrize("model", ["bilstm-pool", "ngram"])
def test_resume_after_ctrl_c_gives_the_weights_of_an_uninterrupted_run(pipeline_copy, model):
    paths = artifact_paths(pipeline_copy)
    settings = {**TINY, "model": model}
    if model == "ngram":
        settings.pop("hidden_dim")  # the ngram model takes no hidden size
    run(paths, Options(**settings, name="whole"))
    with pytest.raises(KeyboardInterrupt):
        run(paths, Options(**settings, name="cut"), on_epoch_end=stop_after(1))
    cut = read_config(paths.run_dir("cut"))
    assert cut["status"] == "interrupted" and cut["epochs_run"] == 1
    result = run(paths, Options(resume="cut"), {"resume"})
    assert result.epochs_run == 3
    assert_same_weights(paths.run_dir("whole") / "last.pt", paths.run_dir("cut") / "last.pt")
    assert_same_weights(paths.run_dir("whole") / "best.pt", paths.run_dir("cut") / "best.pt")
    whole = read_config(paths.run_dir("whole"))
    resumed = read_config(paths.run_dir("cut"))
    assert resumed["status"] == "finished" and resumed["epochs_run"] == 3
    assert resumed["best"] == whole["best"] and resumed["best_epoch"] == whole["best_epoch"]
    history = [json.loads(line) for line in (paths.run_dir("cut") / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_resume_after_sigkill_gives_the_weights_of_an_uninterrupted_run(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    run(paths, Options(**TINY, name="whole"))
    # A process killed outright after its first epoch: no handler runs, the run stays in
    # checkpoints/.killed.partial/ with config.json saying "running".
    script = textwrap.dedent(f"""
        import os, signal
        from rnnkit.artifacts import artifact_paths
        from rnnkit.stages.train import Options, run

        def kill(epoch, record):
            os.kill(os.getpid(), signal.SIGKILL)

        run(artifact_paths({str(pipeline_copy)!r}), Options(**{TINY!r}, name="killed"), on_epoch_end=kill)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr
    partial = paths.checkpoints / ".killed.partial"
    assert read_config(partial)["status"] == "running" and not paths.run_dir("killed").exists()
    result = ok(["train", "--resume", "killed", "--artifacts", pipeline_copy])
    assert "resuming run killed after epoch 1 of 3" in result.output
    assert_same_weights(paths.run_dir("whole") / "last.pt", paths.run_dir("killed") / "last.pt")
    assert read_config(paths.run_dir("killed"))["status"] == "finished"


def test_sigterm_keeps_the_finished_epochs_like_ctrl_c(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    script = textwrap.dedent(f"""
        import os, signal
        from rnnkit.artifacts import artifact_paths
        from rnnkit.stages.train import Options, run

        def term(epoch, record):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGTERM)

        run(artifact_paths({str(pipeline_copy)!r}), Options(**{TINY!r}, name="termed"), on_epoch_end=term)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "rnnkit train --resume termed" in " ".join(done.stderr.split())
    assert read_config(paths.run_dir("termed"))["status"] == "interrupted"


def test_resume_refuses_a_finished_run_other_settings_and_unknown_runs(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    with pytest.raises(RnnkitError, match="has finished"):
        run(paths, Options(resume="tiny"), {"resume"})
    with pytest.raises(RnnkitError, match="drop --lr"):
        run(paths, Options(resume="tiny", lr=0.1), {"resume", "lr"})
    with pytest.raises(RnnkitError, match="no interrupted run 'nope'"):
        run(paths, Options(resume="nope"), {"resume"})


def test_config_json_describes_the_run(trained_pipeline):
    config = read_config(artifact_paths(trained_pipeline).run_dir("tiny"))
    assert config["status"] == "finished" and config["run"] == "tiny"
    assert config["options"]["hidden_dim"] == 8 and config["options"]["dropout"] == 0.5  # given and default
    assert config["resolved"]["lr"] == 1e-3 and config["resolved"]["monitor"] == "val_accuracy"
    assert config["task"] == "binary" and config["label_names"] == ["neg", "pos"]
    assert set(config["versions"]) == {"rnnkit", "torch", "python"}
    assert len(config["data"]["dataset_sha256"]) == 64 and config["best_epoch"] == 1
    assert "val_accuracy" in config["best"]


def test_train_config_takes_a_runs_settings_and_flags_override_them(pipeline_copy):
    config = pipeline_copy / "checkpoints" / "tiny" / "config.json"
    ok(["train", "--config", config, "--name", "again", "--dropout", "0.2", "--artifacts", pipeline_copy])
    again = read_config(artifact_paths(pipeline_copy).run_dir("again"))
    assert again["options"]["hidden_dim"] == 8 and again["options"]["embedding_dim"] == 16  # from the file
    assert again["options"]["dropout"] == 0.2  # the flag wins


def test_train_config_refuses_a_file_that_is_not_a_config(pipeline_copy, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hiden_dim": 3}', encoding="utf-8")
    result = run_cli([*TINY_TRAIN, "--config", bad, "--artifacts", pipeline_copy])
    assert result.exit_code != 0 and "unknown setting(s) hiden_dim" in result.output
    assert "Traceback" not in result.output


def test_train_config_takes_a_studys_best_params(pipeline_copy, tmp_path):
    options = read_config(artifact_paths(pipeline_copy).run_dir("tiny"))["options"]
    best_params = tmp_path / "best_params.json"  # as `rnnkit tune` writes it: the tuned run's options
    best_params.write_text(json.dumps({"study": "s", "final_options": {**options, "dropout": 0.3}}), encoding="utf-8")
    ok(["train", "--config", best_params, "--name", "from-study", "--artifacts", pipeline_copy])
    again = read_config(artifact_paths(pipeline_copy).run_dir("from-study"))["options"]
    assert again["dropout"] == 0.3 and again["hidden_dim"] == 8 and again["name"] == "from-study"


def test_an_interrupted_force_run_never_replaces_the_finished_one(pipeline_copy):
    """Issue 16, "data lost or corrupted" 2: `--force` over a finished run, Ctrl-C after epoch 1,
    swapped the 1-epoch run in. The finished run stays; the new one waits in .tiny.partial/."""
    paths = artifact_paths(pipeline_copy)
    old = paths.run_dir("tiny")
    weights_before = (old / "best.pt").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        run(paths, Options(**TINY, name="tiny", force=True), on_epoch_end=stop_after(1))
    assert read_config(old)["status"] == "finished" and (old / "best.pt").read_bytes() == weights_before
    partial = paths.checkpoints / ".tiny.partial"
    assert read_config(partial)["status"] == "interrupted" and read_config(partial)["epochs_run"] == 1
    ok(["evaluate", "--run", "tiny", "--artifacts", pipeline_copy])  # the finished run, as recorded
    result = ok(["train", "--resume", "tiny", "--artifacts", pipeline_copy])
    assert "resuming run tiny after epoch 1 of 3" in result.output
    assert read_config(old)["status"] == "finished" and read_config(old)["epochs_run"] == 3
    assert not partial.exists() and not (paths.checkpoints / ".tiny.old").exists()


def test_the_cli_says_where_the_interrupted_force_run_is(pipeline_copy, monkeypatch):
    from rnnkit.stages import train as train_stage

    real_run = train_stage.run
    monkeypatch.setattr(train_stage, "run", lambda *a, **k: real_run(*a, **k, on_epoch_end=stop_after(1)))
    result = run_cli([*TINY_TRAIN, "--epochs", "2", "--name", "tiny", "--force", "--artifacts", pipeline_copy])
    assert result.exit_code == 130
    expected = (f"interrupted: the finished run tiny is kept; the new one (1 finished epoch(s)) is in {pipeline_copy}/"
                f"checkpoints/.tiny.partial — `rnnkit train --resume tiny` continues it")
    assert "".join(expected.split()) in "".join(result.stderr.split())  # (however the console wraps it)


def nan_loss_at(monkeypatch, epoch: int, batch: int | None):
    """The training loss of (epoch, batch) is NaN (batch None: the validation loss of that epoch)."""
    from rnnkit.training import loop

    real_step, real_validate = loop.train_step, loop.validate
    seen = {"epoch": 0, "batch": 0}

    def train_step(*args, **kwargs):
        if seen["batch"] == 0:
            seen["epoch"] += 1
        seen["batch"] += 1
        loss, logits, targets = real_step(*args, **kwargs)
        if (seen["epoch"], seen["batch"]) == (epoch, batch):
            loss = torch.tensor(float("nan"))
        return loss, logits, targets

    def validate(*args, **kwargs):
        metrics, decision = real_validate(*args, **kwargs)
        if batch is None and seen["epoch"] == epoch:
            metrics["loss"] = float("nan")
        seen["batch"] = 0
        return metrics, decision

    monkeypatch.setattr(loop, "train_step", train_step)
    monkeypatch.setattr(loop, "validate", validate)


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    return errors[0]


def test_a_loss_that_is_not_finite_stops_training_and_marks_the_run_failed(pipeline_copy, monkeypatch):
    """Issue 16, "data lost or corrupted" 4: a NaN loss ended in a traceback and a run folder with
    only last.pt. Now: one line, and the finished epochs kept, marked failed."""
    paths = artifact_paths(pipeline_copy)
    nan_loss_at(monkeypatch, epoch=2, batch=3)
    result = run_cli([*TINY_TRAIN, "--epochs", "3", "--name", "diverged", "--artifacts", pipeline_copy])
    assert one_line_error(result) == ("error: training diverged at epoch 2, batch 3: the loss is nan — lower --lr "
                                      "(now 0.001), keep gradient clipping on (--clip 1), or drop --amp")
    said = " ".join(result.stderr.split())
    assert "failed: kept the 1 finished epoch(s) in" in said and "diverged, marked failed" in said
    folder = paths.run_dir("diverged")
    config = read_config(folder)
    assert config["status"] == "failed" and config["epochs_run"] == 1 and "diverged at epoch 2" in config["error"]
    assert {"best.pt", "last.pt", "metrics.jsonl", "config.json"} <= {p.name for p in folder.iterdir()}
    assert Manifest(paths).stages["train/diverged"]["params"]["interrupted"] is True


@pytest.mark.parametrize(("epoch", "batch", "where"), [(1, 2, "epoch 1, batch 2"), (1, None, "epoch 1 (validation)")])
def test_a_run_that_diverges_before_its_first_epoch_ends_leaves_nothing(pipeline_copy, monkeypatch, epoch, batch,
                                                                        where):
    before = snapshot(pipeline_copy)
    nan_loss_at(monkeypatch, epoch=epoch, batch=batch)
    result = run_cli([*TINY_TRAIN, "--name", "gone", "--artifacts", pipeline_copy])
    assert one_line_error(result).startswith(f"error: training diverged at {where}: the loss is nan — lower --lr")
    assert snapshot(pipeline_copy) == before


def test_a_diverging_force_run_keeps_the_finished_run(pipeline_copy, monkeypatch):
    paths = artifact_paths(pipeline_copy)
    nan_loss_at(monkeypatch, epoch=2, batch=1)
    result = run_cli([*TINY_TRAIN, "--epochs", "2", "--name", "tiny", "--force", "--artifacts", pipeline_copy])
    assert one_line_error(result).startswith("error: training diverged at epoch 2, batch 1")
    assert read_config(paths.run_dir("tiny"))["status"] == "finished"
    assert read_config(paths.checkpoints / ".tiny.partial")["status"] == "failed"


def test_a_learning_rate_too_large_to_compute_with_is_one_line(pipeline_copy):
    before = snapshot(pipeline_copy)
    result = run_cli([*TINY_TRAIN, "--lr", "1e38", "--name", "huge", "--artifacts", pipeline_copy])
    line = one_line_error(result)
    assert "--lr" in line
    assert snapshot(pipeline_copy) == before
