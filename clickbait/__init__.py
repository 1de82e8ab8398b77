"""clickbait: headline language models on fastai — read corpora, tokenize, train, generate, score, classify.

Public names are imported lazily, so `import clickbait` stays fast; fastai and torch load on first use.
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load_headlines": "data", "load_chakraborty": "data", "headline_stats": "data", "plot_headline_stats": "data",
    "split_holdout": "data",
    "ClickbaitError": "errors", "HeadlineDataError": "errors", "HeadlineSourceNotFound": "errors",
    "BundleError": "errors", "GenerationError": "errors",
    "HeadlineTokenizer": "tokenizer",
    "lm_dataloaders": "datablocks", "clas_dataloaders": "datablocks",
    "PRESETS": "models", "LMPreset": "models",
    "RecipeConfig": "train", "run_recipe": "train", "train_general_lm": "train", "finetune_target_lm": "train",
    "save_bundle": "bundle", "load_bundle": "bundle",
    "GenerationRequest": "generate", "generate_headlines": "generate", "score_headlines": "generate",
    "train_classifier": "train", "classify_headlines": "classify", "clickbait_score": "classify",
    "check_headlines": "evaluate", "load_archive": "archive", "rewrite_headline": "rewrite",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clickbait' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
