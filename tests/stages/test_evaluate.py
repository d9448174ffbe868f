"""`rnnkit evaluate` (rnnkit/stages/evaluate.py): the report it returns is the one it writes,
--compare's table, and its options checked before any work."""

import json

import pytest
from support import snapshot

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.evaluate import Options, run


def test_run_returns_the_report_it_writes_and_records(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    result = run(paths, Options(run="tiny", split="val", threads=1))
    assert result.report_path == paths.reports / "tiny-val.json"
    assert json.loads(result.report_path.read_text()) == result.report
    assert result.report["split"] == "val" and result.report["examples"] == 900
    assert result.figure_path == paths.reports / "tiny-val.png" and result.figure_path.exists()
    assert result.comparison is None
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["stages"]["evaluate/tiny/val"]["params"] == {"run": "tiny", "split": "val",
                                                                 "checkpoint": "best", "amp": False}


def test_compare_lists_evaluate_reports_only(pipeline_copy):
    # An ablate-gates report is on the same split, in the same folder, without "metrics":
    # --compare must leave it out rather than fail on it.
    paths = artifact_paths(pipeline_copy)
    paths.reports.mkdir(parents=True, exist_ok=True)
    (paths.reports / "tiny-ablate-test.json").write_text(json.dumps({"run": "tiny", "split": "test",
                                                                     "metric": "accuracy", "variants": []}))
    result = run(paths, Options(run="tiny", compare=True, threads=1))
    comparison = result.comparison
    assert [row[0] for row in comparison.rows] == ["tiny"]
    assert comparison.columns[:5] == ["run", "model", "epoch", "loss", "accuracy"]
    lines = comparison.path.read_text().splitlines()
    assert comparison.path == paths.reports / "comparison-test.md" and len(lines) == 3
    assert lines[2] == "| " + " | ".join(comparison.rows[0]) + " |"


@pytest.mark.parametrize(("options", "message"), [
    (Options(split="train"), "--split 'train' must be one of: test, val"),
    (Options(checkpoint="middle"), "--checkpoint 'middle' must be one of: best, last"),
    (Options(batch_size=0), "--batch-size 0 must be >= 1"),
    (Options(workers=0), "--workers 0 must be >= 1"),
    (Options(per_label=-1), "--per-label -1 must be >= 0"),
    (Options(device="tpu"), "--device 'tpu' must be one of: auto, cpu, cuda"),
])
def test_bad_options_fail_before_anything_is_read_or_written(pipeline_copy, options, message):
    before = snapshot(pipeline_copy)
    with pytest.raises(RnnkitError, match=message):
        run(artifact_paths(pipeline_copy), options)
    assert snapshot(pipeline_copy) == before
