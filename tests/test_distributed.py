"""torch.distributed on 2 CPU processes (gloo), launched by torchrun: DDP training and sharded generation."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from clickbait.batch import read_headlines_file
from clickbait.text import normalise_headline

HELPERS = Path(__file__).parent / "helpers"


def _torchrun(*args, timeout=400):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_ddp_training_ends_with_identical_weights_on_both_ranks(shared_dir, tmp_path):
    result = _torchrun(HELPERS / "dist_train.py", shared_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["digest"] == ranks[1]["digest"]  # DDP averaged the gradients: one model, two processes
    assert ranks[0]["valid_loss"] == ranks[1]["valid_loss"]  # validation gathered over both ranks' shares
    assert (tmp_path / "general_history.csv").read_text().count("general/0,") == 2  # rank 0 alone wrote the log


def test_sharded_generation_merges_exactly_n_unique(tiny_bundle_path, tmp_path):
    out = tmp_path / "merged.jsonl"
    result = _torchrun("-m", "clickbait.cli", "generate", "-n", 301, "--min-len", 3, "--max-len", 10, "--seed", 4,
                       "--model", tiny_bundle_path, "--out", out, "--quiet", "--chunk-size", 64)
    assert result.returncode == 0, result.stderr[-3000:]
    texts = pd.concat(list(read_headlines_file(out)))["text"].tolist()
    assert len(texts) == 301 and len({normalise_headline(t) for t in texts}) == 301
    # shards, their records and progress files cleaned up; the output keeps its job record and lock file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.jsonl", "merged.jsonl.job.json", "merged.jsonl.lock"]


def test_torchrun_cli_train_writes_one_bundle(shared_dir, tmp_path):
    out = tmp_path / "bundle"
    result = _torchrun("-m", "clickbait.cli", "train", "lm", "--data", shared_dir, "--out", out, "--work",
                       tmp_path / "work", "--preset", "tiny", "--sample", 4000, "--general-epochs", 1,
                       "--target-epochs", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    from clickbait.bundle import load_bundle
    bundle = load_bundle(out)
    assert bundle.config["kind"] == "lm" and set(bundle.config["metrics"]) == {"general", "target"}
