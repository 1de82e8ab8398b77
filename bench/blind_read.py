"""A blind read: headlines of two or more samplers, shuffled together, for a person to mark the plausible ones.

    .venv/bin/python bench/blind_read.py sheet --out bench/out/read1 --n 50 --seed 0 \
        --sampler "old:temperature=0.8,top_p=0.95,rare_words=False" --sampler "new:"
    # read bench/out/read1/sheet.txt without opening key.json; list the numbers of the plausible headlines
    .venv/bin/python bench/blind_read.py score --out bench/out/read1 --plausible 3,17,42

`sheet` writes `sheet.txt` (numbered headlines, setting hidden) and `key.json` (which sampler wrote each);
`score` prints, per sampler, how many of its headlines were marked plausible.
"""
import argparse
import json
import random
from collections import Counter
from pathlib import Path

from realism import parse_extra

from clickbait.generate import GenerationRequest, generate_from


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


def score(out: Path, plausible: set[int]) -> None:
    items = json.loads((out / "key.json").read_text())
    total, marked = Counter(name for name, _ in items), Counter(items[i][0] for i in plausible)
    for name in total:
        print(f"{name}: {marked[name]} of {total[name]} plausible ({marked[name] / total[name]:.0%})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["sheet", "score"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sampler", action="append", default=[], help="NAME:field=value,... (sheet)")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plausible", default="", help="comma-separated sheet numbers (score)")
    args = p.parse_args()
    if args.step == "sheet":
        sheet(args.out, args.sampler, args.n, args.seed)
    else:
        score(args.out, {int(i) for i in args.plausible.split(",") if i.strip()})


if __name__ == "__main__":
    main()
