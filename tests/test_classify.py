"""Classifier head: learns well above chance, round-trips exactly, multi-class, clear errors."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clickbait.bundle import load_bundle
from clickbait.errors import BundleError
from clickbait.classify import classify_headlines, clickbait_score
from clickbait.train import ClassifierConfig, pick_threshold, train_classifier
from clickbait.errors import HeadlineDataError
from clickbait.fit import Phase

FAST = ClassifierConfig(phases=[Phase(1, 2e-2, freeze_to=-1), Phase(4, 1e-2)], bs=64)


def test_classifier_well_above_chance(clas_bundle_path, train_holdout):
    held = train_holdout[1].sample(600, random_state=0)
    pred = classify_headlines(held["text"], clas_bundle_path)
    assert list(pred.columns) == ["text", "label", "clickbait", "news"]
    assert pred["text"].tolist() == held["text"].tolist()          # input order kept
    assert (pred["clickbait"] + pred["news"]).round(5).eq(1).all()
    accuracy = (pred["label"].values == held["label"].values).mean()
    assert accuracy > 0.8, accuracy


def test_classifier_bundle_roundtrip(clas_bundle_path, tmp_path):
    texts = ["You Won't Believe What This Dog Did", "Senate passes budget bill", "21 Pictures Of Cats"]
    bundle = load_bundle(clas_bundle_path)
    assert bundle.kind == "classifier" and bundle.classes == ["clickbait", "news"]
    assert bundle.config["dtype"] == "int8"  # classifiers are stored in int8 by default
    a = classify_headlines(texts, bundle)
    # batching and order do not change a probability
    b = classify_headlines(texts[::-1], clas_bundle_path, batch_size=1)[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, atol=1e-5)
    assert clickbait_score(texts, bundle) == pytest.approx(a["clickbait"].tolist())


def test_classifier_sees_casing(clas_bundle_path):
    """Tokens are lowercase, but the classifier's tokenizer marks each headline's casing style."""
    bundle = load_bundle(clas_bundle_path)
    assert bundle.tokenizer.case_marks and bundle.config["tokenizer"]["case_marks"]
    styles = ["Senate Passes Budget Bill In Ohio", "Senate Passes Budget Bill in Ohio", "Senate passes budget bill in Ohio"]
    assert [bundle.tokenizer.tokenize([s])[0][-2] for s in styles] == ["xxmaj", "xxup", "ohio"]
    scores = clickbait_score(styles, bundle)
    assert len({round(s, 6) for s in scores}) == 3


def _three_classes(df):
    listicle = df["text"].str.match(r"^\d") & (df["label"] == "clickbait")
    return df.assign(label=df["label"].where(~listicle, "listicle"))


def test_multiclass(slice_df, tiny_bundle, train_holdout, tmp_path):
    bundle = train_classifier(_three_classes(slice_df), lm=tiny_bundle, cfg=FAST, work=tmp_path)
    assert bundle.classes == ["clickbait", "listicle", "news"]
    held = _three_classes(train_holdout[1].sample(600, random_state=1))
    pred = classify_headlines(held["text"], bundle)
    assert list(pred.columns) == ["text", "label", "clickbait", "listicle", "news"]
    assert pred[bundle.classes].sum(axis=1).round(5).eq(1).all()
    majority = held["label"].value_counts(normalize=True).max()
    assert (pred["label"].values == held["label"].values).mean() > majority + 0.1


def test_classifier_errors(slice_df, tiny_bundle, tmp_path):
    with pytest.raises(HeadlineDataError, match="1 class"):
        train_classifier(slice_df.assign(label="news"), lm=tiny_bundle, cfg=FAST, work=tmp_path)
    holes = slice_df.assign(label=slice_df["label"].where(slice_df.index % 5 != 0))
    with pytest.raises(HeadlineDataError, match="missing labels"):
        train_classifier(holes, lm=tiny_bundle, cfg=FAST, work=tmp_path)
    with pytest.raises(BundleError, match="no such bundle directory"):
        classify_headlines(["x"], tmp_path / "nowhere")
    with pytest.raises(BundleError, match="is a lm bundle, expected a classifier"):
        classify_headlines(["x"], tiny_bundle)


def test_generate_min_score_and_rerank(clas_bundle_path, tiny_bundle):
    from clickbait.generate import RERANK_POOL, generate_headlines
    kept = generate_headlines(20, model=tiny_bundle, seed=0, min_score=0.6, classifier=clas_bundle_path)
    assert len(kept) == 20 and min(clickbait_score(kept, clas_bundle_path)) >= 0.6
    top = generate_headlines(10, model=tiny_bundle, seed=1, rerank=True, classifier=clas_bundle_path,
                             return_scores=True)
    pool = generate_headlines(10 * RERANK_POOL, model=tiny_bundle, seed=1)
    best = sorted(zip(clickbait_score(pool, clas_bundle_path), pool), key=lambda p: -p[0])[:10]
    assert top["text"].tolist() == [t for _, t in best]
    assert top["clickbait"].is_monotonic_decreasing


def test_pick_threshold_maximises_validation_accuracy():
    probs = np.array([0.9, 0.8, 0.35, 0.32, 0.2, 0.1, 0.05])
    truth = np.array([True, True, True, True, False, False, False])
    assert pick_threshold(probs, truth) == 0.3  # 0.25 and 0.3 both separate perfectly: the one nearer 0.5
    assert pick_threshold(np.array([0.9, 0.1]), np.array([True, False])) == 0.5


def test_labels_follow_the_bundle_threshold(clas_bundle_path, tmp_path):
    import json
    import shutil
    texts = ["You Won't Believe What This Dog Did", "Senate passes budget bill", "21 Pictures Of Cats"]
    copy = Path(shutil.copytree(clas_bundle_path, tmp_path / "b"))
    config = json.loads((copy / "config.json").read_text())
    for threshold, expected in ((0.0, "clickbait"), (1.01, "news")):
        config["threshold"] = threshold
        (copy / "config.json").write_text(json.dumps(config))
        assert set(classify_headlines(texts, copy)["label"]) == {expected}


def test_fastai_learner_labels_like_classify_headlines(clas_bundle_path, tiny_bundle, slice_df):
    from clickbait.train import ThresholdCrossEntropy, classifier_learner
    from clickbait.datablocks import clas_dataloaders
    assert ThresholdCrossEntropy(thresh=0.3).decodes(torch.tensor([[0.35, 0.65], [0.25, 0.75]])).tolist() == [0, 1]
    clas = load_bundle(clas_bundle_path)
    df = slice_df.head(200)
    ours = classify_headlines(df["text"], clas)
    # a cut far from 0.5, so labelling by argmax would disagree on many of these headlines
    threshold = float(np.quantile(ours[clas.classes[0]], 0.3))
    assert ((ours[clas.classes[0]] >= 0.5) != (ours[clas.classes[0]] >= threshold)).sum() > 10
    dls = clas_dataloaders(df, clas.tokenizer, bs=32, seq_len=clas.config["seq_len"])
    learn = classifier_learner(dls, tiny_bundle, clas.config["seq_len"], threshold=threshold)
    learn.model.load_state_dict(clas.model.state_dict())
    probs, _, decoded = learn.get_preds(dl=learn.dls.test_dl(df), with_decoded=True)
    assert probs[:, 0].numpy() == pytest.approx(ours[clas.classes[0]].to_numpy(), abs=1e-3)
    clas.config["threshold"] = threshold  # this loaded copy only
    assert [clas.classes[i] for i in decoded.tolist()] == classify_headlines(df["text"], clas)["label"].tolist()
