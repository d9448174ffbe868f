"""The pieces of a self-contained HTML page: escaped text, tables that scroll sideways on a
phone, figures as base64 PNG data URIs, coloured tokens, and the page with its inline CSS.

Nothing here reaches outside the page: no external stylesheet, script, font or image, so a
report opens the same from a mail attachment, a CI artifact or a laptop without network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def number(value: object, digits: int = 4) -> str:
    """A figure as a table shows it: ints with thousands separators, floats to `digits` places."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        return f"{value:,.{digits}f}"
    return str(value)


@dataclass
class Cell:
    """A table cell: its HTML (already escaped) and whether it holds a figure (right-aligned)."""

    html: str
    numeric: bool = False


def cell(value: object, digits: int = 4) -> Cell:
    if isinstance(value, Cell):
        return value
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return Cell(esc(number(value, digits)), numeric)


def raw(markup: str, numeric: bool = False) -> Cell:
    """A cell whose HTML is given as is (the caller escaped what needed escaping)."""
    return Cell(markup, numeric)


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, caption: str = "",
          row_class: Callable[[int], str] | None = None, digits: int = 4) -> str:
    """A table inside a box that scrolls sideways when the screen is narrower than the table."""
    rows = [[cell(v, digits) for v in row] for row in rows]
    numeric = [bool(rows) and all(r[i].numeric or not r[i].html for r in rows) for i in range(len(columns))]
    head = "".join(f'<th{" class=num" if numeric[i] else ""} scope="col">{esc(c)}</th>'
                   for i, c in enumerate(columns))
    body = []
    for n, row in enumerate(rows):
        klass = row_class(n) if row_class else ""
        cells = "".join(f'<td{" class=num" if c.numeric else ""}>{c.html}</td>' for c in row)
        body.append(f'<tr{f" class={klass}" if klass else ""}>{cells}</tr>')
    # The caption goes below the scrolling box, not inside the table: a table wider than a phone
    # would otherwise make its caption as wide, and cut it at the screen's edge.
    caption_html = f'<p class="caption">{esc(caption)}</p>' if caption else ""
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{caption_html}')


def pairs(items: Iterable[tuple[str, object]], digits: int = 4, header: tuple[str, str] = ("setting", "value")) -> str:
    """A two-column table of settings: name, value (values read as text, left-aligned)."""
    return table(list(header), [[k, Cell(esc(number(v, digits)))] for k, v in items])


def columns(*parts: str) -> str:
    """Blocks (tables) side by side on a wide screen, one under the other on a narrow one."""
    return f'<div class="cols">{"".join(f"<div>{p}</div>" for p in parts if p)}</div>'


def png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure(path: Path, alt: str, caption: str = "", *, zoom: bool = False) -> str:
    """A PNG file as an embedded image (the file itself can then go). `zoom`: a large figure
    (a 20-class confusion matrix) that a phone shows at a readable size, scrolling sideways."""
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    image = f'<img src="{png_uri(path)}" alt="{esc(alt)}" loading="lazy">'
    if zoom:
        image = f'<div class="scroll zoom">{image}</div>'
    return f"<figure>{image}{caption_html}</figure>"


def figures(*parts: str) -> str:
    """Figures side by side on a wide screen, one under the other on a narrow one."""
    return f'<div class="figs">{"".join(p for p in parts if p)}</div>'


def para(text: str, klass: str = "") -> str:
    return f'<p{f" class={klass}" if klass else ""}>{esc(text)}</p>'


def cards(items: Iterable[tuple[str, str]]) -> str:
    """The headline figures, large: (name, value) each."""
    inner = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
                    for k, v in items)
    return f'<div class="cards">{inner}</div>'


