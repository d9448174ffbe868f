"""`rnnkit embed`: word vectors for the vocabulary -> artifacts/embeddings.pt.

    embeddings.pt   vectors (vocab_size, dim) float32, row i = token i of tokenizer.json
                    has_vector (vocab_size,) bool: rows that got a vector (the others are 0)
                    counts (vocab_size,) int64: occurrences in the word2vec corpus (None for
                    vectors taken from a file), tokenizer_sha256, source, settings

`run` trains gensim's Word2Vec (text/word2vec.py) on the prepared train split plus
prepared/unlabeled.parquet when `prepare imdb --unlabeled` wrote it — never on the val or
test split, whose texts the model must not have seen in any form. Each text is cut into
pieces exactly as the tokenize stage's tokenizer cuts it (`Tokenizer.tokenize`: the word
tokenizer's words, BPE's pieces), so a row's vector is the vector of the very token the
model reads at that id. Words outside the vocabulary stay in the corpus as context; they
get no row. `--vectors FILE` takes the rows from a GloVe or word2vec text file instead
(text/vectors.py). `rnnkit train --embeddings` copies them into the model (text/embeddings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, data_lock, hold_lock
from rnnkit.errors import RnnkitError
from rnnkit.models.config import MAX_WIDTH
from rnnkit.options import check, option
from rnnkit.text.word2vec import ALGORITHMS


@dataclass
class Options:
    dim: int = option(128, "Vector size: the model's `train --embedding-dim`.", low=1, high=MAX_WIDTH,
                      panel="Word2vec")
    window: int = option(5, "Context tokens on each side.", low=1, high=1000, panel="Word2vec")
    epochs: int = option(5, "Passes over the corpus.", low=1, panel="Word2vec")
    min_count: int = option(2, "Tokens seen fewer times get no vector (too few contexts to place them).", low=1,
                         panel="Word2vec")
    algorithm: str = option("cbow", "cbow (fast) or skipgram (slower, better for rare words).", choices=ALGORITHMS,
                           panel="Word2vec")
    workers: int = option(1, "word2vec threads; more than 1 is faster but not reproducible run to run.", low=1,
                          high=256, panel="Hardware")
    seed: int = option(0, "word2vec seed.", low=0, high=2**32 - 1, panel="Word2vec")
    vectors: Path | None = option(None, "Take the vectors from a GloVe or word2vec text file instead of "
                                  "training them.", panel="Data")
    force: bool = option(False, "Run even when the outputs are up to date.", panel="Output")

    def params(self) -> dict[str, Any]:
        """The settings recorded in the manifest and in embeddings.pt: with --vectors the file, else
        word2vec's settings (train_word2vec's keyword arguments)."""
        if self.vectors is not None:
            return {"vectors": str(Path(self.vectors).resolve())}
        return {"dim": self.dim, "window": self.window, "epochs": self.epochs, "min_count": self.min_count,
                "algorithm": self.algorithm, "workers": self.workers, "seed": self.seed}


@dataclass
class Result:
    skipped: bool  # True when the stage was up to date
    path: Path
    vocab_size: int
    covered: int  # vocabulary rows that got a vector
    dim: int
    source: str  # in words, for the summary line
    texts: int = 0  # texts word2vec trained on (0 for a vectors file)
    tokens: int = 0
    seconds: float = 0.0


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Write embeddings.pt: word2vec on train (+ unlabeled), or the rows of a vectors file
    (`given`: unused; with --vectors the word2vec settings are not used)."""
    check(options)
    # embed reads tokenizer.json and prepared/ throughout (a shared data lock: `prepare` and
    # `tokenize` wait) and is the one writer of embeddings.pt (a second `embed` is refused).
    with hold_lock(paths, "embed", doing="`rnnkit embed` is writing it", refused=_embed_busy), \
            data_lock(paths, "embed", write=False):
        return _embed(paths, options)


def _embed_busy(holder: str, pid: int | None) -> str:
    who = f" by process {pid}" if pid is not None else ""
    return f"embeddings.pt is being written{who} (`rnnkit embed`) — wait for it to finish"


