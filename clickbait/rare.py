"""Words outside the vocabulary: the LM writes `xxunk` where a rare word goes, and `RareWords` fills the slot
with a rare word of the training headlines, drawn by the words around it and, with `RareContexts`, by what the LM
knew at the slot: each training occurrence of a rare word keeps the LM's state before it, and a slot draws the
words whose occurrences followed states like its own (a nearest-neighbour LM over rare words, as kNN-LM).

A small vocabulary keeps the LM fast, but real headlines are full of rare words (41% of held-out clickbait holds
a word seen at most once in training); without them generated headlines only ever use the commonest words.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import BundleError
from .files import read_json, write_atomic
from .models import lm_contexts
from .text import has_word_char
from .tokenizer import UNK, HeadlineTokenizer, unknown_class

__all__ = ["RareWords", "RareContexts", "rare_slots"]

FORMAT = "clickbait-rare-words"
# Weights of the three evidence sources: the word before the slot, the word after it, and plain frequency.
BEFORE, AFTER, PRIOR = 0.4, 0.4, 0.2
# Context keys keep this many principal components of the LM state; a slot's neighbours are weighted by
# exp(cosine / KNN_TEMPERATURE), and their words get KNN_WEIGHT of the slot's distribution.
KEY_DIM, KNN_TEMPERATURE, KNN_WEIGHT = 64, 0.2, 0.5


def rare_slots(tokens: Sequence[str], vocab: set[str]) -> list[int]:
    """Positions of the word tokens outside `vocab`: the slots the LM writes as `xxunk`."""
    return [i for i, tok in enumerate(tokens) if tok not in vocab and has_word_char(tok)]


@dataclass
class RareContexts:
    """One key per training occurrence of a rare word (the LM state before it, projected and unit length)."""
    mean: np.ndarray        # (emb,) state mean, removed before projecting
    projection: np.ndarray  # (emb, KEY_DIM) principal directions of the states
    keys: np.ndarray        # (occurrences, KEY_DIM)
    words: np.ndarray       # (occurrences,) index of the rare word each key preceded

    @classmethod
    def learn(cls, states: np.ndarray, words: np.ndarray, dim: int = KEY_DIM) -> "RareContexts":
        """Keys from LM `states` (occurrences, emb) before the rare words `words` (indices)."""
        mean = states.mean(0)
        dim = min(dim, *states.shape)
        projection = np.linalg.svd(states - mean, full_matrices=False)[2][:dim].T
        ctx = cls(mean.astype(np.float32), projection.astype(np.float32), np.zeros((0, dim), np.float32), words)
        ctx.keys = ctx.key(states)
        return ctx

    def key(self, states: np.ndarray) -> np.ndarray:
        """Unit-length keys of LM states (n, emb)."""
        keys = (np.asarray(states, dtype=np.float32) - self.mean) @ self.projection
        return keys / np.clip(np.linalg.norm(keys, axis=-1, keepdims=True), 1e-6, None)

    def distribution(self, state: np.ndarray, n_words: int) -> np.ndarray:
        """Probability of each rare word after LM `state` (emb,), by its occurrences' similar states."""
        similarity = self.keys @ self.key(state[None])[0]
        weights = np.exp((similarity - similarity.max()) / KNN_TEMPERATURE)
        probs = np.bincount(self.words, weights=weights, minlength=n_words)
        return probs / probs.sum()

    def save(self, path: str | os.PathLike) -> Path:
        """Write as safetensors."""
        tensors = {"mean": self.mean, "projection": self.projection, "keys": self.keys.astype(np.float16),
                   "words": self.words.astype(np.int64)}
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, str(path),
                  metadata={"format": FORMAT})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, n_words: int) -> "RareContexts":
        """Read keys saved by `save` for a table of `n_words` words; anything corrupt or inconsistent raises
        `BundleError`."""
        try:
            t = {k: v.numpy().copy() for k, v in load_file(str(path)).items()}  # no view of a file that may change
            ctx = cls(t["mean"].astype(np.float32), t["projection"].astype(np.float32),
                      t["keys"].astype(np.float32), t["words"])
        except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as e:
            raise BundleError(f"{path}: corrupt or incomplete rare-word contexts ({e})") from None
        emb, dim = ctx.projection.shape if ctx.projection.ndim == 2 else (-1, -1)
        if ctx.mean.shape != (emb,) or ctx.keys.ndim != 2 or ctx.keys.shape[1] != dim or \
                ctx.words.shape != (len(ctx.keys),) or ctx.words.dtype != np.int64 or not len(ctx.words) or \
                ctx.words.min() < 0 or ctx.words.max() >= n_words or \
                not all(np.isfinite(a).all() for a in (ctx.mean, ctx.projection, ctx.keys)):
            raise BundleError(f"{path}: rare-word contexts are inconsistent with each other or the word table")
        return ctx

    @classmethod
    def from_lm(cls, model: nn.Module, token_lists: Sequence[Sequence[str]], tokenizer: HeadlineTokenizer,
                table: "RareWords") -> "RareContexts | None":
        """Keys for every occurrence of `table`'s words in tokenized headlines, from LM `model`'s states."""
        index = {w.lower(): i for i, w in enumerate(table.words)}
        ids, positions, words = [], [], []
        vocab = set(tokenizer.o2i)
        for tokens in token_lists:
            slots = [i for i in rare_slots(tokens, vocab) if tokens[i] in index]
            if slots:
                ids.append(tokenizer.numericalize(tokens))
                positions.append(slots)
                words += [index[tokens[i]] for i in slots]
        if not words:
            return None
        training = model.training
        model.eval()  # no dropout in the states
        states = torch.cat(lm_contexts(model, ids, positions, prime=[tokenizer.o2i["xxeos"]])).numpy()
        model.train(training)
        return cls.learn(states, np.array(words, dtype=np.int64))


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
    contexts: RareContexts | None = None  # LM states before each occurrence, when the bundle has them

    @classmethod
    def learn(cls, token_lists: Iterable[Sequence[str]], raw_texts: Iterable[str], vocab: set[str],
              min_count: int = 1) -> "RareWords":
        """Count the out-of-vocabulary word tokens of tokenized headlines (`xxbos ... xxeos` included), with
        their neighbours, and the surface form each is most often written in (from `raw_texts`)."""
        counts, after, before = Counter(), defaultdict(Counter), defaultdict(Counter)
        for tokens in token_lists:
            for i in rare_slots(tokens, vocab):
                tok = tokens[i]
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

    def distribution(self, previous: str, following: str, state: np.ndarray | None = None) -> np.ndarray:
        """Probability of each rare word in a slot between vocabulary tokens `previous` and `following`, and
        after LM `state` when the table has context keys."""
        probs = PRIOR * self.counts / self.counts.sum()
        spare = 1 - PRIOR
        for table, token, weight in ((self.after, previous, BEFORE), (self.before, following, AFTER)):
            seen = table.get(token)
            if seen:
                idx = np.fromiter(seen.keys(), dtype=np.int64)
                probs[idx] += weight * np.fromiter(seen.values(), dtype=np.float64) / sum(seen.values())
                spare -= weight
        probs += spare * self.counts / self.counts.sum()  # unseen context: its share goes to plain frequency
        if state is None or self.contexts is None:
            return probs
        return (1 - KNN_WEIGHT) * probs + KNN_WEIGHT * self.contexts.distribution(state, len(self.words))

    def fill(self, tokens: Sequence[str], uniforms: Sequence[float], slots: frozenset[str] = frozenset([UNK]),
             banned: frozenset[str] = frozenset(), states: Sequence[np.ndarray | None] = ()) -> tuple[list[str], float]:
        """`tokens` with each slot token (`slots`: `xxunk`, and the unknown-word classes of a tokenizer that has
        them) replaced by a rare word drawn with the next of `uniforms` (one per slot), and the summed log-probability
        of the words drawn; with classes, a slot draws the words of its class. `banned` words (lowercase) are never
        drawn. `states` (one per slot, None for none) are the LM's states before them."""
        out, draws, slot_states, log_prob = list(tokens), iter(uniforms), iter(states), 0.0
        allowed = self._allowed(banned)
        for i, tok in enumerate(out):
            if tok not in slots:
                continue
            probs = allowed * self.distribution(out[i - 1] if i else "xxbos",
                                                out[i + 1] if i + 1 < len(out) else "xxeos",
                                                next(slot_states, None))
            if len(slots) > 1:
                in_class = probs * (self._classes == tok)
                probs = in_class if in_class.sum() > 0 else probs  # a class no rare word has (a tiny corpus): any word
            cdf = np.cumsum(probs)
            # side="right": a zero-probability word (banned) is never picked, even by a draw of exactly 0
            pick = min(int(np.searchsorted(cdf, next(draws) * cdf[-1], side="right")), len(self.words) - 1)
            out[i], log_prob = self.words[pick], log_prob + float(np.log(probs[pick] / cdf[-1]))
        return out, log_prob

    @cached_property
    def _classes(self) -> np.ndarray:
        return np.array([unknown_class(w.lower()) for w in self.words])

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
