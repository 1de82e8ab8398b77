"""Rewrite a headline in a chosen voice: keep its content words as keywords, write variants, rank them.

`content_words` picks what a rewrite must keep (names and numbers as written, then the rarest other content words by
the LM's corpus frequencies); `rewrite_headline` writes variants with those keywords in the voice asked for and ranks
them by the classifier and the LM.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from .bundle import Bundle, ModelRef
from .classify import classify_headlines
from .errors import GenerationError
from .generate import RERANK_POOL, GenerationRequest, fluency, generate_from
from .text import WORD, clean_headline

__all__ = ["content_words", "rewrite_headline", "MAX_KEPT"]

MAX_KEPT = 3  # keywords a rewrite keeps: more leave the LM no room to write in the new voice


def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS)


def content_words(text: str, lm: Bundle, max_kept: int = MAX_KEPT) -> list[str]:
    """The keywords a rewrite of `text` keeps, in reading order: names (runs of capitalised words the LM's corpus
    rarely or never saw, as written) and numbers first, then the rarest other content words (lowercase, so the
    voice's casing applies), at most `max_kept`."""
    stop, rank = _stop_words(), {t: i for i, t in enumerate(lm.tokenizer.vocab)}
    caser = lm.tokenizer.caser
    words = WORD.findall(clean_headline(text))
    # In sentence case a capital inside the headline marks a name; in title case every word has one, so only
    # words the corpus wrote as proper nouns or never saw count.
    sentence_case = sum(w[:1].isupper() for w in words[1:]) < len(words[1:]) / 2

    def is_name(i: int) -> bool:
        word, key = words[i], words[i].lower()
        if word == key or key in stop:  # no capital anywhere ("iPhone" has one)
            return False
        return (sentence_case and i > 0) or key in caser.proper or key in caser.forms or key not in rank

    names, others, i = [], [], 0
    while i < len(words):
        if is_name(i):
            j = i + 1
            while j < len(words) and is_name(j):
                j += 1
            names.append((i, " ".join(words[i:j])))
            i = j
            continue
        word = words[i]
        if any(ch.isdigit() for ch in word):
            names.append((i, word))
        elif word.isalpha() and len(word) > 2 and word.lower() not in stop:
            others.append((i, word.lower()))
        i += 1
    others.sort(key=lambda item: -rank.get(item[1], 10 ** 9))
    kept = (names + others)[:max_kept]
    return [word for _, word in sorted(kept)]


def rewrite_headline(text: str, n: int = 10, label: str = "clickbait", *, keep: list[str] | None = None,
                     seed: int | None = None, model: ModelRef = None, classifier: ModelRef = None,
                     **options) -> pd.DataFrame:
    """`n` variants of `text` in the voice `label`, each holding its content words (`keep`, default
    `content_words`), best first: a DataFrame of `text`, `voice` (the classifier's probability of `label`),
    `log_prob_per_word` (LM fluency, nats) and `score` = log(voice) + log_prob_per_word, the ranking key.

    It draws RERANK_POOL x n candidates and keeps the n best; other `GenerationRequest` fields go in `options`."""
    if not isinstance(text, str) or not clean_headline(text):
        raise GenerationError(f"rewrite needs a headline (a non-empty str), got {text!r}")
    request = GenerationRequest(n=n * RERANK_POOL, seed=seed, label=label, model=model, classifier=classifier,
                                **options)
    lm = request.lm()
    keep = content_words(text, lm) if keep is None else list(keep)
    if not keep:
        raise GenerationError(f"no content words to keep in {text!r}; pass keep=[...] yourself")
    pool = generate_from(replace(request, keywords=tuple(keep), model=lm),
                         return_scores=True)
    voice = classify_headlines(pool["text"].tolist(), classifier)[label]
    out = pd.DataFrame({"text": pool["text"], "voice": voice.round(4),
                        "log_prob_per_word": fluency(pool).round(4)})
    out["score"] = [round(math.log(max(v, 1e-9)) + f, 4) for v, f in zip(out["voice"], out["log_prob_per_word"])]
    return out.sort_values("score", ascending=False, kind="stable").head(n).reset_index(drop=True)
