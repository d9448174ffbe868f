import pytest

from rnnkit.errors import RnnkitError
from rnnkit.models import ModelConfig, build_model
from rnnkit.models.sizing import count_parameters, non_embedding_parameters, resolve_hidden_dim

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


def test_one_count_of_parameters_with_and_without_the_embedding():
    model = build_model("lstm", ModelConfig(**{**CONFIG.to_dict(), "hidden_dim": 8}))
    total, without = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    assert total - without == 500 * 32  # the embedding table: vocabulary x embedding size
    model.embedding.weight.requires_grad_(False)  # frozen (--freeze-embeddings-epochs): still counted
    assert count_parameters(model) == (total, without)
    assert non_embedding_parameters("lstm", ModelConfig(**{**CONFIG.to_dict(), "hidden_dim": 8})) == without
