"""Editor controls: the voice (`label`), an archive of published headlines that extends novelty, and
`check_headlines` on an editor's own headlines."""
import subprocess
import sys

import pytest

from clickbait.archive import load_archive
from clickbait.errors import BundleError, GenerationError, HeadlineDataError
from clickbait.evaluate import check_headlines
from clickbait.generate import GenerationRequest, generate_headlines
from clickbait.text import holds_phrase, ngrams


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


def test_a_selected_archive_is_the_archive_of_the_selected_headlines(slice_df):
    import numpy as np
    texts = slice_df["text"].head(300).tolist()
    keep = np.arange(300) % 3 == 1
    picked = load_archive(texts).select(keep)
    built = load_archive([t for t, k in zip(texts, keep) if k])
    assert picked.texts == built.texts
    assert (picked.run_keys == built.run_keys).all() and (picked.run_rows == built.run_rows).all()
    assert picked.overlap(texts[1]) == texts[1] and picked.overlap(texts[0]) in (None, *built.texts)


def test_check_headlines_reports_fluency_score_slips_and_copies(tiny_bundle, clas_bundle_path, slice_df):
    training = slice_df["text"].iloc[0]
    texts = ["We Ranked the the Best Pizzas", training, "Why Dogs Are Better Than People, According to Science"]
    report = check_headlines(texts, model=tiny_bundle, classifier=clas_bundle_path,
                             archive=["Why Dogs Are Better Than People, Explained"])
    assert list(report.columns) == ["text", "log_prob_per_word", "clickbait", "slips", "training_copy",
                                    "training_overlap", "archive_overlap"]
    assert report["slips"][0] == "doubled word: the the" and report["slips"][2] == ""
    assert report["training_copy"].tolist() == [False, True, False]
    assert report["archive_overlap"].tolist() == ["", "", "Why Dogs Are Better Than People, Explained"]
    assert report["clickbait"].between(0, 1).all() and (report["log_prob_per_word"] < 0).all()
    # fluency is the LM's: a shuffled headline reads worse
    shuffled = check_headlines(["Pizzas Best the Ranked We"], model=tiny_bundle, classifier=clas_bundle_path)
    assert shuffled["log_prob_per_word"][0] < report["log_prob_per_word"][0]


def test_check_headlines_names_the_training_headline_a_run_comes_from(tiny_bundle, clas_bundle_path, slice_df):
    # Only the LM's training headlines count: a held-out headline in the same file shares runs but is not named.
    trained = [t for t in slice_df["text"] if len(t.split()) >= 7 and not tiny_bundle.is_novel([t])[0]][:3]
    unseen = "Seven Quiet Zorblax Owners Explain Everything About Their Boats"
    words = trained[0].split()
    remix = " ".join(["Here Is Why"] + words[:5])  # a 5-word run of a training headline, not the headline
    report = check_headlines([remix, unseen + " Today", "A Dog"], model=tiny_bundle, classifier=clas_bundle_path,
                             training=trained + [unseen])
    assert report["training_overlap"].tolist() == [trained[0], "", ""]
    assert report["training_copy"].tolist() == [False, False, False]
    assert check_headlines([remix], model=tiny_bundle, classifier=clas_bundle_path)["training_overlap"][0] == ""
    with pytest.raises(HeadlineDataError, match="none of its 1 headlines is a training headline"):
        check_headlines([remix], model=tiny_bundle, classifier=clas_bundle_path, training=[unseen])


