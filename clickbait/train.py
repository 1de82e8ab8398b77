"""ULMFiT recipe for headline LMs: a general headline LM, then a target-style fine-tune, resumable after a kill.

Each step is a function a notebook can call on its own; `run_recipe` runs them all and writes a bundle.
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import torch
from fastai.callback.core import Callback
from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner.fit_one_cycle)
from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
from fastai.data.core import DataLoaders
from fastai.distributed import DistributedDL, DistributedTrainer
from fastai.learner import Learner, save_model
from fastai.metrics import Perplexity, accuracy
from fastai.text.data import LMDataLoader
from fastai.text.learner import LMLearner, language_model_learner
from fastai.torch_core import distrib_barrier, num_distrib, rank_distrib, set_seed
from fastai.text.models.awdlstm import AWD_LSTM
from safetensors.torch import save_file

from .bundle import save_bundle
from .data import load_corpus, split_holdout
from .datablocks import lm_dataloaders
from .models import LMPreset, get_preset
from .tokenizer import HeadlineTokenizer

__all__ = ["Phase", "RecipeConfig", "lm_learner", "distributed", "fit_phases", "train_general_lm",
           "finetune_target_lm", "save_encoder", "run_recipe"]


@dataclass(frozen=True)
class Phase:
    """One one-cycle fit: which layer groups train (`freeze_to`, None = all), for how long, at what top lr."""
    epochs: int
    lr: float
    freeze_to: int | None = None


@dataclass
class RecipeConfig:
    """Everything the recipe needs beyond the data; stored in the bundle config."""
    preset: str = "small"
    max_vocab: int = 6_000
    min_freq: int = 2
    general: list[Phase] = field(default_factory=lambda: [Phase(epochs=4, lr=1e-2)])
    # Gradual unfreezing: top groups first, then everything with discriminative learning rates.
    target: list[Phase] = field(default_factory=lambda: [Phase(1, 1e-2, freeze_to=-1), Phase(1, 5e-3, freeze_to=-2),
                                                         Phase(4, 3e-3)])
    valid_pct: float = 0.1
    seed: int = 42
    patience: int = 2
    target_label: str = "clickbait"

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def lm_learner(dls: DataLoaders, preset: LMPreset | str, path: str | os.PathLike = ".") -> LMLearner:
    """fastai `language_model_learner` for `preset`, with no hub weights (pretraining is our general stage)."""
    preset = get_preset(preset)
    return language_model_learner(dls, AWD_LSTM, config=preset.awd_config(), pretrained=False,
                                  drop_mult=preset.drop_mult, metrics=[accuracy, Perplexity()], path=path,
                                  model_dir=".")


class _DistributedDL(DistributedDL):
    """fastai's DistributedDL, whose index broadcast also works on CPU (gloo); fastai's assumes CUDA (nccl)."""

    def _broadcast(self, t, rank):
        t = torch.tensor(t, dtype=torch.long)
        t = t.cuda() if torch.distributed.get_backend() == "nccl" else t
        torch.distributed.broadcast(t, rank)
        return t.cpu().tolist()


class _LMDistributedDL(_DistributedDL):
    """Each rank gets a contiguous run of whole LM batches: LMDataLoader's batches continue each other's rows
    (the hidden state carries over) and its last batch is shorter, so a batch must never be split across ranks."""

    def get_idxs(self):
        idxs = self._broadcast(list(self.dl.get_idxs()), 0)
        per_rank = len(idxs) // (self.dl.bs * self.world_size) * self.dl.bs
        if per_rank == 0:
            raise ValueError(f"{len(idxs)} LM sequences cannot fill one batch of {self.dl.bs} on each of "
                             f"{self.world_size} ranks; use more data or a smaller batch size")
        self.n = self.n_padded = per_rank * self.world_size  # nothing padded, so nothing to trim when gathering
        return idxs[self.rank * per_rank:(self.rank + 1) * per_rank]


class _DistributedTrainer(DistributedTrainer):
    def _wrap_dl(self, dl):
        if isinstance(dl, DistributedDL):
            return dl
        wrapper = _LMDistributedDL if isinstance(dl, LMDataLoader) else _DistributedDL
        return wrapper(dl, device=self.learn.model.device)


@contextmanager
def distributed(learn: Learner) -> Iterator[Learner]:
    """fastai's `distrib_ctx` for CPU or GPU ranks started by torchrun/accelerate; a no-op in a single process.

    Gradients are averaged by torch DDP (through accelerate), validation metrics are gathered over all ranks.
    """
    if num_distrib() <= 1:
        yield learn
        return
    learn.add_cb(_DistributedTrainer(sync_bn=False, cpu=not torch.cuda.is_available()))
    try:
        yield learn
    finally:
        learn.detach_distributed()


class _Progress:
    """`progress.json` in the work dir: epochs finished and best validation loss per stage phase. Atomic writes."""

    def __init__(self, work: Path):
        self.file = work / "progress.json"
        self.state = json.loads(self.file.read_text()) if self.file.exists() else {}

    def epochs_done(self, key: str) -> int:
        return self.state.get(key, {}).get("epochs", 0)

    def best(self, key: str) -> float | None:
        return self.state.get(key, {}).get("best")

    def mark(self, key: str, epochs: int, best: float | None) -> None:
        self.state[key] = {"epochs": epochs, "best": best}
        if rank_distrib():  # rank 0 keeps the files; every rank keeps the same state in memory
            return
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.file)


class _SkipAware:
    """Ignore the epochs that fastai's `SkipToEpoch` cancels when a fit resumes at `start_epoch`."""

    def before_epoch(self):
        self.skipped = False

    def after_cancel_epoch(self):
        self.skipped = True

    def after_epoch(self):
        if not self.skipped:
            super().after_epoch()


