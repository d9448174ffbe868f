"""`rnnkit report` (rnnkit/stages/report.py, rnnkit/report/): one self-contained HTML page per run.

Three task shapes: the binary sample run (`trained_pipeline`), a 20-class CSV with a plain run and a
run from `rnnkit tune` (tuned-mc), and a 4-label multi-label TSV. Models are tiny (embedding 16,
one or two epochs, one thread); the pages are checked for their sections, for being
self-contained (every image a data URI, nothing fetched), for the atomic write and the manifest
record, and rendered in headless Chromium at a laptop and a phone width where it is installed.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import ok, run_cli, snapshot

from rnnkit.artifacts import artifact_paths, sha256_file
from rnnkit.errors import RnnkitError
from rnnkit.report import screenshot
from rnnkit.report.sections import calibration_bins, one_vs_rest
from rnnkit.stages.report import Options, run

SECTIONS = ["settings", "data", "training", "test", "curves", "calibration", "mistakes", "runs"]
CLASSES = ["grain", "crude-oil", "money-fx", "shipping", "interest-rates", "earnings", "acquisitions", "trade",
           "sugar", "coffee", "gold", "natural-gas", "housing", "jobs", "retail-sales", "consumer-price-index",
           "industrial-production", "gross-national-product-and-growth", "cocoa", "copper"]
LABELS = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
          "money": "dollar rates bank interest", "ships": "port vessel cargo tanker"}
CNN_SPACE = 'embedding_dim = 16\nchannels = 8\nlr = { low = 3e-3, high = 3e-2, log = true }\n'


def make_classes(path: Path, n: int = 400) -> None:
    """20 classes, each named by its own words, with noise words and, for a quarter of the texts,
    a word of the next class: a model learns most of it in a few epochs, never all."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        c = i % len(CLASSES)
        stem = CLASSES[c].split("-")[0]
        words = [f"{stem}{j}" for j in range(3)]
        if rng.random() < 0.25:
            words = [words[0], CLASSES[(c + 1) % len(CLASSES)].split("-")[0] + "0"]
        noise = [f"w{rng.randrange(40)}" for _ in range(rng.randrange(3, 20))]
        rows.append((" ".join(noise[:4] + words + noise[4:]), CLASSES[c]))
    pd.DataFrame(rows, columns=["text", "topic"]).to_csv(path, index=False)


def make_labels(path: Path, n: int = 240) -> None:
    rng = random.Random(0)
    names = list(LABELS)
    rows = []
    for i in range(n):
        labels = [names[i % 4]] + ([names[(i + 1) % 4]] if i % 3 == 0 else [])
        words = " ".join(rng.choice(LABELS[label].split()) for label in labels for _ in range(2))
        rows.append((f"report {i}: {words} w{rng.randrange(20)} today", ", ".join(labels)))
    pd.DataFrame(rows, columns=["text", "topics"]).to_csv(path, sep="\t", index=False)


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> Path:
    """20 classes: the run `topics` (cnn, evaluated) and `tuned-mc` from a 2-trial study."""
    folder = tmp_path_factory.mktemp("report-mc")
    make_classes(folder / "topics.csv")
    (folder / "space.toml").write_text(CNN_SPACE)
    root = folder / "artifacts"
    ok(["prepare", "csv", folder / "topics.csv", "--label-col", "topic", "--artifacts", root])
    ok(["tokenize", "--max-length", "24", "--min-df", "1", "--artifacts", root])
    ok(["train", "--model", "cnn", "--embedding-dim", "16", "--channels", "8", "--epochs", "3", "--lr", "0.02",
        "--threads", "1", "--name", "topics", "--artifacts", root])
    ok(["evaluate", "--run", "topics", "--threads", "1", "--artifacts", root])
    ok(["tune", "--model", "cnn", "--space", folder / "space.toml", "--trials", "2", "--epochs-per-trial", "1",
        "--final-epochs", "1", "--pruner", "none", "--study", "mc", "--threads", "1", "--artifacts", root])
    return root


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report-ml")
    make_labels(folder / "topics.tsv")
    root = folder / "artifacts"
    ok(["prepare", "csv", folder / "topics.tsv", "--label-col", "topics", "--multi-label", "--artifacts", root])
    ok(["tokenize", "--max-length", "16", "--min-df", "1", "--artifacts", root])
    ok(["train", "--model", "lstm", "--embedding-dim", "16", "--hidden-dim", "8", "--epochs", "2", "--lr", "0.01",
        "--threads", "1", "--name", "labels", "--artifacts", root])
    return root


