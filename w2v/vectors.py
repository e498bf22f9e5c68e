"""Trained word vectors and the queries people run on them (neighbours, analogies, similarity)."""

from __future__ import annotations

import os
from typing import Iterable, Sequence, Union

import numpy as np
import torch

from w2v.errors import UserError

# A query term: a word, or a vector of the right dimension.
Term = Union[str, torch.Tensor, np.ndarray]


class UnknownWordError(UserError, KeyError):
    """A word that is not in the vocabulary. Also a KeyError, so `except KeyError` works."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class Vectors:
    """Words and their vectors: `matrix[i]` is the vector of `words[i]`.

    Words are kept in the order given, which for our runs and word2vec files is most
    frequent first; `restrict_vocab=N` arguments therefore mean "the N most frequent".
    The matrix is float32 on the CPU. A numpy matrix is wrapped without a copy.
    """

    def __init__(self, words: Sequence[str], matrix: torch.Tensor | np.ndarray,
                 counts: Sequence[int] | None = None) -> None:
        m = torch.as_tensor(matrix).detach().to(device="cpu", dtype=torch.float32)
        if m.dim() != 2:
            raise UserError(f"vectors must be a 2-d matrix, got shape {tuple(m.shape)}")
        if m.shape[0] != len(words):
            raise UserError(f"{len(words)} words but {m.shape[0]} vectors")
        self.words: list[str] = list(words)
        self.matrix = m
        self.counts: np.ndarray | None = None if counts is None else np.asarray(counts, dtype=np.int64)
        if self.counts is not None and len(self.counts) != len(self.words):
            raise UserError(f"{len(self.words)} words but {len(self.counts)} counts")
        # Duplicate words (possible in files from elsewhere): the first, most frequent one wins.
        self._index: dict[str, int] = {}
        for i, w in enumerate(self.words):
            self._index.setdefault(w, i)
        self._unit: torch.Tensor | None = None
        self._unit_key: tuple | None = None

    # --- container protocol -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __getitem__(self, word: str) -> torch.Tensor:
        """The vector of `word` (a view into `matrix`)."""
        return self.matrix[self.index(word)]

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words, dim={self.dim})"

    @property
    def dim(self) -> int:
        """Number of dimensions of each vector."""
        return int(self.matrix.shape[1])

    def index(self, word: str) -> int:
        """Row of `word` in `matrix`; UnknownWordError (a UserError and a KeyError) if absent."""
        try:
            return self._index[word]
        except KeyError:
            raise UnknownWordError(f"unknown word: {word!r}") from None

    def _indices(self, words: Iterable[str]) -> list[int]:
        words = list(words)
        missing = [w for w in words if w not in self._index]
        if missing:
            raise UnknownWordError(f"unknown word{'s' if len(missing) > 1 else ''}: "
                                   + ", ".join(repr(w) for w in missing))
        return [self._index[w] for w in words]

    # --- normalised matrix, cached --------------------------------------------------------

    @property
    def unit_matrix(self) -> torch.Tensor:
        """Rows scaled to unit length (zero rows stay zero), computed once and cached.

        The cache is keyed on the matrix object and torch's in-place version counter, so
        both `v.matrix = new` and `v.matrix.add_(...)` (or writing through `v[word]`)
        invalidate it. Writes made through a numpy array that shares memory are not seen.
        """
        m = self.matrix
        key = (id(m), m._version, m.data_ptr(), tuple(m.shape))
        if self._unit is None or self._unit_key != key:
            norms = torch.linalg.vector_norm(m, dim=1, keepdim=True)
            self._unit = m / norms.clamp_min(torch.finfo(torch.float32).tiny)
            self._unit_key = key
        return self._unit

    def _limit(self, restrict_vocab: int | None) -> int:
        if restrict_vocab is None:
            return len(self)
        if restrict_vocab < 1:
            raise UserError(f"restrict_vocab must be at least 1, got {restrict_vocab}")
        return min(restrict_vocab, len(self))

    def _terms(self, terms: Term | Sequence[Term]) -> list[Term]:
        if isinstance(terms, (str, torch.Tensor, np.ndarray)):
            return [terms]
        return list(terms)

    def _unit_rows(self, terms: list[Term]) -> tuple[torch.Tensor, list[int]]:
        """Unit vectors of the terms [n, d] and the rows of those that are words."""
        words = [t for t in terms if isinstance(t, str)]
        rows = self._indices(words)
        unit = self.unit_matrix
        out, it = [], iter(rows)
        for t in terms:
            if isinstance(t, str):
                out.append(unit[next(it)])
            else:
                v = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
                if v.numel() != self.dim:
                    raise UserError(f"query vector has {v.numel()} dimensions, expected {self.dim}")
                out.append(v / v.norm().clamp_min(torch.finfo(torch.float32).tiny))
        return torch.stack(out) if out else torch.empty(0, self.dim), rows

    def _top(self, scores: torch.Tensor, exclude: list[int], topn: int) -> list[tuple[str, float]]:
        if topn < 1:
            raise UserError(f"topn must be at least 1, got {topn}")
        scores = scores.clone() if exclude else scores
        keep = [i for i in exclude if i < scores.shape[0]]
        if keep:
            scores[keep] = float("-inf")
        k = min(topn, scores.shape[0] - len(set(keep)))
        if k <= 0:
            return []
        values, idx = torch.topk(scores, k)
        return [(self.words[i], float(s)) for i, s in zip(idx.tolist(), values.tolist())]

    # --- queries ---------------------------------------------------------------------------

    def most_similar(self, positive: Term | Sequence[Term] = (), negative: Term | Sequence[Term] = (),
                     topn: int = 10, restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """The `topn` words closest by cosine to mean(positive) - mean(negative) of unit vectors.

        Terms are words or vectors. Query words are never returned. `restrict_vocab=N`
        searches only the first (most frequent) N words. Same ranking as gensim's
        `most_similar`.
        """
        pos, neg = self._terms(positive), self._terms(negative)
        if not pos and not neg:
            raise UserError("most_similar needs at least one positive or negative word")
        units, rows = self._unit_rows(pos + neg)
        sign = torch.tensor([1.0] * len(pos) + [-1.0] * len(neg))
        query = (sign[:, None] * units).sum(0)
        query = query / query.norm().clamp_min(torch.finfo(torch.float32).tiny)  # scores are cosines
        n = self._limit(restrict_vocab)
        return self._top(self.unit_matrix[:n] @ query, rows, topn)

    def most_similar_cosmul(self, positive: Term | Sequence[Term] = (), negative: Term | Sequence[Term] = (),
                            topn: int = 10, restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """3CosMul (Levy and Goldberg 2014): prod cos'(x, p) / (prod cos'(x, n) + 0.001), cos' = (1 + cos) / 2."""
        pos, neg = self._terms(positive), self._terms(negative)
        if not pos:
            raise UserError("most_similar_cosmul needs at least one positive word")
        units, rows = self._unit_rows(pos + neg)
        n = self._limit(restrict_vocab)
        sims = (1 + self.unit_matrix[:n] @ units.T) / 2  # [n, terms], shifted into [0, 1]
        scores = sims[:, :len(pos)].prod(1) / (sims[:, len(pos):].prod(1) + 0.001)
        return self._top(scores, rows, topn)

    def analogy(self, a: str, b: str, c: str, topn: int = 1, method: str = "3cosadd",
                restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """a is to b as c is to ?: `analogy("man", "king", "woman")` puts "queen" first.

        method "3cosadd" ranks by cos(x, b) - cos(x, a) + cos(x, c); "3cosmul" by
        cos'(x, b) * cos'(x, c) / (cos'(x, a) + 0.001). a, b and c are never returned.
        """
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)
        if method == "3cosmul":
            return self.most_similar_cosmul([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)
        raise UserError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        i, j = self._indices([w1, w2])
        unit = self.unit_matrix
        return float(unit[i] @ unit[j])

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word furthest (by cosine) from the mean of the words' unit vectors."""
        words = list(words)
        if len(words) < 2:
            raise UserError("doesnt_match needs at least two words")
        units = self.unit_matrix[self._indices(words)]
        mean = units.mean(0)
        return words[int(torch.argmin(units @ mean))]

    # --- construction and saving -----------------------------------------------------------

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, which: str = "in") -> "Vectors":
        """Vectors from a training run folder (vocab.tsv + model.pt).

        which: "in" (input vectors, the usual word vectors), "out" (negative-sampling
        output vectors) or "sum" (in + out, the w+c of Levy, Goldberg and Dagan 2015).
        """
        from w2v.runfolder import RunFolder

        return cls(*RunFolder(run_dir).read_vectors(which=which))

    def normalized(self) -> "Vectors":
        """A copy whose vectors have unit length."""
        return Vectors(self.words, self.unit_matrix.clone(), self.counts)

    def head(self, n: int) -> "Vectors":
        """The first (most frequent) n words."""
        return Vectors(self.words[:n], self.matrix[:n], None if self.counts is None else self.counts[:n])

    def save(self, path: str | os.PathLike, format: str = "torch") -> None:
        """Write in one of w2v.formats.FORMATS (text, binary, torch, npy, projector)."""
        from w2v.formats import save
        save(self, path, format=format)


def load(path: str | os.PathLike, limit: int | None = None, which: str = "in",
         binary: bool | None = None) -> Vectors:
    """Read vectors from a run folder, our .pt bundle, .npy + .vocab.tsv, or a word2vec file.

    word2vec text and binary are detected from the content (header line optional for
    text); `binary=` forces one. `limit` keeps the first (most frequent) N words;
    `which` (in | out | sum) applies to run folders only.
    """
    from w2v.formats import load as _load

    return Vectors(*_load(path, limit=limit, which=which, binary=binary))
