"""Headline corpus readers: Examiner CSV, any CSV, txt/txt.gz, DataFrames, lists and URLs, plus corpus statistics."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
import pandas as pd

from .errors import HeadlineDataError, HeadlineSourceNotFound
from .files import atomic_path, write_atomic
from .text import clean_headline, headline_hash, normalise_headline
from .text import words as headline_words

__all__ = ["load_headlines", "load_chakraborty", "load_corpus", "holdout_mask", "split_holdout", "fetch_url",
           "headline_stats", "HeadlineStats", "plot_headline_stats", "TEXT_COLUMNS"]

HeadlineSource = Union[str, os.PathLike, pd.DataFrame, pd.Series, Sequence[str]]

TEXT_COLUMNS = ("headline_text", "text", "headline", "title")
EXAMINER_DATE = "publish_date"
CSV_CHUNK_ROWS = 250_000
MANIFEST = Path(__file__).resolve().parent.parent / "data" / "manifest.json"


def holdout_mask(texts: Iterable[str], frac: float = 0.1) -> np.ndarray:
    """True for headlines in the project's fixed held-out slice, chosen by hash so it never depends on order."""
    buckets = np.array([headline_hash(t) for t in texts], dtype=np.int64).view(np.uint64) % np.uint64(1000)
    return buckets < np.uint64(round(frac * 1000))


