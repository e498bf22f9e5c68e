"""How the vectors' text was split into tokens, so that new text is split the same way.

A run's config.json records its `tokenizer` and `lowercase` settings, and our torch bundle
carries them as keys of the same names; vectors read from word2vec files or .npy do not know
them (None). The pair travels as two plain values rather than a callable so that it can be
saved with `torch.load(weights_only=True)` files and compared.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from w2v.config import TOKENIZERS
from w2v.errors import UserError
from w2v.sentences import PATH as PYTHON_SENTENCES

HOW_TO_PASS = ("give it, e.g. w2v.embedding(vectors, tokenizer='default', lowercase=True) or "
               "Vectors(words, matrix, tokenizer='default', lowercase=True)")


def checked(tokenizer: Any, lowercase: Any, where: str = "") -> tuple[str | None, bool | None]:
    """(tokenizer, lowercase) when they are valid (None for unknown), else a one-line UserError.

    A tokenizer without its lowercasing is refused: the two together decide the tokens, and
    guessing the lowercasing would silently miss every capitalised word (or lose case).
    """
    at = f"{where}: " if where else ""
    if tokenizer is not None and tokenizer not in TOKENIZERS:
        raise UserError(f"{at}unknown tokenizer {tokenizer!r}; choose one of: {', '.join(TOKENIZERS)}")
    if lowercase is not None and not isinstance(lowercase, bool):
        raise UserError(f"{at}lowercase must be True or False, not {lowercase!r}")
    if tokenizer is not None and lowercase is None:
        raise UserError(f"{at}tokenizer {tokenizer!r} is given without lowercase: give lowercase=True or False too")
    return tokenizer, lowercase


def tokenize(text: str, tokenizer: str | None, lowercase: bool | None) -> list[str]:
    """`text` split as training split its lines (w2v.corpus.make_tokenizer)."""
    if not isinstance(text, str):
        raise UserError(f"tokenize takes a string of text, not a {type(text).__name__}")
    tokenizer, lowercase = checked(tokenizer, lowercase)
    if tokenizer is None:
        raise UserError(f"these vectors do not record how their text was tokenized (word2vec and .npy files, "
                        f"and runs trained on sentences from Python, do not): {HOW_TO_PASS}")
    return _tokenizer(tokenizer, bool(lowercase))(text)


@functools.lru_cache(maxsize=None)
def _tokenizer(name: str, lowercase: bool) -> Callable[[str], list[str]]:
    from w2v.corpus import make_tokenizer  # here: only tokenizing needs the corpus reader

    return make_tokenizer(name, lowercase)


def lookup_form(token: str, lowercase: bool | None) -> str:
    """The form of a token the vocabulary can hold: lowercased when training lowercased the text."""
    return token.lower() if lowercase else token


def of_run(meta: dict[str, Any], where: str) -> tuple[str | None, bool | None]:
    """(tokenizer, lowercase) of a run from its config.json record; (None, None) when not known.

    A run (or an earlier stage of a continued run) trained on sentences from Python used the
    tokens as given, whatever its settings say, so its tokenization is unknown. A stage's
    corpus of no files is such a stage: a file corpus always has at least one file.
    """
    config = meta.get("config") or {}
    stages = meta.get("history") or []
    if PYTHON_SENTENCES in (config.get("paths") or []) or \
            any(isinstance(s, dict) and s.get("files") == [] for s in stages):
        return None, None
    return checked(config.get("tokenizer"), config.get("lowercase"), where)
