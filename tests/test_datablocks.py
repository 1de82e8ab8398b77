"""fastai DataBlocks: LM and classifier DataLoaders, split by headline and reproducible from the seed."""
import pandas as pd
import pytest

from clickbait.errors import HeadlineDataError
from clickbait.datablocks import clas_dataloaders, lm_dataloaders, mark_validation


@pytest.fixture(scope="module")
def small(slice_df):
    return slice_df.head(600).reset_index(drop=True)


def _valid_texts(dls):
    return set(dls.valid_ds.items["text"].map(tuple))


def test_lm_dataloaders_shapes_and_targets(small, slice_tokenizer):
    dls = lm_dataloaders(small, slice_tokenizer, bs=8, seq_len=16, seed=0)
    x, y = dls.one_batch()
    assert x.shape == y.shape == (8, 16)
    assert (x[:, 1:] == y[:, :-1]).all()  # targets are the next tokens
    assert list(dls.vocab) == slice_tokenizer.vocab


def test_lm_split_is_by_headline_and_seeded(small, slice_tokenizer):
    a = lm_dataloaders(small, slice_tokenizer, bs=8, seq_len=16, valid_pct=0.2, seed=1)
    b = lm_dataloaders(small, slice_tokenizer, bs=8, seq_len=16, valid_pct=0.2, seed=1)
    c = lm_dataloaders(small, slice_tokenizer, bs=8, seq_len=16, valid_pct=0.2, seed=2)
    assert len(a.train_ds) + len(a.valid_ds) == len(small) and len(a.valid_ds) == 120
    assert list(a.valid_ds.items.index) == list(b.valid_ds.items.index)
    assert list(a.valid_ds.items.index) != list(c.valid_ds.items.index)
    assert not set(a.train_ds.items.index) & set(a.valid_ds.items.index)
    # every validation item is a whole headline: xxbos ... xxeos
    for toks in a.valid_ds.items["text"]:
        assert toks[0] == "xxbos" and toks[-1] == "xxeos"


def test_one_split_serves_both_stages_so_the_target_never_validates_on_general_training(small, slice_tokenizer):
    marked = mark_validation(small, valid_pct=0.2, seed=1)
    random = lm_dataloaders(small, slice_tokenizer, bs=8, seq_len=16, valid_pct=0.2, seed=1)
    general = lm_dataloaders(marked, slice_tokenizer, bs=8, seq_len=16, valid_col="is_valid")
    assert _valid_texts(general) == _valid_texts(random)  # the same headlines fastai's RandomSplitter holds out
    target_df = marked[marked["label"] == "clickbait"]
    target = lm_dataloaders(target_df, slice_tokenizer, bs=8, seq_len=16, valid_col="is_valid")
    assert _valid_texts(target) and _valid_texts(target) <= _valid_texts(general)
    assert not _valid_texts(target) & set(general.train_ds.items["text"].map(tuple))
    # what a target stage splitting on its own did: most of its validation headlines were general training ones
    own = lm_dataloaders(target_df, slice_tokenizer, bs=8, seq_len=16, valid_pct=0.2, seed=1)
    assert len(_valid_texts(own) - _valid_texts(general)) > len(_valid_texts(own)) / 2


def test_show_batch_is_clean_text(small, slice_tokenizer, capsys):
    dls = lm_dataloaders(small, slice_tokenizer, bs=4, seq_len=24, seed=0)
    dls.show_batch(max_n=4)
    out = capsys.readouterr().out
    assert out.strip() and "xxbos" not in out and "xxeos" not in out and " 's" not in out and " ," not in out


def test_clas_dataloaders(small, slice_tokenizer):
    dls = clas_dataloaders(small, slice_tokenizer, label_col="label", bs=16, seed=0)
    x, y = dls.one_batch()
    assert x.shape[0] == 16 and y.shape == (16,)
    assert list(dls.vocab[1]) == ["clickbait", "news"]
    assert list(dls.vocab[0]) == slice_tokenizer.vocab


def test_clas_bad_labels(small, slice_tokenizer):
    with pytest.raises(HeadlineDataError, match="no label column 'kind'"):
        clas_dataloaders(small, slice_tokenizer, label_col="kind")
    one = small.assign(label="clickbait")
    with pytest.raises(HeadlineDataError, match="1 class"):
        clas_dataloaders(one, slice_tokenizer)
    holes = small.assign(label=small["label"].where(small.index % 7 != 0))
    with pytest.raises(HeadlineDataError, match="missing labels"):
        clas_dataloaders(holes, slice_tokenizer)
    with pytest.raises(HeadlineDataError, match="no text column"):
        lm_dataloaders(pd.DataFrame({"body": ["a", "b"]}), slice_tokenizer)
