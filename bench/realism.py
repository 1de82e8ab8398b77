"""Do generated headlines read as real ones? Real held-out clickbait against the old default, the new one and others.

For each sampler, as many headlines as the held-out clickbait slice holds: word and char TF-IDF discriminators
(5-fold CV accuracy, 0.5 = indistinguishable), distinct-1/2, 5-gram copy rate vs training clickbait, grammar-slip
rate, exact lengths / unique / novel, headlines/s, and `voice`: the share the bundled classifier labels as the
voice asked for. "real vs real" pits held-out clickbait against as many training clickbait headlines. `--label
news` does all of it for the news voice against held-out news. `--neural` adds a fastai classifier on the LM encoder trained to tell real from
generated (training-slice real + one generated set; tested on held-out real + a fresh generated set), for the
first three samplers. `--keywords 200` adds keyword generation: 200 keyword sets (1 or 2 content words of a held-out
headline of the voice, as written there), 5 headlines each, against 1,000 unconstrained ones; `contains` is the share
holding every keyword as given. `--keyword-source train` draws the sets from training headlines instead (for tuning). `--split valid` measures
against the recipe's clean validation split instead (`mark_validation`: headlines of the training slice that
neither LM stage trained on), for choosing a setting without touching the held-out slice.

    .venv/bin/python bench/realism.py [--extra "name:temperature=1.0,top_p=0.9,eta=None"] [--neural] [--samples 10]
                                      [--label news] [--keywords 200]
"""
import argparse
import random
import time
from pathlib import Path

import pandas as pd

from clickbait.classify import classify_headlines
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import VALID_COL, mark_validation
from clickbait.evaluate import copy_rate, discriminator_accuracy, distinct_n, slip_rate
from clickbait.generate import DEFAULT_BANNED_WORDS, GenerationRequest, generate_from
from clickbait.text import WORD, count_words, holds_phrase, normalise_headline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"
OLD_DEFAULT = dict(temperature=0.8, top_p=0.95, eta=None, rare_words=False)  # the default until 2026-11-25
# The defaults since: top-p 0.9 (2026-11-25), eta (seventh session), T=1.0 with the repeat floor (to the eighth).
TOP_P_DEFAULT = dict(temperature=1.0, top_p=0.9, eta=None, repeat_floor=None)
SAMPLERS = [("old default (T=0.8, top-p 0.95)", OLD_DEFAULT),
            ("default (T=1.03, eta 0.0009, repeat floor, rare words)", {}),
            ("T=1.0 (default until the eighth session)", dict(temperature=1.0)),
            ("no repeat floor", dict(repeat_floor=None)),
            ("top-p 0.9 at T=1.0 (default 2026-11-25 to 12-02)", TOP_P_DEFAULT),
            ("default + realism filter", dict(realism=True)),
            ("top-p 0.95", dict(top_p=0.95, eta=None)),
            ("no truncation (top-256)", dict(eta=None)),
            ("no rare words", dict(rare_words=False)),
            ("T=0.9", dict(temperature=0.9)),
            ("T=0.8", dict(temperature=0.8))]


def _number_or_text(value: str):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def parse_extra(spec: str) -> tuple[str, dict]:
    name, _, options = spec.partition(":")
    values = {}
    for pair in filter(None, options.split(",")):
        key, value = pair.split("=")
        default = getattr(GenerationRequest, key)
        if value == "None" or isinstance(default, bool):
            values[key] = None if value == "None" else value == "True"
        elif default is None:  # a number (top_k, min_score) or a bundle folder (model, discriminator)
            values[key] = _number_or_text(value)
        else:
            values[key] = type(default)(value)
    return name, values


def neural_discriminator(real_train, gen_train, real_test, gen_test, lm) -> float:
    """Accuracy of a fastai classifier (LM encoder) on held-out real vs a fresh generated set."""
    from clickbait.fit import Phase
    from clickbait.train import ClassifierConfig, train_classifier
    df = pd.DataFrame({"text": list(real_train) + list(gen_train),
                       "label": ["real"] * len(real_train) + ["generated"] * len(gen_train)})
    cfg = ClassifierConfig(phases=[Phase(1, 2e-2, freeze_to=-1), Phase(2, 5e-3)], case_marks=False)
    bundle = train_classifier(df, lm=lm, cfg=cfg, work="bench/out/neural-disc", log=lambda s: None)
    pred = classify_headlines(list(real_test) + list(gen_test), bundle)["label"]
    truth = ["real"] * len(real_test) + ["generated"] * len(gen_test)
    return float((pred.values == pd.Series(truth).values).mean())


def row(name, texts, real, train_target, seconds=None, request=None, measured=None) -> dict:
    """Discriminators on `texts` against `real`; the other measures on `measured` (default `texts`)."""
    measured = texts if measured is None else measured
    out = {"sampler": name, "n": len(texts),
           "disc_word": discriminator_accuracy(real, texts, "word"),
           "disc_char": discriminator_accuracy(real, texts, "char"),
           "distinct_1": distinct_n(measured, 1), "distinct_2": distinct_n(measured, 2),
           "copy_rate": copy_rate(measured, train_target), "slips": slip_rate(measured)}
    if request is not None:
        out.update(exact_len=sum(request.min_len <= count_words(t) <= request.max_len for t in texts) / len(texts),
                   unique=len({normalise_headline(t) for t in texts}) / len(texts),
                   novel=float(request.lm().is_novel(texts).mean()), per_s=len(texts) / seconds,
                   voice=float((classify_headlines(texts)["label"] == request.label).mean()))
    return out


