"""Benchmark rnnkit's BPE tokenizer against Hugging Face `tokenizers` on IMDB reviews.

    python benchmarks/bpe.py --source ../shared/data/aclImdb_v1.tar.gz [--vocab-size 30000]
                             [--limit N] [--min-frequency 2] [--repeat 1]

Reads the 25,000 *training* reviews (aclImdb/train/pos and neg) from the tarball or from an
extracted folder, then, in this one process, trains both tokenizers on them, encodes all of
them with each, and prints training time, encoding time, tokens per word and the ratios.

The `tokenizers` pipeline is configured like rnnkit's (docs/bpe.md):

* normaliser: `<br />` (any spelling) -> space, lower-case, whitespace runs -> one space,
  strip;
* pre-tokeniser: `Metaspace` (every space -> `▁`, plus one `▁` in front of the text, no
  split), then `Split` on `▁?\\w+|▁?[^\\w\\s▁]+` (rnnkit: `" ?(?:\\w+|[^\\w\\s]+)"` on
  " " + text, the space becoming `▁`) — the same pieces, up to the regex engines'
  Unicode tables (Oniguruma vs Python `re`) and Rust vs Python lower-casing;
* model: BPE with byte fallback; trainer with the same min_frequency and the same number
  of learnt tokens: `tokenizers` trains to vocab_size - 256 (its vocabulary has no byte
  tokens), after which the 256 `<0xVV>` byte tokens are appended to its vocabulary so
  both end at exactly vocab_size and unseen characters fall back to bytes in both.

Both break ties between equally frequent pairs by the smaller token ids, so they should
learn the same merges; the script prints how many reviews come out tokenized identically.
Differences that remain: a literal `▁` in the text (rnnkit: byte fallback; tokenizers: a
space), and threads — `tokenizers` uses all cores unless RAYON_NUM_THREADS says otherwise,
rnnkit one. Times are wall-clock, the best of --repeat runs; rnnkit encodes with a cold
cache (a fresh copy of the trained tokenizer). Words are the space-separated words of the
normalised text, so both tokenizers are divided by the same count.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import tarfile
import time
from pathlib import Path

from rnnkit.text.bpe import BYTE_TOKENS, MARKER, BPETokenizer
from rnnkit.text.clean import normalize

_REVIEW = re.compile(r"(?:^|/)aclImdb/train/(pos|neg)/[^/]+\.txt$")


def read_reviews(source: Path) -> list[str]:
    """The training reviews, positive and negative interleaved (so --limit keeps both)."""
    by_label: dict[str, list[tuple[str, str]]] = {"pos": [], "neg": []}
    if source.is_dir():
        root = next(
            (p for p in (source, source / "aclImdb", source.parent) if (p / "train").is_dir()),
            None,
        )
        if root is None:
            sys.exit(f"{source}: no aclImdb/train folder — pass the tarball or the aclImdb folder")
        for label, reviews in by_label.items():
            for path in (root / "train" / label).glob("*.txt"):
                reviews.append((path.name, path.read_text(encoding="utf-8")))
    else:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                match = _REVIEW.search(member.name)
                if match and member.isfile():
                    data = tar.extractfile(member).read().decode("utf-8")
                    by_label[match.group(1)].append((Path(member.name).name, data))
    pos, neg = (sorted(by_label[label]) for label in ("pos", "neg"))
    pairs = itertools.zip_longest(pos, neg)
    return [text for pair in pairs for _, text in filter(None, pair)]


def build_hf(vocab_size: int, min_frequency: int):
    """A `tokenizers` BPE pipeline configured like rnnkit's (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE(unk_token="<UNK>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(r"(?i)<br\s*/?\s*>"), " "),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip(),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # Every space -> "▁", and one "▁" in front of the text, without splitting yet.
            pre_tokenizers.Metaspace(MARKER, prepend_scheme="always", split=False),
            pre_tokenizers.Split(
                Regex(rf"{MARKER}?\w+|{MARKER}?[^\w\s{MARKER}]+"), behavior="isolated"
            ),
        ]
    )
    tok.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Fuse(), decoders.Metaspace(MARKER, "always")]
    )
    trainer = BpeTrainer(
        vocab_size=vocab_size - len(BYTE_TOKENS),
        min_frequency=min_frequency,
        special_tokens=["<PAD>", "<UNK>"],
        show_progress=False,
    )
    return tok, trainer


