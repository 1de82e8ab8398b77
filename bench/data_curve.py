"""How the LM improves with data: the whole recipe on a share of its training headlines, beside the bundled LM.

Each share is drawn from the recipe's own training headlines (the clean validation split and the held-out slice
left out, both labels alike), and `run_recipe` trains on 90% of it as on the full data. Every LM is scored on the
same clean validation clickbait: per-token perplexity on the headlines whose every word is in all the vocabularies
(so no LM is scored on its own `xxunk`s), and the statistics of `bench/realism.py --split valid` for as many headlines at the default sampler. A share's
bundle already under `--work` is reused, so the scores can be rerun without training (25%: about 6 min, 50%:
about 13 min on 2 cores).

    .venv/bin/python bench/data_curve.py [--shares 0.25 0.5] [--work runs/data-curve] [--seed 21]
"""
import argparse
import math
from pathlib import Path

import pandas as pd
from realism import SHARED

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import VALID_COL, mark_validation
from clickbait.evaluate import copy_rate, discriminator_accuracy, distinct_n, slip_rate
from clickbait.generate import GenerationRequest, generate_from, score_headlines
from clickbait.train import run_recipe

LABELS = ("clickbait", "news")  # load_chakraborty's order


def share_bundle(train, share: float, work: Path) -> Path:
    """The LM bundle the recipe trains on `share` of `train`'s headlines of each label (trained once)."""
    name = f"{round(share * 100)}"
    out = work / f"lm-{name}"
    if not (out / "config.json").exists():
        part = pd.concat([train[train.label == label].sample(frac=share, random_state=0) for label in LABELS])
        run_recipe(part[["text", "label"]], out, work / f"work-{name}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5])
    p.add_argument("--work", default="runs/data-curve")
    p.add_argument("--seed", type=int, default=21)
    args = p.parse_args()
    train, _ = split_holdout(load_chakraborty(args.data))
    marked = mark_validation(train.reset_index(drop=True))
    train, valid = marked[~marked[VALID_COL]], marked[marked[VALID_COL]]
    real = valid[valid.label == "clickbait"]["text"].tolist()
    train_clickbait = train[train.label == "clickbait"]["text"]
    bundles = {f"{share:.0%} of the headlines": resolve_bundle(share_bundle(train, share, Path(args.work)), "lm")
               for share in args.shares}
    bundles["all (the bundled LM)"] = resolve_bundle(None, "lm")
    tokenizer = bundles["all (the bundled LM)"].tokenizer
    vocabs = [set(b.tokenizer.vocab) for b in bundles.values()]
    covered = [(text, tokens) for text, tokens in zip(real, tokenizer.tokenize(real))
               if all(t in v for v in vocabs for t in tokens)]
    common = [text for text, _ in covered]
    n_scored = sum(len(tokens) - 1 for _, tokens in covered)  # every token after xxbos
    print(f"validation clickbait: {len(real):,} headlines, {len(common):,} hold only words of every vocabulary "
          f"({n_scored:,} tokens); generated: {len(real):,} per LM, seed {args.seed}")
    for name, bundle in bundles.items():
        ppl = math.exp(-sum(score_headlines(common, bundle)) / n_scored)
        texts = generate_from(GenerationRequest(n=len(real), seed=args.seed, model=bundle))
        print(f"{name}: per-token perplexity {ppl:.1f}; word / char discriminators "
              f"{discriminator_accuracy(real, texts, 'word'):.3f} / {discriminator_accuracy(real, texts, 'char'):.3f}, "
              f"distinct-1 {distinct_n(texts, 1):.3f}, distinct-2 {distinct_n(texts, 2):.3f}, "
              f"copy rate {copy_rate(texts, train_clickbait):.3f}, slips {slip_rate(texts):.1%}", flush=True)


if __name__ == "__main__":
    main()
