"""Text primitives every stage shares: cleaning, the comparison key, hashing, and one definition of a word."""
from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from functools import lru_cache
from typing import Iterable

from .errors import HeadlineDataError

__all__ = ["headline_list", "clean_headline", "normalise_headline", "headline_hash", "WORD", "words", "has_word_char",
           "count_words", "phrase_pattern", "holds_phrase", "TOKEN", "word_tokens", "ngrams", "wants_an", "fix_articles",
           "grammar_slips"]

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


def headline_list(headlines: Iterable[str]) -> list[str]:
    """`headlines` as a list of cleaned, non-empty str. A bare str (one headline is `[text]`) or an item that is not a
    non-empty str (None, NaN, a number, '') is refused with our error naming its position: nothing gets a
    confident score for no headline."""
    if isinstance(headlines, (str, bytes)):
        raise HeadlineDataError(f"pass a list of headlines, not one {type(headlines).__name__} "
                                f"(for one headline: [{headlines[:40]!r}])")
    out = []
    for i, item in enumerate(headlines):
        text = clean_headline(item) if isinstance(item, str) else ""
        if not text:
            raise HeadlineDataError(f"headline {i} is {'empty' if isinstance(item, str) else repr(item)}: "
                                    f"every headline must be non-empty text")
        out.append(text)
    return out


def words(text: str) -> list[str]:
    """The lowercase words of a headline."""
    return [w.lower() for w in WORD.findall(text)]


def word_tokens(text: str) -> list[str]:
    """The lowercase words and punctuation marks of a headline, as n-gram metrics count them."""
    return TOKEN.findall(text.lower())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The lowercase word/punctuation n-grams of one headline."""
    tokens = word_tokens(text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def has_word_char(token: str) -> bool:
    """True for text holding a letter or digit: what makes a chunk count as a word."""
    return bool(_ALNUM.search(token))


def phrase_pattern(phrase: str, exact: bool = True) -> re.Pattern:
    """`phrase` as a whole phrase (no letter or digit joined on either side): as written, or in any casing."""
    return re.compile(rf"(?<![^\W_]){re.escape(phrase)}(?![^\W_])", 0 if exact else re.IGNORECASE)


def holds_phrase(text: str, phrase: str, exact: bool = True) -> bool:
    """True when `text` holds `phrase` as a whole phrase (see `phrase_pattern`)."""
    return phrase_pattern(phrase, exact).search(text) is not None


def count_words(text: str) -> int:
    """Words as editors count them: whitespace-separated chunks that hold a letter or digit."""
    return sum(1 for chunk in text.split() if _ALNUM.search(chunk))


# ---------------------------------------------------------------------------------------------- grammar

_ARTICLE = re.compile(r"\b([Aa]n?|AN?)(\s+)([\"'\u201c\u2018(]*)([^\W_][\w.'\u2019-]*)")
# Spelled with a vowel letter but said with a consonant sound ("a unicorn", "a one-off"), and the reverse.
_CONSONANT_SOUND = re.compile(r"^(?:uni(?!nt|mp|nh|nst|nsp|nd)|use|usu|uti|ura|ure(?!a)|uro|eu|ewe|one\b|once|ufo|uk\b|"
                              r"ubi|ug?anda|ukr|uber)", re.I)
_VOWEL_SOUND = re.compile(r"^(?:hour|honest|honou?r|heir|8|11\b|18\b|80s?\b|80\d)", re.I)
# Acronyms said letter by letter: these letters' names start with a vowel sound (an FBI agent, an MRI).
_VOWEL_LETTERS = set("AEFHILMNORSX")


def wants_an(word: str) -> bool:
    """True when English writes "an" before `word` (by its sound, not its first letter)."""
    if len(word) > 1 and word.isupper() and word.isalpha() and len(word) <= 5:
        said_as_a_word = len(word) >= 4 and any(ch in "AEIOU" for ch in word[1:])  # NASA, FIFA; not NSFW
        if not said_as_a_word:
            return word[0] in _VOWEL_LETTERS
    if _VOWEL_SOUND.match(word):
        return True
    if _CONSONANT_SOUND.match(word):
        return False
    return word[:1].lower() in "aeiou"


def fix_articles(text: str) -> str:
    """Make each "a"/"an" agree with the sound of the word after it, keeping the article's casing."""
    def fix(m: re.Match) -> str:
        article, space, opener, word = m.groups()
        if word.lower() in _FUNCTION_WORDS:  # "a in": a slip of its own, that no article fixes
            return m.group(0)
        right = "an" if wants_an(word) else "a"
        if article.lower() != right:
            article = right.upper() if article.isupper() and len(article) > 1 else \
                (right.capitalize() if article[0].isupper() else right)
        return article + space + opener + word
    return _ARTICLE.sub(fix, text)


_DETERMINERS = frozenset("a an the your my our their its every".split())
_PREPOSITIONS = frozenset("of in on at to for with from by about into onto than as".split())
_DANGLING = frozenset("a an the of in on at to for with from by and or but than as your my our their".split())
_FUNCTION_WORDS = _DETERMINERS | _PREPOSITIONS | _DANGLING


def grammar_slips(text: str) -> list[str]:
    """The slips a reader trips on, each as a short label with the words involved: an a/an mismatch, a
    determiner before a preposition or another determiner, a doubled word, a function word left dangling at
    the end."""
    tokens = WORD.findall(text)
    lower = [t.lower() for t in tokens]
    slips = []
    for i, (word, nxt) in enumerate(zip(lower, lower[1:])):
        if word in ("a", "an") and nxt not in _FUNCTION_WORDS and (word == "an") != wants_an(tokens[i + 1]):
            slips.append(f"a/an: {tokens[i]} {tokens[i + 1]}")
        if word == nxt and not word.isdigit():
            slips.append(f"doubled word: {tokens[i]} {tokens[i + 1]}")
        elif word in _DETERMINERS and (nxt in _PREPOSITIONS or nxt in _DETERMINERS):
            slips.append(f"determiner before {'a preposition' if nxt in _PREPOSITIONS else 'a determiner'}: "
                         f"{tokens[i]} {tokens[i + 1]}")
    if lower and lower[-1] in _DANGLING and not text.rstrip().endswith(("?", '"', "'", "\u201d", ")")):
        slips.append(f"dangling at the end: {tokens[-1]}")
    return slips
