"""tuning/workers.py: how many trials train at once, on how many threads each."""

from __future__ import annotations

from rnnkit.tuning.workers import resolve_jobs


def test_jobs_split_the_budget_of_threads():
    import torch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_jobs(None, 1, cpu, 15) == (1, 1)  # --threads 1: one trial at a time, in process
    assert resolve_jobs(None, 4, cpu, 15) == (4, 1)  # one trial per thread
    assert resolve_jobs(None, 4, cpu, 2) == (2, 2)  # never more jobs than trials
    assert resolve_jobs(2, 8, cpu, 15) == (2, 4)
    assert resolve_jobs(None, None, cuda, 15) == (1, None)  # the GPU takes one trial at a time
    gib = 1 << 30
    assert resolve_jobs(None, 8, cpu, 15, memory=7 * gib) == (2, 4)  # 3 GiB for each worker
    assert resolve_jobs(None, 8, cpu, 15, memory=gib) == (1, 8)
    assert resolve_jobs(4, 8, cpu, 15, memory=gib) == (4, 2)  # asked for: as asked