class BestModel(_SkipAware, SaveModelCallback):
    """fastai's SaveModelCallback (keeps the best epoch), resumable."""


class EarlyStop(_SkipAware, EarlyStoppingCallback):
    """fastai's EarlyStoppingCallback, resumable."""


class ResumeCheckpoint(_SkipAware, Callback):
    """After every epoch: save model + optimizer atomically, append the epoch to the history CSV, record progress."""
    order = SaveModelCallback.order + 1

    def __init__(self, progress: _Progress, key: str, fname: str, history: Path, best: BestModel):
        self.progress, self.key, self.fname, self.history, self.tracker = progress, key, fname, history, best

    def after_epoch(self):
        if self.skipped or rank_distrib():
            return
        final = self.learn.path / self.learn.model_dir / f"{self.fname}.pth"
        tmp = final.with_suffix(".tmp")
        save_model(tmp, self.learn.model, self.learn.opt, with_opt=True)
        os.replace(tmp, final)  # a kill mid-save leaves the previous checkpoint intact
        names, values = self.recorder.metric_names[1:-1], self.recorder.values[-1]
        new_file = not self.history.exists()
        with open(self.history, "a", encoding="utf-8") as f:
            if new_file:
                f.write(",".join(["phase", "epoch", *names]) + "\n")
            f.write(",".join([self.key, str(self.epoch), *(f"{v:.5f}" for v in values)]) + "\n")
        self.progress.mark(self.key, self.epoch + 1, float(self.tracker.best))


def fit_phases(learn: LMLearner, phases: list[Phase], stage: str, work: str | os.PathLike,
               patience: int = 2, log: Callable[[str], None] = print) -> LMLearner:
    """Fit `phases` in order with one-cycle schedules; the result is the best-validated phase's best epoch.

    Each phase starts from the previous phase's best epoch; finished phases are skipped when a fit resumes."""
    work = Path(work)
    progress = _Progress(work)
    for i, phase in enumerate(phases):
        key = f"{stage}/{i}"
        done = progress.epochs_done(key)
        if done >= phase.epochs:
            continue
        if phase.freeze_to is None:
            learn.unfreeze()
        else:
            learn.freeze_to(phase.freeze_to)
        if done:
            learn.load(f"{stage}_p{i}_last", with_opt=True)
            log(f"resuming {stage} phase {i} at epoch {done}/{phase.epochs}")
        elif i > 0:
            learn.load(f"{stage}_p{i - 1}_final", with_opt=False)
        # Discriminative rates: each lower layer group learns 2.6x slower (ULMFiT).
        lr = slice(phase.lr / 2.6 ** 4, phase.lr) if phase.freeze_to != -1 else phase.lr
        best = BestModel(monitor="valid_loss", fname=f"{stage}_p{i}_best", reset_on_fit=False)
        best.best = progress.best(key) if done else None
        cbs = [best, EarlyStop(monitor="valid_loss", patience=patience),
               ResumeCheckpoint(progress, key, f"{stage}_p{i}_last", work / f"{stage}_history.csv", best)]
        with distributed(learn):
            learn.fit_one_cycle(phase.epochs, lr, start_epoch=done, cbs=cbs)
        learn.save(f"{stage}_p{i}_final", with_opt=False)
        progress.mark(key, phase.epochs, best.best)
    # A later phase can validate worse than an earlier one (an overfitting last phase): keep the best of all.
    losses = [progress.best(f"{stage}/{i}") for i in range(len(phases))]
    best_phase = min(range(len(phases)), key=lambda i: (math.inf if losses[i] is None else losses[i], -i))
    if best_phase != len(phases) - 1:
        log(f"{stage}: keeping phase {best_phase}; best valid loss per phase "
            f"{[None if loss is None else round(loss, 4) for loss in losses]}")
    learn.load(f"{stage}_p{best_phase}_final", with_opt=False)
    return learn


