"""Trained vectors as a ready ``nn.Embedding`` for a downstream PyTorch model.

The layer's rows are the reserved rows first (``<pad>`` at 0, then ``<unk>``), then the
vectors in the trainer's order: the word with index ``i`` in the vectors (``vocab.tsv``
line ``i``) is row ``i + offset``, where ``offset`` is the number of reserved rows
(2 with the defaults). A model therefore looks a word up by the trainer's numbering
shifted by a constant, and ``encode`` does that mapping from tokens. Built with a task's
own ``vocabulary``, the rows after the reserved ones are that vocabulary's words instead.

The ``<unk>`` row is the mean of the known vectors, not zeros: zeros would make an
unknown word indistinguishable from padding and carry no signal, while the mean is the
least surprising "some word" for a model that was never shown this one (a common choice,
e.g. in torchtext recipes and the fastText/GloVe transfer literature). The ``<pad>`` row
is zeros and is the layer's ``padding_idx``, so it stays zeros even when fine-tuning.

Text is split as training split it: the embedding keeps the vectors' ``tokenizer`` and
``lowercase`` (w2v.tokenization). ``encode("a fine film")`` tokenizes the string;
``encode(["King"])`` looks the tokens up, lowercased first when training lowercased its text
(a lowercased vocabulary holds "king" and never "King").

An empty sentence in ``encode_batch`` becomes one ``<pad>`` step with length 1: packed
sequences (``pack_padded_sequence`` refuses length 0) and a gather at ``lengths - 1`` then
work unchanged, and the model reads the all-zeros padding vector, the same "nothing" for
every empty sentence. Without a ``<pad>`` row an empty sentence is an error.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np
import torch
from torch import nn

from w2v.embedding_file import read_embedding, write_embedding
from w2v.errors import UserError
from w2v.tokenization import checked, lookup_form, tokenize
from w2v.vectors import UnknownWordError

if TYPE_CHECKING:
    from w2v.vectors import Vectors

PAD = "<pad>"
UNK = "<unk>"
# One sentence for encode: raw text (tokenized as training did) or a list of tokens.
Sentence = Union[str, Sequence[str]]


class PaddingError(UserError, ValueError):
    """Sequences that need a ``<pad>`` row from an embedding built without one (also a ValueError)."""


class PretrainedEmbedding:
    """An ``nn.Embedding`` over trained vectors plus the token <-> row mapping.

    Attributes:
        layer: the embedding layer (``[len(itos), dim]``); put it in your model.
        itos: row -> token (reserved rows are named ``<pad>`` and ``<unk>``).
        stoi: word -> row, for the vectors' words only (reserved names are not keys, so a
            vocabulary that really contains the string ``"<unk>"`` keeps its own row).
        pad_index: row of the zero padding vector, or None when built with padding=False.
        unk_index: row used for out-of-vocabulary tokens, or None when built with unknown=False.
        offset: number of reserved rows; vectors word ``i`` is row ``i + offset``.
        tokenizer, lowercase: how training split its text (None: unknown; see ``tokenize``).
        missing: words of a task ``vocabulary`` that had no vector and got random rows.
    """

    def __init__(self, layer: nn.Embedding, itos: list[str], stoi: dict[str, int],
                 pad_index: int | None, unk_index: int | None, offset: int,
                 tokenizer: str | None = None, lowercase: bool | None = None,
                 missing: Sequence[str] = ()) -> None:
        self.layer = layer
        self.itos = itos
        self.stoi = stoi
        self.pad_index = pad_index
        self.unk_index = unk_index
        self.offset = offset
        self.tokenizer, self.lowercase = checked(tokenizer, lowercase)
        self.missing = list(missing)

    @property
    def dim(self) -> int:
        """Width of each row."""
        return self.layer.embedding_dim

    def __len__(self) -> int:
        return self.layer.num_embeddings

    def __repr__(self) -> str:
        frozen = not self.layer.weight.requires_grad
        return (f"PretrainedEmbedding(rows={len(self)}, dim={self.dim}, offset={self.offset}, "
                f"pad_index={self.pad_index}, unk_index={self.unk_index}, frozen={frozen}, "
                f"tokenizer={self.tokenizer!r}, lowercase={self.lowercase})")

    def tokenize(self, text: str) -> list[str]:
        """``text`` split into tokens as the training text was; a UserError when the tokenizer is unknown."""
        return tokenize(text, self.tokenizer, self.lowercase)

    def _tokens(self, sentence: Sentence) -> list[str]:
        """The tokens of raw text, or the given tokens in the form the vocabulary holds."""
        if isinstance(sentence, str):
            return self.tokenize(sentence)
        tokens = list(sentence)
        if not all(isinstance(t, str) for t in tokens):
            raise UserError("encode takes a string of text or a list of tokens (strings); "
                            "for several sentences use encode_batch")
        return [lookup_form(t, self.lowercase) for t in tokens] if self.lowercase else tokens

    def _rows(self, tokens: list[str]) -> list[int]:
        stoi, unk = self.stoi, self.unk_index
        if unk is not None:
            return [stoi.get(t, unk) for t in tokens]
        unknown = [t for t in tokens if t not in stoi]
        if unknown:
            raise UnknownWordError(f"token {unknown[0]!r} is not in the vocabulary and this embedding has no "
                                   "<unk> row (built with unknown=False)")
        return [stoi[t] for t in tokens]

    def encode(self, sentence: Sentence) -> torch.Tensor:
        """Rows of one sentence as a 1-D LongTensor; unknown tokens map to ``unk_index``.

        A string is tokenized as training did (``tokenize``); a list of tokens is looked up
        as given, lowercased first when the vectors were trained lowercased. Raises
        UnknownWordError (a UserError and a KeyError) for an unknown token when the
        embedding has no ``<unk>`` row. An empty sentence gives an empty tensor.
        """
        return torch.tensor(self._rows(self._tokens(sentence)), dtype=torch.long)

    def encode_batch(self, batch: Sequence[Sentence],
                     max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode sentences into a right-padded ``[B, T]`` LongTensor and their lengths ``[B]``.

        Each sentence is raw text or a list of tokens, as ``encode`` takes. Sequences longer
        than ``max_len`` keep their first ``max_len`` tokens (slice the lists yourself to
        keep another part). ``T`` is the longest kept length, and positions past a
        sequence's length hold ``pad_index``. A model that reads one output per sequence
        must take it at ``lengths - 1``, not at the last column. An empty sentence is one
        ``<pad>`` step of length 1 (see the module's docstring).
        """
        if isinstance(batch, str):
            raise UserError("encode_batch takes a list of sentences (texts or token lists); for one text use encode")
        if max_len is not None and max_len < 1:
            raise UserError(f"max_len must be at least 1, got {max_len}")
        encoded = [self._rows(self._tokens(sentence)[:max_len]) for sentence in batch]
        if any(not rows for rows in encoded):
            if self.pad_index is None:
                raise PaddingError("an empty sentence needs a padding row to stand for it; "
                                   "build the embedding with padding=True")
            encoded = [rows or [self.pad_index] for rows in encoded]
        lengths = torch.tensor([len(rows) for rows in encoded], dtype=torch.long)
        width = int(lengths.max()) if len(encoded) else 0
        if self.pad_index is None:
            if bool((lengths != width).any()):
                raise PaddingError("sequences of different lengths need a padding row; "
                                   "build the embedding with padding=True")
            fill = 0  # never used: every sequence fills the whole width
        else:
            fill = self.pad_index
        out = torch.full((len(encoded), width), fill, dtype=torch.long)
        for row, rows in enumerate(encoded):
            out[row, :len(rows)] = torch.tensor(rows, dtype=torch.long)
        return out, lengths

    def save(self, path: str | os.PathLike) -> None:
        """Write the layer's current weights (fine-tuned ones included) and everything ``encode``
        needs to one file, atomically; ``PretrainedEmbedding.load`` reads it back without pickle."""
        write_embedding(path, weight=self.layer.weight, itos=self.itos, pad_index=self.pad_index,
                        unk_index=self.unk_index, offset=self.offset, tokenizer=self.tokenizer,
                        lowercase=self.lowercase, frozen=not self.layer.weight.requires_grad,
                        missing=self.missing)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PretrainedEmbedding":
        """An embedding saved by ``save``: the same weights, rows, tokenizer and frozen flag."""
        saved = read_embedding(path)
        layer = nn.Embedding.from_pretrained(saved["weight"], freeze=saved["frozen"], padding_idx=saved["pad_index"])
        return cls(layer, saved["itos"], _stoi(saved["itos"], saved["offset"]), saved["pad_index"],
                   saved["unk_index"], saved["offset"], saved["tokenizer"], saved["lowercase"], saved["missing"])


