"""`rnnkit runs` on the command line (rnnkit/cli/runs.py): the table at 80 columns, --json,
show, rm (asks first) and use; and `fitted_table`, which lays tables out to a width."""

import io
import json
import re
import shutil

from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from rnnkit.artifacts import artifact_paths
from rnnkit.cli import runs as cli_runs
from rnnkit.stages import runs


def runs_cli(args, input=None):
    """`rnnkit runs ARGS` (the group's own Typer app: the same command cli/__init__.py registers)."""
    return CliRunner().invoke(cli_runs.app, [str(a) for a in args], input=input)


def rendered(renderable_or_print, width=80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    if callable(renderable_or_print):
        renderable_or_print(console)
    else:
        console.print(renderable_or_print)
    return console.export_text()


def test_fitted_table_keeps_every_figure_whole_and_leaves_out_columns_in_order():
    columns = [("run", "text", 24), ("model", "text")] + [(f"m{i}", "figure") for i in range(9)]
    rows = [["bilstm-pool-20250105-140312", "bilstm-pool"] + [f"0.{i}123" for i in range(9)],
            ["cnn", "cnn"] + ["1,234,567"] * 9]
    drop = [f"m{i}" for i in range(8, 0, -1)]
    table, left_out = cli_runs.fitted_table(columns, rows, width=80, drop=drop)
    text = rendered(table)
    assert max(map(len, text.splitlines())) <= 80
    # Four figures (4 x 9) and two spaces between the six columns leave 34 for the texts: the run
    # name wraps at its floor (24), the model at 10.
    assert left_out == ["m8", "m7", "m6", "m5", "m4"]  # only as many as needed, in the order given
    for i in range(4):
        assert f"0.{i}123" in text
    assert text.count("1,234,567") == 4
    assert "bilstm-pool-20250105-" in text and "140312" in text  # the name broke after a dash
    assert "…" not in text


def test_fitted_table_wraps_text_after_dashes_and_spaces():
    assert cli_runs._wrap("bilstm-pool-20250105-140312", 14) == ["bilstm-pool-", "20250105-", "140312"]
    assert cli_runs._wrap("2025-01-05 14:03", 12) == ["2025-01-05", "14:03"]
    assert cli_runs._wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    cell = Text("interrupted", style="yellow")
    table, _ = cli_runs.fitted_table([("status", "text"), ("n", "figure")], [[cell, "3"]], width=80)
    assert "interrupted" in rendered(table)


def test_the_runs_table_fits_80_columns_with_every_figure(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    long_name = "bilstm-pool-20250105-140312"
    shutil.copytree(paths.run_dir("tiny"), paths.run_dir(long_name))
    config = json.loads((paths.run_dir(long_name) / "config.json").read_text())
    config.update(run=long_name, status="interrupted", best={**config["best"], "val_accuracy": 0.987654})
    (paths.run_dir(long_name) / "config.json").write_text(json.dumps(config))
    result = runs.run(paths)
    text = rendered(lambda console: cli_runs.print_list(result, console))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in text
    tiny = next(r for r in result.runs if r.name == "tiny")
    for figure in (f"{tiny.value:.4f}", "0.9877", "1/1", "interrupted", "finished", "current", "bilstm-pool"):
        assert figure in text, figure
    assert re.search(r"^tiny \*", text, re.M)  # the default run is marked
    for piece in ("bilstm-pool-", "20250105-", "140312"):  # a long name breaks after a dash, whole
        assert piece in text
    assert ("* predict and evaluate use tiny without --run (best finished run on this dataset.pt"
            in re.sub(r"\s+", " ", text))


def test_runs_json_show_and_use(pipeline_copy):
    listed = runs_cli(["--json", "--artifacts", pipeline_copy])
    assert listed.exit_code == 0, listed.output
    (record,) = json.loads(listed.stdout)
    assert record["name"] == "tiny" and record["default"] and record["status"] == "finished"
    assert json.loads(runs_cli(["list", "--json", "--artifacts", pipeline_copy]).stdout) == [record]
    shown = runs_cli(["show", "tiny", "--artifacts", pipeline_copy])
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^  hidden_dim\s+8$", shown.stdout, re.M) and "val_accuracy" in shown.stdout
    assert json.loads(runs_cli(["show", "tiny", "--json", "--artifacts", pipeline_copy]).stdout)["options"][
        "embedding_dim"] == 16
    used = runs_cli(["use", "tiny", "--artifacts", pipeline_copy])
    assert used.exit_code == 0 and "predict and evaluate use tiny: marked current" in used.stdout
    assert (pipeline_copy / "current_run").read_text() == "tiny\n"


def test_rm_asks_and_a_no_keeps_the_run(pipeline_copy):
    kept = runs_cli(["rm", "tiny", "--artifacts", pipeline_copy], input="n\n")
    assert kept.exit_code == 1 and "delete it? [y/N]" in kept.output and "not deleted" in kept.output
    assert kept.stdout == "" and (pipeline_copy / "checkpoints" / "tiny").is_dir()
    closed = runs_cli(["rm", "tiny", "--artifacts", pipeline_copy], input="")
    assert closed.exit_code == 1 and "pass --yes" in closed.output
    deleted = runs_cli(["rm", "tiny", "--yes", "--artifacts", pipeline_copy])
    assert deleted.exit_code == 0 and deleted.stdout.startswith("deleted run tiny: checkpoints/tiny/")
    assert not (pipeline_copy / "checkpoints" / "tiny").exists()
    assert "train/tiny" not in json.loads((pipeline_copy / "manifest.json").read_text())["stages"]
    empty = runs_cli(["--artifacts", pipeline_copy])
    assert empty.exit_code == 0 and "no runs yet" in empty.stdout


def test_rm_of_a_running_run_is_one_line(pipeline_copy):
    config_path = pipeline_copy / "checkpoints" / "tiny" / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "status": "running"}))
    result = runs_cli(["rm", "tiny", "--yes", "--artifacts", pipeline_copy])
    assert result.exit_code == 2 and result.output.startswith("error: run 'tiny' is running")
    assert "Traceback" not in result.output and config_path.exists()
