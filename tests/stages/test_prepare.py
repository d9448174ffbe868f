"""`rnnkit prepare imdb|csv` (rnnkit/stages/prepare.py): the splits it writes, and its flags."""

import numpy as np
import pandas as pd
import pytest
from support import ok, run_cli

from rnnkit.data.prepared import SPLITS, load_prepared
from rnnkit.errors import RnnkitError
from rnnkit.stages.prepare import CsvOptions, ImdbOptions, run


def test_prepare_imdb_splits_official_train_into_train_and_val(paths, tiny_aclimdb):
    result = run(paths, ImdbOptions(source=tiny_aclimdb, val_size=0.3, seed=1))
    assert result.counts == {"train": 28, "val": 12, "test": 40}
    splits, info, _ = load_prepared(paths)
    assert info["label_names"] == ["neg", "pos"] and info["task"] == "binary"
    assert splits["val"]["label"].value_counts().to_dict() == {0: 6, 1: 6}  # stratified
    assert not splits["train"]["text"].str.contains("<br", case=False).any()
    assert set(splits["train"]["id"]).isdisjoint(splits["val"]["id"])


def test_prepare_is_up_to_date_unless_forced_or_changed(paths, tiny_aclimdb):
    assert not run(paths, ImdbOptions(source=tiny_aclimdb)).skipped
    assert run(paths, ImdbOptions(source=tiny_aclimdb)).skipped
    assert not run(paths, ImdbOptions(source=tiny_aclimdb, force=True)).skipped
    assert not run(paths, ImdbOptions(source=tiny_aclimdb, seed=7)).skipped


def test_prepare_imdb_unlabeled_keeps_unsup_reviews(paths, tiny_aclimdb):
    result = run(paths, ImdbOptions(source=tiny_aclimdb, unlabeled=True))
    assert result.counts["unlabeled"] == 5
    splits, _, _ = load_prepared(paths)
    assert len(splits["unlabeled"]) == 5
    run(paths, ImdbOptions(source=tiny_aclimdb))  # without --unlabeled the stale file goes
    assert not (paths.prepared / "unlabeled.parquet").exists()


def test_prepare_sample_is_balanced(paths):
    result = run(paths, ImdbOptions(sample=True))
    assert result.counts == {"train": 2100, "val": 900, "test": 1000}


@pytest.fixture
def topics_tsv(tmp_path):
    rows = [(f"text about {a} and {b} number {i}", f"{a}, {b}" if b else a)
            for i, (a, b) in enumerate([("grain", "wheat"), ("earn", ""), ("acq", ""), ("grain", "corn")] * 10)]
    path = tmp_path / "topics.tsv"
    pd.DataFrame(rows, columns=["text", "labels"]).to_csv(path, sep="\t", index=False)
    return path


def test_prepare_csv_multi_label_gives_multi_hot_rows_and_label_names(paths, topics_tsv):
    result = run(paths, CsvOptions(topics_tsv, label_col="labels", multi_label=True))
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
    result = run(paths, CsvOptions(path, label_col="labels", multi_label=True, test_size=0.3, val_size=0.3))
    splits, _, _ = load_prepared(paths)
    train = np.stack(splits["train"]["label"].to_numpy())
    every = np.concatenate([np.stack(splits[s]["label"].to_numpy()) for s in SPLITS])
    assert len(every) == 200 and sum(result.counts.values()) == 200
    assert (train.sum(axis=0) >= 1).all(), dict(zip(result.label_names, train.sum(axis=0)))
    # Labels with 2 texts keep one in train; the common label is shared out in proportion.
    common = result.label_names.index("common")
    assert abs(train[:, common].sum() - 200 * 0.7 * 0.7) <= 2
    assert result.counts["test"] == 60 and result.counts["val"] == 42


def test_prepare_csv_binary_with_its_own_split_column(paths, tmp_path):
    frame = pd.DataFrame({"review": [f"good {i}" if i % 2 else f"bad {i}" for i in range(30)],
                          "y": ["pos" if i % 2 else "neg" for i in range(30)],
                          "part": ["train"] * 20 + ["valid"] * 4 + ["test"] * 6})
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False)
    result = run(paths, CsvOptions(path, text_col="review", label_col="y", split_col="part"))
    assert result.counts == {"train": 20, "val": 4, "test": 6} and result.label_names == ["neg", "pos"]


def test_prepare_csv_names_a_missing_column_and_writes_nothing(paths, topics_tsv):
    with pytest.raises(RnnkitError, match="no column 'body'.*columns: text, labels.*--text-col"):
        run(paths, CsvOptions(topics_tsv, text_col="body"))
    assert not paths.root.exists()


def test_prepare_csv_single_label_with_more_than_two_values_is_multiclass(paths, topics_tsv):
    result = run(paths, CsvOptions(topics_tsv, label_col="labels"))  # "grain, wheat" is one class here
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
    result = run(paths, CsvOptions(path))  # val is 5 rows for 12 classes: too few to stratify, so it is not
    assert result.task == "multiclass" and len(result.label_names) == 12
    assert result.counts == {"train": 43, "val": 5, "test": 12}
    _, info, _ = load_prepared(paths)
    assert set(info["label_counts"]["test"].values()) == {1}  # 12 test rows: still stratified


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
    result = run(paths, CsvOptions(threads_csv, group_col="thread"))
    # Sizes count groups: 12 of 60 threads for test, then 5 of the other 48 for validation.
    assert result.counts == {"train": 129, "val": 15, "test": 36}
    splits, _, _ = load_prepared(paths)
    train, val, test = (_threads(splits[s]) for s in SPLITS)
    assert (len(train), len(val), len(test)) == (43, 5, 12)
    assert train.isdisjoint(val) and train.isdisjoint(test) and val.isdisjoint(test)
    assert run(paths, CsvOptions(threads_csv, group_col="thread")).skipped
    assert not run(paths, CsvOptions(threads_csv)).skipped  # the manifest records --group-col