def load_embedding(path: str | os.PathLike) -> PretrainedEmbedding:
    """``PretrainedEmbedding.load(path)``: an embedding written by ``PretrainedEmbedding.save``."""
    return PretrainedEmbedding.load(path)


def _stoi(itos: list[str], offset: int) -> dict[str, int]:
    """word -> row for the rows after the reserved ones; a repeated word keeps its first row."""
    stoi: dict[str, int] = {}
    for row in range(offset, len(itos)):
        stoi.setdefault(itos[row], row)
    return stoi


def _tokenization(vectors: object, tokenizer: str | None, lowercase: bool | None) -> tuple[str | None, bool | None]:
    """The vectors' own tokenizer and lowercasing, with the values given in their place."""
    own = {"tokenizer": getattr(vectors, "tokenizer", None), "lowercase": getattr(vectors, "lowercase", None)}
    given = {"tokenizer": tokenizer, "lowercase": lowercase}
    for name, value in given.items():
        if value is not None and own[name] is not None and value != own[name]:
            warnings.warn(f"{name}={value!r} overrides the {own[name]!r} the vectors were trained with", stacklevel=4)
    return checked(*[given[name] if given[name] is not None else own[name] for name in own])


def _task_rows(vectors: "Vectors", matrix: torch.Tensor, vocabulary: Sequence[str], lowercase: bool | None,
               seed: int) -> tuple[list[str], torch.Tensor, list[str]]:
    """The task's words (in the form the vectors hold, first of each kept), their rows, and
    the words without a vector, whose rows are random.

    A random row is drawn from a normal with the vectors' per-dimension mean and standard
    deviation: trained vectors are neither centred nor of unit scale, so this places a new
    word where trained words lie and at their scale (an N(0, 1) row would stand out by size).
    """
    if isinstance(vocabulary, str) or not all(isinstance(w, str) for w in vocabulary):
        raise UserError("vocabulary must be a list of words (strings)")
    words = list(dict.fromkeys(lookup_form(w, lowercase) for w in vocabulary))
    if not words:
        raise UserError("vocabulary is empty: give the task's words")
    if matrix.shape[0] == 0:
        raise UserError("the vectors are empty: there is nothing to copy or to scale random rows by")
    index = {w: i for i, w in reversed(list(enumerate(vectors.words)))}
    missing = [w for w in words if w not in index]
    rows = torch.empty(len(words), matrix.shape[1])
    found = [(i, index[w]) for i, w in enumerate(words) if w in index]
    if found:
        at, source = zip(*found)
        rows[list(at)] = matrix[list(source)]
    if missing:
        gen = torch.Generator().manual_seed(seed)
        mean, std = matrix.mean(dim=0), matrix.std(dim=0, correction=0)
        rows[[i for i, w in enumerate(words) if w not in index]] = \
            mean + std * torch.randn(len(missing), matrix.shape[1], generator=gen)
        warnings.warn(f"{len(missing):,} of {len(words):,} vocabulary words have no trained vector and got "
                      "random rows (listed in .missing)", stacklevel=4)
    return words, rows, missing


