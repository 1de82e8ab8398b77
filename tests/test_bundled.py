"""The models shipped inside the package: present, small, loadable, and doing what `make run` shows."""
import json
import re
from pathlib import Path

from clickbait.bundle import BUNDLED, default_bundle_path, load_bundle
from clickbait.generate import generate_headlines, score_headlines
from clickbait.text import count_words


def test_bundled_size_limit():
    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total <= 40_000_000  # 40 MB, decimal


def test_default_lm_bundle():
    path = default_bundle_path("lm")
    config = json.loads((path / "config.json").read_text())
    assert config["kind"] == "lm" and 3_000_000 <= config["n_params"] <= 6_000_000
    bundle = load_bundle(path)
    assert len(bundle.novelty) > 20_000  # both shared files' training headlines, for novelty checks


def test_default_generation_is_reproducible():
    a = generate_headlines(20, seed=0)
    assert a == generate_headlines(20, seed=0, batch_size=16)
    assert len(set(a)) == 20 and all(4 <= count_words(h) <= 15 for h in a)
    assert load_bundle(default_bundle_path("lm")).is_novel(a).all()


def test_the_bundled_realism_filter_picks_among_the_plain_draws():
    # The filter only rejects: each candidate is drawn as without it, so what it keeps is among the plain draws.
    kept = generate_headlines(20, seed=0, realism=True)
    plain = generate_headlines(200, seed=0)
    assert set(kept) <= set(plain) and kept != plain[:20]
    assert generate_headlines(20, seed=0) == plain[:20]


def test_readme_samples_are_what_the_bundled_model_gives():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\(`generate_headlines\(10, seed=0\)`\):\n\n```\n(.*?)```", readme, re.S)
    assert block, "README lost its samples block"
    assert block.group(1).splitlines() == generate_headlines(10, seed=0)


def test_default_classifier_bundle():
    from clickbait.classify import clickbait_score
    scores = clickbait_score(["You Won't Believe What These 17 Cats Did Next",
                              "Senate approves budget after overnight session"])
    assert scores[0] > 0.5 > scores[1]


def test_default_lm_prefers_real_word_order():
    real = ["17 Things You Will Only Understand If You Love Dogs", "Obama signs the budget bill",
            "This Cat Did Something Amazing And You Won't Believe It"]
    shuffled = [" ".join(h.split()[::2] + h.split()[1::2]) for h in real]
    for r, s in zip(score_headlines(real), score_headlines(shuffled)):
        assert r > s + 3


def test_default_generation_writes_words_outside_the_vocabulary():
    bundle = load_bundle(default_bundle_path("lm"))
    vocab = set(bundle.tokenizer.vocab)
    out = generate_headlines(300, seed=1)
    outside = {w for h in out for w in bundle.tokenizer.tokenize([h])[0] if w not in vocab and w.isalpha()}
    assert len(outside) >= 20 and not any("xxunk" in h.lower() for h in out)


def test_the_news_voice_writes_what_the_classifier_calls_news():
    from clickbait.classify import classify_headlines
    news = generate_headlines(60, seed=0, label="news")
    assert load_bundle(default_bundle_path("lm-news")).is_novel(news).all()
    assert (classify_headlines(news)["label"] == "news").mean() >= 0.8
    assert (classify_headlines(generate_headlines(60, seed=0))["label"] == "clickbait").mean() >= 0.8