def add_byte_tokens(tok) -> None:
    """Append the 256 byte tokens to a trained `tokenizers` BPE model (for byte fallback)."""
    from tokenizers import models

    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    for byte_token in BYTE_TOKENS:
        vocab.setdefault(byte_token, len(vocab))
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok.model = models.BPE(vocab, merges, unk_token="<UNK>", byte_fallback=True)


def best_of(repeat: int, fn, setup=lambda: None):
    """(result of the last run, the shortest wall-clock time of `fn(setup())` over `repeat`
    runs); `setup` runs untimed before each run."""
    best, result = float("inf"), None
    for _ in range(repeat):
        arg = setup()
        start = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - start)
    return result, best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="aclImdb_v1.tar.gz or aclImdb/")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use the first N reviews")
    parser.add_argument("--repeat", type=int, default=1, help="report the best of N runs")
    args = parser.parse_args(argv)

    import tokenizers

    start = time.perf_counter()
    texts = read_reviews(args.source)[: args.limit]
    n_words = sum(len(normalize(t).split()) for t in texts)
    print(
        f"{len(texts)} reviews, {sum(map(len, texts)):,} characters, {n_words:,} words "
        f"(read in {time.perf_counter() - start:.1f} s); vocab_size {args.vocab_size}, "
        f"min_frequency {args.min_frequency}"
    )
    threads = os.environ.get("RAYON_NUM_THREADS", f"all {os.cpu_count()} cores")
    print(f"tokenizers {tokenizers.__version__} (threads: {threads}); rnnkit: 1 thread, Python")

    # rnnkit. A freshly trained tokenizer has an empty encoding cache, so encoding is cold.
    # Each encoding run gets a fresh copy of the trained tokenizer, so that both tokenizers'
    # word caches start empty every time.
    ours, ours_train = best_of(
        args.repeat,
        lambda _: BPETokenizer.train(texts, args.vocab_size, min_frequency=args.min_frequency),
    )
    ours_ids, ours_encode = best_of(
        args.repeat,
        lambda tok: tok.encode_batch_ids(texts),
        setup=lambda: BPETokenizer.from_dict(ours.to_dict()),
    )

    def train_hf(_):
        tok, trainer = build_hf(args.vocab_size, args.min_frequency)
        tok.train_from_iterator(texts, trainer)
        return tok

    hf, hf_train = best_of(args.repeat, train_hf)
    add_byte_tokens(hf)
    hf_enc, hf_encode = best_of(
        args.repeat,
        lambda tok: tok.encode_batch(texts),
        setup=lambda: type(hf).from_str(hf.to_str()),
    )

    ours_tokens = sum(map(len, ours_ids))
    hf_tokens = sum(len(e.ids) for e in hf_enc)
    same = sum(ours.tokenize(t) == e.tokens for t, e in zip(texts, hf_enc))
    round_trip = sum(ours.decode(ids) == normalize(t) for t, ids in zip(texts, ours_ids))

    rows = [
        ("", "rnnkit", "tokenizers", "ratio"),
        ("vocabulary", ours.vocab_size, hf.get_vocab_size(), ""),
        ("train (s)", f"{ours_train:.2f}", f"{hf_train:.2f}", f"{ours_train / hf_train:.2f}x"),
        ("encode (s)", f"{ours_encode:.2f}", f"{hf_encode:.2f}", f"{ours_encode / hf_encode:.2f}x"),
        ("tokens", f"{ours_tokens:,}", f"{hf_tokens:,}", ""),
        (
            "tokens/word",
            f"{ours_tokens / n_words:.4f}",
            f"{hf_tokens / n_words:.4f}",
            f"{(ours_tokens / hf_tokens - 1) * 100:+.3f}%",
        ),
    ]
    for row in rows:
        print(f"{row[0]:<12}{row[1]:>14}{row[2]:>14}{row[3]:>11}")
    print(f"reviews tokenized identically: {same}/{len(texts)}")
    print(f"rnnkit decode(encode(text)) == normalize(text): {round_trip}/{len(texts)}")
    goals = [
        ("train <= 10x", ours_train <= 10 * hf_train),
        ("encode <= 5x", ours_encode <= 5 * hf_encode),
        ("tokens/word within 2%", abs(ours_tokens / hf_tokens - 1) <= 0.02),
    ]
    print("goals: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in goals))


if __name__ == "__main__":
    main()