def test_prepare_csv_group_col_also_groups_the_val_split_carved_from_train(paths, tmp_path, threads_csv):
    frame = pd.read_csv(threads_csv)
    frame["part"] = ["test" if int(t[1:]) >= 50 else "train" for t in frame["thread"]]
    path = tmp_path / "parted.csv"
    frame.to_csv(path, index=False)
    run(paths, CsvOptions(path, split_col="part", group_col="thread", val_size=0.2))
    splits, _, _ = load_prepared(paths)
    train, val, test = (_threads(splits[s]) for s in SPLITS)
    assert len(val) == 10 and len(splits["val"]) == 30 and train.isdisjoint(val)


def test_prepare_csv_names_a_missing_group_column(paths, threads_csv):
    with pytest.raises(RnnkitError, match="no column 'sentence'.*--group-col NAME"):
        run(paths, CsvOptions(threads_csv, group_col="sentence"))
    assert not paths.root.exists()


def test_prepare_csv_group_col_with_one_group_cannot_be_split(paths, tmp_path):
    path = tmp_path / "one_thread.csv"
    pd.DataFrame({"text": [f"post {i}" for i in range(20)], "label": ["yes", "no"] * 10,
                  "thread": ["t0"] * 20}).to_csv(path, index=False)
    with pytest.raises(RnnkitError, match="column 'thread' has 1 group.*--group-col"):
        run(paths, CsvOptions(path, group_col="thread"))


def test_prepare_csv_reads_an_escaped_separator(tmp_path, topics_tsv):
    path = tmp_path / "topics.txt"  # not .tsv: comma would be the default separator
    path.write_bytes(topics_tsv.read_bytes())
    root = tmp_path / "artifacts"
    out = ok(["prepare", "csv", path, "--sep", "\\t", "--label-col", "labels", "--artifacts", root]).output
    assert "multiclass task (4 labels" in out
    manifest = __import__("json").loads((root / "manifest.json").read_text())
    assert manifest["stages"]["prepare"]["params"]["sep"] == "\t"


def test_prepare_refuses_a_fraction_out_of_range_before_any_work(tmp_path, topics_tsv):
    root = tmp_path / "artifacts"
    for args in (["imdb", "--sample", "--val-size", "1.5"], ["csv", topics_tsv, "--test-size", "0"]):
        result = run_cli(["prepare", *args, "--artifacts", root])
        assert result.exit_code == 2 and result.output.startswith("error: ")
        assert "must be in (0, 1)" in result.output and args[-2] in result.output, result.output
    assert not root.exists()


def test_prepare_imdb_takes_sample_or_source_not_both(tmp_path, tiny_aclimdb):
    result = run_cli(["prepare", "imdb", "--sample", "--source", tiny_aclimdb, "--artifacts", tmp_path / "a"])
    assert result.exit_code == 2 and "pass one of them" in result.output


def test_prepare_help_shows_each_options_declaration():
    out = run_cli(["prepare", "csv", "--help"]).output
    for text in ("--text-col", "--multi-label", "--label-sep", "--group-col", "--split-seed", "--force",
                 "--artifacts", "A CSV or TSV file"):
        assert text in out, text



def test_prepare_csv_reads_a_byte_order_mark_and_a_non_ascii_separator(paths, tmp_path):
    rows = "".join(f"text {i} caf\u00e9\u00a7{'ab'[i % 2]}\n" for i in range(20))
    path = tmp_path / "t.csv"
    path.write_bytes(("text\u00a7label\n" + rows).encode("utf-8-sig"))  # as Excel saves "CSV UTF-8"
    result = run(paths, CsvOptions(path, sep="\u00a7"))
    assert result.label_names == ["a", "b"] and sum(result.counts.values()) == 20
    splits, _, _ = load_prepared(paths)
    assert splits["train"]["text"].str.endswith("caf\u00e9").all()


@pytest.mark.parametrize("given, sep", [("\\t", "\t"), (",", ","), ("\u00a7", "\u00a7"), ("\\u00a7", "\u00a7"),
                                        ("\\x1f", "\x1f")])
def test_separator_escapes(given, sep):
    from rnnkit.data.csv import unescape_sep

    assert unescape_sep(given) == sep


@pytest.mark.parametrize("given", ["\\", "\\x", "\\u12"])
def test_separator_escapes_that_are_not(given):
    from rnnkit.data.csv import unescape_sep

    with pytest.raises(RnnkitError, match="is not a valid escape"):
        unescape_sep(given)


def test_split_refuses_what_scikit_learn_would_fail_on():
    from rnnkit.data.split import split

    frame = pd.DataFrame({"text": [f"t{i}" for i in range(6)], "label": [0, 1] * 3})
    with pytest.raises(RnnkitError, match="splitting 0.9 of 6 rows off leaves no row on the other side"):
        split(frame, 0.9, 0, stratify=True)
    with pytest.raises(RnnkitError, match=r"split seed 4294967296 is out of range — use a seed in \[0, 4294967295\]"):
        split(frame, 0.5, 2**32, stratify=True)
    with pytest.raises(RnnkitError, match="only 1 row left to split in two"):
        split(frame.head(1), 0.5, 0, stratify=True)
    rest, part = split(frame, 0.5, 2**32 - 1, stratify=True)
    assert len(rest) == len(part) == 3
