import tarfile
import urllib.error

import pytest

from rnnkit.data import imdb
from rnnkit.data.imdb import download_tarball, locate_corpus, read_imdb
from rnnkit.errors import RnnkitError


def test_read_imdb_from_folder_has_labels_splits_and_fixed_order(tiny_aclimdb):
    frame = read_imdb(tiny_aclimdb)
    assert len(frame) == 80
    assert frame.groupby(["split", "label"]).size().to_dict() == {
        ("test", 0): 20, ("test", 1): 20, ("train", 0): 20, ("train", 1): 20}
    assert frame.equals(read_imdb(tiny_aclimdb.parent))  # the folder that contains aclImdb/ works too


def test_read_imdb_from_tarball_matches_folder_and_keeps_unlabelled_on_request(tiny_aclimdb, tmp_path):
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tiny_aclimdb, arcname="aclImdb")
    from_tar = read_imdb(tarball)
    assert from_tar.equals(read_imdb(tiny_aclimdb))
    with_unsup = read_imdb(tarball, unlabeled=True)
    assert (with_unsup["split"] == "unsup").sum() == 5
    assert (with_unsup.loc[with_unsup["split"] == "unsup", "label"] == -1).all()


def test_source_that_is_not_aclimdb_is_refused_with_the_way_out(tmp_path):
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "a.txt").write_text("not a corpus")
    with pytest.raises(RnnkitError, match="not the aclImdb corpus.*--source.*--sample"):
        read_imdb(tmp_path / "reviews")
    with pytest.raises(RnnkitError, match="does not exist.*--sample"):
        locate_corpus(tmp_path / "missing.tar.gz", tmp_path / "cache")


def test_offline_download_fails_clearly_and_caches_nothing(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(imdb.urllib.request, "urlopen", offline)
    with pytest.raises(RnnkitError, match="could not download.*--source PATH.*--sample"):
        locate_corpus(None, tmp_path / "cache")
    assert not (tmp_path / "cache" / "aclImdb_v1.tar.gz").exists()


def test_download_checks_md5_and_keeps_only_a_verified_file(tmp_path):
    served = tmp_path / "served.tar.gz"
    served.write_bytes(b"not the real tarball")
    target = tmp_path / "cache" / "aclImdb_v1.tar.gz"
    with pytest.raises(RnnkitError, match="md5"):
        download_tarball(served.as_uri(), target, md5=imdb.IMDB_MD5)
    assert not target.exists()
    import hashlib

    download_tarball(served.as_uri(), target, md5=hashlib.md5(served.read_bytes()).hexdigest())
    assert target.read_bytes() == served.read_bytes()
