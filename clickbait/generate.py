"""generate_headlines: batched sampling from a headline LM with exact word lengths, uniqueness and novelty."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .bundle import Bundle, ModelRef, resolve_bundle
from .data import clean_headline, headline_hash
from .models import score_ids
from .tokenizer import STYLES, count_words, detokenize, glues_left, glues_right, has_word_char

__all__ = ["generate_headlines", "score_headlines", "HeadlineSampler", "GenerationError", "DEFAULT_BANNED_WORDS",
           "SamplingConfig", "most_clickbaity"]

# Slurs and profanity seen in the training data; output containing any of them is never returned.
DEFAULT_BANNED_WORDS = frozenset("""
fuck fucks fucked fucking fucker fuckers motherfucker motherfuckers shit shits shitty bullshit bitch bitches
bitchy cunt cunts dick dicks dickhead cock cocks pussy pussies asshole assholes whore whores slut sluts
bastard bastards nigger niggers nigga niggas faggot faggots fag fags retard retarded tranny trannies dyke
dykes spic spics chink chinks kike kikes wetback wetbacks twat twats wanker wankers ass asses arse arses
dumbass jackass tits titties piss pissed pissing
""".split())
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def balanced(text: str) -> bool:
    """True when quotes and brackets pair up: a headline with a dangling `"` or `(` reads as broken."""
    if text.count('"') % 2 or text.count("\u201c") != text.count("\u201d"):
        return False
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and '""' not in text


class GenerationError(ValueError):
    """generate_headlines cannot satisfy the request (bad arguments, or attempts exhausted)."""


@dataclass(frozen=True)
class SamplingConfig:
    """How each next token is drawn."""
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = 0.95


class _TokenTable:
    """Per-vocab-token facts the decoding loop needs as tensors: letters/digits, glue, and banned ids."""

    def __init__(self, bundle: Bundle, banned: frozenset[str]):
        vocab = bundle.tokenizer.vocab
        self.alnum = torch.tensor([has_word_char(t) and not t.startswith("xx") for t in vocab])
        self.glue_left = torch.tensor([glues_left(t) for t in vocab])
        self.glue_right = torch.tensor([glues_right(t) for t in vocab])
        self.eos = bundle.tokenizer.o2i["xxeos"]
        never = [i for i, t in enumerate(vocab) if t.startswith("xx") and t != "xxeos"]
        never += [i for i, t in enumerate(vocab) if t in banned]
        self.never = torch.tensor(sorted(set(never)), dtype=torch.long)


def _validate(n, min_len, max_len, cfg: SamplingConfig, style: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise GenerationError(f"n must be an int, got {type(n).__name__}")
    if n <= 0:
        raise GenerationError(f"n must be at least 1, got {n}")
    for name, value in (("min_len", min_len), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise GenerationError(f"{name} must be an int, got {type(value).__name__}")
    if min_len < 1:
        raise GenerationError(f"min_len must be at least 1, got {min_len}")
    if min_len > max_len:
        raise GenerationError(f"min_len ({min_len}) is greater than max_len ({max_len})")
    if not cfg.temperature > 0:
        raise GenerationError(f"temperature must be > 0, got {cfg.temperature}")
    if cfg.top_p is not None and not 0 < cfg.top_p <= 1:
        raise GenerationError(f"top_p must be in (0, 1], got {cfg.top_p}")
    if cfg.top_k is not None and cfg.top_k < 1:
        raise GenerationError(f"top_k must be at least 1, got {cfg.top_k}")
    if style not in STYLES:
        raise GenerationError(f"style must be one of {STYLES}, got {style!r}")


# Sampling looks at the most likely NUCLEUS_CAP tokens only: a partial top-k is ~10x cheaper than sorting the
# whole vocabulary, and past this rank the tokens hold a negligible share of the probability after top-p.
NUCLEUS_CAP = 256
# Most rows' nucleus fits in far fewer tokens; a top-NUCLEUS_FIRST pass serves those (same draw, 2.5x cheaper).
NUCLEUS_FIRST = 64


def _head(probs: torch.Tensor, cfg: SamplingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted head of each row: the top-k tokens (at most NUCLEUS_CAP), or with top-p just enough of them."""
    cap = min(cfg.top_k or NUCLEUS_CAP, NUCLEUS_CAP, probs.size(-1))
    if cfg.top_p is None or cfg.top_p >= 1 or cap <= NUCLEUS_FIRST:
        return torch.topk(probs, cap, dim=-1)
    head, idx = torch.topk(probs, NUCLEUS_FIRST, dim=-1)
    short = head.sum(-1) < cfg.top_p  # nucleus wider than the first pass: those rows take the full cap
    head = F.pad(head, (0, cap - NUCLEUS_FIRST))
    idx = F.pad(idx, (0, cap - NUCLEUS_FIRST))
    if short.any():
        head[short], idx[short] = torch.topk(probs[short], cap, dim=-1)
    return head, idx


