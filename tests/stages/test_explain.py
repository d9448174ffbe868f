"""`rnnkit explain` (rnnkit/stages/explain.py, rnnkit/interpret/): attributions that add up to
f(text) - f(baseline) for every model of the zoo and every task shape, the words BPE pieces
spell, attn-lstm's attention weights, and the command line: terminal, --json, --html, stdin,
--target on multi-class and multi-label runs, one-line errors.

Completeness is checked on models built with random weights (drawn wide, so that f moves by
more than rounding): the explain code path is the same as for a trained run's checkpoint,
which the command-line tests below cover (bilstm-pool, cnn, ngram).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from support import TINY_TRAIN, ok, run_cli, snapshot

from rnnkit.interpret.attributions import Explainer
from rnnkit.interpret.words import token_view
from rnnkit.models import ModelConfig, build_model, model_names
from rnnkit.report import screenshot
from rnnkit.text.word import WordTokenizer
from rnnkit.training.inference import Predictor

WORDS = "it was a fantastic performance but and horrible movie great dull plot acting film".split()
TEXT = "It was a fantastic performance , but a dull plot and unheardof acting !"
TASKS = {"binary": ["neg", "pos"], "multiclass": ["a", "b", "c"], "multilabel": ["x", "y", "z"]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (conftest.py)


def random_predictor(name: str, task: str, tokenizer=None, seed: int = 0, ngrams: int = 2) -> Predictor:
    """A model of the zoo with wide random weights (padding rows kept at zero), as a Predictor."""
    tokenizer = tokenizer or WordTokenizer(["<PAD>", "<UNK>", *WORDS])
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=len(tokenizer), num_outputs=1 if task == "binary" else 3, embedding_dim=16,
                         hidden_dim=8, channels=8, buckets=1024, ngrams=ngrams)
    model = build_model(name, config).eval()
    with torch.no_grad():
        for weight in model.parameters():
            weight.uniform_(-0.6, 0.6)
        for module in model.modules():
            if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and module.padding_idx is not None:
                module.weight[module.padding_idx] = 0.0
    return Predictor(model, tokenizer, task, TASKS[task], "random", torch.device("cpu"), model_name=name)


def model_f(predictor: Predictor, ids: list[int], index: int) -> float:
    """f straight from the model's logits (attributions.py's definition), not from the Explainer."""
    logits = predictor.model(torch.tensor([ids]), torch.tensor([len(ids)]))[0].double()
    if predictor.task == "binary":
        return float(logits[0] if index == 1 else -logits[0])
    if predictor.task == "multiclass":
        return float(logits.log_softmax(-1)[index])
    return float(logits[index])


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("name", model_names())
def test_explain_attributions_add_up_for_every_model(name, task):
    predictor = random_predictor(name, task)
    explainer = Explainer(predictor, steps=50)
    prediction = predictor.predict([TEXT], workers=1)[0]
    explanation = explainer.explain(TEXT, prediction)
    ids = explanation.ids
    assert ids == predictor.tokenizer.ids(TEXT) and len(explanation.tokens) == len(ids)
    assert explanation.tokens[ids.index(1)] == "unheardof"  # an unknown word shown as itself
    assert any("<UNK>" in note and "unheardof" in note for note in explanation.notes)
    assert explanation.targets
    with torch.no_grad():
        for t in explanation.targets:
            assert len(t.attributions) == len(ids)
            assert t.f_text == pytest.approx(model_f(predictor, ids, t.index), abs=1e-4)
            if name != "ngram":  # ngram's baseline is the empty bag (attributions.py)
                assert t.f_baseline == pytest.approx(model_f(predictor, [0] * len(ids), t.index), abs=1e-4)
            moved = t.f_text - t.f_baseline
            assert sum(t.attributions) - moved == pytest.approx(t.delta, abs=1e-9)
            assert abs(t.delta) < 0.05 * abs(moved) + 1e-3, (name, task, moved, t.delta)
            assert max(map(abs, t.attributions)) > 0
    assert (explanation.attention is not None) == (name == "attn-lstm")


def test_explain_targets_follow_the_task():
    binary = random_predictor("cnn", "binary")
    explainer = Explainer(binary)
    prediction = binary.predict([TEXT], workers=1)[0]
    [(index, why)] = explainer.target_indices(prediction, None)
    assert binary.label_names[index] == prediction["label"] and why == "predicted"
    other = "neg" if prediction["label"] == "pos" else "pos"
    [target] = explainer.explain(TEXT, prediction, other).targets
    assert (target.label, target.why, target.function) == (other, "--target", f"log-odds of {other}")
    assert target.probability == pytest.approx(1 - prediction["probability"])

    multilabel = random_predictor("cnn", "multilabel")
    explainer = Explainer(multilabel)
    fake = {"labels": [{"label": "z", "probability": 0.9}, {"label": "x", "probability": 0.7}],
            "probabilities": {"x": 0.7, "y": 0.2, "z": 0.9}}
    assert explainer.target_indices(fake, None) == [(2, "predicted"), (0, "predicted")]
    none = {"labels": [], "probabilities": {"x": 0.1, "y": 0.3, "z": 0.2}}
    assert explainer.target_indices(none, None) == [(1, "most probable (no label passed its threshold)")]
    assert Explainer(random_predictor("gru", "multiclass")).explain(TEXT, {
        "label": "b", "probability": 0.5, "probabilities": {"a": 0.2, "b": 0.5, "c": 0.3}}).targets[0].function \
        == "log P(b)"


def test_explain_attention_weights_are_what_attn_lstm_reads():
    predictor = random_predictor("attn-lstm", "binary")
    model = predictor.model
    ids = torch.tensor([[2, 5, 7, 3, 4], [6, 2, 9, 0, 0]])
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        alpha = model.attention_weights(ids, lengths)
        assert alpha.sum(-1).tolist() == pytest.approx([1.0, 1.0])
        assert alpha[1, 3:].abs().max() == 0  # padding gets no weight
        # The logits rebuilt from these weights are the model's: they are the weights it uses.
        h = model.lstm_outputs(ids, lengths)
        last = h[torch.arange(2), lengths - 1]
        context = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)
        rebuilt = model.head(torch.tanh(model.attention.combine(torch.cat([last, context], -1))))
        assert torch.allclose(rebuilt, model(ids, lengths), atol=1e-6)
    explanation = Explainer(predictor).explain(TEXT, predictor.predict([TEXT], workers=1)[0])
    assert len(explanation.attention) == len(explanation.ids)
    assert sum(explanation.attention) == pytest.approx(1.0)


@pytest.mark.parametrize("ngrams", [1, 2, 3])
def test_explain_ngram_opens_its_bags_exactly(ngrams):
    from rnnkit.interpret.ngram import NgramTokens

    predictor = random_predictor("ngram", "multilabel", ngrams=ngrams)
    opened = NgramTokens(predictor.model)
    assert len(opened.layers) == ngrams  # tokens, pairs, triples: one layer each
    ids = torch.tensor([[2, 5, 7, 3, 4], [6, 2, 9, 0, 0], [8, 0, 0, 0, 0]])
    lengths = torch.tensor([5, 3, 1])
    with torch.no_grad():
        assert torch.allclose(opened(ids, lengths), predictor.model(ids, lengths), atol=1e-6)
        # The all-<PAD> baseline is the empty bag: the head alone.
        assert torch.allclose(opened(torch.zeros_like(ids), lengths), predictor.model.head[1].bias.expand(3, 3))
    one_word = Explainer(predictor).explain("fantastic", predictor.predict(["fantastic"], workers=1)[0])
    [target] = one_word.targets[:1]
    assert len(target.attributions) == 1
    assert target.attributions[0] == pytest.approx(target.f_text - target.f_baseline, abs=1e-5)
    # Longer than every n: each n-gram's share is spread over its tokens, and they add up exactly.
    text = "the film was fantastic and the plot thin"
    for target in Explainer(predictor).explain(text, predictor.predict([text], workers=1)[0]).targets:
        assert sum(target.attributions) == pytest.approx(target.f_text - target.f_baseline, abs=1e-4)


def test_explain_joins_bpe_pieces_into_words():
    from rnnkit.text.bpe import BPETokenizer

    tokenizer = BPETokenizer.train(["the film was fantastic", "fantastic acting", "the plot was thin"] * 3, 300,
                                   add_bos=True)
    text = "The film was fantasticly good, héhé!"
    view = token_view(tokenizer, tokenizer.ids(text), text)
    assert view.words == ["<BOS>", "the", "film", "was", "fantasticly", "good,", "héhé!"]
    start = view.tokens.index("▁fantastic")
    assert view.tokens[start + 1] == "l" and view.word_of[start] == view.word_of[start + 1] == 4
    predictor = random_predictor("bilstm-pool", "binary", tokenizer)
    explanation = Explainer(predictor).explain(text, predictor.predict([text], workers=1)[0])
    attributions = explanation.targets[0].attributions
    words = explanation.word_values(attributions)
    assert words[4] == pytest.approx(sum(a for a, w in zip(attributions, explanation.word_of) if w == 4))
    assert sum(words) == pytest.approx(sum(attributions))


# ------------------------------------------------------------------------------ the command line

def test_explain_terminal_output(trained_pipeline):
    before = snapshot(trained_pipeline)
    result = ok(["explain", "a fantastic film", "a dull film", "--threads", "1", "--artifacts", trained_pipeline])
    out = result.stdout
    assert out.count("prediction: ") == 2 and "1. a fantastic film" in out and "2. a dull film" in out
    assert "f = log-odds of" in out and "delta " in out and "attributions sum" in out
    assert "run tiny" in result.stderr and "50 steps" in result.stderr
    assert snapshot(trained_pipeline) == before  # explain writes nothing into the artifacts


def test_explain_json_and_stdin(trained_pipeline):
    result = ok(["explain", "-", "--json", "--steps", "20", "--threads", "1", "--artifacts", trained_pipeline],
                input="a fantastic film\n\nthe plot was dull\n")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["a fantastic film", "the plot was dull"]  # the blank line skipped
    for r in rows:
        assert {"text", "tokens", "attributions", "target", "prediction", "probability", "delta", "f", "f_text",
                "f_baseline", "words", "word_attributions", "targets", "run"} <= set(r)
        assert len(r["tokens"]) == len(r["attributions"]) == len(r["ids"])
        assert r["target"] == r["prediction"] and r["run"] == "tiny" and r["f"] == f"log-odds of {r['target']}"
        assert sum(r["attributions"]) - (r["f_text"] - r["f_baseline"]) == pytest.approx(r["delta"], abs=1e-9)
        assert abs(r["delta"]) < 0.05 * abs(r["f_text"] - r["f_baseline"]) + 1e-3
        assert "attention" not in r


def test_explain_html_page_is_self_contained(trained_pipeline, tmp_path):
    page = tmp_path / "page.html"
    result = ok(["explain", "a fantastic <b>film</b>", "--html", page, "--threads", "1", "--artifacts",
                 trained_pipeline])
    assert f"page -> {page}" in result.stderr
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and 'name="viewport"' in html and "<style>" in html
    for external in ("http://", "https://", "src=", "<script", "<link", "@import", "url("):
        assert external not in html
    assert "&lt;b&gt;film&lt;/b&gt;" in html  # the text escaped
    assert html.count('class="tok"') >= 3 and "delta" in html and "prediction: " in html


@pytest.mark.parametrize(("args", "message"), [
    (["a film", "--target", "great"], "--target 'great' is not a label of run 'tiny' — use one of: neg, pos"),
    (["a film", "--steps", "0"], "--steps"),
    (["", "x"], "text 1 is empty"),
    (["a film", "--html", "no/such/folder/p.html"], "the folder no/such/folder does not exist"),
    (["a film", "--run", "nope"], "nope"),
])
def test_explain_bad_input_is_one_line(trained_pipeline, args, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = run_cli(["explain", *args, "--threads", "1", "--artifacts", trained_pipeline])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def _topics(path, multi_label: bool, n=120):
    """Topic reports as tests/cli/test_multilabel.py and test_multiclass.py build them."""
    topics = {"grain": "wheat harvest crop bushels", "oil": "crude barrel opec refinery",
              "money": "dollar rates bank interest"}
    names = list(topics)
    rows = []
    for i in range(n):
        labels = [names[i % 3]] + ([names[(i + 1) % 3]] if multi_label and i % 4 == 0 else [])
        rows.append((f"report {i}: {' '.join(topics[x] for x in labels)} today", ", ".join(labels)))
    pd.DataFrame(rows, columns=["text", "topics"]).to_csv(path, sep="\t", index=False)


@pytest.fixture(scope="module")
def topic_runs(tmp_path_factory):
    """A multi-class cnn run and a multi-label ngram run on topic reports."""
    roots = {}
    for kind, model in (("multiclass", ["--model", "cnn", "--channels", "8"]),
                        ("multilabel", ["--model", "ngram"])):
        folder = tmp_path_factory.mktemp(kind)
        _topics(folder / "topics.tsv", kind == "multilabel")
        root = folder / "artifacts"
        ok(["prepare", "csv", folder / "topics.tsv", "--label-col", "topics",
            *(["--multi-label"] if kind == "multilabel" else []), "--artifacts", root])
        ok(["tokenize", "--max-length", "16", "--artifacts", root])
        ok(["train", *model, "--embedding-dim", "16", "--epochs", "3", "--lr", "0.02", "--threads", "1",
            "--name", "topics", "--artifacts", root])
        roots[kind] = root
    return roots


def test_explain_target_on_multiclass_and_multilabel_runs(topic_runs):
    text = "crude barrel prices at the refinery"
    out = ok(["explain", text, "--target", "money", "--json", "--threads", "1", "--artifacts",
              topic_runs["multiclass"]]).stdout
    row = json.loads(out)
    assert row["target"] == "money" and row["f"] == "log P(money)" and len(row["targets"]) == 1
    assert set(row["probabilities"]) == {"grain", "money", "oil"}
    assert abs(row["delta"]) < 0.05 * abs(row["f_text"] - row["f_baseline"]) + 1e-3

    row = json.loads(ok(["explain", text, "--json", "--threads", "1", "--artifacts",
                         topic_runs["multilabel"]]).stdout)
    assert isinstance(row["prediction"], list)
    expected = row["prediction"] or [max(row["probabilities"], key=row["probabilities"].get)]
    assert [t["target"] for t in row["targets"]] == expected and row["target"] == expected[0]
    assert any("n-gram's share" in note for note in row["notes"])  # ngram says how it was attributed
    for t in row["targets"]:
        assert abs(t["delta"]) < 1e-3  # ngram is linear along the path: exact
    row = json.loads(ok(["explain", text, "--target", "grain", "--json", "--threads", "1", "--artifacts",
                         topic_runs["multilabel"]]).stdout)
    assert [t["target"] for t in row["targets"]] == ["grain"] and row["targets"][0]["why"] == "--target"
    result = run_cli(["explain", text, "--target", "ships", "--artifacts", topic_runs["multilabel"]])
    assert result.exit_code == 2 and "use one of: grain, money, oil" in result.stderr


def test_explain_attn_lstm_run_shows_attention(pipeline_copy):
    """attn-lstm through its checkpoint: attention in --json and in the terminal."""
    ok([*TINY_TRAIN, "--model", "attn-lstm", "--name", "attn", "--artifacts", pipeline_copy])
    row = json.loads(ok(["explain", "a fantastic film", "--run", "attn", "--json", "--threads", "1",
                         "--artifacts", pipeline_copy]).stdout)
    assert len(row["attention"]) == len(row["tokens"]) and sum(row["attention"]) == pytest.approx(1.0)
    out = ok(["explain", "a fantastic film", "--run", "attn", "--threads", "1", "--artifacts", pipeline_copy]).stdout
    assert "attention of the last token" in out and "most attended: " in out


def test_explain_terminal_colours_follow_the_sign():
    import io

    from rich.console import Console

    from rnnkit.interpret.render import terminal_view

    predictor = random_predictor("cnn", "binary")
    explanation = Explainer(predictor).explain(TEXT, predictor.predict([TEXT], workers=1)[0])
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=200).print(terminal_view(explanation, 1))
    values = explanation.word_values(explanation.targets[0].attributions)
    strongest = max(range(len(values)), key=lambda i: abs(values[i]))
    colour = "48;2;22;163;74" if values[strongest] > 0 else "48;2;220;38;38"  # full green / red background
    assert f"{colour}m{explanation.words[strongest]}\x1b" in out.getvalue()


@pytest.mark.skipif(screenshot.browser() is None, reason="no chromium on PATH (apt-get install chromium): the "
                    "page is not rendered in a browser")
def test_explain_html_page_renders_in_headless_chromium(trained_pipeline, tmp_path):
    """Screenshots at laptop and phone width, not blank (RNNKIT_REPORT_SHOTS=folder keeps them)."""
    shots = Path(os.environ.get("RNNKIT_REPORT_SHOTS") or tmp_path / "shots")
    page = tmp_path / "explain.html"
    ok(["explain", "a fantastic film", "a dull and boring waste of time", "--html", page, "--threads", "1",
        "--artifacts", trained_pipeline])
    for width in screenshot.WIDTHS:
        png = screenshot.screenshot(page, shots / f"explain-{width}.png", width=width, height=1200)
        share, colours = screenshot.ink(png)
        assert share > 0.02 and colours > 50, (png, share, colours)  # words, colours and text drawn