def split_holdout(df: pd.DataFrame, frac: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, held-out) by headline hash; the held-out part is never used for training or selection."""
    mask = holdout_mask(df["text"], frac)
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- sources

def _manifest_sha256(url: str) -> str | None:
    if not MANIFEST.exists():
        return None
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]
    return next((e["sha256"] for e in entries if e["url"] == url), None)


def fetch_url(url: str, cache_dir: str | os.PathLike | None = None, sha256: str | None = None,
              refresh: bool = False) -> Path:
    """Download `url` once into `cache_dir` and verify its sha256 (given, or from data/manifest.json).

    The cache is keyed by the whole URL, with the file's sha256 recorded beside it (`<file>.sha256`). A cached
    copy is used while it matches the expected sha256 (when one is known); `refresh=True` downloads it again
    (or delete the cached file, or the cache folder, `$CLICKBAIT_CACHE` or ~/.cache/clickbait)."""
    cache = Path(cache_dir or os.environ.get("CLICKBAIT_CACHE", Path.home() / ".cache" / "clickbait"))
    cache.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    sha256 = sha256 or _manifest_sha256(url)
    dest = cache / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]}-{name}"
    recorded = dest.with_name(dest.name + ".sha256")
    if not refresh and dest.exists() and recorded.exists() and \
            (sha256 is None or recorded.read_text().strip() == sha256 == _sha256(dest)):
        return dest
    try:
        with atomic_path(dest) as tmp:  # a half-downloaded file never sits under the cached name
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            got = _sha256(tmp)
            if sha256 and got != sha256:
                raise HeadlineDataError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        write_atomic(recorded, got + "\n")
    except OSError as e:
        if isinstance(e, FileNotFoundError) or getattr(e, "code", None) == 404:
            raise HeadlineSourceNotFound(f"{url}: not found ({e})") from e
        raise HeadlineDataError(f"{url}: download failed ({e})") from e
    return dest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _first_bad_line(path: Path, encoding: str) -> tuple[int, bytes]:
    with _open_bytes(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return lineno, raw[:60]
    return 0, b""


def _decode_error(path: Path, encoding: str, err: UnicodeDecodeError) -> HeadlineDataError:
    lineno, raw = _first_bad_line(path, encoding)
    where = f"line {lineno} ({raw!r})" if lineno else f"byte {err.start}"
    return HeadlineDataError(f"{path}: {where} is not valid {encoding}; "
                             f"pass encoding_errors='replace' to replace undecodable bytes")


def _read_lines(path: Path, encoding: str, errors: str) -> pd.DataFrame:
    lines: list[str] = []
    with _open_bytes(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                lines.append(raw.decode(encoding, errors=errors))
            except UnicodeDecodeError:
                raise HeadlineDataError(f"{path}: line {lineno} ({raw[:60]!r}) is not valid {encoding}; "
                                        f"pass encoding_errors='replace' to replace undecodable bytes") from None
    return pd.DataFrame({"text": lines})


def _csv_columns(path: Path, encoding: str, errors: str) -> list[str]:
    try:
        return list(pd.read_csv(path, nrows=0, encoding=encoding, encoding_errors=errors).columns)
    except pd.errors.EmptyDataError:
        raise HeadlineDataError(f"{path}: the file is empty") from None
    except UnicodeDecodeError as e:
        raise _decode_error(path, encoding, e) from None


def _read_csv(path: Path, text_col: str | None, encoding: str, errors: str,
              start: str | None, end: str | None, max_chars: int | None, label_col: str | None) -> pd.DataFrame:
    columns = _csv_columns(path, encoding, errors)
    if text_col is None:
        text_col = next((c for c in TEXT_COLUMNS if c in columns), None)
        if text_col is None:
            raise HeadlineDataError(f"{path}: no headline column; looked for {list(TEXT_COLUMNS)}, "
                                    f"found {columns}. Pass text_col=...")
    elif text_col not in columns:
        raise HeadlineDataError(f"{path}: no column {text_col!r}; found {columns}")
    if label_col is not None and label_col not in columns:
        raise HeadlineDataError(f"{path}: no label column {label_col!r}; found {columns}")
    has_date = EXAMINER_DATE in columns
    usecols = [text_col] + ([EXAMINER_DATE] if has_date else []) + ([label_col] if label_col else [])
    # Chunks keep peak memory near the size of the kept text, not of pandas' parse buffers for 3M rows.
    parts = []
    try:
        reader = pd.read_csv(path, usecols=usecols, chunksize=CSV_CHUNK_ROWS, encoding=encoding,
                             encoding_errors=errors, dtype={text_col: "string"}, keep_default_na=False,
                             na_values=[""])
        for chunk in reader:
            part = pd.DataFrame({"text": chunk[text_col]})
            if label_col:
                part["label"] = chunk[label_col].astype("string")
            if has_date:
                part["date"] = pd.to_datetime(chunk[EXAMINER_DATE].astype("string"), format="%Y%m%d",
                                              errors="coerce")
            parts.append(_tidy(part, start, end, max_chars))
    except UnicodeDecodeError as e:
        raise _decode_error(path, encoding, e) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise HeadlineDataError(f"{path}: not a readable CSV ({e})") from None
    if not parts:
        raise HeadlineDataError(f"{path}: the file has a header but no rows")
    return pd.concat(parts, ignore_index=True)


def _tidy(df: pd.DataFrame, start: str | None, end: str | None, max_chars: int | None) -> pd.DataFrame:
    """Clean text, drop empty rows, apply date range and length limits (per chunk, so memory stays bounded)."""
    text = df["text"].astype("string")
    df = df.assign(text=text.map(clean_headline, na_action="ignore"))
    df = df[df["text"].notna() & (df["text"].str.len() > 0)]
    if "date" in df and (start or end):
        df = df[df["date"].between(pd.Timestamp(start or "1000-01-01"), pd.Timestamp(end or "2999-12-31"))]
    if max_chars:
        df = df[df["text"].str.len() <= max_chars]
    return df


def _frame_from(source: HeadlineSource, text_col: str | None, encoding: str, errors: str,
                cache_dir, sha256, start, end, max_chars, label_col) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        col = text_col or next((c for c in TEXT_COLUMNS if c in source.columns), None)
        if col is None or col not in source.columns:
            raise HeadlineDataError(f"DataFrame has no headline column {text_col or list(TEXT_COLUMNS)}; "
                                    f"found {list(source.columns)}")
        df = pd.DataFrame({"text": source[col].to_numpy()})
        if label_col is not None and label_col not in source.columns:
            raise HeadlineDataError(f"DataFrame has no label column {label_col!r}; found {list(source.columns)}")
        for extra, name in (("date", "date"), (label_col or "label", "label")):
            if extra in source.columns and extra != col:
                df[name] = source[extra].to_numpy()
        return _tidy(df, start, end, max_chars), "DataFrame"
    if label_col is not None and not isinstance(source, (str, os.PathLike)):
        raise HeadlineDataError(f"label_col={label_col!r} needs a CSV file or a DataFrame, "
                                f"not a {type(source).__name__}")
    if isinstance(source, pd.Series):
        return _tidy(pd.DataFrame({"text": source.to_numpy()}), start, end, max_chars), "Series"
    if isinstance(source, (list, tuple)):
        if not all(isinstance(s, str) or s is None for s in source):
            raise HeadlineDataError("a headline list must hold str items")
        return _tidy(pd.DataFrame({"text": list(source)}, dtype="string"), start, end, max_chars), "list"
    if not isinstance(source, (str, os.PathLike)):
        raise HeadlineDataError(f"unsupported headline source type {type(source).__name__}")
    source = str(source)
    if re.match(r"^https?://", source):
        path = fetch_url(source, cache_dir, sha256)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise HeadlineSourceNotFound(f"{path}: no such file")
        if path.is_dir():
            raise HeadlineDataError(f"{path}: is a directory, expected a .csv, .txt or .txt.gz file")
    if path.stat().st_size == 0:
        raise HeadlineDataError(f"{path}: the file is empty")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return _read_csv(path, text_col, encoding, errors, start, end, max_chars, label_col), str(path)
    if label_col is not None:
        raise HeadlineDataError(f"{path}: a text file has one headline per line and no label column; "
                                f"labels ({label_col!r}) need a CSV")
    return _tidy(_read_lines(path, encoding, errors), start, end, max_chars), str(path)


def load_headlines(source: HeadlineSource, *, text_col: str | None = None, label_col: str | None = None,
                   label: str | None = None,
                   start: str | None = None, end: str | None = None, dedupe: bool = True,
                   max_chars: int | None = 300, limit: int | None = None, sample: int | float | None = None,
                   seed: int = 0, encoding: str = "utf-8", encoding_errors: str = "strict",
                   cache_dir: str | os.PathLike | None = None, sha256: str | None = None) -> pd.DataFrame:
    """Read headlines from a path, URL, DataFrame, Series or list into a DataFrame with `text` (+ `date`, `label`).

    `label_col` names a CSV/DataFrame column read as `label`; `label` gives every row the same label instead.
    `start`/`end` bound `publish_date` (Examiner CSV), `dedupe` drops case/space-insensitive repeats,
    `max_chars` drops over-long rows, `sample` (count or fraction) draws at random with `seed`,
    `limit` keeps the first rows. `encoding_errors='replace'` replaces undecodable bytes instead of failing.
    """
    df, origin = _frame_from(source, text_col, encoding, encoding_errors, cache_dir, sha256, start, end, max_chars,
                             label_col)
    if len(df) == 0:
        raise HeadlineDataError(f"{origin}: no headlines left (all empty or NaN, or filtered out)")
    if dedupe:
        df = df[~df["text"].map(normalise_headline).duplicated()]
    if sample is not None:
        df = df.sample(frac=sample, random_state=seed) if isinstance(sample, float) else \
            df.sample(n=min(int(sample), len(df)), random_state=seed)
    if limit is not None:
        df = df.head(limit)
    if label is not None:
        df = df.assign(label=label)
    return df.reset_index(drop=True).astype({"text": "string"})


def load_chakraborty(folder: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """Both files of the Chakraborty et al. 2016 corpus, labelled `clickbait` and `news`."""
    folder = Path(folder)
    parts = [load_headlines(folder / "clickbait.txt.gz", label="clickbait", **kwargs),
             load_headlines(folder / "non_clickbait.txt.gz", label="news", **kwargs)]
    df = pd.concat(parts, ignore_index=True)
    # A headline in both files is ambiguous evidence for the classifier and a leak for the LM split.
    return df[~df["text"].map(normalise_headline).duplicated(keep=False)].reset_index(drop=True)


def load_corpus(source: HeadlineSource, **kwargs) -> pd.DataFrame:
    """A Chakraborty-format folder (both files, labelled) or any headline source `load_headlines` reads."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        kwargs.pop("label_col", None)
        kwargs.pop("text_col", None)
        return load_chakraborty(source, **kwargs)
    return load_headlines(source, **kwargs)


