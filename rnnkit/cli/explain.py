"""`rnnkit explain`: the flags are rnnkit/stages/explain.py's Options; this module prints the result:
each text with its tokens coloured by attribution (or one JSON object per text) on stdout, which
run answered and how on stderr."""

from __future__ import annotations

from rnnkit.cli.build import command
from rnnkit.stages.explain import Options


def explain(paths, options: Options, given: set[str]) -> None:
    """Show which tokens pushed a trained run towards (green) or away from (red) its label.

    Layer integrated gradients on the token embeddings, from a baseline of all <PAD> tokens: each
    token's attribution, and the delta by which they miss f(text) - f(baseline). attn-lstm runs show
    their attention weights too. BPE pieces are joined into words (their attributions summed)."""
    import json
    import sys

    from rnnkit.console import console, err_console
    from rnnkit.interpret.render import as_dict, legend, terminal_view
    from rnnkit.stages.explain import run

    result = run(paths, options, given)
    err_console.print(f"run {result.run} ({result.why}), model {result.model}: layer integrated gradients, "
                      f"{result.steps} steps, baseline every token <PAD>", highlight=False, markup=False,
                      soft_wrap=True)
    for note in result.method_notes:
        err_console.print(f"note: {note}", style="dim", highlight=False, markup=False, soft_wrap=True)
    if options.json_output:
        for explanation in result.explanations:
            sys.stdout.write(json.dumps(as_dict(explanation, result.run), ensure_ascii=False) + "\n")
    else:
        err_console.print(legend(), highlight=False)
        for i, explanation in enumerate(result.explanations, 1):
            console.print(terminal_view(explanation, i, result.method_notes), highlight=False)
    if result.html is not None:
        err_console.print(f"page -> {result.html}", highlight=False, markup=False)


COMMAND = command(Options, explain)

SUMMARY = "Show which tokens made a run predict what it did."  # the line in `rnnkit --help`
EXAMPLE = "rnnkit explain \"a great film\" --html explain.html"  # last line of its --help
