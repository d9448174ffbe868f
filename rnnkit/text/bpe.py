"""Byte-pair encoding (BPE) learnt from a corpus, written from scratch (stdlib only).

How a text becomes tokens
-------------------------
1. **Normalisation** — `rnnkit.text.clean.normalize(text, lowercase=...)`: `<br />` tags to
   spaces, optional lower-casing, whitespace runs to one space, trimmed. Call the result
   `norm`.
2. **Pre-tokenisation** — `PIECE_PATTERN` (`" ?(?:\\w+|[^\\w\\s]+)"`, Python `re`, Unicode) is
   matched against `" " + norm`. Every piece is a run of word characters (`\\w`: letters,
   digits, underscore) or a run of other non-space characters (punctuation, symbols),
   carrying the single space in front of it if there was one. The space we prepend gives
   the first word a space too, so "movie" is the same token at the start of a review as in
   its middle. Because `norm` holds no whitespace but single spaces between non-spaces,
   the pieces concatenate back to `" " + norm` exactly: nothing is dropped.
3. **Symbols** — a piece's leading space becomes the word marker `▁` (U+2581, the
   SentencePiece "start of word" symbol); every other character is looked up in the
   alphabet (the characters seen in training). A character outside the alphabet — unseen
   in training, dropped because `vocab_size` left no room, or a literal `▁` (kept out of
   the alphabet so that `▁` always means "a space was here") — is written as the tokens of
   its UTF-8 bytes, `<0x00>` … `<0xFF>` (*byte fallback*, as in SentencePiece). `<UNK>` is
   therefore never produced. Byte tokens are never merged: they split a piece into
   segments, and merges apply inside each segment.
4. **Merges** — in each segment, the adjacent pair with the lowest merge rank is replaced
   by its merged token, all of its occurrences left to right, until no adjacent pair has a
   rank. The result for each piece is cached (up to `CACHE_SIZE` distinct pieces), so
   frequent words cost one dictionary lookup.

Round trip
----------
For every string `text` (any Unicode, including characters never seen in training):

    decode(encode(text)["input_ids"]) == normalize(text, lowercase=tokenizer.lowercase)

as long as nothing was truncated. `decode` concatenates the token strings, turns each `▁`
of a word token into a space, decodes runs of byte tokens as UTF-8, and drops the single
space that the first token carries (the one pre-tokenisation prepended). Spaces around
punctuation survive as they were ("a , b" and "a, b" decode differently). Only a byte
sequence cut in the middle of a character (by truncation) decodes to U+FFFD. Lone
surrogates (not valid Unicode, but Python strings may hold them) round-trip too: they are
always byte tokens, encoded with the `surrogatepass` rule.

Training
--------
Vocabulary layout, in id order: the special tokens (`<PAD>`=0, `<UNK>`=1, then `<BOS>`,
`<EOS>` when enabled), the 256 byte tokens, the alphabet and the word marker `▁` sorted by
code point, then one token per new merged string in the order learnt. When `vocab_size`
leaves no room for the whole alphabet, the most frequent characters are kept (ties:
smaller code point first) and the rest fall back to bytes, so the vocabulary never exceeds
`vocab_size`.

Distinct pieces are counted once (piece -> frequency) and split into symbol-id sequences
("words"). We keep the frequency-weighted count of every adjacent pair, an index
pair -> words that contain it, and a max-heap of (count, pair) entries. Each step takes the
best pair, gives the merged string a new id (or the existing id when another merge already
produced the same string, e.g. "ab"+"c" and "a"+"bc"), rewrites only the words in the
pair's index, and applies the neighbouring pair-count changes ((x, a) -> (x, ab) and
(b, y) -> (ab, y)) as deltas. Heap entries are invalidated lazily: a popped entry whose
count is out of date is pushed back with its current count; counts that rise push a new
entry. Training stops when the vocabulary has `vocab_size` tokens or when the best pair
occurs fewer than `min_frequency` times (2 by default: "no pair occurs twice").

Tie-break, so that training is deterministic: highest count first; among equal counts the
pair whose left token has the smallest id, then whose right token has the smallest id. Ids
follow the layout above: characters (and the marker) by code point, then merged tokens
from oldest to newest. This is the rule of Hugging Face `tokenizers`' BPE trainer, so both
learn the same merges from the same pieces. A pair that was merged before and reappears
(possible only through a duplicate merged string) is merged again without a second rule.

File format (`save`/`Tokenizer.load`): the base JSON (`format_version`, `type`: "bpe",
`settings`, `vocab`) plus `bpe_format`, `marker`, `pre_tokenizer` and `merges` (the
ordered list of `[left, right]` token-string pairs). Loading checks all of it, so a loaded
tokenizer encodes exactly like the one that was saved.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.text.base import Tokenizer, special_tokens
from rnnkit.text.clean import normalize

__all__ = ["BYTE_TOKENS", "MARKER", "PIECE_PATTERN", "BPETokenizer", "pre_tokenize"]

#: Bumped whenever the BPE-specific part of tokenizer.json changes meaning.
BPE_FORMAT = 1
#: Stands for "a space came before this piece" (SentencePiece's metaspace symbol).
MARKER = "\u2581"
#: Matched against " " + normalized text; see the module docstring.
PIECE_PATTERN = r" ?(?:\w+|[^\w\s]+)"
_PIECE = re.compile(PIECE_PATTERN)
#: Byte tokens, in byte order: byte v is the token "<0xVV>" (upper-case hex).
BYTE_TOKENS = [f"<0x{v:02X}>" for v in range(256)]
#: Distinct pieces whose encoding is remembered; beyond this, pieces are encoded each time.
CACHE_SIZE = 1_000_000


def pre_tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """Normalise `text` and split it into pieces; each piece keeps its leading space.

    `"".join(pre_tokenize(t))` is always `" " + normalize(t)` (or "" for an empty result).
    """
    norm = normalize(text, lowercase=lowercase)
    return _PIECE.findall(" " + norm) if norm else []


def _is_storable(ch: str) -> bool:
    """Whether a character can be a vocabulary entry (UTF-8 encodable: not a surrogate)."""
    return not "\ud800" <= ch <= "\udfff"


def _segments(piece: str, char_ids: dict[str, int]):
    """The piece as mergeable segments (lists of alphabet ids) and, between them, the characters
    outside the alphabet (str), in order: byte fallback ends a segment, since merges never cross it."""
    segment: list[int] = []
    for ch in piece:
        cid = char_ids.get(ch)
        if cid is not None:
            segment.append(cid)
            continue
        if segment:
            yield segment
            segment = []
        yield ch
    if segment:
        yield segment


def _utf8(ch: str) -> bytes:
    # surrogatepass: lone surrogates (invalid Unicode that Python strings can still hold)
    # become their 3-byte form instead of raising, so encoding never fails.
    return ch.encode("utf-8", "surrogatepass")


def _utf8_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        # A character cut in half (truncation, a slice of ids): U+FFFD, like other tools.
        return data.decode("utf-8", "replace")


class BPETokenizer(Tokenizer):
    """Byte-pair encoding with a start-of-word marker and byte fallback (see module docs).

    Build one with `BPETokenizer.train(texts, vocab_size)`, or load one with
    `Tokenizer.load(path)`. The constructor takes a finished vocabulary and its merges.
    """

    kind = "bpe"

    def __init__(
        self,
        vocab: list[str],
        merges: Sequence[Sequence[str]],
        *,
        lowercase: bool = True,
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
        truncate: str = "head",
        min_frequency: int = 2,
    ):
        super().__init__(
            vocab,
            lowercase=lowercase,
            add_bos=add_bos,
            add_eos=add_eos,
            max_length=max_length,
            truncate=truncate,
        )
        self.min_frequency = min_frequency
        n = self.n_special
        if self.vocab[:n] != special_tokens(add_bos, add_eos):
            raise ValueError(f"the vocabulary must start with {special_tokens(add_bos, add_eos)}")
        if self.vocab[n : n + 256] != BYTE_TOKENS:
            raise ValueError("the special tokens must be followed by the 256 byte tokens")
        if len(self._index) != len(self.vocab):
            raise ValueError("the vocabulary holds a token twice")
        self.byte_offset = n
        first = n + 256  # the alphabet (with the marker), then the learnt tokens
        self.marker_id = self._index.get(MARKER, -1)
        if self.marker_id < first:
            raise ValueError(f"the vocabulary has no word marker {MARKER!r} after the byte tokens")
        # The alphabet: the single characters after the byte tokens. The piece's leading
        # space maps to the marker; a literal "▁" is deliberately absent from this table, so
        # it always takes byte fallback and "▁" in a token always means "a space was here".
        self._char_ids = {
            tok: i for i, tok in enumerate(self.vocab) if i >= first and len(tok) == 1
        }
        self._char_ids[" "] = self._char_ids.pop(MARKER)
        # (left id, right id) -> (rank, merged id); a repeated pair keeps its first rank.
        self.merges: list[tuple[str, str]] = []
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, merge in enumerate(merges):
            if len(merge) != 2:
                raise ValueError(f"merge {rank} is {merge!r}, not a pair of tokens")
            left, right = merge
            ids = self._index.get(left), self._index.get(right), self._index.get(left + right)
            # Only the alphabet (marker included) and learnt tokens merge, never specials or bytes.
            if None in ids or min(ids) < first:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) uses tokens not learnt")
            self.merges.append((left, right))
            self._ranks.setdefault((ids[0], ids[1]), (rank, ids[2]))
        # What decode writes for each id: None for byte tokens, text for the rest.
        self._decoded: list[str | None] = [
            None if n <= i < n + 256 else (" " + tok[1:] if tok[:1] == MARKER else tok)
            for i, tok in enumerate(self.vocab)
        ]
        self._cache: dict[str, tuple[int, ...]] = {}

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"lowercase={self.lowercase})"
        )

    # ------------------------------------------------------------------ encoding
    def tokenize(self, text: str) -> list[str]:
        """The token strings of `text` (normalised; no special tokens)."""
        vocab = self.vocab
        return [vocab[i] for i in self._text_ids(text)]

    def _text_ids(self, text: str) -> list[int]:
        """The ids of `text` without special tokens or truncation, straight from the word
        cache (skipping the ids -> strings -> ids detour through `tokenize`)."""
        pieces = pre_tokenize(text, lowercase=self.lowercase)
        try:
            # The common case, every piece already cached: one pass at C speed.
            return list(itertools.chain.from_iterable(map(self._cache.__getitem__, pieces)))
        except KeyError:
            pass
        cache = self._cache
        out: list[int] = []
        for piece in pieces:
            ids = cache.get(piece)
            if ids is None:
                ids = self._encode_piece(piece)
                if len(cache) < CACHE_SIZE:
                    cache[piece] = ids
            out += ids
        return out

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        """Ids of one pre-tokenised piece: byte fallback, then merges per segment."""
        out: list[int] = []
        for part in _segments(piece, self._char_ids):
            if isinstance(part, str):  # not in the alphabet: its UTF-8 bytes
                out += [self.byte_offset + b for b in _utf8(part)]
            else:
                out += self._apply_merges(part)
        return tuple(out)

    def _apply_merges(self, symbols: list[int]) -> list[int]:
        """Merge the lowest-ranked adjacent pair (every occurrence) until none is left."""
        ranks = self._ranks
        while len(symbols) > 1:
            best = None
            for pair in itertools.pairwise(symbols):
                found = ranks.get(pair)
                if found is not None and (best is None or found[0] < best[0]):
                    best, best_pair = found, pair
            if best is None:
                break
            a, b = best_pair
            merged = best[1]
            out: list[int] = []
            i, n = 0, len(symbols)
            while i < n:
                if symbols[i] == a and i + 1 < n and symbols[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        return symbols

    # ------------------------------------------------------------------ decoding
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text from ids; `decode(encode(t)["input_ids"]) == normalize(t)` (module docs).

        Padding and other special tokens are skipped unless `skip_special_tokens=False`,
        in which case they appear as their strings ("<BOS>"), with no space added.
        """
        if hasattr(ids, "tolist"):  # a tensor or an array
            ids = ids.tolist()
        decoded, n_special, lo = self._decoded, self.n_special, self.byte_offset
        hi = lo + 256
        parts: list[str] = []
        pending = bytearray()  # byte tokens are decoded together: a character spans several
        first = True  # the first word token carries the space that pre-tokenisation added
        for i in ids:
            if lo <= i < hi:
                pending.append(i - lo)
                first = False
                continue
            if pending:
                parts.append(_utf8_decode(bytes(pending)))
                pending.clear()
            if 0 <= i < n_special:
                if not skip_special_tokens:
                    parts.append(self.vocab[i])
                continue
            if not 0 <= i < len(decoded):
                raise RnnkitError(
                    f"token id {i} is outside this tokenizer's vocabulary (0..{len(decoded) - 1})"
                    " — decode ids made by the same tokenizer"
                )
            text = decoded[i]
            if first:
                first = False
                if text[:1] == " ":
                    text = text[1:]
            parts.append(text)
        if pending:
            parts.append(_utf8_decode(bytes(pending)))
        return "".join(parts)

    # ------------------------------------------------------------------ persistence
    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "min_frequency": self.min_frequency}

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "bpe_format": BPE_FORMAT,
            "marker": MARKER,
            "pre_tokenizer": PIECE_PATTERN,
            "merges": [list(m) for m in self.merges],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        found = (data.get("bpe_format"), data.get("marker"), data.get("pre_tokenizer"))
        if found != (BPE_FORMAT, MARKER, PIECE_PATTERN):
            raise ValueError(
                f"BPE format/marker/pre-tokenizer {found!r} differ from this version's "
                f"{(BPE_FORMAT, MARKER, PIECE_PATTERN)!r}"
            )
        return cls(data["vocab"], data["merges"], **data["settings"])

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 30000,
        *,
        lowercase: bool = True,
        add_bos: bool = False,
        add_eos: bool = False,
        min_frequency: int = 2,
        progress: Callable[[int, int], Any] | None = None,
        **encoding: Any,
    ) -> BPETokenizer:
        """Learn a vocabulary of at most `vocab_size` tokens from `texts`.

        Merging stops when the vocabulary is full or when the most frequent pair occurs
        fewer than `min_frequency` times in the corpus. The other settings (and `encoding`:
        max_length, truncate) are stored in the tokenizer and apply when it encodes (see
        `Tokenizer`).

        `progress(done, total)` is called during the merge phase with the number of tokens
        learnt so far: at the start, about 200 times, and once at the end with done ==
        total (total shrinks to what was learnt when no pair occurs `min_frequency` times
        any more).
        """
        if isinstance(texts, str):
            raise RnnkitError("train() takes an iterable of texts, not one string — pass [text]")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise RnnkitError(f"vocab_size {vocab_size!r} is not an integer — pass e.g. 30000")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int):
            raise RnnkitError(f"min_frequency {min_frequency!r} is not an integer — pass e.g. 2")
        min_frequency = max(min_frequency, 1)  # a pair that never occurs is never merged
        base = special_tokens(add_bos, add_eos) + BYTE_TOKENS
        if vocab_size < len(base) + 1:
            raise RnnkitError(
                f"vocab_size {vocab_size} is too small for BPE — use at least {len(base) + 1} "
                "(the special tokens, 256 byte tokens and the word marker)"
            )

        # 1. Distinct pieces and their frequencies: the only pass over the corpus.
        piece_counts: Counter[str] = Counter()
        for text in texts:
            piece_counts.update(pre_tokenize(text, lowercase=lowercase))

        # 2. The alphabet: every storable character, or the most frequent ones that fit.
        char_counts: Counter[str] = Counter()
        for piece, freq in piece_counts.items():
            for ch in piece:
                char_counts[ch] += freq
        chars = [ch for ch in char_counts if ch not in (" ", MARKER) and _is_storable(ch)]
        room = vocab_size - len(base) - 1  # the marker always has a place
        if len(chars) > room:
            chars.sort(key=lambda ch: (-char_counts[ch], ch))
            chars = chars[:room]
        # Code-point order, marker included: the ids that break ties between equal counts.
        vocab = base + sorted([*chars, MARKER])
        char_ids = {ch: i for i, ch in enumerate(vocab) if i >= len(base)}
        char_ids[" "] = char_ids.pop(MARKER)

        # 3. Pieces -> mergeable segments (byte-fallback characters split them; segments of
        #    one symbol have no pair and are dropped). Equal segments are counted together.
        segment_counts: dict[tuple[int, ...], int] = defaultdict(int)
        for piece, freq in piece_counts.items():
            try:
                segment_counts[tuple([char_ids[ch] for ch in piece])] += freq
                continue
            except KeyError:
                pass
            for part in _segments(piece, char_ids):
                if not isinstance(part, str):
                    segment_counts[tuple(part)] += freq
        del piece_counts
        words = [list(seg) for seg in segment_counts if len(seg) > 1]
        freqs = [freq for seg, freq in segment_counts.items() if len(seg) > 1]
        del segment_counts

        merges = _learn_merges(vocab, words, freqs, vocab_size, min_frequency, progress)
        return cls(
            vocab,
            merges,
            lowercase=lowercase,
            add_bos=add_bos,
            add_eos=add_eos,
            **encoding,
            min_frequency=min_frequency,
        )


