"""Editor controls: the voice (`label`), an archive of published headlines that extends novelty, and
`check_headlines` on an editor's own headlines."""
import subprocess
import sys

import pytest

from clickbait.archive import load_archive
from clickbait.errors import GenerationError, HeadlineDataError
from clickbait.evaluate import check_headlines
from clickbait.generate import GenerationRequest, generate_headlines
from clickbait.text import ngrams


def test_generation_never_repeats_or_copies_a_run_of_the_archive(tiny_bundle):
    first = generate_headlines(300, model=tiny_bundle, seed=0, temperature=0.7)
    archive = first[:150]
    out = generate_headlines(300, model=tiny_bundle, seed=0, temperature=0.7, archive=archive)
    runs = set().union(*(ngrams(t, 5) for t in archive))
    assert not set(out) & set(archive)
    assert not any(ngrams(t, 5) & runs for t in out)
    assert out != first
    sampler = GenerationRequest(n=300, model=tiny_bundle, seed=0, temperature=0.7, archive=archive).sampler()
    sampler.take(300)
    assert sampler.rejected["in_archive"] >= 150


def test_an_archive_file_is_read_once_and_a_short_headline_matches_only_whole(tmp_path):
    path = tmp_path / "published.txt"
    path.write_text("17 Things Only Dog Owners Will Understand\nSenate Passes Budget\n\n", encoding="utf-8")
    archive = load_archive(path)
    assert len(archive) == 2 and load_archive(path) is archive  # cached while the file is unchanged
    assert archive.overlap("These 17 things only dog owners will understand") == \
        "17 Things Only Dog Owners Will Understand"
    assert archive.overlap("senate passes  budget") == "Senate Passes Budget"
    assert archive.overlap("Senate Passes Budget Bill") is None  # 4 words inside a longer headline is no copy
    path.write_text("Something Else Entirely Was Published Today\n", encoding="utf-8")
    assert load_archive(path).overlap("17 Things Only Dog Owners Will Understand") is None


@pytest.mark.parametrize("archive, message", [
    ("missing.txt", "archive .*missing.txt: no such file"),
    ("empty.txt", "the file is empty|holds no headlines"),
    ("blank.txt", "holds no headlines"),
    ([], "holds no headlines"),
    (["fine", 3], "archive must be a headline file or a list of headlines"),
])
def test_bad_archives_are_our_error_naming_the_problem(tiny_bundle, tmp_path, monkeypatch, archive, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises((HeadlineDataError, GenerationError), match=message):
        generate_headlines(5, model=tiny_bundle, seed=0, archive=archive)


def test_check_headlines_reports_fluency_score_slips_and_copies(tiny_bundle, clas_bundle_path, slice_df):
    training = slice_df["text"].iloc[0]
    texts = ["We Ranked the the Best Pizzas", training, "Why Dogs Are Better Than People, According to Science"]
    report = check_headlines(texts, model=tiny_bundle, classifier=clas_bundle_path,
                             archive=["Why Dogs Are Better Than People, Explained"])
    assert list(report.columns) == ["text", "log_prob_per_word", "clickbait", "slips", "training_copy",
                                    "archive_overlap"]
    assert report["slips"][0] == "doubled word: the the" and report["slips"][2] == ""
    assert report["training_copy"].tolist() == [False, True, False]
    assert report["archive_overlap"].tolist() == ["", "", "Why Dogs Are Better Than People, Explained"]
    assert report["clickbait"].between(0, 1).all() and (report["log_prob_per_word"] < 0).all()
    # fluency is the LM's: a shuffled headline reads worse
    shuffled = check_headlines(["Pizzas Best the Ranked We"], model=tiny_bundle, classifier=clas_bundle_path)
    assert shuffled["log_prob_per_word"][0] < report["log_prob_per_word"][0]


def test_the_check_command_writes_one_row_per_line(tiny_bundle_path, clas_bundle_path, tmp_path):
    archive = tmp_path / "published.txt"
    archive.write_text("17 Things Only Dog Owners Will Understand Today\n")
    out = subprocess.run([sys.executable, "-m", "clickbait.cli", "check", "--model", str(tiny_bundle_path),
                          "--classifier", str(clas_bundle_path), "--archive", str(archive),
                          "-t", "17 Things Only Dog Owners Will Understand", "-t", "A Dog A Dog"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "text,log_prob_per_word,clickbait,slips,training_copy,archive_overlap"
    assert lines[1].endswith(",17 Things Only Dog Owners Will Understand Today") and len(lines) == 3
    missing = subprocess.run([sys.executable, "-m", "clickbait.cli", "check", "-t", "A Headline", "--archive",
                              str(tmp_path / "nope.txt")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.txt: no such file" in missing.stderr


def test_a_job_records_its_archive_and_a_resume_with_another_is_refused(tiny_bundle, tmp_path):
    import json

    from clickbait.batch import write_headlines
    from clickbait.errors import JobError
    out = tmp_path / "job.csv"
    request = GenerationRequest(n=30, model=tiny_bundle, seed=1, archive=["One Headline We Ran", "Another We Ran"])
    write_headlines(out, request, progress=False)
    recorded = json.loads((tmp_path / "job.csv.job.json").read_text())["job"]["archive"]
    assert recorded["headlines"] == 2 and len(recorded["fingerprint"]) == 64
    with pytest.raises(JobError, match="archive"):
        write_headlines(out, GenerationRequest(n=30, model=tiny_bundle, seed=1, archive=["A Third One"]),
                        resume=True, progress=False)


def test_the_voice_must_be_known_and_match_the_model(tiny_bundle_path, tmp_path):
    import json
    import shutil
    with pytest.raises(GenerationError, match=r"label must be one of \['clickbait', 'news'\], got 'sports'"):
        GenerationRequest(label="sports")
    news = tmp_path / "news-lm"
    shutil.copytree(tiny_bundle_path, news)
    config = json.loads((news / "config.json").read_text())
    (news / "config.json").write_text(json.dumps({**config, "target_label": "news"}))
    with pytest.raises(GenerationError, match="this LM writes 'news' headlines, not 'clickbait'"):
        generate_headlines(3, model=news, seed=0)
    assert len(generate_headlines(3, model=news, seed=0, label="news")) == 3
    assert len(generate_headlines(3, model=tiny_bundle_path, seed=0, label="news")) == 3  # no target_label: any
