"""Training recipes: the ULMFiT headline LM (a general LM, then a target-style fine-tune) and the classifier on
its encoder. Each step is a function a notebook can call on its own; both recipes run on the `fit` engine and
write bundles.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from fastai.data.core import DataLoaders
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import F1Score, Perplexity, accuracy
from fastai.text.core import TK_MAJ, TK_UP
from fastai.text.learner import (LMLearner, TextLearner, language_model_learner, match_embeds,
                                 text_classifier_learner)
from fastai.text.models.awdlstm import AWD_LSTM
from fastai.torch_core import set_seed
from safetensors.torch import save_file
from torch import nn

from .bundle import BUNDLED, WEIGHT_DTYPES, Bundle, ModelRef, resolve_bundle, round_weights, save_bundle
from .classify import realness_odds, threshold_labels
from .data import load_corpus, split_holdout
from .datablocks import VALID_COL, clas_dataloaders, lm_dataloaders, mark_validation, prepend_label_tokens
from .errors import CheckpointError, HeadlineDataError, UsageError
from .fit import Phase, fit_phases, on_rank0
from .generate import GenerationRequest, generate_from
from .models import LMPreset, get_preset
from .tokenizer import HeadlineTokenizer, label_tokens

__all__ = ["RecipeConfig", "lm_learner", "train_general_lm", "finetune_target_lm", "finetune_conditional_lm",
           "save_encoder", "run_recipe",
           "ClassifierConfig", "ThresholdCrossEntropy", "classifier_learner", "distinct_case_marks", "pick_threshold",
           "train_classifier", "train_discriminator"]


# A label token starts at the mean embedding of the tokens of this many of its headlines.
LABEL_INIT_HEADLINES = 2000
# Share of generated candidates the realism filter lets through (sets the discriminator's odds scale).
DISCRIMINATOR_ACCEPTANCE = 0.4

# ------------------------------------------------------------------------------------------------ the LM recipe

@dataclass
class RecipeConfig:
    """Everything the recipe needs beyond the data; stored in the bundle config."""
    preset: str = "small"
    max_vocab: int = 6_000
    min_freq: int = 2
    # Out-of-vocabulary words as the token of their class (clickbait.tokenizer.UNKNOWN_CLASSES) instead of xxunk.
    unknown_classes: bool = False
    # Dropout at the small preset's 1.0x needs the longer schedule: 8 epochs at 0.5x validated at perplexity 68.1,
    # 15 at 1.0x at 65.1 (and 38.6 -> 36.9 after the clickbait stage).
    general: list[Phase] = field(default_factory=lambda: [Phase(epochs=15, lr=1e-2)])
    # Every layer group at once, each lower one 2.6x slower: a first phase on the top group alone at 1e-2 only
    # raised the validation loss of a general LM that already writes the target style well.
    target: list[Phase] = field(default_factory=lambda: [Phase(6, 2e-3)])
    valid_pct: float = 0.1
    seed: int = 42
    patience: int = 2
    target_label: str = "clickbait"
    # A backward LM reads each headline right to left (ULMFiT trains both directions).
    backwards: bool = False
    # One LM for every label: the target stage trains on all headlines, each opened by its label's token, instead
    # of on the target label's alone; generation then primes with the token of the label asked for.
    conditional: bool = False

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def lm_learner(dls: DataLoaders, preset: LMPreset | str, path: str | os.PathLike = ".") -> LMLearner:
    """fastai `language_model_learner` for `preset`, with no hub weights (pretraining is our general stage)."""
    preset = get_preset(preset)
    return language_model_learner(dls, AWD_LSTM, config=preset.awd_config(), pretrained=False,
                                  drop_mult=preset.drop_mult, metrics=[accuracy, Perplexity()], path=path,
                                  model_dir=".")


def _lm_settings(preset: LMPreset, df: pd.DataFrame) -> dict:
    # What a resumed LM stage must share with the run that started it, beside its phases (see `fit_phases`).
    return {"preset": preset.to_dict(), "headlines": len(df)}


def train_general_lm(df: pd.DataFrame, tokenizer: HeadlineTokenizer, cfg: RecipeConfig,
                     work: str | os.PathLike, log: Callable[[str], None] = print) -> LMLearner:
    """Step 1: a headline LM from scratch on every training headline (our stand-in for WT103 pretraining); an
    `is_valid` column (`mark_validation`) fixes the validation headlines, else a seeded random split does."""
    preset = get_preset(cfg.preset)
    dls = lm_dataloaders(df, tokenizer, bs=preset.bs, seq_len=preset.seq_len, valid_pct=cfg.valid_pct, seed=cfg.seed,
                         valid_col=VALID_COL if VALID_COL in df else None, backwards=cfg.backwards)
    learn = lm_learner(dls, preset, path=work)
    log(f"general LM: {len(df):,} headlines, {len(tokenizer):,} tokens in vocab, preset {preset.name}")
    return fit_phases(learn, cfg.general, "general", work, cfg.patience, log, settings=_lm_settings(preset, df))


def finetune_target_lm(df: pd.DataFrame, tokenizer: HeadlineTokenizer, general: LMLearner, cfg: RecipeConfig,
                       work: str | os.PathLike, log: Callable[[str], None] = print) -> LMLearner:
    """Step 2: fine-tune the general LM on the target style (`cfg.target` phases, discriminative rates; a phase's
    `freeze_to` unfreezes gradually); pass the general stage's `is_valid` column so no headline it trained on is
    validated on."""
    preset = get_preset(cfg.preset)
    dls = lm_dataloaders(df, tokenizer, bs=preset.bs, seq_len=preset.seq_len, valid_pct=cfg.valid_pct, seed=cfg.seed,
                         valid_col=VALID_COL if VALID_COL in df else None, backwards=cfg.backwards)
    learn = lm_learner(dls, preset, path=work)
    learn.model.load_state_dict(general.model.state_dict())
    log(f"target LM: {len(df):,} headlines")
    return fit_phases(learn, cfg.target, "target", work, cfg.patience, log, settings=_lm_settings(preset, df))


def finetune_conditional_lm(df: pd.DataFrame, tokenizer: HeadlineTokenizer, general: LMLearner, cfg: RecipeConfig,
                            work: str | os.PathLike, log: Callable[[str], None] = print
                            ) -> tuple[LMLearner, HeadlineTokenizer, dict[str, str]]:
    """Step 2, conditional: fine-tune the general LM on every labelled headline opened by its label's token; the
    vocabulary gains one token per label, each starting at the mean embedding of its own headlines' tokens. Returns
    the learner, its tokenizer and the label tokens."""
    preset = get_preset(cfg.preset)
    tokens = label_tokens(df["label"])
    labelled = tokenizer.with_tokens(tokens.values())
    dls = lm_dataloaders(prepend_label_tokens(df, tokens), labelled, bs=preset.bs, seq_len=preset.seq_len,
                         valid_pct=cfg.valid_pct, seed=cfg.seed, valid_col=VALID_COL if VALID_COL in df else None,
                         backwards=cfg.backwards)
    learn = lm_learner(dls, preset, path=work)
    state = match_embeds({k: v.clone() for k, v in general.model.state_dict().items()}, tokenizer.vocab,
                         labelled.vocab)
    # fastai starts new tokens at the mean embedding, so both labels would start alike and part slowly: start each
    # at the mean embedding of its own headlines' tokens instead.
    for label, token in tokens.items():
        texts = df.loc[df["label"] == label, "text"].head(LABEL_INIT_HEADLINES).tolist()
        ids = torch.tensor([i for toks in tokenizer.encode_batch(texts) for i in toks])
        start = state["0.encoder.weight"][ids].mean(0)
        for key in ("0.encoder.weight", "0.encoder_dp.emb.weight", "1.decoder.weight"):
            if key in state:
                state[key][labelled.o2i[token]] = start
    learn.model.load_state_dict(state)
    log(f"conditional LM: {len(df):,} headlines, labels {tokens}")
    learn = fit_phases(learn, cfg.target, "target", work, cfg.patience, log, settings=_lm_settings(preset, df))
    return learn, labelled, tokens


def save_encoder(learn: LMLearner, path: str | os.PathLike) -> Path:
    """Step 3: the fine-tuned encoder as safetensors, for the classifier."""
    state = {k: v.contiguous() for k, v in learn.model[0].state_dict().items() if not k.endswith(".module.weight_hh_l0")
             and not k.startswith("encoder_dp.")}
    save_file(state, str(path))
    return Path(path)


def _validation_metrics(learn: LMLearner) -> dict:
    loss, acc, ppl = learn.validate()
    return {"valid_loss": round(float(loss), 4), "valid_accuracy": round(float(acc), 4),
            "valid_token_perplexity": round(float(ppl), 2)}


def _recipe_tokenizer(train_df: pd.DataFrame, cfg: RecipeConfig, tok_file: Path) -> HeadlineTokenizer:
    # A resumed run must reuse the vocabulary its checkpoints were trained with; rank 0 builds it, all ranks read it.
    if not tok_file.exists():
        on_rank0(lambda: HeadlineTokenizer.train(train_df["text"], max_vocab=cfg.max_vocab, min_freq=cfg.min_freq,
                                                 unknown_classes=cfg.unknown_classes).save(tok_file))
    tokenizer = HeadlineTokenizer.load(tok_file)
    built = (tokenizer.max_vocab, tokenizer.min_freq, tokenizer.unknown_classes)
    asked = (cfg.max_vocab, cfg.min_freq, cfg.unknown_classes)
    if built != asked:  # its checkpoints are of that vocabulary: going on would quietly ignore the new one
        raise CheckpointError(f"{tok_file}: this work folder's vocabulary was built with max_vocab, min_freq, "
                              f"unknown_classes = {built}, this run asks for {asked}; rerun with those, or train in "
                              f"a new work folder")
    return tokenizer


def run_recipe(data: str | os.PathLike | pd.DataFrame, out: str | os.PathLike, work: str | os.PathLike = "runs/default",
               cfg: RecipeConfig | None = None, overwrite: bool = True, sample: int | None = None,
               log: Callable[[str], None] = print) -> Path:
    """Run the whole recipe on `data` and write the LM bundle to `out`; rerunning with the same `work` resumes.

    `data` is a Chakraborty folder, a headline file or URL, or a DataFrame (`text`, optional `label`). The
    target-style stage trains on the rows labelled `cfg.target_label`; without any, the general LM is the result.
    `sample` draws that many headlines (per file for a folder), for quick runs. Under torchrun every rank trains
    its share of each batch and rank 0 writes the files.
    """
    cfg = cfg or RecipeConfig()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)  # every rank must shuffle the LM stream the same way
    start = time.time()
    train_df, _ = split_holdout(load_corpus(data, sample=sample))  # the held-out slice is for benches only
    train_df = mark_validation(train_df, cfg.valid_pct, cfg.seed)  # one split for both stages
    tokenizer = _recipe_tokenizer(train_df, cfg, work / "tokenizer.json")
    learn = train_general_lm(train_df, tokenizer, cfg, work, log)
    metrics = {"general": _validation_metrics(learn)}
    target_df = train_df[train_df["label"] == cfg.target_label] if "label" in train_df else train_df.iloc[:0]
    labels, rare_texts = None, None
    if cfg.conditional and "label" in train_df and train_df["label"].nunique() >= 2:
        learn, tokenizer, labels = finetune_conditional_lm(train_df, tokenizer, learn, cfg, work, log)
        metrics["conditional"] = _validation_metrics(learn)
        # Rare words of every label, with the LM states their own label token led to.
        rare_texts = prepend_label_tokens(train_df, labels)["text"]
    elif cfg.conditional:
        raise HeadlineDataError("a conditional LM needs a 'label' column with at least two labels")
    elif len(target_df) >= 2:
        learn = finetune_target_lm(target_df, tokenizer, learn, cfg, work, log)
        metrics["target"] = _validation_metrics(learn)
        rare_texts = target_df["text"]
    else:
        log(f"no headlines labelled {cfg.target_label!r}: the general LM is the result")
    config = {"kind": "lm", "preset": cfg.preset, "recipe": cfg.to_dict(), "backwards": cfg.backwards,
              "target_label": cfg.target_label if "target" in metrics else None, "labels": labels,
              "metrics": metrics, "train_minutes": round((time.time() - start) / 60, 1)}

    def write() -> None:
        save_encoder(learn, work / "encoder.safetensors")
        save_bundle(out, learn.model, tokenizer, config, train_texts=train_df["text"], overwrite=overwrite,
                    rare_word_texts=rare_texts)
        log(f"bundle written to {out} in {config['train_minutes']} min: {json.dumps(config['metrics'])}")
    on_rank0(write)
    return Path(out)


# ---------------------------------------------------------------------------------------- the classifier recipe

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
    # How the bundle stores weights: int8 halves a classifier's bytes; its metrics are measured on the int8 weights.
    weights_dtype: str = "int8"


class ThresholdCrossEntropy(CrossEntropyLossFlat):
    """fastai's `CrossEntropyLossFlat` whose `decodes` cuts the first class's probability at `thresh` (two classes),
    as `BCEWithLogitsLossFlat(thresh=)` does, so fastai's `predict`, `get_preds(with_decoded=True)` and
    `ClassificationInterpretation` label headlines exactly as `classify_headlines` does."""

    def __init__(self, *args, thresh: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.thresh = thresh

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities -> class index: the first class when its probability reaches `thresh`."""
        return threshold_labels(x, self.thresh)


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
    if cfg.weights_dtype not in WEIGHT_DTYPES:  # before the training, not after it
        raise UsageError(f"weights_dtype must be one of {list(WEIGHT_DTYPES)}, got {cfg.weights_dtype!r}")
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
    fit_phases(learn, cfg.phases, "classifier", work, cfg.patience, log,
               settings={"bs": cfg.bs, "seq_len": cfg.seq_len, "case_marks": cfg.case_marks, "headlines": len(df)})
    round_weights(learn.model, cfg.weights_dtype)
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
        on_rank0(lambda: save_bundle(out, learn.model, tokenizer, config, train_texts=df["text"],
                                     overwrite=overwrite, dtype=cfg.weights_dtype))
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




