"""Word vectors learnt with gensim's Word2Vec on texts cut by an rnnkit tokenizer, aligned
with that tokenizer's vocabulary (row i = token i)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rnnkit.errors import RnnkitError
from rnnkit.text.base import PAD_ID, Tokenizer

ALGORITHMS = ("cbow", "skipgram")


def corpus_sentences(tokenizer: Tokenizer, texts: Iterable[str],
                     advance: Callable[[int], None] | None = None) -> list[list[str]]:
    """Each text as the tokenizer's pieces. Equal pieces share one string object, so the full
    IMDB corpus (75,000 reviews, ~20M tokens) costs pointers, not a string per token."""
    shared: dict[str, str] = {}
    intern = shared.setdefault
    sentences = []
    for i, text in enumerate(texts, start=1):
        pieces = tokenizer.tokenize(text)
        sentences.append([intern(p, p) for p in pieces])
        if advance is not None and i % 1000 == 0:
            advance(1000)
    if advance is not None and len(sentences) % 1000:
        advance(len(sentences) % 1000)
    return sentences


def train_word2vec(sentences: list[list[str]], *, dim: int, window: int, epochs: int, min_count: int,
                   algorithm: str, workers: int, seed: int, on_epoch: Callable[[], None] | None = None):
    """gensim Word2Vec's KeyedVectors (`algorithm`: one of ALGORITHMS). Deterministic for one
    worker and one seed."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class _Epochs(CallbackAny2Vec):
        def on_epoch_end(self, model) -> None:
            if on_epoch is not None:
                on_epoch()

    model = Word2Vec(vector_size=dim, window=window, min_count=min_count, sg=1 if algorithm == "skipgram" else 0,
                     workers=workers, seed=seed, epochs=epochs)
    model.build_vocab(sentences)
    if len(model.wv) == 0:
        raise RnnkitError(f"no token occurs {min_count} times in the corpus — lower --min-count")
    model.train(sentences, total_examples=len(sentences), epochs=epochs, callbacks=[_Epochs()])
    return model.wv


def align_keyed_vectors(keyed, tokenizer: Tokenizer):
    """(vectors, has_vector, counts) as numpy arrays, row i = vocabulary token i."""
    import numpy as np

    size = tokenizer.vocab_size
    vectors = np.zeros((size, keyed.vector_size), dtype=np.float32)
    has_vector = np.zeros(size, dtype=bool)
    counts = np.zeros(size, dtype=np.int64)
    for i, token in enumerate(tokenizer.vocab):
        j = keyed.key_to_index.get(token)
        if j is None or i == PAD_ID:
            continue
        vectors[i] = keyed.vectors[j]
        has_vector[i] = True
        counts[i] = keyed.get_vecattr(token, "count")
    return vectors, has_vector, counts
