"""Small-vocab headline tokenizer: fastai Tokenizer + spaCy words, lowercase tokens, casing restored on output.

fastai's default rules spend an `xxmaj` token on every Title-Case word; headlines are mostly Title Case, so
that doubles sequence length and spends model capacity on casing. Here tokens are lowercase and a
`HeadlineCaser` learned from the corpus restores casing ("title", "sentence" or "lower") when decoding.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from fastai.text.core import (BOS, EOS, PAD, TK_MAJ, TK_UP, SpacyTokenizer, TitledStr, Tokenizer,
                              TokenizeWithRules, defaults, parallel_tokenize)
from fastai.text.data import make_vocab

from spacy.symbols import ORTH

from .errors import TokenizerFileError
from .files import read_json, write_atomic
from .text import clean_headline, has_word_char

__all__ = ["HeadlineTokenizer", "label_tokens", "is_control_token", "HeadlineCaser", "HeadlineTokenize",
           "HEADLINE_RULES", "detokenize", "STYLES", "glues_left", "glues_right", "UNK", "UNKNOWN_CLASSES",
           "unknown_class", "UnknownWords"]

FORMAT_VERSION = 1
STYLES = ("title", "sentence", "lower")
SPECIAL_TOKENS = list(defaults.text_spec_tok)
LABEL_TOKEN_PREFIX = "xxlabel"


def label_tokens(labels: Iterable[str]) -> dict[str, str]:
    """One control token per label (`xxlabel0`, `xxlabel1`, ... in sorted label order) for a conditional LM, which
    reads a headline's label token right after `xxbos`; numbered, so any label text works."""
    return {label: f"{LABEL_TOKEN_PREFIX}{i}" for i, label in enumerate(sorted(set(labels)))}


def is_control_token(token: str) -> bool:
    """True for a token that steers the LM (fastai's special tokens, a conditional LM's label tokens, the unknown-word
    classes): typed by a user, it must be read as an unknown word instead."""
    return token in SPECIAL_TOKENS or token.startswith(LABEL_TOKEN_PREFIX) or token in UNKNOWN_CLASSES


UNK = "xxunk"
# Unknown-word classes by the word's shape (as Berkeley-parser signatures): a tokenizer built with them writes an
# out-of-vocabulary word as the token of its class instead of a bare `xxunk`, so the LM learns what kind of word
# each slot takes, and a slot's rare word is drawn within its class. First match wins; `xxunk` is the rest.
UNKNOWN_CLASSES = {
    "xxunk_num": re.compile(r"\d"),
    "xxunk_ly": re.compile(r"ly$"),
    "xxunk_ing": re.compile(r"ing$"),
    "xxunk_ed": re.compile(r"ed$"),
    "xxunk_s": re.compile(r"[^su]s$"),  # plurals and verbs, not "glass" or "famous"
    "xxunk_adj": re.compile(r"(ous|ful|able|ible|ive|less|ish|ic|al)$"),
    "xxunk_noun": re.compile(r"(tion|sion|ment|ness|ity|ism|ist|ship|ance|ence|er)$"),
}


def unknown_class(word: str) -> str:
    """The unknown-word class token of a lowercase word token (`xxunk` for a word of no class, or not a word)."""
    if not has_word_char(word):
        return UNK
    return next((token for token, shape in UNKNOWN_CLASSES.items() if shape.search(word)), UNK)


class UnknownWords:
    """Token lists with each token outside `vocab` replaced by its unknown-word class token (picklable, for
    fastai's tokenizing processes)."""
    def __init__(self, vocab: Iterable[str]):
        self.vocab = frozenset(vocab)

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        return [t if t in self.vocab else unknown_class(t) for t in tokens]


def mark_headline(text: str) -> str:
    """Lowercase and wrap in `xxbos ... xxeos` (no empty token between them when the text is empty)."""
    return " ".join(part for part in (BOS, text.lower().strip(), EOS) if part)


def mark_case(text: str) -> str:
    """Append the headline's casing style as a mark: `xxmaj` for Every Word Capitalised, `xxup` for Title Case
    with small words lowercase, none for sentence case.

    Classifiers need it and lowercase tokens lose it: in the Chakraborty training data, 94% of every-word-capitalised
    headlines are clickbait, 96% of title-case ones and all sentence-case ones are news. At the end of the headline
    the mark sits next to the state the classifier pools, instead of interleaving the LM's familiar word stream.
    """
    initials = [next(ch for ch in chunk if ch.isalpha()) for chunk in text.split() if any(c.isalpha() for c in chunk)]
    if not initials:
        return text
    if all(ch.isupper() for ch in initials):
        return f"{text} {TK_MAJ}"
    if sum(ch.isupper() for ch in initials) > len(initials) / 2:
        return f"{text} {TK_UP}"
    return text


