"""Training on sentences from Python: any re-iterable of token lists, as gensim accepts.

    w2v.train(sentences=[["the", "king", "rode"], ["the", "queen", "rode"]], min_count=1)

Tokens are used as given (no tokenizer, no lowercasing); sentences longer than
max_sentence_length tokens are cut into pieces, as lines of a file are. The same tokens
written one sentence a line to a file and read with `tokenizer="whitespace",
lowercase=False` train the same vectors.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from w2v.errors import UserError

PATH = "<sentences from Python>"  # what config.json records as the corpus


class Sentences:
    """Wraps the user's iterable with Corpus's interface (iteration, `files`, `bad_bytes`)."""

    files: list[str] = []
    bad_bytes = 0

    def __init__(self, sentences: Iterable[Sequence[str]], max_sentence_length: int) -> None:
        if isinstance(sentences, (str, bytes)) or not hasattr(sentences, "__iter__"):
            raise UserError("sentences must be an iterable of token lists, e.g. [['the', 'king'], ['a', 'queen']]")
        self.sentences, self.limit = sentences, max_sentence_length
        self.passes = 0

    def __iter__(self) -> Iterator[list[str]]:
        if self.passes and iter(self.sentences) is self.sentences:
            raise UserError("sentences is a one-shot iterator (a generator?) and w2v needs a second pass over it: "
                            "pass a list, or an object whose __iter__ starts over")
        self.passes += 1
        for n, sentence in enumerate(self.sentences, 1):
            if isinstance(sentence, (str, bytes)):
                raise UserError(f"sentence {n} is a string, not a list of tokens: split it first "
                                f"({str(sentence)[:40]!r})")
            try:
                tokens = list(sentence)
            except TypeError:
                raise UserError(f"sentence {n} is a {type(sentence).__name__}, not a list of tokens") from None
            bad = next((t for t in tokens if not isinstance(t, str) or not t or t != t.strip() or " " in t), None)
            if bad is not None:
                raise UserError(f"sentence {n}: token {bad!r} is not a non-empty string without spaces")
            for i in range(0, len(tokens), self.limit):
                yield tokens[i:i + self.limit]
