"""`rnnkit runs` (rnnkit/stages/runs.py) and the rule that picks the run predict and evaluate use
(training/checkpoints.py `resolve_run`).

Runs of every status are made by copying the tiny trained run and editing its config.json:
the rule reads only config.json (status, best metrics, dataset hash), so that is what a
run of that status looks like to it."""

import json
import shutil

import pytest

from rnnkit.artifacts import artifact_paths, run_lock
from rnnkit.errors import RnnkitError
from rnnkit.stages import runs
from rnnkit.stages.evaluate import Options as EvaluateOptions
from rnnkit.stages.evaluate import run as evaluate
from rnnkit.stages.report import Options as ReportOptions
from rnnkit.stages.report import run as report
from rnnkit.training import checkpoints


def make_run(paths, name, *, status="finished", accuracy=0.6, dataset=None, partial=False):
    """A copy of the run `tiny` as the run `name` with this status, best val_accuracy and data."""
    folder = paths.checkpoints / (f".{name}.partial" if partial else name)
    shutil.copytree(paths.run_dir("tiny"), folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(run=name, status=status)
    config["best"] = {**config["best"], "val_accuracy": accuracy}
    if dataset is not None:
        config["data"] = {**config["data"], "dataset_sha256": dataset}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_default_run_is_the_best_finished_one_on_this_data(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    make_run(paths, "good", accuracy=0.90)
    make_run(paths, "better", accuracy=0.95)
    # Each of these scores higher, and none may be picked by default:
    make_run(paths, "cut-short", status="interrupted", accuracy=0.99)
    make_run(paths, "crashed", status="failed", accuracy=0.99)
    make_run(paths, "old-data", accuracy=0.99, dataset="0" * 64)
    make_run(paths, "in-progress", status="running", accuracy=0.99, partial=True)
    choice = checkpoints.choose_run(paths, None)
    assert (choice.name, choice.rule) == ("better", "best")
    assert choice.why == "best finished run on this dataset.pt, val_accuracy 0.9500"
    assert checkpoints.resolve_run(paths, None) == "better"
    # Named runs are used whatever their status.
    assert checkpoints.choose_run(paths, "cut-short").why == "--run"
    with pytest.raises(RnnkitError, match="still being trained"):
        checkpoints.resolve_run(paths, "in-progress")
    with pytest.raises(RnnkitError, match="no run named 'nope'.*runs: .*better"):
        checkpoints.resolve_run(paths, "nope")


def test_an_interrupted_run_is_never_the_default(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    make_run(paths, "cut-short", status="interrupted", accuracy=0.99)
    shutil.rmtree(paths.run_dir("tiny"))
    with pytest.raises(RnnkitError, match=r"no finished run trained on the current dataset.pt \(runs: cut-short "
                                          r"\(interrupted\)\) — pass --run NAME, mark one with `rnnkit runs use"):
        checkpoints.resolve_run(paths, None)
    assert checkpoints.resolve_run(paths, "cut-short") == "cut-short"


def test_the_run_marked_current_wins_until_cleared(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    make_run(paths, "better", accuracy=0.95)
    result = runs.use(paths, runs.UseOptions(name="tiny"))
    assert result.name == "tiny" and result.choice.name == "tiny" and result.choice.rule == "current"
    assert (pipeline_copy / "current_run").read_text() == "tiny\n"
    assert checkpoints.resolve_run(paths, None) == "tiny"
    assert checkpoints.resolve_run(paths, "better") == "better"  # --run still decides
    # A marked run that is gone is an error, not a silent fallback to another run.
    shutil.rmtree(paths.run_dir("tiny"))
    with pytest.raises(RnnkitError, match="current run 'tiny'.*no longer.*runs use --clear"):
        checkpoints.resolve_run(paths, None)
    cleared = runs.use(paths, runs.UseOptions(clear=True))
    assert cleared.name is None and cleared.previous == "tiny" and cleared.choice.name == "better"
    assert not (pipeline_copy / "current_run").exists()


def test_use_refuses_an_unknown_run_and_warns_about_an_unfinished_one(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    with pytest.raises(RnnkitError, match="run 'nope' does not exist — mark one of: tiny"):
        runs.use(paths, runs.UseOptions(name="nope"))
    make_run(paths, "cut-short", status="interrupted")
    result = runs.use(paths, runs.UseOptions(name="cut-short"))
    assert result.notes == ["run cut-short is interrupted, not finished"]
    with pytest.raises(RnnkitError, match="NAME or --clear, not both"):
        runs.use(paths, runs.UseOptions(name="tiny", clear=True))


def test_the_listing_marks_the_default_run_and_the_data(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    make_run(paths, "old-data", accuracy=0.99, dataset="0" * 64)
    make_run(paths, "in-progress", status="running", partial=True)
    with run_lock(paths, "in-progress"):  # as its `rnnkit train` holds it (without: "killed")
        result = runs.run(paths, runs.ListOptions())
    records = {(r["name"], r["being_trained"]): r for r in result.records()}
    assert set(records) == {("tiny", False), ("old-data", False), ("in-progress", True)}
    tiny = records[("tiny", False)]
    assert tiny["default"] and tiny["status"] == "finished" and tiny["current_data"] is True
    assert tiny["metric"] == "val_accuracy" and tiny["model"] == "bilstm-pool" and tiny["epochs_run"] == 1
    assert records[("old-data", False)]["current_data"] is False and not records[("old-data", False)]["default"]
    assert records[("in-progress", True)]["status"] == "running"
    json.dumps(result.records())  # what `runs --json` prints


def test_a_run_from_before_config_json_is_read_from_the_manifest_and_best_pt(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    (paths.run_dir("tiny") / "config.json").unlink()
    (info,) = checkpoints.list_runs(paths)
    assert info.config is None and info.status == "finished" and info.model == "bilstm-pool"
    assert info.metric == "val_accuracy" and info.value is not None and info.epochs_run == 1
    assert checkpoints.resolve_run(paths, None) == "tiny"
    shown = runs.show(paths, runs.ShowOptions(name="tiny"))
    assert shown.options["embedding_dim"] == 16 and shown.options["name"] == "tiny"


def test_show_gives_every_setting_and_the_best_metrics(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    shown = runs.show(paths, runs.ShowOptions(name="tiny"))
    assert shown.options["hidden_dim"] == 8 and shown.options["lr"] is None
    assert shown.resolved["lr"] > 0 and shown.info.best["val_accuracy"] == shown.record["value"]
    with pytest.raises(RnnkitError, match="no run named 'nope'"):
        runs.show(paths, runs.ShowOptions(name="nope"))


def test_rm_deletes_the_folder_its_manifest_records_and_reports(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    evaluate(paths, EvaluateOptions(run="tiny", threads=1))
    report(paths, ReportOptions(run="tiny", threads=1, explain=False))
    runs.use(paths, runs.UseOptions(name="tiny"))
    manifest = json.loads(paths.manifest.read_text())
    assert {"train/tiny", "evaluate/tiny/test", "report/tiny"} <= set(manifest["stages"])
    removed = runs.rm(paths, runs.RmOptions(name="tiny", yes=True))
    assert removed.manifest_keys == ["train/tiny", "evaluate/tiny/test", "report/tiny"]
    assert not paths.run_dir("tiny").exists()
    assert not (paths.reports / "tiny-test.json").exists() and not (paths.reports / "tiny-test.png").exists()
    assert not (paths.reports / "tiny.html").exists()
    stages = json.loads(paths.manifest.read_text())["stages"]
    assert not [k for k in stages if "tiny" in k] and "tokenize" in stages
    assert checkpoints.current_run(paths) is None
    with pytest.raises(RnnkitError, match="no run named 'tiny'"):
        runs.rm(paths, runs.RmOptions(name="tiny", yes=True))


def test_rm_asks_first_and_keeps_the_run_on_no(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    with pytest.raises(RnnkitError, match="needs confirmation — pass --yes"):
        runs.rm(paths, runs.RmOptions(name="tiny"))
    asked = []
    assert runs.rm(paths, runs.RmOptions(name="tiny"), confirm=lambda plan: asked.append(plan) or False) is None
    assert asked[0].folders == [paths.run_dir("tiny")] and paths.run_dir("tiny").exists()
    assert runs.rm(paths, runs.RmOptions(name="tiny"), confirm=lambda plan: True) is not None
    assert not paths.run_dir("tiny").exists()


def test_rm_refuses_a_running_run(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    make_run(paths, "busy", status="running", partial=True)
    before = json.loads(paths.manifest.read_text())
    with pytest.raises(RnnkitError, match="run 'busy' is running"):
        runs.rm(paths, runs.RmOptions(name="busy", yes=True))
    assert (paths.checkpoints / ".busy.partial").is_dir() and json.loads(paths.manifest.read_text()) == before
    config = json.loads((paths.run_dir("tiny") / "config.json").read_text())
    (paths.run_dir("tiny") / "config.json").write_text(json.dumps({**config, "status": "running"}))
    with pytest.raises(RnnkitError, match="run 'tiny' is running"):
        runs.rm(paths, runs.RmOptions(name="tiny", yes=True))
    assert paths.run_dir("tiny").is_dir()


@pytest.mark.parametrize("name", ["", ".", "..", "../..", "/", "tiny/../..", "-rf"])
def test_runs_rm_show_use_refuse_a_name_that_is_a_path(pipeline_copy, name):
    from rnnkit.errors import RnnkitError
    from rnnkit.stages.runs import RmOptions, ShowOptions, UseOptions, rm, show, use

    paths = artifact_paths(pipeline_copy)
    before = sorted(p.relative_to(pipeline_copy.parent) for p in pipeline_copy.parent.rglob("*"))
    for call, options in ((rm, RmOptions(name=name, yes=True)), (show, ShowOptions(name=name)),
                          (use, UseOptions(name=name))):
        with pytest.raises(RnnkitError, match="is not a run name"):
            call(paths, options)
    assert sorted(p.relative_to(pipeline_copy.parent) for p in pipeline_copy.parent.rglob("*")) == before
