"""The fitting engine under every recipe: one-cycle phases with gradual unfreezing, resumable after a kill,
on one process or many (torchrun).

`fit_phases` runs a list of `Phase`s on any fastai `Learner`; checkpoints (model + optimizer) are written after
every epoch and a rerun with the same work folder continues where the last one stopped.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import pickle
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch
from fastai.callback.core import Callback
from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner.fit_one_cycle)
from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback
from fastai.distributed import DistributedDL, DistributedTrainer
from fastai.learner import Learner, load_model, save_model
from fastai.text.data import LMDataLoader
from fastai.torch_core import distrib_barrier, num_distrib, rank_distrib

from .errors import CheckpointError, HeadlineDataError
from .files import atomic_path, write_atomic

__all__ = ["Phase", "distributed", "fit_phases", "on_rank0", "load_checkpoint", "BestModel", "EarlyStop",
           "ResumeCheckpoint", "TrimHeap"]

T = TypeVar("T")


@dataclass(frozen=True)
class Phase:
    """One one-cycle fit: which layer groups train (`freeze_to`, None = all), for how long, at what top lr."""
    epochs: int
    lr: float
    freeze_to: int | None = None


# Training batches between two heap trims.
TRIM_EVERY = 100


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no libc, or one without malloc_trim (musl)
        return None


class TrimHeap(Callback):
    """Hand freed heap memory back to the OS every `every` training batches (glibc's `malloc_trim`; a no-op
    elsewhere), so a long CPU fit's memory stays flat.

    glibc keeps what an LM step frees in its heap, fragmented, and never returns it: the recipe's LM grew by about
    2 GB per epoch and was killed for memory in its 12th epoch on a 24 GiB machine. Trimming every 100 batches
    holds it flat (`bench/train_memory.py`: 1.05x and 1.19x the time per batch in two runs); pinning glibc's mmap
    threshold instead also held it flat but made each batch 1.3-1.5x slower.
    """
    order = 99

    def __init__(self, every: int | None = None):
        self.every, self.trim = every or TRIM_EVERY, _glibc_malloc_trim()

    def after_batch(self):
        if self.trim is not None and self.training and (self.iter + 1) % self.every == 0:
            self.trim(0)

    def after_epoch(self):
        if self.trim is not None:
            self.trim(0)


def on_rank0(write: Callable[[], T]) -> T | None:
    """Run `write` on rank 0 only (the rank that owns files), then wait for every rank; its result on rank 0."""
    result = None if rank_distrib() else write()
    distrib_barrier()
    return result


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
            raise HeadlineDataError(f"{len(idxs)} LM sequences cannot fill one batch of {self.dl.bs} on each of "
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

    def start(self, key: str, plan: dict) -> None:
        """Record what phase `key` trains; a rerun that asks for something else is refused, nothing changed."""
        recorded = self.state.get(key, {}).get("plan")
        if recorded is not None and recorded != plan:
            changed = ", ".join(f"{k}: {recorded.get(k)!r} then, {plan.get(k)!r} now"
                                for k in sorted(set(recorded) | set(plan)) if recorded.get(k) != plan.get(k))
            raise CheckpointError(f"{self.file}: {key} was started with other settings ({changed}); resuming would "
                                  f"mix the two. Rerun with the same settings, or train in a new work folder")
        self.state.setdefault(key, {"epochs": 0, "best": None})["plan"] = plan
        self._write()

    def mark(self, key: str, epochs: int, best: float | None) -> None:
        self.state[key] = {**self.state.get(key, {}), "epochs": epochs, "best": best}
        self._write()

    def _write(self) -> None:
        if rank_distrib():  # rank 0 keeps the files; every rank keeps the same state in memory
            return
        write_atomic(self.file, json.dumps(self.state, indent=1))


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
    """fastai's SaveModelCallback (keeps the best epoch), resumable; it loads the best epoch weights-only (fastai's
    own `after_fit` unpickles it in full, and after a resume that file comes from an earlier run)."""

    def after_fit(self, **kwargs):
        load_checkpoint(self.learn, self.fname, with_opt=self.with_opt)


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
        with atomic_path(final) as tmp:  # a kill mid-save leaves the previous checkpoint intact
            save_model(tmp, self.learn.model, self.learn.opt, with_opt=True)
        names, values = self.recorder.metric_names[1:-1], self.recorder.values[-1]
        new_file = not self.history.exists()
        with open(self.history, "a", encoding="utf-8") as f:
            if new_file:
                f.write(",".join(["phase", "epoch", *names]) + "\n")
            f.write(",".join([self.key, str(self.epoch), *(f"{v:.5f}" for v in values)]) + "\n")
        self.progress.mark(self.key, self.epoch + 1, float(self.tracker.best))


def load_checkpoint(learn: Learner, name: str, with_opt: bool = False) -> Learner:
    """Load `<work>/<name>.pth` into `learn` with `torch.load(weights_only=True)`: tensors and plain containers
    only, so a checkpoint someone replaced with a pickle payload runs no code; it is refused with our error."""
    file = Path(learn.path) / learn.model_dir / f"{name}.pth"
    distrib_barrier()  # under torchrun rank 0 writes the file: every rank waits for it, as fastai's Learner.load does
    if with_opt and learn.opt is None:
        learn.create_opt()
    try:
        load_model(file, learn.model, learn.opt, with_opt=with_opt, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError, TypeError,
            AttributeError) as e:
        raise CheckpointError(f"{file}: not a weights-only checkpoint or unreadable ({type(e).__name__}); nothing was "
                              f"loaded. Delete it (or the work folder) to train that phase again") from None
    return learn


def fit_phases(learn: LMLearner, phases: list[Phase], stage: str, work: str | os.PathLike,
               patience: int = 2, log: Callable[[str], None] = print, settings: dict | None = None) -> LMLearner:
    """Fit `phases` in order with one-cycle schedules; the result is the best-validated phase's best epoch.

    Each phase starts from the previous phase's best epoch; finished phases are skipped when a fit resumes, and a
    rerun whose phase or `settings` (JSON-ready: the model preset, batch shape) differ from the recorded ones is
    refused with `CheckpointError`."""
    work = Path(work)
    progress = _Progress(work)
    for i, phase in enumerate(phases):
        key = f"{stage}/{i}"
        progress.start(key, {**asdict(phase), **(settings or {})})
        done = progress.epochs_done(key)
        if done >= phase.epochs:
            continue
        if phase.freeze_to is None:
            learn.unfreeze()
        else:
            learn.freeze_to(phase.freeze_to)
        if done:
            load_checkpoint(learn, f"{stage}_p{i}_last", with_opt=True)
            log(f"resuming {stage} phase {i} at epoch {done}/{phase.epochs}")
        elif i > 0:
            load_checkpoint(learn, f"{stage}_p{i - 1}_final")
        # Discriminative rates: each lower layer group learns 2.6x slower (ULMFiT).
        lr = slice(phase.lr / 2.6 ** 4, phase.lr) if phase.freeze_to != -1 else phase.lr
        best = BestModel(monitor="valid_loss", fname=f"{stage}_p{i}_best", reset_on_fit=False)
        best.best = progress.best(key) if done else None
        cbs = [best, EarlyStop(monitor="valid_loss", patience=patience),
               ResumeCheckpoint(progress, key, f"{stage}_p{i}_last", work / f"{stage}_history.csv", best), TrimHeap()]
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
    load_checkpoint(learn, f"{stage}_p{best_phase}_final")
    return learn


