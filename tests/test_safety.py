"""Reliability and security: checkpoints run no code, generation is thread-safe, batch outputs are locked, and bad
input is refused with our error."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from clickbait.errors import CheckpointError
from clickbait.models import PRESETS

PAYLOAD = """
import os, sys, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"model": Payload(), "opt": {}}, sys.argv[1])
"""


def _payload(path, marker):
    subprocess.run([sys.executable, "-c", PAYLOAD, str(path), str(marker)], check=True)


def _tiny_learner(slice_df, slice_tokenizer, path):
    from clickbait.datablocks import lm_dataloaders
    from clickbait.train import lm_learner
    preset = PRESETS["tiny"]
    dls = lm_dataloaders(slice_df.head(600), slice_tokenizer, bs=preset.bs, seq_len=preset.seq_len, seed=0)
    return lm_learner(dls, preset, path=path)


def test_a_payload_checkpoint_is_refused_and_runs_nothing(slice_df, slice_tokenizer, tmp_path):
    from clickbait.fit import BestModel, Phase, fit_phases, load_checkpoint
    marker = tmp_path / "PWNED"
    learn = _tiny_learner(slice_df, slice_tokenizer, tmp_path)
    # a resumable run that stopped after epoch 1 of 2, whose last checkpoint was swapped for a payload
    (tmp_path / "progress.json").write_text(json.dumps({"general/0": {"epochs": 1, "best": 9.0}}))
    _payload(tmp_path / "general_p0_last.pth", marker)
    with pytest.raises(CheckpointError, match=r"general_p0_last\.pth: not a weights-only checkpoint"):
        with learn.no_bar(), learn.no_logging():
            fit_phases(learn, [Phase(2, 1e-2)], "general", tmp_path, log=lambda s: None)
    # fastai's SaveModelCallback would unpickle its best file in full at the end of a fit; ours does not
    _payload(tmp_path / "general_p0_best.pth", marker)
    best = BestModel(fname="general_p0_best")
    best.learn = learn
    with pytest.raises(CheckpointError, match="general_p0_best.pth"):
        best.after_fit()
    with pytest.raises(CheckpointError, match="nothing was loaded"):
        load_checkpoint(learn, "missing")
    assert not marker.exists()


def test_threads_sharing_a_model_get_exactly_their_solo_results(tiny_bundle):
    from clickbait.generate import generate_headlines, score_headlines
    solo_a = generate_headlines(200, model=tiny_bundle, seed=0)
    solo_b = generate_headlines(150, 3, 9, model=tiny_bundle, seed=5, temperature=1.0)
    texts = solo_a[:120]
    solo_scores = score_headlines(texts, tiny_bundle)
    with ThreadPoolExecutor(4) as pool:
        a1 = pool.submit(generate_headlines, 200, model=tiny_bundle, seed=0)
        b = pool.submit(generate_headlines, 150, 3, 9, model=tiny_bundle, seed=5, temperature=1.0)
        scores = pool.submit(score_headlines, texts, tiny_bundle)
        a2 = pool.submit(generate_headlines, 200, model=tiny_bundle, seed=0, batch_size=33)
        assert a1.result() == solo_a and a2.result() == solo_a and b.result() == solo_b
        assert scores.result() == solo_scores


def test_concurrent_classification_matches_solo(clas_bundle_path):
    from clickbait.classify import clickbait_score
    texts = [f"{i} Dogs Who Are Very Good" for i in range(60)] + ["Senate passes budget bill"] * 20
    solo = clickbait_score(texts, clas_bundle_path)
    with ThreadPoolExecutor(3) as pool:
        results = [f.result() for f in [pool.submit(clickbait_score, texts, clas_bundle_path) for _ in range(3)]]
    assert all(r == solo for r in results)


def test_url_cache_is_keyed_by_the_whole_url_and_refreshes(tmp_path):
    from clickbait.data import fetch_url
    for folder, text in (("a", "first\n"), ("b", "second\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "h.txt").write_text(text)
    cache = tmp_path / "cache"
    first = fetch_url((tmp_path / "a" / "h.txt").as_uri(), cache)
    second = fetch_url((tmp_path / "b" / "h.txt").as_uri(), cache)  # same file name, another URL
    assert first.read_text() == "first\n" and second.read_text() == "second\n"
    (tmp_path / "a" / "h.txt").write_text("changed\n")
    assert fetch_url((tmp_path / "a" / "h.txt").as_uri(), cache).read_text() == "first\n"  # cached
    assert fetch_url((tmp_path / "a" / "h.txt").as_uri(), cache, refresh=True).read_text() == "changed\n"
    import hashlib
    new_sha = hashlib.sha256(b"changed again\n").hexdigest()
    (tmp_path / "a" / "h.txt").write_text("changed again\n")
    # an expected sha256 the cached copy does not match fetches it again
    assert fetch_url((tmp_path / "a" / "h.txt").as_uri(), cache, sha256=new_sha).read_text() == "changed again\n"


def test_a_second_job_on_the_same_output_is_refused(tiny_bundle_path, tmp_path, capsys):
    import fcntl

    from clickbait.cli import main
    out = tmp_path / "h.csv"
    out.write_text("text,words,log_prob\nmine,1,-1.0\n")
    holder = os.open(tmp_path / "h.csv.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a running job holds the output
    try:
        for extra in (["--resume"], ["--force"]):
            args = ["generate", "-n", "5", "--seed", "0", "--model", str(tiny_bundle_path), "--quiet",
                    "--out", str(out)]
            assert main(args + extra) == 2
            err = capsys.readouterr().err.strip()
            assert "another job is writing it" in err and len(err.splitlines()) == 1
        assert out.read_text() == "text,words,log_prob\nmine,1,-1.0\n"
    finally:
        os.close(holder)
    assert main(["generate", "-n", "5", "--seed", "0", "--model", str(tiny_bundle_path), "--quiet", "--out", str(out),
                 "--force"]) == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=10 ** 9), "n must be at least 1 and at most 100,000,000"),
    (dict(temperature=float("inf")), "temperature must be > 0, in"),
    (dict(temperature=1e-45), "temperature must be > 0, in"),
    (dict(temperature=float("nan")), "temperature must be > 0, in"),
    (dict(seed=-1), r"seed must be an int in \[0, 2\*\*63\)"), (dict(max_len=1000), "max_len must be at most 64"),
    (dict(banned_words="things"), "banned_words must be a collection of words"),
    (dict(min_score=float("nan")), "min_score"), (dict(prefix=5), "prefix must be a str"),
])
def test_unbounded_or_absurd_requests_are_refused(tiny_bundle, kwargs, message):
    from clickbait.errors import GenerationError
    from clickbait.generate import generate_headlines
    with pytest.raises(GenerationError, match=message):
        generate_headlines(**{"model": tiny_bundle, **kwargs})


def test_one_call_is_capped_and_points_to_batch_jobs(tiny_bundle):
    from clickbait.errors import GenerationError
    from clickbait.generate import generate_headlines
    with pytest.raises(GenerationError, match="write_headlines"):
        generate_headlines(200_000, model=tiny_bundle)


def test_control_tokens_typed_in_a_prefix_stay_text(tiny_bundle):
    from clickbait.generate import generate_headlines
    out = generate_headlines(10, prefix="xxeos Who", model=tiny_bundle, seed=0)
    # the typed control word is text, kept as written; the LM may glue a piece onto "Who" ("'s", "n't")
    assert all(h.split()[0] == "xxeos" and h.startswith("xxeos Who") for h in out), out


@pytest.mark.parametrize("bad, message", [
    ("hello", "pass a list of headlines"), ([None], "headline 0 is None"), (["ok", float("nan")], "headline 1 is nan"),
    (["ok", "  "], "headline 1 is empty"), ([3], "headline 0 is 3"),
])
def test_scoring_refuses_what_is_not_a_headline(tiny_bundle, clas_bundle_path, bad, message):
    from clickbait.classify import classify_headlines
    from clickbait.errors import HeadlineDataError
    from clickbait.generate import score_headlines
    with pytest.raises(HeadlineDataError, match=message):
        score_headlines(bad, tiny_bundle)
    with pytest.raises(HeadlineDataError, match=message):
        classify_headlines(bad, clas_bundle_path)


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "clickbait.cli", *map(str, args)], input=stdin, capture_output=True)


def _one_line_error(result):
    err = result.stderr.decode().strip()
    return result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_carriage_returns_cannot_smuggle_a_formula_row(tiny_bundle_path, tmp_path):
    import csv
    import io
    for args, stdin in ((["-t", "Dogs\r=1+2", "-t", "Cats"], None), (["-"], b"Dogs\r=1+2\nCats\n")):
        result = _cli("score", *args, "--model", tiny_bundle_path, stdin=stdin)
        assert result.returncode == 0, result.stderr
        rows = list(csv.reader(io.StringIO(result.stdout.decode())))
        assert [r[0] for r in rows] == ["text", "Dogs =1+2", "Cats"]
        assert not any(r[0].startswith("=") for r in rows)


def test_blank_lines_keep_their_rows(tiny_bundle_path, tmp_path):
    import pandas as pd
    source = tmp_path / "h.txt"
    source.write_text("Dogs Are Great\n\nSenate passes bill\n")
    for args, stdin in (([source], None), (["-"], source.read_bytes())):
        result = _cli("score", *args, "--model", tiny_bundle_path, stdin=stdin)
        table = pd.read_csv(io_bytes(result.stdout), keep_default_na=False)
        assert table["text"].tolist() == ["Dogs Are Great", "", "Senate passes bill"]
        assert table["log_prob"].tolist()[1] == "" and float(table["log_prob"][0]) < 0


def io_bytes(data):
    import io
    return io.BytesIO(data)


def test_cli_bad_input_is_one_line_and_touches_nothing(tiny_bundle_path, tmp_path):
    model = ["--model", tiny_bundle_path, "--quiet"]
    assert _one_line_error(_cli("generate", "-n", 5, "--seed", -1, *model))
    assert _cli("generate", "-n", 5, "--chunk-size", 0, *model).returncode == 2
    assert _cli("train", "lm", "--data", tmp_path, "--out", tmp_path / "x", "--sample", -1).returncode == 2
    for flag in ("--max-vocab", "--general-epochs", "--target-epochs"):  # 0 used to read as "the default"
        result = _cli("train", "lm", "--data", tmp_path, "--out", tmp_path / "x", flag, 0)
        assert result.returncode == 2 and f"{flag}: must be at least 1, got 0" in result.stderr.decode()
    assert _one_line_error(_cli("score", "-", "--model", tiny_bundle_path, stdin=b"\xff\xfe\x00binary"))
    assert _one_line_error(_cli("generate", "-n", 5, *model, "--out", tmp_path / "missing" / "h.csv"))
    assert not (tmp_path / "missing").exists()
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert _one_line_error(_cli("generate", "-n", 5, *model, "--out", folder, "--force"))
    unreadable = tmp_path / "locked.txt"
    unreadable.write_text("Dogs\n")
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root reads anything
        assert _one_line_error(_cli("score", unreadable, "--model", tiny_bundle_path))
    existing = tmp_path / "plot.png"
    existing.write_bytes(b"mine")
    corpus = tmp_path / "c.txt"
    corpus.write_text("One headline here\nAnother headline there\n")
    assert _one_line_error(_cli("eda", corpus, "--plot", existing)) and existing.read_bytes() == b"mine"


@pytest.mark.parametrize("breakage", ["bad json", "missing key", "bytes past the end"])
def test_a_broken_progress_file_is_refused_and_the_output_kept(tiny_bundle_path, tmp_path, breakage):
    out, state = tmp_path / "h.csv", tmp_path / "h.csv.progress.json"
    args = ["generate", "-n", 5, "--seed", 0, "--model", tiny_bundle_path, "--quiet", "--out", out]
    out.write_text("text,words,log_prob\nmine,1,-1.0\n")
    good = {"job": {}, "lines": 1, "bytes": 31, "next_index": 3}
    state.write_text({"bad json": "{oops", "missing key": json.dumps({"job": {}, "lines": 1}),
                      "bytes past the end": json.dumps({**good, "bytes": 5000})}[breakage])
    assert _one_line_error(_cli(*args, "--resume"))
    assert out.read_text() == "text,words,log_prob\nmine,1,-1.0\n"


def test_a_symlinked_output_is_refused_unless_forced_and_then_the_link_is_replaced(tiny_bundle_path, tmp_path):
    target, link = tmp_path / "precious.txt", tmp_path / "h.txt"
    target.write_text("precious\n")
    link.symlink_to(target)
    args = ["generate", "-n", 5, "--seed", 0, "--model", tiny_bundle_path, "--quiet", "--out", link]
    assert _one_line_error(_cli(*args))
    assert _cli(*args, "--force").returncode == 0
    assert target.read_text() == "precious\n" and not link.is_symlink() and len(link.read_text().splitlines()) == 5


def test_a_full_disk_stops_cleanly_and_resume_completes(tiny_bundle_path, tmp_path):
    out = tmp_path / "h.txt"
    args = [sys.executable, "-m", "clickbait.cli", "generate", "-n", 400, "--seed", 0, "--model", tiny_bundle_path,
            "--quiet", "--chunk-size", 50, "--out", out]
    full = subprocess.run(["bash", "-c", 'ulimit -f 8 && exec "$@"', "_", *map(str, args)], capture_output=True)
    assert _one_line_error(full) and "writing failed" in full.stderr.decode()
    assert out.read_bytes().endswith(b"\n") or json.loads((tmp_path / "h.txt.progress.json").read_text())
    done = subprocess.run([*map(str, args), "--resume"], capture_output=True)
    assert done.returncode == 0, done.stderr
    whole = tmp_path / "whole.txt"
    assert subprocess.run([*map(str, args[:-1]), whole], capture_output=True).returncode == 0
    assert out.read_bytes() == whole.read_bytes()


def _broken_copy(src, tmp_path, edit):
    import shutil
    copy = tmp_path / "bundle"
    shutil.copytree(src, copy)
    edit(copy)
    return copy


def _edit_json(name, change):
    def edit(copy):
        state = json.loads((copy / name).read_text())
        change(state)
        (copy / name).write_text(json.dumps(state))
    return edit


def _edit_tensors(name, change):
    def edit(copy):
        from safetensors.torch import load_file, save_file
        tensors = load_file(str(copy / name))
        change(tensors)
        save_file(tensors, str(copy / name))
    return edit


def _first_float(tensors):
    return next(k for k, v in tensors.items() if v.is_floating_point())


@pytest.mark.parametrize("edit, message", [
    (_edit_json("config.json", lambda c: c.update(preset="gigantic")), "unknown preset"),
    (_edit_json("config.json", lambda c: c["preset"].update(extra_key=1)), "bad preset"),
    (_edit_json("config.json", lambda c: c["preset"].update(emb_sz=10 ** 7)), "preset sizes out of range"),
    (_edit_json("config.json", lambda c: c["preset"].update(emb_sz=4000, n_hid=8000)),
     "cannot hold the .* weights of the preset"),
    (_edit_json("config.json", lambda c: c.update(kind="classifier")), "needs 'classes'"),
    (_edit_json("vocab.json", lambda v: v.update(vocab={"a": 1})), "vocab.json"),
    (_edit_json("vocab.json", lambda v: v["vocab"].__setitem__(20, v["vocab"][21])), "distinct str tokens"),
    (_edit_tensors("model.safetensors", lambda t: t[_first_float(t)].fill_(float("nan"))), "finite floating-point"),
    (_edit_tensors("model.safetensors", lambda t: t.update({_first_float(t): t[_first_float(t)].long()})),
     "finite floating-point"),
    (_edit_tensors("novelty.safetensors", lambda t: t.update(hashes=t["hashes"].double())), "int64 'hashes'"),
])
def test_broken_bundles_are_our_error_naming_the_file(tiny_bundle_path, tmp_path, edit, message):
    from clickbait.bundle import load_bundle
    from clickbait.errors import BundleError
    with pytest.raises(BundleError, match=message):
        load_bundle(_broken_copy(tiny_bundle_path, tmp_path, edit))


def test_a_fifo_or_huge_config_is_refused_before_reading(tiny_bundle_path, tmp_path):
    from clickbait.bundle import MAX_JSON_BYTES, load_bundle
    from clickbait.errors import BundleError

    def fifo(copy):
        (copy / "config.json").unlink()
        os.mkfifo(copy / "config.json")
    with pytest.raises(BundleError, match="config.json: not a regular file"):
        load_bundle(_broken_copy(tiny_bundle_path, tmp_path / "a", fifo))

    def huge(copy):
        with open(copy / "vocab.json", "ab") as f:
            f.truncate(MAX_JSON_BYTES + 1)
    with pytest.raises(BundleError, match="vocab.json: .* more than a bundle file may hold"):
        load_bundle(_broken_copy(tiny_bundle_path, tmp_path / "b", huge))


def test_resuming_a_finished_job_with_other_options_is_refused(tiny_bundle_path, tmp_path):
    out = tmp_path / "h.txt"
    args = ["generate", "-n", 6, "--model", tiny_bundle_path, "--quiet", "--out", out]
    assert _cli(*args).returncode == 0  # seedless: the seed it drew is recorded
    before = out.read_bytes()
    assert _cli(*args, "--resume").returncode == 0 and out.read_bytes() == before  # same job: already done
    other = _cli(*args, "--resume", "--temperature", 1.2)
    assert _one_line_error(other) and "finished by a job with other options" in other.stderr.decode()
    assert out.read_bytes() == before