def _learn_merges(
    vocab: list[str],
    words: list[list[int]],
    freqs: list[int],
    vocab_size: int,
    min_frequency: int,
    progress: Callable[[int, int], Any] | None,
) -> list[tuple[str, str]]:
    """Learn merges on `words` (symbol-id lists with frequencies), extending `vocab` in place.

    Returns the merges in order, as token-string pairs.
    """
    # Merged strings seen so far, so that a string produced twice keeps one id. Only
    # alphabet and merged tokens go here: a merged string can never equal a special or
    # byte token, since "<" and the letters after it never share a piece.
    learnt = {tok: i for i, tok in enumerate(vocab) if len(tok) == 1}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for wi, word in enumerate(words):
        freq = freqs[wi]
        for pair in itertools.pairwise(word):
            counts[pair] += freq
            where[pair].add(wi)

    # Max-heap through negated counts; equal counts fall back to the smaller ids, which is
    # the documented tie-break. Pairs below min_frequency cannot be chosen until their
    # count rises, and a rise always pushes a fresh entry, so they are left out.
    heap = [(-c, a, b) for (a, b), c in counts.items() if c >= min_frequency]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop

    merges: list[tuple[str, str]] = []
    merged_pairs: set[tuple[int, int]] = set()
    # Progress counts vocabulary growth (a merge that re-finds an existing string adds none).
    start = len(vocab)
    total = max(vocab_size - start, 0)
    step = max(total // 200, 1)
    reported = 0
    if progress is not None:
        progress(0, total)
    while len(vocab) < vocab_size and heap:
        neg, a, b = pop(heap)
        pair = (a, b)
        count = counts.get(pair, 0)
        if count != -neg:
            # Out of date. A lower count is pushed back; a higher one already has its own
            # entry (every rise pushes one), so this copy is simply dropped.
            if min_frequency <= count < -neg:
                push(heap, (-count, a, b))
            continue
        left, right = vocab[a], vocab[b]
        merged_str = left + right
        new = learnt.get(merged_str)
        if new is None:
            new = learnt[merged_str] = len(vocab)
            vocab.append(merged_str)
        if pair not in merged_pairs:
            merged_pairs.add(pair)
            merges.append((left, right))

        # Rewrite the words that contain the pair, collecting pair-count changes. For each
        # occurrence, x a b y becomes x N y: (x, a) and (b, y) lose, (x, N) and (N, y) gain.
        # x is taken from the rewritten word, so "a b a b" correctly yields (N, N).
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for wi in where.pop(pair):
            word = words[wi]
            n = len(word)
            if n < 2:
                continue
            freq = freqs[wi]
            out: list[int] = []
            i = 0
            last = n - 1
            while i < n:
                sym = word[i]
                if sym == a and i < last and word[i + 1] == b:
                    if out:
                        x = out[-1]
                        delta[(x, a)] -= freq
                        gained = (x, new)
                        delta[gained] += freq
                        where[gained].add(wi)
                    if i + 2 < n:
                        y = word[i + 2]
                        delta[(b, y)] -= freq
                        gained = (new, y)
                        delta[gained] += freq
                        where[gained].add(wi)
                    out.append(new)
                    i += 2
                else:
                    out.append(sym)
                    i += 1
            # Words left stale in other pairs' index (a pair that lost its last occurrence
            # here) are harmless: rewriting them later finds nothing to merge.
            words[wi] = out
        counts.pop(pair, None)
        for p, d in delta.items():
            if d == 0 or p == pair:
                continue
            c = counts.get(p, 0) + d
            if c > 0:
                counts[p] = c
                if d > 0 and c >= min_frequency:
                    push(heap, (-c, *p))
            else:
                counts.pop(p, None)
        if progress is not None and len(vocab) - start >= reported + step:
            reported = len(vocab) - start
            progress(reported, total)
    if progress is not None:
        progress(len(vocab) - start, len(vocab) - start)
    return merges
