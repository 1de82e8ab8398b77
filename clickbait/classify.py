"""ULMFiT headline classifier on our LM encoder: train, save as a bundle, classify and score headlines."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn
import torch.nn.functional as F
from fastai.data.core import DataLoaders
from fastai.text.core import TK_MAJ, TK_UP
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import F1Score, accuracy
from fastai.text.data import pad_input_chunk
from fastai.text.learner import TextLearner, text_classifier_learner
from fastai.text.models.awdlstm import AWD_LSTM
from fastai.torch_core import distrib_barrier, rank_distrib, set_seed

from .bundle import BUNDLED, Bundle, ModelRef, resolve_bundle, save_bundle
from .data import HeadlineDataError
from .datablocks import clas_dataloaders
from .models import get_preset
from .tokenizer import HeadlineTokenizer
from .train import Phase, fit_phases

__all__ = ["ClassifierConfig", "ThresholdCrossEntropy", "classifier_learner", "distinct_case_marks", "pick_threshold",
           "train_classifier", "classify_headlines", "clickbait_score"]


@dataclass
class ClassifierConfig:
    """Fine-tuning schedule: gradual unfreezing (last group, last two, all) with discriminative rates."""
    phases: list[Phase] = field(default_factory=lambda: [Phase(1, 2e-2, freeze_to=-1), Phase(1, 1e-2, freeze_to=-2),
                                                         Phase(1, 5e-3, freeze_to=-3), Phase(3, 1e-3)])
    bs: int = 32
    seq_len: int = 72
    valid_pct: float = 0.1
    seed: int = 42
    patience: int = 2
    # A casing-style mark per headline: lowercase tokens lose casing, which separates most clickbait from news.
    case_marks: bool = True


def _cut(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    # The two-class labelling rule: the first class when its probability reaches the threshold, else the second.
    return (probs[..., 0] < threshold).long()


class ThresholdCrossEntropy(CrossEntropyLossFlat):
    """fastai's `CrossEntropyLossFlat` whose `decodes` cuts the first class's probability at `thresh` (two classes),
    as `BCEWithLogitsLossFlat(thresh=)` does, so fastai's `predict`, `get_preds(with_decoded=True)` and
    `ClassificationInterpretation` label headlines exactly as `classify_headlines` does."""

    def __init__(self, *args, thresh: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.thresh = thresh

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities -> class index: the first class when its probability reaches `thresh`."""
        return _cut(x, self.thresh)


def classifier_learner(dls: DataLoaders, lm: Bundle, seq_len: int = 72, path: str | os.PathLike = ".",
                       threshold: float | None = None) -> TextLearner:
    """fastai `text_classifier_learner` whose encoder starts from the LM bundle's encoder (no hub weights).

    `threshold` (two classes; a classifier bundle's `config["threshold"]`) makes fastai decode labels with it."""
    if threshold is not None and dls.c != 2:
        raise HeadlineDataError(f"a decision threshold needs two classes, these dataloaders have {dls.c}")
    preset = get_preset(lm.config["preset"])
    metrics = [accuracy] + ([F1Score()] if dls.c == 2 else [F1Score(average="macro")])
    learn = text_classifier_learner(dls, AWD_LSTM, seq_len=seq_len, config=preset.awd_config(classifier=True),
                                    pretrained=False, drop_mult=preset.drop_mult, metrics=metrics, path=path,
                                    model_dir=".",
                                    loss_func=None if threshold is None else ThresholdCrossEntropy(thresh=threshold))
    learn.model[0].module.load_state_dict(lm.model[0].state_dict())
    learn.freeze()
    return learn


def distinct_case_marks(encoder: nn.Module, tokenizer: HeadlineTokenizer, seed: int = 0) -> None:
    """Give `xxmaj` and `xxup` distinct embeddings at the typical norm of trained rows.

    The LM never sees them as input, so it leaves their rows nearly identical (cosine 0.99 in the bundled LM) and
    the classifier could not tell the two casing styles apart.
    """
    weight = encoder.encoder.weight
    norm = weight.detach().norm(dim=1).median()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for token in (TK_MAJ, TK_UP):
            direction = torch.randn(weight.size(1), generator=generator)
            weight[tokenizer.o2i[token]] = direction / direction.norm() * norm


def _lm_reference(lm: Bundle) -> dict:
    # The encoder's origin without a machine-specific path: the bundled LM by name, any other by its directory name.
    path = lm.path.resolve() if lm.path else None
    name = "bundled:lm" if path is not None and path == BUNDLED.resolve() / "lm" else (path.name if path else None)
    return {"bundle": name, "data_fingerprint": lm.config.get("data_fingerprint")}


