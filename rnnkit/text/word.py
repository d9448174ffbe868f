"""The word tokenizer: lower-cased regex words, a vocabulary built with gensim's Dictionary.

Pieces are runs of letters and digits with inner apostrophes ("don't", "90s") and the
marks "!" and "?" (which carry sentiment); everything else separates words. The vocabulary
keeps words that occur in at least `min_df` training documents and at most a `max_df`
fraction of them, the `vocab_size` most frequent by document frequency (ties by the word,
so ids are deterministic). Unknown words map to `<UNK>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.text.base import Tokenizer, special_tokens
from rnnkit.text.clean import strip_html_breaks

WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[!?]")
# Words that carry the polarity of a sentence; scikit-learn's English stop list has them.
KEEP_STOP_WORDS = frozenset({"no", "not"})


def english_stop_words() -> list[str]:
    """scikit-learn's English stop words minus "no" and "not", sorted."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS - KEEP_STOP_WORDS)


class WordTokenizer(Tokenizer):
    kind = "word"

    def __init__(self, vocab: list[str], *, stop_words: list[str] | None = None, **settings: Any):
        super().__init__(vocab, **settings)
        # The stop list itself is stored (not a flag) so that loading needs no scikit-learn
        # and a later scikit-learn release cannot change how saved models read text.
        self.stop_words = sorted(stop_words) if stop_words else []
        self._stop = frozenset(self.stop_words)

    def tokenize(self, text: str) -> list[str]:
        # normalize() without its whitespace collapsing: the pattern never matches or spans
        # whitespace, so the pieces are the same, and collapsing was a large share of tokenizing time.
        text = strip_html_breaks(text)
        words = WORD_PATTERN.findall(text.lower() if self.lowercase else text)
        if self._stop:
            words = [w for w in words if w not in self._stop]
        return words

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        words = []
        for i in map(int, ids):
            if skip_special_tokens and i < self.n_special:
                continue
            token = self.id_to_token(i)
            if token is not None:
                words.append(token)
        return " ".join(words)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "stop_words": self.stop_words}

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int = 20000,
        min_df: int = 2,
        max_df: float = 0.9,
        stop_words: bool = False,
        lowercase: bool = True,
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = 400,
        truncate: str = "head",
        progress: Callable[[int], None] | None = None,
    ) -> WordTokenizer:
        """Learn the vocabulary from training texts (gensim Dictionary, filtered by df)."""
        from gensim.corpora import Dictionary

        specials = special_tokens(add_bos, add_eos)
        if vocab_size <= len(specials):
            raise RnnkitError(f"--vocab-size {vocab_size} leaves no room for words — use e.g. 20000")
        if min_df < 1:
            raise RnnkitError(f"--min-df {min_df} must be at least 1")
        if not 0.0 < max_df <= 1.0:
            raise RnnkitError(f"--max-df {max_df} is not a fraction — give a value in (0, 1], e.g. 0.9")
        settings = dict(lowercase=lowercase, add_bos=add_bos, add_eos=add_eos,
                        max_length=max_length, truncate=truncate)
        # A throw-away instance tokenizes with exactly the settings the final one will have.
        probe = cls(specials, stop_words=english_stop_words() if stop_words else None, **settings)
        dictionary = Dictionary()
        batch: list[list[str]] = []
        for text in texts:
            batch.append(probe.tokenize(text))
            if len(batch) == 2000:
                dictionary.add_documents(batch)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            dictionary.add_documents(batch)
            if progress:
                progress(len(batch))
        dictionary.filter_extremes(no_below=min_df, no_above=max_df, keep_n=None)
        ranked = sorted(dictionary.token2id, key=lambda w: (-dictionary.dfs[dictionary.token2id[w]], w))
        words = [w for w in ranked if w not in specials][: vocab_size - len(specials)]
        return cls(specials + words, stop_words=probe.stop_words, **settings)
