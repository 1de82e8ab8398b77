"""Load time and memory of a 1M-headline archive (`generate --archive`, `check --archive`).

The shared data holds 29k headlines, so the archive file repeats them with a running number appended, which
makes every line distinct and gives each its own 5-word runs, as a newsroom's own archive would.

    .venv/bin/python bench/archive.py [--n 1000000]
"""
import argparse
import gc
import resource
import tempfile
import time
from pathlib import Path

from clickbait.archive import load_archive
from clickbait.data import load_chakraborty

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2 ** 20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    args = p.parse_args()
    base = load_chakraborty(SHARED)["text"].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archive.txt"
        path.write_text("".join(f"{base[i % len(base)]} {i}\n" for i in range(args.n)), encoding="utf-8")
        gc.collect()
        before = rss_mb()
        start = time.time()
        archive = load_archive(path)
        seconds = time.time() - start
        after = rss_mb()
        probe = [f"{base[5]} {5}", "A headline nobody ever wrote about seven purple owls"]
        start = time.time()
        hits = archive.overlaps(probe * 500)
        per_check = (time.time() - start) / 1000
        size_mb = path.stat().st_size / 1e6
    print(f"archive of {len(archive):,} headlines ({size_mb:.1f} MB file): loaded in {seconds:.1f} s "
          f"(goal < 30 s); RSS {before:.0f} MB before, {after:.0f} MB after: +{after - before:.0f} MB held "
          f"(goal < 500 MB); process peak {peak_mb():.0f} MB; {len(archive.run_keys):,} 5-word runs")
    print(f"overlap check: {per_check * 1e6:.0f} us per headline; probes found {hits[:2].tolist()} (expected [True, False])")


if __name__ == "__main__":
    main()
