"""One tiny end-to-end run of every stage through the CLI, on the embedded sample."""

import json
import math
import subprocess
import sys

import torch
from support import TINY_CNN, TINY_TOKENIZE, ok, run_cli

from rnnkit.text.dataset import load_word2idx


def test_stages_write_their_artifacts(trained_pipeline):
    root = trained_pipeline
    data = torch.load(root / "dataset.pt", weights_only=True)
    for split, n in (("train", 2100), ("val", 900), ("test", 1000)):
        assert data[f"X_{split}"].shape == (n, 64) and data[f"y_{split}"].shape == (n,)
        assert int(data[f"lengths_{split}"].max()) <= 64
    word2idx = load_word2idx(__import__("rnnkit.artifacts").artifacts.artifact_paths(root))
    assert word2idx["<PAD>"] == 0 and word2idx["<UNK>"] == 1 and len(word2idx) == int(data["vocab_size"])
    run = root / "checkpoints" / "tiny"
    assert {p.name for p in run.iterdir()} == {"best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json",
                                             "state.pt"}
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert record["epoch"] == 1 and 0.0 <= record["val_accuracy"] <= 1.0
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((root / "manifest.json").read_text())
    assert {"prepare", "tokenize", "train/tiny"} <= set(manifest["stages"])


def test_second_tokenize_is_up_to_date(pipeline_copy):
    result = ok([*TINY_TOKENIZE, "--artifacts", pipeline_copy])
    assert "up to date" in result.output


def test_evaluate_reports_binary_metrics(pipeline_copy):
    result = ok(["evaluate", "--artifacts", pipeline_copy])
    report = json.loads((pipeline_copy / "reports" / "tiny-test.json").read_text())
    assert set(report["metrics"]) == {"loss", "accuracy", "precision", "recall", "f1", "macro_f1"}
    assert report["examples"] == 1000 and sum(map(sum, report["confusion_matrix"])) == 1000
    assert "accuracy" in result.output and (pipeline_copy / "reports" / "tiny-test.png").exists()


def test_evaluate_compare_lists_runs_with_size_and_cost(pipeline_copy):
    ok([*TINY_CNN, "--name", "tiny-cnn", "--artifacts", pipeline_copy])
    ok(["evaluate", "--run", "tiny", "--artifacts", pipeline_copy])
    ok(["evaluate", "--run", "tiny-cnn", "--compare", "--artifacts", pipeline_copy])
    reports = {name: json.loads((pipeline_copy / "reports" / f"{name}-test.json").read_text())
               for name in ("tiny", "tiny-cnn")}
    for report in reports.values():
        assert 0 < report["parameters_without_embedding"] < report["parameters"]
        assert report["seconds_per_epoch"] > 0
    # The two models differ in size, and the embedding (same vocabulary, same width) in neither.
    assert reports["tiny"]["parameters"] != reports["tiny-cnn"]["parameters"]
    assert (reports["tiny"]["parameters"] - reports["tiny"]["parameters_without_embedding"]
            == reports["tiny-cnn"]["parameters"] - reports["tiny-cnn"]["parameters_without_embedding"])
    table = (pipeline_copy / "reports" / "comparison-test.md").read_text().splitlines()
    assert table[0].startswith("| run | model | epoch | loss | accuracy") and len(table) == 4
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    assert set(rows) == {"tiny", "tiny-cnn"}
    assert f"{reports['tiny-cnn']['parameters']:,}" in rows["tiny-cnn"]


def test_cnn_widths_and_channels_reach_the_checkpoint(pipeline_copy):
    ok([*TINY_CNN, "--channels", "6", "--kernel-sizes", "2,5", "--name", "narrow-cnn",
        "--artifacts", pipeline_copy])
    checkpoint = torch.load(pipeline_copy / "checkpoints" / "narrow-cnn" / "best.pt", weights_only=False)
    assert checkpoint["config"]["channels"] == 6 and checkpoint["config"]["kernel_sizes"] == [2, 5]
    convs = [v for k, v in checkpoint["state_dict"].items() if k.startswith("convs.") and k.endswith(".weight")]
    assert [tuple(w.shape) for w in convs] == [(6, 16, 2), (6, 16, 5)]  # (channels, embedding 16, width)
    ok(["evaluate", "--run", "narrow-cnn", "--artifacts", pipeline_copy])


def test_predict_text_json_and_stdin_agree(pipeline_copy):
    texts = ["great film", "a dull, boring waste of time"]
    plain = ok(["predict", *texts, "--artifacts", pipeline_copy]).stdout.strip().splitlines()
    assert [line.split("\t")[0] in ("pos", "neg") for line in plain] == [True, True]
    as_json = [json.loads(x) for x in ok(["predict", *texts, "--json", "--artifacts", pipeline_copy])
               .stdout.strip().splitlines()]
    from_stdin = [json.loads(x) for x in ok(["predict", "-", "--json", "--artifacts", pipeline_copy],
                                            input="\n".join(texts) + "\n").stdout.strip().splitlines()]
    assert as_json == from_stdin
    for line, obj in zip(plain, as_json):
        assert line.split("\t")[0] == obj["label"]
        assert abs(obj["probabilities"]["pos"] + obj["probabilities"]["neg"] - 1) < 1e-6
        assert obj["probability"] >= 0.5