def train_classifier(df: pd.DataFrame, text_col: str = "text", label_col: str = "label", *, lm: ModelRef = None,
                     cfg: ClassifierConfig | None = None, work: str | os.PathLike = "runs/classifier",
                     out: str | os.PathLike | None = None, overwrite: bool = False,
                     log: Callable[[str], None] = print) -> Bundle:
    """Fine-tune a classifier for `df[label_col]` (two or more classes) on the LM encoder; save a bundle to `out`."""
    cfg = cfg or ClassifierConfig()
    lm = resolve_bundle(lm, "lm")
    if text_col not in df.columns:
        raise HeadlineDataError(f"no text column {text_col!r}; found {list(df.columns)}")
    start = time.time()
    set_seed(cfg.seed)  # every rank must shuffle the same way
    df = df.rename(columns={text_col: "text"}) if text_col != "text" else df
    tokenizer = lm.tokenizer.with_case_marks() if cfg.case_marks else lm.tokenizer
    dls = clas_dataloaders(df, tokenizer, label_col=label_col, bs=cfg.bs, seq_len=cfg.seq_len,
                           valid_pct=cfg.valid_pct, seed=cfg.seed)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    learn = classifier_learner(dls, lm, cfg.seq_len, path=work)
    if cfg.case_marks:
        distinct_case_marks(learn.model[0].module, tokenizer, cfg.seed)
    log(f"classifier: {len(df):,} headlines, classes {list(dls.vocab[1])}")
    fit_phases(learn, cfg.phases, "classifier", work, cfg.patience, log)
    loss, acc, f1 = learn.validate()
    threshold = None
    if dls.c == 2:
        probs, targets = learn.get_preds(dl=dls.valid)
        threshold = pick_threshold(probs[:, 0].numpy(), targets.numpy() == 0)
    config = {"kind": "classifier", "preset": lm.config["preset"], "classes": [str(c) for c in dls.vocab[1]],
              "seq_len": cfg.seq_len, "lm": _lm_reference(lm), "threshold": threshold,
              "metrics": {"valid_loss": round(float(loss), 4), "valid_accuracy": round(float(acc), 4),
                          "valid_f1": round(float(f1), 4)},
              "train_minutes": round((time.time() - start) / 60, 1)}
    learn.model.eval()
    bundle = Bundle(model=learn.model.cpu(), tokenizer=tokenizer, config=config)
    if out is not None:
        if not rank_distrib():  # under torchrun, rank 0 writes
            save_bundle(out, learn.model, tokenizer, config, train_texts=df["text"], overwrite=overwrite)
        distrib_barrier()
        bundle.path = Path(out)
    log(f"classifier done in {config['train_minutes']} min: {config['metrics']}")
    return bundle


def pick_threshold(first_class_probs: np.ndarray, is_first_class: np.ndarray) -> float:
    """The cut on the first class's probability with the best validation accuracy (ties: the one nearest 0.5).

    Two-class bundles label with it instead of argmax: on the bundled classifier's validation split the best cut
    is 0.30, as it is on the held-out slice, because short clickbait video titles read like news.
    """
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    scores = np.array([((first_class_probs >= t) == is_first_class).mean() for t in grid])
    best = grid[scores >= scores.max() - 1e-12]
    return float(best[np.argmin(np.abs(best - 0.5))])


@torch.inference_mode()
def classify_headlines(headlines: Iterable[str], model: ModelRef = None, batch_size: int = 128) -> pd.DataFrame:
    """A DataFrame in input order: `text`, predicted `label`, and one probability column per class.

    Two-class bundles label with the decision threshold chosen on their validation split (`config["threshold"]`)."""
    bundle = resolve_bundle(model, "classifier")
    texts = [h if isinstance(h, str) else "" for h in headlines]
    ids = bundle.tokenizer.encode_batch(texts)
    seq_len = bundle.config.get("seq_len", 72)
    probs = torch.zeros(len(texts), len(bundle.classes))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    bundle.model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        # fastai's own collate for classifiers: padding first, in chunks of seq_len, so the encoder masks it
        batch = pad_input_chunk([(torch.tensor(ids[i]),) for i in chunk], pad_idx=1, pad_first=True, seq_len=seq_len)
        x = torch.stack([b[0] for b in batch])
        bundle.model.reset()
        probs[chunk] = F.softmax(bundle.model(x)[0].float(), dim=-1)
    out = pd.DataFrame({"text": texts})
    threshold = bundle.config.get("threshold")
    picks = _cut(probs, threshold) if threshold is not None else probs.argmax(1)
    out["label"] = [bundle.classes[i] for i in picks.tolist()]
    for j, name in enumerate(bundle.classes):
        out[name] = probs[:, j].numpy()
    return out


def clickbait_score(headlines: Iterable[str], model: ModelRef = None) -> list[float]:
    """Probability that each headline is clickbait, from a classifier with a `clickbait` class."""
    bundle = resolve_bundle(model, "classifier")
    if "clickbait" not in bundle.classes:
        raise HeadlineDataError(f"classifier classes {bundle.classes} have no 'clickbait' class")
    return classify_headlines(headlines, bundle)["clickbait"].tolist()
