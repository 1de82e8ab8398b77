"""A newsroom's archive of published headlines: generation never returns one of them or one sharing a 5-word run
with one, and `check_headlines` names the archive headline a candidate overlaps.

The archive keeps sorted 64-bit hashes of every 5-word run (a headline of fewer words: of the whole headline; a
headline equal to an archive one shares its runs) in a NumPy array searched with `searchsorted`, and the
headlines themselves to report overlaps.
"""
from __future__ import annotations

import gzip
import os
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import HeadlineDataError
from .text import TOKEN

__all__ = ["Archive", "RUN_WORDS", "load_archive"]

RUN_WORDS = 5  # a shared run of this many words (and punctuation marks) counts as a copy, as in `copy_rate`

ArchiveSource = str | os.PathLike | Iterable[str]


def _run_hashes(text: str) -> list[int]:
    # Python's tuple hash: 64-bit and fast; it differs between processes, which is fine for an in-memory index.
    tokens = TOKEN.findall(text.lower())
    if len(tokens) < RUN_WORDS:
        return [hash(tuple(tokens))] if tokens else []
    return [hash(tuple(tokens[i:i + RUN_WORDS])) for i in range(len(tokens) - RUN_WORDS + 1)]


@dataclass
class Archive:
    """Published headlines with the sorted hashes of their 5-word runs."""
    texts: list[str]
    run_keys: np.ndarray  # sorted int64 hashes of every 5-word run (of a shorter headline: the whole headline)
    run_rows: np.ndarray  # the headline (index into `texts`) each run comes from
    source: str           # what it was read from, for a batch job's record

    @classmethod
    def from_texts(cls, texts: Iterable[str], source: str = "<list>") -> Archive:
        """An archive of `texts` (non-empty str); an empty one is refused."""
        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise HeadlineDataError(f"archive {source}: holds no headlines")
        keys, rows = array("q"), array("i")  # 8 and 4 bytes a run, not a Python int each
        for row, text in enumerate(texts):
            runs = _run_hashes(text)
            keys.extend(runs)
            rows.extend([row] * len(runs))
        keys, rows = np.frombuffer(keys, dtype=np.int64), np.frombuffer(rows, dtype=np.int32)
        order = np.argsort(keys, kind="stable")
        return cls(texts, keys[order], rows[order], source)

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, keep: np.ndarray) -> Archive:
        """The archive of the headlines where `keep` (one bool per headline) is True, without hashing them again."""
        rows = np.flatnonzero(keep)
        if not len(rows):
            raise HeadlineDataError(f"archive {self.source}: holds no headlines")
        renumber = np.full(len(self.texts), -1, dtype=np.int32)
        renumber[rows] = np.arange(len(rows), dtype=np.int32)
        kept_runs = np.asarray(keep, dtype=bool)[self.run_rows]  # a subset of sorted keys stays sorted
        return Archive([self.texts[i] for i in rows], self.run_keys[kept_runs], renumber[self.run_rows[kept_runs]],
                       self.source)

    def overlap(self, text: str) -> str | None:
        """The archive headline that `text` equals or shares a 5-word run with (None if none)."""
        queries = np.array(_run_hashes(text), dtype=np.int64)
        pos = np.searchsorted(self.run_keys, queries).clip(max=len(self.run_keys) - 1)
        hits = pos[self.run_keys[pos] == queries]
        return self.texts[int(self.run_rows[hits[0]])] if len(hits) else None

    def overlaps(self, texts: Iterable[str]) -> np.ndarray:
        """True where a headline equals or shares a 5-word run with an archive headline."""
        return np.array([self.overlap(t) is not None for t in texts], dtype=bool)


def load_archive(source: ArchiveSource | Archive) -> Archive:
    """An `Archive` from a headline file (any `load_headlines` file: .txt, .txt.gz, .csv) or a list of headlines."""
    if isinstance(source, Archive):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise HeadlineDataError(f"archive {path}: no such file")
        stat = path.stat()
        return _load_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return Archive.from_texts(list(source))


@lru_cache(maxsize=2)
def _load_file(path: str, size: int, mtime: int) -> Archive:
    if path.lower().endswith(".csv"):
        from .data import load_headlines  # pandas, for the headline column of a CSV
        try:
            texts = load_headlines(path, dedupe=False, max_chars=None)["text"].tolist()
        except HeadlineDataError as e:
            raise HeadlineDataError(f"archive: {e}") from None
        return Archive.from_texts(texts, path)
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            return Archive.from_texts(f.read().split("\n"), path)
    except (UnicodeDecodeError, OSError) as e:
        raise HeadlineDataError(f"archive {path}: not a UTF-8 headline file ({e})") from None
