"""Normalisation applied to every text before tokenization, in training and at predict time."""

from __future__ import annotations

import re

# IMDB reviews carry HTML line breaks in all their spellings: <br />, <br/>, <br>, <BR>.
_BR = re.compile(r"<br\s*/?\s*>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def strip_html_breaks(text: str) -> str:
    """Turn `<br />` tags into spaces (the corpus's only markup)."""
    return _BR.sub(" ", text)


def normalize(text: str, *, lowercase: bool = True) -> str:
    """`<br />` to spaces, optional lower-casing, runs of whitespace to one space, trimmed.

    This is the exact normalisation that `decode(encode(text))` round-trips to.
    """
    text = strip_html_breaks(text)
    if lowercase:
        text = text.lower()
    return _SPACE.sub(" ", text).strip()
