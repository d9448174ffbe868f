"""`rnnkit evaluate` (rnnkit/stages/evaluate.py): the report it returns is the one it writes,
--compare's table, and its options checked before any work."""

import io
import json
import re

import pytest
from rich.console import Console
from support import run_cli, snapshot

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages.evaluate import Comparison, Options, run


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
    # A report of a run deleted since (by hand: `runs rm` deletes reports too) is left out.
    gone = json.loads(run(paths, Options(run="tiny", threads=1)).report_path.read_text())
    (paths.reports / "gone-test.json").write_text(json.dumps({**gone, "run": "gone"}))
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
    (Options(workers=0), "--workers 0 must be in \\[1, 1024\\]"),
    (Options(per_label=-1), "--per-label -1 must be >= 0"),
    (Options(device="tpu"), "--device 'tpu' must be one of: auto, cpu, cuda"),
])
def test_bad_options_fail_before_anything_is_read_or_written(pipeline_copy, options, message):
    before = snapshot(pipeline_copy)
    with pytest.raises(RnnkitError, match=message):
        run(artifact_paths(pipeline_copy), options)
    assert snapshot(pipeline_copy) == before


def test_the_output_names_the_run_and_why(pipeline_copy):
    result = run_cli(["evaluate", "--artifacts", pipeline_copy])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("run tiny (best finished run on this dataset.pt, val_accuracy ")
    assert run(artifact_paths(pipeline_copy), Options(run="tiny", threads=1)).why == "--run"


@pytest.mark.parametrize("keys", [["loss", "accuracy", "precision", "recall", "f1", "macro_f1"],
                                  ["loss", "micro_f1", "macro_f1", "subset_accuracy", "hamming_accuracy"]])
def test_compare_fits_80_columns_with_whole_figures(tmp_path, keys):
    from rnnkit.cli.evaluate import print_comparison

    columns = ["run", "model", "epoch", *keys, "params", "params w/o emb.", "s/epoch"]
    rows = [["bilstm-pool-20250105-140312", "bilstm-pool", "12", *(f"0.{i}{i}87" for i in range(len(keys))),
             "1,234,567", "45,678", "123.4"],
            ["tiny", "cnn", "3", *(f"0.{i}{i}12" for i in range(len(keys))), "98,765", "4,321", "0.9"]]
    console = Console(width=80, record=True, file=io.StringIO())
    print_comparison(Comparison(columns, rows, tmp_path / "comparison-test.md"), keys, console)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    headline = keys[1]
    for row in rows:  # the headline metric and the parameter count, whole, for every run
        assert row[3 + keys.index(headline)] in text and row[-3] in text
    assert "bilstm-pool-20250105-140312" in text
    left_out = re.search(r"\(left out at this width: (.*?)\)", re.sub(r"\s+", " ", text)).group(1).split(", ")
    assert left_out[:3] == ["params w/o emb.", "s/epoch", "loss"] and headline not in left_out
    for name in left_out:  # what is left out is said, and its figures are absent
        assert name in columns and rows[0][columns.index(name)] not in text
