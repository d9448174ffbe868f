"""Pretrained word vectors: the `embed` stage, vector text files, and initialising a model.

    artifacts/embeddings.pt   vectors (vocab_size, dim) float32, row i = token i of tokenizer.json
                              has_vector (vocab_size,) bool: rows that got a vector (the others are 0)
                              counts (vocab_size,) int64: occurrences in the word2vec corpus (None
                              for vectors taken from a file), tokenizer_sha256, source, settings

`rnnkit embed` trains gensim's Word2Vec on the prepared train split plus
prepared/unlabeled.parquet when `prepare imdb --unlabeled` wrote it — never on the val or
test split, whose texts the model must not have seen in any form. Each text is cut into
pieces exactly as the tokenize stage's tokenizer cuts it (`Tokenizer.tokenize`: the word
tokenizer's words, BPE's pieces), so a row's vector is the vector of the very token the
model reads at that id. Words outside the vocabulary stay in the corpus as context; they
get no row. `embed --vectors FILE` takes the rows from a GloVe or word2vec text file instead.

`rnnkit train --embeddings PATH` (this file, or a vector text file read directly) copies
the vectors into `model.embedding`: rows without a vector keep the model's random init and
`<PAD>` stays zero. The vectors are standardised first (see `init_embedding`): centred,
then scaled to a standard deviation of 1 — the spread of nn.Embedding's N(0, 1). Why that
size rather than the small uniform start of random rows (models/layers.token_embedding):
Adam moves every weight by about the learning rate per step whatever its size, so
unit-sized vectors keep most of their pretrained geometry through training, where vectors
of the random rows' size (~0.03) would be rewritten within an epoch of unfreezing.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.artifacts import (
    EMBEDDINGS_FORMAT,
    ArtifactPaths,
    Manifest,
    check_format,
    sha256_file,
    torch_load,
    torch_save,
)
from rnnkit.errors import RnnkitError
from rnnkit.text.base import PAD_ID, Tokenizer

ALGORITHMS = ("cbow", "skipgram")
EMBED_FIX = "re-run `rnnkit embed --force`"
# The standard deviation a pretrained vector's components are scaled to (module docstring).
DEFAULT_SCALE = 1.0
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip container; the legacy pickle format
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class EmbedOptions:
    dim: int = 128  # vector size: must equal `train --embedding-dim`
    window: int = 5  # context words on each side
    epochs: int = 5  # passes over the corpus
    min_count: int = 2  # tokens seen fewer times in the corpus get no vector
    algorithm: str = "cbow"  # cbow (fast) or skipgram (slower, better for rare words)
    workers: int = 1  # gensim threads; with more than one, results vary from run to run
    seed: int = 0
    vectors: str | None = None  # a GloVe / word2vec text file: take the vectors from it instead

    def check(self) -> None:
        if self.vectors is not None:
            return  # the training settings do not apply
        for flag, value in (("--dim", self.dim), ("--window", self.window), ("--epochs", self.epochs),
                            ("--min-count", self.min_count), ("--workers", self.workers)):
            if value < 1:
                raise RnnkitError(f"{flag} {value} must be at least 1")
        if self.algorithm not in ALGORITHMS:
            raise RnnkitError(f"--algorithm {self.algorithm!r} — use one of: {', '.join(ALGORITHMS)}")

    def params(self) -> dict[str, Any]:
        """The settings recorded in the manifest and in embeddings.pt."""
        if self.vectors is not None:
            return {"vectors": str(Path(self.vectors).resolve())}
        return {k: v for k, v in asdict(self).items() if k != "vectors"}


@dataclass
class EmbedResult:
    skipped: bool
    path: Path
    vocab_size: int
    covered: int  # vocabulary rows that got a vector
    dim: int
    source: str  # in words, for the summary line
    texts: int = 0  # texts word2vec trained on (0 for a vectors file)
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class Pretrained:
    """Vectors aligned with a tokenizer's vocabulary, ready to copy into a model."""

    vectors: Any  # (vocab_size, dim) float32 tensor; rows without a vector are 0
    has_vector: Any  # (vocab_size,) bool tensor
    source: dict[str, Any] = field(default_factory=dict)  # plain data for the checkpoint
    input_hashes: dict[str, str] = field(default_factory=dict)  # for the manifest record

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def covered(self) -> int:
        return int(self.has_vector.sum())


# --------------------------------------------------------------------------- the embed stage


