"""Faults (issue 16): a process killed in the middle of putting a run in place, an old run never
replaced by an unfinished one, stale data along the whole lineage chain, and checkpoints that
were edited or damaged. After each: the previous consistent state or a clear one-line refusal,
and the next command repairs what can be repaired, saying so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from support import TINY_TOKENIZE, TINY_TRAIN, ok, run_cli, snapshot

import rnnkit
from rnnkit.artifacts import Manifest, artifact_paths, sha256_file
from rnnkit.errors import RnnkitError
from rnnkit.training.inference import Predictor
from rnnkit.training.run_config import read_config


def says(stderr: str, expected: str) -> bool:
    """Whether the messages on stderr hold `expected`, however the console wrapped them."""
    return "".join(expected.split()) in "".join(stderr.split())


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


# --------------------------------------------------------------------------- a kill while a run is put in place

# `train --name tiny --force` (dropout 0.1, where the run in place has 0.5), killed by SIGKILL at
# one point of train.py's finish: before the manifest records it, between the two renames of the
# swap, or after them (before the old run is deleted).
KILL_AT = {
    "record": "Manifest.record = lambda self, key, **kw: os.kill(os.getpid(), signal.SIGKILL)",
    "between-renames": "after_rename('.tiny.old')",
    "before-delete": "after_rename('tiny')",
}


def train_killed_at(root, point: str) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from rnnkit.artifacts import Manifest, artifact_paths
        from rnnkit.stages.train import Options, run

        rename = Path.rename

        def after_rename(name):
            def renamed(self, target):
                result = rename(self, target)
                if Path(target).name == name:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result
            Path.rename = renamed

        {KILL_AT[point]}
        run(artifact_paths({str(root)!r}), Options(model="bilstm-pool", embedding_dim=16, hidden_dim=8, epochs=1,
            threads=1, name="tiny", force=True, dropout=0.1))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr


@pytest.mark.parametrize("point", list(KILL_AT))
def test_a_kill_while_a_run_replaces_another_is_repaired_by_the_next_command(pipeline_copy, point):
    """Issue 16, "data lost or corrupted" 3: the next `train --name` deleted both runs silently."""
    paths = artifact_paths(pipeline_copy)
    train_killed_at(pipeline_copy, point)
    leftovers = sorted(p.name for p in paths.checkpoints.iterdir())
    assert leftovers == {"record": [".tiny.partial", "tiny"], "between-renames": [".tiny.old", ".tiny.partial"],
                         "before-delete": [".tiny.old", "tiny"]}[point]
    listing = run_cli(["runs", "--artifacts", pipeline_copy])  # the next command touching the run
    assert listing.exit_code == 0, listing.output
    if point == "record":
        # Not recorded: the new run never counted. The old one stays in place and in use; the
        # killed one's finished epoch stays too, until --force discards it (saying so).
        assert listing.stderr == "" and read_config(paths.run_dir("tiny"))["options"]["dropout"] == 0.5
        line = one_line_error(run_cli([*TINY_TRAIN, "--name", "tiny", "--artifacts", pipeline_copy]))
        assert "already exists" in line
        forced = ok([*TINY_TRAIN, "--name", "tiny", "--force", "--artifacts", pipeline_copy])
        assert says(forced.stderr, "1 finished epoch(s) of an earlier run 'tiny' (finished), as --force asks")
        assert read_config(paths.run_dir("tiny"))["options"]["dropout"] == 0.5  # TINY_TRAIN's default dropout
    else:
        assert says(listing.stderr, "put run 'tiny' in place" if point == "between-renames" else
                    "removed checkpoints/.tiny.old/: the run 'tiny' that a replacement had superseded")
        assert read_config(paths.run_dir("tiny"))["options"]["dropout"] == 0.1  # the new run: it was recorded
    assert sorted(p.name for p in paths.checkpoints.iterdir()) == ["tiny"]
    ok(["evaluate", "--run", "tiny", "--artifacts", pipeline_copy])  # in place and matching its record


def test_an_interrupted_swap_with_an_unrecorded_new_run_restores_the_old_one(pipeline_copy):
    """.tiny.old without tiny/ and a .tiny.partial/ the manifest does not know: undo the swap."""
    paths = artifact_paths(pipeline_copy)
    shutil.copytree(paths.run_dir("tiny"), paths.checkpoints / ".tiny.partial")
    config = json.loads((paths.checkpoints / ".tiny.partial" / "config.json").read_text())
    (paths.checkpoints / ".tiny.partial" / "config.json").write_text(json.dumps({**config, "status": "interrupted"}))
    paths.run_dir("tiny").rename(paths.checkpoints / ".tiny.old")
    result = ok(["predict", "great film", "--run", "tiny", "--artifacts", pipeline_copy])
    assert says(result.stderr, "restored run 'tiny' from checkpoints/.tiny.old/")
    assert read_config(paths.run_dir("tiny"))["status"] == "finished"
    assert (paths.checkpoints / ".tiny.partial").is_dir()  # the unrecorded epochs are kept, for --resume


def test_a_killed_runs_finished_epochs_are_never_discarded_silently(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    partial = paths.checkpoints / ".cut.partial"
    shutil.copytree(paths.run_dir("tiny"), partial)  # a run killed after its first epoch: "running", lock free
    config = json.loads((partial / "config.json").read_text())
    (partial / "config.json").write_text(json.dumps({**config, "run": "cut", "status": "running", "pid": 1}))
    before = snapshot(pipeline_copy)
    line = one_line_error(run_cli([*TINY_TRAIN, "--name", "cut", "--artifacts", pipeline_copy]))
    assert line == (f"error: {partial} holds 1 finished epoch(s) of an earlier run 'cut' (killed) — continue it "
                    f"with `rnnkit train --resume cut`, delete it with `rnnkit runs rm cut`, or pass --force to "
                    f"discard it")
    assert snapshot(pipeline_copy) == before
    forced = ok([*TINY_TRAIN, "--name", "cut", "--force", "--artifacts", pipeline_copy])
    assert says(forced.stderr, f"discarding {partial}: 1 finished epoch(s) of an earlier run 'cut' (killed), as "
                               f"--force asks")
    assert read_config(paths.run_dir("cut"))["status"] == "finished" and not partial.exists()


# --------------------------------------------------------------------------- stale data along the chain


def test_a_new_prepare_makes_train_and_evaluate_refuse_the_old_dataset(pipeline_copy, sample_frame, tmp_path):
    """Issue 16, "stale inputs": after `prepare csv` of a new corpus, train and evaluate used the
    old dataset.pt (the check looked one stage back)."""
    corpus = tmp_path / "corpus.csv"
    rows = sample_frame[sample_frame["split"] == "train"].groupby("label").head(60)
    rows.assign(label=rows["label"].map({0: "neg", 1: "pos"}))[["text", "label"]].to_csv(corpus, index=False)
    ok(["prepare", "csv", corpus, "--artifacts", pipeline_copy])
    expected = ("error: dataset.pt was built from an older prepare (`rnnkit prepare` ran since) — run "
                "`rnnkit tokenize`")
    assert one_line_error(run_cli([*TINY_TRAIN, "--name", "new", "--artifacts", pipeline_copy])) == expected
    assert one_line_error(run_cli(["evaluate", "--run", "tiny", "--artifacts", pipeline_copy])) == expected
    ok(["predict", "great film", "--artifacts", pipeline_copy])  # a run's checkpoint carries what predict needs
    ok([*TINY_TOKENIZE, "--artifacts", pipeline_copy])
    paths = artifact_paths(pipeline_copy)
    assert Manifest(paths).verify([paths.dataset], produced_by="tokenize", rerun="rnnkit tokenize")


# --------------------------------------------------------------------------- checkpoints edited or damaged


def edit_checkpoint(path, change) -> None:
    data = torch.load(path, weights_only=True)
    change(data)
    torch.save(data, path)


def rerecord(paths, run: str, path) -> None:
    """Record the edited file as the run's own: the checkpoint itself must then be judged."""
    manifest = Manifest(paths)
    entry = manifest.stages[f"train/{run}"]
    entry["outputs"][paths.rel(path)] = sha256_file(path)
    manifest.record(f"train/{run}", params=entry["params"], input_hashes=entry["inputs"],
                    output_hashes=entry["outputs"])


