"""The `clickbait` command: every subcommand's output, exit codes, one-line errors (no tracebacks) for user mistakes."""
import io
import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from clickbait.bundle import load_bundle
from clickbait.cli import build_parser, main, request_from_args
from clickbait.generate import GenerationRequest, generate_headlines, score_headlines
from clickbait.text import count_words

SUBCOMMANDS = ["generate", "score", "classify", "train", "eda", "evaluate"]


def test_every_subcommand_has_readable_help(capsys):
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([name, "--help"])
        assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ["--min-len", "--max-len", "--temperature", "--top-p", "--eta", "--repeat-floor", "--prefix", "--seed",
                 "--model", "--min-score", "--rerank", "--out", "--resume", "--force", "--text-col", "--label-col", "--plot", "--json"]:
        assert flag in text


def test_sampling_flags_reach_the_request(tiny_bundle_path, capsys):
    default = request_from_args(build_parser().parse_args(["generate"]))
    assert (default.eta, default.top_p) == (GenerationRequest.eta, GenerationRequest.top_p)
    plain = request_from_args(build_parser().parse_args(["generate", "--eta", "0", "--top-p", "0.9",
                                                          "--repeat-floor", "0"]))
    assert (plain.eta, plain.top_p, plain.repeat_floor) == (None, 0.9, None)  # 0 is how a flag says None
    assert main(["generate", "-n", "5", "--seed", "3", "--eta", "0", "--order", "drawn",
                 "--model", str(tiny_bundle_path)]) == 0
    assert capsys.readouterr().out.splitlines() == generate_headlines(5, seed=3, eta=None, model=tiny_bundle_path)


