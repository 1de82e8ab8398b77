"""Realistic headlines: grammar-slip detector, article agreement, rare words for xxunk (drawn by their neighbours
and the LM's state), backward LMs and the realism filter."""
import dataclasses
import json
import math
import re

import numpy as np
import pytest

from clickbait.bundle import load_bundle
from clickbait.errors import BundleError, GenerationError
from clickbait.evaluate import discriminator_accuracy, shared_run, slip_rate
from clickbait.generate import generate_headlines
from clickbait.rare import RareContexts, RareWords
from clickbait.text import fix_articles, grammar_slips, holds_phrase, wants_an, words
from clickbait.tokenizer import UNKNOWN_CLASSES, unknown_class


@pytest.mark.parametrize("text, slips", [
    ("19 Signs You're in an Dead", ["a/an: an Dead"]),
    ("How to Avoid a in a City", ["determiner before a preposition: a in"]),
    ("We Ranked the the Best Pizzas", ["doubled word: the the"]),
    ("Meet Your the Dog", ["determiner before a determiner: Your the"]),
    ("These Men Tried to Find the", ["dangling at the end: the"]),
    ("17 Things You Only Know If You Grew Up With", ["dangling at the end: With"]),
    ("An Hour With an FBI Agent and a Unicorn", []),
    ("Which of These Dogs Is Yours?", []),
    ("What Is This", []),
    ("Who Do You Belong To?", []),
    ("24 Hours in an 11-Year-Old's Life", []),
])
def test_grammar_slips_on_hand_written_cases(text, slips):
    assert grammar_slips(text) == slips


@pytest.mark.parametrize("text, phrase, exact, held", [
    ("Taylor Swift Adopts a Dog", "Taylor Swift", True, True),
    ("taylor swift adopts a dog", "Taylor Swift", True, False),     # exact means the editor's casing
    ("taylor swift adopts a dog", "Taylor Swift", False, True),
    ("Taylor Swifts Adopt Dogs", "Taylor Swift", False, False),    # a longer word is not the phrase
    ("Hotdog Stands", "dog", False, False),
    ("The Dog's Day", "dog", False, True),                         # an apostrophe ends the word
    ("Is It a (Dog)?", "Dog", True, True),
    ("A+ Students", "A+", True, True),                              # regex characters are text
    ("AB Students", "A+", True, False),
])
def test_holds_phrase_on_hand_written_cases(text, phrase, exact, held):
    assert holds_phrase(text, phrase, exact) is held


def test_fix_articles_follows_the_sound_and_keeps_casing():
    assert fix_articles("A Honest Man Bought An Unicorn Of A Apple") == "An Honest Man Bought A Unicorn Of An Apple"
    assert fix_articles('a "amazing" night with an NBA star') == 'an "amazing" night with an NBA star'
    assert fix_articles("How to Avoid a in a City") == "How to Avoid a in a City"  # no word to agree with
    assert wants_an("MRI") and not wants_an("NASA") and not wants_an("European") and wants_an("8-year-old")
    assert slip_rate(["an Dead Man", "a Dead Man", "A Dog"]) == pytest.approx(1 / 3)


def test_discriminator_accuracy_tells_different_sets_apart():
    real = [f"{i} Dogs Who Are Very Good Boys" for i in range(60)]
    same = [f"{i} Dogs Who Are Very Good Girls" for i in range(60)]
    other = [f"Senate passes budget bill number {i}" for i in range(60)]
    assert discriminator_accuracy(real, other) > 0.95
    assert discriminator_accuracy(real, same, "char") > discriminator_accuracy(real, real[::-1], "char")


def test_rare_words_fill_xxunk_slots_with_words_outside_the_vocabulary(tiny_bundle):
    # whole words of 3+ letters: "U.s" splits into pieces that a rare word may equal
    rare = {w.lower() for w in tiny_bundle.rare_words.words if len(w) >= 3} - set(tiny_bundle.tokenizer.vocab)
    assert len(rare) > 100

    def rare_used(headlines):
        return {w for h in headlines for w in words(h) if w in rare}

    out = generate_headlines(200, model=tiny_bundle, seed=0, temperature=1.0, rare_words=True)
    assert not any("xx" in h.lower() for h in out)
    assert len(rare_used(out)) >= 5, "headlines should use words outside the vocabulary"
    assert not rare_used(generate_headlines(200, model=tiny_bundle, seed=0, temperature=1.0, rare_words=False))


def test_rare_words_are_never_banned_ones():
    table = RareWords(["kale", "quinoa"], counts=np.array([100.0, 1.0]))
    picks = {table.fill(["xxbos", "xxunk", "xxeos"], [u / 50], banned=frozenset({"kale"}))[0][1] for u in range(50)}
    assert picks == {"quinoa"}


