"""Generation: one `GenerationRequest` (every option, its one default, its checks), the `HeadlineSampler` that
serves it (batched decoding, filters, reranking, resuming), and the one-call `generate_headlines`.

How a request flows: the API, the CLI and batch jobs each fill in a `GenerationRequest`; `request.sampler()`
builds a `HeadlineSampler` over the LM bundle (and a classifier when the request scores); `take(n)` returns the
next n headlines that pass every filter.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .archive import Archive, load_archive
from .bundle import Bundle, ModelRef, data_fingerprint, default_bundle_path, resolve_bundle
from .classify import clickbait_scorer, realness_odds
from .errors import BundleError, GenerationError
from .models import lm_encode, native_kernels, score_ids
from .text import (WORD, clean_headline, count_words, fix_articles, has_word_char, headline_hash, headline_list,
                   phrase_pattern)
from .tokenizer import STYLES, detokenize, glues_left, glues_right, is_control_token

__all__ = ["GenerationRequest", "LABEL_BUNDLES", "HeadlineSampler", "generate_headlines", "score_headlines",
           "DEFAULT_BANNED_WORDS", "MAX_KEYWORDS", "RERANK_POOL", "most_clickbaity", "fluency", "most_fluent_first",
           "balanced", "generate_from", "MAX_CALL_N", "MAX_JOB_N", "MIN_TEMPERATURE", "MAX_TEMPERATURE", "MAX_WORDS"]

# Slurs and profanity seen in the training data; output containing any of them is never returned.
DEFAULT_BANNED_WORDS = frozenset("""
fuck fucks fucked fucking fucker fuckers motherfucker motherfuckers shit shits shitty bullshit bitch bitches
bitchy cunt cunts dick dicks dickhead cock cocks pussy pussies asshole assholes whore whores slut sluts
bastard bastards nigger niggers nigga niggas faggot faggots fag fags retard retarded tranny trannies dyke
dykes spic spics chink chinks kike kikes wetback wetbacks twat twats wanker wankers ass asses arse arses
dumbass jackass tits titties piss pissed pissing
""".split())


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


# The voices the package ships an LM for: each label's bundled target fine-tune of the one general headline LM.
LABEL_BUNDLES = {"clickbait": "lm", "news": "lm-news"}
RERANK_POOL = 3  # rerank draws this many times n and keeps the n most click-baity
# Bounds that keep every request finite: one call returns at most MAX_CALL_N headlines (a batch job, at most
# MAX_JOB_N, streams to a file); temperatures outside these only draw the single likeliest or uniform noise.
MAX_CALL_N, MAX_JOB_N = 100_000, 100_000_000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 5.0
MAX_WORDS = 64
MAX_KEYWORDS = 5
# Where keywords go: the first after 0..FIRST_GAP free words, each later one after 1..LATER_GAP more; what comes
# after a keyword the LM writes knowing it. Chosen on training-slice keywords (bench/realism.py --keywords
# --keyword-source train; word / char disc.): 3, 2: 0.664 / 0.647; 6, 3: 0.645 / 0.649; 9, 4: 0.627 / 0.634;
# 12, 5: 0.641 / 0.654. Keeping draws by how likely the LM found each keyword where it landed measured worse
# (0.645 / 0.657 against 0.636 / 0.624 without, and 5x slower).
FIRST_GAP, LATER_GAP = 9, 4


def _check_keywords(keywords, banned: frozenset[str] | None, max_len: int, prefix: str | None) -> tuple[str, ...]:
    # Refuse what no headline can meet, naming the keyword: empty, no letters, banned, or longer than max_len.
    if isinstance(keywords, (str, bytes)):
        raise GenerationError(f"keywords must be a list of words or phrases, not one str (for one: [{keywords!r}])")
    out = []
    for keyword in keywords or ():
        if not isinstance(keyword, str):
            raise GenerationError(f"keyword {keyword!r} is not a str")
        text = clean_headline(keyword)
        if not has_word_char(text):
            raise GenerationError(f"keyword {keyword!r} has no letters or digits")
        hit = sorted(banned & {w.lower() for w in WORD.findall(text)}) if banned else []
        if hit:
            raise GenerationError(f"keyword {keyword!r} holds banned word {hit[0]!r}; pass banned_words without it")
        out.append(text)
    if len(out) > MAX_KEYWORDS:
        raise GenerationError(f"at most {MAX_KEYWORDS} keywords, got {len(out)}")
    words = count_words(clean_headline(prefix or "")) + sum(count_words(k) for k in out)
    if out and words > max_len:  # a prefix alone is checked, with its own message, when the sampler reads it
        longest = max(out, key=count_words)
        raise GenerationError(f"keywords {out} (and prefix) need {words} words, more than max_len={max_len}; "
                              f"keyword {longest!r} is the longest")
    return tuple(out)


@dataclass(frozen=True)
class _Keyword:
    """A keyword as the sampler forces it: its lowercase tokens and ids, and how it must read in the headline."""
    text: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    words: int

    @classmethod
    def make(cls, bundle: Bundle, text: str) -> _Keyword:
        tokens = tuple(bundle.tokenizer.tokenize([text])[0][1:-1])
        # A typed control word is an unknown word to the LM, never a control.
        ids = tuple(bundle.tokenizer.numericalize(["xxunk" if is_control_token(t) else t for t in tokens]))
        return cls(text, tokens, ids, count_words(text))

    def pattern(self, exact: bool) -> re.Pattern:
        """The keyword as a whole phrase: its text exactly (`exact`), or its words in any casing."""
        return phrase_pattern(self.text if exact else detokenize(self.tokens), exact)

    def restore(self, text: str) -> str | None:
        """`text` with this keyword as the editor wrote it (a capital letter anywhere: exactly; else the headline's
        casing), or None when the keyword did not survive rendering."""
        if self.text != self.text.lower():
            text = self.pattern(False).sub(lambda m: self.text, text)
            return text if self.pattern(True).search(text) else None
        return text if self.pattern(False).search(text) else None


def _keyword_ids(keywords: list[_Keyword]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every keyword's token ids as one (keywords, longest) tensor padded with -1, and their lengths."""
    ids = torch.full((len(keywords), max((len(kw.ids) for kw in keywords), default=0)), -1)
    for j, kw in enumerate(keywords):
        ids[j, :len(kw.ids)] = torch.tensor(kw.ids)
    return ids, torch.tensor([len(kw.ids) for kw in keywords], dtype=torch.long)


