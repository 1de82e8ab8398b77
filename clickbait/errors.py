"""The library's errors: one base, `ClickbaitError`, so callers (and the CLI) catch ours in one place."""
from __future__ import annotations

__all__ = ["ClickbaitError", "HeadlineDataError", "HeadlineSourceNotFound", "TokenizerFileError", "BundleError",
           "GenerationError", "JobError", "OutputExistsError", "UsageError", "CheckpointError"]


class ClickbaitError(ValueError):
    """Base of every error this library raises on purpose; the message names the input and the problem."""


class HeadlineDataError(ClickbaitError):
    """A headline source exists but cannot be read as headlines (or labelled data lacks what training needs)."""


class HeadlineSourceNotFound(HeadlineDataError, FileNotFoundError):
    """A headline source path or URL does not exist."""


class TokenizerFileError(ClickbaitError):
    """A saved tokenizer file is missing fields, corrupt or of an unknown format."""


class BundleError(ClickbaitError):
    """A model bundle is missing, corrupt, truncated, mismatched, or lacks what the caller needs of it."""


class GenerationError(ClickbaitError):
    """A generation request is invalid, or cannot be met (attempts exhausted)."""


class JobError(ClickbaitError):
    """A batch job's output cannot be written or resumed (format, progress file, torchrun usage)."""


class OutputExistsError(ClickbaitError, FileExistsError):
    """An output exists and would be replaced; nothing was written."""


class UsageError(ClickbaitError):
    """The command line asks for something contradictory or incomplete."""


class CheckpointError(ClickbaitError):
    """A training checkpoint is not a plain weights file (it would run code) or cannot be read; nothing was loaded."""
