"""tuning/space.py: the default space, the example file, and the tunable table's source."""

from __future__ import annotations

from pathlib import Path

from rnnkit.tuning.space import TUNABLE, default_space, load_space

REPO = Path(__file__).resolve().parents[2]


def test_example_space_file_loads():
    space = load_space(REPO / "docs" / "space.example.toml")
    assert {p.name for p in space.params} >= {"hidden_dim", "dropout", "lr"}
    default = default_space().to_dict()["search"]
    assert default == {"hidden_dim": {"choices": [64, 128, 256]}, "dropout": {"low": 0.2, "high": 0.6},
                       "lr": {"low": 1e-4, "high": 3e-3, "log": True}}


def test_tunable_settings_are_those_declared_tunable():
    from rnnkit.models.config import ModelOptions
    from rnnkit.options import declared
    from rnnkit.training.loop import LoopOptions

    declared_tunable = {f.name for t in (ModelOptions, LoopOptions) for f, spec in declared(t) if spec.tunable}
    assert set(TUNABLE) == declared_tunable
    assert TUNABLE["dropout"].check(0.5) and not TUNABLE["dropout"].check(1.0)  # the declared range [0, 1)
