"""Model bundles: a directory of config.json, vocab.json, safetensors weights and novelty hashes. Never pickles."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import BundleError, ClickbaitError, TokenizerFileError
from .files import read_json
from .models import LMPreset, build_classifier, build_lm, get_preset
from .rare import RareContexts, RareWords
from .text import headline_hash
from .tokenizer import HeadlineTokenizer

__all__ = ["Bundle", "ModelRef", "save_bundle", "load_bundle", "default_bundle_path",
           "resolve_bundle", "data_fingerprint", "quantize_state", "dequantize_state", "round_weights",
           "WEIGHT_DTYPES"]

FORMAT = "clickbait-bundle"
FORMAT_VERSION = 1
CONFIG, VOCAB, WEIGHTS, NOVELTY = "config.json", "vocab.json", "model.safetensors", "novelty.safetensors"
RARE = "rare_words.json"  # LM bundles: the training words outside the vocabulary, to fill the slots the LM marks
RARE_CONTEXTS = "rare_contexts.safetensors"  # and the LM's state before each of their occurrences
BUNDLED = Path(__file__).resolve().parent / "bundled"
# How weights are stored: int8 keeps each matrix row as int8 times a float32 scale (absmax / 127 of the row).
WEIGHT_DTYPES = ("float32", "float16", "int8")
SCALE_SUFFIX = ":int8_scale"


@dataclass
class Bundle:
    """A loaded model: the torch module (eval mode), its tokenizer, config and training-headline hashes."""
    model: nn.Module
    tokenizer: HeadlineTokenizer
    config: dict
    novelty: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    path: Path | None = None
    rare_words: RareWords | None = None
    # fastai's classifier keeps recurrent state on its module: one thread at a time runs it.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """"lm" or "classifier"."""
        return self.config["kind"]

    @property
    def classes(self) -> list[str]:
        """Class names of a classifier bundle, in output order."""
        return list(self.config.get("classes", []))

    def is_novel(self, texts: Iterable[str]) -> np.ndarray:
        """True where a headline is not among the bundle's training headlines (after normalisation)."""
        if getattr(self, "_novelty_set", (None,))[0] is not self.novelty:  # rebuilt if `novelty` is replaced
            self._novelty_set = (self.novelty, set(self.novelty.tolist()))
        known = self._novelty_set[1]
        return np.array([headline_hash(t) not in known for t in texts], dtype=bool)


# What every `model=` argument accepts: a loaded bundle, a bundle folder, or None for the bundled default.
ModelRef = Bundle | str | os.PathLike | None


DEFAULTS = ("lm", "lm-news", "classifier", "discriminator")


def default_bundle_path(name: str = "lm") -> Path:
    """Where the package's bundled default model `name` ("lm", "lm-news", "classifier" or "discriminator") lives."""
    if name not in DEFAULTS:
        raise BundleError(f"no bundled model named {name!r}; the package ships {list(DEFAULTS)}")
    return BUNDLED / name


def data_fingerprint(texts: Iterable[str]) -> str:
    """sha256 over the sorted hashes of the normalised training headlines: same data, same fingerprint."""
    hashes = np.sort(np.array([headline_hash(t) for t in texts], dtype=np.int64))
    return hashlib.sha256(hashes.tobytes()).hexdigest()