def _keyword_plan(keywords: list[_Keyword], ids: tuple[torch.Tensor, torch.Tensor], tails: np.ndarray,
                  prefix_words: int, max_len: int) -> dict:
    """Where each row puts its keywords, drawn from the row's own numbers (`tails`, 2 per keyword): an order, and
    the word count at which each keyword starts. `ids` is `_keyword_ids(keywords)`. Tensors of shape
    (rows, keywords[, tokens])."""
    k = len(keywords)
    order = np.argsort(tails[:, :k], axis=1, kind="stable")
    total = sum(kw.words for kw in keywords)
    first_gap = max(0, min(FIRST_GAP, max_len - prefix_words - total))
    gaps = np.concatenate([np.floor(tails[:, k:k + 1] * (first_gap + 1)),
                           1 + np.floor(tails[:, k + 1:2 * k] * LATER_GAP)], axis=1).astype(np.int64)
    kw_words = np.array([kw.words for kw in keywords])[order]
    starts_at = prefix_words + np.cumsum(gaps, axis=1) + np.cumsum(kw_words, axis=1) - kw_words
    remaining = np.cumsum(kw_words[:, ::-1], axis=1)[:, ::-1]
    order = torch.from_numpy(order)
    return dict(order=order, at=torch.from_numpy(starts_at), remaining=torch.from_numpy(remaining.copy()),
                ids=ids[0][order], length=ids[1][order])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _model_name(model: ModelRef) -> str | None:
    # What a progress file records of a model: its folder (a loaded bundle by the folder it came from).
    if isinstance(model, Bundle):
        return str(model.path) if model.path is not None else "<in-memory bundle>"
    return None if model is None else str(model)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation asks for, each option with its one default; it checks itself when made.

    The API, the CLI and batch jobs fill it in; `sampler()` builds what serves it. `seed=None` means a random
    seed, drawn by `seeded()`. `banned_words` (lowercase words) replaces the default list; None disables it.
    `archive` (a headline file or a list of headlines) extends novelty: no headline equal to one of them or sharing
    a 5-word run with one. `keywords` each appear in every headline, at positions each candidate draws, the LM
    writing around them (a keyword with a capital exactly as written, an all-lowercase one cased by `style`).
    `eta` cuts each step's tokens below min(eta, sqrt(eta) * exp(-entropy)) (eta-sampling, Hewitt et al. 2022): a
    near-certain step keeps few tokens, an open one (a topic, a name) keeps its long tail.
    `repeat_floor`: a token repeating the one before it is drawn only where the LM gives it at least this
    probability (an `xxunk` slot may follow another: two rare words make a name).
    `label` is the voice ("clickbait" or "news"): it picks the bundled LM when `model` is None, and must match the
    `target_label` of a model that has one.
    `rare_words` (on by default) fills the LM's out-of-vocabulary slots with rare training words, drawn by their
    neighbours and the LM's state; `realism` keeps candidates by discriminator rejection sampling
    (`discriminator`, default the bundled one for the bundled LM; any other LM goes unfiltered): closer to real
    headlines by the statistics of bench/realism.py, half the speed, and no better in blind reads.
    """
    n: int = 20
    min_len: int = 4
    max_len: int = 15
    # Chosen by measurement (README: Realism): T=1.0 beats the old T=0.8 on every statistic of bench/realism.py,
    # and T=1.03 lifts distinct-2 from 0.633-0.643 to 0.659-0.664 on the validation split (two seeds) while reading
    # no worse (9 of 50 plausible against T=1.0's 7 of 50); T=1.05 read worse twice (8 of 110 against 14 of 110).
    # eta-sampling measures closer to real clickbait than top-p 0.9 on the validation split and read no worse
    # (17 of 110 plausible against 12 of 110), where top-p 0.95 read worse.
    temperature: float = 1.03
    top_k: int | None = None
    top_p: float | None = None
    eta: float | None = 0.0009
    # A word straight after itself is nearly always a slip in a drawn headline ("Actually Actually": 89% of such
    # repeats were drawn at LM probability below 0.05), rarely in a real one ("Way Way Too"). README: Realism.
    repeat_floor: float | None = 0.05
    prefix: str | None = None
    style: str = "title"
    seed: int | None = None
    unique: bool = True
    novel: bool = True
    archive: str | os.PathLike | tuple[str, ...] | None = None
    label: str = "clickbait"
    keywords: tuple[str, ...] = ()
    banned_words: frozenset[str] | None = DEFAULT_BANNED_WORDS
    min_score: float | None = None
    rerank: bool = False
    rare_words: bool = True
    realism: bool = False
    model: ModelRef = None
    classifier: ModelRef = None
    discriminator: ModelRef = None

    def __post_init__(self):
        if not _is_int(self.n):
            raise GenerationError(f"n must be an int, got {type(self.n).__name__}")
        if not 1 <= self.n <= MAX_JOB_N:
            raise GenerationError(f"n must be at least 1 and at most {MAX_JOB_N:,}, got {self.n}")
        for name in ("min_len", "max_len"):
            if not _is_int(getattr(self, name)):
                raise GenerationError(f"{name} must be an int, got {type(getattr(self, name)).__name__}")
        if self.min_len < 1:
            raise GenerationError(f"min_len must be at least 1, got {self.min_len}")
        if self.min_len > self.max_len:
            raise GenerationError(f"min_len ({self.min_len}) is greater than max_len ({self.max_len})")
        if self.max_len > MAX_WORDS:
            raise GenerationError(f"max_len must be at most {MAX_WORDS} words, got {self.max_len}")
        if not isinstance(self.temperature, (int, float)) or not MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE:
            raise GenerationError(f"temperature must be > 0, in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], "
                                  f"got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.eta is not None and (not isinstance(self.eta, (int, float)) or not 0 < self.eta < 1):
            raise GenerationError(f"eta must be in (0, 1) or None, got {self.eta!r}")
        if self.repeat_floor is not None and (not isinstance(self.repeat_floor, (int, float))
                                              or not 0 < self.repeat_floor < 1):
            raise GenerationError(f"repeat_floor must be in (0, 1) or None, got {self.repeat_floor!r}")
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 1):
            raise GenerationError(f"top_k must be an int of at least 1, got {self.top_k}")
        if self.label not in LABEL_BUNDLES:
            raise GenerationError(f"label must be one of {sorted(LABEL_BUNDLES)}, got {self.label!r}")
        if self.style not in STYLES:
            raise GenerationError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed < 2 ** 63):
            raise GenerationError(f"seed must be an int in [0, 2**63) or None, got {self.seed!r}")
        if self.prefix is not None and not isinstance(self.prefix, str):
            raise GenerationError(f"prefix must be a str, got {type(self.prefix).__name__}")
        if self.min_score is not None and not 0 <= self.min_score <= 1:
            raise GenerationError(f"min_score is a probability in [0, 1], got {self.min_score}")
        for name in ("unique", "novel", "rerank", "rare_words", "realism"):
            if not isinstance(getattr(self, name), bool):
                raise GenerationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if isinstance(self.banned_words, str) or (self.banned_words is not None and
                                                  not all(isinstance(w, str) for w in self.banned_words)):
            raise GenerationError(f"banned_words must be a collection of words (e.g. {{'kale'}}), not "
                                  f"{self.banned_words!r}")
        if self.banned_words is not None:
            object.__setattr__(self, "banned_words", frozenset(w.lower() for w in self.banned_words))
        object.__setattr__(self, "keywords", _check_keywords(self.keywords, self.banned_words, self.max_len,
                                                             self.prefix))
        if self.archive is not None and not isinstance(self.archive, (str, os.PathLike)):
            if not all(isinstance(t, str) for t in self.archive):
                raise GenerationError("archive must be a headline file or a list of headlines (str)")
            object.__setattr__(self, "archive", tuple(self.archive))

    @property
    def scored(self) -> bool:
        """True when the request needs the classifier (a minimum score, or reranking)."""
        return self.min_score is not None or self.rerank

    def seeded(self) -> GenerationRequest:
        """This request with a seed: its own, or a random one when it has none."""
        return self if self.seed is not None else replace(self, seed=int.from_bytes(os.urandom(4), "little"))

    def to_dict(self) -> dict:
        """JSON-ready fields: what a batch job records to check that a resume continues the same request."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it would deep-copy a Bundle
        out["banned_words"] = None if self.banned_words is None else sorted(self.banned_words)
        out["keywords"] = list(self.keywords)  # as JSON reads it back
        for name in ("model", "classifier", "discriminator"):
            out[name] = _model_name(out[name])
        if isinstance(self.archive, tuple):  # a job records which headlines, not all of them
            out["archive"] = {"headlines": len(self.archive), "fingerprint": data_fingerprint(self.archive)}
        elif self.archive is not None:
            out["archive"] = str(self.archive)
        return out

    def sampler(self, stream: tuple[int, ...] = (), start: int = 0, seen: set[int] | None = None) -> HeadlineSampler:
        """The sampler serving this request: random stream `(seed, *stream)`, from candidate `start`, skipping the
        `headline_hash`es in `seen` (a resumed job's earlier output)."""
        request = self.seeded()
        lm = request.lm()
        scorer = clickbait_scorer(request.classifier) if request.scored else None
        return HeadlineSampler(lm, request, stream=stream, start=start, seen=seen, scorer=scorer,
                               discriminator=self._discriminator(lm),
                               archive=None if request.archive is None else load_archive(request.archive))

    def lm(self) -> Bundle:
        """The LM that writes in this request's voice: `model`, else the bundled LM for `label`."""
        lm = resolve_bundle(self.model, "lm", LABEL_BUNDLES[self.label])
        written = lm.config.get("target_label")
        if self.model is not None and written is not None and written != self.label:
            raise GenerationError(f"{lm.path}: this LM writes {written!r} headlines, not {self.label!r}; pass "
                                  f"label={written!r} or another model")
        _lead(lm, self.label)  # a conditional LM must know the label
        return lm

    def _discriminator(self, lm: Bundle) -> Bundle | None:
        # The realism filter needs a discriminator trained on this LM's own output: the one given, else the
        # bundled one for the bundled LM; any other LM goes unfiltered.
        if not self.realism:
            return None
        if self.discriminator is not None:
            return resolve_bundle(self.discriminator, "classifier")
        bundled = default_bundle_path("discriminator")
        if lm.path is not None and lm.path.resolve() == default_bundle_path("lm").resolve() and bundled.exists():
            return resolve_bundle(None, "classifier", "discriminator")
        return None


