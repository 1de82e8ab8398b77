"""Examiner-format load: build a 3M-row CSV by resampling the shared headlines with random YYYYMMDD dates,
then time `load_headlines` on it in a fresh process and report rows/s and peak RSS (goal: < 2 GB).

Usage: python bench/load_examiner.py [--rows 3000000] [--csv bench/out/examiner_3m.csv]
"""
import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def build(path: Path, rows: int, data: str) -> None:
    from clickbait.data import load_chakraborty
    texts = load_chakraborty(data)["text"].to_numpy()
    rng = np.random.default_rng(0)
    days = pd.to_datetime("2010-01-01") + pd.to_timedelta(rng.integers(0, 365 * 7, rows), unit="D")
    df = pd.DataFrame({"publish_date": days.strftime("%Y%m%d").astype(int),
                       "headline_text": rng.choice(texts, rows)})
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def measure(path: str) -> None:
    from clickbait.data import load_headlines
    t0 = time.time()
    df = load_headlines(path, dedupe=False)
    dt = time.time() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"loaded {len(df):,} rows in {dt:.1f}s: {len(df) / dt:,.0f} rows/s, peak RSS {peak_mb:,.0f} MB "
          f"(goal < 2048 MB); years {df['date'].dt.year.min()}-{df['date'].dt.year.max()}")
    t0 = time.time()
    n = len(load_headlines(path))
    print(f"with dedupe: {n:,} unique rows in {time.time() - t0:.1f}s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=3_000_000)
    p.add_argument("--csv", default="bench/out/examiner_3m.csv")
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure_only:
        return measure(args.csv)
    path = Path(args.csv)
    if not path.exists():
        t0 = time.time()
        build(path, args.rows, args.data)
        print(f"built {path} ({path.stat().st_size / 1e6:,.0f} MB, {args.rows:,} rows) in {time.time() - t0:.1f}s")
    # a fresh process, so peak RSS is the loader's alone
    subprocess.run([sys.executable, __file__, "--csv", str(path), "--measure-only"], check=True)


if __name__ == "__main__":
    main()