# ----------------------------------------------------------------------------------------------- statistics

_STOP = frozenset("the a an of to in on and for is are with at by from as you your this that it be".split())


@dataclass
class HeadlineStats:
    """Corpus summary: size, words per headline, frequent words and bigrams, headlines per year."""
    count: int
    words_per_headline: dict[str, float]
    length_counts: dict[int, int]
    top_words: list[tuple[str, int]]
    top_bigrams: list[tuple[str, int]]
    per_year: dict[int, int] = field(default_factory=dict)
    per_label: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        w = self.words_per_headline
        lines = [f"headlines: {self.count:,}",
                 f"words per headline: mean {w['mean']:.1f}, median {w['50%']:.0f}, "
                 f"p5 {w['5%']:.0f}, p95 {w['95%']:.0f}, max {w['max']:.0f}",
                 "top words: " + ", ".join(f"{t} ({c:,})" for t, c in self.top_words[:15]),
                 "top bigrams: " + ", ".join(f"{t} ({c:,})" for t, c in self.top_bigrams[:10])]
        if self.per_label:
            lines.append("per label: " + ", ".join(f"{k}: {v:,}" for k, v in self.per_label.items()))
        if self.per_year:
            lines.append("per year: " + ", ".join(f"{k}: {v:,}" for k, v in self.per_year.items()))
        return "\n".join(lines)