def test_printed_headlines_come_most_fluent_first(tiny_bundle_path, capsys):
    drawn = generate_headlines(12, seed=4, model=tiny_bundle_path, return_scores=True)
    assert main(["generate", "-n", "12", "--seed", "4", "--model", str(tiny_bundle_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == sorted(drawn["text"]) and printed != drawn["text"].tolist()  # same set, reordered
    per_word = dict(zip(drawn["text"], drawn["log_prob"] / (drawn["words"] + 1)))
    assert [per_word[t] for t in printed] == sorted(per_word.values(), reverse=True)


def test_generate_prints_n_headlines(tiny_bundle_path, capsys):
    assert main(["generate", "-n", "7", "--min-len", "3", "--max-len", "9", "--seed", "1",
                 "--model", str(tiny_bundle_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(3 <= count_words(line) <= 9 for line in lines)


def test_generate_min_score_uses_the_classifier(tiny_bundle_path, clas_bundle_path, tmp_path):
    out = tmp_path / "h.csv"
    assert main(["generate", "-n", "6", "--min-len", "3", "--max-len", "10", "--seed", "2", "--quiet",
                 "--model", str(tiny_bundle_path), "--classifier", str(clas_bundle_path), "--min-score", "0.5",
                 "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["text", "words", "log_prob", "clickbait"] and len(df) == 6
    assert (df["clickbait"] >= 0.5).all()


def test_user_errors_exit_2_with_one_line(tiny_bundle_path, tmp_path, capsys):
    existing = tmp_path / "mine.txt"
    existing.write_text("keep me\n")
    assert main(["generate", "-n", "0", "--model", str(tiny_bundle_path)]) == 2
    assert main(["generate", "--model", str(tmp_path / "nope")]) == 2
    assert main(["eda", str(tmp_path / "missing.csv")]) == 2
    assert main(["generate", "-n", "3", "--model", str(tiny_bundle_path), "--out", str(existing)]) == 2
    assert main(["generate", "-n", "3", "--model", str(tiny_bundle_path), "--out", str(tmp_path / "h.xlsx")]) == 2
    assert main(["train", "lm", "--data", str(tmp_path / "nothing.csv"), "--out", str(tmp_path / "b")]) == 2
    assert main(["train", "classifier", "--data", str(existing), "--out", str(tmp_path / "c")]) == 2  # no labels
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 7, err
    assert "n must be at least 1" in err[0] and "no such bundle" in err[1] and "no such file" in err[2]
    assert "exists" in err[3] and "unknown output format" in err[4] and "label" in err[6]
    assert "Traceback" not in "\n".join(err)
    assert existing.read_text() == "keep me\n"


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "-n", "many"])
    assert exit_.value.code == 2


def test_score_reads_stdin(tiny_bundle_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("17 Things About Dogs\nObama signs bill\n"))
    assert main(["score", "-", "--model", str(tiny_bundle_path)]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["text"].tolist() == ["17 Things About Dogs", "Obama signs bill"] and (df["log_prob"] < 0).all()


def test_score_and_classify_take_headlines_as_arguments(tiny_bundle_path, clas_bundle_path, capsys):
    args = ["-t", "17 Things About Dogs", "-t", "Obama signs bill", "--model", str(tiny_bundle_path)]
    assert main(["score", *args]) == 0
    scored = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert scored["text"].tolist() == ["17 Things About Dogs", "Obama signs bill"]
    assert scored["log_prob"].tolist() == pytest.approx(score_headlines(scored["text"], tiny_bundle_path), abs=1e-3)
    assert main(["classify", "-t", "Senate passes budget bill", "--model", str(clas_bundle_path)]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out))["text"].tolist() == ["Senate passes budget bill"]
    # a headline typed where a file is expected, both at once, or nothing at all: exit 2 saying so
    assert main(["classify", "You Won't Believe This", "--model", str(clas_bundle_path)]) == 2
    assert main(["score", "-", "-t", "a headline", "--model", str(tiny_bundle_path)]) == 2
    assert main(["score", "--model", str(tiny_bundle_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "no such file" in err[0] and "-t HEADLINE" in err[0]
    assert "not both" in err[1] and "no headlines" in err[2]


def test_classify_a_file(clas_bundle_path, tmp_path, capsys):
    src = tmp_path / "h.csv"
    pd.DataFrame({"title": ["=HYPERLINK(evil)", "21 Pictures Of Cats", "Senate passes budget bill"]}).to_csv(src)
    assert main(["classify", str(src), "--text-col", "title", "--model", str(clas_bundle_path)]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df.columns) == ["text", "label", "clickbait", "news"]
    assert df["text"].tolist() == ["'=HYPERLINK(evil)", "21 Pictures Of Cats", "Senate passes budget bill"]
    assert set(df["label"]) <= {"clickbait", "news"} and ((df["clickbait"] + df["news"]).round(3) == 1).all()


def test_eda(tmp_path, capsys):
    src = tmp_path / "h.txt"
    src.write_text("17 Things About Dogs\nObama signs bill\n", encoding="utf-8")
    assert main(["eda", str(src), "--plot", str(tmp_path / "p.png")]) == 0
    assert "headlines: 2" in capsys.readouterr().out and (tmp_path / "p.png").stat().st_size > 1000


def test_evaluate(tiny_bundle_path, slice_df, tmp_path, capsys):
    data = tmp_path / "train.csv"
    slice_df[["text", "label"]].to_csv(data, index=False)
    # Without rare words: a filled slot adds the table's log-prob for its word, which temperature does not sharpen
    # (a colder tiny LM draws more `xxunk` slots, each costing a rare word's probability).
    assert main(["evaluate", "--model", str(tiny_bundle_path), "-n", "60", "--min-len", "3", "--max-len", "10",
                 "--data", str(data), "--no-rare-words", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 60 and report["length_compliance"] == 1.0 and report["duplicates"] == 0
    assert 0 < report["distinct_2"] <= 1 and 0 <= report["copy_rate"] <= 1 and len(report["samples"]) == 20
    assert main(["evaluate", "--model", str(tiny_bundle_path), "-n", "60", "--min-len", "3", "--max-len", "10",
                 "--temperature", "0.5", "--no-rare-words", "--json"]) == 0
    colder = json.loads(capsys.readouterr().out)
    assert colder["mean_log_prob_per_word"] > report["mean_log_prob_per_word"]  # sharper sampling, likelier words


def test_train_classifier_from_csv(tiny_bundle_path, slice_df, tmp_path, capsys):
    data = tmp_path / "labelled.csv"
    slice_df.head(600).rename(columns={"text": "headline", "label": "kind"}).to_csv(data, index=False)
    out = tmp_path / "clas"
    args = ["train", "classifier", "--data", str(data), "--text-col", "headline", "--label-col", "kind",
            "--lm", str(tiny_bundle_path), "--epochs", "1", "--out", str(out), "--work", str(tmp_path / "w")]
    assert main(args) == 0
    assert load_bundle(out).classes == ["clickbait", "news"]
    assert main(args) == 2 and "--force" in capsys.readouterr().err  # the bundle is not replaced silently


def test_import_is_fast():
    start = time.time()
    subprocess.run([sys.executable, "-c", "import clickbait"], check=True)
    assert time.time() - start < 3.0


def test_train_lm_from_a_headline_file(slice_df, tmp_path, capsys):
    """A plain .txt.gz of headlines (no labels): the recipe's general stage alone makes the bundle."""
    import gzip
    data = tmp_path / "headlines.txt.gz"
    with gzip.open(data, "wt", encoding="utf-8") as f:
        f.write("\n".join(slice_df["text"]) + "\n")
    out = tmp_path / "lm"
    args = ["train", "lm", "--data", str(data), "--work", str(tmp_path / "w"), "--preset", "tiny",
            "--general-epochs", "1"]
    assert main(args + ["--out", str(out), "--max-vocab", "800"]) == 0
    bundle = load_bundle(out)
    assert bundle.config["target_label"] is None and list(bundle.config["metrics"]) == ["general"]
    assert len(bundle.novelty) > 2000  # the training headlines, for novelty checks
    assert bundle.config["recipe"]["max_vocab"] == 800 and 800 < len(bundle.tokenizer.vocab) <= 800 + 16
    # The same work folder with another vocabulary would resume checkpoints of the first one: refused, nothing written
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "lm2"), "--max-vocab", "900"]) == 2
    assert "(800, 2, False), this run asks for (900, 2, False)" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "lm2"), "--max-vocab", "800", "--unknown-classes"]) == 2
    assert "(800, 2, False), this run asks for (800, 2, True)" in capsys.readouterr().err
    assert not (tmp_path / "lm2").exists()
