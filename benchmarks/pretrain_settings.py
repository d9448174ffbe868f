"""`rnnkit pretrain`'s settings side by side: the softmax and each AWD-LSTM regulariser.

    python benchmarks/pretrain_settings.py --artifacts artifacts [--tokens 2000000] [--epochs 1] [--threads 1]

Needs a tokenized artifacts folder (`prepare imdb --unlabeled` for the real corpus). In one
process, on the same shuffled corpus (train + unlabeled, never val or test) and the same
held-out texts, it trains one language model per setting for --tokens tokens of the stream
(both directions; --epochs passes), from the same seed, and prints each one's held-out perplexity and training
speed, and their ratios to the first row (the defaults of `rnnkit pretrain`).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from rnnkit.artifacts import Manifest, artifact_paths
from rnnkit.data.prepared import unlabeled_corpus_files
from rnnkit.models.language import LanguageModel, LMConfig, cutoffs_for
from rnnkit.stages import pretrain
from rnnkit.text.base import Tokenizer
from rnnkit.training.device import configure_cpu
from rnnkit.training.lm import batchify, evaluate, frequency_rank, pretrain_fit

# name -> LMConfig fields that differ from `rnnkit pretrain`'s defaults.
SETTINGS = {
    "defaults (adaptive, dropout 0.1)": {},
    "full softmax": {"softmax": "full"},
    "no dropout": {"dropout": 0.0},
    "+ weight drop 0.2": {"weight_drop": 0.2},
    "+ embedding dropout 0.1": {"embedding_dropout": 0.1},
    "dropout 0.25 + weight drop 0.3 + embedding dropout 0.1": {"dropout": 0.25, "weight_drop": 0.3,
                                                              "embedding_dropout": 0.1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--tokens", type=int, default=2_000_000, help="stream tokens each model trains on")
    parser.add_argument("--epochs", type=int, default=1, help="passes over those tokens (a small corpus: several, "
                        "to see what regularisation does once a model overfits)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="the settings to run (names as in SETTINGS); default all")
    args = parser.parse_args()
    configure_cpu(args.threads)

    paths = artifact_paths(args.artifacts)
    defaults = pretrain.Options()
    files = unlabeled_corpus_files(paths, Manifest(paths))
    corpus = pretrain.read_corpus(files, val_share=defaults.val_share, seed=defaults.seed)
    tokenizer = Tokenizer.load(paths.tokenizer)
    train_stream, val_stream = pretrain.token_streams(tokenizer, corpus)
    train_stream = train_stream[: args.tokens]
    vocab = tokenizer.vocab_size
    rank = frequency_rank(train_stream, vocab)
    rows = {"forward": batchify(train_stream, defaults.batch_size),
            "backward": batchify(train_stream.flip(0), defaults.batch_size)}
    val_rows = {"forward": batchify(val_stream, defaults.batch_size),
                "backward": batchify(val_stream.flip(0), defaults.batch_size)}
    print(f"corpus {' + '.join(p.stem for p in files)}: {len(train_stream):,} tokens x {args.epochs} epoch(s) each, "
          f"{len(val_stream):,} held out; vocabulary {vocab:,}; {args.threads} thread(s)")

    # A short warm-up run first: the first model of a process trains slower (allocator, caches).
    torch.manual_seed(0)
    pretrain_fit(LanguageModel(LMConfig(vocab_size=vocab, cutoffs=cutoffs_for(vocab)), rank),
                 {d: r[:, : 20 * defaults.bptt + 1] for d, r in rows.items()}, val_rows, epochs=1, bptt=defaults.bptt,
                 lr=defaults.lr, clip=defaults.clip, eval_every=0, seed=0, device=torch.device("cpu"), progress=False)
    results = []
    for name, change in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        config = LMConfig(vocab_size=vocab, embedding_dim=defaults.embedding_dim, hidden_dim=defaults.hidden_dim,
                          dropout=defaults.dropout, cutoffs=cutoffs_for(vocab))
        for key, value in change.items():
            setattr(config, key, value)
        if config.softmax == "full":
            config.cutoffs = []
        torch.manual_seed(0)
        model = LanguageModel(config, rank)
        started = time.perf_counter()
        fit = pretrain_fit(model, rows, val_rows, epochs=args.epochs, bptt=defaults.bptt, lr=defaults.lr,
                           clip=defaults.clip, eval_every=0, seed=0, device=torch.device("cpu"), progress=False)
        seconds = time.perf_counter() - started
        ppl = math.exp(evaluate(model, val_rows, bptt=defaults.bptt, device=torch.device("cpu")))
        results.append((name, ppl, fit.tokens_per_second, seconds))
        print(f"  {name}: held-out perplexity {ppl:.1f}, {fit.tokens_per_second:,.0f} tokens/s ({seconds:.0f} s)",
              flush=True)

    base_ppl, base_speed = results[0][1], results[0][2]
    print("\n| setting | held-out perplexity | vs first | tokens/s | vs first |\n|---|---|---|---|---|")
    for name, ppl, speed, _ in results:
        print(f"| {name} | {ppl:.1f} | {ppl / base_ppl:.3f} | {speed:,.0f} | {speed / base_speed:.2f} |")


if __name__ == "__main__":
    main()