# Pre-tokenization rules (strings in, strings out): clean, lowercase, mark both ends of the headline.
HEADLINE_RULES = [clean_headline, mark_headline]
CASE_MARK_RULES = [clean_headline, mark_case, mark_headline]

_CONTRACTION = re.compile(r"^(?:n['\u2019]t|['\u2019](?:s|ll|re|ve|d|m))$")
_ATTACH_LEFT = {",", ".", "!", "?", ":", ";", ")", "]", "}", "%", "...", "\u2026", "\u201d", "\u2019", "-", "/"}
_ATTACH_RIGHT = {"(", "[", "{", "$", "#", "@", "\u201c", "\u2018", "-", "/"}
_TOGGLE_QUOTES = {'"', "'"}
_APOSTROPHES = {"'", "\u2019"}


def glues_left(tok: str) -> bool:
    """True for tokens written without a space before them (punctuation, "'s", "n't")."""
    return tok in _ATTACH_LEFT or bool(_CONTRACTION.match(tok))


def glues_right(tok: str) -> bool:
    """True for tokens written without a space after them ("(", "$", "#", a hyphen)."""
    return tok in _ATTACH_RIGHT


def detokenize(tokens: Iterable[str], headline_sep: str = " | ") -> str:
    """Join lowercase tokens into text: special tokens dropped, punctuation and contractions reattached."""
    out: list[str] = []
    glue_next, open_quotes = True, set()
    for tok in tokens:
        if tok in (BOS, EOS):
            if tok == BOS and out:
                out.append(headline_sep)
                glue_next = True
            open_quotes.clear()
            continue
        if tok in (PAD, TK_MAJ, TK_UP, "xxfake") or tok.startswith("xxfld"):
            continue
        if tok in _APOSTROPHES and tok not in open_quotes and out and out[-1].endswith("s"):
            attach_left, attach_right = True, False  # plural possessive: "Dogs' Minds"
        elif tok in _TOGGLE_QUOTES:
            closing = tok in open_quotes
            open_quotes.symmetric_difference_update({tok})
            attach_left, attach_right = closing, not closing
        else:
            attach_left, attach_right = glues_left(tok), glues_right(tok)
        if out and not glue_next and not attach_left:
            out.append(" ")
        out.append(tok)
        glue_next = attach_right
    return "".join(out)


# --------------------------------------------------------------------------------------------------- casing

# Words whose all-caps form is another word ("US" vs "us"): never forced to a learned form.
AMBIGUOUS_FORMS = frozenset("us it am id who i a".split())
SMALL_WORDS = frozenset("a an and as at but by for from in into nor of on or per the to vs via with".split())
_STRIP = "\"'()[]{}!?,;:\u201c\u201d\u2018\u2019#@*"


def _case_key(chunk: str) -> str:
    core = chunk.strip(_STRIP)
    if core.endswith(".") and core.count(".") == 1:  # "Inc." keeps its dot only in acronyms like "U.S."
        core = core[:-1]
    return core.lower()


def _capitalise(chunk: str) -> str:
    # Capitalise after a leading quote or bracket, and each hyphen part ("Well-Known", "X-Men").
    return "-".join(re.sub(r"^([^\w]*)(\w)", lambda m: m.group(1) + m.group(2).upper(), part, count=1)
                    for part in chunk.split("-"))


