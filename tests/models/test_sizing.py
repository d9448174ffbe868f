import pytest

from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig
from rnnkit.models.sizing import non_embedding_parameters, resolve_hidden_dim

CONFIG = ModelConfig(vocab_size=500, num_outputs=1, embedding_dim=32)


def test_plain_sizes_pass_through():
    assert resolve_hidden_dim("64", "lstm", CONFIG) == 64 and resolve_hidden_dim(7, "lstm", CONFIG) == 7


def test_match_gives_the_size_with_the_closest_parameter_count():
    target = non_embedding_parameters("rnn", ModelConfig(**{**CONFIG.to_dict(), "hidden_dim": 128}))
    size = resolve_hidden_dim("match:rnn", "lstm", CONFIG)
    counts = {h: non_embedding_parameters("lstm", ModelConfig(**{**CONFIG.to_dict(), "hidden_dim": h}))
              for h in (size - 1, size, size + 1)}
    assert min(counts, key=lambda h: abs(counts[h] - target)) == size
    assert abs(counts[size] - target) / target < 0.05


def test_budget_and_bad_specs():
    size = resolve_hidden_dim("budget:100000", "gru", CONFIG)
    assert abs(non_embedding_parameters("gru", ModelConfig(**{**CONFIG.to_dict(), "hidden_dim": size}))
               - 100_000) < 2_000
    with pytest.raises(RnnkitError, match="match:MODEL"):
        resolve_hidden_dim("lots", "gru", CONFIG)
    with pytest.raises(RnnkitError, match="unknown model"):
        resolve_hidden_dim("match:transformer", "gru", CONFIG)
