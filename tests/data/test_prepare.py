import pandas as pd
import pytest

from rnnkit.data.prepare import load_prepared, prepare_csv, prepare_imdb
from rnnkit.errors import RnnkitError


def test_prepare_imdb_splits_official_train_into_train_and_val(paths, tiny_aclimdb):
    result = prepare_imdb(paths, source=tiny_aclimdb, val_size=0.3, seed=1)
    assert result.counts == {"train": 28, "val": 12, "test": 40}
    splits, info, _ = load_prepared(paths)
    assert info["label_names"] == ["neg", "pos"] and info["task"] == "binary"
    assert splits["val"]["label"].value_counts().to_dict() == {0: 6, 1: 6}  # stratified
    assert not splits["train"]["text"].str.contains("<br", case=False).any()
    assert set(splits["train"]["id"]).isdisjoint(splits["val"]["id"])


def test_prepare_is_up_to_date_unless_forced_or_changed(paths, tiny_aclimdb):
    assert not prepare_imdb(paths, source=tiny_aclimdb).skipped
    assert prepare_imdb(paths, source=tiny_aclimdb).skipped
    assert not prepare_imdb(paths, source=tiny_aclimdb, force=True).skipped
    assert not prepare_imdb(paths, source=tiny_aclimdb, seed=7).skipped


def test_prepare_imdb_unlabeled_keeps_unsup_reviews(paths, tiny_aclimdb):
    result = prepare_imdb(paths, source=tiny_aclimdb, unlabeled=True)
    assert result.counts["unlabeled"] == 5
    splits, _, _ = load_prepared(paths)
    assert len(splits["unlabeled"]) == 5
    prepare_imdb(paths, source=tiny_aclimdb)  # without --unlabeled the stale file goes
    assert not (paths.prepared / "unlabeled.parquet").exists()


def test_prepare_sample_is_balanced(paths):
    result = prepare_imdb(paths, sample=True)
    assert result.counts == {"train": 2100, "val": 900, "test": 1000}


@pytest.fixture
def topics_tsv(tmp_path):
    rows = [(f"text about {a} and {b} number {i}", f"{a}, {b}" if b else a)
            for i, (a, b) in enumerate([("grain", "wheat"), ("earn", ""), ("acq", ""), ("grain", "corn")] * 10)]
    path = tmp_path / "topics.tsv"
    pd.DataFrame(rows, columns=["text", "labels"]).to_csv(path, sep="\t", index=False)
    return path


def test_prepare_csv_multi_label_gives_multi_hot_rows_and_label_names(paths, topics_tsv):
    result = prepare_csv(paths, topics_tsv, label_col="labels", multi_label=True)
    assert result.task == "multilabel"
    assert result.label_names == ["acq", "corn", "earn", "grain", "wheat"]
    assert sum(result.counts.values()) == 40
    splits, _, _ = load_prepared(paths)
    row = splits["train"]
    for text, label in zip(row["text"], row["label"]):
        names = {n for n, bit in zip(result.label_names, label) if bit}
        assert all(n in text for n in names) and names


def test_prepare_csv_binary_with_its_own_split_column(paths, tmp_path):
    frame = pd.DataFrame({"review": [f"good {i}" if i % 2 else f"bad {i}" for i in range(30)],
                          "y": ["pos" if i % 2 else "neg" for i in range(30)],
                          "part": ["train"] * 20 + ["valid"] * 4 + ["test"] * 6})
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False)
    result = prepare_csv(paths, path, text_col="review", label_col="y", split_col="part")
    assert result.counts == {"train": 20, "val": 4, "test": 6} and result.label_names == ["neg", "pos"]


def test_prepare_csv_names_a_missing_column_and_writes_nothing(paths, topics_tsv):
    with pytest.raises(RnnkitError, match="no column 'body'.*columns: text, labels.*--text-col"):
        prepare_csv(paths, topics_tsv, text_col="body")
    assert not paths.root.exists()


def test_prepare_csv_single_label_with_many_classes_points_to_multi_label(paths, topics_tsv):
    with pytest.raises(RnnkitError, match="--multi-label"):
        prepare_csv(paths, topics_tsv, label_col="labels")
