"""Explanations shown: in the terminal (rich), as JSON, and as a self-contained HTML page.

Colours. A word's colour says which way it pushed f — green for the target, red against —
and its strength |attribution| / (the largest |attribution| among the text's words), so each
text uses the whole scale. Words are the tokens joined (BPE pieces; words.py), their
attributions summed. The terminal colours the background (black text on a pale to full
colour, readable on dark and light themes alike), and lists the strongest words with their
numbers, so the result still reads without colour (a pipe, a log). The HTML page is one file:
inline CSS, no script, no external asset; tokens wrap, so it reads at 1280 px and on a phone.
"""

from __future__ import annotations

import html
from typing import Any

FOR = (22, 163, 74)  # green: pushes f up (towards the target)
AGAINST = (220, 38, 38)  # red: pushes f down
ATTENTION = (37, 99, 235)  # blue: attention weight
FAINT = 0.08  # below this share of the text's largest |attribution|, a word is left uncoloured
TOP = 4  # words listed for and against in the terminal


def as_dict(explanation, run: str) -> dict[str, Any]:
    """One JSON object: the first explained target at the top level, every target in "targets"."""
    e = explanation
    p = e.prediction
    if "labels" in p:  # multi-label
        prediction: Any = [x["label"] for x in p["labels"]]
        probability: Any = [x["probability"] for x in p["labels"]]
    else:
        prediction, probability = p["label"], p["probability"]
    targets = [{
        "target": t.label, "why": t.why, "f": t.function, "target_probability": t.probability,
        "attributions": t.attributions, "word_attributions": e.word_values(t.attributions),
        "f_text": t.f_text, "f_baseline": t.f_baseline, "delta": t.delta,
    } for t in e.targets]
    out: dict[str, Any] = {"text": e.text, "run": run, "tokens": e.tokens, "ids": e.ids, "words": e.words,
                           "word_of": e.word_of, **targets[0], "prediction": prediction, "probability": probability,
                           "probabilities": p["probabilities"], "targets": targets}
    if e.attention is not None:
        out["attention"] = e.attention
        out["word_attention"] = e.word_values(e.attention)
    if e.notes:
        out["notes"] = e.notes
    return out


def strength(value: float, scale: float) -> float:
    return min(1.0, abs(value) / scale) if scale > 0 else 0.0