def embed(paths: ArtifactPaths, options: EmbedOptions, *, force: bool = False) -> EmbedResult:
    """Write artifacts/embeddings.pt: word2vec on train (+ unlabeled), or rows of a vectors file."""
    import torch

    options.check()
    manifest = Manifest(paths)
    input_hashes = manifest.verify([paths.tokenizer], produced_by="tokenize", rerun="rnnkit tokenize")
    tokenizer_sha = input_hashes[paths.rel(paths.tokenizer)]
    if options.vectors is not None:
        vectors_path = Path(options.vectors)
        _check_text_vectors_path(vectors_path, "--vectors")
        input_hashes[paths.rel(vectors_path)] = sha256_file(vectors_path)
        corpus_files: list[Path] = []
    else:
        corpus_files = _corpus_files(paths, manifest)
        input_hashes.update(manifest.verify(corpus_files, produced_by="prepare", rerun="rnnkit prepare"))
        _check_tokenizer_learned_from(paths, manifest, input_hashes)
    params = options.params()
    if not force and manifest.up_to_date("embed", params=params, input_hashes=input_hashes):
        data = load_embeddings_pt(paths.embeddings)
        return EmbedResult(True, paths.embeddings, int(data["vectors"].shape[0]), int(data["has_vector"].sum()),
                           int(data["vectors"].shape[1]), "up to date")

    tokenizer = Tokenizer.load(paths.tokenizer)
    started = time.perf_counter()
    counts = None
    if options.vectors is not None:
        vectors, has_vector, fmt = read_vectors_file(Path(options.vectors), tokenizer)
        source, texts, tokens = f"{fmt} file {options.vectors}", 0, 0
        settings = {**params, "format": fmt, "sha256": input_hashes[paths.rel(Path(options.vectors))]}
    else:
        import pandas as pd

        from rnnkit.console import training_progress

        with training_progress() as bar:
            frames = [pd.read_parquet(p, columns=["text"]) for p in corpus_files]
            texts_list = [t for f in frames for t in f["text"].tolist()]
            task = bar.add_task("tokenizing", total=len(texts_list), stats="")
            sentences = corpus_sentences(tokenizer, texts_list, lambda n: bar.advance(task, n))
            tokens = sum(map(len, sentences))
            task = bar.add_task(f"word2vec {options.algorithm}", total=options.epochs, stats="")
            keyed = train_word2vec(sentences, options, on_epoch=lambda: bar.advance(task, 1))
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
    return EmbedResult(False, paths.embeddings, tokenizer.vocab_size, covered, int(vectors.shape[1]), source,
                       texts, tokens, time.perf_counter() - started)


def _corpus_files(paths: ArtifactPaths, manifest: Manifest) -> list[Path]:
    """prepared/train.parquet, plus unlabeled.parquet when the last prepare wrote it."""
    files = [paths.prepared / "train.parquet"]
    unlabeled = paths.prepared / "unlabeled.parquet"
    recorded = manifest.stages.get("prepare", {}).get("outputs", {})
    if unlabeled.exists() and paths.rel(unlabeled) in recorded:
        files.append(unlabeled)
    return files


def _check_tokenizer_learned_from(paths: ArtifactPaths, manifest: Manifest, input_hashes: dict[str, str]) -> None:
    """The tokenizer must have been learned from the train split word2vec reads now."""
    rel = paths.rel(paths.prepared / "train.parquet")
    learned = manifest.stages.get("tokenize", {}).get("inputs", {}).get(rel)
    if learned is not None and learned != input_hashes[rel]:
        raise RnnkitError(f"tokenizer.json was learned from an older {rel} (prepare ran since) — "
                          f"re-run `rnnkit tokenize` first")


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


