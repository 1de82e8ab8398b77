"""Headline tokenizer: casing, listicle tokens, vocabulary cap, coverage, JSON round-trip, decode fidelity."""
import json

import pytest

from clickbait.errors import TokenizerFileError
from clickbait.text import count_words, normalise_headline
from clickbait.tokenizer import UNKNOWN_CLASSES, HeadlineCaser, HeadlineTokenizer, detokenize, unknown_class


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


@pytest.mark.parametrize("word, token", [
    ("1999", "xxunk_num"), ("60th", "xxunk_num"), ("happily", "xxunk_ly"), ("zorbing", "xxunk_ing"),
    ("photobombed", "xxunk_ed"), ("corgis", "xxunk_s"), ("famous", "xxunk_adj"), ("careless", "xxunk_adj"),
    ("kindness", "xxunk_noun"), ("bartender", "xxunk_noun"), ("glass", "xxunk"), ("zelenskyy", "xxunk"),
    ("\u2026", "xxunk"),
])
def test_unknown_classes_name_a_word_by_its_shape(word, token):
    assert unknown_class(word) == token


def test_a_tokenizer_with_unknown_classes_writes_each_unknown_word_as_its_class(slice_df, slice_tokenizer, tmp_path):
    from clickbait.datablocks import lm_dataloaders
    classed = HeadlineTokenizer.train(slice_df["text"], max_vocab=3000, min_freq=2, unknown_classes=True)
    assert classed.vocab[:len(slice_tokenizer.vocab) - 8] == slice_tokenizer.vocab[:len(slice_tokenizer.vocab) - 8]
    assert set(UNKNOWN_CLASSES) <= set(classed.vocab) and len(classed.vocab) % 8 == 0
    tokens = ["xxbos", "zorblats", "happily", "1999", "zelenskyy", "xxeos"]
    assert [classed.vocab[i] for i in classed.numericalize(tokens)] == \
        ["xxbos", "xxunk_s", "xxunk_ly", "xxunk_num", "xxunk", "xxeos"]
    assert slice_tokenizer.numericalize(tokens)[1:5] == [0, 0, 0, 0]  # without classes: all one xxunk
    loaded = HeadlineTokenizer.load(classed.save(tmp_path / "vocab.json"))
    assert loaded.unknown_classes and loaded.with_case_marks().unknown_classes
    assert loaded.numericalize(tokens) == classed.numericalize(tokens)
    # The LM trains on what numericalize writes: fastai's DataLoaders hold the class tokens, not a bare xxunk.
    df = slice_df.head(400)
    ids = [int(i) for x, _ in lm_dataloaders(df, classed, bs=8, seq_len=20, seed=0).train for i in x.flatten()]
    expected = [i for toks in classed.tokenize(df["text"]) for i in classed.numericalize(toks)]
    for token in ("xxunk", "xxunk_s", "xxunk_ed", "xxunk_ing"):
        assert 0 < ids.count(classed.o2i[token]) <= expected.count(classed.o2i[token])
    assert ids.count(0) < 0.8 * [i for toks in slice_tokenizer.tokenize(df["text"])
                                 for i in slice_tokenizer.numericalize(toks)].count(0)


def test_a_tokenizer_file_with_unknown_classes_but_not_their_tokens_is_our_error(slice_tokenizer, tmp_path):
    state = {**slice_tokenizer.to_dict(), "unknown_classes": True}
    (tmp_path / "vocab.json").write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="unknown_classes needs the class tokens.*missing.*xxunk_ed"):
        HeadlineTokenizer.load(tmp_path / "vocab.json")
