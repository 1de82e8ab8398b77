"""Words outside the vocabulary: the LM writes `xxunk` where a rare word goes, and `RareWords` fills the slot
with a rare word of the training headlines, drawn by the words around it.

A small vocabulary keeps the LM fast, but real headlines are full of rare words (41% of held-out clickbait holds
a word seen at most once in training); without them generated headlines only ever use the commonest words.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import BundleError
from .files import read_json, write_atomic
from .text import has_word_char

__all__ = ["RareWords"]

FORMAT = "clickbait-rare-words"
# Weights of the three evidence sources: the word before the slot, the word after it, and plain frequency.
BEFORE, AFTER, PRIOR = 0.4, 0.4, 0.2


def _marked_form(surfaces: Counter, token: str) -> str:
    # Keep a form only when its casing says more than "first word of a Title Case headline": NASA, McConaughey.
    form = surfaces.most_common(1)[0][0] if surfaces else token
    return form if any(ch.isupper() for ch in form[1:]) else form.lower()


@dataclass
class RareWords:
    """Rare training words (`words`, as most often written) with counts, and counts next to vocabulary tokens."""
    words: list[str]
    counts: np.ndarray
    after: dict[str, Counter] = field(default_factory=dict)   # vocabulary token -> rare-word index counts after it
    before: dict[str, Counter] = field(default_factory=dict)  # vocabulary token -> rare-word index counts before it

    @classmethod
    def learn(cls, token_lists: Iterable[Sequence[str]], raw_texts: Iterable[str], vocab: set[str],
              min_count: int = 1) -> "RareWords":
        """Count the out-of-vocabulary word tokens of tokenized headlines (`xxbos ... xxeos` included), with
        their neighbours, and the surface form each is most often written in (from `raw_texts`)."""
        counts, after, before = Counter(), defaultdict(Counter), defaultdict(Counter)
        for tokens in token_lists:
            for i, tok in enumerate(tokens):
                if tok in vocab or not has_word_char(tok):
                    continue
                counts[tok] += 1
                if i > 0 and tokens[i - 1] in vocab:
                    after[tokens[i - 1]][tok] += 1
                if i + 1 < len(tokens) and tokens[i + 1] in vocab:
                    before[tokens[i + 1]][tok] += 1
        kept = [w for w, c in counts.most_common() if c >= min_count]
        surfaces: dict[str, Counter] = defaultdict(Counter)
        wanted = set(kept)
        for text in raw_texts:
            for chunk in text.split():
                core = chunk.strip("\"'()[]{}!?,;:.\u201c\u201d\u2018\u2019")
                if core.lower() in wanted:
                    surfaces[core.lower()][core] += 1
        index = {w: i for i, w in enumerate(kept)}
        return cls(words=[_marked_form(surfaces[w], w) for w in kept],
                   counts=np.array([counts[w] for w in kept], dtype=np.float64),
                   after={t: Counter({index[w]: c for w, c in cs.items() if w in index}) for t, cs in after.items()},
                   before={t: Counter({index[w]: c for w, c in cs.items() if w in index}) for t, cs in before.items()})

    def __len__(self) -> int:
        return len(self.words)

    def distribution(self, previous: str, following: str) -> np.ndarray:
        """Probability of each rare word in a slot between vocabulary tokens `previous` and `following`."""
        probs = PRIOR * self.counts / self.counts.sum()
        spare = 1 - PRIOR
        for table, token, weight in ((self.after, previous, BEFORE), (self.before, following, AFTER)):
            seen = table.get(token)
            if seen:
                idx = np.fromiter(seen.keys(), dtype=np.int64)
                probs[idx] += weight * np.fromiter(seen.values(), dtype=np.float64) / sum(seen.values())
                spare -= weight
        probs += spare * self.counts / self.counts.sum()  # unseen context: its share goes to plain frequency
        return probs

    def fill(self, tokens: Sequence[str], uniforms: Sequence[float], unk: str = "xxunk",
             banned: frozenset[str] = frozenset()) -> list[str]:
        """`tokens` with each `unk` replaced by a rare word drawn with the next of `uniforms` (one per slot);
        `banned` words (lowercase) are never drawn."""
        out, draws = list(tokens), iter(uniforms)
        allowed = self._allowed(banned)
        for i, tok in enumerate(out):
            if tok != unk:
                continue
            probs = allowed * self.distribution(out[i - 1] if i else "xxbos",
                                                out[i + 1] if i + 1 < len(out) else "xxeos")
            cdf = np.cumsum(probs)
            # side="right": a zero-probability word (banned) is never picked, even by a draw of exactly 0
            out[i] = self.words[min(int(np.searchsorted(cdf, next(draws) * cdf[-1], side="right")),
                                    len(self.words) - 1)]
        return out

    def _allowed(self, banned: frozenset[str]) -> np.ndarray:
        if getattr(self, "_mask", (None,))[0] != banned:
            self._mask = (banned, np.array([w.lower() not in banned for w in self.words], dtype=np.float64))
        return self._mask[1]

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"format": FORMAT, "version": 1, "words": self.words, "counts": self.counts.astype(int).tolist(),
                "after": {t: dict(c) for t, c in self.after.items()},
                "before": {t: dict(c) for t, c in self.before.items()}}

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON (atomically)."""
        return write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RareWords":
        """Read a table saved by `save`; a missing, corrupt or inconsistent file raises `BundleError`."""
        state = read_json(path, BundleError, "rare-word table")
        try:
            if state["format"] != FORMAT:
                raise BundleError(f"{path}: not a clickbait rare-word table")
            words, counts = list(state["words"]), np.array(state["counts"], dtype=np.float64)
            tables = [{str(t): Counter({int(i): int(c) for i, c in cs.items()}) for t, cs in state[key].items()}
                      for key in ("after", "before")]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(f"{path}: rare-word table is missing or has a bad field ({e})") from None
        if len(words) != len(counts) or not len(words) or (counts <= 0).any() or \
                any(i < 0 or i >= len(words) for t in tables for cs in t.values() for i in cs):
            raise BundleError(f"{path}: rare-word table is inconsistent (words, counts and indices disagree)")
        return cls(words, counts, *tables)
