"""`rnnkit runs`: the flags are rnnkit/stages/runs.py's Options; this module prints the results.

Also home of `fitted_table`, which makes a table fit the console's width without cutting a
figure (`evaluate --compare` uses it too).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import typer

from rnnkit.cli.build import command
from rnnkit.cli.common import Group, with_example
from rnnkit.stages.runs import ListOptions, RmOptions, ShowOptions, UseOptions

SUMMARY = "List the trained runs; show, delete or choose one."
EXAMPLE = "rnnkit runs use bilstm-a"
app = typer.Typer(
    cls=Group,
    help="List the trained runs (`rnnkit runs`, `runs list`), show one, delete one, or mark the one predict and "
         "evaluate use.\n\nWithout --run, predict and evaluate use the run marked with `rnnkit runs use NAME`, "
         "else the best finished run trained on this dataset.pt (by val_accuracy; val_micro_f1 for multi-label "
         "tasks); the list marks it with *.",
    invoke_without_command=True,
)

STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow", "killed": "red", "failed": "red"}


# --------------------------------------------------------------------------- tables


def fitted_table(columns: Sequence[tuple], rows: Sequence[Sequence], *, width: int,
                 drop: Sequence[str] = (), floor: int = 8, **table_args):
    """A rich Table of `columns` ((header, "text" | "figure"[, floor])) laid out to fit `width`.

    Figures never wrap or shrink: a figure is shown whole or its column is left out. When the
    table is too wide, the widest text columns narrow first (down to their own floor, else
    `floor` characters, or their longest header word) and their cells are wrapped here, after a space, '-', '_', '.'
    or '/' (a run name `bilstm-pool-20250105-140312` breaks after a dash, never into
    "bilstm-po…"). If even that does not fit, the columns named in `drop` are left out, in that
    order. Returns the table and the headers left out. Cells are str or rich Text (measured as
    their plain text, styled as a whole); a header may hold "\\n" to take two lines."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    def natural(i: int) -> int:
        return max([_cell_width(columns[i][0])] + [_cell_width(row[i]) for row in rows])

    def layout(keep: list[int]) -> dict[int, int] | None:
        """Each kept column's width, or None when even the narrowest text columns do not fit."""
        room = width - 2 * (len(keep) - 1)  # two spaces between columns (box.SIMPLE_HEAD, no edges)
        widths = {i: natural(i) for i in keep}
        texts = [i for i in keep if columns[i][1] == "text"]
        room -= sum(w for i, w in widths.items() if i not in texts)
        hard = {i: min(widths[i], max(columns[i][2] if len(columns[i]) > 2 else floor,
                                      _longest_word(columns[i][0]))) for i in texts}
        # First try to wrap at spaces only (no word broken), then let long words break too.
        soft = {i: max(hard[i], max(_longest_word(_plain(row[i])) for row in rows)) for i in texts}
        for lowest in (soft, hard):
            if sum(lowest.values()) > room:
                continue
            # The widest text columns give way first, down to a common cap (never below their floor).
            cap = max((widths[i] for i in texts), default=0)
            while sum(max(min(widths[i], cap), lowest[i]) for i in texts) > room:
                cap -= 1
            return {**widths, **{i: max(min(widths[i], cap), lowest[i]) for i in texts}}
        return None

    keep = list(range(len(columns)))
    left_out: list[str] = []
    widths = layout(keep)
    for header in drop:
        if widths is not None:
            break
        index = next((i for i in keep if columns[i][0] == header), None)
        if index is not None:
            keep.remove(index)
            left_out.append(header.replace("\n", " "))
            widths = layout(keep)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), **table_args)
    for i in keep:
        header, kind = columns[i][:2]
        if kind == "figure":
            table.add_column(header, justify="right", no_wrap=True)
        elif widths is not None:
            table.add_column(header, width=widths[i], overflow="fold")
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        cells = []
        for i in keep:
            cell = row[i]
            if columns[i][1] == "text" and widths is not None:
                wrapped = "\n".join(_wrap(_plain(cell), widths[i]))
                cell = Text(wrapped, style=cell.style) if isinstance(cell, Text) else wrapped
            cells.append(cell)
        table.add_row(*cells)
    return table, left_out


def _plain(cell) -> str:
    return cell.plain if hasattr(cell, "plain") else str(cell)


