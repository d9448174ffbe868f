"""`rnnkit pretrain` (rnnkit/stages/pretrain.py, training/lm.py, models/language.py) and
`rnnkit train --init-from`.

The corpus is 40 train reviews + 5 unlabelled ones from the sample (conftest's
`unlabeled_embedded`); the language models are 8-d, cut to 2,000 tokens: about a second each.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from support import ok, run_cli

from rnnkit.artifacts import artifact_paths
from rnnkit.models.language import LanguageModel, LMConfig, init_classifier
from rnnkit.stages import pretrain
from rnnkit.text.base import PAD_ID, Tokenizer
from rnnkit.training.lm import frequency_rank

TINY_LM = dict(embedding_dim=8, hidden_dim=8, bptt=8, batch_size=4, epochs=2, eval_every=20, max_tokens=2000,
               threads=1, dropout=0.1, weight_drop=0.2, embedding_dropout=0.1)
TINY_LM_FLAGS = ["pretrain", "--embedding-dim", "8", "--hidden-dim", "8", "--bptt", "8", "--batch-size", "4",
                 "--epochs", "2", "--max-tokens", "2000", "--threads", "1"]
TINY_FT = ["train", "--model", "bilstm-pool", "--epochs", "1", "--batch-size", "16", "--threads", "1"]


@pytest.fixture
def root(unlabeled_embedded, tmp_path):
    target = tmp_path / "artifacts"
    shutil.copytree(unlabeled_embedded, target)
    return target


@pytest.fixture(scope="module")
def pretrained(unlabeled_embedded, tmp_path_factory):
    """A copy of the unlabeled corpus with one tiny language model, `lm` (both directions)."""
    target = tmp_path_factory.mktemp("pretrained") / "artifacts"
    shutil.copytree(unlabeled_embedded, target)
    result = pretrain.run(artifact_paths(target), pretrain.Options(name="lm", **TINY_LM))
    return target, result


def test_pretraining_reads_the_train_and_unlabeled_texts_and_never_val_or_test(root, monkeypatch):
    read = []
    original = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, *a, **k: read.append(str(path)) or original(path, *a, **k))
    result = pretrain.run(artifact_paths(root), pretrain.Options(name="lm", **{**TINY_LM, "max_tokens": 0}))
    assert sorted(p.rsplit("/", 1)[-1] for p in read) == ["train.parquet", "unlabeled.parquet"]
    # Every token of those texts, each text ended by <PAD>, is in the train or the held-out stream.
    tokenizer = Tokenizer.load(root / "tokenizer.json")
    texts = [t for split in ("train", "unlabeled")
             for t in pd.read_parquet(root / "prepared" / f"{split}.parquet")["text"]]
    assert result.train_tokens + result.val_tokens == sum(len(tokenizer.ids(t, truncation=False)) + 1 for t in texts)
    record = json.loads((root / "manifest.json").read_text())["stages"]["pretrain/lm"]
    assert set(record["inputs"]) == {"tokenizer.json", "prepared/train.parquet", "prepared/unlabeled.parquet"}


def test_the_held_out_texts_are_unlabeled_ones_and_not_trained_on(root):
    from collections import Counter

    files = [root / "prepared" / "train.parquet", root / "prepared" / "unlabeled.parquet"]
    corpus = pretrain.read_corpus(files, val_share=0.02, seed=0)
    train, unlabeled = (pd.read_parquet(f)["text"].tolist() for f in files)
    assert len(corpus.val) == 1 and corpus.val[0] in unlabeled
    # Every text once: the held-out one in val, all the others (train's first) in train.
    assert Counter(corpus.train) + Counter(corpus.val) == Counter(train + unlabeled)


def test_held_out_perplexity_falls_and_the_folder_holds_what_train_needs(pretrained):
    root, result = pretrained
    folder = root / "pretrained" / "lm"
    assert {p.name for p in folder.iterdir()} == {"encoder.pt", "metrics.jsonl", "perplexity.png", "settings.json"}
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert history == json.loads(json.dumps(result.history))
    held_out = [h["val_ppl"] for h in history]
    assert all(b < a for a, b in zip(held_out, held_out[1:])) and held_out[-1] < 0.75 * held_out[0]
    encoder = torch.load(folder / "encoder.pt", weights_only=True)
    lstm = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    assert set(encoder["encoder"]) == {"embedding.weight"} | {f"stacks.{d}.0.{w}" for d in ("fwd", "bwd") for w in lstm}
    assert encoder["tokenizer_sha256"] == json.loads((root / "manifest.json").read_text())["stages"]["tokenize"][
        "outputs"]["tokenizer.json"]


def test_resuming_continues_the_same_trajectory(root):
    paths = artifact_paths(root)
    whole = pretrain.run(paths, pretrain.Options(name="whole", **TINY_LM))

    def stop_at_the_second(record):
        if record["steps"] == 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain.run(paths, pretrain.Options(name="cut", **TINY_LM), on_eval=stop_at_the_second)
    assert not (root / "pretrained" / "cut").exists() and (root / "pretrained" / ".cut.partial" / "state.pt").exists()
    resumed = pretrain.run(paths, pretrain.Options(name="cut", resume=True, threads=1), given={"resume", "name"})
    timing = ("seconds", "tokens_per_second")
    assert [{k: v for k, v in h.items() if k not in timing} for h in resumed.history] == \
        [{k: v for k, v in h.items() if k not in timing} for h in whole.history]
    a = torch.load(root / "pretrained" / "whole" / "encoder.pt", weights_only=True)["encoder"]
    b = torch.load(root / "pretrained" / "cut" / "encoder.pt", weights_only=True)["encoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_existing_model_is_kept_unless_forced_and_resume_takes_no_settings(pretrained, tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(pretrained[0], root)
    before = (root / "pretrained" / "lm" / "encoder.pt").read_bytes()
    result = run_cli([*TINY_LM_FLAGS, "--name", "lm", "--artifacts", root])
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert (root / "pretrained" / "lm" / "encoder.pt").read_bytes() == before
    result = run_cli(["pretrain", "--name", "lm", "--resume", "--artifacts", root])
    assert result.exit_code == 2 and "no interrupted pretraining 'lm'" in result.output
    ok([*TINY_LM_FLAGS, "--name", "lm", "--force", "--seed", "1", "--artifacts", root])
    assert (root / "pretrained" / "lm" / "encoder.pt").read_bytes() != before


def test_the_language_model_never_sees_the_tokens_it_predicts():
    """Each direction's output at step t depends only on the tokens it has read by then."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=50, embedding_dim=6, hidden_dim=5, layers=2)).eval()
    ids = torch.randint(2, 50, (3, 12))
    changed = ids.clone()
    changed[:, 7:] = torch.randint(2, 50, (3, 5))
    state = model.initial_state(3, "cpu")["forward"]
    a, _ = model.hidden(ids, "forward", state)
    b, _ = model.hidden(changed, "forward", state)
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:])


