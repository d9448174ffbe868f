"""The reusable parts of `rnnkit tune` (the stage itself: rnnkit/stages/tune.py).

    space.py     what a study may search or fix (derived from the tunable option declarations),
                 the default space, search-space TOML files
    storage.py   where a study lives (a journal file or a database) and the trials killed
                 workers leave behind in it
    search.py    what a study is (StudySpec), its sampler and pruner, and the Search that trains
                 trials in one process through training.loop.fit
    workers.py   --jobs N: trials side by side in worker processes, each running a Search

Nothing here imports optuna or torch at import time, so `rnnkit --help` stays fast.
"""