def _cell_width(cell) -> int:
    return max((len(line) for line in _plain(cell).splitlines()), default=0)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken after a space, '-', '_', '.' or
    '/' where it can, folded where a piece is longer than the line."""
    import re

    lines = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for piece in re.findall(r"[^\s\-_./]*(?:[\-_./]+|\s+|$)", paragraph):
            if not piece:
                continue
            if len((line + piece).rstrip()) <= width:
                line += piece
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = piece.lstrip()
            while len(line.rstrip()) > width:
                lines.append(line[:width])
                line = line[width:]
        lines.append(line.rstrip())
    return lines


# --------------------------------------------------------------------------- list


def when(iso: str | None, *, exact: bool = False) -> str:
    """An ISO time as the runs table shows it: "just now", "12 min ago", "3 h ago", "2 days ago",
    then the date (local); `exact`: local "YYYY-MM-DD HH:MM" followed by that in parentheses."""
    import datetime as dt

    if not iso:
        return ""
    try:
        stamp = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    stamp = stamp.astimezone()
    seconds = (dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()
    if seconds < -60 or seconds >= 7 * 86400:
        ago = stamp.strftime("%Y-%m-%d")
    elif seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 86400:
        ago = f"{int(seconds // 3600)} h ago"
    else:
        days = int(seconds // 86400)
        ago = f"{days} day{'s' if days > 1 else ''} ago"
    return f"{stamp.strftime('%Y-%m-%d %H:%M')} ({ago})" if exact else ago


def print_list(result, console) -> None:
    """The runs table (oldest first) and a line saying which run predict and evaluate use."""
    from rich.text import Text

    if not result.runs:
        console.print("no runs yet — train one with `rnnkit train`", highlight=False)
        return
    # One metric for every run (the usual case: one task per folder) goes in the header, so the
    # column holds figures only.
    metrics = {info.metric for info in result.runs if info.value is not None}
    shared = metrics.pop().removeprefix("val_") if len(metrics) == 1 else None
    best_column = (f"best\n{shared}", "figure") if shared else ("best", "text")
    columns = [("name", "text"), ("model", "text"), ("status", "text"), ("epochs", "figure"), best_column,
               ("data", "text"), ("when", "text")]
    rows = []
    for info, rec in zip(result.runs, result.records()):
        epochs = "" if info.epochs_run is None else str(info.epochs_run)
        if epochs and info.epochs_planned:
            epochs += f"/{info.epochs_planned}"
        best = "" if info.value is None else f"{info.value:.4f}"
        if best and not shared:
            best = f"{info.metric.removeprefix('val_')} {best}"
        if info.problem:
            best = "unreadable"
        data = {True: "current", False: "other", None: (info.dataset_sha256 or "")[:8]}[rec["current_data"]]
        name = info.name + (" *" if rec["default"] else "")
        status = Text(info.status, style=STATUS_STYLE.get(info.status, ""))
        rows.append([name, info.model or "", status, epochs, best, data, when(info.updated or info.created)])
    table, _ = fitted_table(columns, rows, width=console.width)
    console.print(table)
    notes = ["epochs: run/planned; data: current = trained on the dataset.pt here; when: last written"]
    if result.choice is not None:
        notes.append(f"* predict and evaluate use {result.choice.name} without --run ({result.choice.why}); "
                     f"`rnnkit runs use NAME` marks another")
    elif result.problem:
        notes.append(f"no default run: {result.problem}")
    else:
        notes.append("no default run (no finished run on this dataset.pt) — predict and evaluate need --run NAME")
    for note in notes:
        console.print(note, highlight=False, markup=False)


def list_body(paths, options: ListOptions, given: set[str]) -> None:
    """Every run: name, model, status, epochs, best validation metric, data, when (oldest first)."""
    import json

    from rnnkit.console import console
    from rnnkit.stages.runs import run

    result = run(paths, options, given)
    if options.json_output:
        print(json.dumps(result.records(), indent=2))
        return
    print_list(result, console)


_LIST = command(ListOptions, list_body)
app.command("list", help=with_example(_LIST.__doc__, "rnnkit runs list --json"))(_LIST)


def _list_unless_subcommand(ctx: typer.Context, **values):
    if ctx.invoked_subcommand is None:
        _LIST(ctx, **values)


_list_unless_subcommand.__signature__ = inspect.signature(_LIST)  # type: ignore[attr-defined]
_list_unless_subcommand.__doc__ = _LIST.__doc__
app.callback()(_list_unless_subcommand)


# --------------------------------------------------------------------------- show


def print_show(result, console) -> None:
    """A run's facts, its best epoch's validation metrics and every setting, one per line
    (plain aligned lines: `rnnkit runs show NAME | grep lr` works)."""
    info, rec, config = result.info, result.record, result.info.config or {}
    head = f"run {info.name}: {info.status}"
    if rec["default"]:
        head += " (predict and evaluate use it without --run)"
    facts = []
    labels = config.get("label_names")
    task = (info.task or "?") + (f" ({', '.join(labels[:8])}{' …' if len(labels) > 8 else ''})" if labels else "")
    facts.append(("model", f"{info.model or '?'}, {task}"))
    epochs = "" if info.epochs_run is None else f"{info.epochs_run} run"
    if info.epochs_planned:
        epochs += f" of {info.epochs_planned}"
    if info.best_epoch is not None:
        epochs += f", best {info.best_epoch}" + (f" ({info.metric} {info.value:.4f})" if info.value is not None
                                                 else "")
    if epochs:  # (an ensemble trains no epochs of its own)
        facts.append(("epochs", epochs))
    data = info.dataset_sha256 or "?"
    if rec["current_data"] is not None:
        data += " (the dataset.pt here)" if rec["current_data"] else " (not the dataset.pt here)"
    facts.append(("dataset", data))
    if (config.get("data") or {}).get("tokenizer_sha256"):
        facts.append(("tokenizer", config["data"]["tokenizer_sha256"]))
    facts += [("created", when(info.created, exact=True)), ("updated", when(info.updated, exact=True))]
    if config.get("versions"):
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in config["versions"].items())))
    facts.append(("folder", str(info.path)))
    if result.being_trained:
        facts.append(("note", f"a new run of this name is being trained (.{info.name}.partial/)"))
    lines = [head, *_aligned(facts)]
    if info.best:
        lines += ["", "validation:" if info.best_epoch is None else f"best epoch ({info.best_epoch}), validation:"]
        lines += _aligned([(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in info.best.items()])
    if result.options:
        source = ("from the manifest: this run has no config.json" if info.config is None
                  else "`rnnkit ensemble` made it" if info.model == "ensemble"
                  else "`rnnkit train --config` takes this run's config.json")
        lines += ["", f"settings ({source}):"]
        shown = []
        for key, value in result.options.items():
            text = "—" if value is None else str(value)
            if value is None and result.resolved.get(key) is not None:
                text = f"{result.resolved[key]} (automatic)"
            shown.append((key, text))
        lines += _aligned(shown)
    for line in lines:
        console.print(line, highlight=False, markup=False)


def _aligned(pairs: list[tuple[str, str]], indent: int = 2) -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{' ' * indent}{k:<{width}}  {v}" for k, v in pairs]


def show_body(paths, options: ShowOptions, given: set[str]) -> None:
    """A run's settings (every option, defaults included) and its best validation metrics."""
    import json

    from rnnkit.console import console
    from rnnkit.stages.runs import show

    result = show(paths, options, given)
    if options.json_output:
        print(json.dumps({**result.record, "options": result.options, "config": result.info.config}, indent=2))
        return
    print_show(result, console)