@dataclass
class HeadlineCaser:
    """Restores casing learned from a corpus: acronyms and mixed-case forms (`forms`) and proper nouns."""
    forms: dict[str, str] = field(default_factory=dict)
    proper: frozenset[str] = frozenset()

    @classmethod
    def learn(cls, texts: Iterable[str], min_count: int = 3, min_share: float = 0.6) -> "HeadlineCaser":
        """Learn preferred surface forms (NASA, iPhone, U.S.) and proper nouns from raw headlines."""
        surfaces: dict[str, Counter] = defaultdict(Counter)
        inner_caps: Counter = Counter()
        inner_total: Counter = Counter()
        for text in texts:
            chunks = [c for c in text.split() if has_word_char(c)]
            caps = sum(c.strip(_STRIP)[:1].isupper() for c in chunks[1:])
            sentence_case = len(chunks) > 3 and caps < 0.5 * (len(chunks) - 1)
            for i, chunk in enumerate(chunks):
                core = chunk.strip(_STRIP)
                if core.endswith(".") and core.count(".") == 1:
                    core = core[:-1]
                key = core.lower()
                surfaces[key][core] += 1
                if sentence_case and i > 0:
                    inner_total[key] += 1
                    inner_caps[key] += core[:1].isupper()
        forms = {}
        for key, counter in surfaces.items():
            form, n = counter.most_common(1)[0]
            total = sum(counter.values())
            letters = [ch for ch in form if ch.isalpha()]
            marked = (len(letters) > 1 and all(ch.isupper() for ch in letters)) or any(ch.isupper() for ch in form[1:])
            if total >= min_count and n >= min_share * total and marked and key not in AMBIGUOUS_FORMS:
                forms[key] = form
        proper = frozenset(k for k, n in inner_total.items()
                           if n >= 2 and inner_caps[k] >= min_share * n and k not in forms)
        return cls(forms=forms, proper=proper)

    def apply(self, text: str, style: str = "title") -> str:
        """Recase lowercase `text` as a headline in `style`: "title", "sentence" or "lower"."""
        if style not in STYLES:
            raise ValueError(f"unknown casing style {style!r}; use one of {STYLES}")
        if style == "lower":
            return text
        chunks = text.split(" ")
        out = []
        for i, chunk in enumerate(chunks):
            key = _case_key(chunk)
            # A new clause or a quoted title starts here: its first word is capitalised even if small.
            starts = i == 0 or chunks[i - 1].endswith((":", "|", "?", "!")) or chunk[:1] in "\"\u201c(\u2018"
            if key in self.forms:
                out.append(chunk.replace(key, self.forms[key], 1) if key in chunk else chunk)
            elif style == "title" and (starts or i == len(chunks) - 1 or key not in SMALL_WORDS):
                out.append(_capitalise(chunk))
            elif style == "sentence" and (starts or key in self.proper):
                out.append(_capitalise(chunk))
            else:
                out.append(chunk)
        return " ".join(out)


# --------------------------------------------------------------------------------------------- tokenizer

class HeadlineSpacyTokenizer(SpacyTokenizer):
    """spaCy's English tokenizer minus its apostrophe-less contraction cases ("wed" -> "we d", "im" -> "i m").

    Those splits cannot be joined back into the original word, and lowercase text triggers them for real
    words ("wed", "hell", "ill").
    """
    def __init__(self, lang: str = "en", buf_sz: int = 5000):
        super().__init__(lang, buf_sz=buf_sz)
        tokenizer = self.pipe.__self__.tokenizer
        tokenizer.rules = {text: pieces for text, pieces in tokenizer.rules.items()
                           if len(pieces) == 1 or "".join(p[ORTH] for p in pieces) != text
                           or any(q in text for q in "'\u2019")}


class HeadlineTokenize(Tokenizer):
    """fastai's Tokenizer transform with headline rules; `decodes` shows clean text in `show_batch`. With `unknown`
    (an `UnknownWords`), out-of-vocabulary words come out as their class tokens."""
    caser: HeadlineCaser | None = None
    unknown: UnknownWords | None = None

    def setups(self, dsets):
        """Tokenize the DataFrame (fastai), then write each unknown word as its class."""
        tokenized = super().setups(dsets)
        if tokenized is not None and self.unknown is not None:
            col = self.tok_text_col
            tokenized.items[col] = [self.unknown(tokens) for tokens in tokenized.items[col]]
        return tokenized

    def _tokenize1(self, o: str) -> list[str]:
        tokens = super()._tokenize1(o)
        return tokens if self.unknown is None else self.unknown(tokens)

    @property
    def tokenizer(self) -> "HeadlineTokenize":
        """Itself: fastai's `LMLearner.predict` reads `dls.train_ds.tokenizer.sep`, found through this name."""
        return self

    def decodes(self, o: Sequence[str]) -> TitledStr:
        """Token strings back to one readable headline (fastai's decode path, e.g. `LMLearner.predict`)."""
        text = detokenize(o)
        return TitledStr(self.caser.apply(text, "sentence") if self.caser else text)