def _draw(logits: torch.Tensor, uniforms: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Temperature, top-k and top-p on the sorted head of the distribution, then inverse-CDF sampling with each
    row's own uniform draw, so a row's token never depends on which other rows share its batch."""
    probs, idx = _head(F.softmax(logits / cfg.temperature, -1), cfg)
    if cfg.top_p is not None and cfg.top_p < 1:
        probs = probs.masked_fill(probs.cumsum(-1) - probs > cfg.top_p, 0.0)  # keeps the token crossing top_p
    cdf = probs.double().cumsum(-1)
    pick = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1)).clamp_max(cdf.size(-1) - 1)
    return idx.gather(-1, pick).squeeze(-1)


@torch.inference_mode()
@torch.backends.mkldnn.flags(enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None)
def _sample_batch(bundle: Bundle, table: _TokenTable, prefix_ids: list[int], prefix_words: int, glue: bool,
                  uniforms: torch.Tensor, min_len: int, max_len: int, cfg: SamplingConfig):
    """Advance every live row one token per step from the shared prefix; return token ids, finished mask, log-probs.

    Rows leave the batch as soon as they end or run past max_len; rows never interact, so this only saves work.
    oneDNN is off here: it caches a primitive per batch shape, and shrinking batches made a batch job's memory grow
    without bound (+15 MB per 1,000 headlines); PyTorch's own LSTM kernel is as fast at these sizes.
    """
    model, rows, steps = bundle.model, uniforms.size(0), uniforms.size(1)
    model.reset()
    # Every row starts from the same prefix: feed it once, then copy the state to all rows.
    encoder = model[0]
    logits = model[1](encoder(torch.tensor([prefix_ids])))[0][:, -1].expand(rows, -1).clone()
    encoder.hidden = [(h.expand(-1, rows, -1).contiguous(), c.expand(-1, rows, -1).contiguous())
                      for h, c in encoder.hidden]
    encoder.bs = rows
    live = torch.arange(rows)                           # original row index of each row still in the batch
    words = torch.full((rows,), prefix_words)
    glue_next = torch.full((rows,), glue)              # does the next token join the current word?
    in_word = torch.full((rows,), prefix_words > 0)    # does the current word already hold a letter or digit?
    out = torch.full((rows, steps), table.eos)
    done, logprob = torch.zeros(rows, dtype=torch.bool), torch.zeros(rows, dtype=torch.float64)
    for step in range(steps):
        logits[:, table.never] = float("-inf")
        logits[words < min_len, table.eos] = float("-inf")   # no end of headline before min_len words
        token = _draw(logits, uniforms[live, step], cfg)
        logprob[live] += (logits.gather(-1, token[:, None]).squeeze(-1) - logits.logsumexp(-1)).double()
        out[live, step] = token
        ended = token == table.eos
        joined = table.glue_left[token] | glue_next
        words += table.alnum[token] & ~(joined & in_word) & ~ended
        in_word = torch.where(joined, in_word | table.alnum[token], table.alnum[token])
        glue_next = table.glue_right[token]
        done[live[ended]] = True
        keep = ~ended & (words <= max_len)              # too long without ending: discarded, never truncated
        if not keep.any():
            break
        if not keep.all():
            live, words, glue_next, in_word = live[keep], words[keep], glue_next[keep], in_word[keep]
            token = token[keep]
            encoder.hidden = [(h[:, keep].contiguous(), c[:, keep].contiguous()) for h, c in encoder.hidden]
            encoder.bs = len(live)
        logits = model[1](model[0](token[:, None]))[0][:, -1]
    return out, done, logprob


def _render(bundle: Bundle, prefix: str, prefix_tokens: list[str], body: list[str], style: str) -> str:
    """Detokenize and recase; the caller's prefix is kept exactly as written (casing included)."""
    text = bundle.tokenizer.caser.apply(detokenize(prefix_tokens + body), style)
    head = detokenize(prefix_tokens)
    if prefix and text.lower().startswith(head):
        # Casing works per space-separated chunk and keeps lengths, so the prefix's span is known exactly;
        # its last chunk may carry glued text (a comma, "'s") that belongs to the continuation.
        chunks, k = text.split(" "), len(head.split(" "))
        text = " ".join([prefix + chunks[k - 1][len(head.split(" ")[-1]):]] + chunks[k:])
    return clean_headline(text)


def _prefix(bundle: Bundle, prefix: str | None, max_len: int) -> tuple[list[str], list[int], int, bool]:
    tokens = bundle.tokenizer.tokenize([prefix or ""])[0][:-1]  # drop xxeos: the headline goes on
    words = count_words(detokenize(tokens))
    if words > max_len:
        raise GenerationError(f"prefix {prefix!r} has {words} words, more than max_len={max_len}")
    glue = len(tokens) > 1 and glues_right(tokens[-1])
    # Fed after xxeos: the state the LM always saw before a headline in its training stream.
    return tokens, bundle.tokenizer.numericalize(["xxeos"] + tokens), words, glue


def _row_uniforms(entropy: tuple[int, ...], start: int, rows: int, steps: int) -> torch.Tensor:
    # One generator per candidate index: candidate k draws the same numbers whatever the batch size.
    return torch.from_numpy(np.stack([np.random.default_rng([*entropy, k]).random(steps)
                                      for k in range(start, start + rows)]))


RERANK_POOL = 3  # rerank draws this many times n and keeps the n most click-baity


def most_clickbaity(pool: pd.DataFrame, n: int) -> pd.DataFrame:
    """The `n` rows of `pool` with the highest `clickbait` score, ties in pool order."""
    return pool.sort_values("clickbait", ascending=False, kind="stable").head(n).reset_index(drop=True)


def clickbait_scorer(classifier: ModelRef = None) -> Callable[[list[str]], list[float]]:
    """texts -> clickbait probabilities, from a classifier bundle (default: the bundled one)."""
    from .classify import clickbait_score  # the classifier stack loads only when asked for
    bundle = resolve_bundle(classifier, "classifier")
    return lambda texts: clickbait_score(texts, bundle) if texts else []


class HeadlineSampler:
    """Candidates drawn in index order (candidate k from its own random stream), kept when they pass every filter.

    `scorer` (texts -> clickbait probabilities) adds a `clickbait` column and enables `min_score`.
    `take(n)` returns the next n kept headlines; successive calls continue the same sequence, so a batch job that
    takes 1,000 at a time writes exactly what one call for all of them returns. `seen` holds `headline_hash`es of
    headlines already given out (pass a job's earlier output to keep a resumed job unique).
    """

    def __init__(self, bundle: Bundle, min_len: int, max_len: int, cfg: SamplingConfig, *, prefix: str | None = None,
                 style: str = "title", seed: int = 0, stream: tuple[int, ...] = (), unique: bool = True,
                 novel: bool = True, banned_words: Iterable[str] | None = DEFAULT_BANNED_WORDS,
                 min_score: float | None = None, scorer=None, seen: set[int] | None = None):
        _validate(1, min_len, max_len, cfg, style)
        self.bundle, self.min_len, self.max_len, self.cfg, self.style = bundle, min_len, max_len, cfg, style
        self.banned = frozenset(w.lower() for w in (banned_words or ()))
        self.table = _TokenTable(bundle, self.banned)
        self.prefix = clean_headline(prefix or "")
        self.prefix_tokens, self.prefix_ids, self.prefix_words, self.glue = _prefix(bundle, self.prefix, max_len)
        self.entropy = (seed, *stream)
        self.unique, self.novel, self.min_score = unique, novel, min_score
        if min_score is not None and scorer is None:
            raise GenerationError("min_score needs a scorer (texts -> clickbait probabilities)")
        self.scorer = scorer
        self.seen = set() if seen is None else seen
        self.next_index = 0  # the first candidate index not yet looked at
        self.kept = 0  # headlines given out so far: with next_index, the acceptance rate that sizes batches
        self.rejected = dict(too_long=0, duplicate=0, not_novel=0, banned=0, length=0, unbalanced=0,
                             below_min_score=0)
        self.steps = 3 * max_len + 4  # enough tokens for max_len words plus punctuation

    def _reason_to_reject(self, text: str, words: int, key: int) -> str | None:
        if not self.min_len <= words <= self.max_len:
            return "length"
        if not balanced(text):
            return "unbalanced"
        if self.banned & {w.lower() for w in _WORD.findall(text)}:
            return "banned"
        if self.unique and key in self.seen:
            return "duplicate"
        if self.novel and not self.bundle.is_novel([text])[0]:
            return "not_novel"
        return None

    def _batch(self, rows: int) -> list[tuple[int, str, int, int, float]]:
        """Candidates `next_index`..+rows that pass the cheap filters, in index order:
        (index, text, words, headline_hash, log-prob)."""
        tokens, done, logprob = _sample_batch(self.bundle, self.table, self.prefix_ids, self.prefix_words, self.glue,
                                              _row_uniforms(self.entropy, self.next_index, rows, self.steps),
                                              self.min_len, self.max_len, self.cfg)
        vocab, out = self.bundle.tokenizer.vocab, []
        for row in range(rows):
            if not done[row]:
                self.rejected["too_long"] += 1
                continue
            ids = tokens[row].tolist()
            text = _render(self.bundle, self.prefix, self.prefix_tokens,
                           [vocab[i] for i in ids[:ids.index(self.table.eos)]], self.style)
            words, key = count_words(text), headline_hash(text)
            reason = self._reason_to_reject(text, words, key)
            if reason:
                self.rejected[reason] += 1
            else:
                out.append((self.next_index + row, text, words, key, float(logprob[row])))
        return out

    def take(self, n: int, batch_size: int = 512, max_attempts: int | None = None) -> pd.DataFrame:
        """The next `n` headlines: a DataFrame (text, words, log_prob[, clickbait]) in candidate order."""
        max_attempts = max_attempts or max(50 * n, 2000)
        start, found = self.next_index, []
        while len(found) < n:
            attempts = self.next_index - start
            if attempts >= max_attempts:
                raise GenerationError(f"found only {len(found)} of {n} headlines in {attempts} attempts "
                                      f"(rejected: {self.rejected}); loosen min_len/max_len, unique, novel, "
                                      f"prefix or min_score")
            # Size the batch to what is still needed at the acceptance rate so far: a full last batch of which
            # only a few rows are kept costs as much as the rest of the call.
            rate = (self.kept + 1) / (self.next_index + 1) if self.next_index else 0.9
            needed = math.ceil((n - len(found)) / max(rate, 0.05) * 1.1) + 8
            rows = min(batch_size, max_attempts - attempts, needed)
            batch = self._batch(rows)
            scores = self.scorer([text for _, text, *_ in batch]) if self.scorer else [None] * len(batch)
            self.next_index += rows
            for (index, text, words, key, logprob), score in zip(batch, scores):
                if self.min_score is not None and score < self.min_score:
                    self.rejected["below_min_score"] += 1
                elif self.unique and key in self.seen:  # a repeat within this batch
                    self.rejected["duplicate"] += 1
                else:
                    self.seen.add(key)
                    self.kept += 1
                    found.append((text, words, logprob, score))
                    if len(found) == n:
                        self.next_index = index + 1  # the rest of the batch is drawn again next time
                        break
        result = pd.DataFrame(found, columns=["text", "words", "log_prob", "clickbait"])
        return result if self.scorer else result.drop(columns="clickbait")


def generate_headlines(n: int = 20, min_len: int = 4, max_len: int = 15, *, temperature: float = 0.8,
                       top_k: int | None = None, top_p: float | None = 0.95, prefix: str | None = None,
                       style: str = "title", seed: int | None = None, unique: bool = True, novel: bool = True,
                       banned_words: Iterable[str] | None = DEFAULT_BANNED_WORDS, model: ModelRef = None,
                       batch_size: int | None = None, return_scores: bool = False, max_attempts: int | None = None,
                       min_score: float | None = None, rerank: bool = False,
                       classifier: ModelRef = None) -> list[str] | pd.DataFrame:
    """Exactly `n` headlines of `min_len`..`max_len` words sampled from the headline LM (a list of str).

    `prefix` starts every headline; `unique` and `novel` (not a training headline) are checked after
    normalisation; `banned_words` never appear (None disables the default list). Same `seed`, same
    headlines, whatever `batch_size`. `return_scores=True` gives a DataFrame (text, words, log_prob).
    With a classifier (`classifier`, default the bundled one), `min_score` keeps only headlines whose
    clickbait probability is at least that, and `rerank` draws `RERANK_POOL` x n and returns the n most click-baity.
    """
    cfg = SamplingConfig(temperature, top_k, top_p)
    _validate(n, min_len, max_len, cfg, style)
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
    wants_classifier = min_score is not None or rerank
    sampler = HeadlineSampler(resolve_bundle(model, "lm"), min_len, max_len, cfg, prefix=prefix, style=style,
                              seed=seed, unique=unique, novel=novel, banned_words=banned_words, min_score=min_score,
                              scorer=clickbait_scorer(classifier) if wants_classifier else None)
    wanted = n * RERANK_POOL if rerank else n
    result = sampler.take(wanted, batch_size or min(max(2 * wanted, 64), 1024), max_attempts)
    if rerank:
        result = most_clickbaity(result, n)
    return result if return_scores else result["text"].tolist()


def score_headlines(headlines: Iterable[str], model: ModelRef = None, batch_size: int = 256) -> list[float]:
    """Total log-probability (nats) of each headline under the LM, end of headline included, in input order."""
    bundle = resolve_bundle(model, "lm")
    headlines = [h if isinstance(h, str) else "" for h in headlines]
    prime = [bundle.tokenizer.o2i["xxeos"]]
    return score_ids(bundle.model, bundle.tokenizer.encode_batch(headlines), prime=prime, batch_size=batch_size)
