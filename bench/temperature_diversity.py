"""Distinct-n and copy rate against sampling temperature: the bundled LM beside a full-vocabulary Kneser-Ney 3-gram.

The 3-gram is the anchor: at temperature 1 its samples match real clickbait's n-gram statistics closely, so its
numbers at lower temperatures show what sharpening alone costs in diversity, whatever the model.
Both samplers keep generate_headlines' rules: top-p 0.95, min_len..max_len words, unique and novel.

Usage: python bench/temperature_diversity.py [--model BUNDLE] [--n 1000] [--temperatures 0.8 0.9 1.0]
"""
import argparse
import time
from pathlib import Path

import numpy as np

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.evaluate import copy_rate, distinct_n, evaluate_generation
from clickbait.generate import GenerationRequest
from clickbait.generate import score_headlines
from clickbait.text import count_words
from lm_quality import KneserNey3, words

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def sample_kn(kn: KneserNey3, n: int, temperature: float, known: set[str], *, top_p: float = 0.95, min_len: int = 4,
              max_len: int = 15, seed: int = 0) -> list[str]:
    """`n` unique headlines (space-joined lowercase tokens) not in `known`, from the 3-gram at `temperature`."""
    vocab = kn.followers[0]
    end, unk = vocab.index("</s>"), vocab.index("<unk>")
    is_word = np.array([any(ch.isalnum() for ch in w) and w != "<unk>" for w in vocab])
    rng, out, seen = np.random.default_rng(seed), [], set(known)
    while len(out) < n:
        u, v, tokens, count = "<s>", "<s>", [], 0
        while count <= max_len:
            p = kn.distribution(u, v)
            p[unk] = 0
            if count < min_len:
                p[end] = 0
            p = p ** (1 / temperature)
            order = np.argsort(-p)
            head = order[:np.searchsorted(np.cumsum(p[order]) / p.sum(), top_p) + 1]
            token = head[rng.choice(len(head), p=p[head] / p[head].sum())]
            if token == end:
                break
            tokens.append(vocab[token])
            count += is_word[token]
            u, v = v, vocab[token]
        text = " ".join(tokens)
        if count <= max_len and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def fluency(texts: list[str], bundle) -> float:
    """Mean log-probability per word (end of headline counted as one) under the LM: the same judge for all."""
    return float(np.mean([s / (count_words(t) + 1) for s, t in zip(score_headlines(texts, bundle), texts)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.8, 0.9, 1.0])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    bundle = resolve_bundle(args.model, "lm")
    train, held = split_holdout(load_chakraborty(args.data))
    target = bundle.config.get("target_label", "clickbait")
    real = held.loc[held["label"] == target, "text"].tolist()[:args.n]
    t0 = time.time()
    kn = KneserNey3(list(train.loc[train["label"] == target, "text"]), min_freq=1)
    known = {" ".join(words(t)) for t in train["text"]}
    print(f"{'sampler':<28}{'T':>5}{'distinct-1':>12}{'distinct-2':>12}{'copy rate':>11}{'LM log-prob/word':>18}")
    print(f"{'real held-out ' + target:<28}{'-':>5}{distinct_n(real, 1):>12.3f}{distinct_n(real, 2):>12.3f}"
          f"{copy_rate(real, train['text']):>11.3f}{fluency(real, bundle):>18.3f}")
    d2 = {}
    for t in sorted(args.temperatures, reverse=True):
        lm = evaluate_generation(GenerationRequest(n=args.n, seed=args.seed, temperature=t, model=bundle),
                                 train_texts=train["text"], samples=args.n)
        grams = sample_kn(kn, args.n, t, known, seed=args.seed)
        d2[t] = lm.distinct_2, distinct_n(grams, 2)
        print(f"{'LM (' + bundle.config['preset']['name'] + ')':<28}{t:>5.2f}{lm.distinct_1:>12.3f}"
              f"{lm.distinct_2:>12.3f}{lm.copy_rate:>11.3f}{fluency(lm.samples, bundle):>18.3f}")
        print(f"{'KN 3-gram, full vocabulary':<28}{t:>5.2f}{distinct_n(grams, 1):>12.3f}{d2[t][1]:>12.3f}"
              f"{copy_rate(grams, train['text']):>11.3f}{fluency(grams, bundle):>18.3f}")
    hot, cold = max(d2), min(d2)
    if hot != cold:
        print(f"distinct-2 at T={cold} / at T={hot}: LM {d2[cold][0] / d2[hot][0]:.2f}, "
              f"KN 3-gram {d2[cold][1] / d2[hot][1]:.2f}")
    print(f"({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