def fluency(rows: pd.DataFrame) -> pd.Series:
    """LM log-prob per word of each row (`log_prob` over `words` + 1: the end of headline counts as a word)."""
    return rows["log_prob"] / (rows["words"] + 1)


def most_fluent_first(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (text, words, log_prob, ...) by `fluency`, best first, ties in their order: what an editor reads first.

    The same headlines, reordered: on 660 marked in blind reads, the 5 most fluent of each 20 lines were plausible
    70 times in 165 against 85 of 660 for all, counting each rare word's probability in `log_prob` (README:
    Realism)."""
    order = np.argsort(-fluency(rows).to_numpy(), kind="stable")
    return rows.iloc[order].reset_index(drop=True)


def most_clickbaity(pool: pd.DataFrame, n: int) -> pd.DataFrame:
    """The `n` rows of `pool` with the highest `clickbait` score, ties in pool order."""
    return pool.sort_values("clickbait", ascending=False, kind="stable").head(n).reset_index(drop=True)


class _TokenTable:
    """Per-vocab-token facts the decoding loop needs as tensors: letters/digits, glue, and banned ids."""

    def __init__(self, vocab: tuple[str, ...], banned: frozenset[str], rare_words: bool, slots: frozenset[str]):
        # With rare words, a slot token (`xxunk`, or an unknown-word class) is filled by a rare word after sampling:
        # it is drawn, and is a word.
        writable = {"xxeos", *slots} if rare_words else {"xxeos"}
        self.alnum = torch.tensor([(has_word_char(t) and not t.startswith("xx")) or (t in slots and rare_words)
                                   for t in vocab])
        self.glue_left = torch.tensor([glues_left(t) for t in vocab])
        self.glue_right = torch.tensor([glues_right(t) for t in vocab])
        self.eos = vocab.index("xxeos")
        self.slots = torch.tensor([vocab.index(t) for t in sorted(slots)])
        never = [i for i, t in enumerate(vocab) if t.startswith("xx") and t not in writable]
        never += [i for i, t in enumerate(vocab) if t in banned]
        self.never = torch.tensor(sorted(set(never)), dtype=torch.long)


# Building a table walks the vocabulary in Python (~20 ms): a tenth of a 5-headline call, so tables are kept.
@lru_cache(maxsize=16)
def _token_table(vocab: tuple[str, ...], banned: frozenset[str], rare_words: bool,
                 slots: frozenset[str]) -> _TokenTable:
    return _TokenTable(vocab, banned, rare_words, slots)


# Sampling looks at the most likely NUCLEUS_CAP tokens only: a partial top-k is ~10x cheaper than sorting the
# whole vocabulary, and past this rank the tokens hold a negligible share of the probability after top-p.
NUCLEUS_CAP = 256
# Most rows' nucleus fits in far fewer tokens; a top-NUCLEUS_FIRST pass serves those (same draw, 2.5x cheaper).
NUCLEUS_FIRST = 64


def eta_floor(probs: torch.Tensor, eta: float) -> torch.Tensor:
    """Each row's eta-sampling cut (Hewitt et al. 2022): min(eta, sqrt(eta) * exp(-entropy)), as a column."""
    entropy = torch.special.entr(probs).sum(-1, keepdim=True)  # entr(0) = 0: masked tokens add nothing
    return torch.minimum(torch.full_like(entropy, eta), eta ** 0.5 * torch.exp(-entropy))