def test_the_check_command_writes_one_row_per_line(tiny_bundle_path, clas_bundle_path, tmp_path):
    archive = tmp_path / "published.txt"
    archive.write_text("17 Things Only Dog Owners Will Understand Today\n")
    out = subprocess.run([sys.executable, "-m", "clickbait.cli", "check", "--model", str(tiny_bundle_path),
                          "--classifier", str(clas_bundle_path), "--archive", str(archive),
                          "-t", "17 Things Only Dog Owners Will Understand", "-t", "A Dog A Dog"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "text,log_prob_per_word,clickbait,slips,training_copy,training_overlap,archive_overlap"
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


def test_every_headline_holds_each_keyword_wherever_it_fits(tiny_bundle):
    keywords = ["Zorblax Quintero", "dog"]  # a name no vocabulary holds, and a common word
    assert "zorblax" not in tiny_bundle.tokenizer.o2i
    out = generate_headlines(30, min_len=3, max_len=12, model=tiny_bundle, seed=0, keywords=keywords)
    assert len(out) == 30 and len(set(out)) == 30
    assert all(holds_phrase(t, "Zorblax Quintero") and holds_phrase(t, "dog", exact=False) for t in out)
    assert all("xxunk" not in t.lower() for t in out)
    # anywhere, not only first: the LM places them
    assert sum(not t.startswith("Zorblax") for t in out) >= 10 and sum(t.endswith(("Quintero", "Dog")) for t in out) < 30
    # same seed, same headlines, whatever the batch size
    again = generate_headlines(30, min_len=3, max_len=12, model=tiny_bundle, seed=0, keywords=keywords, batch_size=9)
    assert again == out
    # "casing kept": capitals exactly as written, even in lowercase style
    lower = generate_headlines(5, min_len=3, max_len=12, model=tiny_bundle, seed=1, keywords=["iPhone X"], style="lower")
    assert all(holds_phrase(t, "iPhone X") for t in lower)


@pytest.mark.parametrize("keywords, message", [
    ([""], "keyword '' has no letters or digits"),
    (["!!!"], "keyword '!!!' has no letters or digits"),
    (["nice", "shit happens"], "keyword 'shit happens' holds banned word 'shit'"),
    (["one two three four five six", "seven eight nine ten eleven"],
     "need 11 words, more than max_len=10; keyword 'one two three four five six' is the longest"),
    ("dog", "keywords must be a list of words or phrases, not one str"),
    (["a", "b", "c", "d", "e", "f"], "at most 5 keywords"),
    (["nine ten"], "need 11 words, more than max_len=10; keyword 'nine ten'"),  # with the prefix's 9 words
    ([3], "keyword 3 is not a str"),
])
def test_a_keyword_request_no_headline_can_meet_is_refused_naming_the_keyword(keywords, message):
    prefix = "one two three four five six seven eight nine" if keywords == ["nine ten"] else None
    with pytest.raises(GenerationError, match=message):
        GenerationRequest(max_len=10, keywords=keywords, prefix=prefix)


def test_a_keyword_job_killed_midway_resumes_to_the_same_file(tiny_bundle_path, tmp_path, monkeypatch):
    from clickbait import generate as gen
    from clickbait.batch import write_headlines
    request = GenerationRequest(n=40, min_len=3, max_len=10, model=str(tiny_bundle_path), seed=2, keywords=("dog",))
    whole, killed = tmp_path / "whole.csv", tmp_path / "killed.csv"
    write_headlines(whole, request, chunk_size=10, progress=False)
    take, calls = gen.HeadlineSampler.take, []

    def dies_on_the_third_chunk(self, n, *args, **kwargs):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return take(self, n, *args, **kwargs)
    monkeypatch.setattr(gen.HeadlineSampler, "take", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        write_headlines(killed, request, chunk_size=10, progress=False)
    monkeypatch.undo()
    assert 0 < len(killed.read_text().splitlines()) - 1 < 40
    write_headlines(killed, request, chunk_size=10, resume=True, progress=False)
    assert killed.read_bytes() == whole.read_bytes()


def test_rewrite_keeps_content_words_and_ranks_by_the_stated_score(tiny_bundle, clas_bundle_path):
    import math

    from clickbait.rewrite import content_words, rewrite_headline
    text = "Zorblax Quintero adopts 3 puppies in Chicago"
    keep = content_words(text, tiny_bundle)
    assert "Zorblax Quintero" in keep and "3" in keep and len(keep) <= 3
    out = rewrite_headline(text, n=6, model=tiny_bundle, classifier=clas_bundle_path, seed=0, min_len=3, max_len=12)
    assert list(out.columns) == ["text", "voice", "log_prob_per_word", "score"] and len(out) == 6
    for kept in keep:
        assert all(holds_phrase(t, kept, exact=kept != kept.lower()) for t in out["text"])
    assert out["score"].tolist() == sorted(out["score"], reverse=True)
    assert out.apply(lambda r: abs(r.score - (math.log(r.voice) + r.log_prob_per_word)) < 1e-3, axis=1).all()
    news = rewrite_headline(text, n=6, label="news", model=tiny_bundle, classifier=clas_bundle_path, seed=0,
                            min_len=3, max_len=12)
    from clickbait.classify import classify_headlines
    assert (news["voice"].values == classify_headlines(news["text"], clas_bundle_path)["news"].round(4).values).all()
    with pytest.raises(GenerationError, match="no content words to keep"):
        rewrite_headline("The and of a", model=tiny_bundle, classifier=clas_bundle_path)


def test_keyword_and_rewrite_commands(tiny_bundle_path, clas_bundle_path):
    cli = [sys.executable, "-m", "clickbait.cli"]
    out = subprocess.run([*cli, "generate", "-n", "4", "--min-len", "3", "--max-len", "12", "--seed", "0", "--model",
                          str(tiny_bundle_path), "--keyword", "Zorblax", "--keyword", "dog"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all("Zorblax" in t and "dog" in t.lower() for t in lines)
    bad = subprocess.run([*cli, "generate", "-n", "2", "--keyword", "..."], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "clickbait generate: keyword '...' has no letters or digits"
    out = subprocess.run([*cli, "rewrite", "Zorblax adopts 3 puppies", "-n", "3", "--seed", "0", "--model",
                          str(tiny_bundle_path), "--classifier", str(clas_bundle_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "text,voice,log_prob_per_word,score" and len(lines) == 4
    assert all("Zorblax" in line for line in lines[1:])


@pytest.fixture(scope="module")
def conditional_lm(tiny_learner, slice_tokenizer, slice_df, tmp_path_factory):
    """The tiny LM fine-tuned as one conditional LM for both voices (each headline opened by its label token)."""
    from clickbait.bundle import load_bundle, save_bundle
    from clickbait.datablocks import mark_validation, prepend_label_tokens
    from clickbait.fit import Phase
    from clickbait.train import RecipeConfig, finetune_conditional_lm
    from fastai.torch_core import set_seed
    general = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    cfg = RecipeConfig(preset="tiny", target=[Phase(6, 2e-2)])
    set_seed(0, reproducible=True)  # dropout and shuffling: the same tiny model whichever tests ran before
    learn, tokenizer, labels = finetune_conditional_lm(mark_validation(slice_df), slice_tokenizer, tiny_learner, cfg,
                                                       tmp_path_factory.mktemp("cond"), log=lambda s: None)
    out = tmp_path_factory.mktemp("bundles") / "conditional"
    save_bundle(out, learn.model, tokenizer, {"kind": "lm", "preset": "tiny", "labels": labels},
                train_texts=slice_df["text"], rare_word_texts=prepend_label_tokens(slice_df, labels)["text"])
    return load_bundle(out), general


def test_a_conditional_lm_writes_each_voice_from_its_label_token(conditional_lm, train_holdout, tmp_path):
    import json
    import shutil

    from clickbait.generate import score_headlines
    bundle, general = conditional_lm
    vocab = bundle.tokenizer.vocab
    assert vocab[-2:] == ["xxlabel0", "xxlabel1"] and bundle.config["labels"] == {"clickbait": "xxlabel0",
                                                                                 "news": "xxlabel1"}
    assert len(vocab) == general["0.encoder.weight"].shape[0] + 2  # the general vocabulary, plus one per label
    # The same seed in the two voices: the label token leads to other headlines, and the LM reads each voice's
    # held-out headlines as likelier in their own voice than in the other.
    assert generate_headlines(20, model=bundle, seed=0) != generate_headlines(20, model=bundle, seed=0, label="news")
    held = train_holdout[1].groupby("label").head(150)
    for label, other in (("clickbait", "news"), ("news", "clickbait")):
        texts = held[held.label == label]["text"].tolist()
        own = sum(score_headlines(texts, bundle, label=label))
        assert own > sum(score_headlines(texts, bundle, label=other))
    # A label token typed in a prefix is a word, never a control.
    sampler = GenerationRequest(n=1, model=bundle, seed=0, prefix="xxlabel1 says").sampler()
    assert sampler.prefix_ids == bundle.tokenizer.numericalize(["xxeos", "xxbos", "xxlabel0", "xxunk", "says"])
    keyword = GenerationRequest(n=1, model=bundle, seed=0, keywords=["xxlabel1"]).sampler().keywords[0]
    assert keyword.ids == tuple(bundle.tokenizer.numericalize(["xxunk"]))  # nor in a keyword
    # A voice the LM has no token for is our error, naming the voices it has.
    one = tmp_path / "one-voice"
    shutil.copytree(bundle.path, one)
    config = json.loads((one / "config.json").read_text())
    (one / "config.json").write_text(json.dumps({**config, "labels": {"clickbait": "xxlabel0"}}))
    with pytest.raises(GenerationError, match=r"writes \['clickbait'\] headlines, not 'news'"):
        generate_headlines(3, model=one, seed=0, label="news")
    with pytest.raises(GenerationError, match=r"writes \['clickbait'\] headlines, not 'news'"):
        score_headlines(["A headline"], one, label="news")
    # A label token the vocabulary lacks would be read as an unknown word: our error, naming it.
    lacking = tmp_path / "lacking"
    shutil.copytree(bundle.path, lacking)
    (lacking / "config.json").write_text(json.dumps({**config, "labels": {"clickbait": "xxlabel7"}}))
    with pytest.raises(BundleError, match="token 'xxlabel7', which vocab.json lacks"):
        generate_headlines(3, model=lacking, seed=0)
