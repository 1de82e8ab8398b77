"""Corpus readers: every source type, every option, every bad input."""
import gzip
import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from clickbait.errors import HeadlineDataError, HeadlineSourceNotFound
from clickbait.data import (headline_stats, holdout_mask,
                            load_chakraborty, load_headlines, plot_headline_stats, split_holdout)


@pytest.fixture
def examiner_csv(tmp_path):
    df = pd.DataFrame({"publish_date": [20100105, 20110310, 20120720, 20120721, 20130101],
                       "headline_text": ["Obama Visits Ohio", "Ten Things About Cats", "obama visits  OHIO",
                                         "Rock &amp; Roll Is Back", "New Year Fireworks"]})
    path = tmp_path / "examiner.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def http_root(shared_dir):
    handler = partial(SimpleHTTPRequestHandler, directory=str(shared_dir))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_examiner_csv_dates_and_dedupe(examiner_csv):
    df = load_headlines(examiner_csv)
    assert list(df.columns) == ["text", "date"]
    # "obama visits  OHIO" repeats "Obama Visits Ohio" up to case and spaces
    assert df["text"].tolist() == ["Obama Visits Ohio", "Ten Things About Cats", "Rock & Roll Is Back",
                                   "New Year Fireworks"]
    assert df["date"].iloc[0] == pd.Timestamp("2010-01-05")
    kept = load_headlines(examiner_csv, dedupe=False)
    assert len(kept) == 5


def test_examiner_date_range(examiner_csv):
    df = load_headlines(examiner_csv, start="2011-01-01", end="2012-12-31", dedupe=False)
    assert df["date"].dt.year.tolist() == [2011, 2012, 2012]


def test_generic_csv_named_column(tmp_path):
    path = tmp_path / "any.csv"
    pd.DataFrame({"id": [1, 2], "title": ["First One", "Second One"]}).to_csv(path, index=False)
    assert load_headlines(path)["text"].tolist() == ["First One", "Second One"]
    pd.DataFrame({"id": [1, 2], "headline": ["A b c", "D e f"]}).to_csv(path, index=False)
    assert load_headlines(path, text_col="headline")["text"].tolist() == ["A b c", "D e f"]


def test_txt_and_gz_skip_blank_lines(tmp_path):
    lines = "First headline\n\n  \nSecond headline\n"
    (tmp_path / "h.txt").write_text(lines, encoding="utf-8")
    with gzip.open(tmp_path / "h.txt.gz", "wt", encoding="utf-8") as f:
        f.write(lines)
    for name in ("h.txt", "h.txt.gz"):
        assert load_headlines(tmp_path / name, label="x")[["text", "label"]].values.tolist() == \
               [["First headline", "x"], ["Second headline", "x"]]


def test_in_memory_sources():
    items = ["One &amp; two", None, "", "Three\u200b four", "one & TWO"]
    expected = ["One & two", "Three four"]
    assert load_headlines(items)["text"].tolist() == expected
    assert load_headlines(pd.Series(items))["text"].tolist() == expected
    df = pd.DataFrame({"headline_text": items, "label": list("abcde")})
    out = load_headlines(df)
    assert out["text"].tolist() == expected and out["label"].tolist() == ["a", "d"]


def test_max_chars_sample_limit():
    items = [f"headline number {i}" for i in range(100)] + ["x" * 400]
    assert len(load_headlines(items)) == 100                     # default max_chars=300 drops the long one
    assert len(load_headlines(items, max_chars=None)) == 101
    a = load_headlines(items, sample=10, seed=1)["text"].tolist()
    assert a == load_headlines(items, sample=10, seed=1)["text"].tolist() and len(set(a)) == 10
    assert a != load_headlines(items, sample=10, seed=2)["text"].tolist()
    assert load_headlines(items, limit=3)["text"].tolist() == [f"headline number {i}" for i in range(3)]
    assert len(load_headlines(items, sample=0.5)) == 50


