"""A blind read: headlines of two or more samplers, shuffled together, for a person to mark the plausible ones.

    .venv/bin/python bench/blind_read.py sheet --out bench/reads/2026-12-02-a --n 50 --seed 0 \
        --sampler "old:temperature=0.8,top_p=0.95,eta=None,rare_words=False" --sampler "new:"
    # read sheet.txt there without opening key.json; list the numbers of the plausible headlines
    .venv/bin/python bench/blind_read.py score --out bench/reads/2026-12-02-a --plausible 3,17,42

`sheet` writes `sheet.txt` (numbered headlines, setting hidden) and `key.json` (which sampler wrote each);
`score` records the marks in `marks.json` (a later `score` without `--plausible` reads them back) and prints, per
sampler, how many of its headlines were marked plausible, and how that splits by the longest word run each
headline shares with a training headline of the voice (`clickbait.evaluate.shared_run`; the copy rate counts
runs of 5 or more), and by whether it holds a word outside the LM's vocabulary (a filled rare-word slot). Sheets
and marks under `bench/reads/` are kept in git: marked generated headlines, to score a new selector or filter
against without reading again.
"""
import argparse
import json
import random
from collections import Counter
from pathlib import Path

from realism import SHARED, parse_extra

from clickbait.data import load_chakraborty, split_holdout
from clickbait.evaluate import shared_run
from clickbait.generate import GenerationRequest, generate_from
from clickbait.rare import rare_slots

RUN_BINS = [(0, 2, "at most 2 words"), (3, 3, "3 words"), (4, 4, "4 words"), (5, 99, "5+ words (copy rate)")]


def sheet(out: Path, samplers: list[str], n: int, seed: int) -> None:
    items = []
    for k, spec in enumerate(samplers):
        # Each sampler its own seed: with one seed, samplers that filter one candidate stream share headlines.
        name, options = parse_extra(spec)
        items += [(name, text) for text in generate_from(GenerationRequest(n=n, seed=seed + k, **options))]
    random.Random(seed).shuffle(items)
    out.mkdir(parents=True, exist_ok=True)
    (out / "key.json").write_text(json.dumps(items, indent=1))
    (out / "sheet.txt").write_text("".join(f"{i:3d} {text}\n" for i, (_, text) in enumerate(items)))
    print(f"{len(items)} headlines in {out / 'sheet.txt'}")


def score(out: Path, plausible: set[int] | None, data: Path, label: str) -> None:
    items = json.loads((out / "key.json").read_text())
    if plausible is None:
        plausible = set(json.loads((out / "marks.json").read_text())["plausible"])
    else:
        (out / "marks.json").write_text(json.dumps({"plausible": sorted(plausible)}))
    total, marked = Counter(name for name, _ in items), Counter(items[i][0] for i in plausible)
    train, _ = split_holdout(load_chakraborty(data))
    texts = [text for _, text in items]
    runs = shared_run(texts, train.loc[train["label"] == label, "text"])
    lm = GenerationRequest(label=label).lm()
    vocab = set(lm.tokenizer.vocab)
    has_rare = [bool(rare_slots(tokens, vocab)) for tokens in lm.tokenizer.tokenize(texts)]
    for name in total:
        print(f"{name}: {marked[name]} of {total[name]} plausible ({marked[name] / total[name]:.0%})")
        for low, high, what in RUN_BINS:
            rows = [i for i, (who, _) in enumerate(items) if who == name and low <= runs[i] <= high]
            hits = sum(i in plausible for i in rows)
            print(f"    longest run shared with a training headline {what}: {hits} of {len(rows)} plausible")
        for rare, what in ((True, "holds a"), (False, "holds no")):
            rows = [i for i, (who, _) in enumerate(items) if who == name and has_rare[i] == rare]
            hits = sum(i in plausible for i in rows)
            print(f"    {what} word outside the LM's vocabulary (a rare-word slot): {hits} of {len(rows)} plausible")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["sheet", "score"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sampler", action="append", default=[], help="NAME:field=value,... (sheet)")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plausible", default=None, help="comma-separated sheet numbers (score; default: marks.json)")
    p.add_argument("--data", type=Path, default=SHARED, help="the corpus whose training slice runs are checked against")
    p.add_argument("--label", default="clickbait", help="the voice of the training headlines (score)")
    args = p.parse_args()
    if args.step == "sheet":
        sheet(args.out, args.sampler, args.n, args.seed)
    else:
        marks = None if args.plausible is None else {int(i) for i in args.plausible.split(",") if i.strip()}
        score(args.out, marks, args.data, args.label)


if __name__ == "__main__":
    main()
