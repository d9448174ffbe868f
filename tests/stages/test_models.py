"""`rnnkit models` (rnnkit/stages/models.py): every model at the given sizes, counted once."""

from dataclasses import fields

import pytest

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig, build_model, model_names
from rnnkit.models.config import ModelOptions
from rnnkit.options import spec_of
from rnnkit.stages.models import Options, run


def test_sizes_are_declared_by_model_options():
    declared = {f.name: f for f in fields(ModelOptions)}
    for f in fields(Options):
        if f.name in declared:
            assert spec_of(f) is spec_of(declared[f.name]) and f.default == declared[f.name].default
    assert {f.name for f in fields(Options)} == {"embedding_dim", "hidden_dim", "layers", "channels",
                                                 "kernel_sizes", "vocab_size"}


def test_every_model_with_its_parameters(tmp_path):
    result = run(artifact_paths(tmp_path), Options(vocab_size=1000, embedding_dim=10))
    assert result.vocab_size == 1000 and [row.name for row in result.rows] == model_names()
    rows = {row.name: row for row in result.rows}
    lstm = build_model("lstm", ModelConfig(vocab_size=1000, num_outputs=1, embedding_dim=10))
    assert rows["lstm"].parameters == sum(p.numel() for p in lstm.parameters())
    assert rows["lstm"].hidden_dim == 128
    assert rows["cnn"].hidden_dim is None  # the cnn has no hidden layer: --channels sizes it
    for row in result.rows:
        assert row.parameters - row.parameters_without_embedding == 1000 * 10
        built = build_model(row.name, ModelConfig(vocab_size=1000, num_outputs=1, embedding_dim=10))
        assert row.parameters == sum(p.numel() for p in built.parameters()), row.name  # counted on the meta device


def test_the_largest_vocabulary_allocates_nothing(tmp_path):
    """Counted on PyTorch's meta device: 10 million words x 128 dims would be 5 GB per model."""
    result = run(artifact_paths(tmp_path), Options(vocab_size=10_000_000))
    rows = {row.name: row for row in result.rows}
    assert rows["lstm"].parameters - rows["lstm"].parameters_without_embedding == 10_000_000 * 128


def test_match_sizes_each_model_to_the_reference(tmp_path):
    result = run(artifact_paths(tmp_path), Options(vocab_size=1000, embedding_dim=10, hidden_dim="match:rnn"))
    rows = {row.name: row for row in result.rows}
    assert rows["rnn"].hidden_dim == 128 and rows["lstm"].hidden_dim < 128
    reference = rows["rnn"].parameters_without_embedding
    assert abs(rows["lstm"].parameters_without_embedding - reference) / reference < 0.05


def test_vocabulary_from_the_dataset(trained_pipeline):
    import torch

    vocab = int(torch.load(trained_pipeline / "dataset.pt", weights_only=True)["vocab_size"])
    assert run(artifact_paths(trained_pipeline), Options(embedding_dim=8)).vocab_size == vocab


@pytest.mark.parametrize(("options", "message"), [
    (Options(channels=0), r"--channels 0 must be in \[1, 4096\]"),
    (Options(kernel_sizes=()), "--kernel-sizes '' must be"),
    (Options(vocab_size=0), r"--vocab-size 0 must be in \[1, 10000000\]"),
])
def test_bad_sizes_are_refused(tmp_path, options, message):
    with pytest.raises(RnnkitError, match=message):
        run(artifact_paths(tmp_path), options)
