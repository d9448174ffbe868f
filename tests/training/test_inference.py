"""Batched inference on worker threads: same logits as the plain loop, in row order."""

import random

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig, build_model
from rnnkit.text.word import WordTokenizer
from rnnkit.training import inference
from rnnkit.training.inference import Predictor

CPU = torch.device("cpu")


def tiny_model(name="bilstm-pool", vocab=40):
    torch.manual_seed(0)
    return build_model(name, ModelConfig(vocab_size=vocab, num_outputs=1, embedding_dim=8, hidden_dim=6,
                                         channels=4)).eval()


def ragged(n=50, vocab=40, width=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (n,), generator=g)
    x = torch.randint(2, vocab, (n, width), generator=g)
    x[torch.arange(width).expand(n, width) >= lengths.unsqueeze(1)] = 0
    return x, lengths


def one_at_a_time(model, x, lengths):
    """Each row alone, unpadded: the reference every batched path must match."""
    with torch.inference_mode():
        return torch.cat([model(x[i : i + 1, : int(lengths[i])], lengths[i : i + 1]) for i in range(len(x))])


@pytest.mark.parametrize("name", ["bilstm-pool", "lstm", "cnn"])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_threads_give_the_rows_their_own_logits_in_order(name, workers):
    model = tiny_model(name)
    x, lengths = ragged()
    got = inference.predict_logits(model, x, lengths, batch_size=7, device=CPU, workers=workers)
    assert got.shape == (len(x), 1)
    torch.testing.assert_close(got, one_at_a_time(model, x, lengths), rtol=1e-5, atol=1e-5)


def test_batches_finishing_in_any_order_fill_their_own_rows():
    model = tiny_model()
    x, lengths = ragged(n=40)
    order = list(range(40))
    random.Random(1).shuffle(order)
    batches = []
    for first in range(0, 40, 5):  # unsorted rows, batches of mixed lengths
        index = torch.tensor(order[first : first + 5])
        batches.append((index, x[index, : int(lengths[index].max())], lengths[index]))
    plain = inference.logits_of_batches(model, batches, 40, device=CPU, workers=1)
    threaded = inference.logits_of_batches(model, iter(batches), 40, device=CPU, workers=2)
    torch.testing.assert_close(threaded, plain, rtol=0, atol=0)
    torch.testing.assert_close(plain, one_at_a_time(model, x, lengths), rtol=1e-5, atol=1e-5)


def test_workers_restore_torch_thread_count():
    before = torch.get_num_threads()
    x, lengths = ragged(n=10)
    inference.predict_logits(tiny_model(), x, lengths, batch_size=3, device=CPU, workers=2)
    assert torch.get_num_threads() == before


def test_autocast_reaches_the_worker_threads():
    """autocast is thread-local: each worker must enter it itself, or --amp would do nothing."""
    model = tiny_model()
    x, lengths = ragged()
    fp32 = inference.predict_logits(model, x, lengths, batch_size=8, device=CPU, workers=2)
    bf16_plain = inference.predict_logits(model, x, lengths, batch_size=8, device=CPU, amp=True, workers=1)
    bf16_threads = inference.predict_logits(model, x, lengths, batch_size=8, device=CPU, amp=True, workers=2)
    torch.testing.assert_close(bf16_threads, bf16_plain, rtol=0, atol=0)
    assert not torch.equal(bf16_threads, fp32)
    torch.testing.assert_close(bf16_threads, fp32, rtol=0, atol=0.05)


def test_worker_and_batch_defaults_follow_the_device():
    assert inference.resolve_workers(None, torch.device("cuda")) == 1
    assert inference.resolve_workers(None, CPU) == torch.get_num_threads()
    assert inference.resolve_workers(3, CPU) == 3
    assert inference.default_batch_size(CPU) == inference.CPU_BATCH_SIZE
    assert inference.default_batch_size(torch.device("cuda")) == inference.CUDA_BATCH_SIZE
    with pytest.raises(RnnkitError, match="--workers 0"):
        inference.resolve_workers(0, CPU)


