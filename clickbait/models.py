"""AWD-LSTM size presets, fastai learners built from them, and headline scoring under a language model."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config
from fastai.text.models.core import get_language_model, get_text_classifier
from torch import nn

from .errors import ClickbaitError

__all__ = ["LMPreset", "PRESETS", "get_preset", "build_lm", "build_classifier", "score_ids", "count_params",
           "length_sorted_batches", "lm_encode", "lm_forward", "lm_contexts", "native_kernels"]


@dataclass(frozen=True)
class LMPreset:
    """AWD-LSTM sizes and the batch shape they train with."""
    name: str
    emb_sz: int
    n_hid: int
    n_layers: int
    drop_mult: float
    bs: int
    seq_len: int

    def awd_config(self, classifier: bool = False) -> dict:
        """fastai's AWD-LSTM config dict with this preset's sizes."""
        base = awd_lstm_clas_config if classifier else awd_lstm_lm_config
        return {**base, "emb_sz": self.emb_sz, "n_hid": self.n_hid, "n_layers": self.n_layers}

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


PRESETS = {
    "tiny": LMPreset("tiny", emb_sz=32, n_hid=64, n_layers=2, drop_mult=0.1, bs=64, seq_len=32),
    # Small batches on purpose: on ~300k tokens, updates (not tokens per update) limit what a CPU run learns. Dropout
    # at fastai's AWD-LSTM defaults: at 0.3x the general LM overfit by its 4th epoch; 0.5x over 8 epochs took its
    # validation perplexity from 77.6 to 67.7 (2026-11-25), 1.0x over 15 epochs to 65.1 (2026-12-02).
    "small": LMPreset("small", emb_sz=200, n_hid=448, n_layers=3, drop_mult=1.0, bs=8, seq_len=32),
    "base": LMPreset("base", emb_sz=400, n_hid=1152, n_layers=3, drop_mult=0.5, bs=64, seq_len=72),
}


def get_preset(preset: str | LMPreset | dict) -> LMPreset:
    """A preset by name, a preset itself, or one rebuilt from its dict (as stored in a bundle config)."""
    if isinstance(preset, LMPreset):
        return preset
    if isinstance(preset, dict):
        return LMPreset(**preset)
    if preset not in PRESETS:
        raise ClickbaitError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    return PRESETS[preset]


def build_lm(vocab_sz: int, preset: LMPreset) -> nn.Module:
    """An untrained AWD-LSTM language model (fastai `SequentialRNN`: encoder, tied decoder)."""
    return get_language_model(AWD_LSTM, vocab_sz, config=preset.awd_config(), drop_mult=preset.drop_mult)


def build_classifier(vocab_sz: int, n_class: int, preset: LMPreset, seq_len: int = 72) -> nn.Module:
    """An untrained AWD-LSTM classifier with fastai's pooling head."""
    return get_text_classifier(AWD_LSTM, vocab_sz, n_class, seq_len=seq_len, config=preset.awd_config(True),
                               drop_mult=preset.drop_mult)