def test_frequency_rank_puts_the_commonest_tokens_first():
    stream = torch.tensor([5, 5, 5, 2, 2, 0, 7, 2, 5])
    rank = frequency_rank(stream, 8)
    assert rank[5] == 0 and rank[2] == 1 and rank[0] == 2 and rank[7] == 3
    assert sorted(rank.tolist()) == list(range(8))


@pytest.mark.parametrize("softmax", ["adaptive", "full"])
def test_the_loss_is_the_mean_negative_log_likelihood_of_a_normalised_distribution(softmax):
    torch.manual_seed(0)
    vocab = 3000  # above the first adaptive cutoff (2,000): two clusters
    config = LMConfig(vocab_size=vocab, embedding_dim=4, hidden_dim=6, softmax=softmax,
                      cutoffs=[2000] if softmax == "adaptive" else [])
    model = LanguageModel(config, torch.randperm(vocab)).eval()
    hidden = torch.randn(2, 5, 6)
    targets = torch.randint(0, vocab, (2, 5))
    flat = hidden.reshape(-1, 6)
    if softmax == "adaptive":
        log_probs = model.softmax.log_prob(flat)[:, model.rank]  # back from ranks to token ids
    else:
        log_probs = torch.log_softmax(model.softmax(flat), -1)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(10), atol=1e-5)
    expected = -log_probs.gather(1, targets.reshape(-1, 1)).mean()
    assert torch.allclose(model.loss(hidden, targets), expected, atol=1e-5)


