"""Token attributions by layer integrated gradients (Sundararajan et al. 2017; captum's
`LayerIntegratedGradients`).

What is explained. One output of the model, called f, for one target label:

    binary       log-odds of the label: the model's logit for the positive label, minus it
                 for the negative one (so "for the label" is positive either way)
    multi-class  log P(label): the log-softmax of the class's logit (a token that raises
                 every logit alike changes no probability, and gets no credit)
    multi-label  log-odds of the label: its own logit

Ids are discrete, so the path runs through the token embeddings: the embedding layer's
output (`model.embedding`, one vector per token) moves in a straight line from the
baseline's — the text with every id replaced by <PAD> (id 0), same length, same lengths
tensor — to the text's, and the gradient of f along that path, integrated (Gauss-Legendre,
`steps` points) and multiplied by the difference of the vectors, gives each token's
attribution (summed over the embedding's features). Completeness: the attributions add up
to f(text) - f(baseline), up to the integration error, reported as

    delta = sum(attributions) - (f(text) - f(baseline))

More steps make delta smaller. Every model of the zoo reads its ids through
`model.embedding`; padding, lengths and the models' own masks (RaggedRNN, cnn, attention)
are untouched, because only the vectors are interpolated.

The ngram model. Its `embedding` is an EmbeddingBag: it returns one summed vector per
text, not one per token, and its hashed pairs (and triples) have a table of their own. It is
explained through `NgramTokens`, the same computation with the bags opened: the token rows
and the n-gram rows per position, weighted by the model's learnt n-gram weights and summed. Each
n-gram's row is interpolated from zero (the tables' padding row; baseline: no n-gram at
all, so f(baseline) is the head alone) with the weights held at the text's — they come from
the ids, not from the vectors. The model is then linear along the path and the attributions
are exact: each n-gram's weight times its row through the head. An n-gram's attribution is
split evenly between its n tokens, so the tokens still add up to f(text) - f(baseline).

GPUs: cuDNN computes an RNN's backward pass only in training mode; the models are
explained in eval mode (no dropout), so cuDNN is switched off for the gradient passes on
CUDA (the native kernels take over). On the CPU nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnkit.errors import RnnkitError

DEFAULT_STEPS = 50
# Interpolation points x tokens in one forward/backward pass: 50 steps of texts up to 320
# tokens run in one pass; longer texts in several, so that memory stays bounded.
STEP_TOKENS = 16384


@dataclass
class TargetAttribution:
    """One label's explanation: per-token attributions and the numbers they add up to."""

    label: str
    index: int  # the label's index in the run's label names
    why: str  # "predicted", "--target", or "most probable (no label passed its threshold)"
    function: str  # what f is, in words: "log-odds of pos", "log P(oil)"
    probability: float  # the label's probability for the text
    attributions: list[float]  # one per token
    f_text: float
    f_baseline: float
    delta: float  # sum(attributions) - (f_text - f_baseline)


@dataclass
class Explanation:
    """A text, the tokens the model read, and the attributions for each explained label."""

    text: str
    ids: list[int]
    tokens: list[str]
    words: list[str]  # the tokens joined into words (BPE pieces; words.py)
    word_of: list[int]  # token i is part of words[word_of[i]]
    prediction: dict[str, Any]  # Predictor.predict's result for the text
    targets: list[TargetAttribution]
    attention: list[float] | None = None  # attn-lstm: the last token's attention over the tokens
    notes: list[str] = field(default_factory=list)

    def word_values(self, values: list[float]) -> list[float]:
        """Per-token values summed per word."""
        out = [0.0] * len(self.words)
        for w, v in zip(self.word_of, values):
            out[w] += v
        return out


def function_of(task: str, label: str) -> str:
    """f in words (module docstring)."""
    from rnnkit.training.metrics import MULTICLASS

    return f"log P({label})" if task == MULTICLASS else f"log-odds of {label}"


