"""generate_headlines vs fastai's LMLearner.predict on the same weights, plus quality of 1000 generated headlines.

Usage: python bench/generate.py [--model BUNDLE] [--n 1000] [--predict-n 20]
"""
import argparse
import time
from pathlib import Path

import pandas as pd

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import lm_dataloaders
from clickbait.evaluate import copy_rate, distinct_n, evaluate_generation
from clickbait.generate import GenerationRequest
from clickbait.tokenizer import detokenize
from clickbait.train import lm_learner

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


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

    report = evaluate_generation(GenerationRequest(n=args.n, seed=args.seed, model=bundle), train_texts=train["text"])
    t0 = time.time()
    theirs = predict_headlines(bundle, train, args.predict_n, 15, GenerationRequest.temperature)
    theirs_rate = args.predict_n / (time.time() - t0)
    print(f"generate_headlines({args.n}): {report.headlines_per_s:,.1f} headlines/s")
    print(f"LMLearner.predict loop ({args.predict_n} headlines, same weights): {theirs_rate:,.2f} headlines/s")
    print(f"speed-up: {report.headlines_per_s / theirs_rate:,.0f}x (goal >= 100x)")
    held_texts = held.loc[held["label"] == target, "text"].tolist()[:args.n]
    print(report)
    print(f"held-out real {target} headlines: distinct-2 {distinct_n(held_texts, 2):.3f} (goal for generated >= 0.6), "
          f"copy rate {copy_rate(held_texts, train['text']):.3f} (goal for generated <= 0.45)")
    print("LMLearner.predict samples:\n  " + "\n  ".join(theirs[:5]))


if __name__ == "__main__":
    main()
