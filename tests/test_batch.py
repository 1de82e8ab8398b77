"""Batch jobs: chunked output equals one call, formats, spreadsheet safety, refusal to overwrite, kill and resume."""
import csv
import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from clickbait.batch import read_headlines_file, spreadsheet_safe, write_headlines
from clickbait.text import normalise_headline
from clickbait.errors import GenerationError, JobError, OutputExistsError
from clickbait.generate import GenerationRequest, generate_headlines


def _texts(path):
    return pd.concat(list(read_headlines_file(path)))["text"].tolist()


def test_chunked_job_writes_what_one_call_returns(tiny_bundle_path, tmp_path):
    job = GenerationRequest(n=45, min_len=3, max_len=10, seed=3, model=str(tiny_bundle_path))
    out = tmp_path / "h.csv"
    write_headlines(out, job, chunk_size=7, progress=False)
    assert _texts(out) == generate_headlines(45, 3, 10, seed=3, model=tiny_bundle_path)
    assert not (tmp_path / "h.csv.progress.json").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt"])
def test_formats_round_trip_and_are_spreadsheet_safe(tiny_bundle_path, tmp_path, suffix):
    job = GenerationRequest(n=12, min_len=3, max_len=10, seed=0, prefix="=1+1 Reasons", model=str(tiny_bundle_path))
    out = tmp_path / f"h{suffix}"
    write_headlines(out, job, chunk_size=5, progress=False)
    texts = _texts(out)
    assert len(texts) == 12 and all(t.startswith("=1+1 Reasons") for t in texts)
    raw = out.read_text(encoding="utf-8").splitlines()
    if suffix == ".csv":
        rows = list(csv.reader(raw))
        assert rows[0] == ["text", "words", "log_prob"]
        assert all(row[0].startswith("'=1+1") for row in rows[1:])  # a spreadsheet shows text, runs no formula
    elif suffix == ".jsonl":
        assert [json.loads(line)["text"] for line in raw] == texts
    else:
        assert raw == texts


def test_spreadsheet_safe():
    assert [spreadsheet_safe(c) for c in ["=cmd", "+1", "-2", "@x", "10 Ways", "'quoted'"]] == \
        ["'=cmd", "'+1", "'-2", "'@x", "10 Ways", "'quoted'"]


def test_existing_output_is_never_overwritten(tiny_bundle_path, tmp_path):
    out = tmp_path / "h.txt"
    out.write_text("my precious headlines\n")
    job = GenerationRequest(n=5, min_len=3, max_len=10, seed=0, model=str(tiny_bundle_path))
    with pytest.raises(OutputExistsError, match="exists"):
        write_headlines(out, job, progress=False)
    with pytest.raises(OutputExistsError, match="no progress file"):
        write_headlines(out, job, resume=True, progress=False)
    assert out.read_text() == "my precious headlines\n"
    write_headlines(out, job, overwrite=True, progress=False)
    assert len(_texts(out)) == 5
    with pytest.raises(JobError, match="unknown output format"):
        write_headlines(tmp_path / "h.xlsx", job, progress=False)


def test_job_options_are_checked_when_the_job_is_made():
    for bad, message in ((dict(n=0), "n must be at least 1"), (dict(n=5, min_len=9, max_len=4), "greater than"),
                         (dict(n=5, temperature=0), "temperature")):
        with pytest.raises(GenerationError, match=message):
            GenerationRequest(**bad)


def test_resume_with_other_options_is_refused(tiny_bundle_path, tmp_path):
    out = tmp_path / "h.csv"
    state = out.with_name("h.csv.progress.json")
    job = GenerationRequest(n=5, min_len=3, max_len=10, seed=0, model=str(tiny_bundle_path))
    out.write_text("text,words,log_prob\n")
    state.write_text(json.dumps({"job": {**job.to_dict(), "seed": 1}, "lines": 0, "bytes": 20, "next_index": 0}))
    with pytest.raises(JobError, match="seed"):
        write_headlines(out, job, resume=True, progress=False)


def _cli(*args):
    return [sys.executable, "-m", "clickbait.cli", "generate", *map(str, args)]


@pytest.mark.parametrize("seed", [["--seed", 7], []], ids=["seeded", "seedless"])
def test_sigkill_then_resume_gives_exactly_n_unique_and_the_same_file(tiny_bundle_path, tmp_path, seed):
    n, args = 1500, ["-n", 1500, "--min-len", 3, "--max-len", 10, *seed, "--model", tiny_bundle_path,
                     "--chunk-size", 50, "--quiet"]
    killed, state = tmp_path / "killed.csv", tmp_path / "killed.csv.progress.json"
    proc = subprocess.Popen(_cli(*args, "--out", killed), stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["lines"] >= 200:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines_at_kill = json.loads(state.read_text())["lines"]
    assert 0 < lines_at_kill < n, "the kill should land mid-job"
    assert killed.read_bytes().endswith(b"\n"), "a killed job must not leave a partial line"
    assert subprocess.run(_cli(*args, "--out", killed), capture_output=True).returncode == 2  # no silent overwrite
    done = subprocess.run(_cli(*args, "--out", killed, "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    texts = _texts(killed)
    assert len(texts) == n and len({normalise_headline(t) for t in texts}) == n
    whole = tmp_path / "whole.csv"
    if not seed:  # the uninterrupted job with the seed the seedless one drew
        args += ["--seed", json.loads((tmp_path / "killed.csv.job.json").read_text())["job"]["seed"]]
    assert subprocess.run(_cli(*args, "--out", whole), capture_output=True).returncode == 0
    assert killed.read_bytes() == whole.read_bytes()  # resuming lost and repeated nothing