def _embed(paths: ArtifactPaths, options: Options) -> Result:
    import time

    import torch

    from rnnkit.artifacts import EMBEDDINGS_FORMAT, sha256_file, torch_save
    from rnnkit.text.base import Tokenizer
    from rnnkit.text.embeddings import load_embeddings_pt

    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.tokenizer], produced_by="tokenize", rerun="rnnkit tokenize")
    tokenizer_sha = input_hashes[paths.rel(paths.tokenizer)]
    if options.vectors is not None:
        vectors_path = Path(options.vectors)
        _check_vectors_path(vectors_path)
        input_hashes[paths.rel(vectors_path)] = sha256_file(vectors_path)
        corpus_files: list[Path] = []
    else:
        from rnnkit.data.prepared import check_tokenizer_learned_from, unlabeled_corpus_files

        corpus_files = unlabeled_corpus_files(paths, manifest)
        input_hashes.update(manifest.verify(corpus_files, produced_by="prepare", rerun="rnnkit prepare"))
        check_tokenizer_learned_from(paths, manifest, input_hashes)
    params = options.params()
    if not options.force and manifest.up_to_date("embed", params=params, input_hashes=input_hashes):
        data = load_embeddings_pt(paths.embeddings)
        return Result(True, paths.embeddings, int(data["vectors"].shape[0]), int(data["has_vector"].sum()),
                      int(data["vectors"].shape[1]), "up to date")

    tokenizer = Tokenizer.load(paths.tokenizer)
    started = time.perf_counter()
    counts = None
    if options.vectors is not None:
        from rnnkit.text.vectors import read_vectors_file

        vectors, has_vector, fmt = read_vectors_file(Path(options.vectors), tokenizer)
        source, texts, tokens = f"{fmt} file {options.vectors}", 0, 0
        settings = {**params, "format": fmt, "sha256": input_hashes[paths.rel(Path(options.vectors))]}
    else:
        import pandas as pd

        from rnnkit.console import training_progress
        from rnnkit.text.word2vec import align_keyed_vectors, corpus_sentences, train_word2vec

        with training_progress() as bar:
            frames = [pd.read_parquet(p, columns=["text"]) for p in corpus_files]
            texts_list = [t for f in frames for t in f["text"].tolist()]
            task = bar.add_task("tokenizing", total=len(texts_list), stats="")
            sentences = corpus_sentences(tokenizer, texts_list, lambda n: bar.advance(task, n))
            tokens = sum(map(len, sentences))
            task = bar.add_task(f"word2vec {options.algorithm}", total=options.epochs, stats="")
            keyed = train_word2vec(sentences, **params, on_epoch=lambda: bar.advance(task, 1))
        vectors, has_vector, counts = align_keyed_vectors(keyed, tokenizer)
        texts = len(sentences)
        corpus = [p.stem for p in corpus_files]
        source = (f"word2vec {options.algorithm}, {options.dim}-d, {options.epochs} epochs on "
                  f"{' + '.join(corpus)}: {texts:,} texts, {tokens:,} tokens")
        settings = {**params, "corpus": corpus, "texts": texts, "tokens": tokens}
    covered = int(has_vector.sum())
    if covered == 0:  # (a vectors file with no overlap raised already; word2vec on a tiny corpus can too)
        raise RnnkitError(f"no vocabulary token was seen {options.min_count} times in the corpus — "
                          f"lower --min-count or prepare more text")
    data = {
        "format_version": EMBEDDINGS_FORMAT,
        "vectors": torch.from_numpy(vectors),
        "has_vector": torch.from_numpy(has_vector),
        "counts": None if counts is None else torch.from_numpy(counts),
        "tokenizer_sha256": tokenizer_sha,
        "source": "file" if options.vectors is not None else "word2vec",
        "settings": settings,
    }
    torch_save(paths.embeddings, data)
    manifest.record("embed", params=params, input_hashes=input_hashes, outputs=[paths.embeddings])
    return Result(False, paths.embeddings, tokenizer.vocab_size, covered, int(vectors.shape[1]), source,
                  texts, tokens, time.perf_counter() - started)


def _check_vectors_path(path: Path) -> None:
    from rnnkit.text.vectors import is_torch_file

    if not path.is_file():
        raise RnnkitError(f"--vectors {path}: no such file — give a GloVe or word2vec text file")
    if is_torch_file(path):
        raise RnnkitError(f"--vectors {path} is a torch file, not a vectors text file — pass an embeddings.pt to "
                          f"`rnnkit train --embeddings` instead")
