"""Generation metrics (speed, length compliance, duplicates, novelty, diversity, copying from training headlines)
and `check_headlines`, an editor's report on headlines of their own."""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import pandas as pd

from .archive import Archive, load_archive
from .bundle import Bundle, ModelRef, resolve_bundle
from .classify import clickbait_score
from .errors import HeadlineDataError
from .generate import GenerationRequest, fluency, generate_from, score_headlines
from .text import count_words, grammar_slips, headline_list, ngrams, normalise_headline, word_tokens

__all__ = ["GenerationReport", "evaluate_generation", "distinct_n", "copy_rate", "shared_run", "slip_rate",
           "discriminator_accuracy", "check_headlines"]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams over all n-grams of `texts` (Li et al. 2016): 1.0 means no n-gram repeats."""
    grams = [g for t in texts for words in [word_tokens(t)] for g in zip(*(words[i:] for i in range(n)))]
    return len(set(grams)) / max(len(grams), 1)


def copy_rate(texts: Sequence[str], train_texts: Iterable[str], n: int = 5) -> float:
    """Share of `texts` containing any n-gram (default 5 words) of a training headline."""
    train = set().union(*(ngrams(t, n) for t in train_texts))
    return sum(bool(ngrams(t, n) & train) for t in texts) / max(len(texts), 1)


def shared_run(texts: Sequence[str], train_texts: Iterable[str], max_n: int = 8) -> list[int]:
    """For each of `texts`, the longest word run (2 to `max_n` words) it shares with a training headline, or 0."""
    train = list(train_texts)
    seen = {n: set().union(*(ngrams(t, n) for t in train)) for n in range(2, max_n + 1)}
    return [max((n for n in range(2, max_n + 1) if ngrams(t, n) & seen[n]), default=0) for t in texts]


def slip_rate(texts: Sequence[str]) -> float:
    """Share of `texts` with at least one grammar slip (`clickbait.text.grammar_slips`)."""
    return sum(bool(grammar_slips(t)) for t in texts) / max(len(texts), 1)


def discriminator_accuracy(real: Sequence[str], generated: Sequence[str], analyzer: str = "word",
                           folds: int = 5, seed: int = 0) -> float:
    """5-fold cross-validated accuracy of a TF-IDF logistic regression telling `real` from `generated` headlines
    (equal numbers of each are used): 0.5 means it cannot tell them apart. `analyzer` "word" uses word 1-2-grams,
    "char" character 2-5-grams within word boundaries."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    size = min(len(real), len(generated))
    texts, labels = list(real[:size]) + list(generated[:size]), [1] * size + [0] * size
    grams = (1, 2) if analyzer == "word" else (2, 5)
    model = make_pipeline(TfidfVectorizer(analyzer="word" if analyzer == "word" else "char_wb", ngram_range=grams,
                                          sublinear_tf=True), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, texts, labels, cv=cv).mean())


@dataclass
class GenerationReport:
    """What `evaluate_generation` measured on one bundle."""
    n: int
    seconds: float
    headlines_per_s: float
    length_compliance: float
    duplicates: int
    novel: float
    distinct_1: float
    distinct_2: float
    copy_rate: float | None
    mean_log_prob_per_word: float
    samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)

    def __str__(self) -> str:
        copy = "n/a (no training headlines given)" if self.copy_rate is None else f"{self.copy_rate:.3f}"
        return "\n".join([
            f"headlines: {self.n:,} in {self.seconds:.1f}s ({self.headlines_per_s:,.1f}/s)",
            f"length compliance: {self.length_compliance:.1%}; duplicates: {self.duplicates}; novel: {self.novel:.1%}",
            f"distinct-1: {self.distinct_1:.3f}; distinct-2: {self.distinct_2:.3f}",
            f"copy rate (any 5-gram of a training headline): {copy}",
            f"mean log-prob per word: {self.mean_log_prob_per_word:.3f} nats",
            "samples:", *(f"  {s}" for s in self.samples)])


def evaluate_generation(request: GenerationRequest | None = None, *, train_texts: Iterable[str] | None = None,
                        samples: int = 20) -> GenerationReport:
    """Serve `request` (default: 1,000 headlines, seed 0, from the bundled LM) and measure what it gave.
    The copy rate needs the bundle's training headlines (`train_texts`)."""
    request = request or GenerationRequest(n=1000, seed=0)
    bundle = request.lm()
    start = time.time()
    out = generate_from(request, return_scores=True)
    seconds = time.time() - start
    texts = out["text"].tolist()
    keys = {normalise_headline(t) for t in texts}
    return GenerationReport(
        n=len(texts), seconds=round(seconds, 2), headlines_per_s=round(len(texts) / seconds, 1),
        length_compliance=sum(request.min_len <= count_words(t) <= request.max_len for t in texts) / len(texts),
        duplicates=len(texts) - len(keys), novel=float(bundle.is_novel(texts).mean()),
        distinct_1=round(distinct_n(texts, 1), 4), distinct_2=round(distinct_n(texts, 2), 4),
        copy_rate=None if train_texts is None else round(copy_rate(texts, train_texts), 4),
        mean_log_prob_per_word=round(float(fluency(out).mean()), 4),
        samples=texts[:samples])


def check_headlines(headlines: Iterable[str], model: ModelRef = None, classifier: ModelRef = None,
                    archive: str | os.PathLike | Iterable[str] | Archive | None = None,
                    training: str | os.PathLike | Iterable[str] | None = None) -> pd.DataFrame:
    """Per headline: LM fluency (`log_prob_per_word`, nats, end of headline counted as a word), `clickbait`
    probability, `slips` (`grammar_slips`, joined by "; "), `training_copy` (equals a training headline of the LM),
    `training_overlap` (with `training`: the LM's training headline it shares a 5-word run with, else "") and
    `archive_overlap` (the archive headline it equals or shares a 5-word run with, else "").

    A bundle keeps hashes of its training headlines, not their text, so naming one needs `training`: a headline
    file or list that holds them (the corpus file it was trained on will do; only its headlines the bundle was
    trained on count, so a held-out slice in the same file is never reported)."""
    texts = headline_list(headlines)
    lm = resolve_bundle(model, "lm")
    words = pd.Series([count_words(t) for t in texts])
    archive = None if archive is None else load_archive(archive)
    trained_on = None if training is None else _training_archive(training, lm)
    return pd.DataFrame({
        "text": texts,
        "log_prob_per_word": (pd.Series(score_headlines(texts, lm)) / (words + 1)).round(4),
        "clickbait": [round(p, 4) for p in clickbait_score(texts, classifier)],
        "slips": ["; ".join(grammar_slips(t)) for t in texts],
        "training_copy": ~lm.is_novel(texts),
        "training_overlap": ["" if trained_on is None else trained_on.overlap(t) or "" for t in texts],
        "archive_overlap": ["" if archive is None else archive.overlap(t) or "" for t in texts]})


def _training_archive(training: str | os.PathLike | Iterable[str], lm: Bundle) -> Archive:
    # The bundle's own hashes pick its training headlines out of whatever was passed.
    source = load_archive(training)
    trained = ~lm.is_novel(source.texts)
    if not trained.any():
        raise HeadlineDataError(f"training {source.source}: none of its {len(source):,} headlines is a training "
                                f"headline of the LM {lm.path or ''}".rstrip())
    return source.select(trained)
