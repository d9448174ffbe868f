"""Draw the embedded IMDB sample (data/imdb_sample.tsv.gz) from the official corpus.

    python data/make_imdb_sample.py ../shared/data/aclImdb_v1.tar.gz

How it is drawn: from the official aclImdb v1.0 corpus, with numpy's default_rng(seed=0),
1,500 positive and 1,500 negative reviews of the official train split and 500 positive and
500 negative of the official test split, without replacement: 4,000 real reviews, balanced,
with their official split, id and star rating. Reviews are unchanged (the `<br />` tags are
removed later by `rnnkit prepare`, as for the full corpus).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rnnkit.data.imdb import read_imdb

PER_CLASS = {"train": 1500, "test": 500}


def main(source: str, out: str = "data/imdb_sample.tsv.gz") -> None:
    corpus = read_imdb(Path(source))
    rng = np.random.default_rng(0)
    parts = []
    for split, n in PER_CLASS.items():
        for label in (0, 1):
            rows = corpus[(corpus["split"] == split) & (corpus["label"] == label)]
            parts.append(rows.iloc[np.sort(rng.choice(len(rows), size=n, replace=False))])
    import pandas as pd

    sample = pd.concat(parts, ignore_index=True)[["split", "label", "id", "rating", "text"]]
    sample.to_csv(out, sep="\t", index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(sample)} reviews to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