def count_params(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


Hidden = list[tuple[torch.Tensor, torch.Tensor]]


def _eval_lstm(rnn: nn.Module) -> nn.Module:
    # fastai's WeightDropout clones its raw recurrent weights on every call, even in eval mode (a sixth of a small
    # decoding call): in eval mode the wrapped LSTM can read the raw weights themselves. A training forward leaves a
    # dropped-out copy in their place, so the storage is checked on every call.
    if rnn.training:
        return rnn
    for name in rnn.layer_names:
        raw = getattr(rnn, f"{name}_raw")
        if getattr(rnn.module, name).data_ptr() != raw.data_ptr():
            setattr(rnn.module, name, raw.detach())
    return rnn.module


def lm_encode(model: nn.Module, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
    """Last-layer outputs (batch, seq, emb) of a fastai AWD-LSTM language model (eval mode) for `tokens`
    (batch, seq) from recurrent state `hidden` (None: zeros), and the state after them. fastai's module keeps the
    state on itself; here each call owns it, so threads can share one model and get exactly what they would alone.
    """
    encoder = model[0]
    if hidden is None:
        hidden = [(tokens.new_zeros((1, tokens.size(0), rnn.module.hidden_size), dtype=torch.float),) * 2
                  for rnn in encoder.rnns]
    output = encoder.input_dp(encoder.encoder_dp(tokens))
    new_hidden = []
    for layer, (rnn, hidden_dp) in enumerate(zip(encoder.rnns, encoder.hidden_dps)):
        output, state = _eval_lstm(rnn)(output, hidden[layer])
        new_hidden.append(state)
        if layer != encoder.n_layers - 1:
            output = hidden_dp(output)
    return output, new_hidden


def lm_forward(model: nn.Module, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
    """Logits of a language model for `tokens` from state `hidden`, and the state after them (see `lm_encode`)."""
    output, new_hidden = lm_encode(model, tokens, hidden)
    return model[1](output)[0], new_hidden


@torch.inference_mode()
def lm_contexts(model: nn.Module, ids: Sequence[Sequence[int]], positions: Sequence[Sequence[int]],
                prime: Sequence[int] = (), pad_id: int = 1, batch_size: int = 256) -> list[torch.Tensor]:
    """For each id sequence, the last-layer outputs that predict its tokens at `positions` (what the LM knew of
    the words before each): one (len(positions), emb) tensor per sequence, batched and right-padded."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    skip = len(prime)
    with native_kernels():
        for chunk in length_sorted_batches([len(i) for i in ids], batch_size):
            batch = torch.full((len(chunk), skip + max(len(ids[i]) for i in chunk)), pad_id, dtype=torch.long)
            for row, i in enumerate(chunk):
                batch[row, :skip + len(ids[i])] = torch.as_tensor([*prime, *ids[i]])
            states = lm_encode(model, batch)[0]
            for row, i in enumerate(chunk):
                out[i] = states[row, [skip + p - 1 for p in positions[i]]].float()
    return out


_native_lock, _native_users, _native_saved = threading.Lock(), [0], [True]


@contextmanager
def native_kernels() -> Iterator[None]:
    """PyTorch's own CPU kernels instead of oneDNN while any thread runs inside, restored when the last leaves.

    oneDNN caches a primitive per batch shape, and shrinking batches grew a batch job's memory without bound
    (+15 MB per 1,000 headlines). The switch is process-wide, so it is counted: a thread leaving must not switch
    kernels (and so numbers) under another that is still generating or scoring."""
    with _native_lock:
        if _native_users[0] == 0:
            _native_saved[0] = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _native_users[0] += 1
    try:
        yield
    finally:
        with _native_lock:
            _native_users[0] -= 1
            if _native_users[0] == 0:
                torch.backends.mkldnn.enabled = _native_saved[0]


@torch.inference_mode()
@native_kernels()
def score_ids(model: nn.Module, ids: Sequence[Sequence[int]], prime: Sequence[int] = (), pad_id: int = 1,
              batch_size: int = 256) -> list[float]:
    """Total log-probability (nats) of each id sequence after its first token, batched and right-padded.

    `prime` tokens are fed first and not scored: an LM trained on a stream of headlines has always seen
    `xxeos` before `xxbos`, so priming with it matches the state it learned to start a headline from.
    """
    model.eval()
    scores = [0.0] * len(ids)
    skip = len(prime)
    for chunk in length_sorted_batches([len(i) for i in ids], batch_size):
        width = skip + max(len(ids[i]) for i in chunk)
        batch = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        for row, i in enumerate(chunk):
            batch[row, :skip + len(ids[i])] = torch.as_tensor([*prime, *ids[i]])
        logits = lm_forward(model, batch[:, :-1])[0][:, skip:]
        targets = batch[:, skip + 1:]
        logp = F.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None]).squeeze(-1)
        # Right padding only follows a sequence's end, so it never changes the scores of real tokens.
        logp = logp.masked_fill(targets == pad_id, 0.0).sum(1)
        for row, i in enumerate(chunk):
            scores[i] = float(logp[row])
    return scores


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar lengths, shortest first: less padding; callers put results back by index."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]
