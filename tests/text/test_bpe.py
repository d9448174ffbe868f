"""The BPE tokenizer: exact round trip, determinism, persistence, and merges that match a
deliberately naive reference implementation (recount every pair at every merge)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from functools import cache

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rnnkit.errors import RnnkitError
from rnnkit.text.base import PAD_ID, UNK_ID, Tokenizer
from rnnkit.text.bpe import BYTE_TOKENS, MARKER, BPETokenizer, pre_tokenize
from rnnkit.text.clean import normalize

# Deterministic and modest: the suite runs on two shared cores.
FAST = settings(max_examples=100, derandomize=True, deadline=None, database=None)

CORPUS = [
    "This movie was great! The acting was great, the plot was great.<br /><br />Great fun.",
    "I didn't like this movie: the plot was thin... and the acting? Terrible!",
    "An instant classic -- the best movie of 1999, with great acting and a great plot.",
    "Worst. Movie. Ever. I want my 2 hours back!!! The actors were bored.",
    "The director's cut is better; the theatrical cut was rushed (and it shows).",
    "Café society: a naïve, charming film — très bien. 10/10 would watch again.",
] * 3
N_BASE = 2 + 256 + 1  # <PAD> <UNK>, byte tokens, the word marker


@cache
def trained(lowercase: bool = True, vocab_size: int = 400) -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size, lowercase=lowercase)


# ---------------------------------------------------------------- naive reference
def naive_train(
    texts: list[str], vocab_size: int, min_frequency: int = 2
) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, ...], tuple[str, ...]]]:
    """BPE the slow, obvious way, with the documented tie-break and vocabulary layout.

    Returns the vocabulary, the merges, and each training word's final segmentation.
    """
    pieces = Counter(p for t in texts for p in pre_tokenize(t))
    base = ["<PAD>", "<UNK>", *BYTE_TOKENS]
    char_counts = Counter()
    for piece, freq in pieces.items():
        for ch in piece:
            char_counts[ch] += freq
    chars = [ch for ch in char_counts if ch not in (" ", MARKER)]
    chars.sort(key=lambda ch: (-char_counts[ch], ch))  # the most frequent fit when room is short
    vocab = base + sorted([*chars[: vocab_size - len(base) - 1], MARKER])
    alphabet = set(vocab[len(base) :]) - {MARKER}
    freqs: Counter[tuple[str, ...]] = Counter()  # word as first split -> frequency
    for piece, freq in pieces.items():
        # None: a byte-fallback character (unseen, or a literal "▁"), which splits the word.
        symbols = [MARKER if ch == " " else ch if ch in alphabet else None for ch in piece]
        for mergeable, run in itertools.groupby(symbols, key=lambda s: s is not None):
            if mergeable:
                freqs[tuple(run)] += freq
    words = {word: word for word in freqs}  # word as first split -> its symbols now
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size:
        pair_counts: Counter[tuple[str, str]] = Counter()
        for first, word in words.items():
            for pair in zip(word, word[1:]):  # noqa: RUF007 (kept obvious on purpose)
                pair_counts[pair] += freqs[first]
        if not pair_counts:
            break
        ids = {token: i for i, token in enumerate(vocab)}
        best, count = min(
            pair_counts.items(), key=lambda kv: (-kv[1], ids[kv[0][0]], ids[kv[0][1]])
        )
        if count < min_frequency:
            break
        if best[0] + best[1] not in vocab:
            vocab.append(best[0] + best[1])
        if best not in merges:
            merges.append(best)
        for first, word in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[first] = tuple(out)
    return vocab, merges, words


def naive_tokenize(tok: BPETokenizer, text: str) -> list[str]:
    """Merge the lowest-ranked adjacent pair of strings until none is left, piece by piece."""
    rank = {pair: r for r, pair in reversed(list(enumerate(tok.merges)))}
    out = []
    for piece in pre_tokenize(text, lowercase=tok.lowercase):
        # None: byte fallback (a character not in the vocabulary, or a literal "▁").
        symbols = [
            MARKER if ch == " " else None if ch == MARKER or tok.token_to_id(ch) is None else ch
            for ch in piece
        ]
        for mergeable, run in itertools.groupby(
            zip(symbols, piece),
            key=lambda sc: sc[0] is not None,
        ):
            run = [s if mergeable else c for s, c in run]
            if not mergeable:
                out += [BYTE_TOKENS[b] for c in run for b in c.encode("utf-8", "surrogatepass")]
                continue
            while True:
                ranked = [(rank[p], i) for i, p in enumerate(zip(run, run[1:])) if p in rank]  # noqa: RUF007
                if not ranked:
                    break
                best = run[min(ranked)[1]], run[min(ranked)[1] + 1]
                merged, i = [], 0
                while i < len(run):
                    if tuple(run[i : i + 2]) == best:
                        merged.append(best[0] + best[1])
                        i += 2
                    else:
                        merged.append(run[i])
                        i += 1
                run = merged
            out += run
    return out


# Few symbols, so that counts tie, pairs overlap ("aaaa", "abab") and merges chain; some
# characters are rare enough to fall out of a small vocabulary.
_chunks = st.sampled_from(["a", "b", "ab", "abab", "aaa", "ba", "bcbc", " ", ".", "!", "é", "▁"])
small_corpora = st.lists(
    st.text(alphabet="aab bc.!é▁", max_size=25) | st.lists(_chunks, max_size=12).map("".join),
    min_size=1,
    max_size=8,
)


@settings(FAST, max_examples=150)
@given(texts=small_corpora, vocab_size=st.integers(N_BASE, N_BASE + 30), min_freq=st.integers(1, 3))
def test_merges_match_naive_reference(texts, vocab_size, min_freq):
    tok = BPETokenizer.train(texts, vocab_size, min_frequency=min_freq)
    vocab, merges, _ = naive_train(texts, vocab_size, min_freq)
    assert tok.merges == merges
    assert tok.vocab == vocab


def test_overlapping_occurrences_update_neighbour_counts():
    # "abab" -> "ab ab": the second occurrence's left neighbour is the new "ab", not "b".
    texts = ["abab abab ababab", "aaaa aaa"]
    tok = BPETokenizer.train(texts, N_BASE + 20, min_frequency=1)
    assert (tok.vocab, tok.merges) == naive_train(texts, N_BASE + 20, 1)[:2]
    assert tok.tokenize("abab") == ["▁abab"]


def test_merges_match_naive_reference_on_prose():
    tok = BPETokenizer.train(CORPUS, 450)
    vocab, merges, words = naive_train(CORPUS, 450)
    assert (tok.vocab, tok.merges) == (vocab, merges)
    # Encoding a training text reproduces the segmentation that training arrived at.
    for text in CORPUS:
        pieces = pre_tokenize(text)
        expected = [t for p in pieces for t in words[(MARKER, *p[1:]) if p[0] == " " else tuple(p)]]
        assert tok.tokenize(text) == expected


@FAST
@given(text=st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("the movie,!▁ ")))
@example(text="x▁ the▁movie ▁▁, ☃the")
def test_encoding_matches_naive_reference(text):
    tok = trained()
    assert tok.tokenize(text) == naive_tokenize(tok, text)


# ---------------------------------------------------------------- round trip
@settings(FAST, max_examples=300)
@given(text=st.text())
def test_round_trip_any_text(text):
    tok = trained()
    assert tok.decode(tok.encode(text)["input_ids"]) == normalize(text)


@FAST
@given(text=st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("<br />▁ \n.")))
def test_round_trip_keeps_case_when_asked(text):
    tok = trained(lowercase=False)
    assert tok.decode(tok.encode(text)["input_ids"]) == normalize(text, lowercase=False)


@FAST
@given(text=st.text())
def test_round_trip_with_a_vocabulary_too_small_for_the_alphabet(text):
    tok = trained(vocab_size=N_BASE + 5)  # most characters fall back to bytes
    assert tok.vocab_size == N_BASE + 5
    assert tok.decode(tok.encode(text)["input_ids"]) == normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Hello ,world !",
        "(hi)",
        "a\u2581b \u2581",
        "x\ud800y",
        "日本語 テキスト",
        "a<br/>b",
    ],
)
def test_round_trip_edge_cases(text):
    tok = trained()
    assert tok.decode(tok.encode(text)["input_ids"]) == normalize(text)


@FAST
@given(text=st.text())
def test_pre_tokenization_drops_nothing(text):
    norm = normalize(text)
    assert "".join(pre_tokenize(text)) == (" " + norm if norm else "")


# ---------------------------------------------------------------- determinism, persistence
@FAST
@given(text=st.text())
def test_encoding_is_deterministic_and_cache_independent(text):
    tok = trained()
    cold = BPETokenizer.from_dict(tok.to_dict())  # same tokenizer, empty cache
    first = tok.encode(text)["input_ids"]
    assert tok.encode(text)["input_ids"] == first
    assert cold.encode(text)["input_ids"] == first


def test_training_is_deterministic():
    again = BPETokenizer.train(list(CORPUS), 400)
    assert (again.vocab, again.merges) == (trained().vocab, trained().merges)


def test_save_and_load_encode_identically(tmp_path):
    tok = BPETokenizer.train(
        CORPUS, 400, add_bos=True, add_eos=True, max_length=16, truncate="tail"
    )
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    loaded = Tokenizer.load(path)
    assert isinstance(loaded, BPETokenizer)
    assert loaded.vocab == tok.vocab and loaded.merges == tok.merges
    assert loaded.settings() == tok.settings()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (
        data["type"] == "bpe"
        and data["bpe_format"] == 1
        and data["merges"][0] == list(tok.merges[0])
    )

    @FAST
    @given(text=st.text())
    def same(text):
        assert loaded.encode(text) == tok.encode(text)
        assert loaded.tokenize(text) == tok.tokenize(text)

    same()


def test_load_rejects_a_corrupt_file(tmp_path):
    data = trained().to_dict()
    data["merges"].append(["no such", "token"])
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RnnkitError, match="not a valid bpe tokenizer"):
        Tokenizer.load(path)


# ---------------------------------------------------------------- vocabulary
def test_vocabulary_layout_and_specials():
    tok = BPETokenizer.train(CORPUS, 400, add_bos=True, add_eos=True)
    assert tok.vocab[:4] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>"]
    assert tok.token_to_id("<PAD>") == PAD_ID == 0 and tok.token_to_id("<UNK>") == UNK_ID == 1
    assert (tok.bos_id, tok.eos_id) == (2, 3)
    assert tok.vocab[4:260] == BYTE_TOKENS
    alphabet = [t for t in tok.vocab[260:] if len(t) == 1]
    assert alphabet == sorted(alphabet) and MARKER in alphabet
    assert tok.vocab[260 : 260 + len(alphabet)] == alphabet  # then the merged tokens
    ids = tok.encode("great movie")["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3
    assert tok.decode(ids) == "great movie"
    assert tok.decode(ids, skip_special_tokens=False) == "<BOS>great movie<EOS>"


def test_vocab_size_is_respected():
    for size in (N_BASE, N_BASE + 1, 300, 400):
        assert BPETokenizer.train(CORPUS, size).vocab_size == size
    # A tiny corpus runs out of pairs occurring twice before reaching a large vocab_size.
    small = BPETokenizer.train(["abc abc"], 5000)
    assert small.vocab_size < 5000 and small.tokenize("abc") == ["▁abc"]


def test_vocab_size_too_small_is_a_user_error():
    with pytest.raises(RnnkitError, match="vocab_size 100 is too small"):
        BPETokenizer.train(CORPUS, 100)
    with pytest.raises(RnnkitError, match="not one string"):
        BPETokenizer.train("one text", 400)


def test_id_to_token_and_token_to_id():
    tok = trained()
    for i, token in enumerate(tok.vocab):
        assert tok.token_to_id(token) == i and tok.id_to_token(i) == token
    assert tok.id_to_token(tok.vocab_size) is None and tok.id_to_token(-1) is None
    assert tok.token_to_id("no such token") is None
    assert tok.token_to_id("▁great") is not None  # learnt from the corpus
    assert tok.tokenize("Great great") == ["▁great", "▁great"]


def test_tie_break_prefers_the_smallest_ids():
    # Every pair of "cd ab" occurs twice. Characters have ids in code-point order, the marker
    # "▁" after ASCII, so ("a", "b") goes first, then ("c", "d"); then the older "ab" wins.
    tok = BPETokenizer.train(["cd ab", "cd ab"], N_BASE + 8)
    assert tok.merges == [("a", "b"), ("c", "d"), ("▁", "ab"), ("▁", "cd")]


def test_unseen_characters_fall_back_to_bytes():
    tok = trained()
    pieces = tok.tokenize("great 😀 ▁")
    assert pieces == [
        "▁great",
        "▁",
        "<0xF0>",
        "<0x9F>",
        "<0x98>",
        "<0x80>",
        "▁",
        "<0xE2>",
        "<0x96>",
        "<0x81>",
    ]
    assert UNK_ID not in tok.encode("😀 ▁ ☃ \x00")["input_ids"]


def test_decode_of_a_cut_character_and_of_a_bad_id():
    tok = trained()
    ids = tok.encode("😀")["input_ids"]
    assert tok.decode(ids[:-1]) == "\ufffd"  # a character cut short
    with pytest.raises(RnnkitError, match="outside this tokenizer's vocabulary"):
        tok.decode([tok.vocab_size])


# ---------------------------------------------------------------- HF-style encode
def test_encode_padding_truncation_and_attention_mask():
    tok = trained()
    batch = tok.encode(["great movie", "the plot was thin and the acting terrible"], padding=True)
    lengths = [sum(mask) for mask in batch["attention_mask"]]
    width = max(lengths)
    assert all(len(row) == width for row in batch["input_ids"])
    assert batch["input_ids"][0][lengths[0] :] == [PAD_ID] * (width - lengths[0])
    assert batch["attention_mask"][0] == [1] * lengths[0] + [0] * (width - lengths[0])

    one = tok.encode("the plot was thin and the acting terrible", max_length=4, truncation=True)
    assert len(one["input_ids"]) == 4 and one["attention_mask"] == [1, 1, 1, 1]
    padded = tok.encode("great", max_length=6, padding="max_length")
    assert padded["attention_mask"] == [1] + [0] * 5 and padded["input_ids"][1:] == [PAD_ID] * 5
    with pytest.raises(RnnkitError, match="needs max_length"):
        tok.encode("great", padding="max_length")


def test_fast_ids_agree_with_the_pieces():
    """BPE's `_text_ids` reads ids straight from its word cache; they must be the ids of the
    pieces that `tokenize` gives."""
    tok = BPETokenizer.train(CORPUS, 400)
    for text in CORPUS[:6] + ["", "😀 unseen ▁"]:
        expected = [tok.token_to_id(piece) for piece in tok.tokenize(text)]
        assert tok._text_ids(text) == expected
        assert tok.ids(text, max_length=None, truncation=False) == expected


def test_progress_reports_up_to_completion():
    calls = []
    BPETokenizer.train(CORPUS, 400, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 400 - N_BASE - len({c for t in CORPUS for c in normalize(t)} - {" "}))
    assert calls[-1][0] == calls[-1][1] > 0
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))  # noqa: RUF007


@settings(FAST, max_examples=25)
@given(texts=st.lists(st.text(max_size=40), max_size=6), text=st.text())
def test_any_corpus_trains_and_round_trips(texts, text):
    tok = BPETokenizer.train(texts, N_BASE + 40, min_frequency=1)
    assert tok.vocab_size <= N_BASE + 40
    assert tok.decode(tok.encode(text)["input_ids"]) == normalize(text)