def train_general_lm(df: pd.DataFrame, tokenizer: HeadlineTokenizer, cfg: RecipeConfig,
                     work: str | os.PathLike, log: Callable[[str], None] = print) -> LMLearner:
    """Step 1: a headline LM from scratch on every training headline (our stand-in for WT103 pretraining)."""
    preset = get_preset(cfg.preset)
    dls = lm_dataloaders(df, tokenizer, bs=preset.bs, seq_len=preset.seq_len, valid_pct=cfg.valid_pct, seed=cfg.seed)
    learn = lm_learner(dls, preset, path=work)
    log(f"general LM: {len(df):,} headlines, {len(tokenizer):,} tokens in vocab, preset {preset.name}")
    return fit_phases(learn, cfg.general, "general", work, cfg.patience, log)


def finetune_target_lm(df: pd.DataFrame, tokenizer: HeadlineTokenizer, general: LMLearner, cfg: RecipeConfig,
                       work: str | os.PathLike, log: Callable[[str], None] = print) -> LMLearner:
    """Step 2: fine-tune the general LM on the target style with gradual unfreezing and discriminative rates."""
    preset = get_preset(cfg.preset)
    dls = lm_dataloaders(df, tokenizer, bs=preset.bs, seq_len=preset.seq_len, valid_pct=cfg.valid_pct, seed=cfg.seed)
    learn = lm_learner(dls, preset, path=work)
    learn.model.load_state_dict(general.model.state_dict())
    log(f"target LM: {len(df):,} headlines")
    return fit_phases(learn, cfg.target, "target", work, cfg.patience, log)


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
    if not rank_distrib() and not tok_file.exists():
        HeadlineTokenizer.train(train_df["text"], max_vocab=cfg.max_vocab, min_freq=cfg.min_freq).save(tok_file)
    distrib_barrier()
    return HeadlineTokenizer.load(tok_file)


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
    tokenizer = _recipe_tokenizer(train_df, cfg, work / "tokenizer.json")
    learn = train_general_lm(train_df, tokenizer, cfg, work, log)
    metrics = {"general": _validation_metrics(learn)}
    target_df = train_df[train_df["label"] == cfg.target_label] if "label" in train_df else train_df.iloc[:0]
    if len(target_df) >= 2:
        learn = finetune_target_lm(target_df, tokenizer, learn, cfg, work, log)
        metrics["target"] = _validation_metrics(learn)
    else:
        log(f"no headlines labelled {cfg.target_label!r}: the general LM is the result")
    config = {"kind": "lm", "preset": cfg.preset, "recipe": cfg.to_dict(),
              "target_label": cfg.target_label if "target" in metrics else None, "metrics": metrics,
              "train_minutes": round((time.time() - start) / 60, 1)}
    path = Path(out)
    if not rank_distrib():
        save_encoder(learn, work / "encoder.safetensors")
        path = save_bundle(out, learn.model, tokenizer, config, train_texts=train_df["text"], overwrite=overwrite)
        log(f"bundle written to {path} in {config['train_minutes']} min: {json.dumps(config['metrics'])}")
    distrib_barrier()
    return path
