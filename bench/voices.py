"""Two voices per MB: one conditional LM (a label token per headline) against two target fine-tunes of one general LM.

For each way, its bundles' size on disk and, per voice, the per-token perplexity on that voice's headlines of the
recipe's clean validation split (`mark_validation`: trained on by neither way, used for choosing epochs) - the
same headlines, tokens and priming for both. Realism on the held-out slices comes from `bench/realism.py --model`.

    .venv/bin/python bench/voices.py --conditional runs/cond-bundle [--clickbait B] [--news B]
"""
import argparse
import math
from pathlib import Path

from clickbait.bundle import default_bundle_path, resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import VALID_COL, mark_validation
from clickbait.generate import score_headlines

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).iterdir()) / 2 ** 20


def perplexity(texts: list[str], model, label: str) -> float:
    """Per-token perplexity (tokens after xxbos, xxeos included) of `texts` read in the voice `label`."""
    bundle = resolve_bundle(model, "lm")
    tokens = sum(len(ids) - 1 for ids in bundle.tokenizer.encode_batch(texts))
    return math.exp(-sum(score_headlines(texts, bundle, label=label)) / tokens)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--conditional", required=True, help="conditional LM bundle (labels clickbait and news)")
    p.add_argument("--clickbait", default=str(default_bundle_path("lm")))
    p.add_argument("--news", default=str(default_bundle_path("lm-news")))
    args = p.parse_args()
    train, _ = split_holdout(load_chakraborty(args.data))
    valid = mark_validation(train)
    valid = valid[valid[VALID_COL]]
    ways = {"two fine-tunes": {"clickbait": args.clickbait, "news": args.news},
            "one conditional LM": {"clickbait": args.conditional, "news": args.conditional}}
    print(f"clean validation split: {len(valid):,} headlines")
    for name, models in ways.items():
        mb = sum(megabytes(Path(m)) for m in set(models.values()))
        ppl = {label: perplexity(valid[valid.label == label]["text"].tolist(), model, label)
               for label, model in models.items()}
        print(f"{name:>20}: {mb:5.1f} MiB; per-token perplexity " +
              ", ".join(f"{label} {value:.1f}" for label, value in ppl.items()))


if __name__ == "__main__":
    main()