def keyword_sets(headlines: list[str], count: int, seed: int) -> list[list[str]]:
    """`count` keyword sets: 1 or 2 content words (not stop words, 3+ letters) of one headline each."""
    from spacy.lang.en.stop_words import STOP_WORDS
    rng, sets = random.Random(seed), []
    for text in rng.sample(headlines, len(headlines)):
        words = list(dict.fromkeys(w for w in WORD.findall(text) if w.isalpha() and len(w) >= 3
                                   and w.lower() not in STOP_WORDS and w.lower() not in DEFAULT_BANNED_WORDS))
        if words:
            sets.append(rng.sample(words, min(len(words), 1 + len(sets) % 2)))
        if len(sets) == count:
            return sets
    return sets


def contains_all(text: str, keywords: list[str]) -> bool:
    """True when `text` holds every keyword as a whole phrase, exactly as written."""
    return all(holds_phrase(text, k) for k in keywords)


def keyword_rows(args, bundle, real, train_target, source: list[str]) -> list[dict]:
    """An unconstrained row and a keyword row of the same size, 5 headlines per keyword set."""
    sets = keyword_sets(source, args.keywords, args.seed)
    plain = GenerationRequest(n=5 * len(sets), seed=args.seed, model=bundle, label=args.label)
    start = time.time()
    texts = generate_from(plain)
    rows = [row(f"unconstrained, {plain.n}", texts, real, train_target, time.time() - start, plain)]
    texts, hits, start = [], 0, time.time()
    for i, keywords in enumerate(sets):
        request = GenerationRequest(n=5, seed=args.seed + i, model=bundle, label=args.label, keywords=tuple(keywords))
        out = generate_from(request)
        hits += sum(contains_all(t, keywords) for t in out)
        texts += out
    rows.append(row(f"keywords ({len(sets)} sets x 5)", texts, real, train_target, time.time() - start, plain))
    rows[-1]["contains"] = hits / len(texts)
    start = time.time()  # the same work in one call: a call's fixed cost (~0.3 s) dominates calls of 5
    generate_from(GenerationRequest(n=100, seed=args.seed, model=bundle, label=args.label, keywords=tuple(sets[0])))
    print(f"one call of 100 with keywords {sets[0]}: {100 / (time.time() - start):.0f} headlines/s")
    if args.samples:
        print("--- keywords", *[f"{sets[i // 5]} -> {texts[i]}" for i in range(0, 5 * args.samples, 5)], sep="\n")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--model", default=None)
    p.add_argument("--old-model", default=None, help="the LM bundle the old default row uses (default: --model); "
                   "also adds a row of today's sampler on it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", action="append", default=[], help="another sampler: NAME:field=value,...")
    p.add_argument("--no-defaults", action="store_true", help="only the --extra samplers")
    p.add_argument("--neural", action="store_true")
    p.add_argument("--samples", type=int, default=0, help="print this many headlines of each sampler")
    p.add_argument("--label", default="clickbait", help="the voice: real headlines of this label, its bundled LM")
    p.add_argument("--keywords", type=int, default=0, help="add keyword rows over this many keyword sets")
    p.add_argument("--keyword-source", choices=["held-out", "train"], default="held-out")
    p.add_argument("--split", choices=["held-out", "valid"], default="held-out",
                   help="real headlines to measure against: the held-out slice (report) or the validation split (choose)")
    args = p.parse_args()
    train, held = split_holdout(load_chakraborty(args.data))
    if args.split == "valid":
        marked = mark_validation(train.reset_index(drop=True))
        train, held = marked[~marked[VALID_COL]], marked[marked[VALID_COL]]
    real = held[held.label == args.label]["text"].tolist()
    train_target = train[train.label == args.label]["text"]
    bundle = GenerationRequest(model=args.model, label=args.label).lm()
    n = len(real)
    print(f"{args.split} {args.label}: {n:,} headlines; every sampler writes as many (4..15 words, seed {args.seed})")
    rows = [row("real vs real", train_target.sample(n, random_state=0).tolist(), real, train_target, measured=real)]
    samplers = [] if args.no_defaults else list(SAMPLERS)
    if args.old_model and not args.no_defaults:
        samplers[0] = ("old default (old LM, T=0.8, top-p 0.95)", {**OLD_DEFAULT, "model": args.old_model})
        samplers.insert(3, ("old LM, default sampler", {"model": args.old_model}))
    samplers += [parse_extra(spec) for spec in args.extra]
    generated = {}
    for name, options in samplers:
        request = GenerationRequest(n=n, seed=args.seed, label=args.label, **{"model": bundle, **options})
        start = time.time()
        texts = generate_from(request)
        generated[name] = texts
        rows.append(row(name, texts, real, train_target, time.time() - start, request))
        if args.samples:
            print(f"--- {name}", *texts[:args.samples], sep="\n")
    if args.keywords:
        source = real if args.keyword_source == "held-out" else train_target.tolist()
        rows += keyword_rows(args, bundle, real, train_target, source)
    table = pd.DataFrame(rows).set_index("sampler")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table)
    if args.neural:
        real_train = train_target.sample(3000, random_state=1).tolist()
        for name, options in samplers[:3]:  # each costs a classifier fit: the first three
            fresh = generate_from(GenerationRequest(n=3000 + n, seed=args.seed + 1, label=args.label,
                                                    **{"model": bundle, **options}))
            acc = neural_discriminator(real_train, fresh[:3000], real, fresh[3000:], bundle)
            print(f"neural discriminator (fastai, LM encoder), {name}: {acc:.3f}")


if __name__ == "__main__":
    main()
