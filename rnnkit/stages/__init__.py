"""One module per command: `rnnkit <command>` is rnnkit/stages/<command>.py.

Each holds the command's typed `Options` (every field declared once with its default, range
and why: rnnkit/options.py), a `Result`, and `run(paths, options)`, which reads the stage's
inputs from the artifacts folder, checks their lineage, does the work with the reusable parts
(data/, text/, models/, training/, tuning/) and writes its outputs. rnnkit/cli/ only turns
flags into Options and prints Results; tests and Python users call `run` directly.
"""
