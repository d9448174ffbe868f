"""`rnnkit pretrain`: an LSTM language model on the train split + unlabeled texts -> artifacts/pretrained/<name>/.

    pretrained/<name>/encoder.pt     format_version, config (models/language.LMConfig), encoder (the
                                     embedding and LSTM weights a classifier takes), tokenizer_sha256,
                                     settings, corpus, history
                     state.pt        weights, optimizer, schedule, random generators and LSTM state at
                                     the last evaluation: what --resume continues from
                     metrics.jsonl   one line per evaluation: tokens, train and held-out perplexity, tokens/s
                     perplexity.png  the curve
                     settings.json   the options, the corpus and the tokenizer it belongs to

The corpus is prepared/train.parquet plus prepared/unlabeled.parquet when `prepare imdb
--unlabeled` wrote it — never the val or test split, which the classifiers are measured on.
A share of the unlabeled texts (of the train texts when there are none) is held out to
measure perplexity. The texts are read as the tokenize stage's tokenizer reads them, whole.

The folder is built in pretrained/.<name>.partial/ and renamed into place when training ends:
an existing model is never replaced by a half-trained one. Ctrl-C (or a kill) leaves the
partial folder, whose state.pt `--resume` continues from. `rnnkit train --init-from <name>`
starts a classifier's encoder from encoder.pt (models/language.init_classifier).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rnnkit.artifacts import ArtifactPaths, Manifest, data_lock, hold_lock
from rnnkit.errors import RnnkitError
from rnnkit.models.config import LM_DIRECTIONS as DIRECTIONS
from rnnkit.models.config import LM_SOFTMAXES as SOFTMAXES
from rnnkit.models.config import MAX_LAYERS, MAX_WIDTH
from rnnkit.options import check, option
from rnnkit.training.device import DeviceOptions

SETTINGS_FILE, ENCODER_FILE, STATE_FILE = "settings.json", "encoder.pt", "state.pt"
# Auto epochs: passes enough for about this many steps, at most MAX_EPOCHS (a small corpus).
TARGET_STEPS, MAX_EPOCHS = 2000, 20


@dataclass
class Options(DeviceOptions):
    name: str = option("lm", "The model's folder: artifacts/pretrained/NAME (`train --init-from NAME`).",
                       panel="Run", metavar="NAME")
    directions: str = option("both", "forward, backward (reversed text) or both (what a BiLSTM classifier "
                             "takes).", choices=tuple(DIRECTIONS), panel="Model")
    embedding_dim: int = option(128, "Embedding size: the classifier's --embedding-dim.", low=1, high=MAX_WIDTH,
                                panel="Model")
    hidden_dim: int = option(128, "LSTM size per direction: the classifier's --hidden-dim.", low=1, high=MAX_WIDTH,
                             panel="Model")
    layers: int = option(1, "Stacked LSTM layers: the classifier's --layers.", low=1, high=MAX_LAYERS, panel="Model")
    dropout: float = option(0.1, "Locked dropout on the input, between layers and on the output.", low=0, high=1,
                            high_open=True, panel="Model")
    embedding_dropout: float = option(0.0, "Share of the vocabulary's words dropped for a whole batch.", low=0,
                                      high=1, high_open=True, panel="Model")
    weight_drop: float = option(0.0, "DropConnect on the LSTM's hidden-to-hidden weights.", low=0, high=1,
                                high_open=True, panel="Model")
    softmax: str = option("adaptive", "adaptive (fast: frequent words first) or full.", choices=SOFTMAXES,
                          panel="Model")
    bptt: int = option(70, "Tokens per step: gradients flow back this far.", low=2, high=100_000,
                       panel="Optimisation")
    batch_size: int = option(64, "Contiguous rows of text read side by side.", low=1, panel="Optimisation")
    epochs: int | None = option(None, f"Passes over the corpus. Default: about {TARGET_STEPS:,} steps' worth, "
                                f"1 to {MAX_EPOCHS}.", low=1, high=1000, panel="Optimisation")
    lr: float = option(3e-3, "Adam's peak learning rate (warm-up, then cosine decay).", low=0, low_open=True,
                       example="3e-3", panel="Optimisation")
    clip: float = option(1.0, "Max gradient norm (0: no clipping).", low=0, panel="Optimisation")
    seed: int = option(0, "Seed for weights, dropout and the held-out texts.", low=0, high=2**32 - 1,
                       panel="Optimisation")
    eval_every: int = option(500, "Measure held-out perplexity (and save a resumable state) every N steps, "
                             "and at each epoch's end (0: epoch ends only).", low=0, panel="Optimisation")
    val_share: float = option(0.02, "Share of the unlabeled texts (train texts when there are none) held "
                              "out for perplexity.", low=0, high=0.5, low_open=True, panel="Data")
    max_tokens: int = option(0, "Train on the first N tokens of the shuffled corpus (0: all of it).", low=0,
                             panel="Data")
    amp: bool = option(False, "Mixed precision (bf16 on CPU, fp16 on CUDA).", panel="Hardware")
    force: bool = option(False, "Replace an existing model of this --name (once the new one has finished).",
                         panel="Output")
    resume: bool = option(False, "Continue the interrupted pretraining of --name from its last evaluation, "
                          "with its own settings (only --device and --threads may change).", panel="Run")

    def params(self) -> dict[str, Any]:
        """The settings that decide the model (not where it runs, nor how the folder is handled)."""
        return {k: v for k, v in asdict(self).items() if k not in ("device", "threads", "force", "resume")}


@dataclass
class Result:
    name: str
    path: Path
    history: list[dict]
    train_tokens: int
    val_tokens: int
    texts: int
    parameters: int
    seconds: float
    directions: str  # as trained (--directions)


def run(paths: ArtifactPaths, options: Options, given: set[str] | None = None, *,
        on_eval: Callable[[dict], None] | None = None) -> Result:
    """Pretrain as `options` say. `on_eval(record)` runs after each evaluation's state is saved
    (a hook: raising KeyboardInterrupt there stops the run as Ctrl-C does)."""
    from rnnkit.training.run_config import check_run_name

    check(options)
    check_run_name(options.name)

    def refused(holder: str, pid: int | None) -> str:
        who = f"process {pid}" if pid is not None else "another process"
        return f"pretrained model {options.name!r} is being trained by {who} — wait for it, or pick another --name"

    with hold_lock(paths, f"pretrain/{options.name}", doing="being pretrained", refused=refused):
        return _run(paths, options, given or set(), on_eval)


def partial_dir(paths: ArtifactPaths, name: str) -> Path:
    return paths.pretrained / f".{name}.partial"


def _run(paths: ArtifactPaths, options: Options, given: set[str], on_eval) -> Result:
    import time

    import torch

    from rnnkit.artifacts import (
        PRETRAINED_FORMAT,
        replace_folder,
        sha256_file,
        torch_load,
        torch_save,
        write_json,
        write_text,
    )
    from rnnkit.console import err_console
    from rnnkit.data.prepared import check_tokenizer_learned_from, unlabeled_corpus_files
    from rnnkit.models.language import LanguageModel, LMConfig, cutoffs_for
    from rnnkit.models.sizing import count_parameters
    from rnnkit.plots import perplexity_curve
    from rnnkit.text.base import Tokenizer
    from rnnkit.training.device import configure_cpu, resolve_device
    from rnnkit.training.lm import batchify, frequency_rank, pretrain_fit, steps_in

    name = options.name
    final_dir, work_dir = paths.pretrained / name, partial_dir(paths, name)
    saved = None
    if options.resume:
        saved = _saved_settings(work_dir, name)
        extra = sorted(given - {"resume", "device", "threads", "name"})
        if extra:
            flags = ", ".join("--" + g.replace("_", "-") for g in extra)
            raise RnnkitError(f"--resume continues {name!r} with its own settings — drop {flags} (only --device "
                              f"and --threads may change)")
        options = replace(Options(**saved["options"]), name=name, resume=True, device=options.device,
                          threads=options.threads)
    else:
        if final_dir.exists() and not options.force:
            raise RnnkitError(f"pretrained model {name!r} already exists in {paths.pretrained}/ — pick another "
                              f"--name, or pass --force to replace it once the new one has finished")
        if (work_dir / STATE_FILE).exists() and not options.force:
            raise RnnkitError(f"{work_dir} holds an interrupted pretraining of {name!r} — continue it with "
                              f"`rnnkit pretrain --name {name} --resume`, or pass --force to discard it")
    configure_cpu(options.threads)
    device = resolve_device(options.device)

    with data_lock(paths, "pretrain", write=False):
        manifest = Manifest(paths)
        input_hashes = manifest.verify([paths.tokenizer], produced_by="tokenize", rerun="rnnkit tokenize")
        tokenizer_sha = input_hashes[paths.rel(paths.tokenizer)]
        corpus_files = unlabeled_corpus_files(paths, manifest)
        input_hashes.update(manifest.verify(corpus_files, produced_by="prepare", rerun="rnnkit prepare"))
        check_tokenizer_learned_from(paths, manifest, input_hashes)
        if saved is not None and saved["tokenizer_sha256"] != tokenizer_sha:
            raise RnnkitError(f"{work_dir} was pretrained with another tokenizer.json than the one in {paths.root}/ "
                              f"— it cannot be resumed on this one; pretrain anew with --force")
        tokenizer = Tokenizer.load(paths.tokenizer)
        corpus = read_corpus(corpus_files, val_share=options.val_share, seed=options.seed)

    started = time.perf_counter()
    train_stream, val_stream = token_streams(tokenizer, corpus)
    if options.max_tokens:
        train_stream = train_stream[: options.max_tokens]
    rows = {d: batchify(train_stream if d == "forward" else train_stream.flip(0), options.batch_size)
            for d in DIRECTIONS[options.directions]}
    per_epoch = steps_in(next(iter(rows.values())), options.bptt)
    if per_epoch == 0:
        raise RnnkitError(f"the corpus has {len(train_stream):,} tokens: too few for --batch-size "
                          f"{options.batch_size} rows of --bptt {options.bptt} — lower them")
    val_batch = max(1, min(options.batch_size, len(val_stream) // (2 * options.bptt)))
    val_rows = {d: batchify(val_stream if d == "forward" else val_stream.flip(0), val_batch) for d in rows}
    epochs = options.epochs or max(1, min(MAX_EPOCHS, -(-TARGET_STEPS // per_epoch)))

    vocab_size = tokenizer.vocab_size
    config = LMConfig(vocab_size=vocab_size, embedding_dim=options.embedding_dim, hidden_dim=options.hidden_dim,
                      layers=options.layers, directions=options.directions, dropout=options.dropout,
                      embedding_dropout=options.embedding_dropout, weight_drop=options.weight_drop,
                      softmax=options.softmax, cutoffs=cutoffs_for(vocab_size) if options.softmax == "adaptive" else [])
    torch.manual_seed(options.seed)
    model = LanguageModel(config, frequency_rank(train_stream, vocab_size)).to(device)
    state = None
    if saved is not None:
        state = torch_load(work_dir / STATE_FILE, what=STATE_FILE, fix=f"pretrain {name!r} anew with --force")
        model.load_state_dict(state["model"])
    n_params, _ = count_parameters(model)
    corpus_info = {"files": [p.stem for p in corpus_files], "texts": corpus.texts, "val_texts": len(corpus.val),
                   "train_tokens": len(train_stream), "val_tokens": len(val_stream)}
    err_console.print(f"pretrain [bold]{name}[/]: LSTM language model ({options.directions}, embedding "
                      f"{options.embedding_dim}, hidden {options.hidden_dim}, layers {options.layers}, "
                      f"{options.softmax} softmax), {n_params:,} parameters, device {device}", highlight=False)
    err_console.print(f"corpus: {' + '.join(corpus_info['files'])}: {len(train_stream):,} tokens to train on, "
                      f"{len(val_stream):,} held out ({len(corpus.val):,} texts); {epochs} epoch(s) of "
                      f"{per_epoch:,} steps of {options.batch_size} x {options.bptt} tokens", highlight=False)
    if state is not None:
        err_console.print(f"resuming {name} at epoch {state['epoch']}, step {state['step']:,}", highlight=False)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
    settings = {"format_version": PRETRAINED_FORMAT, "options": options.params(), "resolved_epochs": epochs,
                "tokenizer_sha256": tokenizer_sha, "config": config.to_dict(), "corpus": corpus_info}
    write_json(work_dir / SETTINGS_FILE, settings)

    def encoder_payload(history: list[dict]) -> dict:
        return {"format_version": PRETRAINED_FORMAT, "config": config.to_dict(),
                "encoder": {k: v.detach().cpu() for k, v in model.encoder_state().items()},
                "tokenizer_sha256": tokenizer_sha, "settings": options.params(), "corpus": corpus_info,
                "history": history}

    def saved_eval(record: dict, snapshot: dict) -> None:
        history = snapshot["history"]
        torch_save(work_dir / ENCODER_FILE, encoder_payload(history))
        write_text(work_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        torch_save(work_dir / STATE_FILE, snapshot)  # last: a state never runs ahead of its files
        if on_eval is not None:
            on_eval(record)

    try:
        result = pretrain_fit(model, rows, val_rows, epochs=epochs, bptt=options.bptt, lr=options.lr,
                              clip=options.clip, eval_every=options.eval_every, seed=options.seed, device=device,
                              amp=options.amp, on_eval=saved_eval, resume=state)
    except KeyboardInterrupt:
        if (work_dir / STATE_FILE).exists():
            err_console.print(f"interrupted: the pretraining so far is in {work_dir} — `rnnkit pretrain --name "
                              f"{name} --resume` continues it", highlight=False)
        raise
    history = result.history
    perplexity_curve(history, work_dir / "perplexity.png",
                     title=f"{name}: LSTM language model ({options.directions})")
    outputs = [work_dir / f for f in (ENCODER_FILE, "metrics.jsonl", "perplexity.png", SETTINGS_FILE)]
    output_hashes = {paths.rel(final_dir / f.name): sha256_file(f) for f in outputs}
    manifest.record(f"pretrain/{name}", params=options.params(), input_hashes=input_hashes,
                    output_hashes=output_hashes)
    # As `train` puts a run in place: an older model of this name is replaced only by a finished one.
    replace_folder(work_dir, final_dir, paths.pretrained / f".{name}.old")
    (final_dir / STATE_FILE).unlink()  # finished: nothing to resume, and it is the largest file
    return Result(name, final_dir, history, len(train_stream), len(val_stream), corpus.texts, n_params,
                  time.perf_counter() - started, options.directions)


def _saved_settings(work_dir: Path, name: str) -> dict:
    from rnnkit.artifacts import read_json

    if not (work_dir / STATE_FILE).exists() or not (work_dir / SETTINGS_FILE).exists():
        raise RnnkitError(f"no interrupted pretraining {name!r} to resume ({work_dir} has no {STATE_FILE}) — "
                          f"run `rnnkit pretrain --name {name}` without --resume")
    return read_json(work_dir / SETTINGS_FILE, what=SETTINGS_FILE, fix=f"pretrain {name!r} anew with --force")


@dataclass
class Corpus:
    train: list[str]  # texts to train on, shuffled
    val: list[str]  # held-out texts for perplexity
    texts: int  # all texts read


def read_corpus(files: list[Path], *, val_share: float, seed: int) -> Corpus:
    """The texts of `files` (train first, unlabeled after), shuffled with `seed`; `val_share` of the
    last file's texts (the unlabeled ones when there are any) held out, at least one."""
    import random

    import pandas as pd

    per_file = [pd.read_parquet(p, columns=["text"])["text"].tolist() for p in files]
    held_from = per_file[-1]
    rng = random.Random(seed)
    order = list(range(len(held_from)))
    rng.shuffle(order)
    n_val = min(len(held_from) - 1, max(1, round(val_share * len(held_from))))
    if n_val < 1:
        raise RnnkitError(f"{files[-1]} has {len(held_from)} text(s): too few to hold any out for perplexity — "
                          f"prepare more text")
    val = [held_from[i] for i in sorted(order[:n_val])]
    kept = set(order[:n_val])
    train = [t for f in per_file[:-1] for t in f] + [t for i, t in enumerate(held_from) if i not in kept]
    rng.shuffle(train)
    return Corpus(train, val, sum(map(len, per_file)))


