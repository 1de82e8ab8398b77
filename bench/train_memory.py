"""Does a long CPU fit hold its memory flat? Resident memory and time per batch of the recipe's LM learner, plain
fastai against fastai with our `TrimHeap` callback (glibc `malloc_trim` every 100 batches, as `fit_phases` adds).

Each setting runs in its own process: the small preset on a sample of the shared headlines, `--batches` training
batches of one one-cycle fit, RSS read from /proc after every 100 (right after a trim, for `TrimHeap`).

    .venv/bin/python bench/train_memory.py [--batches 1200] [--sample 6000]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from archive import SHARED, rss_mb

MODES = ("plain fastai", "TrimHeap")


def run_one(trim: bool, batches: int, sample: int, data: str) -> dict:
    """Train `batches` batches in this process; RSS after each 100 and seconds per batch."""
    from fastai.callback.core import Callback, CancelFitException

    from clickbait.data import load_corpus, split_holdout
    from clickbait.datablocks import lm_dataloaders
    from clickbait.fit import TrimHeap
    from clickbait.tokenizer import HeadlineTokenizer
    from clickbait.train import lm_learner

    df, _ = split_holdout(load_corpus(data, sample=sample))
    tok = HeadlineTokenizer.train(df["text"], max_vocab=6000, min_freq=2)
    learn = lm_learner(lm_dataloaders(df, tok, bs=8, seq_len=32, valid_pct=0.1, seed=0), "small", path="/tmp")
    marks: list[float] = []

    class Measure(Callback):
        order = TrimHeap.order + 1

        def before_fit(self):
            self.count, self.start = 0, time.time()

        def after_batch(self):
            if not self.training:
                return
            self.count += 1
            if self.count % 100 == 0:
                marks.append(round(rss_mb(), 1))
            if self.count >= batches:
                self.seconds = time.time() - self.start
                raise CancelFitException()

    measure = Measure()
    with learn.no_bar():
        learn.fit_one_cycle(batches // len(learn.dls.train) + 1, 1e-2, cbs=[measure, *([TrimHeap()] if trim else [])])
    return {"rss_mb": marks, "s_per_batch": measure.seconds / batches}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=1200)
    p.add_argument("--sample", type=int, default=6000)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT", json.dumps(run_one(args.child == "TrimHeap", args.batches, args.sample, args.data)))
        return
    results = {}
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--batches", str(args.batches),
                              "--sample", str(args.sample), "--data", args.data],
                             capture_output=True, text=True, check=True).stdout
        results[mode] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    for mode, r in results.items():
        rss = r["rss_mb"]
        print(f"{mode:>12}: RSS after 100 batches {rss[0]:.0f} MB, peak {max(rss):.0f} MB, after {args.batches} "
              f"{rss[-1]:.0f} MB; {r['s_per_batch'] * 1000:.0f} ms per batch")
    ratio = results["TrimHeap"]["s_per_batch"] / results["plain fastai"]["s_per_batch"]
    print(f"time per batch, TrimHeap / plain: {ratio:.2f}")


if __name__ == "__main__":
    main()