def tokens(pieces: Sequence[tuple[str, float]]) -> str:
    """Tokens coloured by attribution: green pushes toward the label explained, red away from it,
    the strongest token of the text at full colour."""
    top = max((abs(a) for _, a in pieces), default=0.0) or 1.0
    out = []
    for token, value in pieces:
        share = min(1.0, abs(value) / top)
        colour = "22,163,74" if value >= 0 else "220,38,38"
        out.append(f'<span class="tok" style="background:rgba({colour},{share * 0.6:.2f})" '
                   f'title="{value:+.3f}">{esc(token)}</span>')
    return " ".join(out)


@dataclass
class Section:
    """One section of the page: its anchor, heading and body HTML."""

    key: str  # the anchor: "settings", "data", ... (tests look for them)
    title: str
    body: str
    notes: list[str] = field(default_factory=list)


CSS = """
:root{--fg:#1f2328;--muted:#57606a;--border:#d0d7de;--alt:#f6f8fa;--mark:#fff8c5;--accent:#0969da}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;color:var(--fg);background:#fff;
 font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
header p{margin:.2em 0}
h1{font-size:1.7rem;line-height:1.25;margin:.3em 0;overflow-wrap:anywhere}
h2{font-size:1.35rem;border-bottom:1px solid var(--border);padding-bottom:.2em;margin:2em 0 .6em}
h3{font-size:1.05rem;margin:1.4em 0 .4em}
a{color:var(--accent)}
nav ul{display:flex;flex-wrap:wrap;gap:.2em .9em;padding:0;margin:.6em 0;list-style:none}
.muted,.note,figcaption,.caption{color:var(--muted)}
.note{font-size:.92rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.4em 0 1em;max-width:100%}
table{border-collapse:collapse;font-size:.9rem}
.caption{font-size:.85rem;margin:-.6em 0 1em}
th,td{padding:.3em .65em;border-bottom:1px solid var(--border);text-align:left;vertical-align:top}
th{background:var(--alt);white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.this td{background:var(--mark);font-weight:600}
img{max-width:100%;height:auto;display:block}
figure{margin:0}
figcaption{font-size:.85rem;margin-top:.2em}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,460px),1fr));gap:16px 24px;
 align-items:start;margin:.6em 0 1em}
.figs.wide{grid-template-columns:1fr}
.zoom img{margin:0 auto}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:0 32px;align-items:start}
.cols h3:first-child{margin-top:.4em}
details{margin:.4em 0}
summary{cursor:pointer;color:var(--accent)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5em,1fr));gap:8px;margin:.8em 0}
.card{border:1px solid var(--border);border-radius:6px;padding:.35em .7em;min-width:0}
.card .k{font-size:.8rem;color:var(--muted);overflow-wrap:anywhere}
.card .v{font-size:1.3rem;font-weight:600;font-variant-numeric:tabular-nums}
.mistake{border:1px solid var(--border);border-radius:6px;padding:.5em .8em;margin:.6em 0}
.mistake .head{font-size:.9rem;display:flex;flex-wrap:wrap;gap:.2em 1.2em}
.mistake .text{margin:.35em 0 0;overflow-wrap:anywhere}
.mistake details{font-size:.9rem;margin-top:.3em}
.tok{border-radius:3px;padding:0 2px}
code{font-size:.9em;background:var(--alt);padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
@media (max-width:640px){
 body{font-size:15px}
 main{padding:10px 12px 32px}
 h1{font-size:1.35rem}
 h2{font-size:1.15rem}
 table{font-size:.82rem}
 th,td{padding:.25em .45em}
 .zoom img{max-width:none;width:760px}
}
"""


def page(title: str, subtitle: str, head: str, sections: Sequence[Section], footer: str) -> str:
    """The whole document: a header, a table of contents, the sections, a footer."""
    nav = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{s.body}'
        + "".join(para(n, "note") for n in s.notes) + "</section>"
        for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main><header><h1>{esc(title)}</h1><p class=muted>{esc(subtitle)}</p>{head}"
        f'<nav aria-label="sections"><ul>{nav}</ul></nav></header>{body}'
        f'<footer><p class="note">{esc(footer)}</p></footer></main></body></html>\n'
    )
