"""Text primitives every stage shares: cleaning, the comparison key, hashing, and one definition of a word."""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from functools import lru_cache

__all__ = ["clean_headline", "normalise_headline", "headline_hash", "WORD", "words", "has_word_char", "count_words",
           "TOKEN", "word_tokens"]

_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
# A word: letters and digits, joined by inner apostrophes ("Don't", "Dogs'" keeps "Dogs").
WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# What n-gram metrics count: words and single punctuation marks.
TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*|[^\w\s]|_")
_ALNUM = re.compile(r"[^\W_]")


@lru_cache(maxsize=1)
def _control_chars() -> re.Pattern:
    # Control and format characters (zero-width spaces, BOMs, bidi marks) survive scraping and poison tokens.
    chars = (chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf"))
    return re.compile("[" + "".join(re.escape(c) for c in chars if c not in "\t\n\r") + "]")


def clean_headline(text: str) -> str:
    """Unescape HTML entities, drop control characters and collapse whitespace."""
    text = html.unescape(html.unescape(text))  # scraped text is often double-escaped (&amp;#39;)
    return _SPACES.sub(" ", _control_chars().sub("", text)).strip()


def normalise_headline(text: str) -> str:
    """The comparison key for dedupe and novelty: case- and space-insensitive, curly quotes straightened."""
    return _SPACES.sub(" ", text.translate(_QUOTES)).strip().casefold()


def headline_hash(text: str) -> int:
    """A stable signed 64-bit hash of the normalised headline (same on every machine and run)."""
    digest = hashlib.blake2b(normalise_headline(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def words(text: str) -> list[str]:
    """The lowercase words of a headline."""
    return [w.lower() for w in WORD.findall(text)]


def word_tokens(text: str) -> list[str]:
    """The lowercase words and punctuation marks of a headline, as n-gram metrics count them."""
    return TOKEN.findall(text.lower())


def has_word_char(token: str) -> bool:
    """True for text holding a letter or digit: what makes a chunk count as a word."""
    return bool(_ALNUM.search(token))


def count_words(text: str) -> int:
    """Words as editors count them: whitespace-separated chunks that hold a letter or digit."""
    return sum(1 for chunk in text.split() if _ALNUM.search(chunk))
