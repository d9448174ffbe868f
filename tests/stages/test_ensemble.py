"""`rnnkit ensemble`: a run that averages its members' probabilities, with equal or fitted weights,
usable by evaluate, predict, explain, `runs` and rnnkit.load, and refused in one line when its
members do not fit together or have changed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from support import TINY_CNN, TINY_TRAIN, ok, run_cli

import rnnkit
from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.training import ensemble
from rnnkit.training.metrics import BINARY, MULTICLASS, MULTILABEL, probabilities

TINY_NGRAM = ["train", "--model", "ngram", "--embedding-dim", "16", "--epochs", "1", "--batch-size", "64",
              "--threads", "1"]
TEXTS = ["a great film, moving and funny", "dull, far too long and badly acted", "the plot was fine"]


def refused(args) -> str:
    """The one line a refused command prints (exit 2, no traceback)."""
    result = run_cli(args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def root(trained_pipeline, tmp_path_factory):
    """The tiny pipeline (bilstm-pool run 'tiny') + a cnn and an ngram run, and two ensembles of the three."""
    root = tmp_path_factory.mktemp("ensemble") / "artifacts"
    shutil.copytree(trained_pipeline, root)
    ok([*TINY_CNN, "--name", "cnn", "--artifacts", root])
    ok([*TINY_NGRAM, "--name", "ngram", "--artifacts", root])
    out = ok(["ensemble", "tiny", "cnn", "ngram", "--name", "ens", "--threads", "1", "--artifacts", root]).output
    assert "weights fitted on validation" in out
    ok(["ensemble", "tiny", "cnn", "ngram", "--name", "ens-equal", "--weights", "equal", "--threads", "1",
        "--artifacts", root])
    return root


def config_of(root, run: str) -> dict:
    return json.loads((root / "checkpoints" / run / "config.json").read_text())


@pytest.fixture
def copy(root, tmp_path):
    target = tmp_path / "artifacts"
    shutil.copytree(root, target)
    return target


# --------------------------------------------------------------------------- the arithmetic


@pytest.mark.parametrize("task", [BINARY, MULTICLASS, MULTILABEL])
def test_combine_gives_logits_of_the_weighted_average_of_probabilities(task):
    torch.manual_seed(0)
    outputs = 1 if task == BINARY else 4
    logits = [torch.randn(50, outputs) * 4 for _ in range(3)]
    weights = torch.tensor([0.5, 0.3, 0.2])
    combined = ensemble.combine(logits, weights.log(), task)
    expected = sum(w * probabilities(z, task) for w, z in zip(weights, logits))
    assert torch.allclose(probabilities(combined, task), expected, atol=1e-6)
    # One member of weight 1 is that member.
    alone = ensemble.combine(logits[:1], torch.zeros(1), task)
    assert torch.allclose(probabilities(alone, task), probabilities(logits[0], task), atol=1e-6)


def test_fit_weights_is_on_the_simplex_and_minimises_the_log_loss():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    good = np.where(y == 1, rng.uniform(0.6, 0.95, n), rng.uniform(0.05, 0.4, n))  # P(pos), informative
    noise = rng.uniform(0.2, 0.8, n)
    flipped = 1 - good * 0.5 - 0.25  # mostly wrong
    q = np.stack([np.where(y == 1, p, 1 - p) for p in (good, noise, flipped)], axis=1)
    weights, steps = ensemble.fit_weights(q)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0, abs=1e-12) and steps > 0
    equal = np.full(3, 1 / 3)
    assert ensemble.log_loss(q, weights) <= ensemble.log_loss(q, equal)
    assert weights[0] > 0.5 and weights[2] < 0.05
    # Optimal on the simplex: no vertex direction lowers the loss (KKT: the gradient is smallest,
    # and equal, on the members that carry weight).
    gradient = -(q / (q @ weights)[:, None]).mean(axis=0)
    active = weights > 1e-9
    assert gradient[active].max() - gradient[active].min() < 1e-5
    assert (gradient[~active] >= gradient[active].min() - 1e-6).all()
    # Against a fine grid of the two informative members.
    grid = [ensemble.log_loss(q[:, :2], np.array([a, 1 - a])) for a in np.linspace(0, 1, 1001)]
    two, _ = ensemble.fit_weights(q[:, :2])
    assert ensemble.log_loss(q[:, :2], two) <= min(grid) + 1e-9


def test_project_simplex():
    for v in (np.array([0.2, 0.3, 0.5]), np.array([2.0, -1.0, 0.1]), np.array([-5.0, -5.0])):
        w = ensemble.project_simplex(v)
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert ensemble.project_simplex(np.array([0.2, 0.3, 0.5])) == pytest.approx([0.2, 0.3, 0.5])


# --------------------------------------------------------------------------- the run


def test_an_ensemble_of_one_run_is_that_run(root):
    ok(["ensemble", "tiny", "--name", "solo", "--weights", "equal", "--threads", "1", "--artifacts", root])
    alone, solo = rnnkit.load(root, run="tiny"), rnnkit.load(root, run="solo")
    assert solo.model_name == "ensemble" and solo.labels == alone.labels
    assert np.abs(solo.predict_proba(TEXTS) - alone.predict_proba(TEXTS)).max() < 1e-6
    reports = {}
    for run in ("tiny", "solo"):
        ok(["evaluate", "--run", run, "--threads", "1", "--artifacts", root])
        reports[run] = json.loads((root / "reports" / f"{run}-test.json").read_text())
    a, b = reports["tiny"], reports["solo"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    for key, value in a["metrics"].items():
        assert b["metrics"][key] == pytest.approx(value, abs=1e-6), key
    assert config_of(root, "solo")["best"]["val_accuracy"] == pytest.approx(
        config_of(root, "tiny")["best"]["val_accuracy"])


def test_two_or_more_members_average_their_probabilities(root):
    members = config_of(root, "ens")["members"]
    weighted = sum(m["weight"] * rnnkit.load(root, run=m["run"]).predict_proba(TEXTS) for m in members)
    model = rnnkit.load(root / "checkpoints" / "ens")  # a run folder, as rnnkit.load takes it
    assert np.abs(model.predict_proba(TEXTS) - weighted).max() < 1e-6
    assert [p.label for p in model.predict(TEXTS)] == [model.labels[int(row[1] >= 0.5)] for row in weighted]


def test_fitted_weights_are_on_the_simplex_and_do_not_lose_to_equal_ones(root):
    fitted, equal = config_of(root, "ens"), config_of(root, "ens-equal")
    weights = [m["weight"] for m in fitted["members"]]
    assert all(w >= 0 for w in weights) and sum(weights) == pytest.approx(1.0, abs=1e-9)
    assert [m["weight"] for m in equal["members"]] == pytest.approx([1 / 3] * 3)
    assert fitted["fit"]["val_log_loss"] <= fitted["fit"]["val_log_loss_equal"] + 1e-12
    # The validation loss evaluate's way (float32, from the combined logits) agrees.
    assert fitted["best"]["val_loss"] <= equal["best"]["val_loss"] + 1e-5
    assert equal["fit"]["val_log_loss"] == pytest.approx(equal["best"]["val_loss"], abs=1e-5)


def test_the_checkpoint_holds_references_not_weights(root):
    ckpt = torch.load(root / "checkpoints" / "ens" / "best.pt", weights_only=True)
    assert ckpt["model"] == "ensemble" and ckpt["state_dict"] == {} and ckpt["task"] == "binary"
    manifest = json.loads((root / "manifest.json").read_text())["stages"]
    for member in ckpt["config"]["members"]:
        assert member["sha256"] == manifest[f"train/{member['run']}"]["outputs"][
            f"checkpoints/{member['run']}/best.pt"]
    assert ckpt["metrics"] == config_of(root, "ens")["best"]
    assert "train/ens" in manifest  # evaluate, predict, runs rm and the repairs find it as any run


def test_evaluate_predict_runs_and_explain_take_it(root):
    ok(["evaluate", "--run", "tiny", "--threads", "1", "--artifacts", root])
    out = ok(["evaluate", "--run", "ens", "--compare", "--threads", "1", "--artifacts", root]).output
    assert "ensemble" in out
    table = (root / "reports" / "comparison-test.md").read_text()
    assert "| ens | ensemble |" in table and "| tiny | bilstm-pool |" in table
    result = ok(["predict", "--run", "ens", "--json", *TEXTS[:2], "--artifacts", root])
    assert [json.loads(line)["run"] for line in result.stdout.splitlines()] == ["ens", "ens"]
    listing = {r["name"]: r for r in json.loads(ok(["runs", "--json", "--artifacts", root]).stdout)}
    assert listing["ens"]["model"] == "ensemble" and listing["ens"]["status"] == "finished"
    assert [m["run"] for m in listing["ens"]["members"]] == ["tiny", "cnn", "ngram"]
    assert listing["ens"]["value"] is not None and listing["ens"]["current_data"] is True
    show = ok(["runs", "show", "ens", "--artifacts", root]).stdout
    assert "ensemble" in show and "tiny (bilstm-pool, weight" in show and "ngram (ngram, weight" in show
    assert "epochs" not in show  # it trained none of its own: no empty line for them
    # The default-run rule takes it as any finished run with a validation metric.
    from rnnkit.training import checkpoints

    paths = artifact_paths(root)
    runs = checkpoints.list_runs(paths)
    choice = checkpoints.default_run(paths, runs)
    candidates = [r for r in runs if r.status == "finished" and r.value is not None]
    assert "ens" in {r.name for r in candidates}
    assert choice.name == max(candidates, key=lambda r: (r.value, r.updated or r.created or "", r.name)).name
    # explain: one f (the log-odds of the averaged probability), attributions through every member
    # (bilstm-pool, cnn and the opened-up ngram) that add up to f(text) - f(baseline).
    lines = ok(["explain", "--run", "ens-equal", "--json", *TEXTS, "--threads", "1", "--artifacts", root]).stdout
    for line in lines.splitlines():
        r = json.loads(line)
        moved = r["f_text"] - r["f_baseline"]
        assert sum(r["attributions"]) - moved == pytest.approx(r["delta"], abs=1e-9)
        assert abs(r["delta"]) < 0.05 * abs(moved) + 1e-3, (moved, r["delta"])
        probability = rnnkit.load(root, run="ens-equal").predict([r["text"]])[0].probabilities[r["target"]]
        assert r["probability"] == pytest.approx(probability, abs=1e-6)


def test_members_that_do_not_fit_together_are_refused_in_one_line(root, tmp_path):
    args = ["--threads", "1", "--artifacts", root]
    assert "is an ensemble itself" in refused(["ensemble", "ens", "tiny", "--name", "x", *args])
    assert "already exists" in refused(["ensemble", "tiny", "cnn", "--name", "ens", *args])
    assert "given twice" in refused(["ensemble", "tiny", "tiny", "--name", "x", *args])
    assert "--name is required" in refused(["ensemble", "tiny", "cnn", *args])
    assert "no run named 'nope'" in refused(["ensemble", "tiny", "nope", "--name", "x", *args])
    assert not (root / "checkpoints" / "x").exists() and not (root / "checkpoints" / ".x.partial").exists()
    # Task, labels and tokenizer, as the checks see checkpoints.
    from rnnkit.stages.ensemble import check_members

    base = torch.load(root / "checkpoints" / "tiny" / "best.pt", weights_only=True)
    for change, words in (({"task": "multilabel"}, "differ in task"),
                          ({"label_names": ["bad", "good"]}, "differ in label names"),
                          ({"tokenizer_json": "{}"}, "different tokenizers")):
        with pytest.raises(RnnkitError, match=words) as caught:
            check_members([{"run": "a", "checkpoint": base}, {"run": "b", "checkpoint": {**base, **change}}],
                          base["dataset_sha256"])
        assert "\n" not in str(caught.value) and " — " in str(caught.value)  # one line, with the fix


def test_a_member_of_another_dataset_is_refused(copy):
    args = ["--threads", "1", "--artifacts", copy]
    ok(["tokenize", "--max-length", "48", "--force", "--artifacts", copy])
    ok([*TINY_TRAIN, "--name", "fresh", "--artifacts", copy])
    line = refused(["ensemble", "fresh", "tiny", "--name", "mixed", *args])
    assert "'tiny' was trained on another dataset.pt" in line and "rnnkit train --name tiny --force" in line


def test_a_member_retrained_since_is_refused_until_the_ensemble_is_rebuilt(copy):
    args = ["--artifacts", copy]
    # Another seed: retrained with the same one, best.pt could come out byte-identical (its only
    # difference, the epoch's seconds, is rounded to 0.01 s), and then nothing has changed.
    ok([*TINY_CNN, "--name", "cnn", "--force", "--seed", "1", *args])
    fix = "rnnkit ensemble tiny cnn ngram --name ens --force"
    for command in (["predict", "--run", "ens", "fine"], ["evaluate", "--run", "ens", "--threads", "1"],
                    ["explain", "--run", "ens", "fine"]):
        line = refused([*command, *args])
        assert "member run 'cnn' has changed since the ensemble was made" in line and fix in line
    with pytest.raises(RnnkitError, match="has changed since"):
        rnnkit.load(copy, run="ens")
    ok([*fix.split()[1:], "--threads", "1", *args])
    ok(["predict", "--run", "ens", "fine", *args])


def test_runs_rm_refuses_a_member_while_an_ensemble_uses_it(copy):
    args = ["--yes", "--artifacts", copy]
    line = refused(["runs", "rm", "cnn", *args])
    assert "member of ensemble 'ens', 'ens-equal'" in line and "rnnkit runs rm ens" in line
    assert (copy / "checkpoints" / "cnn" / "best.pt").exists()
    ok(["runs", "rm", "ens", *args])
    ok(["runs", "rm", "ens-equal", *args])
    ok(["runs", "rm", "cnn", *args])
    assert not (copy / "checkpoints" / "cnn").exists()


# --------------------------------------------------------------------------- multi-label


TOPICS = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
          "money": "dollar rates bank interest"}


def test_multilabel_ensemble_refits_its_thresholds_on_validation(tmp_path):
    from rnnkit.text.dataset import load_dataset
    from rnnkit.training import inference
    from rnnkit.training.inference import Predictor
    from rnnkit.training.thresholds import fit_thresholds

    names = list(TOPICS)
    rows = []
    for i in range(240):
        labels = [names[i % 3]] + ([names[(i + 1) % 3]] if i % 4 == 0 else [])
        rows.append((f"report {i}: {' '.join(TOPICS[x] for x in labels)} today", ", ".join(labels)))
    path = tmp_path / "topics.tsv"
    pd.DataFrame(rows, columns=["text", "topics"]).to_csv(path, sep="\t", index=False)
    root = tmp_path / "artifacts"
    ok(["prepare", "csv", path, "--label-col", "topics", "--multi-label", "--artifacts", root])
    ok(["tokenize", "--max-length", "32", "--artifacts", root])
    ok(["train", "--model", "lstm", "--embedding-dim", "16", "--hidden-dim", "16", "--lr", "0.01", "--epochs", "3",
        "--threads", "1", "--name", "a", "--artifacts", root])
    ok(["train", "--model", "cnn", "--embedding-dim", "16", "--channels", "8", "--lr", "0.01", "--epochs", "3",
        "--threads", "1", "--name", "b", "--artifacts", root])
    ok(["ensemble", "a", "b", "--name", "ab", "--weights", "equal", "--threads", "1", "--artifacts", root])
    ckpt = torch.load(root / "checkpoints" / "ab" / "best.pt", weights_only=True)
    paths = artifact_paths(root)
    data = load_dataset(paths)
    model = Predictor.from_run(paths, "ab").model
    probs = probabilities(inference.predict_logits(model, data["X_val"], data["lengths_val"]), MULTILABEL).numpy()
    expected = fit_thresholds(probs, data["y_val"].numpy(), at_least_one=True)
    assert ckpt["decision"]["thresholds"] == pytest.approx(expected.thresholds, abs=1e-6)
    own = [torch.load(root / "checkpoints" / r / "best.pt", weights_only=True)["decision"]["thresholds"]
           for r in ("a", "b")]
    assert ckpt["decision"]["thresholds"] not in own
    assert "val_micro_f1" in config_of(root, "ab")["best"]
    ok(["evaluate", "--run", "ab", "--threads", "1", "--artifacts", root])
    report = json.loads((root / "reports" / "ab-test.json").read_text())
    assert sorted(row["threshold"] for row in report["per_label"]) == pytest.approx(
        sorted(ckpt["decision"]["thresholds"]))
    result = ok(["predict", "--run", "ab", "crude barrel prices at the refinery", "--json", "--artifacts", root])
    assert "per-label thresholds fitted on validation" in result.stderr
    assert set(json.loads(result.stdout)["probabilities"]) == set(TOPICS)
