"""Headline tokenizer: casing, listicle tokens, vocabulary cap, coverage, JSON round-trip, decode fidelity."""
import json

import pytest

from clickbait.errors import TokenizerFileError
from clickbait.text import count_words, normalise_headline
from clickbait.tokenizer import HeadlineCaser, HeadlineTokenizer, detokenize


@pytest.fixture(scope="module")
def full_tokenizer(train_holdout):
    return HeadlineTokenizer.train(train_holdout[0]["text"])


def test_tokens_are_lowercase_without_case_markers(slice_tokenizer):
    toks = slice_tokenizer.tokenize(["17 Things You'll Only Understand If You DON'T Own A TV"])[0]
    assert toks[0] == "xxbos" and toks[-1] == "xxeos"
    assert "xxmaj" not in toks and "xxup" not in toks
    assert toks[1:-1] == ["17", "things", "you", "'ll", "only", "understand", "if", "you", "do", "n't", "own",
                          "a", "tv"]


def test_case_marks_tokenizer_marks_each_headline_casing_style(slice_tokenizer, tmp_path):
    tok = slice_tokenizer.with_case_marks()
    marks = [toks[-2] for toks in tok.tokenize(["17 Things You Should Know In 2015", "Recovered Pieces of Asteroid Hold "
                                                "Clues to Early History", "Obama signs bill in Ohio", "2015"])]
    assert marks == ["xxmaj", "xxup", "ohio", "2015"]
    assert tok.decode(tok.encode("17 Things You Should Know")) == "17 Things You Should Know"  # marks never shown
    assert HeadlineTokenizer.load(tok.save(tmp_path / "v.json")).case_marks  # saved with the tokenizer
    assert not HeadlineTokenizer.load(slice_tokenizer.save(tmp_path / "lm.json")).case_marks


def test_numbers_quotes_hashtags_punctuation_roundtrip():
    tok = HeadlineTokenizer.train(["x"])
    for text in ['17 Things You\'ll Love About "Big Brother" #tbt', "Don't Miss This: 2015's Best $5 Deals (50% Off)",
                 "It's Well-Known That 24/7 News Is Bad... Or Is It?", "Why Dogs' Minds Are Like Ours"]:
        assert detokenize(tok.tokenize([text])[0]) == text.lower()


def test_casing_styles():
    caser = HeadlineCaser.learn(["NASA Finds Water On Mars", "Why NASA Is Great", "nasa budget cut by NASA chief",
                                 "The iPhone Is Here", "Apple sells more iPhone units", "iPhone sales rise today", "U.S. Open Starts", "U.S. economy grows"] * 2)
    text = "nasa says the iphone is a hit in the u.s. and you'll love it"
    assert caser.apply(text, "title") == "NASA Says the iPhone Is a Hit in the U.S. and You'll Love It"
    assert caser.apply(text, "sentence") == "NASA says the iPhone is a hit in the U.S. and you'll love it"
    assert caser.apply(text, "lower") == text
    with pytest.raises(ValueError, match="unknown casing style"):
        caser.apply(text, "shouty")


def test_vocab_cap_min_freq_and_coverage(full_tokenizer, train_holdout):
    assert len(full_tokenizer) <= 10_008  # fastai pads to a multiple of 8
    assert full_tokenizer.vocab[:4] == ["xxunk", "xxpad", "xxbos", "xxeos"]
    small = HeadlineTokenizer.train(train_holdout[0]["text"][:5000], max_vocab=2000, min_freq=3)
    assert len(small) <= 2008
    held = list(train_holdout[1]["text"])
    cov = full_tokenizer.coverage(held)
    assert 0.90 < cov < 1.0
    assert small.coverage(held) < cov


def test_decode_encode_roundtrip_on_shared_data(full_tokenizer, train_holdout):
    """decode(encode(h)) == h up to casing for >= 99% of held-out headlines whose words are in the vocabulary."""
    texts = list(train_holdout[1]["text"])
    ok = total = 0
    for text, toks in zip(texts, full_tokenizer.tokenize(texts)):
        if any(t not in full_tokenizer.o2i for t in toks):
            continue
        total += 1
        ok += normalise_headline(full_tokenizer.decode(full_tokenizer.numericalize(toks))) == normalise_headline(text)
    assert total > 1000
    assert ok / total >= 0.99


def test_decode_drops_specials_and_counts_words(slice_tokenizer):
    ids = slice_tokenizer.encode("you won't believe what happened next!")
    assert slice_tokenizer.decode(ids, "lower") == "you won't believe what happened next!"
    assert slice_tokenizer.decode(ids) == "You Won't Believe What Happened Next!"
    assert count_words("You Won't Believe - What Happened #next !") == 6


def test_save_load_json(slice_tokenizer, tmp_path):
    path = slice_tokenizer.save(tmp_path / "vocab.json")
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["vocab"] == slice_tokenizer.vocab
    loaded = HeadlineTokenizer.load(path)
    text = "23 Dogs Who Are Having A Way Worse Day Than You"
    assert loaded.encode(text) == slice_tokenizer.encode(text)
    assert loaded.decode(loaded.encode(text)) == slice_tokenizer.decode(slice_tokenizer.encode(text))


def test_bad_tokenizer_files(slice_tokenizer, tmp_path):
    with pytest.raises(TokenizerFileError, match="not found"):
        HeadlineTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "corrupt.json").write_text('{"format": "clickbait-headline-tok', encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="corrupt"):
        HeadlineTokenizer.load(tmp_path / "corrupt.json")
    state = slice_tokenizer.to_dict()
    del state["vocab"]
    (tmp_path / "partial.json").write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="missing or has a bad field"):
        HeadlineTokenizer.load(tmp_path / "partial.json")