app.command("show", help=with_example(show_body.__doc__, "rnnkit runs show bilstm-a"))(command(ShowOptions, show_body))


# --------------------------------------------------------------------------- rm, use


def rm_body(paths, options: RmOptions, given: set[str]) -> None:
    """Delete a run: its folder, its manifest records and its reports (asks first unless --yes).
    A running run is refused."""
    from rnnkit.console import console, err_console
    from rnnkit.stages.runs import rm

    def confirm(plan) -> bool:
        """Ask on stderr, read the answer from stdin (click's prompt would put a space on stdout)."""
        import sys

        err_console.print(f"run {plan.name}: {plan.describe(paths)}" + (" — it is the current run" if plan.current
                                                                        else ""), highlight=False, markup=False)
        sys.stderr.write("delete it? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            sys.stderr.write("\n")
            err_console.print("no answer (stdin is closed) — pass --yes to delete without asking", highlight=False)
        return answer.strip().lower() in ("y", "yes")

    plan = rm(paths, options, given, confirm=confirm)
    if plan is None:
        err_console.print("not deleted")
        raise typer.Exit(1)
    console.print(f"deleted run {plan.name}: {plan.describe(paths)}", highlight=False, markup=False)


def use_body(paths, options: UseOptions, given: set[str]) -> None:
    """Mark the run predict and evaluate use when no --run is given (kept in artifacts/current_run);
    --clear goes back to the best finished run on this dataset.pt; no NAME: say which is used."""
    from rnnkit.console import console, err_console
    from rnnkit.stages.runs import use

    result = use(paths, options, given)
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    if options.clear:
        console.print(f"unmarked {result.previous}" if result.previous else "no run was marked", highlight=False)
    elif options.name is not None:
        console.print(f"current run: {result.name}", highlight=False)
    if result.choice is not None:
        console.print(f"predict and evaluate use {result.choice.name}: {result.choice.why}", highlight=False,
                      markup=False)
    elif options.name is None:
        console.print("predict and evaluate have no default run: no finished run on this dataset.pt — pass "
                      "--run NAME or mark one with `rnnkit runs use NAME`", highlight=False, markup=False)


app.command("rm", help=with_example(rm_body.__doc__, "rnnkit runs rm bilstm-a --yes"))(command(RmOptions, rm_body))
app.command("use", help=with_example(use_body.__doc__, "rnnkit runs use bilstm-a"))(command(UseOptions, use_body))
