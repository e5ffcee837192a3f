"""Lexical retrieval: a BM25 index that follows a collection's write path, and its tokenizer."""
from .index import BM25Index, BM25Params, EmptyQueryError, Hits
from .secondary import BM25Secondary
from .tokenizer import Tokenizer, TokenizerError

__all__ = ["BM25Index", "BM25Secondary", "BM25Params", "EmptyQueryError", "Hits", "Tokenizer", "TokenizerError"]
