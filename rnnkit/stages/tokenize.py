"""`rnnkit tokenize`: prepared/ splits -> dataset.pt, word2idx.pkl, tokenizer.json.

`run` reads the prepared splits (checked against their recorded hashes), learns the
vocabulary on the train split alone (val and test texts never shape it), encodes every split
and writes:

    dataset.pt       ids, lengths and labels per split (format: rnnkit/text/dataset.py)
    word2idx.pkl     {token: id}, a plain dict with "<PAD>" 0 and "<UNK>" 1
    tokenizer.json   the tokenizer itself, which checkpoints embed so that predict reads text alike

The tokenizers live in rnnkit/text/ (word.py, bpe.py). An unchanged run says "up to date".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rnnkit.artifacts import ArtifactPaths, data_lock
from rnnkit.models.config import MAX_VOCAB
from rnnkit.options import check, option
from rnnkit.text.base import TRUNCATE_CHOICES
from rnnkit.text.dataset import TOKENIZERS

# Tokens per text at most: far above any real text, so that only a typo is refused (--help shows
# the range; the vocabulary's bound, MAX_VOCAB, is the embedding table's).
MAX_LENGTH = 1_000_000
# Vocabulary sizes when --vocab-size is not given: BPE spends part of its budget on pieces of words.
DEFAULT_VOCAB = {"word": 20000, "bpe": 30000}


@dataclass
class Options:
    tokenizer: str = option("word", "word: regex words, a vocabulary by document frequency (gensim); bpe: "
                            "byte-pair pieces, so that rare words are not <UNK>.", choices=TOKENIZERS,
                            panel="Vocabulary")
    vocab_size: int | None = option(None, "Vocabulary size, special tokens included. Default: "
                                    + ", ".join(f"{n} {k}" for k, n in DEFAULT_VOCAB.items()) + ".", low=1,
                                    high=MAX_VOCAB, example="20000", panel="Vocabulary")
    min_df: int = option(2, "word: keep words in at least this many training documents (rarer ones read as "
                         "<UNK>).", low=1, panel="Vocabulary")
    max_df: float = option(0.9, "word: drop words in more than this fraction of documents.", low=0.0, high=1.0,
                           low_open=True, example="0.9", panel="Vocabulary")
    stop_words: bool = option(False, "word: drop English stop words (scikit-learn's list, keeping 'no' and "
                              "'not', which carry sentiment).", panel="Vocabulary")
    lowercase: bool = option(True, "Lower-case texts.", panel="Encoding")
    bos: bool = option(False, "Prepend <BOS>.", panel="Encoding")
    eos: bool = option(False, "Append <EOS>.", panel="Encoding")
    max_length: int = option(400, "Tokens kept per text, special tokens included.", low=1, high=MAX_LENGTH,
                             example="400", panel="Encoding")
    truncate: str = option("head", "Tokens a longer text keeps: head (the first), tail (the last) or head+tail "
                           "(a quarter from the start, the rest from the end).", choices=TRUNCATE_CHOICES,
                           panel="Encoding")
    force: bool = option(False, "Run even when the outputs are up to date.", panel="Output")

    def params(self) -> dict[str, Any]:
        """The settings the manifest records (--vocab-size resolved; --force is not a setting)."""
        size = self.vocab_size if self.vocab_size is not None else DEFAULT_VOCAB[self.tokenizer]
        return {**{k: v for k, v in asdict(self).items() if k != "force"}, "vocab_size": size}


@dataclass
class Result:
    skipped: bool  # True when the stage was up to date
    vocab_size: int
    counts: dict[str, int]  # texts per split
    mean_length: float  # tokens per training text, after truncation
    truncated: float  # fraction of training texts cut at --max-length (nan when up to date)


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None) -> Result:
    """Tokenize the prepared splits as `options` say (`given`: unused, every option applies).
    The folder's data lock is held throughout (artifacts.data_lock): a `prepare` or `tokenize`
    of the same folder, or a `train` about to load dataset.pt, is refused meanwhile."""
    check(options)
    with data_lock(paths, "tokenize", write=True):
        return _tokenize(paths, options)


def _tokenize(paths: ArtifactPaths, options: Options) -> Result:
    import pickle

    from rnnkit.artifacts import Manifest, torch_save, write_bytes
    from rnnkit.console import err_console, training_progress
    from rnnkit.data.prepared import SPLITS, load_prepared
    from rnnkit.text.dataset import build_tokenizer, dataset_tensors, encode, load_dataset

    params = options.params()
    manifest = Manifest(paths)
    splits, info, input_hashes = load_prepared(paths, manifest)
    if not options.force and manifest.up_to_date("tokenize", params=params, input_hashes=input_hashes):
        data = load_dataset(paths, manifest=manifest, check_lineage=False)
        return Result(True, int(data["vocab_size"]), {s: len(data[f"y_{s}"]) for s in SPLITS},
                      float(data["lengths_train"].float().mean()), float("nan"))

    train_texts = splits["train"]["text"].tolist()
    with training_progress() as bar:
        task = bar.add_task(f"learning {options.tokenizer} vocabulary", total=len(train_texts), stats="")
        tokenizer = build_tokenizer(
            options.tokenizer, train_texts, lambda n: bar.advance(task, n), vocab_size=params["vocab_size"],
            lowercase=options.lowercase, bos=options.bos, eos=options.eos, max_length=options.max_length,
            truncate=options.truncate, min_df=options.min_df, max_df=options.max_df,
            stop_words=options.stop_words)
        encoded: dict[str, list[list[int]]] = {}
        task = bar.add_task("encoding", total=sum(len(splits[s]) for s in SPLITS), stats="")
        for split in SPLITS:
            encoded[split] = encode(tokenizer, splits[split]["text"])
            bar.advance(task, len(encoded[split]))

    data = dataset_tensors(encoded, {s: splits[s]["label"] for s in SPLITS}, task=info["task"],
                           label_names=info["label_names"], tokenizer=tokenizer)
    torch_save(paths.dataset, data)
    write_bytes(paths.word2idx, pickle.dumps(tokenizer.get_vocab(), protocol=4))
    tokenizer.save(paths.tokenizer)
    manifest.record("tokenize", params=params, input_hashes=input_hashes,
                    outputs=[paths.dataset, paths.word2idx, paths.tokenizer])
    lengths = data["lengths_train"]
    err_console.print(f"vocabulary {tokenizer.vocab_size:,} tokens; sequences padded to {data['X_train'].shape[1]}")
    return Result(False, tokenizer.vocab_size, {s: len(encoded[s]) for s in SPLITS},
                  float(lengths.float().mean()), float((lengths >= options.max_length).float().mean()))