def train_word2vec(sentences: list[list[str]], options: EmbedOptions, *,
                   on_epoch: Callable[[], None] | None = None):
    """gensim Word2Vec's KeyedVectors. Deterministic for one worker and one seed."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class _Epochs(CallbackAny2Vec):
        def on_epoch_end(self, model) -> None:
            if on_epoch is not None:
                on_epoch()

    model = Word2Vec(vector_size=options.dim, window=options.window, min_count=options.min_count,
                     sg=1 if options.algorithm == "skipgram" else 0, workers=options.workers,
                     seed=options.seed, epochs=options.epochs)
    model.build_vocab(sentences)
    if len(model.wv) == 0:
        raise RnnkitError(f"no token occurs {options.min_count} times in the corpus — lower --min-count")
    model.train(sentences, total_examples=len(sentences), epochs=options.epochs, callbacks=[_Epochs()])
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


# --------------------------------------------------------------------------- vector text files


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


def _chain(first: str, rest):
    yield first
    yield from rest


def _open_text(path: Path):
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def _is_torch_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4).startswith(_TORCH_MAGIC)


def _check_text_vectors_path(path: Path, flag: str) -> None:
    if not path.is_file():
        raise RnnkitError(f"{flag} {path}: no such file — give a GloVe or word2vec text file")
    if _is_torch_file(path):
        raise RnnkitError(f"{flag} {path} is a torch file, not a vectors text file — pass an embeddings.pt to "
                          f"`rnnkit train --embeddings` instead")


# --------------------------------------------------------------------------- loading for training


def load_embeddings_pt(path: Path) -> dict[str, Any]:
    data = torch_load(path, what="embeddings.pt", fix="run `rnnkit embed` first")
    if not isinstance(data, dict):
        raise RnnkitError(f"{path} does not hold rnnkit embeddings — {EMBED_FIX}")
    check_format(data.get("format_version"), EMBEDDINGS_FORMAT, path, EMBED_FIX)
    vectors, has_vector = data.get("vectors"), data.get("has_vector")
    if (getattr(vectors, "ndim", 0) != 2 or getattr(has_vector, "shape", None) is None
            or tuple(has_vector.shape) != (vectors.shape[0],)):
        raise RnnkitError(f"{path} does not hold a (vocab_size, dim) table with its row mask — {EMBED_FIX}")
    return data


def load_pretrained(paths: ArtifactPaths, spec: str | Path, *, tokenizer: Tokenizer, tokenizer_sha256: str,
                    manifest: Manifest | None = None) -> Pretrained:
    """The vectors `train --embeddings PATH` asks for, aligned with `tokenizer`.

    PATH is an embeddings.pt written by `rnnkit embed` (it must have been built for this very
    tokenizer.json), or a GloVe / word2vec text file, aligned here.
    """
    import torch

    path = Path(spec)
    if not path.is_file():
        raise RnnkitError(f"--embeddings {path}: no such file — run `rnnkit embed` first (it writes "
                          f"{paths.embeddings}), or give a GloVe or word2vec text file")
    rel = paths.rel(path)
    if _is_torch_file(path):
        data = load_embeddings_pt(path)
        if data.get("tokenizer_sha256") != tokenizer_sha256:
            raise RnnkitError(f"{path} was built for another tokenizer.json than the one in {paths.root}/ "
                              f"(re-tokenized since, or another artifacts folder) — {EMBED_FIX}")
        if path.resolve() == paths.embeddings.resolve():
            hashes = (manifest or Manifest(paths)).verify([path], produced_by="embed", rerun="rnnkit embed --force")
        else:
            hashes = {rel: sha256_file(path)}
        vectors, has_vector = data["vectors"].float(), data["has_vector"].bool()
        if len(vectors) != tokenizer.vocab_size:
            raise RnnkitError(f"{path} has {len(vectors):,} rows but the vocabulary {tokenizer.vocab_size:,} — "
                              f"{EMBED_FIX}")
        source = {"kind": "embeddings.pt", "origin": data.get("source"), "settings": data.get("settings")}
    else:
        import numpy as np

        hashes = {rel: sha256_file(path)}
        array, mask, fmt = read_vectors_file(path, tokenizer)
        vectors, has_vector = torch.from_numpy(array), torch.from_numpy(np.asarray(mask))
        source = {"kind": fmt}
    source = {**source, "path": str(path.resolve()), "sha256": hashes[rel]}
    return Pretrained(vectors, has_vector, source, hashes)


def check_dim(pretrained: Pretrained, embedding_dim: int) -> None:
    """A one-line error when the vectors do not fit `--embedding-dim`."""
    if pretrained.dim == embedding_dim:
        return
    name = Path(pretrained.source.get("path", "the embeddings")).name
    fix = f"pass --embedding-dim {pretrained.dim}"
    if pretrained.source.get("origin") == "word2vec":
        fix += f" or re-run `rnnkit embed --dim {embedding_dim} --force`"
    raise RnnkitError(f"--embedding-dim {embedding_dim} but {name} holds {pretrained.dim}-d vectors — {fix}")


def init_embedding(embedding, pretrained: Pretrained, *, pad_id: int = PAD_ID, scale: float = DEFAULT_SCALE,
                   center: bool = True) -> dict[str, Any]:
    """Copy the pretrained rows into an nn.Embedding, standardised.

    Each component is centred on the vectors' mean (word2vec and GloVe vectors share a
    common direction that tells words apart no better than chance), then all components are
    multiplied by one factor — the geometry between words is kept — so that their standard
    deviation is `scale` (1.0: that of N(0, 1), see the module docstring). Rows without a
    vector keep the random init; `pad_id` is 0. Returns what was done, as plain data for
    the checkpoint.
    """
    import torch

    check_dim(pretrained, embedding.weight.shape[1])
    weight = embedding.weight
    rows = pretrained.has_vector.clone().bool()
    rows[pad_id] = False
    with torch.no_grad():
        vectors = pretrained.vectors[rows].double()
        if center and len(vectors) > 1:
            vectors = vectors - vectors.mean(0)
        spread = float(vectors.pow(2).mean().sqrt())  # the std of the (centred) components
        factor = scale / spread if spread > 0 else 1.0
        weight[rows.to(weight.device)] = (vectors * factor).to(weight.dtype).to(weight.device)
        weight[pad_id] = 0.0
    return {**pretrained.source, "rows": int(rows.sum()), "vocab_size": len(weight), "factor": factor,
            "scale": scale, "centered": center}
