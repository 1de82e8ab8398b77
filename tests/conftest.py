"""Shared fixtures: the shared Chakraborty data, a tokenizer and a tiny trained LM bundle (built once)."""
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("CLICKBAIT_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"
                             / "chakraborty2016"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "clickbait.txt.gz").exists():
        pytest.fail(f"shared data not found at {SHARED}; set CLICKBAIT_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def corpus(shared_dir):
    from clickbait.data import load_chakraborty
    return load_chakraborty(shared_dir)


@pytest.fixture(scope="session")
def train_holdout(corpus):
    from clickbait.data import split_holdout
    return split_holdout(corpus)


@pytest.fixture(scope="session")
def slice_df(train_holdout):
    """3,000 training headlines, both labels, for tiny models."""
    return train_holdout[0].sample(3000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def slice_tokenizer(slice_df):
    from clickbait.tokenizer import HeadlineTokenizer
    return HeadlineTokenizer.train(slice_df["text"], max_vocab=3000, min_freq=2)


@pytest.fixture(scope="session")
def tiny_learner(slice_df, slice_tokenizer, tmp_path_factory):
    """A tiny AWD-LSTM LM trained for 2 epochs on the slice (with its loss before training recorded)."""
    from fastai.torch_core import set_seed

    from clickbait.datablocks import lm_dataloaders
    from clickbait.models import PRESETS
    from clickbait.train import lm_learner
    preset = PRESETS["tiny"]
    set_seed(0, reproducible=True)  # dropout and shuffling: the same tiny model on every run
    dls = lm_dataloaders(slice_df, slice_tokenizer, bs=preset.bs, seq_len=preset.seq_len, seed=0)
    learn = lm_learner(dls, preset, path=tmp_path_factory.mktemp("tiny"))
    learn.loss_before = float(learn.validate()[0])
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2)
    return learn


@pytest.fixture(scope="session")
def tiny_bundle_path(tiny_learner, slice_tokenizer, slice_df, tmp_path_factory):
    from clickbait.bundle import save_bundle
    path = tmp_path_factory.mktemp("bundles") / "tiny-lm"
    return save_bundle(path, tiny_learner.model, slice_tokenizer, {"kind": "lm", "preset": "tiny"},
                       train_texts=slice_df["text"])


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_path):
    from clickbait.bundle import load_bundle
    return load_bundle(tiny_bundle_path)


@pytest.fixture(scope="session")
def clas_bundle_path(slice_df, tiny_bundle, tmp_path_factory):
    """A tiny clickbait-vs-news classifier on the tiny LM's encoder."""
    from clickbait.fit import Phase
    from clickbait.train import ClassifierConfig, train_classifier
    cfg = ClassifierConfig(phases=[Phase(1, 2e-2, freeze_to=-1), Phase(4, 1e-2)], bs=64)
    out = tmp_path_factory.mktemp("clas") / "bundle"
    train_classifier(slice_df, lm=tiny_bundle, cfg=cfg, work=tmp_path_factory.mktemp("clas-work"), out=out)
    return out
