"""Per-word perplexity of the bundled LM on the held-out clickbait slice, beside an interpolated Kneser-Ney 3-gram.

Trains nothing but the 3-gram. Usage: python bench/lm_quality.py [--model BUNDLE] [--data DIR]
"""
import argparse
import math
import re
import time
from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path

import numpy as np

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.generate import score_headlines

WORDS = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def words(text: str) -> list[str]:
    return WORDS.findall(text.lower())


class KneserNey3:
    """Interpolated Kneser-Ney trigram LM with absolute discount D; words seen < min_freq times become <unk>."""

    def __init__(self, texts, min_freq: int = 2, discount: float = 0.75):
        counts = Counter(w for t in texts for w in words(t))
        self.vocab = {w for w, c in counts.items() if c >= min_freq} | {"</s>", "<unk>"}
        self.d = discount
        self.c3, self.c2_ctx, self.n3_ctx = Counter(), Counter(), Counter()      # trigram counts per context
        cont2, self.cont2_ctx, self.n2_ctx = Counter(), Counter(), Counter()
        for t in texts:
            seq = ["<s>", "<s>"] + self.map(words(t)) + ["</s>"]
            for u, v, w in zip(seq, seq[1:], seq[2:]):
                self.c3[u, v, w] += 1
        for (u, v, w), c in self.c3.items():
            self.c2_ctx[u, v] += c
            self.n3_ctx[u, v] += 1
            cont2[v, w] += 1                       # distinct left contexts of the bigram v w
        self.cont2 = cont2
        cont1 = Counter()
        for (v, w), c in cont2.items():
            self.cont2_ctx[v] += c
            self.n2_ctx[v] += 1
            cont1[w] += 1                          # distinct left contexts of w
        total = sum(cont1.values())
        self.p1 = defaultdict(float, {w: c / total for w, c in cont1.items()})

    @cached_property
    def followers(self) -> tuple[list[str], np.ndarray, dict, dict]:
        """Vocabulary order, the unigram vector, and the counts of what follows each 1- and 2-word context."""
        vocab = sorted(self.vocab)
        index = {w: i for i, w in enumerate(vocab)}
        after1, after2 = defaultdict(dict), defaultdict(dict)
        for (v, w), c in self.cont2.items():
            after1[v][index[w]] = c
        for (u, v, w), c in self.c3.items():
            after2[u, v][index[w]] = c
        return vocab, 0.9 * np.array([self.p1[w] for w in vocab]) + 0.1 / len(self.vocab), after1, after2

    def distribution(self, u: str, v: str) -> np.ndarray:
        """P(w | u v) for every w in `followers[0]`: `prob`'s interpolation for the whole vocabulary at once."""
        _, unigram, after1, after2 = self.followers
        p = unigram.copy()  # callers may edit the result
        for total, n_ctx, counts in ((self.cont2_ctx[v], self.n2_ctx[v], after1.get(v, {})),
                                     (self.c2_ctx[u, v], self.n3_ctx[u, v], after2.get((u, v), {}))):
            if total:
                p = self.d * n_ctx * p
                for i, c in counts.items():
                    p[i] += max(c - self.d, 0)
                p = p / total
        return p

    def map(self, ws):
        return [w if w in self.vocab else "<unk>" for w in ws]

    def prob(self, u, v, w) -> float:
        p = 0.9 * self.p1[w] + 0.1 / len(self.vocab)   # unigram continuation, smoothed so <unk> is never 0
        if self.cont2_ctx[v]:
            p = (max(self.cont2[v, w] - self.d, 0) + self.d * self.n2_ctx[v] * p) / self.cont2_ctx[v]
        if self.c2_ctx[u, v]:
            p = (max(self.c3[u, v, w] - self.d, 0) + self.d * self.n3_ctx[u, v] * p) / self.c2_ctx[u, v]
        return p

    def score(self, text: str) -> float:
        seq = ["<s>", "<s>"] + self.map(words(text)) + ["</s>"]
        return sum(math.log(self.prob(u, v, w)) for u, v, w in zip(seq, seq[1:], seq[2:]))


def perplexity(scores, texts) -> float:
    return math.exp(-sum(scores) / sum(len(words(t)) + 1 for t in texts))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None, help="LM bundle (default: the bundled one)")
    p.add_argument("--data", default=str(SHARED))
    args = p.parse_args()
    bundle = resolve_bundle(args.model, "lm")
    train, held = split_holdout(load_chakraborty(args.data))
    target = bundle.config.get("target_label", "clickbait")
    held_texts = list(held.loc[held["label"] == target, "text"])
    t0 = time.time()
    lm_ppl = perplexity(score_headlines(held_texts, bundle), held_texts)
    lm_time = time.time() - t0
    print(f"held-out {target} headlines: {len(held_texts):,} ({sum(len(words(t)) + 1 for t in held_texts):,} "
          f"words incl. end of headline)")
    print(f"LM ({bundle.config['preset']['name']}, {bundle.config['n_params']:,} params): per-word perplexity "
          f"{lm_ppl:.1f}  (scored in {lm_time:.1f}s)")
    for name, texts in (("target-style training slice", train.loc[train["label"] == target, "text"]),
                        ("all training headlines", train["text"])):
        kn = KneserNey3(list(texts))
        kn_ppl = perplexity([kn.score(t) for t in held_texts], held_texts)
        print(f"KN 3-gram on {name} ({len(texts):,} headlines, vocab {len(kn.vocab):,}): per-word perplexity "
              f"{kn_ppl:.1f}  ->  LM / 3-gram ratio {lm_ppl / kn_ppl:.3f} (goal <= 0.80)")


if __name__ == "__main__":
    main()
