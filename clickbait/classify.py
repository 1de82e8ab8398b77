"""Classifier inference: label headlines and score how click-baity they are with a classifier bundle.

Training lives in `clickbait.train`; this module needs only the bundle, so generation can rerank without loading
the recipes.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from fastai.text.data import pad_input_chunk

from .bundle import ModelRef, resolve_bundle
from .errors import BundleError
from .models import length_sorted_batches, native_kernels
from .text import headline_list

__all__ = ["threshold_labels", "classify_headlines", "clickbait_score", "clickbait_scorer", "realness_odds"]


def threshold_labels(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """The two-class labelling rule: class 0 where its probability reaches `threshold`, else class 1."""
    return (probs[..., 0] < threshold).long()


@torch.inference_mode()
def classify_headlines(headlines: Iterable[str], model: ModelRef = None, batch_size: int = 128) -> pd.DataFrame:
    """A DataFrame in input order: `text`, predicted `label`, and one probability column per class.

    Two-class bundles label with the decision threshold chosen on their validation split (`config["threshold"]`).
    `headlines` is a list of non-empty str (anything else is refused, naming its position)."""
    bundle = resolve_bundle(model, "classifier")
    texts = headline_list(headlines)
    ids = bundle.tokenizer.encode_batch(texts)
    seq_len = bundle.config.get("seq_len", 72)
    probs = torch.zeros(len(texts), len(bundle.classes))
    with bundle.lock, native_kernels():
        bundle.model.eval()
        for chunk in length_sorted_batches([len(i) for i in ids], batch_size):
            # fastai's own collate for classifiers: padding first, in chunks of seq_len, so the encoder masks it
            batch = pad_input_chunk([(torch.tensor(ids[i]),) for i in chunk], pad_idx=1, pad_first=True,
                                    seq_len=seq_len)
            x = torch.stack([b[0] for b in batch])
            bundle.model.reset()
            probs[chunk] = F.softmax(bundle.model(x)[0].float(), dim=-1)
    out = pd.DataFrame({"text": texts})
    threshold = bundle.config.get("threshold")
    picks = threshold_labels(probs, threshold) if threshold is not None else probs.argmax(1)
    out["label"] = [bundle.classes[i] for i in picks.tolist()]
    for j, name in enumerate(bundle.classes):
        out[name] = probs[:, j].numpy()
    return out


def clickbait_score(headlines: Iterable[str], model: ModelRef = None) -> list[float]:
    """Probability that each headline is clickbait, from a classifier with a `clickbait` class."""
    bundle = resolve_bundle(model, "classifier")
    if "clickbait" not in bundle.classes:
        raise BundleError(f"{bundle.path or 'classifier'}: classes {bundle.classes} have no 'clickbait' class")
    return classify_headlines(headlines, bundle)["clickbait"].tolist()


def clickbait_scorer(classifier: ModelRef = None) -> Callable[[list[str]], list[float]]:
    """texts -> clickbait probabilities, from a classifier bundle (default: the bundled one)."""
    bundle = resolve_bundle(classifier, "classifier")
    return lambda texts: clickbait_score(texts, bundle) if texts else []


def realness_odds(headlines: Iterable[str], model: ModelRef) -> np.ndarray:
    """D / (1 - D) per headline, D a discriminator bundle's probability that it is `real` (not generated)."""
    bundle = resolve_bundle(model, "classifier")
    if bundle.classes != ["generated", "real"]:
        raise BundleError(f"{bundle.path or 'discriminator'}: classes {bundle.classes} are not ['generated', 'real']")
    real = classify_headlines(headlines, bundle)["real"].to_numpy(dtype=np.float64)
    return real / np.clip(1 - real, 1e-9, None)
