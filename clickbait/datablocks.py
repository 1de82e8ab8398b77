"""fastai DataBlocks for headline language models and classifiers, split by headline and reproducible."""
from __future__ import annotations

import pandas as pd
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.transforms import ColReader, ColSplitter, RandomSplitter
from fastai.text.data import TextBlock
from fastai.data.core import DataLoaders

from .errors import HeadlineDataError
from .tokenizer import HeadlineTokenizer

__all__ = ["VALID_COL", "mark_validation", "prepend_label_tokens", "lm_datablock", "lm_dataloaders", "clas_datablock",
           "clas_dataloaders"]

VALID_COL = "is_valid"


def _splitter(df: pd.DataFrame, valid_pct: float, seed: int, valid_col: str | None):
    # Rows are headlines, so both splitters split by headline; LMDataLoader only concatenates afterwards.
    if valid_col is not None:
        if valid_col not in df.columns:
            raise HeadlineDataError(f"no validation column {valid_col!r}; found {list(df.columns)}")
        return ColSplitter(valid_col)
    return RandomSplitter(valid_pct=valid_pct, seed=seed)


def mark_validation(df: pd.DataFrame, valid_pct: float = 0.1, seed: int = 42) -> pd.DataFrame:
    """`df` with a boolean `is_valid` column: the headlines fastai's `RandomSplitter(valid_pct, seed)` holds out.

    Split once, then fine-tune on a subset (`valid_col="is_valid"`): a target stage that drew its own split would
    validate on headlines the general stage trained on, and reward memorising them."""
    _, valid = RandomSplitter(valid_pct=valid_pct, seed=seed)(range(len(df)))
    is_valid = pd.Series(False, index=range(len(df)))
    is_valid[list(valid)] = True
    return df.assign(**{VALID_COL: is_valid.values})


def prepend_label_tokens(df: pd.DataFrame, tokens: dict[str, str], text_col: str = "text",
                         label_col: str = "label") -> pd.DataFrame:
    """`df` with each headline opened by its label's token (`clickbait.tokenizer.label_tokens`), the text a
    conditional LM trains on: tokenized, it reads `xxbos xxlabel0 ...`."""
    unknown = set(df[label_col]) - set(tokens)
    if unknown:
        raise HeadlineDataError(f"labels {sorted(map(str, unknown))} have no label token; tokens: {tokens}")
    return df.assign(**{text_col: df[label_col].map(tokens) + " " + df[text_col]})


def _checked(df: pd.DataFrame, text_col: str) -> pd.DataFrame:
    if text_col not in df.columns:
        raise HeadlineDataError(f"no text column {text_col!r}; found {list(df.columns)}")
    if len(df) < 2:
        raise HeadlineDataError(f"need at least 2 headlines to split into train and valid, got {len(df)}")
    return df.reset_index(drop=True)


def lm_datablock(tokenizer: HeadlineTokenizer, seq_len: int = 48, valid_pct: float = 0.1, seed: int = 42,
                 text_col: str = "text", df: pd.DataFrame | None = None, valid_col: str | None = None,
                 backwards: bool = False) -> DataBlock:
    """DataBlock of headline streams for a language model, with our tokenizer and its fixed vocabulary.

    `backwards` reverses each headline's tokens (fastai's `reverse_text`), for an LM that reads right to left."""
    block = TextBlock(tokenizer.fastai_tokenizer(text_col), vocab=tokenizer.vocab, is_lm=True, seq_len=seq_len,
                      backwards=backwards)
    return DataBlock(blocks=block, get_x=ColReader("text"),
                     splitter=_splitter(df if df is not None else pd.DataFrame(), valid_pct, seed, valid_col))


def lm_dataloaders(df: pd.DataFrame, tokenizer: HeadlineTokenizer, bs: int = 64, seq_len: int = 48,
                   valid_pct: float = 0.1, seed: int = 42, text_col: str = "text",
                   valid_col: str | None = None, backwards: bool = False, **kwargs) -> DataLoaders:
    """LM DataLoaders over `df[text_col]`: headlines split train/valid by `seed`, then streamed in `seq_len` chunks
    (each headline reversed when `backwards`)."""
    df = _checked(df, text_col)
    dblock = lm_datablock(tokenizer, seq_len, valid_pct, seed, text_col, df, valid_col, backwards)
    return dblock.dataloaders(df, bs=bs, seed=seed, **kwargs)


def clas_datablock(tokenizer: HeadlineTokenizer, label_col: str = "label", seq_len: int = 48,
                   valid_pct: float = 0.1, seed: int = 42, text_col: str = "text",
                   df: pd.DataFrame | None = None, valid_col: str | None = None) -> DataBlock:
    """DataBlock of (headline, label) pairs with the LM's vocabulary, for `text_classifier_learner`."""
    text = TextBlock(tokenizer.fastai_tokenizer(text_col), vocab=tokenizer.vocab, is_lm=False, seq_len=seq_len)
    return DataBlock(blocks=(text, CategoryBlock), get_x=ColReader("text"), get_y=ColReader(label_col),
                     splitter=_splitter(df if df is not None else pd.DataFrame(), valid_pct, seed, valid_col))


def clas_dataloaders(df: pd.DataFrame, tokenizer: HeadlineTokenizer, label_col: str = "label", bs: int = 64,
                     seq_len: int = 48, valid_pct: float = 0.1, seed: int = 42, text_col: str = "text",
                     valid_col: str | None = None, **kwargs) -> DataLoaders:
    """Classifier DataLoaders: `df[text_col]` headlines labelled by `df[label_col]`, split by `seed`."""
    df = _checked(df, text_col)
    if label_col not in df.columns:
        raise HeadlineDataError(f"no label column {label_col!r}; found {list(df.columns)}")
    if df[label_col].isna().any():
        raise HeadlineDataError(f"label column {label_col!r} has {int(df[label_col].isna().sum())} missing labels")
    classes = df[label_col].nunique()
    if classes < 2:
        raise HeadlineDataError(f"label column {label_col!r} has {classes} class; a classifier needs at least 2")
    dblock = clas_datablock(tokenizer, label_col, seq_len, valid_pct, seed, text_col, df, valid_col)
    return dblock.dataloaders(df, bs=bs, seed=seed, **kwargs)