def test_fill_reports_the_log_prob_of_the_words_it_drew():
    table = RareWords(["kale", "quinoa"], counts=np.array([3.0, 1.0]))
    (_, first, _, second, _), log_prob = table.fill(["xxbos", "xxunk", "and", "xxunk", "xxeos"], [0.0, 0.99])
    assert (first, second) == ("kale", "quinoa")
    assert log_prob == pytest.approx(math.log(0.75) + math.log(0.25))
    # a banned word's mass goes to the others: the one word left is drawn with certainty
    assert table.fill(["xxunk"], [0.5], banned=frozenset({"kale"})) == (["quinoa"], 0.0)


def test_a_class_slot_draws_a_rare_word_of_its_class():
    table = RareWords(["kale", "quinoas", "happily"], counts=np.array([100.0, 1.0, 1.0]))
    slots = frozenset(["xxunk", *UNKNOWN_CLASSES])
    # The one word of each class is drawn with certainty, however rare; "kale" (no class) fills the bare slot.
    assert table.fill(["xxbos", "xxunk_s", "xxunk_ly", "xxunk", "xxeos"], [0.0, 0.99, 0.99], slots) == \
        (["xxbos", "quinoas", "happily", "kale", "xxeos"], 0.0)
    # A class no rare word has draws from them all, by the usual weights; without classes a class token is no slot.
    assert table.fill(["xxunk_num"], [0.0], slots)[0] == ["kale"]
    assert table.fill(["xxunk_s"], [0.0])[0] == ["xxunk_s"]


def test_an_lm_with_unknown_classes_writes_rare_words_in_their_slots(slice_df, tmp_path):
    from fastai.torch_core import set_seed

    from clickbait.bundle import save_bundle
    from clickbait.datablocks import lm_dataloaders
    from clickbait.models import PRESETS
    from clickbait.tokenizer import HeadlineTokenizer
    from clickbait.train import lm_learner
    tok = HeadlineTokenizer.train(slice_df["text"], max_vocab=3000, min_freq=2, unknown_classes=True)
    set_seed(0, reproducible=True)
    learn = lm_learner(lm_dataloaders(slice_df, tok, bs=32, seq_len=24, seed=0), PRESETS["tiny"], path=tmp_path)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 1e-2)
    bundle = load_bundle(save_bundle(tmp_path / "lm", learn.model, tok, {"kind": "lm", "preset": "tiny"},
                                     train_texts=slice_df["text"]))
    out = generate_headlines(200, model=bundle, seed=0, temperature=1.0)
    assert not any("xx" in h.lower() for h in out)
    rare = {w.lower() for w in bundle.rare_words.words} - set(tok.vocab)
    used = {w.lower() for h in out for w in words(h) if w.lower() in rare}
    # Slots of several classes were drawn, each filled by a word of its class.
    assert len({unknown_class(w) for w in used}) >= 3
    assert generate_headlines(50, model=bundle, seed=3, batch_size=7) == generate_headlines(50, model=bundle, seed=3)


def test_generated_log_prob_counts_the_rare_words_drawn(tiny_bundle):
    # A one-word table fills every slot with certainty (log-prob 0): the same seed draws the same LM tokens, so the
    # two runs' log-probs differ by exactly what the real table's draws cost.
    certain = dataclasses.replace(tiny_bundle, rare_words=RareWords(["zyzzyva"], counts=np.array([1.0])))
    options = dict(seed=4, return_scores=True, unique=False, novel=False)
    drawn = generate_headlines(120, model=tiny_bundle, **options)
    plain = generate_headlines(120, model=certain, **options)
    filled = plain["text"].str.contains("zyzzyva", case=False)
    assert 0 < filled.sum() < len(plain)
    assert (drawn["words"] == plain["words"]).all()
    assert np.allclose(drawn["log_prob"][~filled], plain["log_prob"][~filled])
    assert (drawn["log_prob"][filled] < plain["log_prob"][filled] - 1e-6).all()


def test_a_corrupt_rare_word_table_is_our_error(tiny_bundle_path, tmp_path):
    import shutil
    copy = tmp_path / "lm"
    shutil.copytree(tiny_bundle_path, copy)
    (copy / "rare_words.json").write_text("{not json")
    with pytest.raises(BundleError, match="rare_words.json: corrupt"):
        load_bundle(copy)
    state = json.loads((tiny_bundle_path / "rare_words.json").read_text())
    state["counts"] = state["counts"][:-1]
    (copy / "rare_words.json").write_text(json.dumps(state))
    with pytest.raises(BundleError, match="inconsistent"):
        load_bundle(copy)


def test_rare_words_follow_the_lm_state_they_were_seen_after():
    import numpy as np
    rng = np.random.default_rng(0)
    # "kale" was seen after states near +a, "quinoa" after states near -a; by frequency "kale" would win.
    a = rng.normal(size=16)
    states = np.concatenate([a + 0.1 * rng.normal(size=(30, 16)), -a + 0.1 * rng.normal(size=(3, 16))])
    table = RareWords(["kale", "quinoa"], counts=np.array([30.0, 3.0]))
    table.contexts = RareContexts.learn(states, np.array([0] * 30 + [1] * 3), dim=4)
    probs = table.contexts.distribution(-a, 2)
    assert probs[1] > 0.99
    draws = [table.fill(["xxbos", "xxunk", "xxeos"], [u / 40], states=[-a])[0][1] for u in range(40)]
    assert draws.count("quinoa") > draws.count("kale")
    assert [table.fill(["xxbos", "xxunk", "xxeos"], [u / 40])[0][1] for u in range(40)].count("quinoa") < 10


