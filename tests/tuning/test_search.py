"""tuning/search.py: the pruner, the samplers and the checks of a study's settings."""

from __future__ import annotations

import pytest

from rnnkit.errors import RnnkitError
from rnnkit.tuning.search import check_study_settings, make_pruner, make_sampler, resolve_metric


def test_median_pruner_judges_no_trial_on_its_first_epoch():
    import optuna

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", 3))
    for _ in range(5):  # the start-up trials: good at every epoch
        trial = study.ask()
        for epoch, value in ((1, 0.7), (2, 0.8), (3, 0.85)):
            trial.report(value, epoch)
        study.tell(trial, 0.85)
    trial = study.ask()
    trial.report(0.5, 1)  # at chance after one epoch: no verdict yet
    assert not trial.should_prune()
    trial.report(0.55, 2)
    assert trial.should_prune()


def test_samplers_seeded_per_trial_draw_alike_across_processes_and_differ_across_trials():
    """Two studies with the same seed (two workers) draw the same value for the same trial
    number, and different values for different trial numbers."""
    import optuna

    def draws(n: int) -> list[float]:
        study = optuna.create_study(sampler=make_sampler("random", 7))
        return [study.ask().suggest_float("x", 0.0, 1.0) for _ in range(n)]

    first, second = draws(3), draws(3)
    assert first == second and len(set(first)) == 3


def test_metric_defaults_by_task_and_must_apply_to_it():
    assert resolve_metric(None, "binary") == "val_accuracy"
    assert resolve_metric(None, "multilabel") == "val_macro_f1"
    with pytest.raises(RnnkitError, match="--metric val_accuracy does not apply to a multilabel task"):
        resolve_metric("val_accuracy", "multilabel")


def test_a_study_refuses_other_settings_than_it_was_created_with():
    import optuna

    study = optuna.create_study(study_name="s")
    check_study_settings(study, "here", {"metric": "val_accuracy", "epochs_per_trial": 3})
    check_study_settings(study, "here", {"metric": "val_accuracy", "epochs_per_trial": 3})  # the same: fine
    with pytest.raises(RnnkitError, match='created with another epochs_per_trial: 3, now 2'):
        check_study_settings(study, "here", {"metric": "val_accuracy", "epochs_per_trial": 2})