class HeadlineTokenizer:
    """Lowercase spaCy word tokens with a capped vocabulary; encodes headlines to ids and decodes them back."""

    def __init__(self, vocab: Sequence[str], caser: HeadlineCaser | None = None,
                 max_vocab: int = 10_000, min_freq: int = 2, case_marks: bool = False, unknown_classes: bool = False):
        missing = [t for t in SPECIAL_TOKENS if t not in vocab[:len(SPECIAL_TOKENS)]]
        if missing:
            raise TokenizerFileError(f"vocabulary must start with fastai's special tokens; missing {missing}")
        if unknown_classes and not set(UNKNOWN_CLASSES) <= set(vocab):
            raise TokenizerFileError(f"unknown_classes needs the class tokens {sorted(UNKNOWN_CLASSES)} in the "
                                     f"vocabulary; missing {sorted(set(UNKNOWN_CLASSES) - set(vocab))}")
        self.vocab = list(vocab)
        self.o2i = {t: i for i, t in enumerate(self.vocab)}
        self.caser = caser or HeadlineCaser()
        self.max_vocab, self.min_freq, self.case_marks = max_vocab, min_freq, case_marks
        self.unknown_classes = unknown_classes
        self.rules = CASE_MARK_RULES if case_marks else HEADLINE_RULES

    def _settings(self) -> dict:
        return dict(max_vocab=self.max_vocab, min_freq=self.min_freq, case_marks=self.case_marks,
                    unknown_classes=self.unknown_classes)

    def with_tokens(self, tokens: Iterable[str]) -> "HeadlineTokenizer":
        """The same tokenizer with `tokens` appended to the vocabulary (those it lacks), e.g. label tokens."""
        extra = [t for t in dict.fromkeys(tokens) if t not in self.o2i]
        return HeadlineTokenizer(self.vocab + extra, self.caser, **self._settings())

    def with_case_marks(self) -> "HeadlineTokenizer":
        """The same vocabulary, with a casing-style mark (`xxmaj`/`xxup`) before `xxeos`, for classifiers."""
        return HeadlineTokenizer(self.vocab, self.caser, **{**self._settings(), "case_marks": True})

    # -- building
    @classmethod
    def train(cls, texts: Iterable[str], max_vocab: int = 10_000, min_freq: int = 2,
              n_workers: int = defaults.cpus, unknown_classes: bool = False) -> "HeadlineTokenizer":
        """Build the vocabulary (at most `max_vocab`, tokens seen `min_freq`+ times) and casing from headlines;
        `unknown_classes` adds one token per unknown-word class (`UNKNOWN_CLASSES`) after them."""
        texts = list(texts)
        counts = Counter(t for toks in tokenize_headlines(texts, n_workers) for t in toks)
        vocab = make_vocab(counts, min_freq=min_freq, max_vocab=max_vocab)
        if unknown_classes:  # before make_vocab's `xxfake` padding to a multiple of 8, padded again after
            vocab = [t for t in vocab if t != "xxfake"] + list(UNKNOWN_CLASSES)
            vocab += ["xxfake"] * (-len(vocab) % 8)
        return cls(vocab, HeadlineCaser.learn(texts), max_vocab=max_vocab, min_freq=min_freq,
                   unknown_classes=unknown_classes)

    @property
    def slot_tokens(self) -> frozenset[str]:
        """The tokens that stand for a word outside the vocabulary: `xxunk`, and the unknown-word classes."""
        return frozenset([UNK, *UNKNOWN_CLASSES]) if self.unknown_classes else frozenset([UNK])

    # -- text <-> tokens <-> ids
    def tokenize(self, texts: Sequence[str], n_workers: int = 0) -> list[list[str]]:
        """Lowercase tokens of each headline, `xxbos ... xxeos` included."""
        return tokenize_headlines(texts, n_workers, self.rules)

    def numericalize(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; tokens outside the vocabulary map to `xxunk` (id 0), or with `unknown_classes` to their
        class's token."""
        if self.unknown_classes:
            return [self.o2i[t] if t in self.o2i else self.o2i[unknown_class(t)] for t in tokens]
        return [self.o2i.get(t, 0) for t in tokens]

    def encode(self, text: str) -> list[int]:
        """Ids of one headline, `xxbos ... xxeos` included."""
        return self.numericalize(self.tokenize([text])[0])

    def encode_batch(self, texts: Sequence[str], n_workers: int = 0) -> list[list[int]]:
        """Ids of many headlines (tokenized in `n_workers` processes when > 0)."""
        return [self.numericalize(toks) for toks in self.tokenize(texts, n_workers)]

    def decode(self, ids: Iterable[int], style: str = "title") -> str:
        """Clean headline text from ids, recased in `style` ("title", "sentence" or "lower")."""
        return self.caser.apply(detokenize(self.vocab[int(i)] for i in ids), style)

    def coverage(self, texts: Sequence[str]) -> float:
        """Share of word tokens (specials excluded) of `texts` that are in the vocabulary."""
        toks = [t for ts in self.tokenize(texts, n_workers=defaults.cpus) for t in ts
                if t not in (BOS, EOS, TK_MAJ, TK_UP)]
        return sum(t in self.o2i for t in toks) / max(len(toks), 1)

    def fastai_tokenizer(self, text_col: str = "text", n_workers: int = defaults.cpus) -> HeadlineTokenize:
        """The fastai `Tokenizer` transform for a `TextBlock` over DataFrame column `text_col`."""
        tfm = HeadlineTokenize.from_df(text_col, tok=HeadlineSpacyTokenizer("en"), rules=self.rules,
                                       n_workers=n_workers)
        tfm.caser = self.caser
        tfm.unknown = UnknownWords(self.vocab) if self.unknown_classes else None
        return tfm

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"HeadlineTokenizer(vocab={len(self.vocab)}, max_vocab={self.max_vocab}, min_freq={self.min_freq}"
                f"{', case_marks=True' if self.case_marks else ''}"
                f"{', unknown_classes=True' if self.unknown_classes else ''})")

    @property
    def rules_name(self) -> str:
        """The pre-tokenization rules, as recorded in saved files."""
        return "clean+casing-style-mark+lowercase+bos/eos" if self.case_marks else "clean+lowercase+bos/eos"

    # -- persistence
    def to_dict(self) -> dict:
        """JSON-ready state: format version, settings, vocabulary and casing."""
        return {"format": "clickbait-headline-tokenizer", "version": FORMAT_VERSION,
                "max_vocab": self.max_vocab, "min_freq": self.min_freq, "rules": self.rules_name,
                "case_marks": self.case_marks, "unknown_classes": self.unknown_classes, "vocab": self.vocab,
                "forms": self.caser.forms,
                "proper": sorted(self.caser.proper)}

    @classmethod
    def from_dict(cls, state: dict, source: str = "tokenizer") -> "HeadlineTokenizer":
        """Rebuild from `to_dict` output, naming `source` in any error."""
        if not isinstance(state, dict) or state.get("format") != "clickbait-headline-tokenizer":
            raise TokenizerFileError(f"{source}: not a clickbait tokenizer file")
        if state.get("version") != FORMAT_VERSION:
            raise TokenizerFileError(f"{source}: tokenizer format version {state.get('version')} "
                                     f"is not supported (expected {FORMAT_VERSION})")
        try:
            caser = HeadlineCaser(forms=dict(state["forms"]), proper=frozenset(state["proper"]))
            return cls(state["vocab"], caser, max_vocab=state["max_vocab"], min_freq=state["min_freq"],
                       case_marks=bool(state.get("case_marks", False)),
                       unknown_classes=bool(state.get("unknown_classes", False)))
        except (KeyError, TypeError) as e:
            raise TokenizerFileError(f"{source}: tokenizer file is missing or has a bad field ({e})") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer as JSON (atomically: an existing file is replaced only by a complete one)."""
        return write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "HeadlineTokenizer":
        """Read a tokenizer saved by `save`."""
        path = Path(path)
        return cls.from_dict(read_json(path, TokenizerFileError, "tokenizer file"), str(path))


_spacy_tokenizer: HeadlineSpacyTokenizer | None = None


def tokenize_headlines(texts: Sequence[str], n_workers: int = 0, rules: list = HEADLINE_RULES) -> list[list[str]]:
    """Tokenize with the headline rules; `n_workers` > 0 uses fastai's process pool, keeping input order."""
    global _spacy_tokenizer
    texts = list(texts)
    if n_workers and len(texts) >= 10_000:
        pairs = parallel_tokenize(texts, HeadlineSpacyTokenizer("en"), rules, n_workers=n_workers)
        return [list(toks) for _, toks in sorted(pairs, key=lambda p: p[0])]
    if _spacy_tokenizer is None:  # building a spaCy pipeline costs ~0.3 s; keep one per process
        _spacy_tokenizer = HeadlineSpacyTokenizer("en")
    return [list(toks) for toks in TokenizeWithRules(_spacy_tokenizer, rules=rules)(texts)]