def test_a_corrupt_or_mismatched_rare_context_file_is_our_error(tiny_bundle_path, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    copy = tmp_path / "lm"
    shutil.copytree(tiny_bundle_path, copy)
    assert load_bundle(copy).rare_words.contexts.keys.shape[1] > 0
    tensors = {k: v.clone() for k, v in load_file(str(copy / "rare_contexts.safetensors")).items()}
    (copy / "rare_contexts.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BundleError, match="rare_contexts.safetensors: corrupt"):
        load_bundle(copy)
    bad = dict(tensors, words=tensors["words"] + 10 ** 6)  # indices past the word table
    save_file(bad, str(copy / "rare_contexts.safetensors"))
    with pytest.raises(BundleError, match="rare_contexts.safetensors: rare-word contexts are inconsistent"):
        load_bundle(copy)
    wide = dict(tensors, mean=torch.zeros(7), projection=torch.zeros(7, tensors["keys"].shape[1]))
    save_file(wide, str(copy / "rare_contexts.safetensors"))
    with pytest.raises(BundleError, match="7-d states"):
        load_bundle(copy)


def test_a_backward_lm_trains_on_each_headline_read_right_to_left(slice_tokenizer):
    import pandas as pd

    from clickbait.datablocks import lm_dataloaders
    df = pd.DataFrame({"text": ["Ten Things You Never Knew About Cats", "Why Dogs Are Better Than People"] * 10})
    stream = lm_dataloaders(df, slice_tokenizer, bs=2, seq_len=20, backwards=True, shuffle=False).one_batch()[0]
    first = slice_tokenizer.encode(df["text"][0])  # xxbos ... xxeos
    assert stream[0, :len(first)].tolist() == first[::-1]


@pytest.fixture(scope="module")
def tiny_discriminator(slice_df, tiny_bundle, tmp_path_factory):
    from clickbait.fit import Phase
    from clickbait.train import ClassifierConfig, train_discriminator
    real = slice_df[slice_df.label == "clickbait"]["text"]
    cfg = ClassifierConfig(phases=[Phase(1, 2e-2, freeze_to=-1), Phase(1, 1e-2)], bs=64)
    out = tmp_path_factory.mktemp("disc") / "bundle"
    train_discriminator(real, lm=tiny_bundle, cfg=cfg, work=tmp_path_factory.mktemp("disc-work"), out=out,
                        log=lambda s: None)
    return out


def test_realism_filter_is_a_safe_bundle_and_keeps_same_seed_same_headlines(tiny_bundle, tiny_discriminator):
    files = sorted(p.name for p in tiny_discriminator.iterdir())
    assert files == ["config.json", "model.safetensors", "novelty.safetensors", "vocab.json"]
    disc = load_bundle(tiny_discriminator)
    assert disc.classes == ["generated", "real"] and disc.config["odds_scale"] > 0
    varied = dict(temperature=1.0, rare_words=True, realism=True)
    a = generate_headlines(40, model=tiny_bundle, seed=3, discriminator=disc, batch_size=7, **varied)
    b = generate_headlines(40, model=tiny_bundle, seed=3, discriminator=disc, batch_size=64, **varied)
    unfiltered = generate_headlines(40, model=tiny_bundle, seed=3, **{**varied, "realism": False})
    assert a == b and a != unfiltered
    sampler = __import__("clickbait.generate", fromlist=["GenerationRequest"]).GenerationRequest(
        n=40, model=tiny_bundle, seed=3, discriminator=disc, **varied).sampler()
    sampler.take(40)
    assert sampler.rejected["unrealistic"] > 0


def test_a_classifier_is_not_a_discriminator(tiny_bundle, clas_bundle_path):
    with pytest.raises(GenerationError, match="not a realism discriminator"):
        generate_headlines(5, model=tiny_bundle, discriminator=clas_bundle_path, realism=True)


def test_shared_run_is_the_longest_run_a_headline_shares_with_training():
    train = ["17 Things Only Dog Owners Will Understand", "Which Pizza Are You"]
    texts = ["17 Things Only Cat Owners Will Understand",     # "17 things only", "owners will understand"
             "Which Pizza Are You Based on Your Zodiac Sign",  # all of a training headline
             "Senate Passes Budget",                           # nothing shared
             "Dog Owners Love Pizza"]                          # "dog owners" only
    assert shared_run(texts, train) == [3, 4, 0, 2]
    assert shared_run(["Things only dog owners WILL understand"], train, max_n=4) == [4]  # case-blind, capped
