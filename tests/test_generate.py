"""generate_headlines guarantees, checked on a tiny trained model."""
import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from clickbait.text import count_words, headline_hash, normalise_headline
from clickbait.errors import GenerationError
from clickbait.generate import balanced, generate_headlines


def test_exact_n_and_lengths(tiny_bundle):
    for n, lo, hi in ((1, 1, 3), (37, 4, 15), (25, 8, 9)):
        out = generate_headlines(n, lo, hi, model=tiny_bundle, seed=0)
        assert len(out) == n and all(isinstance(h, str) for h in out)
        assert all(lo <= count_words(h) <= hi for h in out), out
        assert all(balanced(h) and h == h.strip() and not re.search(r"\bxx[a-z]", h.lower()) and "\u2581" not in h for h in out), out


def test_balanced():
    assert balanced('The "Best" Dogs (Ever)') and not balanced('The "Best Dogs') and not balanced("Dogs (Ever")
    assert not balanced("Dogs) Ever (") and not balanced('Say ""')


def test_unique_after_normalisation(tiny_bundle):
    out = generate_headlines(200, 1, 4, model=tiny_bundle, seed=1, temperature=0.5)
    assert len({normalise_headline(h) for h in out}) == 200


def test_novel_against_training_headlines(tiny_bundle):
    free = generate_headlines(40, 2, 6, model=tiny_bundle, seed=2, novel=False, unique=False)
    # pretend the first 20 of those were training headlines: they must now be skipped
    trained = dataclasses.replace(tiny_bundle, novelty=np.array([headline_hash(h) for h in free[:20]]))
    out = generate_headlines(40, 2, 6, model=trained, seed=2, unique=False)
    assert not {normalise_headline(h) for h in out} & {normalise_headline(h) for h in free[:20]}
    assert trained.is_novel(out).all()


def test_prefix_known_and_unknown_words(tiny_bundle):
    out = generate_headlines(15, 5, 12, prefix="10 Reasons Why", model=tiny_bundle, seed=3)
    assert all(re.match(r"10 Reasons Why\b", h) for h in out) and all(5 <= count_words(h) <= 12 for h in out)
    odd = generate_headlines(5, 4, 10, prefix="ZorBlaxian quuxes", model=tiny_bundle, seed=3, style="title")
    assert all(re.match(r"ZorBlaxian quuxes\b", h) for h in odd), odd  # kept as written, never a crash
    with pytest.raises(GenerationError, match="prefix .* has 4 words, more than max_len=3"):
        generate_headlines(5, 1, 3, prefix="One Two Three Four", model=tiny_bundle)


def test_banned_words_never_appear(tiny_bundle):
    banned = {"the", "you", "this"}
    out = generate_headlines(100, 4, 12, banned_words=banned, model=tiny_bundle, seed=4)
    words = {w.lower() for h in out for w in re.findall(r"[\w']+", h)}
    assert not words & banned
    unbanned = generate_headlines(100, 4, 12, banned_words=None, model=tiny_bundle, seed=4)
    assert {w.lower() for h in unbanned for w in re.findall(r"[\w']+", h)} & banned  # the ban did something


def test_same_seed_same_headlines_any_batch_size(tiny_bundle):
    a = generate_headlines(30, 3, 10, model=tiny_bundle, seed=7, batch_size=7)
    b = generate_headlines(30, 3, 10, model=tiny_bundle, seed=7, batch_size=64)
    c = generate_headlines(30, 3, 10, model=tiny_bundle, seed=8, batch_size=64)
    assert a == b and a != c


def test_return_scores(tiny_bundle):
    df = generate_headlines(10, model=tiny_bundle, seed=5, return_scores=True)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["text", "words", "log_prob"]
    assert (df["words"] == df["text"].map(count_words)).all() and (df["log_prob"] < 0).all()
    assert df["text"].tolist() == generate_headlines(10, model=tiny_bundle, seed=5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be at least 1"), (dict(n=-3), "n must be at least 1"), (dict(n=2.5), "n must be an int"),
    (dict(n="5"), "n must be an int"), (dict(min_len=0), "min_len must be at least 1"),
    (dict(min_len=9, max_len=4), r"min_len \(9\) is greater than max_len \(4\)"),
    (dict(temperature=0), "temperature must be > 0"), (dict(top_p=1.5), "top_p must be in"),
    (dict(eta=0), r"eta must be in \(0, 1\)"), (dict(eta=1.5), r"eta must be in \(0, 1\)"),
    (dict(repeat_floor=1), r"repeat_floor must be in \(0, 1\)"),
    (dict(style="shout"), "style must be one of"),
])
def test_bad_arguments(tiny_bundle, kwargs, message):
    with pytest.raises(GenerationError, match=message):
        generate_headlines(**{"model": tiny_bundle, **kwargs})