def test_url_download_verified_and_cached(http_root, shared_dir, tmp_path):
    data = (shared_dir / "clickbait.txt.gz").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    df = load_headlines(f"{http_root}/clickbait.txt.gz", sha256=sha, cache_dir=tmp_path)
    assert len(df) == len(load_headlines(shared_dir / "clickbait.txt.gz"))
    cached = list(tmp_path.glob("*clickbait.txt.gz"))
    assert len(cached) == 1 and cached[0].read_bytes() == data
    assert cached[0].with_name(cached[0].name + ".sha256").read_text().strip() == sha


def test_url_checksum_mismatch_and_404(http_root, tmp_path):
    with pytest.raises(HeadlineDataError, match="checksum mismatch"):
        load_headlines(f"{http_root}/clickbait.txt.gz", sha256="0" * 64, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-downloaded or unverified is left behind
    with pytest.raises(HeadlineSourceNotFound):
        load_headlines(f"{http_root}/missing.txt.gz", cache_dir=tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(HeadlineSourceNotFound, match="no such file") as e:
        load_headlines(tmp_path / "nope.csv")
    assert isinstance(e.value, FileNotFoundError)


@pytest.mark.parametrize("name", ["empty.csv", "empty.txt"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(HeadlineDataError, match="empty"):
        load_headlines(tmp_path / name)


def test_csv_without_column_names_what_it_found(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"id": [1], "body": ["x"]}).to_csv(path, index=False)
    with pytest.raises(HeadlineDataError, match=r"found \['id', 'body'\]"):
        load_headlines(path)
    with pytest.raises(HeadlineDataError, match=r"no column 'headline'.*found \['id', 'body'\]"):
        load_headlines(path, text_col="headline")


@pytest.mark.parametrize("name", ["bad.txt", "bad.csv"])
def test_undecodable_bytes_named_or_replaced(tmp_path, name):
    path = tmp_path / name
    header = b"headline_text\n" if name.endswith(".csv") else b""
    path.write_bytes(header + b"Good line\nBad \xff\xfe line\nAnother good one\n")
    bad_line = 3 if header else 2
    with pytest.raises(HeadlineDataError, match=rf"{name}: line {bad_line} .*not valid utf-8"):
        load_headlines(path)
    assert load_headlines(path, encoding_errors="replace")["text"].tolist() == \
           ["Good line", "Bad \ufffd\ufffd line", "Another good one"]


def test_all_nan_column(tmp_path):
    path = tmp_path / "nan.csv"
    pd.DataFrame({"headline_text": [np.nan, np.nan], "publish_date": [20100101, 20100102]}).to_csv(path, index=False)
    with pytest.raises(HeadlineDataError, match="no headlines left"):
        load_headlines(path)


def test_chakraborty_labels_and_holdout(corpus):
    assert set(corpus["label"]) == {"clickbait", "news"}
    assert 28_000 < len(corpus) <= 28_801
    train, held = split_holdout(corpus)
    assert 0.08 < len(held) / len(corpus) < 0.12
    assert not set(train["text"]) & set(held["text"])
    # membership depends on the headline alone, not on the order or company it is in
    shuffled = corpus.sample(frac=1, random_state=3)
    assert (holdout_mask(shuffled["text"]) == holdout_mask(corpus["text"])[shuffled.index]).all()


def test_stats_and_plot(examiner_csv, tmp_path, corpus):
    stats = headline_stats(load_headlines(examiner_csv))
    assert stats.count == 4 and stats.per_year == {2010: 1, 2011: 1, 2012: 1, 2013: 1}
    assert stats.words_per_headline["max"] == 4
    big = headline_stats(corpus)
    assert big.per_label["clickbait"] > 14_000 - 500
    assert dict(big.top_words)["things"] > 500  # listicles: "17 Things ..."
    assert "in the" in dict(big.top_bigrams)
    out = plot_headline_stats(load_headlines(examiner_csv), tmp_path / "plots" / "stats.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