def train_discriminator(real_texts: Sequence[str], *, lm: ModelRef = None, cfg: ClassifierConfig | None = None,
                        work: str | os.PathLike = "runs/discriminator", out: str | os.PathLike | None = None,
                        overwrite: bool = False, seed: int = 1,
                        temperature: float = GenerationRequest.temperature,
                        top_p: float | None = GenerationRequest.top_p, eta: float | None = GenerationRequest.eta,
                        repeat_floor: float | None = GenerationRequest.repeat_floor, rare_words: bool = True,
                        log: Callable[[str], None] = print) -> Bundle:
    """A classifier telling real headlines (`real_texts`, training data only) from as many written by the LM (at
    `temperature`, `top_p`, `eta` and `repeat_floor`, with `rare_words`, unfiltered), on the LM's encoder: the realism filter's
    bundle (classes `generated`, `real`). The filter is meant for requests with the same sampling settings."""
    lm = resolve_bundle(lm, "lm")
    real_texts = list(real_texts)
    sampling = dict(temperature=temperature, top_p=top_p, eta=eta, repeat_floor=repeat_floor, rare_words=rare_words)
    # The LM's own draws, never those an earlier discriminator let through.
    fake = generate_from(GenerationRequest(n=len(real_texts), seed=seed, model=lm, realism=False, **sampling))
    df = pd.DataFrame({"text": real_texts + fake, "label": ["real"] * len(real_texts) + ["generated"] * len(fake)})
    log(f"discriminator: {len(real_texts):,} real and {len(fake):,} generated headlines")
    cfg = cfg or ClassifierConfig(phases=[Phase(1, 2e-2, freeze_to=-1), Phase(1, 1e-2, freeze_to=-2), Phase(2, 3e-3)])
    bundle = train_classifier(df, lm=lm, cfg=cfg, work=work, log=log)
    # Rejection sampling keeps a candidate with probability min(1, w / scale), w = D / (1 - D) its odds of being
    # real; the scale is set on fresh generated headlines so that about ACCEPTANCE of them pass.
    probe = generate_from(GenerationRequest(n=2000, seed=seed + 1, model=lm, realism=False, **sampling))
    odds = realness_odds(probe, bundle)
    bundle.config.update(odds_scale=float(np.quantile(odds, 1 - DISCRIMINATOR_ACCEPTANCE)), sampling=sampling)
    if out is not None:
        on_rank0(lambda: save_bundle(out, bundle.model, bundle.tokenizer, bundle.config, overwrite=overwrite,
                                     dtype=cfg.weights_dtype))
        bundle.path = Path(out)
    return bundle