def embedding(vectors: Vectors | str | os.PathLike, freeze: bool = True, padding: bool = True,
              unknown: bool = True, limit: int | None = None, *, vocabulary: Sequence[str] | None = None,
              seed: int = 0, tokenizer: str | None = None, lowercase: bool | None = None) -> PretrainedEmbedding:
    """Build an ``nn.Embedding`` (via ``nn.Embedding.from_pretrained``) from trained vectors.

    Args:
        vectors: a ``w2v.vectors.Vectors``, or a path that ``w2v.vectors.load`` reads
            (a run folder, a ``.pt`` bundle, a word2vec text or binary file).
        freeze: keep the weights fixed (no gradient); False fine-tunes them with the model.
        padding: reserve row 0 as an all-zeros padding row (the layer's ``padding_idx``).
        unknown: reserve a row, set to the mean of the kept vectors, for unknown tokens.
        limit: keep only the first ``limit`` words (the most frequent); the rest are unknown.
        vocabulary: the task's own words instead: rows are the reserved rows, then these
            words in the given order (a repeated word keeps its first place; with lowercased
            vectors, words are lowercased first, so "King" and "king" are one row). A word
            with a vector gets a copy of it; one without gets a random row (``seed``) and is
            listed in ``missing``, with one warning giving the count. ``<unk>`` is then the
            mean of all the vectors.
        seed: seeds the random rows of ``vocabulary`` words without a vector.
        tokenizer, lowercase: how the training text was split, for vectors that do not
            record it (word2vec and .npy files); they override what the vectors record.

    The weights are a copy: fine-tuning never changes ``vectors.matrix``.
    """
    if isinstance(vectors, (str, os.PathLike)):
        from w2v.vectors import load  # imported here: only this form needs the loaders

        vectors = load(vectors)
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    if limit is not None and vocabulary is not None:
        raise UserError("give limit or vocabulary, not both")
    tokenizer, lowercase = _tokenization(vectors, tokenizer, lowercase)
    matrix = vectors.matrix
    if isinstance(matrix, np.ndarray):
        matrix = torch.from_numpy(matrix)
    matrix = matrix.detach().to(torch.float32)
    missing: list[str] = []
    if vocabulary is not None:
        every = matrix
        words, matrix, missing = _task_rows(vectors, matrix, vocabulary, lowercase, seed)
    else:
        words = list(vectors.words)[:limit]
        matrix = every = matrix[:len(words)]
    if not words or matrix.shape[0] != len(words):
        raise UserError(f"vectors have {len(words)} words but {matrix.shape[0]} rows to use")

    reserved: list[tuple[str, torch.Tensor]] = []
    if padding:
        reserved.append((PAD, torch.zeros(1, matrix.shape[1])))
    if unknown:
        reserved.append((UNK, every.mean(dim=0, keepdim=True)))
    offset = len(reserved)
    # cat copies even when nothing is reserved (clone covers that case), so the layer
    # never shares storage with the caller's vectors.
    weights = torch.cat([r for _, r in reserved] + [matrix]) if reserved else matrix.clone()
    layer = nn.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=0 if padding else None)
    itos = [name for name, _ in reserved] + words
    return PretrainedEmbedding(layer, itos, _stoi(itos, offset),
                               pad_index=0 if padding else None,
                               unk_index=offset - 1 if unknown else None,
                               offset=offset, tokenizer=tokenizer, lowercase=lowercase, missing=missing)
