"""Word vector text files: GloVe (`word x1 ... xd` per line) and word2vec's text format (the
same after a `count dim` header line), plain or gzip-compressed, read into the rows of a
tokenizer's vocabulary."""

from __future__ import annotations

import gzip
from pathlib import Path

from rnnkit.errors import RnnkitError
from rnnkit.text.base import PAD_ID, Tokenizer

_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip container; the legacy pickle format
_GZIP_MAGIC = b"\x1f\x8b"


def read_vectors_file(path: Path, tokenizer: Tokenizer):
    """The rows of `tokenizer`'s vocabulary found in a GloVe or word2vec text file.

    GloVe: `word x1 ... xd` per line. word2vec text: the same after a header line
    `count dim` — told apart by that first line. A word is looked up as written; when the
    tokenizer lower-cases, a cased word (GloVe 840B) also fills its lower-cased row unless
    the exact lower-case word appears too. Only the vocabulary's lines are parsed, so a
    large file reads fast. gzip-compressed files are read as they are.
    Returns (vectors, has_vector, format) with numpy arrays.
    """
    import numpy as np

    index = tokenizer.get_vocab()
    lowercase = bool(getattr(tokenizer, "lowercase", False))
    size = tokenizer.vocab_size
    fix = "give a GloVe (`word x1 ... xd` per line) or word2vec text file (header `count dim`)"
    exact = np.zeros(size, dtype=bool)
    has_vector = np.zeros(size, dtype=bool)
    try:
        with _open_text(path) as f:
            first = f.readline()
            head = first.split()
            if not head:
                raise RnnkitError(f"{path} is empty — {fix}")
            if len(head) == 2 and head[0].isdigit() and head[1].isdigit():
                fmt, dim, start, lines = "word2vec", int(head[1]), 2, f
            else:
                fmt, dim, start, lines = "glove", len(head) - 1, 1, _chain(first, f)
            if dim < 1:
                raise RnnkitError(f"{path} line 1 holds no vector — {fix}")
            vectors = np.zeros((size, dim), dtype=np.float32)
            first_word = None
            for lineno, line in enumerate(lines, start=start):
                word, _, _ = line.partition(" ")
                if first_word is None:
                    first_word = word
                i = index.get(word)
                is_exact = i is not None
                if i is None and lowercase:
                    i = index.get(word.lower())
                if i is None or i == PAD_ID or (has_vector[i] and (exact[i] or not is_exact)):
                    continue
                fields = line.rstrip().rsplit(" ", dim)  # a word may hold spaces (GloVe 840B): split from the right
                try:
                    if len(fields) != dim + 1 or fields[0] != word:
                        raise ValueError
                    vectors[i] = np.asarray(fields[1:], dtype=np.float32)
                except ValueError:
                    raise RnnkitError(f"{path} line {lineno} is not `word` and {dim} numbers — {fix}") from None
                has_vector[i] = True
                exact[i] = is_exact
    except UnicodeDecodeError:
        raise RnnkitError(f"{path} is not a UTF-8 text vectors file (a binary word2vec .bin? convert it with "
                          f"gensim's KeyedVectors.save_word2vec_format(binary=False)) — {fix}") from None
    if not has_vector.any():
        raise RnnkitError(f"none of the {size:,} vocabulary tokens has a vector in {path} (its first word: "
                          f"{first_word!r}) — give vectors for this tokenizer's words, or train them with "
                          f"`rnnkit embed`")
    return vectors, has_vector, fmt


def is_torch_file(path: Path) -> bool:
    """Whether `path` was written by torch.save (an embeddings.pt) rather than being a text file."""
    with open(path, "rb") as f:
        return f.read(4).startswith(_TORCH_MAGIC)


def _chain(first: str, rest):
    yield first
    yield from rest


def _open_text(path: Path):
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")