def sections_of(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', page)


def assert_self_contained(page: str) -> None:
    """Nothing is fetched: no external source, stylesheet or script; every image is an embedded PNG."""
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script" not in page and "@import" not in page and "url(" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and page.count("<img") == len(images)
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- the three task shapes


def test_report_binary_default_run_every_section_self_contained_recorded(pipeline_copy):
    paths = artifact_paths(pipeline_copy)
    result = ok(["report", "--threads", "1", "--artifacts", pipeline_copy])
    target = paths.reports / "tiny.html"
    assert result.stdout.strip() == str(target)  # the path, on stdout: `open $(rnnkit report)`
    assert "best finished run" in result.stderr  # why this run, as evaluate says it
    page = target.read_text(encoding="utf-8")
    assert sections_of(page) == SECTIONS  # not a tuned run: no tuning section
    assert_self_contained(page)
    assert page.count("<img") >= 7  # lengths, loss, metric, confusion, ROC, PR, calibration
    assert "Confusion matrix" in page and "pos vs neg (AUC" not in page  # the AUC is in the image, the table:
    assert re.search(r"<td>pos vs neg</td><td class=num>500</td>", page)
    assert page.count('class="mistake"') == 10
    assert '<meta name="viewport"' in page and "overflow-x:auto" in page and "max-width:100%" in page
    # Atomic and recorded: the manifest holds the page's hash and what it was made from; no temp left.
    entry = json.loads(paths.manifest.read_text())["stages"]["report/tiny"]
    assert entry["outputs"] == {"reports/tiny.html": sha256_file(target)}
    assert {"dataset.pt", "checkpoints/tiny/best.pt", "prepared/test.parquet"} <= set(entry["inputs"])
    assert entry["params"]["run"] == "tiny" and entry["params"]["split"] == "test"
    assert sorted(p.name for p in paths.reports.iterdir()) == ["tiny.html"]


def test_report_mistakes_are_explained_token_by_token_where_explain_is_there(pipeline_copy):
    pytest.importorskip("captum")
    try:
        import rnnkit.interpret.attributions  # noqa: F401
    except ImportError:
        pytest.skip("rnnkit.interpret (rnnkit explain) is not there: the page says so instead")
    paths = artifact_paths(pipeline_copy)
    written = run(paths, Options(run="tiny", threads=1, mistakes=6)).reports[0]
    page = written.path.read_text(encoding="utf-8")
    explained = [block for block in page.split('class="mistake"')[1:] if 'class="tok"' in block]
    assert len(explained) == 5 and page.count('class="mistake"') == 6  # the first five, not the sixth
    assert "integrated-gradients attributions" in page


def test_report_multiclass_twenty_classes(multiclass):
    paths = artifact_paths(multiclass)
    written = run(paths, Options(run="topics", threads=1, explain=False)).reports[0]
    assert written.sections == SECTIONS and written.path == paths.reports / "topics.html"
    page = written.path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "Confusion matrix" in page and 'class="scroll zoom"' in page  # a phone scrolls the 20x20 matrix
    assert "Most frequent confusions" in page and "Per class, by support" in page
    assert all(f"<td>{name}</td>" in page for name in CLASSES)  # every class in the per-class table
    assert "micro average" in page and page.count("<td>micro average</td>") == 1
    # The other runs: topics (test figures from its evaluate report) beside tuned-mc (not evaluated).
    runs = page.split('<section id="runs">')[1].split("</section>")[0]
    assert '<tr class=this><td>topics</td>' in runs and "<td>tuned-mc</td>" in runs


def test_report_of_a_tuned_run_has_the_study(multiclass):
    paths = artifact_paths(multiclass)
    written = run(paths, Options(run="tuned-mc", threads=1, explain=False, mistakes=3)).reports[0]
    assert written.sections == [*SECTIONS, "tuning"]
    page = written.path.read_text(encoding="utf-8")
    tuning = page.split('<section id="tuning">')[1].split("</section>")[0]
    assert "<img" in tuning  # trial values and the best so far
    trials = re.findall(r"<tr(?: class=this)?><td class=num>(\d+)</td><td>(COMPLETE|PRUNED|FAIL)</td>", tuning)
    assert [n for n, _ in trials] == ["0", "1"]
    best = json.loads((paths.tune / "mc" / "best_params.json").read_text())["best_trial"]
    assert f"<tr class=this><td class=num>{best}</td>" in tuning
    assert 'scope="col">lr</th>' in tuning  # each searched parameter is a column (channels is fixed: not)


def test_report_all_writes_every_finished_run(multiclass):
    paths = artifact_paths(multiclass)
    result = ok(["report", "--all", "--no-explain", "--mistakes", "2", "--threads", "1", "--artifacts", multiclass])
    assert result.stdout.split() == [str(paths.reports / "topics.html"), str(paths.reports / "tuned-mc.html")]
    stages = json.loads(paths.manifest.read_text())["stages"]
    assert {"report/topics", "report/tuned-mc"} <= set(stages)


def test_report_multilabel_per_label_table(multilabel):
    paths = artifact_paths(multilabel)
    written = run(paths, Options(threads=1, explain=False)).reports[0]
    assert written.run == "labels" and written.sections == SECTIONS
    page = written.path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "Confusion matrix" not in page and "Per label, by support" in page
    table = page.split("Per label, by support")[1].split("</table>")[0]
    assert all(f'scope="col">{c}</th>' in table for c in ("precision", "recall", "F1", "support", "threshold"))
    supports = [int(s) for s in re.findall(r"<td>[a-z]+</td>(?:<td class=num>[0-9.]+</td>){3}<td class=num>(\d+)</td>",
                                           table)]
    assert len(supports) == 4 and supports == sorted(supports, reverse=True)
    assert "wrongly gave" in page or "missed" in page  # a multi-label mistake names the wrong label


# --------------------------------------------------------------------------- what the page computes


def test_calibration_bins_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)  # outcomes drawn with the predicted probability
    conf, observed, counts, ece, _ = calibration_bins("binary", p.reshape(-1, 1), y)
    assert counts.sum() == 20000 and ece < 0.02
    assert np.allclose(conf, observed, atol=0.03)
    sure = np.where(p > 0.5, 0.99, 0.01)  # the same outcomes, predicted at 0.01 / 0.99
    assert calibration_bins("binary", sure.reshape(-1, 1), y)[3] > 0.2


def test_one_vs_rest_micro_average_then_the_largest_classes():
    probs = np.full((12, 6), 1 / 6)
    targets = np.array([0] * 5 + [1] * 3 + [2] * 2 + [3, 4])  # class 5: no test text, no curve
    curves = one_vs_rest("multiclass", probs, targets, [f"c{i}" for i in range(6)])
    assert [name for _, _, name in curves] == ["micro average", "c0", "c1", "c2", "c3"]
    scores, truth, _ = curves[0]
    assert len(scores) == 72 and truth.sum() == 12


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "nope"], "no run named 'nope'"),
    (["--run", "../tiny"], "--run '../tiny' is not a run name"),
    (["--all", "--run", "tiny"], "--all and --run tiny: give one of them"),
    (["--mistakes", "-1"], "--mistakes -1 must be in [0, 500]"),
    (["--checkpoint", "middle"], "--checkpoint 'middle' must be one of: best, last"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(trained_pipeline, args, message):
    before = snapshot(trained_pipeline)
    result = run_cli(["report", *args, "--artifacts", trained_pipeline])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert snapshot(trained_pipeline) == before


def test_no_trained_run_says_train_first(tmp_path):
    with pytest.raises(RnnkitError, match="run `rnnkit train` first"):
        run(artifact_paths(tmp_path / "artifacts"), Options(all_runs=True))


# --------------------------------------------------------------------------- in a real browser


@pytest.mark.skipif(screenshot.browser() is None, reason="no chromium on PATH (apt-get install chromium): the "
                    "pages are not rendered in a browser")
def test_pages_render_in_headless_chromium_at_laptop_and_phone_width(pipeline_copy, multiclass, tmp_path):
    """Screenshots at 1280x2000 and 390x2000, not blank. RNNKIT_REPORT_SHOTS=folder keeps them
    there, to be looked at (a person checks titles, labels and overlaps at both widths)."""
    shots = Path(os.environ.get("RNNKIT_REPORT_SHOTS") or tmp_path / "shots")
    binary = run(artifact_paths(pipeline_copy), Options(run="tiny", threads=1, explain=False)).reports[0].path
    classes = artifact_paths(multiclass).reports / "topics.html"
    if not classes.exists():
        run(artifact_paths(multiclass), Options(run="topics", threads=1, explain=False))
    for name, page in (("binary", binary), ("multiclass", classes)):
        for width in screenshot.WIDTHS:
            png = screenshot.screenshot(page, shots / f"{name}-{width}.png", width=width, height=2000)
            share, colours = screenshot.ink(png)
            assert share > 0.02 and colours > 50, (png, share, colours)  # text, tables and figures drawn