def make_predictor():
    words = "good great fine bad awful dull film plot acting story was the a not".split()
    tokenizer = WordTokenizer(["<PAD>", "<UNK>", *words], max_length=50)
    model = tiny_model(vocab=tokenizer.vocab_size)
    return Predictor(model, tokenizer, "binary", ["neg", "pos"], "tiny", CPU)


def texts(n=60, seed=0):
    rng = random.Random(seed)
    words = "good great fine bad awful dull film plot acting story was the a not unseen!".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def test_predictor_chunks_and_workers_keep_predictions_and_order(monkeypatch):
    predictor = make_predictor()
    items = texts()
    plain = predictor.probabilities(items, 8, workers=1)  # one chunk, one thread
    original = Predictor._batches
    # Small chunks: tokenizing and computing interleave over many chunks.
    monkeypatch.setattr(Predictor, "_batches", lambda self, t, b, c: original(self, t, b, 13))
    threaded = predictor.probabilities(items, 8, workers=2)
    torch.testing.assert_close(threaded, plain, rtol=1e-6, atol=1e-6)
    single = torch.cat([predictor.probabilities([t], 1, workers=1) for t in items])
    torch.testing.assert_close(plain, single, rtol=1e-5, atol=1e-5)
    results = predictor.predict(items, workers=2)
    assert [r["text"] for r in results] == items


def test_predictor_batches_pad_each_batch_to_its_longest_text():
    predictor = make_predictor()
    items = texts(20)
    seen = set()
    for index, ids, lengths in predictor._batches(items, 6, 10):
        assert ids.shape == (len(index), int(lengths.max()))
        assert lengths.tolist() == sorted(lengths.tolist(), reverse=True)
        for row, i, n in zip(ids.tolist(), index.tolist(), lengths.tolist()):
            assert row[:n] == predictor.tokenizer.ids(items[i]) and set(row[n:]) <= {0}
            seen.add(i)
    assert seen == set(range(20))


def test_predictor_from_run_takes_the_folder_as_a_path(trained_pipeline):
    """Predictor.from_run("artifacts") once failed with an AttributeError: it wanted ArtifactPaths."""
    from rnnkit.artifacts import artifact_paths

    by_str = Predictor.from_run(str(trained_pipeline), device="cpu")
    by_paths = Predictor.from_run(artifact_paths(trained_pipeline), "tiny", device="cpu")
    assert by_str.run == by_paths.run == "tiny" and by_str.model_name == "bilstm-pool"
    assert by_str.checkpoint == trained_pipeline / "checkpoints" / "tiny" / "best.pt"
    assert by_str.epoch == 1 and "val_accuracy" in by_str.metrics
    torch.testing.assert_close(by_str.probabilities(["great film"]), by_paths.probabilities(["great film"]))
    assert Predictor.from_run(trained_pipeline, which="last", device="cpu").checkpoint.name == "last.pt"
    with pytest.raises(RnnkitError, match="checkpoint 'worst' — use best or last"):
        Predictor.from_run(trained_pipeline, which="worst")


def test_a_checkpoint_is_named_after_its_run_folder(trained_pipeline, tmp_path):
    import shutil

    best = trained_pipeline / "checkpoints" / "tiny" / "best.pt"
    assert Predictor.from_checkpoint(best, device="cpu").run == "tiny"
    assert Predictor.from_checkpoint(best, run="other", device="cpu").run == "other"
    shutil.copy(best, tmp_path / "sentiment.pt")
    assert inference.run_name_of(tmp_path / "sentiment.pt") == "sentiment"  # a copy kept under its own name


def test_predict_and_probabilities_refuse_empty_texts():
    predictor = make_predictor()
    with pytest.raises(RnnkitError, match="text 2 is empty"):
        predictor.predict(["good film", " "])
    with pytest.raises(RnnkitError, match="text 1 is empty"):
        Predictor.check_texts([""])
