"""What every rnnkit tokenizer shares: special tokens, the HF-like interface, the file format.

A tokenizer subclass supplies two things: `tokenize(text)` (text -> string pieces) and
`decode`. Everything else — ids, special tokens, truncation, padding, attention masks,
saving and loading — lives here, so the word and BPE tokenizers behave identically in
`tokenize`, `train`, `evaluate` and `predict`.

Ids: `<PAD>` is always 0 and `<UNK>` always 1 (the notebooks' convention, and what
`word2idx.pkl` promises); `<BOS>` and `<EOS>` are 2 and 3 when enabled.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from rnnkit.errors import RnnkitError

PAD, UNK, BOS, EOS = "<PAD>", "<UNK>", "<BOS>", "<EOS>"
PAD_ID, UNK_ID = 0, 1
TOKENIZER_FORMAT = 1
TRUNCATE_CHOICES = ("head", "tail", "head+tail")


def special_tokens(add_bos: bool, add_eos: bool) -> list[str]:
    """The special tokens at the start of a vocabulary, in id order."""
    specials = [PAD, UNK]
    if add_bos:
        specials.append(BOS)
    if add_eos:
        specials.append(EOS)
    return specials


def truncate_ids(ids: list[int], max_length: int, how: str) -> list[int]:
    """Keep `max_length` ids: the first ("head"), the last ("tail"), or a quarter from the
    start and the rest from the end ("head+tail": reviews put their verdict at either end).
    """
    if max_length <= 0 or len(ids) <= max_length:
        return ids
    if how == "head":
        return ids[:max_length]
    if how == "tail":
        return ids[-max_length:]
    if how == "head+tail":
        head = max_length // 4
        return ids[:head] + ids[len(ids) - (max_length - head) :]
    raise RnnkitError(f"unknown truncation {how!r} — use one of {', '.join(TRUNCATE_CHOICES)}")


class Tokenizer(ABC):
    """Base class: a vocabulary (list of tokens in id order) plus encoding settings."""

    #: The "type" written to tokenizer.json; subclasses register under it.
    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init__(
        self,
        vocab: list[str],
        *,
        lowercase: bool = True,
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
        truncate: str = "head",
    ):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <PAD>, <UNK>")
        if truncate not in TRUNCATE_CHOICES:
            raise RnnkitError(
                f"unknown truncation {truncate!r} — use one of {', '.join(TRUNCATE_CHOICES)}"
            )
        self.vocab = list(vocab)
        self.lowercase = lowercase
        self.add_bos = add_bos
        self.add_eos = add_eos
        self.max_length = max_length
        self.truncate = truncate
        self._index = {tok: i for i, tok in enumerate(self.vocab)}
        self.bos_id = self._index.get(BOS) if add_bos else None
        self.eos_id = self._index.get(EOS) if add_eos else None
        self.n_special = len(special_tokens(add_bos, add_eos))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Tokenizer._registry[cls.kind] = cls

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def token_to_id(self, token: str) -> int | None:
        return self._index.get(token)

    def id_to_token(self, idx: int) -> str | None:
        return self.vocab[idx] if 0 <= idx < len(self.vocab) else None

    def get_vocab(self) -> dict[str, int]:
        """The vocabulary as a plain dict (this is `word2idx.pkl`)."""
        return dict(self._index)

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """The string pieces of `text` after normalisation, without special tokens."""

    @abstractmethod
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Text from ids."""

    def _text_ids(self, text: str) -> list[int]:
        """Ids of `text` without special tokens or truncation.

        A subclass may override this with a faster path that skips the string pieces
        (BPE does: its cache maps words straight to ids).
        """
        index = self._index
        return [index.get(p, UNK_ID) for p in self.tokenize(text)]

    # ------------------------------------------------------------------ encoding
    def ids(self, text: str, *, max_length: int | None = None, truncation: bool = True) -> list[int]:
        """Ids for one text with special tokens, truncated with the tokenizer's strategy.

        `max_length` defaults to the tokenizer's own; it counts the special tokens.
        """
        body = self._text_ids(text)
        limit = self.max_length if max_length is None else max_length
        if truncation and limit:
            room = limit - (self.bos_id is not None) - (self.eos_id is not None)
            body = truncate_ids(body, max(room, 0), self.truncate)
        if self.bos_id is not None:
            body = [self.bos_id] + body
        if self.eos_id is not None:
            body = body + [self.eos_id]
        return body

    def encode_batch_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids of many texts with the tokenizer's own truncation (what the pipeline stores)."""
        return [self.ids(t) for t in texts]

    def encode(
        self,
        text: str | list[str],
        max_length: int | None = None,
        padding: bool | str = False,
        truncation: bool = False,
    ) -> dict[str, Any]:
        """Hugging Face-style encoding.

        Returns {"input_ids", "attention_mask"}: lists for one text, lists of lists for a
        batch. `padding` is False, True/"longest" (to the batch's longest) or "max_length".
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        limit = max_length if max_length is not None else self.max_length
        rows = [self.ids(t, max_length=limit, truncation=truncation) for t in texts]
        if padding is True or padding == "longest":
            width = max((len(r) for r in rows), default=0)
        elif padding == "max_length":
            if not limit:
                raise RnnkitError("padding='max_length' needs max_length — pass max_length=N")
            width = limit
        elif padding is False:
            width = None
        else:
            raise RnnkitError(f"unknown padding {padding!r} — use False, 'longest' or 'max_length'")
        masks = [[1] * len(r) for r in rows]
        if width is not None:
            rows = [r + [PAD_ID] * (width - len(r)) for r in rows]
            masks = [m + [0] * (width - len(m)) for m in masks]
        if single:
            return {"input_ids": rows[0], "attention_mask": masks[0]}
        return {"input_ids": rows, "attention_mask": masks}

    __call__ = encode

    # ------------------------------------------------------------------ persistence
    def settings(self) -> dict[str, Any]:
        return {
            "lowercase": self.lowercase,
            "add_bos": self.add_bos,
            "add_eos": self.add_eos,
            "max_length": self.max_length,
            "truncate": self.truncate,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to encode new text exactly as at training time."""
        return {
            "format_version": TOKENIZER_FORMAT,
            "type": self.kind,
            "settings": self.settings(),
            "vocab": self.vocab,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        return cls(data["vocab"], **data["settings"])

    def save(self, path: str | Path) -> None:
        from rnnkit.artifacts import write_text

        write_text(Path(path), self.to_json())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @staticmethod
    def load(path: str | Path) -> Tokenizer:
        """Load any rnnkit tokenizer from its JSON file (dispatches on "type")."""
        from rnnkit.artifacts import read_json

        data = read_json(Path(path), what="tokenizer.json", fix="re-run `rnnkit tokenize`")
        return Tokenizer._from_data(data, str(path))

    @staticmethod
    def from_json_text(text: str, origin: str = "checkpoint") -> Tokenizer:
        """A tokenizer from the text of its JSON file (as a checkpoint carries it); `origin` names it in errors."""
        return Tokenizer._from_data(json.loads(text), origin)

    @staticmethod
    def _from_data(data: Any, origin: str) -> Tokenizer:
        fix = "re-run `rnnkit tokenize`"
        if not isinstance(data, dict) or data.get("format_version") != TOKENIZER_FORMAT:
            found = data.get("format_version") if isinstance(data, dict) else None
            raise RnnkitError(
                f"{origin} has tokenizer format {found!r}, expected {TOKENIZER_FORMAT} — {fix}"
            )
        _load_builtin_tokenizers()
        kind = data.get("type")
        if kind not in Tokenizer._registry:
            known = ", ".join(sorted(Tokenizer._registry))
            raise RnnkitError(f"{origin} has unknown tokenizer type {kind!r} (known: {known}) — {fix}")
        try:
            return Tokenizer._registry[kind].from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise RnnkitError(f"{origin} is not a valid {kind} tokenizer ({exc}) — {fix}") from None


def _load_builtin_tokenizers() -> None:
    """Import the built-in tokenizer modules so that they register themselves."""
    import importlib

    for module in ("rnnkit.text.word", "rnnkit.text.bpe"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
