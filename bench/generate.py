"""generate_headlines vs fastai's LMLearner.predict on the same weights, plus quality of 1000 generated headlines.

Usage: python bench/generate.py [--model BUNDLE] [--n 1000] [--predict-n 20]
"""
import argparse
import re
import time
from pathlib import Path

import pandas as pd

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, normalise_headline, split_holdout
from clickbait.datablocks import lm_dataloaders
from clickbait.generate import generate_headlines
from clickbait.tokenizer import count_words, detokenize
from clickbait.train import lm_learner

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"
WORDS = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


def ngrams(text: str, n: int) -> set:
    ws = WORDS.findall(text.lower())
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def distinct(texts, n: int) -> float:
    grams = [g for t in texts for ws in [WORDS.findall(t.lower())] for g in zip(*(ws[i:] for i in range(n)))]
    return len(set(grams)) / max(len(grams), 1)


def predict_headlines(bundle, df: pd.DataFrame, count: int, max_len: int, temperature: float):
    """fastai's own decoding: LMLearner.predict, one headline per call, cut at the first end of headline."""
    dls = lm_dataloaders(df.head(200), bundle.tokenizer, bs=8, seq_len=16)
    learn = lm_learner(dls, bundle.config["preset"])
    learn.model.load_state_dict(bundle.model.state_dict())
    out = []
    with learn.no_bar():
        for _ in range(count):
            text = learn.predict("", n_words=max_len + 4, temperature=temperature, no_bar=True)
            # predict drops xxbos; the prompt "" is "xxeos", so the headline runs to the next xxeos
            body = text.split(" ")[1:]
            out.append(detokenize(body[:body.index("xxeos")] if "xxeos" in body else body))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--predict-n", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    bundle = resolve_bundle(args.model, "lm")
    train, held = split_holdout(load_chakraborty(args.data))
    target = bundle.config.get("target_label", "clickbait")

    t0 = time.time()
    ours = generate_headlines(args.n, 4, 15, seed=args.seed, model=bundle, return_scores=True)
    ours_rate = args.n / (time.time() - t0)
    t0 = time.time()
    theirs = predict_headlines(bundle, train, args.predict_n, 15, 0.8)
    theirs_rate = args.predict_n / (time.time() - t0)
    print(f"generate_headlines({args.n}): {ours_rate:,.1f} headlines/s")
    print(f"LMLearner.predict loop ({args.predict_n} headlines, same weights): {theirs_rate:,.2f} headlines/s")
    print(f"speed-up: {ours_rate / theirs_rate:,.0f}x (goal >= 100x)")

    texts = ours["text"].tolist()
    keys = [normalise_headline(t) for t in texts]
    train_texts = train["text"].tolist()
    train_5grams = set().union(*(ngrams(t, 5) for t in train_texts))
    lengths_ok = sum(4 <= count_words(t) <= 15 for t in texts)
    print(f"length compliance: {lengths_ok / len(texts):.1%}; duplicates: {len(keys) - len(set(keys))}; "
          f"novel: {bundle.is_novel(texts).mean():.1%}")
    copy = sum(bool(ngrams(t, 5) & train_5grams) for t in texts) / len(texts)
    held_texts = held.loc[held["label"] == target, "text"].tolist()[:len(texts)]
    print(f"distinct-1 {distinct(texts, 1):.3f}, distinct-2 {distinct(texts, 2):.3f} (goal >= 0.6; held-out "
          f"real {target} headlines: {distinct(held_texts, 2):.3f})")
    real_copy = sum(bool(ngrams(t, 5) & train_5grams) for t in held_texts) / len(held_texts)
    print(f"copy rate (any 5-gram of a training headline): {copy:.3f} (goal <= 0.45; held-out real: {real_copy:.3f})")
    print(f"mean log-prob per word: {(ours['log_prob'] / (ours['words'] + 1)).mean():.3f} nats")
    print("samples:\n  " + "\n  ".join(texts[:20]))
    print("LMLearner.predict samples:\n  " + "\n  ".join(theirs[:5]))


if __name__ == "__main__":
    main()