def token_streams(tokenizer, corpus: Corpus):
    """The train and held-out texts as token streams (training/lm.text_stream), with a progress bar."""
    from rnnkit.console import training_progress
    from rnnkit.text.base import PAD_ID
    from rnnkit.training.lm import text_stream

    with training_progress() as bar:
        task = bar.add_task("tokenizing", total=len(corpus.train) + len(corpus.val), stats="")
        advance = lambda n: bar.advance(task, n)  # noqa: E731
        return (text_stream(tokenizer, corpus.train, PAD_ID, advance),
                text_stream(tokenizer, corpus.val, PAD_ID, advance))


# --------------------------------------------------------------------------- for `train --init-from`


def resolve_pretrained(paths: ArtifactPaths, spec: str) -> Path:
    """--init-from NAME, pretrained/NAME or a folder path -> the folder holding encoder.pt."""
    candidates = [paths.pretrained / spec, paths.root / spec, Path(spec)]
    for folder in candidates:
        if (folder / ENCODER_FILE).is_file():
            return folder
    raise RnnkitError(f"--init-from {spec}: no pretrained model there (no {paths.pretrained}/{spec}/{ENCODER_FILE}) "
                      f"— run `rnnkit pretrain --name {Path(spec).name}` first")


def load_encoder(paths: ArtifactPaths, spec: str, tokenizer_sha256: str) -> tuple[dict, Path]:
    """encoder.pt of --init-from, safely loaded, refused when built for another tokenizer."""
    from rnnkit.artifacts import PRETRAINED_FORMAT, check_format, torch_load

    folder = resolve_pretrained(paths, spec)
    path = folder / ENCODER_FILE
    data = torch_load(path, what=ENCODER_FILE, fix=f"pretrain {folder.name!r} again")
    if not isinstance(data, dict) or "encoder" not in data:
        raise RnnkitError(f"{path} does not hold a pretrained encoder — pretrain {folder.name!r} again")
    check_format(data.get("format_version"), PRETRAINED_FORMAT, path, f"pretrain {folder.name!r} again")
    if data.get("tokenizer_sha256") != tokenizer_sha256:
        raise RnnkitError(f"--init-from {spec} was pretrained for another tokenizer.json than the one in "
                          f"{paths.root}/ (re-tokenized since, or another artifacts folder) — pretrain it again "
                          f"with `rnnkit pretrain --name {folder.name} --force`")
    return data, path
