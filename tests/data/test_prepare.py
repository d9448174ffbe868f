import numpy as np
import pandas as pd
import pytest
import torch
from support import ok, run_cli

from rnnkit.artifacts import artifact_paths
from rnnkit.data.prepare import SPLITS, load_prepared, prepare_csv, prepare_imdb
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


def test_prepare_csv_multi_label_split_leaves_every_label_in_train(paths, tmp_path):
    # 200 texts of a common label and, among them, 8 rare labels of 2 texts each: a random
    # 30 % test split and 30 % val split would carry some rare label wholly out of train.
    rows = []
    for i in range(200):
        rare = f", rare{i % 40}" if i % 5 == 0 and i % 40 < 8 * 5 and (i // 40) < 2 else ""
        rows.append((f"text {i}", "common" + rare))
    path = tmp_path / "rare.tsv"
    pd.DataFrame(rows, columns=["text", "labels"]).to_csv(path, sep="\t", index=False)
    result = prepare_csv(paths, path, label_col="labels", multi_label=True, test_size=0.3, val_size=0.3)
    splits, _, _ = load_prepared(paths)
    train = np.stack(splits["train"]["label"].to_numpy())
    every = np.concatenate([np.stack(splits[s]["label"].to_numpy()) for s in SPLITS])
    assert len(every) == 200 and sum(result.counts.values()) == 200
    assert (train.sum(axis=0) >= 1).all(), dict(zip(result.label_names, train.sum(axis=0)))
    # Labels with 2 texts keep one in train; the common label is shared out in proportion.
    common = result.label_names.index("common")
    assert abs(train[:, common].sum() - 200 * 0.7 * 0.7) <= 2
    assert result.counts["test"] == 60 and result.counts["val"] == 42


def test_multilabel_split_deals_each_label_in_proportion():
    from rnnkit.data.prepare import _multilabel_split

    rng = np.random.default_rng(0)
    labels = rng.random((1000, 6)) < np.array([0.5, 0.2, 0.1, 0.05, 0.01, 0.002])
    rest, part = _multilabel_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([rest, part]).tolist()) == list(range(1000))
    assert len(part) == 200
    counts, in_part = labels.sum(axis=0), labels[part].sum(axis=0)
    assert (np.abs(in_part - 0.2 * counts) <= 1).all(), (in_part, counts)
    assert (labels[rest].sum(axis=0) >= 1).all()


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


def test_prepare_csv_single_label_with_more_than_two_values_is_multiclass(paths, topics_tsv):
    result = prepare_csv(paths, topics_tsv, label_col="labels")  # "grain, wheat" is one class here
    assert result.task == "multiclass"
    assert result.label_names == ["acq", "earn", "grain, corn", "grain, wheat"]
    splits, info, _ = load_prepared(paths)
    assert info["task"] == "multiclass"
    assert info["label_counts"]["test"] == {name: 2 for name in result.label_names}  # stratified: 8 rows
    totals = {name: sum(info["label_counts"][s][name] for s in SPLITS) for name in result.label_names}
    assert totals == {name: 10 for name in result.label_names}
    for split in SPLITS:
        for text, label in zip(splits[split]["text"], splits[split]["label"]):
            assert isinstance(label, int | np.integer)
            assert all(name in text for name in result.label_names[label].split(", "))


def test_prepare_csv_multiclass_with_more_classes_than_val_rows_still_splits(paths, tmp_path):
    path = tmp_path / "many.csv"
    pd.DataFrame({"text": [f"row {i} of class {i % 12}" for i in range(60)],
                  "label": [f"c{i % 12:02d}" for i in range(60)]}).to_csv(path, index=False)
    result = prepare_csv(paths, path)  # val is 5 rows for 12 classes: too few to stratify, so it is not
    assert result.task == "multiclass" and len(result.label_names) == 12
    assert result.counts == {"train": 43, "val": 5, "test": 12}
    _, info, _ = load_prepared(paths)
    assert set(info["label_counts"]["test"].values()) == {1}  # 12 test rows: still stratified