class Explainer:
    """A Predictor's model turned into per-token attributions (module docstring)."""

    def __init__(self, predictor, *, steps: int = DEFAULT_STEPS):
        from torch import nn

        from rnnkit.interpret.ngram import NgramTokens

        if steps < 1:
            raise RnnkitError(f"--steps {steps} must be at least 1")
        self.predictor = predictor
        self.steps = steps
        model = predictor.model
        embedding = getattr(model, "embedding", None)
        self.notes: list[str] = []
        self.groups: list[int] | None = None  # an ensemble: how many of `layers` each member has
        if hasattr(model, "members") and hasattr(model, "combine"):  # an ensemble (training/ensemble.py)
            self.forward, self.layers, self.groups = _ensemble_parts(model, self.notes)
        elif isinstance(embedding, nn.EmbeddingBag) and hasattr(model, "bigrams"):
            self.forward = NgramTokens(model)
            self.layers: Any = list(self.forward.layers)
            self.notes.append("ngram: baseline = no n-gram (f = the head alone); n-gram weights held at the "
                              "text's; each n-gram's share split evenly between its tokens")
        elif isinstance(embedding, nn.Embedding):
            self.forward = model
            self.layers = embedding
        else:
            raise RnnkitError(f"model {predictor.model_name or type(model).__name__!r} reads no token embedding "
                              f"layer (model.embedding) — explain attributes through one; explain a run of "
                              f"another model")

    def target_indices(self, prediction: dict[str, Any], target: str | None) -> list[tuple[int, str]]:
        """(label index, why) of the labels to explain: --target, else the predicted label(s)."""
        from rnnkit.training.metrics import MULTILABEL

        names = self.predictor.label_names
        if target is not None:
            return [(names.index(target), "--target")]
        if self.predictor.task == MULTILABEL:
            on = [names.index(x["label"]) for x in prediction["labels"]]
            if on:
                return [(i, "predicted") for i in on]
            probs = prediction["probabilities"]
            return [(names.index(max(probs, key=probs.get)), "most probable (no label passed its threshold)")]
        return [(names.index(prediction["label"]), "predicted")]

    def scores(self, ids, lengths):
        """(batch, labels): f for every label (module docstring)."""
        import torch

        from rnnkit.training.metrics import BINARY, MULTICLASS

        z = self.forward(ids, lengths).float()
        if self.predictor.task == BINARY:
            return torch.cat([-z, z], dim=1)
        if self.predictor.task == MULTICLASS:
            return z.log_softmax(dim=-1)
        return z

    def explain(self, text: str, prediction: dict[str, Any], target: str | None = None) -> Explanation:
        """Attributions of `text`'s tokens for `target` (a label name; None: the predicted
        label, or each predicted label of a multi-label run)."""
        import warnings

        import torch
        from captum.attr import LayerIntegratedGradients

        from rnnkit.interpret.ngram import NgramTokens
        from rnnkit.interpret.words import token_view
        from rnnkit.text.base import PAD_ID, UNK_ID

        predictor = self.predictor
        device = predictor.device
        ids_list = predictor.tokenizer.ids(text) or [UNK_ID]  # as Predictor: an empty text reads as <UNK>
        ids = torch.tensor([ids_list], dtype=torch.int64, device=device)
        lengths = torch.tensor([len(ids_list)], dtype=torch.int64)
        baseline = torch.full_like(ids, PAD_ID)
        with torch.no_grad():
            f_text = self.scores(ids, lengths)[0].tolist()
            f_base = self.scores(baseline, lengths)[0].tolist()
            if isinstance(self.forward, (NgramTokens, EnsembleTokens)):
                self.forward.check(ids, lengths)
            attention = None
            if hasattr(predictor.model, "attention_weights"):
                attention = predictor.model.attention_weights(ids, lengths)[0].float().cpu().tolist()
        with warnings.catch_warnings():
            # captum warns whenever it gets several layers: ngram's two tables are read side by
            # side, neither from the other's output, which is what the warning asks to make sure of.
            warnings.filterwarnings("ignore", "Multiple layers provided", UserWarning)
            lig = LayerIntegratedGradients(self.scores, self.layers)
        batch = max(1, min(self.steps, STEP_TOKENS // len(ids_list)))
        targets = []
        for index, why in self.target_indices(prediction, target):
            with torch.enable_grad(), _cudnn_off(device):
                found = lig.attribute(ids, baselines=baseline, additional_forward_args=(lengths,), target=index,
                                      n_steps=self.steps, internal_batch_size=batch)
            per_token = self._per_token(found)
            label = predictor.label_names[index]
            targets.append(TargetAttribution(
                label=label, index=index, why=why, function=function_of(predictor.task, label),
                probability=float(prediction["probabilities"][label]), attributions=per_token,
                f_text=f_text[index], f_baseline=f_base[index],
                delta=sum(per_token) - (f_text[index] - f_base[index])))
        view = token_view(predictor.tokenizer, ids_list, text)
        notes = list(self.notes)
        unknown = [view.tokens[k] for k, i in enumerate(ids_list) if i == UNK_ID]
        if unknown:
            notes.append(f"read as <UNK> (not in the vocabulary): {', '.join(dict.fromkeys(unknown))}")
        return Explanation(text, ids_list, view.tokens, view.words, view.word_of, prediction, targets, attention,
                           notes)

    def _per_token(self, found) -> list[float]:
        """captum's attributions (1, tokens, features) summed over the features; ngram's token
        and n-gram rows folded onto the tokens (an n-gram's n-th to each of its tokens)."""
        if not isinstance(found, list):  # one embedding layer
            found = [found]
        if self.groups is None:
            return _fold_onto_tokens(found).tolist()
        # An ensemble: each member's layers folded as its own, then summed over the members.
        total, start = None, 0
        for size in self.groups:
            part = found[start : start + size]
            start += size
            tokens = _fold_onto_tokens(part)
            total = tokens if total is None else total + tokens
        return total.tolist()


def _fold_onto_tokens(found):
    """Per-token attributions from a model's token layers: the token rows' own, plus each
    n-gram's split evenly between its n tokens (found[k] holds the runs of k + 1 tokens; a
    model with one embedding layer has found[0] alone)."""
    tokens = found[0][0].sum(-1).double().cpu().clone()
    for n, layer in enumerate(found[1:], start=2):
        runs = layer[0].sum(-1).double().cpu()
        for k in range(n):
            tokens[k:k + runs.size(0)] += runs / n
    return tokens


class EnsembleTokens:
    """An ensemble's forward with each member read through its token layers: NgramTokens for an
    ngram member, its own forward otherwise; combined as EnsembleModel.combine does (the
    logits of the weighted average of the members' probabilities)."""

    def __init__(self, model, forwards: list):
        self.model = model
        self.forwards = forwards

    def __call__(self, ids, lengths):
        return self.model.combine([forward(ids, lengths) for forward in self.forwards])

    def check(self, ids, lengths) -> None:
        """Every opened-up member computes its model's logits (NgramTokens.check)."""
        from rnnkit.interpret.ngram import NgramTokens

        for forward in self.forwards:
            if isinstance(forward, NgramTokens):
                forward.check(ids, lengths)


def _ensemble_parts(model, notes: list[str]):
    """(forward, layers, layers per member) of an ensemble: every member's token layers at once
    (docs/explain.md, "Ensembles"), so one integrated-gradients path moves them all together."""
    from torch import nn

    from rnnkit.interpret.ngram import NgramTokens

    forwards, layers, groups = [], [], []
    for name, member in zip(model.names, model.members):
        embedding = getattr(member, "embedding", None)
        if isinstance(embedding, nn.EmbeddingBag) and hasattr(member, "bigrams"):
            tokens = NgramTokens(member)
            forwards.append(tokens)
            layers += tokens.layers
            groups.append(len(tokens.layers))
        elif isinstance(embedding, nn.Embedding):
            forwards.append(member)
            layers.append(embedding)
            groups.append(1)
        else:
            raise RnnkitError(f"ensemble member {name!r} reads no token embedding layer (model.embedding) — explain "
                              f"attributes through one; explain its other members one by one")
    weights = ", ".join(f"{n} {w:.3f}" for n, w in zip(model.names, model.weights))
    notes.append(f"ensemble ({weights}): f of the weighted average of the members' probabilities; every member's "
                 f"token vectors move along one path, and a token's attribution is its sum over the members")
    if any(size == 2 for size in groups):
        notes.append("ngram member: baseline = no n-gram; n-gram weights held at the text's; each bigram's share "
                     "split evenly between its two tokens")
    return EnsembleTokens(model, forwards), layers, groups


def _cudnn_off(device):
    """cuDNN's RNN backward runs only in training mode: off for the gradient passes on CUDA."""
    import contextlib

    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()