def test_impossible_request_stops_with_reason(tiny_bundle):
    # greedy decoding (top_k=1) writes one headline over and over: 50 unique ones cannot exist (without rare
    # words: the tiny LM's greedy path through `xxunk` never ends)
    with pytest.raises(GenerationError, match=r"found only 1 of 50 headlines in 300 attempts .*'duplicate': 299"):
        generate_headlines(50, 2, 8, top_k=1, model=tiny_bundle, seed=0, max_attempts=300, rare_words=False)


def test_eta_cut_keeps_an_open_steps_tail_and_cuts_a_near_certain_steps():
    import torch
    from clickbait.generate import NUCLEUS_CAP, GenerationRequest, _draw, eta_floor
    vocab = 300
    certain = torch.cat([torch.tensor([0.97, 0.02, 0.0099]), torch.full((vocab - 3,), 0.0001 / (vocab - 3))])
    open_step = torch.full((vocab,), 1 / vocab)
    probs = torch.stack([certain, open_step]).double()
    floor = eta_floor(probs, 0.0009)[:, 0]
    assert floor[0] == pytest.approx(0.0009) and floor[1] == pytest.approx(0.0009 ** 0.5 / vocab)
    draws = 2000
    uniforms = torch.arange(draws, dtype=torch.float64) / draws
    request = GenerationRequest()
    assert request.eta == 0.0009 and request.top_p is None  # the default this test is about
    picked = [set(_draw(torch.log(p).float().expand(draws, -1), uniforms, request).tolist()) for p in probs]
    assert picked[0] == {0, 1, 2}                   # the near-certain step's tail (each token below the cut) is gone
    assert len(picked[1]) == NUCLEUS_CAP            # the open step keeps every token the head holds
    legacy = dataclasses.replace(request, eta=None, top_p=0.9)
    assert set(_draw(torch.log(certain).float().expand(draws, -1), uniforms, legacy).tolist()) == {0}


def test_most_fluent_first_orders_by_log_prob_per_word_and_keeps_ties_in_order():
    from clickbait.generate import fluency, most_fluent_first
    rows = pd.DataFrame({"text": ["a", "b", "c", "d"], "words": [4, 9, 1, 4], "log_prob": [-10.0, -12.0, -8.0, -10.0]})
    assert fluency(rows).tolist() == [-2.0, -1.2, -4.0, -2.0]  # the end of headline counts as a word
    assert most_fluent_first(rows)["text"].tolist() == ["b", "a", "d", "c"]


def test_a_word_repeats_straight_after_itself_only_where_the_lm_wants_it():
    import torch
    from clickbait.bundle import resolve_bundle
    from clickbait.generate import GenerationRequest, _prefix, _sample_batch, _token_table
    bundle = resolve_bundle(None, "lm")
    vocab = bundle.tokenizer.vocab
    ids, words, glue = _prefix(bundle, "This Is Actually", 15, "clickbait")[1:]
    # 400 rows whose first draws sweep the whole distribution after the prefix, tail included
    uniforms = torch.linspace(0, 0.9999, 400, dtype=torch.float64)[:, None].expand(-1, 3).contiguous()
    table = _token_table(tuple(vocab), frozenset(), True, bundle.tokenizer.slot_tokens)
    drawn = {}
    for floor in (None, GenerationRequest.repeat_floor):
        cfg = GenerationRequest(repeat_floor=floor, eta=None)
        out = _sample_batch(bundle, table, ids, words, glue, uniforms, 1, 15, cfg)[0]
        drawn[floor] = out[:, 0].tolist()
    actually = vocab.index("actually")
    assert actually in drawn[None]                     # with no floor the tail reaches "actually" again
    assert actually not in drawn[GenerationRequest.repeat_floor]