def headline_stats(df: pd.DataFrame, top: int = 30) -> HeadlineStats:
    """Count, words-per-headline distribution, top words (stopwords left out) and bigrams, per-year counts."""
    words = [headline_words(t) for t in df["text"]]
    lengths = pd.Series([len(w) for w in words], dtype="int64")
    unigrams = Counter(w for ws in words for w in ws if w not in _STOP)
    bigrams = Counter(f"{a} {b}" for ws in words for a, b in zip(ws, ws[1:]))
    desc = lengths.describe(percentiles=[0.05, 0.5, 0.95])
    per_year = {}
    if "date" in df and df["date"].notna().any():
        per_year = {int(y): int(c) for y, c in df["date"].dt.year.value_counts().sort_index().items()}
    per_label = {str(k): int(v) for k, v in df["label"].value_counts().items()} if "label" in df else {}
    return HeadlineStats(count=len(df), words_per_headline={k: float(v) for k, v in desc.items()},
                         length_counts={int(k): int(v) for k, v in lengths.value_counts().sort_index().items()},
                         top_words=unigrams.most_common(top), top_bigrams=bigrams.most_common(top),
                         per_year=per_year, per_label=per_label)


def plot_headline_stats(df: pd.DataFrame, path: str | os.PathLike, top: int = 20) -> Path:
    """Write a PNG with words-per-headline histogram, top words, top bigrams and (if dated) headlines per year."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = headline_stats(df, top=top)
    panels = 4 if stats.per_year else 3
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5))
    axes[0].bar(list(stats.length_counts), list(stats.length_counts.values()), color="tab:blue")
    axes[0].set(title=f"Words per headline (n={stats.count:,})", xlabel="words", ylabel="headlines")
    for ax, pairs, title in ((axes[1], stats.top_words, "Top words"), (axes[2], stats.top_bigrams, "Top bigrams")):
        labels, counts = zip(*pairs[:top][::-1]) if pairs else ((), ())
        ax.barh(labels, counts, color="tab:orange")
        ax.set(title=title, xlabel="count")
    if stats.per_year:
        axes[3].bar([str(y) for y in stats.per_year], list(stats.per_year.values()), color="tab:green")
        axes[3].set(title="Headlines per year", ylabel="headlines")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