def _versions() -> dict:
    out = {}
    for pkg in ("clickbait", "fastai", "torch", "spacy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    # Tied weights (encoder/decoder, embedding dropout) are one tensor under several names: keep the first.
    # WeightDropout's `module.weight_hh_l0` is recomputed from `weight_hh_l0_raw` on every forward.
    seen, out = set(), {}
    for name, tensor in model.state_dict().items():
        if name.endswith(".module.weight_hh_l0") or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        out[name] = tensor
    return out


def quantize_state(state: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """`state` as stored in `dtype` (one of `WEIGHT_DTYPES`): int8 rounds each row of a float matrix to int8
    with its own scale (a `name:int8_scale` tensor beside it), and keeps vectors in float16."""
    if dtype not in WEIGHT_DTYPES:
        raise BundleError(f"weights dtype must be one of {list(WEIGHT_DTYPES)}, got {dtype!r}")
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if not tensor.is_floating_point() or dtype == "float32":
            out[name] = tensor.contiguous()
        elif dtype == "float16" or tensor.dim() < 2:
            out[name] = tensor.half().contiguous()
        else:
            rows = tensor.float().reshape(tensor.shape[0], -1)
            scale = rows.abs().amax(1) / 127
            out[name] = (rows / scale.clamp_min(1e-12)[:, None]).round().to(torch.int8).reshape(tensor.shape)
            out[name + SCALE_SUFFIX] = scale.contiguous()
    return out


def dequantize_state(tensors: dict[str, torch.Tensor], file: Path) -> dict[str, torch.Tensor]:
    """Float weights from what `quantize_state` stored; a scale without its int8 matrix, or of the wrong shape,
    raises `BundleError`."""
    out = {k: v for k, v in tensors.items() if not k.endswith(SCALE_SUFFIX)}
    for key in set(tensors) - set(out):
        name, scale = key[:-len(SCALE_SUFFIX)], tensors[key]
        matrix = out.get(name)
        if matrix is None or matrix.dtype != torch.int8 or matrix.dim() < 2:
            raise BundleError(f"{file}: {key} scales {name}, which is not an int8 matrix in the file")
        if scale.dtype != torch.float32 or tuple(scale.shape) != (matrix.shape[0],):
            raise BundleError(f"{file}: {key} must be float32 of shape ({matrix.shape[0]},), one scale per row of "
                              f"{name}; got {scale.dtype} {tuple(scale.shape)}")
        out[name] = (matrix.float().reshape(matrix.shape[0], -1) * scale[:, None]).reshape(matrix.shape)
    return out


def round_weights(model: nn.Module, dtype: str) -> nn.Module:
    """`model` with its weights rounded in place to what a bundle stores in `dtype`: it then scores as the saved
    bundle will once loaded."""
    stored = dequantize_state(quantize_state(_unique_state(model), dtype), Path("<in memory>"))
    with torch.no_grad():
        for name, tensor in _unique_state(model).items():
            if tensor.is_floating_point():
                tensor.copy_(stored[name].float())
    return model


def save_bundle(path: str | os.PathLike, model: nn.Module, tokenizer: HeadlineTokenizer, config: dict,
                train_texts: Iterable[str] | None = None, overwrite: bool = False, dtype: str = "float16",
                rare_word_texts: Iterable[str] | None = None) -> Path:
    """Write a bundle directory atomically; an existing bundle is replaced only with `overwrite=True`.

    `config` needs `kind` ("lm" or "classifier") and `preset`; classifiers also `classes`.
    `dtype` is how the weights are stored (`WEIGHT_DTYPES`; they load as float32 whatever it is).
    `train_texts` are hashed for novelty checks and fingerprinted. A forward LM bundle also keeps the rare words
    (outside the vocabulary) of `rare_word_texts` (default `train_texts`: give the target style's headlines) and
    its states before them, to fill its `xxunk` slots; a backward one (`config["backwards"]`) only checks drafts.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise BundleError(f"{path}: already exists; pass overwrite=True to replace it")
    if config.get("kind") not in ("lm", "classifier"):
        raise BundleError(f"config 'kind' must be 'lm' or 'classifier', got {config.get('kind')!r}")
    unique = _unique_state(model)
    state = quantize_state(unique, dtype)
    texts = [] if train_texts is None else list(train_texts)
    hashes = np.unique(np.array([headline_hash(t) for t in texts], dtype=np.int64))
    full = {"format": FORMAT, "version": FORMAT_VERSION, **config,
            "preset": get_preset(config["preset"]).to_dict(), "vocab_size": len(tokenizer),
            "tokenizer": {"max_vocab": tokenizer.max_vocab, "min_freq": tokenizer.min_freq,
                          "rules": tokenizer.rules_name, "case_marks": tokenizer.case_marks,
                          "unknown_classes": tokenizer.unknown_classes,
                          "spacy": "blank en"},
            "n_params": int(sum(v.numel() for v in unique.values())), "dtype": dtype,
            "versions": _versions(), "train_headlines": len(texts),
            "data_fingerprint": data_fingerprint(texts) if texts else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        (tmp / CONFIG).write_text(json.dumps(full, indent=2, sort_keys=True), encoding="utf-8")
        tokenizer.save(tmp / VOCAB)
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        save_file({"hashes": torch.from_numpy(hashes)}, str(tmp / NOVELTY), metadata={"format": FORMAT})
        rare_texts = texts if rare_word_texts is None else list(rare_word_texts)
        if config["kind"] == "lm" and rare_texts and not config.get("backwards"):  # the forward LM fills slots
            token_lists = tokenizer.tokenize(rare_texts)
            table = RareWords.learn(token_lists, rare_texts, set(tokenizer.vocab))
            table.save(tmp / RARE)
            contexts = RareContexts.from_lm(model, token_lists, tokenizer, table)
            if contexts is not None:
                contexts.save(tmp / RARE_CONTEXTS)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


MAX_JSON_BYTES = 50 * 1024 * 1024
# Sizes past these would allocate more memory than any bundle file can fill: refused before building the model.
MAX_PRESET = {"emb_sz": 4096, "n_hid": 8192, "n_layers": 8}


def _encoder_params(preset: LMPreset, vocab_size: int) -> int:
    """Weights of the AWD-LSTM encoder a preset builds: the embedding and each LSTM layer (checked before the model
    is built, so a config cannot make us allocate far more memory than its weights file holds)."""
    total = vocab_size * preset.emb_sz
    for layer in range(preset.n_layers):
        inputs = preset.emb_sz if layer == 0 else preset.n_hid
        hidden = preset.emb_sz if layer == preset.n_layers - 1 else preset.n_hid
        total += 4 * hidden * (inputs + hidden + 2)
    return total


def _regular_file(file: Path) -> Path:
    # A FIFO or device would block or never end, a huge file would fill memory: refused before reading.
    if file.exists() and not file.is_file():
        raise BundleError(f"{file}: not a regular file")
    if file.exists() and file.stat().st_size > MAX_JSON_BYTES:
        raise BundleError(f"{file}: {file.stat().st_size:,} bytes, more than a bundle file may hold "
                          f"({MAX_JSON_BYTES:,})")
    return file


def _read_config(path: Path) -> dict:
    file = _regular_file(path / CONFIG)
    config = read_json(file, BundleError, f"bundle config (a bundle needs {CONFIG}, {VOCAB}, {WEIGHTS}, {NOVELTY})")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise BundleError(f"{file}: not a clickbait bundle config")
    if config.get("version") != FORMAT_VERSION:
        raise BundleError(f"{file}: bundle format version {config.get('version')} is not supported")
    missing = [k for k in ("kind", "preset", "vocab_size") if k not in config]
    if missing:
        raise BundleError(f"{file}: missing fields {missing}")
    if config["kind"] not in ("lm", "classifier"):
        raise BundleError(f"{file}: kind must be 'lm' or 'classifier', got {config['kind']!r}")
    classes = config.get("classes")
    if config["kind"] == "classifier" and not (isinstance(classes, list) and len(classes) >= 2 and
                                               all(isinstance(c, str) for c in classes)):
        raise BundleError(f"{file}: a classifier config needs 'classes', a list of 2 or more names")
    return config


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.exists():
        raise BundleError(f"{file}: missing")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{file}: corrupt or truncated safetensors file ({e})") from None


def _load_state(model: nn.Module, tensors: dict[str, torch.Tensor], file: Path) -> None:
    expected = {k: v for k, v in _unique_state(model).items()}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise BundleError(f"{file}: weights do not match the config's model: missing {missing[:5]}, "
                          f"unexpected {extra[:5]}")
    for name, tensor in tensors.items():
        if expected[name].is_floating_point() and (not tensor.is_floating_point() or
                                                   not bool(torch.isfinite(tensor).all())):
            raise BundleError(f"{file}: {name} must hold finite floating-point weights ({tensor.dtype})")
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise BundleError(f"{file}: {name} has shape {tuple(tensor.shape)}, the config's model needs "
                              f"{tuple(expected[name].shape)} (vocabulary or preset mismatch?)")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
                          strict=False)


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Load a bundle saved by `save_bundle`; any missing, corrupt or mismatched file raises `BundleError`."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle directory")
    config = _read_config(path)
    try:
        tokenizer = HeadlineTokenizer.load(_regular_file(path / VOCAB))
    except TokenizerFileError as e:
        raise BundleError(str(e)) from None
    real_tokens = [t for t in tokenizer.vocab if t != "xxfake"]  # fastai pads the vocabulary with xxfake
    if len(set(real_tokens)) != len(real_tokens) or not all(isinstance(t, str) for t in real_tokens):
        raise BundleError(f"{path / VOCAB}: the vocabulary must be distinct str tokens")
    if len(tokenizer) != config["vocab_size"]:
        raise BundleError(f"{path / VOCAB}: {len(tokenizer)} tokens, but {CONFIG} says {config['vocab_size']}")
    try:
        preset: LMPreset = get_preset(config["preset"])
    except (ClickbaitError, TypeError, ValueError) as e:
        raise BundleError(f"{path / CONFIG}: bad preset ({e})") from None
    too_big = {k: getattr(preset, k) for k, limit in MAX_PRESET.items()
               if not isinstance(getattr(preset, k), int) or not 1 <= getattr(preset, k) <= limit}
    if too_big:
        raise BundleError(f"{path / CONFIG}: preset sizes out of range {too_big} (limits {MAX_PRESET})")
    weights = path / WEIGHTS
    needed = _encoder_params(preset, len(tokenizer))
    if weights.is_file() and needed > weights.stat().st_size:  # at least one byte per weight (int8 stores one)
        raise BundleError(f"{weights}: corrupt or truncated, or not this config's weights: "
                          f"{weights.stat().st_size:,} bytes cannot hold the {needed:,} weights of the preset in "
                          f"{CONFIG}")
    if config["kind"] == "lm":
        model = build_lm(len(tokenizer), preset)
    else:
        model = build_classifier(len(tokenizer), len(config["classes"]), preset, config.get("seq_len", 72))
    _load_state(model, dequantize_state(_read_tensors(path / WEIGHTS), path / WEIGHTS), path / WEIGHTS)
    novelty = _read_tensors(path / NOVELTY).get("hashes")
    if novelty is None or novelty.dtype != torch.int64 or novelty.dim() != 1:
        raise BundleError(f"{path / NOVELTY}: needs a 1-d int64 'hashes' tensor")
    model.eval()
    rare_words = RareWords.load(_regular_file(path / RARE)) if (path / RARE).exists() else None
    if rare_words is not None and (path / RARE_CONTEXTS).exists():
        rare_words.contexts = RareContexts.load(_regular_file(path / RARE_CONTEXTS), len(rare_words))
        if rare_words.contexts.mean.shape != (preset.emb_sz,):
            raise BundleError(f"{path / RARE_CONTEXTS}: keys of {rare_words.contexts.mean.shape[0]}-d states, but "
                              f"the LM's states have {preset.emb_sz}")
    return Bundle(model=model, tokenizer=tokenizer, config=config, novelty=novelty.numpy(), path=path,
                  rare_words=rare_words)


@lru_cache(maxsize=6)
def _load_cached(path: str, stamp: tuple) -> Bundle:
    return load_bundle(path)


def _stamp(path: Path) -> tuple:
    # Files' sizes and mtimes: a bundle rewritten at the same path (retrained, edited) is loaded again.
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.glob("*")) if p.is_file()) \
        if path.is_dir() else ()


def resolve_bundle(model: ModelRef, kind: str = "lm", default: str | None = None) -> Bundle:
    """A loaded bundle of `kind` from a Bundle, a path, or None for the package's bundled `default` model
    (by default the one named like `kind`)."""
    if isinstance(model, Bundle):
        bundle = model
    else:
        path = Path(model) if model is not None else default_bundle_path(default or kind)
        if model is None and not path.exists():
            raise BundleError(f"no default {default or kind} bundle is installed at {path}; train one with "
                              f"`make model` or pass model=PATH")
        bundle = _load_cached(str(path.resolve()), _stamp(path))
    if bundle.kind != kind:
        raise BundleError(f"{bundle.path}: is a {bundle.kind} bundle, expected a {kind} bundle")
    return bundle