def test_training_an_existing_run_name_needs_force(pipeline_copy):
    before = (pipeline_copy / "checkpoints" / "tiny" / "best.pt").read_bytes()
    result = run_cli(["train", "--name", "tiny", "--epochs", "1", "--artifacts", pipeline_copy])
    assert result.exit_code != 0 and "--force" in result.output
    assert (pipeline_copy / "checkpoints" / "tiny" / "best.pt").read_bytes() == before


def test_help_does_not_import_torch():
    code = ("import sys\nfrom rnnkit.cli import app\n"
            "for args in (['--help'], ['train', '--help'], ['prepare', 'imdb', '--help']):\n"
            "    try:\n        app(args)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'pandas', 'gensim', 'optuna', 'sklearn') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_models_lists_every_registered_model_with_parameter_counts(tmp_path):
    from rnnkit.models import model_names

    out = ok(["models", "--vocab-size", "1000", "--embedding-dim", "10", "--artifacts", tmp_path]).output
    for name in model_names():
        assert name in out
    # lstm: embedding 10,000 + LSTM 4*8*(10+8)+2*4*8 ... checked through its own count:
    from rnnkit.models import ModelConfig, build_model

    lstm = build_model("lstm", ModelConfig(vocab_size=1000, num_outputs=1, embedding_dim=10))
    total = sum(p.numel() for p in lstm.parameters())
    assert f"{total:,}" in out and f"{total - 10_000:,}" in out


def test_amp_predictions_agree_with_float32(pipeline_copy):
    texts = ["great film", "a dull, boring waste of time", "not bad at all, i liked the actors"]
    fp32 = [json.loads(x) for x in ok(["predict", *texts, "--json", "--artifacts", pipeline_copy])
            .stdout.strip().splitlines()]
    bf16 = [json.loads(x) for x in ok(["predict", *texts, "--json", "--amp", "--artifacts", pipeline_copy])
            .stdout.strip().splitlines()]
    for a, b in zip(fp32, bf16):
        assert abs(a["probabilities"]["pos"] - b["probabilities"]["pos"]) < 0.02


def test_worker_threads_keep_predictions_and_order(pipeline_copy):
    texts = ["great film", "a dull, boring waste of time", "not bad at all, i liked the actors",
             "awful", "the best acting i have seen in years, a wonderful story"]

    def predict(*flags):
        out = ok(["predict", *texts, "--json", *flags, "--artifacts", pipeline_copy]).stdout
        return [json.loads(x) for x in out.strip().splitlines()]

    plain = predict("--workers", "1", "--batch-size", "256")
    threaded = predict("--workers", "2", "--batch-size", "2")
    assert [r["text"] for r in threaded] == texts
    for a, b in zip(plain, threaded):
        assert a["label"] == b["label"] and abs(a["probabilities"]["pos"] - b["probabilities"]["pos"]) < 1e-5


def test_evaluate_with_worker_threads_reports_the_same_metrics(pipeline_copy):
    reports = []
    for flags in (["--workers", "1", "--batch-size", "256"], ["--workers", "2", "--batch-size", "16"]):
        ok(["evaluate", *flags, "--artifacts", pipeline_copy])
        reports.append(json.loads(next((pipeline_copy / "reports").glob("*-test.json")).read_text()))
    for key, value in reports[0]["metrics"].items():
        assert abs(reports[1]["metrics"][key] - value) < 1e-5, key


def test_compiled_training_matches_eager_and_saves_a_plain_checkpoint(pipeline_copy):
    """--compile (torch.compile) trains the same numbers as eager mode, and its checkpoint is
    an ordinary one: no `_orig_mod.` key prefix, loadable by predict without compiling.
    Dropout is off (compiled dropout draws other masks than eager) and the learning rate high
    and constant enough that the loss leaves chance level, so a mismatch would show."""
    losses = {}
    for name, flags in (("eager", []), ("compiled", ["--compile"])):
        ok([*TINY_CNN, "--dropout", "0", "--lr", "0.01", "--schedule", "constant", *flags,
            "--name", name,
            "--artifacts", pipeline_copy])
        record = json.loads((pipeline_copy / "checkpoints" / name / "metrics.jsonl").read_text().splitlines()[0])
        losses[name] = record["train_loss"], record["val_loss"]
    assert abs(losses["eager"][1] - math.log(2)) > 0.01, losses  # it learnt something
    for eager, compiled in zip(losses["eager"], losses["compiled"]):
        assert abs(compiled - eager) < 1e-4, losses
    state = torch.load(pipeline_copy / "checkpoints" / "compiled" / "best.pt", weights_only=True)["state_dict"]
    assert state and not any(key.startswith("_orig_mod.") for key in state)
    out = ok(["predict", "great film", "--run", "compiled", "--json", "--artifacts", pipeline_copy]).stdout
    assert json.loads(out)["label"] in ("neg", "pos")