def test_predict_refuses_a_checkpoint_that_differs_from_its_record(pipeline_copy):
    """Issue 16: edited label names were printed as predictions."""
    paths = artifact_paths(pipeline_copy)
    best = paths.run_dir("tiny") / "best.pt"
    edit_checkpoint(best, lambda data: data.update(label_names=["bad", "good"]))
    line = one_line_error(run_cli(["predict", "great film", "--artifacts", pipeline_copy]))
    assert line == (f"error: {best} does not match what `rnnkit train` recorded (sha256 differs: the file was "
                    f"changed or damaged) — train the run again with `rnnkit train --name tiny --force`")
    with pytest.raises(RnnkitError, match="does not match what `rnnkit train` recorded"):
        rnnkit.load(paths.run_dir("tiny"))
    with pytest.raises(RnnkitError, match="does not match what `rnnkit train` recorded"):
        Predictor.from_checkpoint(best)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(tokenizer_json="{not json"), "is a damaged checkpoint: its tokenizer is not valid"),
    (lambda d: d.update(tokenizer_json='{"format_version": 1, "type": "word"}'), "is not a valid word tokenizer"),
    (lambda d: d.pop("state_dict"), "is a damaged checkpoint: it lacks 'state_dict'"),
    (lambda d: d.update(label_names=7), "is a damaged checkpoint: its 'label_names' is int, not list"),
    (lambda d: d.update(task="binary", label_names=["a", "b", "c"]), "task 'binary' with 3 label name(s)"),
    (lambda d: d["state_dict"].update({k: v.reshape(-1)[:1] for k, v in d["state_dict"].items()}),
     "is a damaged checkpoint: its model cannot be rebuilt"),
    (lambda d: d.update(decision={"thresholds": ["x"]}), "its decision thresholds do not fit"),
])
def test_a_damaged_checkpoint_is_one_line(pipeline_copy, tmp_path, change, message):
    """Recorded or not (a file outside any artifacts folder), a damaged checkpoint says so in one line."""
    paths = artifact_paths(pipeline_copy)
    best = paths.run_dir("tiny") / "best.pt"
    edit_checkpoint(best, change)
    rerecord(paths, "tiny", best)
    line = one_line_error(run_cli(["predict", "great film", "--artifacts", pipeline_copy]))
    assert message in line and line.endswith("train the run again with `rnnkit train --force`"), line
    alone = tmp_path / "alone.pt"
    shutil.copy(best, alone)
    with pytest.raises(RnnkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rnnkit.load(alone)


def test_without_a_manifest_predict_still_finds_the_runs_and_warns(pipeline_copy):
    """Issue 16: with manifest.json deleted, predict said "no trained run"."""
    (pipeline_copy / "manifest.json").unlink()
    result = run_cli(["predict", "great film", "--artifacts", pipeline_copy])
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[0] in ("neg", "pos")
    assert says(result.stderr, "warning: no manifest: the checkpoint cannot be checked")
    assert says(result.stderr, "run tiny (best finished run on any data (the manifest has no record of dataset.pt)")


def test_runs_tells_a_killed_run_from_one_being_trained(pipeline_copy):
    """A killed run's config.json still says "running"; `runs` asks its lock, which no process holds."""
    from rnnkit.artifacts import run_lock

    paths = artifact_paths(pipeline_copy)
    partial = paths.checkpoints / ".cut.partial"
    shutil.copytree(paths.run_dir("tiny"), partial)
    config = json.loads((partial / "config.json").read_text())
    (partial / "config.json").write_text(json.dumps({**config, "run": "cut", "status": "running"}))

    def status() -> str:
        listed = json.loads(ok(["runs", "--json", "--artifacts", pipeline_copy]).stdout)
        return next(r["status"] for r in listed if r["name"] == "cut")

    assert status() == "killed"
    with run_lock(paths, "cut"):  # as `rnnkit train --name cut` holds it while it runs
        assert status() == "running"
    assert status() == "killed"