def _head(probs: torch.Tensor, cfg: GenerationRequest, floor: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted head of each row: the top-k tokens (at most NUCLEUS_CAP), or with top-p or an eta `floor` just
    enough of them."""
    cap = min(cfg.top_k or NUCLEUS_CAP, NUCLEUS_CAP, probs.size(-1))
    nucleus = cfg.top_p is not None and cfg.top_p < 1
    if not (nucleus or floor is not None) or cap <= NUCLEUS_FIRST:
        return torch.topk(probs, cap, dim=-1)
    head, idx = torch.topk(probs, NUCLEUS_FIRST, dim=-1)
    # Rows whose kept tokens may reach past the first pass (under every cut that applies) take the full cap.
    short = head.sum(-1) < cfg.top_p if nucleus else torch.ones(len(head), dtype=torch.bool)
    if floor is not None:
        short &= head[:, -1] >= floor[:, 0]
    head = F.pad(head, (0, cap - NUCLEUS_FIRST))
    idx = F.pad(idx, (0, cap - NUCLEUS_FIRST))
    if short.any():
        head[short], idx[short] = torch.topk(probs[short], cap, dim=-1)
    return head, idx


def _draw(logits: torch.Tensor, uniforms: torch.Tensor, cfg: GenerationRequest) -> torch.Tensor:
    """Temperature, top-k, eta and top-p on the sorted head of the distribution, then inverse-CDF sampling with
    each row's own uniform draw, so a row's token never depends on which other rows share its batch."""
    probs = F.softmax(logits / cfg.temperature, -1)
    floor = None if cfg.eta is None else eta_floor(probs, cfg.eta)
    probs, idx = _head(probs, cfg, floor)
    if floor is not None:
        probs = probs.masked_fill(probs < floor, 0.0)  # never the top token: the floor is below exp(-entropy)
    if cfg.top_p is not None and cfg.top_p < 1:
        probs = probs.masked_fill(probs.cumsum(-1) - probs > cfg.top_p, 0.0)  # keeps the token crossing top_p
    cdf = probs.double().cumsum(-1)
    pick = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1)).clamp_max(cdf.size(-1) - 1)
    return idx.gather(-1, pick).squeeze(-1)


@torch.inference_mode()
@native_kernels()
def _sample_batch(bundle: Bundle, table: _TokenTable, prefix_ids: list[int], prefix_words: int, glue: bool,
                  uniforms: torch.Tensor, min_len: int, max_len: int, cfg: GenerationRequest, plan: dict | None = None):
    """Advance every live row one token per step from the shared prefix; return token ids, finished mask, log-probs,
    for each row the LM state (last-layer output) before each rare-word slot it drew (rare words are drawn by it), and
    with a keyword `plan`: the step each keyword started at.

    A keyword is written, token by token, once its row reaches the planned word count at a word boundary (or
    must, to fit before max_len); a row cannot end before its keywords are in.
    Rows leave the batch as soon as they end or run past max_len; rows never interact, so this only saves work.
    The recurrent state is this call's own (`lm_encode`), so threads may share the model.
    """
    model, rows, steps = bundle.model, uniforms.size(0), uniforms.size(1)
    # Every row starts from the same prefix: feed it once, then copy the state to all rows.
    state, hidden = lm_encode(model, torch.tensor([prefix_ids]))
    state = state[:, -1].expand(rows, -1)
    logits = model[1](state)[0].clone()
    slot_states: dict[int, list[np.ndarray]] = {}
    hidden = [(h.expand(-1, rows, -1).contiguous(), c.expand(-1, rows, -1).contiguous()) for h, c in hidden]
    live = torch.arange(rows)                           # original row index of each row still in the batch
    words = torch.full((rows,), prefix_words)
    glue_next = torch.full((rows,), glue)              # does the next token join the current word?
    in_word = torch.full((rows,), prefix_words > 0)    # does the current word already hold a letter or digit?
    out = torch.full((rows, steps), table.eos)
    done, logprob = torch.zeros(rows, dtype=torch.bool), torch.zeros(rows, dtype=torch.float64)
    n_kw = 0 if plan is None else plan["at"].size(1)
    next_kw, offset = torch.zeros(rows, dtype=torch.long), torch.zeros(rows, dtype=torch.long)
    kw_start = torch.full((rows, max(n_kw, 1)), -1)
    token = torch.full((rows,), prefix_ids[-1])        # each live row's previous token
    for step in range(steps):
        forcing = torch.zeros(len(live), dtype=torch.bool)
        if n_kw:
            pending = next_kw[live] < n_kw
            j = next_kw[live].clamp_max(n_kw - 1)
            due = ~glue_next & ((words >= plan["at"][live, j]) | (words + plan["remaining"][live, j] >= max_len))
            forcing = pending & ((offset[live] > 0) | due)
            raw = logits.log_softmax(-1)  # a forced token's log-prob, before any mask could make it -inf
            logits[pending, table.eos] = float("-inf")
        if cfg.repeat_floor is not None:                # a repeat only where the LM itself wants it
            at = torch.arange(len(live))
            weak = logits[at, token] - logits.logsumexp(-1) < math.log(cfg.repeat_floor)
            weak &= ~torch.isin(token, table.slots)
            logits[at[weak], token[weak]] = float("-inf")
        logits[:, table.never] = float("-inf")
        logits[words < min_len, table.eos] = float("-inf")   # no end of headline before min_len words
        token = _draw(logits, uniforms[live, step], cfg)
        lp = logits.gather(-1, token[:, None]).squeeze(-1) - logits.logsumexp(-1)
        if forcing.any():
            rows_f, j_f = live[forcing], j[forcing]
            token[forcing] = plan["ids"][rows_f, j_f, offset[rows_f]]
            lp[forcing] = raw[forcing].gather(-1, token[forcing, None]).squeeze(-1)
            kw_start[rows_f[offset[rows_f] == 0], j_f[offset[rows_f] == 0]] = step
            offset[rows_f] += 1
            finished = offset[rows_f] >= plan["length"][rows_f, j_f]
            next_kw[rows_f[finished]] += 1
            offset[rows_f[finished]] = 0
        logprob[live] += lp.double()
        out[live, step] = token
        for i in (torch.isin(token, table.slots) & ~forcing).nonzero()[:, 0].tolist():
            slot_states.setdefault(int(live[i]), []).append(state[i].float().numpy())
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
            hidden = [(h[:, keep].contiguous(), c[:, keep].contiguous()) for h, c in hidden]
        state, hidden = lm_encode(model, token[:, None], hidden)
        state = state[:, -1]
        logits = model[1](state)[0]
    done &= next_kw >= n_kw
    return out, done, logprob, slot_states, kw_start


def _render(bundle: Bundle, prefix: str, prefix_tokens: list[str], body: list[str], style: str) -> str:
    """Detokenize, recase and make articles agree; the caller's prefix is kept exactly as written (casing
    included)."""
    text = fix_articles(bundle.tokenizer.caser.apply(detokenize(prefix_tokens + body), style))
    head = detokenize(prefix_tokens)
    if prefix and text.lower().startswith(head):
        # Casing works per space-separated chunk and keeps lengths, so the prefix's span is known exactly;
        # its last chunk may carry glued text (a comma, "'s") that belongs to the continuation.
        chunks, k = text.split(" "), len(head.split(" "))
        text = " ".join([prefix + chunks[k - 1][len(head.split(" ")[-1]):]] + chunks[k:])
    return clean_headline(text)


def _lead(bundle: Bundle, label: str) -> list[str]:
    # Fed before a headline's first word: xxeos (the state the LM always saw before a headline in its training
    # stream), xxbos, and for a conditional LM the label's token, as in training.
    labels = bundle.config.get("labels")
    if labels is None:
        return ["xxeos", "xxbos"]
    if label not in labels:
        raise GenerationError(f"{bundle.path}: this conditional LM writes {sorted(labels)} headlines, not {label!r}")
    if labels[label] not in bundle.tokenizer.o2i:  # it would be read as an unknown word, silently in no voice
        raise BundleError(f"{bundle.path}: config.json gives label {label!r} the token {labels[label]!r}, which "
                          f"vocab.json lacks")
    return ["xxeos", "xxbos", labels[label]]


def _prefix(bundle: Bundle, prefix: str | None, max_len: int, label: str) -> tuple[list[str], list[int], int, bool]:
    tokens = bundle.tokenizer.tokenize([prefix or ""])[0][:-1]  # drop xxeos: the headline goes on
    # User text is text: a control token typed in the prefix ("xxeos", "xxlabel0") is an unknown word, never a control.
    tokens = tokens[:1] + ["xxunk" if is_control_token(t) else t for t in tokens[1:]]
    words = count_words(detokenize(tokens))
    if words > max_len:
        raise GenerationError(f"prefix {prefix!r} has {words} words, more than max_len={max_len}")
    glue = len(tokens) > 1 and glues_right(tokens[-1])
    return tokens, bundle.tokenizer.numericalize(_lead(bundle, label) + tokens[1:]), words, glue


def _row_uniforms(entropy: tuple[int, ...], start: int, rows: int, steps: int) -> torch.Tensor:
    # One generator per candidate index: candidate k draws the same numbers whatever the batch size.
    # The first `steps` numbers draw tokens, the next `steps` fill rare-word slots.
    return torch.from_numpy(np.stack([np.random.default_rng([*entropy, k]).random(2 * steps)
                                      for k in range(start, start + rows)]))


class HeadlineSampler:
    """Candidates drawn in index order (candidate k from its own random stream), kept when they pass every filter.

    `take(n)` returns the next n kept headlines; successive calls continue the same sequence, so a batch job that
    takes 1,000 at a time writes exactly what one call for all of them returns. `start` and `seen` (the
    `headline_hash`es already given out) resume a job where it stopped. `scorer` (texts -> clickbait
    probabilities) adds a `clickbait` column and serves the request's `min_score` and `rerank`.
    """

    def __init__(self, bundle: Bundle, request: GenerationRequest, *, stream: tuple[int, ...] = (), start: int = 0,
                 seen: set[int] | None = None, scorer: Callable[[list[str]], list[float]] | None = None,
                 discriminator: Bundle | None = None, archive: Archive | None = None):
        if request.scored and scorer is None:
            raise GenerationError("min_score and rerank need a scorer (texts -> clickbait probabilities)")
        if request.seed is None:
            raise GenerationError("a sampler needs a seeded request (request.seeded())")
        self.bundle, self.request, self.scorer, self.discriminator = bundle, request, scorer, discriminator
        self.archive = archive
        if discriminator is not None and not discriminator.config.get("odds_scale", 0) > 0:
            raise GenerationError(f"{discriminator.path}: not a realism discriminator (no positive odds_scale)")
        self.banned = request.banned_words or frozenset()
        self.rare_words = bundle.rare_words if request.rare_words else None
        self.slots = bundle.tokenizer.slot_tokens
        self.table = _token_table(tuple(bundle.tokenizer.vocab), self.banned, self.rare_words is not None, self.slots)
        self.prefix = clean_headline(request.prefix or "")
        self.prefix_tokens, self.prefix_ids, self.prefix_words, self.glue = _prefix(bundle, self.prefix,
                                                                                    request.max_len, request.label)
        self.entropy = (request.seed, *stream)
        self.seen = set() if seen is None else seen
        self.position = start  # the first candidate index not yet looked at
        self.keywords = [_Keyword.make(bundle, k) for k in request.keywords]
        self.keyword_ids = _keyword_ids(self.keywords)
        self.rejected = dict(keyword_lost=0, too_long=0, duplicate=0, not_novel=0, in_archive=0, banned=0, length=0,
                             unbalanced=0, unrealistic=0, below_min_score=0)
        self.steps = 3 * request.max_len + 4  # enough tokens for max_len words plus punctuation

    def _reason_to_reject(self, text: str, words: int, key: int) -> str | None:
        request = self.request
        if not request.min_len <= words <= request.max_len:
            return "length"
        if not balanced(text):
            return "unbalanced"
        if self.banned & {w.lower() for w in WORD.findall(text)}:
            return "banned"
        if request.unique and key in self.seen:
            return "duplicate"
        if request.novel and not self.bundle.is_novel([text])[0]:
            return "not_novel"
        if self.archive is not None and self.archive.overlap(text) is not None:
            return "in_archive"
        return None

    def _batch(self, rows: int) -> list[tuple[int, str, int, int, float]]:
        """Candidates `position`..+rows that pass the cheap filters, in index order:
        (index, text, words, headline_hash, log-prob)."""
        request, steps = self.request, self.steps
        uniforms = _row_uniforms(self.entropy, self.position, rows, steps)
        plan = None
        if self.keywords:  # the plan takes numbers from the end of each row's stream, which fills never reach
            plan = _keyword_plan(self.keywords, self.keyword_ids, uniforms[:, -1 - 2 * len(self.keywords):-1].numpy(),
                                 self.prefix_words, request.max_len)
        tokens, done, logprob, slot_states, kw_start = _sample_batch(
            self.bundle, self.table, self.prefix_ids, self.prefix_words, self.glue, uniforms[:, :steps],
            request.min_len, request.max_len, request, plan)
        vocab, out = self.bundle.tokenizer.vocab, []
        # A typed control word leaves an `xxunk` at the prefix's end, which `fill` sees first: it has no LM state.
        lead_slots = [None] * self.prefix_tokens[-1:].count("xxunk")
        for row in range(rows):
            if not done[row]:
                self.rejected["too_long"] += 1
                continue
            ids = tokens[row].tolist()
            body = [vocab[i] for i in ids[:ids.index(self.table.eos)]]
            # Keyword spans hold the editor's own words (an `xxunk` id for a name): no rare word may fill them.
            kws = [self.keywords[int(j)] for j in plan["order"][row]] if plan is not None else []
            for start, kw in zip(kw_start[row].tolist(), kws):
                body[start:start + len(kw.tokens)] = kw.tokens
            fill_log_prob = 0.0
            if self.rare_words is not None and not self.slots.isdisjoint(body):
                body, fill_log_prob = self.rare_words.fill(
                    self.prefix_tokens[-1:] + body, uniforms[row, steps:].tolist(), self.slots, banned=self.banned,
                    states=lead_slots + slot_states.get(row, []))
                body = body[len(self.prefix_tokens[-1:]):]
            text = _render(self.bundle, self.prefix, self.prefix_tokens, body, request.style)
            for kw in kws:
                text = text and kw.restore(text)
            if not text:
                self.rejected["keyword_lost"] += 1
                continue
            words, key = count_words(text), headline_hash(text)
            reason = self._reason_to_reject(text, words, key)
            if reason:
                self.rejected[reason] += 1
            else:
                # The headline as drawn: the LM's tokens and each rare word's probability in its slot.
                out.append((self.position + row, text, words, key, float(logprob[row]) + fill_log_prob))
        if self.discriminator is None or not out:
            return out
        # Discriminator rejection sampling: keep a candidate with probability min(1, odds of being real / scale),
        # drawn with the last number of its own stream (the fill never reaches it).
        odds = realness_odds([text for _, text, *_ in out], self.discriminator)
        keep = uniforms[[index - self.position for index, *_ in out], -1].numpy() < \
            odds / self.discriminator.config["odds_scale"]
        self.rejected["unrealistic"] += int((~keep).sum())
        return [candidate for candidate, kept in zip(out, keep) if kept]

    def _take(self, n: int, batch_size: int, max_attempts: int | None) -> pd.DataFrame:
        max_attempts = max_attempts or max(50 * n, 2000)
        start, found = self.position, []
        while len(found) < n:
            attempts = self.position - start
            if attempts >= max_attempts:
                raise GenerationError(f"found only {len(found)} of {n} headlines in {attempts} attempts "
                                      f"(rejected: {self.rejected}); loosen min_len/max_len, unique, novel, archive, "
                                      f"prefix or min_score")
            # Size the batch to what is still needed at this take's acceptance rate so far: a full last batch of
            # which only a few rows are kept costs as much as the rest of the call. Only this take's own counts, so
            # a resumed job's take at a position decodes in the very batches the uninterrupted job did (batch
            # shapes change the floats of the log-probs in their last digits).
            rate = (len(found) + 1) / (attempts + 1) if attempts else 0.9
            needed = math.ceil((n - len(found)) / max(rate, 0.05) * 1.1) + 8
            rows = min(batch_size, max_attempts - attempts, needed)
            batch = self._batch(rows)
            scores = self.scorer([text for _, text, *_ in batch]) if self.scorer else [None] * len(batch)
            self.position += rows
            for (index, text, words, key, logprob), score in zip(batch, scores):
                if self.request.min_score is not None and score < self.request.min_score:
                    self.rejected["below_min_score"] += 1
                elif self.request.unique and key in self.seen:  # a repeat within this batch
                    self.rejected["duplicate"] += 1
                else:
                    self.seen.add(key)
                    found.append((text, words, logprob, score))
                    if len(found) == n:
                        self.position = index + 1  # the rest of the batch is drawn again next time
                        break
        result = pd.DataFrame(found, columns=["text", "words", "log_prob", "clickbait"])
        return result if self.scorer else result.drop(columns="clickbait")

    def take(self, n: int, batch_size: int = 512, max_attempts: int | None = None) -> pd.DataFrame:
        """The next `n` headlines: a DataFrame (text, words, log_prob[, clickbait]) in candidate order.

        With `rerank`, `RERANK_POOL` x n candidates are drawn and the n most click-baity kept; the others are
        forgotten, so a later call may give them. A take is the unit a resumed job repeats."""
        if not self.request.rerank:
            return self._take(n, batch_size, max_attempts)
        pool = self._take(n * RERANK_POOL, batch_size, max_attempts)
        rows = most_clickbaity(pool, n)
        self.seen -= {headline_hash(t) for t in pool["text"]} - {headline_hash(t) for t in rows["text"]}
        return rows


def generate_headlines(
        n: int = GenerationRequest.n,
        min_len: int = GenerationRequest.min_len,
        max_len: int = GenerationRequest.max_len, *,
        temperature: float = GenerationRequest.temperature,
        top_k: int | None = GenerationRequest.top_k,
        top_p: float | None = GenerationRequest.top_p,
        eta: float | None = GenerationRequest.eta,
        repeat_floor: float | None = GenerationRequest.repeat_floor,
        prefix: str | None = GenerationRequest.prefix,
        style: str = GenerationRequest.style,
        seed: int | None = GenerationRequest.seed,
        unique: bool = GenerationRequest.unique,
        novel: bool = GenerationRequest.novel,
        archive: str | os.PathLike | Iterable[str] | None = GenerationRequest.archive,
        label: str = GenerationRequest.label,
        keywords: Iterable[str] = GenerationRequest.keywords,
        banned_words: Iterable[str] | None = GenerationRequest.banned_words,
        min_score: float | None = GenerationRequest.min_score,
        rerank: bool = GenerationRequest.rerank,
        rare_words: bool = GenerationRequest.rare_words,
        realism: bool = GenerationRequest.realism,
        model: ModelRef = GenerationRequest.model,
        classifier: ModelRef = GenerationRequest.classifier,
        discriminator: ModelRef = GenerationRequest.discriminator,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        return_scores: bool = False) -> list[str] | pd.DataFrame:
    """Exactly `n` headlines of `min_len`..`max_len` words sampled from the headline LM (a list of str).

    Every option is a field of `GenerationRequest` (its docs and defaults are these). `prefix` starts every
    headline; `unique` and `novel` (not a training headline) are checked after normalisation; `banned_words`
    never appear (None disables the default list). Same `seed`, same headlines, whatever `batch_size`.
    With a classifier (`classifier`, default the bundled one), `min_score` keeps only headlines whose clickbait
    probability is at least that, and `rerank` draws `RERANK_POOL` x n and returns the n most click-baity.
    `return_scores=True` gives a DataFrame (text, words, log_prob[, clickbait]); `log_prob` is the headline as
    drawn: the LM's tokens (its slot token for a rare word) and each rare word's probability in its slot.
    """
    request = GenerationRequest(n=n, min_len=min_len, max_len=max_len, temperature=temperature, top_k=top_k,
                                top_p=top_p, eta=eta, repeat_floor=repeat_floor, prefix=prefix, style=style, seed=seed,
                                unique=unique, novel=novel,
                                archive=archive, label=label, keywords=keywords,
                                banned_words=banned_words, min_score=min_score, rerank=rerank,
                                rare_words=rare_words, realism=realism, model=model, classifier=classifier,
                                discriminator=discriminator)
    return generate_from(request, batch_size, max_attempts, return_scores)


def generate_from(request: GenerationRequest, batch_size: int | None = None, max_attempts: int | None = None,
                  return_scores: bool = False) -> list[str] | pd.DataFrame:
    """The headlines `request` asks for: a list of str, or a DataFrame with `return_scores`."""
    if request.n > MAX_CALL_N:
        raise GenerationError(f"n={request.n:,} is more than one call returns ({MAX_CALL_N:,}); write them to a file "
                              f"with clickbait.batch.write_headlines or `clickbait generate --out`")
    wanted = request.n * (RERANK_POOL if request.rerank else 1)
    result = request.sampler().take(request.n, batch_size or min(max(2 * wanted, 16), 1024), max_attempts)
    return result if return_scores else result["text"].tolist()


def score_headlines(headlines: Iterable[str], model: ModelRef = None, batch_size: int = 256,
                    label: str = "clickbait") -> list[float]:
    """Total log-probability (nats) of each headline under the LM, end of headline included, in input order
    (`label`: the voice a conditional LM reads them in). `headlines` is a list of non-empty str (anything else is
    refused, naming its position)."""
    bundle = resolve_bundle(model, "lm")
    headlines = headline_list(headlines)
    lead = bundle.tokenizer.numericalize(_lead(bundle, label))
    # The lead's last token stands in for each headline's own xxbos: the first id of a sequence is never scored.
    ids = [lead[-1:] + i[1:] for i in bundle.tokenizer.encode_batch(headlines)]
    return score_ids(bundle.model, ids, prime=lead[:-1], batch_size=batch_size)
