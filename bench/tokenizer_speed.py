"""Tokenizer throughput: 1M headlines (the shared headlines resampled) through the headline tokenizer on all cores.

Usage: python bench/tokenizer_speed.py [--n 1000000] [--workers 2]
"""
import argparse
import time
from pathlib import Path

from clickbait.data import load_chakraborty, split_holdout
from clickbait.tokenizer import HeadlineTokenizer, tokenize_headlines

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default=str(SHARED))
    args = p.parse_args()
    train, held = split_holdout(load_chakraborty(args.data))
    texts = train["text"].sample(args.n, replace=True, random_state=0).tolist()
    t0 = time.time()
    tokens = tokenize_headlines(texts, n_workers=args.workers)
    dt = time.time() - t0
    n_tok = sum(len(t) for t in tokens)
    print(f"tokenized {len(texts):,} headlines ({n_tok:,} tokens) with {args.workers} workers in {dt:.1f}s: "
          f"{len(texts) / dt:,.0f} headlines/s (goal: 1M in <= 180s)")
    t0 = time.time()
    tok = HeadlineTokenizer.train(train["text"])
    print(f"vocabulary from {len(train):,} training headlines in {time.time() - t0:.1f}s: {len(tok):,} tokens; "
          f"coverage of {len(held):,} held-out headlines: {tok.coverage(list(held['text'])):.4f}")


if __name__ == "__main__":
    main()
