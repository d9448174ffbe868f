"""`rnnkit ablate-gates` (rnnkit/stages/ablate_gates.py): its options and its refusals. The
ablation itself, on a trained lstm-scratch run, is tested in tests/test_ablation.py."""

from dataclasses import fields

import pytest
from support import snapshot

from rnnkit.artifacts import artifact_paths
from rnnkit.errors import RnnkitError
from rnnkit.stages import evaluate
from rnnkit.stages.ablate_gates import Options, run


def test_run_split_and_device_options_are_evaluates():
    # Declared once (stages/evaluate.py, training/inference.py); ablate-gates takes no batch options.
    names = [f.name for f in fields(Options)]
    assert names == ["run", "checkpoint", "split", "device", "threads"]
    shared = {f.name: f.metadata for f in fields(evaluate.Options)}
    assert all(f.metadata == shared[f.name] for f in fields(Options))


def test_another_model_is_refused_before_the_dataset_is_read(pipeline_copy):
    before = snapshot(pipeline_copy)
    with pytest.raises(RnnkitError, match="run 'tiny' is a bilstm-pool model: ablate-gates needs an lstm-scratch"):
        run(artifact_paths(pipeline_copy), Options(threads=1))
    assert snapshot(pipeline_copy) == before


def test_a_bad_split_is_refused(tmp_path):
    with pytest.raises(RnnkitError, match="--split 'train' must be one of: test, val"):
        run(artifact_paths(tmp_path), Options(split="train"))
