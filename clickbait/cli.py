"""The `clickbait` command: generate, score, classify, check, rewrite, serve, train, eda, evaluate.

Exit 0 on success, 2 on bad usage or input (one line on stderr, no traceback). Under torchrun
(`torchrun --nproc_per_node=K -m clickbait.cli train|generate ...`) the ranks share the work.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from .errors import ClickbaitError, OutputExistsError, UsageError
from .generate import LABEL_BUNDLES, GenerationRequest, most_fluent_first
from .tokenizer import STYLES

__all__ = ["main", "build_parser", "request_from_args", "NOT_REQUEST_FLAGS"]

# Flags of `generate` and `evaluate` that say where output goes or what is measured, not what is generated:
# every other flag is a `GenerationRequest` field of the same name (a test keeps the two in step).
NOT_REQUEST_FLAGS = {"generate": {"out", "resume", "force", "chunk_size", "quiet", "order"},
                     "evaluate": {"data", "text_col", "json"}}


def _read_texts(args) -> list[str]:
    """Headlines from -t/--text, stdin (-) or a file, one per input line in the order given, each cleaned the same
    way whatever its source ("" for a blank line, which gets an empty row)."""
    from .data import load_headlines
    from .errors import HeadlineDataError, HeadlineSourceNotFound
    from .text import clean_headline
    if args.text and args.source:
        raise UsageError(f"give headlines with -t or in {args.source}, not both")
    if args.text:
        return [clean_headline(t) for t in args.text]
    if args.source is None:
        raise UsageError("no headlines: pass a file, - for stdin, or -t HEADLINE (repeatable)")
    source = args.source
    if source != "-" and not Path(source).suffix.lower() in (".txt", ".gz"):
        try:
            return load_headlines(source, text_col=args.text_col, dedupe=False, max_chars=None)["text"].tolist()
        except HeadlineSourceNotFound as e:
            raise HeadlineSourceNotFound(f"{e} (to pass headlines themselves, use -t HEADLINE)") from None
    try:
        if source == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # bytes, so binary input is our error, not a traceback
            data = stdin.read().decode("utf-8") if stdin is not None else sys.stdin.read()
        else:
            opener = gzip.open if source.lower().endswith(".gz") else open
            with opener(source, "rb") as f:
                data = f.read().decode("utf-8")
    except FileNotFoundError:
        raise HeadlineSourceNotFound(f"{source}: no such file (to pass headlines themselves, use -t HEADLINE)") \
            from None
    except UnicodeDecodeError as e:
        raise HeadlineDataError(f"{'stdin' if source == '-' else source}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise HeadlineDataError(f"{source}: cannot be read ({e.strerror or e})") from None
    # Lines end at "\n" only: a "\r" inside a line is whitespace that cleaning folds, never a new row.
    lines = data.split("\n")
    return [clean_headline(line) for line in (lines[:-1] if lines[-1] == "" else lines)]


def _per_line(texts: list[str], score) -> "pd.DataFrame":
    """`score` (non-empty headlines -> DataFrame without `text`) for every non-blank line; blank lines get empty
    cells, so the output keeps one row per input line."""
    import pandas as pd
    kept = [t for t in texts if t]
    scored = score(kept) if kept else pd.DataFrame()
    scored.index = [i for i, t in enumerate(texts) if t]
    return pd.concat([pd.DataFrame({"text": texts}), scored.reindex(range(len(texts)))], axis=1)


def _write_table(df, out: str | None) -> None:
    from .batch import spreadsheet_safe
    df = df.assign(text=df["text"].map(spreadsheet_safe))
    if out is None:
        df.to_csv(sys.stdout, index=False, float_format="%.4f", lineterminator="\n")
        return
    if Path(out).exists():
        raise OutputExistsError(f"{out} exists; choose another --out")
    df.to_csv(out, index=False, float_format="%.4f")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def request_from_args(args: argparse.Namespace) -> GenerationRequest:
    """The generation request a `generate` or `evaluate` command line asks for; `--ban` adds to the default list."""
    values = {f.name: getattr(args, f.name) for f in fields(GenerationRequest)}
    values["banned_words"] = GenerationRequest.banned_words | set(args.banned_words or ())
    values["keywords"] = tuple(args.keywords or ())
    values["eta"] = args.eta or None  # a flag cannot say None: `--eta 0` turns the cut off
    values["repeat_floor"] = args.repeat_floor or None
    return GenerationRequest(**values)


def _generate(args) -> None:
    from fastai.torch_core import num_distrib, rank_distrib

    from .batch import iter_chunks, write_headlines
    request = request_from_args(args)
    if args.out is None:
        if num_distrib() > 1:
            raise UsageError("under torchrun, pass --out FILE: each rank writes a shard that rank 0 merges")
        for rows in iter_chunks(request.sampler(), request.n, args.chunk_size):
            rows = most_fluent_first(rows) if args.order == "fluency" else rows
            sys.stdout.write("".join(text + "\n" for text in rows["text"]))
            sys.stdout.flush()
        return
    request = write_headlines(args.out, request, resume=args.resume, overwrite=args.force,
                              chunk_size=args.chunk_size, progress=not args.quiet)
    if rank_distrib() == 0 and not args.quiet:
        print(f"{request.n:,} headlines in {args.out} (seed {request.seed})", file=sys.stderr)


def _score(args) -> None:
    import pandas as pd

    from .generate import score_headlines
    _write_table(_per_line(_read_texts(args), lambda kept: pd.DataFrame(
        {"log_prob": score_headlines(kept, args.model)})), args.out)


def _classify(args) -> None:
    from .classify import classify_headlines
    _write_table(_per_line(_read_texts(args), lambda kept: classify_headlines(kept, args.model).drop(
        columns="text")), args.out)


def _check(args) -> None:
    from .evaluate import check_headlines
    _write_table(_per_line(_read_texts(args), lambda kept: check_headlines(
        kept, args.model, args.classifier, args.archive, args.training).drop(columns="text")), args.out)


def _rewrite(args) -> None:
    from .rewrite import rewrite_headline
    _write_table(rewrite_headline(args.headline, n=args.n, label=args.label, keep=args.keep, seed=args.seed,
                                  model=args.model, classifier=args.classifier), args.out)


def _serve(args) -> None:
    from .serve import ServerConfig, serve
    serve(args.host, args.port, ServerConfig(model=args.model, classifier=args.classifier, token=args.token,
                                             max_parallel=args.max_parallel))


def _eda(args) -> None:
    from .data import headline_stats, load_headlines, plot_headline_stats
    df = load_headlines(args.source, text_col=args.text_col)
    print(headline_stats(df))
    if args.plot:
        if Path(args.plot).exists() or Path(args.plot).is_symlink():
            raise OutputExistsError(f"{args.plot} exists; choose another --plot file")
        print(f"plot written to {plot_headline_stats(df, args.plot)}")


def _evaluate(args) -> None:
    from .data import load_corpus, split_holdout
    from .evaluate import evaluate_generation
    train_texts = None
    if args.data:
        train_texts = split_holdout(load_corpus(args.data, text_col=args.text_col))[0]["text"]
    report = evaluate_generation(request_from_args(args), train_texts=train_texts)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report)


def _check_out(args) -> None:
    if Path(args.out).exists() and not args.force:
        raise OutputExistsError(f"{args.out} exists; pass --force to replace it")


def _train(args) -> None:
    from .data import load_corpus, split_holdout
    _check_out(args)
    if args.kind == "lm":
        from .fit import Phase
        from .train import RecipeConfig, run_recipe
        cfg = RecipeConfig(preset=args.preset, target_label=args.target_label, backwards=args.backwards,
                           conditional=args.conditional)
        if args.max_vocab is not None:
            cfg.max_vocab = args.max_vocab
        if args.unknown_classes is not None:
            cfg.unknown_classes = args.unknown_classes
        if args.general_epochs:
            cfg.general = [Phase(args.general_epochs, cfg.general[0].lr)]
        if args.target_epochs:
            cfg.target = cfg.target[:-1] + [Phase(args.target_epochs, cfg.target[-1].lr)]
        data = load_corpus(args.data, text_col=args.text_col, label_col=args.label_col, sample=args.sample)
        run_recipe(data, args.out, args.work or "runs/lm", cfg, overwrite=True)
    elif args.kind == "discriminator":
        from .train import train_discriminator
        df = load_corpus(args.data, text_col=args.text_col, label_col=args.label_col, sample=args.sample)
        train_df, _ = split_holdout(df)  # real headlines of the training slice only
        if "label" in train_df:
            train_df = train_df[train_df["label"] == args.target_label]
        train_discriminator(train_df["text"], lm=args.lm, work=args.work or "runs/discriminator", out=args.out,
                            overwrite=True)
    else:
        from .fit import Phase
        from .train import ClassifierConfig, train_classifier
        cfg = ClassifierConfig()
        if args.epochs:
            cfg.phases = cfg.phases[:-1] + [Phase(args.epochs, cfg.phases[-1].lr)]
        df = load_corpus(args.data, text_col=args.text_col, label_col=args.label_col or "label", sample=args.sample)
        train_df, _ = split_holdout(df)  # the held-out slice is for benches only
        train_classifier(train_df, lm=args.lm, cfg=cfg, work=args.work or "runs/classifier", out=args.out,
                         overwrite=True)


def _request_args(g: argparse.ArgumentParser) -> None:
    """One flag per `GenerationRequest` field, with the request's own defaults."""
    r = GenerationRequest
    g.add_argument("-n", type=int, default=r.n, help=f"how many headlines (default {r.n})")
    g.add_argument("--min-len", type=int, default=r.min_len, help=f"fewest words (default {r.min_len})")
    g.add_argument("--max-len", type=int, default=r.max_len, help=f"most words (default {r.max_len})")
    g.add_argument("--temperature", type=float, default=r.temperature,
                   help=f"sampling temperature (default {r.temperature})")
    g.add_argument("--top-k", type=int, default=r.top_k, help="sample among the k most likely tokens only")
    g.add_argument("--top-p", type=float, default=r.top_p, help=f"nucleus sampling mass (default {r.top_p})")
    g.add_argument("--eta", type=float, default=r.eta,
                   help=f"eta-sampling cut; 0 turns it off (default {r.eta})")
    g.add_argument("--repeat-floor", type=float, default=r.repeat_floor,
                   help=f"least LM probability for a word repeated straight after itself; 0 turns it off "
                        f"(default {r.repeat_floor})")
    g.add_argument("--prefix", default=r.prefix, help='start every headline with these words, e.g. "10 Reasons Why"')
    g.add_argument("--style", default=r.style, choices=STYLES, help=f"casing (default {r.style})")
    g.add_argument("--seed", type=int, default=r.seed, help="same seed, same headlines")
    g.add_argument("--unique", action=argparse.BooleanOptionalAction, default=r.unique,
                   help="no two headlines equal after normalisation")
    g.add_argument("--novel", action=argparse.BooleanOptionalAction, default=r.novel,
                   help="no headline equal to a training headline")
    g.add_argument("--label", default=r.label, choices=sorted(LABEL_BUNDLES),
                   help=f"the voice: which bundled LM writes (default {r.label})")
    g.add_argument("--keyword", dest="keywords", action="append", default=None, metavar="WORDS",
                   help="every headline holds WORDS, wherever they fit (repeatable; capitals kept as written)")
    g.add_argument("--archive", default=r.archive, metavar="FILE",
                   help="your published headlines (.txt, .txt.gz or .csv): none is repeated or shares a 5-word run")
    g.add_argument("--ban", dest="banned_words", action="append", default=None, metavar="WORD",
                   help="never write WORD (repeatable; added to the default list of slurs and profanity)")
    g.add_argument("--min-score", type=float, default=r.min_score,
                   help="keep headlines the classifier scores at least this")
    g.add_argument("--rerank", action="store_true", default=r.rerank,
                   help="draw 3x as many and keep the most click-baity")
    g.add_argument("--rare-words", action=argparse.BooleanOptionalAction, default=r.rare_words,
                   help="fill the LM's out-of-vocabulary slots with rare training words (names, topical words; "
                   "on by default)")
    g.add_argument("--realism", action=argparse.BooleanOptionalAction, default=r.realism,
                   help="keep candidates by discriminator rejection sampling (slower; README: realism)")
    g.add_argument("--model", default=r.model, help="LM bundle directory (default: the bundled LM)")
    g.add_argument("--classifier", default=r.classifier,
                   help="classifier bundle for --min-score/--rerank (default: bundled)")
    g.add_argument("--discriminator", default=r.discriminator,
                   help="discriminator bundle for --realism (default: the bundled one, for the bundled LM)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per task."""
    p = argparse.ArgumentParser(prog="clickbait", description="Headline language models: generate, score, classify, "
                                "train and evaluate. Errors exit with status 2 and a one-line message.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="generate headlines to stdout or a file (a resumable batch job)",
                       description="Generate headlines. With --out the job streams to a .csv, .jsonl or .txt file "
                       "with bounded memory, and --resume continues it after a kill.")
    _request_args(g)
    g.add_argument("--out", default=None, metavar="FILE", help="write to FILE.csv, .jsonl or .txt instead of stdout")
    g.add_argument("--resume", action="store_true", help="continue an unfinished --out job")
    g.add_argument("--force", action="store_true", help="replace an existing --out file")
    g.add_argument("--chunk-size", type=_positive_int, default=1000, help="headlines per write (default 1000)")
    g.add_argument("--order", choices=["fluency", "drawn"], default="fluency",
                   help="printed headlines: each chunk most fluent first (LM log-prob per word; default), or as drawn; "
                        "--out files keep the drawn order, which a resumed job continues")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_generate)

    for name, help_, func in (("score", "log-probability (nats) of each headline under the LM", _score),
                              ("classify", "label and class probabilities of each headline", _classify),
                              ("check", "fluency, clickbait probability, grammar slips and copies of each headline",
                               _check)):
        s = sub.add_parser(name, help=help_, description=help_ + "; a CSV table on stdout or --out.")
        s.add_argument("source", nargs="?", default=None,
                       help="a .txt/.txt.gz/.csv file of headlines, or - for stdin (one per line)")
        s.add_argument("-t", "--text", action="append", default=None, metavar="HEADLINE",
                       help="a headline given on the command line; repeat for more")
        s.add_argument("--text-col", default=None, help="CSV column holding the headlines")
        s.add_argument("--model", default=None, help=f"{'classifier' if name == 'classify' else 'LM'} bundle "
                       "(default: the bundled one)")
        if name == "check":
            s.add_argument("--classifier", default=None, help="classifier bundle (default: the bundled one)")
            s.add_argument("--archive", default=None, metavar="FILE",
                           help="your published headlines: report the one each headline copies a 5-word run of")
            s.add_argument("--training", default=None, metavar="FILE",
                           help="the LM's training headlines (e.g. its corpus file): report the one each headline "
                           "copies a 5-word run of")
        s.add_argument("--out", default=None, metavar="FILE.csv")
        s.set_defaults(func=func)

    w = sub.add_parser("rewrite", help="variants of a headline in a voice, keeping its content words, best first",
                       description="Rewrite a headline: keep its names, numbers and rarest content words (or --keep), "
                       "write variants in --label's voice, rank by log(classifier probability of the voice) + LM "
                       "log-prob per word; a CSV table on stdout or --out.")
    w.add_argument("headline")
    w.add_argument("-n", type=_positive_int, default=10, help="how many variants (default 10)")
    w.add_argument("--label", default="clickbait", choices=sorted(LABEL_BUNDLES), help="the voice to write in")
    w.add_argument("--keep", action="append", default=None, metavar="WORDS",
                   help="keep WORDS instead of the picked content words (repeatable)")
    w.add_argument("--seed", type=int, default=None)
    w.add_argument("--model", default=None, help="LM bundle (default: the bundled LM of the voice)")
    w.add_argument("--classifier", default=None, help="classifier bundle (default: the bundled one)")
    w.add_argument("--out", default=None, metavar="FILE.csv")
    w.set_defaults(func=_rewrite)

    v = sub.add_parser("serve", help="the editor's page and HTTP API (pip install -e .[serve])",
                       description="Serve the page at / and the JSON API under /api (docs at /docs). Binding any "
                       "address but 127.0.0.1 needs --token or CLICKBAIT_TOKEN, checked on every API request.")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--model", default=None, help="LM bundle (default: the bundled LMs)")
    v.add_argument("--classifier", default=None, help="classifier bundle (default: the bundled one)")
    v.add_argument("--token", default=None, help="API token (default: $CLICKBAIT_TOKEN)")
    v.add_argument("--max-parallel", type=_positive_int, default=2,
                   help="requests computing at once; the rest queue (default 2: one per core here)")
    v.set_defaults(func=_serve)

    t = sub.add_parser("train", help="train an LM (ULMFiT recipe) or a classifier, writing a bundle",
                       description="Train from a Chakraborty-format folder, a .csv, .txt or .txt.gz file. "
                       "Rerun with the same --work to resume after a kill.")
    t.add_argument("kind", choices=["lm", "classifier", "discriminator"],
                   help="discriminator: real vs generated by --lm, the realism filter's model")
    t.add_argument("--data", required=True, help="folder with clickbait.txt.gz + non_clickbait.txt.gz, or a file")
    t.add_argument("--out", required=True, help="bundle directory to write")
    t.add_argument("--work", default=None, help="checkpoints and logs (default runs/lm or runs/classifier)")
    t.add_argument("--text-col", default=None, help="CSV column holding the headlines")
    t.add_argument("--label-col", default=None, help="CSV column holding labels (classifier: default 'label')")
    t.add_argument("--sample", type=_positive_int, default=None,
                   help="headlines drawn (per file for a folder), for quick runs")
    t.add_argument("--force", action="store_true", help="replace an existing --out bundle")
    t.add_argument("--preset", default="small", choices=["tiny", "small", "base"], help="lm: model size")
    t.add_argument("--target-label", default="clickbait",
                   help="lm, discriminator: label of the target style (default clickbait)")
    t.add_argument("--backwards", action="store_true", help="lm: read headlines right to left (a backward LM)")
    t.add_argument("--conditional", action="store_true",
                   help="lm: one LM for every label, each headline opened by its label's token")
    t.add_argument("--max-vocab", type=_positive_int, default=None,
                   help="lm: most tokens in the vocabulary (default: the recipe's, RecipeConfig.max_vocab); rarer "
                        "words go to the rare-word table")
    t.add_argument("--unknown-classes", action=argparse.BooleanOptionalAction, default=None,
                   help="lm: write each word outside the vocabulary as its class's token (plural, -ing, -ly, number, "
                        "...) instead of one xxunk (default: the recipe's, RecipeConfig.unknown_classes)")
    t.add_argument("--general-epochs", type=_positive_int, default=None, help="lm: epochs of the general stage")
    t.add_argument("--target-epochs", type=_positive_int, default=None, help="lm: epochs of the final target phase")
    t.add_argument("--lm", default=None,
                   help="classifier, discriminator: LM bundle whose encoder it starts from (default bundled)")
    t.add_argument("--epochs", type=int, default=None, help="classifier: epochs of the final unfrozen phase")
    t.set_defaults(func=_train)

    e = sub.add_parser("eda", help="corpus statistics, and optionally a PNG of them")
    e.add_argument("source", help="a .csv, .txt or .txt.gz file, or a URL")
    e.add_argument("--text-col", default=None)
    e.add_argument("--plot", default=None, metavar="FILE.png")
    e.set_defaults(func=_eda)

    v = sub.add_parser("evaluate", help="generation metrics of an LM bundle (speed, lengths, novelty, diversity)")
    _request_args(v)
    v.set_defaults(n=1000, seed=0)
    v.add_argument("--data", default=None, help="the bundle's training corpus, for the copy rate")
    v.add_argument("--text-col", default=None)
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_evaluate)
    return p


def _init_distributed() -> None:
    """Join torchrun's process group (gloo on CPU, nccl on GPU) and share the cores between local ranks."""
    import torch
    import torch.distributed as dist
    from fastai.torch_core import num_distrib
    if num_distrib() <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", num_distrib()))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("train", "generate"):
            _init_distributed()
        args.func(args)
    except ClickbaitError as e:
        print(f"clickbait {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `clickbait generate | head` closed the pipe: not an error
        sys.stderr.close()
    except KeyboardInterrupt:
        hint = " (rerun with --resume to continue)" if getattr(args, "out", None) and args.command == "generate" else ""
        print(f"clickbait {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
