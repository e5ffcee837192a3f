"""The BM25 tokenizer: lowercase, split on word characters, drop English stopwords, Snowball-stem.

It is the standard bm25s pipeline (`bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=Stemmer("english"))`:
regex `(?u)\\b\\w\\w+\\b`, Lucene's 33 English stopwords, PyStemmer's English Snowball stemmer) re-implemented as a
pure function of one text, because a BM25 index that follows a write path tokenizes one batch at a time and must give
a document the same tokens whatever else is in its batch. A test checks token equality with `bm25s.tokenize` on
real SciFact text. The configuration travels with a saved index (`to_dict` / `from_dict`), so a reloaded index
tokenizes queries exactly as its documents were.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def lucene_english_stopwords() -> tuple[str, ...]:
    from bm25s.stopwords import STOPWORDS_EN  # Lucene's EnglishAnalyzer list, as bm25s ships it

    return tuple(STOPWORDS_EN)


class TokenizerError(ValueError):
    """The tokenizer cannot be built as configured (for example the stemmer's package is missing)."""


@lru_cache(maxsize=4)
def _snowball(language: str):
    try:
        import Stemmer  # PyStemmer: C Snowball stemmers
    except ImportError:
        raise TokenizerError("BM25 stemming needs PyStemmer: `pip install PyStemmer` (it is in requirements.txt); "
                             "or build the index with Tokenizer(stemmer=None)") from None
    try:
        return Stemmer.Stemmer(language)
    except KeyError:
        raise TokenizerError(f"PyStemmer has no stemmer for {language!r}; valid: "
                             f"{', '.join(Stemmer.algorithms())}") from None


@dataclass(frozen=True)
class Tokenizer:
    lower: bool = True
    pattern: str = TOKEN_PATTERN
    stopwords: frozenset[str] = field(default_factory=lambda: frozenset(lucene_english_stopwords()))
    stemmer: str | None = "english"  # a Snowball language, or None for no stemming

    def __post_init__(self):
        if self.stemmer is not None:
            _snowball(self.stemmer)  # fail at construction, not at the first document

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, in order, repeated tokens kept (term frequency counts them)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        if self.lower:
            text = text.lower()
        words = [w for w in _splitter(self.pattern)(text) if w not in self.stopwords]
        if self.stemmer is None or not words:
            return words
        return _snowball(self.stemmer).stemWords(words)  # PyStemmer caches stems of frequent words itself

    def tokenize_many(self, texts) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]

    def to_dict(self) -> dict:
        return {"lower": self.lower, "pattern": self.pattern, "stopwords": sorted(self.stopwords),
                "stemmer": self.stemmer}

    @classmethod
    def from_dict(cls, data: dict) -> "Tokenizer":
        return cls(lower=bool(data["lower"]), pattern=str(data["pattern"]),
                   stopwords=frozenset(data["stopwords"]), stemmer=data["stemmer"])


@lru_cache(maxsize=8)
def _splitter(pattern: str):
    return re.compile(pattern).findall
