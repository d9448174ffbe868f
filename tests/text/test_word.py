import pytest

from rnnkit.text.base import PAD_ID, UNK_ID, Tokenizer, truncate_ids
from rnnkit.text.word import WordTokenizer, english_stop_words

CORPUS = ["A great film, truly great!", "A dull film. Not great?", "Great acting; dull plot", "<br />great<br/>fun"]


def test_tokenize_lowercases_keeps_apostrophes_and_marks_and_drops_br():
    tok = WordTokenizer.build(CORPUS, min_df=1, max_df=1.0)
    assert tok.tokenize("Don't <br />MISS it!!") == ["don't", "miss", "it", "!", "!"]


def test_vocabulary_is_ranked_by_document_frequency_with_pad_and_unk_first():
    tok = WordTokenizer.build(CORPUS, min_df=2, max_df=1.0)
    vocab = tok.get_vocab()
    assert vocab["<PAD>"] == PAD_ID == 0 and vocab["<UNK>"] == UNK_ID == 1
    assert tok.vocab[2:] == ["great", "a", "dull", "film"]  # df 4, then ties (df 2) by word


def test_max_df_and_vocab_size_filter_words():
    tok = WordTokenizer.build(CORPUS, min_df=1, max_df=0.9, vocab_size=5)
    assert "great" not in tok.get_vocab()  # in every document: over max_df
    assert tok.vocab_size == 5


def test_stop_words_are_dropped_but_no_and_not_are_kept():
    stops = english_stop_words()
    assert "the" in stops and "not" not in stops and "no" not in stops
    tok = WordTokenizer.build(["the film is not good", "no the plot"], min_df=1, max_df=1.0, stop_words=True)
    assert tok.tokenize("The film is not good") == ["film", "not", "good"]


def test_encode_pads_truncates_and_masks_like_hugging_face():
    tok = WordTokenizer.build(CORPUS, min_df=1, max_df=1.0, add_bos=True, add_eos=True)
    out = tok.encode(["great film", "a dull film not great at all"], max_length=5, padding="longest",
                     truncation=True)
    ids = out["input_ids"]
    assert [len(r) for r in ids] == [5, 5]
    assert ids[0][0] == tok.token_to_id("<BOS>") and ids[0][3] == tok.token_to_id("<EOS>")
    assert out["attention_mask"] == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert ids[1][-1] == tok.token_to_id("<EOS>")
    assert tok.decode(ids[0]) == "great film"
    assert tok.encode("zebra")["input_ids"][1] == UNK_ID


@pytest.mark.parametrize("how,expected", [("head", [1, 2, 3, 4]), ("tail", [7, 8, 9, 10]),
                                          ("head+tail", [1, 8, 9, 10])])
def test_truncation_strategies(how, expected):
    assert truncate_ids(list(range(1, 11)), 4, how) == expected


def test_saved_tokenizer_reloads_and_encodes_identically(tmp_path):
    tok = WordTokenizer.build(CORPUS, min_df=1, max_df=1.0, stop_words=True, max_length=3, truncate="tail")
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert isinstance(again, WordTokenizer)
    for text in CORPUS + ["unknown words here, great"]:
        assert again.ids(text) == tok.ids(text)


def test_tokenize_is_blind_to_runs_of_whitespace_and_breaks():
    tok = WordTokenizer(["<PAD>", "<UNK>"])
    messy = "  Great\tfilm!<br /><br />Don't\n\n  miss   it?  It's 10/10 "
    assert tok.tokenize(messy) == tok.tokenize(" ".join(messy.split())) == [
        "great", "film", "!", "don't", "miss", "it", "?", "it's", "10", "10"]