def _mix(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """`colour` blended into white: 0 white, 1 the full colour."""
    return tuple(round(255 + (c - 255) * amount) for c in colour)  # type: ignore[return-value]


def _rgb(colour: tuple[int, int, int]) -> str:
    """"rgb(r,g,b)", without spaces: rich reads a space as the end of a style word."""
    return "rgb({},{},{})".format(*colour)


def _signed(value: float) -> str:
    """+0.412, −0.071; a value that would print as ±0.000 keeps two digits (+3.1e-04)."""
    text = f"{value:+.3f}" if abs(value) >= 5e-4 or value == 0 else f"{value:+.1e}"
    return ("−" + text[1:]) if text.startswith("-") else text


def _delta(value: float) -> str:
    """The convergence delta: small, so in scientific notation (+3.1e-05)."""
    text = f"{value:+.1e}"
    return ("−" + text[1:]) if text.startswith("-") else text


def legend():
    from rich.text import Text

    text = Text("colours: ")
    text.append(" against the target ", style=f"black on {_rgb(_mix(AGAINST, 0.9))}")
    text.append(" ")
    text.append(" for the target ", style=f"black on {_rgb(_mix(FOR, 0.9))}")
    text.append(" (stronger colour: larger attribution)")
    return text


def _words_line(words: list[str], values: list[float], colour=None):
    """The words, each on a background whose colour and strength follow its value."""
    from rich.text import Text

    scale = max((abs(v) for v in values), default=0.0)
    line = Text("   ")
    for i, (word, value) in enumerate(zip(words, values)):
        if i:
            line.append(" ")
        amount = strength(value, scale)
        base = colour or (FOR if value >= 0 else AGAINST)
        style = f"black on {_rgb(_mix(base, 0.25 + 0.75 * amount))}" if amount >= FAINT else ""
        line.append(word, style=style)
    return line


def _ranked(words: list[str], values: list[float], sign: int) -> str:
    chosen = sorted((i for i, v in enumerate(values) if v * sign > 0), key=lambda i: -abs(values[i]))[:TOP]
    return ", ".join(f"{words[i]} {_signed(values[i])}" for i in chosen) or "(none)"


def _prediction_line(p: dict[str, Any]) -> str:
    if "labels" in p:
        found = ", ".join(f"{x['label']} {x['probability']:.3f}" for x in p["labels"])
        return f"prediction: {found or '(no label)'}"
    return f"prediction: {p['label']} {p['probability']:.3f}"


def terminal_view(explanation, number: int, said: list[str] = ()):
    """A text's explanation for the terminal: the text, then per target the coloured words, the
    numbers they add up to and the strongest words; attention weights for attn-lstm."""
    from rich.console import Group
    from rich.text import Text

    e = explanation
    lines = [Text(f"{number}. {_short(e.text)}", style="bold"), Text("   " + _prediction_line(e.prediction))]
    for t in e.targets:
        values = e.word_values(t.attributions)
        lines.append(Text(f"   target {t.label} ({t.why}), P {t.probability:.3f}: f = {t.function}; "
                          f"f(text) {t.f_text:.3f} − f(baseline) {t.f_baseline:.3f} = "
                          f"{t.f_text - t.f_baseline:.3f}, attributions sum {sum(t.attributions):.3f}, "
                          f"delta {_delta(t.delta)}"))
        lines.append(_words_line(e.words, values))
        lines.append(Text(f"   for {t.label}: {_ranked(e.words, values, 1)}  ·  against: "
                          f"{_ranked(e.words, values, -1)}"))
    if e.attention is not None:
        weights = e.word_values(e.attention)
        lines.append(Text("   attention of the last token (blue):"))
        lines.append(_words_line(e.words, weights, ATTENTION))
        top = sorted(range(len(weights)), key=lambda i: -weights[i])[:TOP]
        lines.append(Text("   most attended: " + ", ".join(f"{e.words[i]} {weights[i]:.3f}" for i in top)))
    for note in e.notes:
        if note not in said:  # (the method's notes, said once for every text)
            lines.append(Text(f"   note: {note}", style="dim"))
    lines.append(Text(""))
    return Group(*lines)


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------------------- HTML
_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2937;
       background: #f9fafb; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.meta, .note { color: #4b5563; font-size: .9rem; margin: .25rem 0; }
.legend { display: flex; align-items: center; gap: .5rem; flex-wrap: wrap; font-size: .9rem; margin: 1rem 0; }
.legend .bar { flex: 1 1 4rem; max-width: 14rem; min-width: 3rem; height: .9rem; border-radius: .45rem;
               border: 1px solid #d1d5db; background: linear-gradient(to right, rgb(220,38,38), #fff, rgb(22,163,74)); }
.legend .bar.attention { background: linear-gradient(to right, #fff, rgb(37,99,235)); }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
h2 { font-size: 1.05rem; font-weight: 600; margin: 0 0 .5rem; overflow-wrap: anywhere; }
.figures { font-size: .9rem; color: #374151; margin: .5rem 0 .25rem; }
.nowrap { white-space: nowrap; }
.tokens { display: flex; flex-wrap: wrap; gap: .3rem .2rem; margin: .25rem 0 .75rem; }
.tok { padding: .1rem .35rem; border-radius: .3rem; border: 1px solid #e5e7eb; color: #111827;
       overflow-wrap: anywhere; max-width: 100%; }
details { font-size: .85rem; }
table { border-collapse: collapse; margin-top: .5rem; }
td, th { padding: .15rem .6rem; text-align: left; border-bottom: 1px solid #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
@media (max-width: 600px) {
  body { font-size: 15px; }
  main { padding: 1rem .6rem 2rem; }
  section { padding: .75rem; }
}
"""




def _html_tokens(words: list[str], values: list[float], colour=None, digits: int = 3) -> str:
    scale = max((abs(v) for v in values), default=0.0)
    spans = []
    for word, value in zip(words, values):
        amount = strength(value, scale)
        base = colour or (FOR if value >= 0 else AGAINST)
        style = f' style="background:{_rgb(_mix(base, 0.85 * amount))}"' if amount >= FAINT else ""
        number = f"{value:.{digits}f}" if colour else _signed(value)
        spans.append(f'<span class="tok"{style} title="{html.escape(number)}">{html.escape(word)}</span>')
    return '<div class="tokens">' + "".join(spans) + "</div>"


def _html_section(e, number: int, said: list[str] = ()) -> str:
    parts = [f"<section><h2>{number}. {html.escape(e.text)}</h2>",
             f'<p class="figures">{html.escape(_prediction_line(e.prediction))}</p>']
    attention = e.word_values(e.attention) if e.attention is not None else None
    for t in e.targets:
        values = e.word_values(t.attributions)
        parts.append(f'<p class="figures">target <b>{html.escape(t.label)}</b> ({html.escape(t.why)}), '
                     f"P {t.probability:.3f} · f = {html.escape(t.function)}: f(text) {t.f_text:.3f} − "
                     f"f(baseline) {t.f_baseline:.3f} = {t.f_text - t.f_baseline:.3f}; attributions sum "
                     f'{sum(t.attributions):.3f}, <span class="nowrap">delta {_delta(t.delta)}</span></p>')
        parts.append(_html_tokens(e.words, values))
    if attention is not None:
        parts.append('<p class="figures">attention of the last token</p>')
        parts.append(_html_tokens(e.words, attention, ATTENTION))
    rows = []
    for w, word in enumerate(e.words):
        cells = "".join(f'<td class="num">{_signed(e.word_values(t.attributions)[w])}</td>' for t in e.targets)
        if attention is not None:
            cells += f'<td class="num">{attention[w]:.3f}</td>'
        rows.append(f"<tr><td>{html.escape(word)}</td>{cells}</tr>")
    heads = "".join(f"<th>{html.escape(t.label)}</th>" for t in e.targets)
    heads += "<th>attention</th>" if attention is not None else ""
    parts.append(f"<details><summary>values per word</summary><table><tr><th>word</th>{heads}</tr>"
                 f"{''.join(rows)}</table></details>")
    for note in e.notes:
        if note not in said:
            parts.append(f'<p class="note">note: {html.escape(note)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def html_page(result) -> str:
    """The whole page: a header with the run and the method, a legend, a section per text."""
    title = f"rnnkit explain — run {result.run}"
    attention = any(e.attention is not None for e in result.explanations)
    legend_html = ('<div class="legend"><span>against the target</span><span class="bar"></span>'
                   "<span>for the target</span></div>")
    if attention:
        legend_html += ('<div class="legend"><span>attention 0</span><span class="bar attention"></span>'
                        "<span>the text's largest weight</span></div>")
    said = list(result.method_notes)
    sections = "\n".join(_html_section(e, i, said) for i, e in enumerate(result.explanations, 1))
    method = "".join(f'<p class="note">note: {html.escape(note)}</p>' for note in said)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p class="meta">model {html.escape(result.model)}, {html.escape(result.task)} task · layer integrated gradients on the
token embeddings, {result.steps} steps, baseline: every token &lt;PAD&gt;. A word's attribution is its share of
f(text) − f(baseline); delta is by how much the attributions miss it. Colour strength is relative to the text's
largest attribution; hover a word (or open "values per word") for its number.</p>
{method}
{legend_html}
{sections}
</main>
</body>
</html>
"""
