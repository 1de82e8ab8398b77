"""The `clickbait` command: generate, score, eda and train. Exit 0 on success, 2 on bad usage or input."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _read_lines(source: str) -> list[str]:
    from .data import load_headlines
    if source == "-":
        return [line.rstrip("\n") for line in sys.stdin]
    return load_headlines(source, dedupe=False)["text"].tolist()


def _generate(args) -> None:
    from .generate import generate_headlines
    out = generate_headlines(args.n, args.min_len, args.max_len, temperature=args.temperature, top_p=args.top_p,
                             top_k=args.top_k, prefix=args.prefix, style=args.style, seed=args.seed,
                             model=args.model)
    print("\n".join(out))


def _score(args) -> None:
    from .generate import score_headlines
    texts = _read_lines(args.source)
    for text, score in zip(texts, score_headlines(texts, args.model)):
        print(f"{score:.3f}\t{text}")


def _eda(args) -> None:
    from .data import headline_stats, load_headlines, plot_headline_stats
    df = load_headlines(args.source, text_col=args.text_col)
    print(headline_stats(df))
    if args.plot:
        print(f"plot written to {plot_headline_stats(df, args.plot)}")


def _train(args) -> None:
    from .train import RecipeConfig, run_recipe
    if Path(args.out).exists() and not args.force:
        raise FileExistsError(f"{args.out} exists; pass --force to replace it")
    run_recipe(args.data, args.out, args.work, RecipeConfig(preset=args.preset), sample=args.sample)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per task."""
    p = argparse.ArgumentParser(prog="clickbait", description="Headline language models: generate, score, explore.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="print generated headlines, one per line")
    g.add_argument("-n", type=int, default=20, help="how many headlines (default 20)")
    g.add_argument("--min-len", type=int, default=4, help="fewest words (default 4)")
    g.add_argument("--max-len", type=int, default=15, help="most words (default 15)")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--prefix", default=None, help='start every headline with these words, e.g. "10 Reasons Why"')
    g.add_argument("--style", default="title", choices=["title", "sentence", "lower"])
    g.add_argument("--seed", type=int, default=None, help="same seed, same headlines")
    g.add_argument("--model", default=None, help="LM bundle directory (default: the bundled model)")
    g.set_defaults(func=_generate)

    s = sub.add_parser("score", help="log-probability (nats) of each headline under the LM")
    s.add_argument("source", help="a .txt/.csv file of headlines, or - for stdin")
    s.add_argument("--model", default=None)
    s.set_defaults(func=_score)

    e = sub.add_parser("eda", help="corpus statistics, and optionally a PNG of them")
    e.add_argument("source", help="a .csv, .txt or .txt.gz file, or a URL")
    e.add_argument("--text-col", default=None)
    e.add_argument("--plot", default=None, metavar="FILE.png")
    e.set_defaults(func=_eda)

    t = sub.add_parser("train", help="run the ULMFiT LM recipe on a Chakraborty-format folder, writing a bundle")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--work", default="runs/cli")
    t.add_argument("--preset", default="small", choices=["tiny", "small", "base"])
    t.add_argument("--sample", type=int, default=None)
    t.add_argument("--force", action="store_true")
    t.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    from .bundle import BundleError
    from .data import HeadlineDataError
    from .generate import GenerationError
    try:
        args.func(args)
    except (HeadlineDataError, BundleError, GenerationError, FileExistsError, FileNotFoundError) as e:
        print(f"clickbait {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