def test_a_classifier_from_the_language_model_computes_what_the_language_model_does():
    """Its forward direction reads the text as the forward LM, its backward one as the backward
    LM reading the reversed text: the same weights, the same outputs."""
    from rnnkit.models import ModelConfig, build_model

    torch.manual_seed(0)
    lm = LanguageModel(LMConfig(vocab_size=40, embedding_dim=6, hidden_dim=5)).eval()
    model = build_model("bilstm-pool", ModelConfig(vocab_size=40, num_outputs=1, embedding_dim=6, hidden_dim=5)).eval()
    copied = init_classifier(model, lm.encoder_state(), lm.config)
    assert copied == sum(v.numel() for v in lm.encoder_state().values())
    ids = torch.randint(2, 40, (1, 9))
    outputs, _ = model.rnn(model.embedding(ids), torch.tensor([9]))
    forward, _ = lm.hidden(ids, "forward", lm.initial_state(1, "cpu")["forward"])
    backward, _ = lm.hidden(ids.flip(1), "backward", lm.initial_state(1, "cpu")["backward"])
    assert torch.allclose(outputs[..., :5], forward, atol=1e-6)
    assert torch.allclose(outputs[..., 5:], backward.flip(1), atol=1e-6)
    assert model.embedding.weight[PAD_ID].abs().sum() == 0


def test_train_init_from_starts_from_the_encoder_and_gradual_unfreezing_trains_the_head_first(pretrained, tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(pretrained[0], root)
    result = ok([*TINY_FT, "--init-from", "lm", "--gradual-unfreeze", "--name", "ft", "--artifacts", root])
    assert "from language model lm" in result.output
    encoder = torch.load(root / "pretrained" / "lm" / "encoder.pt", weights_only=True)["encoder"]
    weights = torch.load(root / "checkpoints" / "ft" / "best.pt", weights_only=True)["state_dict"]
    # Epoch 1 of gradual unfreezing trains the head alone: the encoder is the language model's.
    assert torch.equal(weights["embedding.weight"][1:], encoder["embedding.weight"][1:])
    assert torch.equal(weights["rnn.layers.0.1.weight_hh_l0"], encoder["stacks.bwd.0.weight_hh_l0"])
    config = json.loads((root / "checkpoints" / "ft" / "config.json").read_text())
    assert config["init_from"]["name"] == "lm" and config["model_config"]["hidden_dim"] == 8
    page = (root / "reports" / "ft.html")
    ok(["report", "--run", "ft", "--no-explain", "--threads", "1", "--artifacts", root])
    assert "encoder from language model" in page.read_text(encoding="utf-8")
    # Without gradual unfreezing the encoder is fine-tuned from there.
    ok([*TINY_FT, "--init-from", "pretrained/lm", "--name", "ft2", "--artifacts", root])
    weights = torch.load(root / "checkpoints" / "ft2" / "best.pt", weights_only=True)["state_dict"]
    assert not torch.equal(weights["rnn.layers.0.1.weight_hh_l0"], encoder["stacks.bwd.0.weight_hh_l0"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--model", "cnn"], "--model cnn has none"),
    (["--hidden-dim", "16"], "--hidden-dim 16 (the language model's: 8)"),
    (["--init-from", "nope"], "--init-from nope: no pretrained model there"),
    (["--embeddings", "embeddings.pt"], "already sets the embedding"),
])
def test_train_init_from_refuses_what_does_not_fit_in_one_line(pretrained, flags, message):
    root = pretrained[0]
    result = run_cli([*TINY_FT, "--init-from", "lm", *flags, "--artifacts", root])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3


def test_train_init_from_refuses_a_model_pretrained_for_another_tokenizer(pretrained, tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(pretrained[0], root)
    ok(["tokenize", "--min-df", "1", "--vocab-size", "300", "--force", "--artifacts", root])
    result = run_cli([*TINY_FT, "--init-from", "lm", "--artifacts", root])
    assert result.exit_code == 2 and "another tokenizer.json" in result.output


def test_mixed_precision_pretraining_learns_on_the_cpu(root):
    import math

    result = pretrain.run(artifact_paths(root), pretrain.Options(name="amp", **{**TINY_LM, "amp": True}))
    held_out = [h["val_ppl"] for h in result.history]
    assert all(math.isfinite(p) for p in held_out) and held_out[-1] < 0.9 * held_out[0]