def test_tokenize_gives_int64_class_indices_for_multiclass(tmp_path, topics_tsv):
    root = tmp_path / "artifacts"
    ok(["prepare", "csv", topics_tsv, "--label-col", "labels", "--artifacts", root])
    ok(["tokenize", "--max-length", "16", "--min-df", "1", "--artifacts", root])
    data = torch.load(root / "dataset.pt", weights_only=True)
    splits, _, _ = load_prepared(artifact_paths(root))
    assert data["task"] == "multiclass" and len(data["label_names"]) == 4
    for split in SPLITS:
        y = data[f"y_{split}"]
        assert y.dtype == torch.int64 and y.shape == (len(splits[split]),)
        assert y.tolist() == splits[split]["label"].tolist()


def test_prepare_csv_with_one_label_value_is_one_clear_line(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"text": [f"good {i}" for i in range(10)], "stars": ["5"] * 10}).to_csv(path, index=False)
    root = tmp_path / "artifacts"
    result = run_cli(["prepare", "csv", path, "--label-col", "stars", "--artifacts", root])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "column 'stars'" in lines[0] and "'5'" in lines[0] and "--label-col" in lines[0]
    assert not root.exists()


@pytest.fixture
def threads_csv(tmp_path):
    """60 threads of 3 posts; each post names its thread, so that a test can find it in the text."""
    rows = [(f"thread {g} post {j} says {'yes' if g % 2 else 'no'}", "yes" if g % 2 else "no", f"t{g}")
            for g in range(60) for j in range(3)]
    path = tmp_path / "threads.csv"
    pd.DataFrame(rows, columns=["text", "label", "thread"]).to_csv(path, index=False)
    return path


def _threads(frame) -> set[str]:
    return {text.split(" post ")[0] for text in frame["text"]}


def test_prepare_csv_group_col_keeps_each_group_in_one_split(paths, threads_csv):
    result = prepare_csv(paths, threads_csv, group_col="thread")
    # Sizes count groups: 12 of 60 threads for test, then 5 of the other 48 for validation.
    assert result.counts == {"train": 129, "val": 15, "test": 36}
    splits, _, _ = load_prepared(paths)
    train, val, test = (_threads(splits[s]) for s in SPLITS)
    assert (len(train), len(val), len(test)) == (43, 5, 12)
    assert train.isdisjoint(val) and train.isdisjoint(test) and val.isdisjoint(test)
    assert prepare_csv(paths, threads_csv, group_col="thread").skipped
    assert not prepare_csv(paths, threads_csv).skipped  # the manifest records --group-col


def test_prepare_csv_group_col_also_groups_the_val_split_carved_from_train(paths, tmp_path, threads_csv):
    frame = pd.read_csv(threads_csv)
    frame["part"] = ["test" if int(t[1:]) >= 50 else "train" for t in frame["thread"]]
    path = tmp_path / "parted.csv"
    frame.to_csv(path, index=False)
    prepare_csv(paths, path, split_col="part", group_col="thread", val_size=0.2)
    splits, _, _ = load_prepared(paths)
    train, val, test = (_threads(splits[s]) for s in SPLITS)
    assert len(val) == 10 and len(splits["val"]) == 30 and train.isdisjoint(val)


def test_prepare_csv_names_a_missing_group_column(paths, threads_csv):
    with pytest.raises(RnnkitError, match="no column 'sentence'.*--group-col NAME"):
        prepare_csv(paths, threads_csv, group_col="sentence")
    assert not paths.root.exists()


def test_prepare_csv_group_col_with_one_group_cannot_be_split(paths, tmp_path):
    path = tmp_path / "one_thread.csv"
    pd.DataFrame({"text": [f"post {i}" for i in range(20)], "label": ["yes", "no"] * 10,
                  "thread": ["t0"] * 20}).to_csv(path, index=False)
    with pytest.raises(RnnkitError, match="column 'thread' has 1 group.*--group-col"):
        prepare_csv(paths, path, group_col="thread")
