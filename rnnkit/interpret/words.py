"""The tokens a model read, and the words they spell.

A word tokenizer's tokens are words already. A BPE tokenizer cuts words into pieces
("fantastic" -> "▁fant", "astic"); an explanation reads better per word, so pieces are
joined into the word they spell and their attributions summed (attributions are additive:
the sum over a word is the word's share of f(text) - f(baseline), as the sum over the text
is the whole difference). A BPE word starts at a token that begins with the word marker `▁`
(a space was before it); every other token — the rest of a word, punctuation glued to it
("film,"), byte tokens of characters outside the alphabet — belongs to the word before it.
Special tokens (<BOS>, <EOS>) are words of their own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenView:
    tokens: list[str]  # what each id stands for: the text's own piece (an unknown word stays itself)
    words: list[str]  # the words the tokens spell, in order
    word_of: list[int]  # token i belongs to words[word_of[i]]


def token_view(tokenizer, ids: list[int], text: str) -> TokenView:
    """The tokens of `ids` (the tokenizer's ids of `text`) and the words they spell."""
    from rnnkit.text.base import UNK_ID

    vocab = tokenizer.vocab
    tokens = [vocab[i] if 0 <= i < len(vocab) else "<UNK>" for i in ids]
    special = [i < tokenizer.n_special and i != UNK_ID for i in ids]  # <PAD>, <BOS>, <EOS>
    body = [k for k, s in enumerate(special) if not s]
    if any(ids[k] == UNK_ID for k in body):
        # An unknown word reads better as itself than as <UNK>: the pieces line up with the
        # ids unless the text was truncated.
        pieces = tokenizer.tokenize(text)
        if len(pieces) == len(body):
            for k, piece in zip(body, pieces):
                tokens[k] = piece
    if getattr(tokenizer, "kind", "") != "bpe":
        return TokenView(tokens, list(tokens), list(range(len(tokens))))
    from rnnkit.text.bpe import MARKER

    groups: list[list[int]] = []
    for k, token in enumerate(tokens):
        starts = special[k] or token.startswith(MARKER) or not groups or special[groups[-1][-1]]
        if starts:
            groups.append([k])
        else:
            groups[-1].append(k)
    words, word_of = [], [0] * len(tokens)
    for w, group in enumerate(groups):
        if special[group[0]]:
            words.append(tokens[group[0]])
        else:
            words.append(tokenizer.decode([ids[k] for k in group]).strip() or tokens[group[0]])
        for k in group:
            word_of[k] = w
    return TokenView(tokens, words, word_of)
