"""A batch job through the CLI: `clickbait generate -n N --out FILE.csv`, its speed and peak RSS at several n.

Peak RSS should stay flat as n grows (only the 64-bit hashes of finished headlines grow: ~70 bytes each).
Usage: python bench/batch_job.py [--n 20000 100000] [--out-dir bench/out]
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from clickbait.batch import read_headlines_file
from clickbait.text import headline_hash


def run(n: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one job in a fresh process."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", "import resource, sys; from clickbait.cli import main; rc = main(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)",
           "generate", "-n", str(n), "--seed", "0", "--out", str(out), "--quiet"]
    start = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.time() - start, int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--out-dir", default="bench/out")
    args = p.parse_args()
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for n in args.n:
        out = Path(args.out_dir) / f"batch_{n}.csv"
        seconds, rss = run(n, out)
        texts = pd.concat(list(read_headlines_file(out)))["text"]
        unique = texts.map(headline_hash).nunique()
        print(f"n={n:,}: {seconds:,.0f}s ({n / seconds:,.0f} headlines/s), peak RSS {rss:,.0f} MB, "
              f"{len(texts):,} lines, {unique:,} unique, {out.stat().st_size / 1e6:.1f} MB file")
        out.unlink()


if __name__ == "__main__":
    main()
