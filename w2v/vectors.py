"""Trained word vectors and the queries people run on them (neighbours, analogies, similarity).

Queries run on numpy: torch is imported only when a tensor is asked for (`matrix`,
`unit_matrix`, `v[word]`) or given, so a command-line query never pays for importing it
(the readers in w2v.formats and w2v.torchfile do not import it either).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, Union

import numpy as np

from w2v.errors import UserError
from w2v.tokenization import checked, tokenize

if TYPE_CHECKING:
    import torch

# A query term: a word, or a vector of the right dimension. gensim's (term, weight) pairs
# are accepted too, in most_similar.
Term = Union[str, "torch.Tensor", np.ndarray]
_TINY = np.finfo(np.float32).tiny


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")  # not imported means x cannot be a tensor
    return torch is not None and isinstance(x, torch.Tensor)


def _as_array(x: object) -> np.ndarray:
    """A numpy float32 view (or copy, when the dtype or device differ) of an array or tensor."""
    if _is_tensor(x):
        x = x.detach().cpu()  # type: ignore[union-attr]
    return np.asarray(x, dtype=np.float32)


class UnknownWordError(UserError, KeyError):
    """A word that is not in the vocabulary. Also a KeyError, so `except KeyError` works."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class Vectors:
    """Words and their vectors: `matrix[i]` is the vector of `words[i]`.

    Words are kept in the order given, which for our runs and word2vec files is most
    frequent first; `restrict_vocab=N` arguments therefore mean "the N most frequent".
    The matrix is float32 on the CPU; a numpy matrix or a CPU float32 tensor is wrapped
    without a copy, and `matrix` (torch) and `vectors` (numpy) share that memory.

    gensim's KeyedVectors names work too (`key_to_index`, `index_to_key`, `vectors`,
    `get_vector`, `similar_by_word`, `distances`, `rank`, ...) and give gensim's results;
    the README's table "gensim name -> w2v name" lists them and the few differences:

    - `v[word]` and `v[[w1, w2]]` are torch tensors (views into `matrix` for one word);
      gensim returns numpy. `get_vector` and `vectors` are numpy, as in gensim.
    - `word in v` is True for words only; gensim also says True for an int < len(v).
    - Iterating yields the words (gensim's KeyedVectors cannot be iterated).
    - Vectors given as query terms are scaled to unit length like words; gensim uses them
      as given in `most_similar` and `most_similar_cosmul`.
    - `most_similar_cosmul` adds 0.001 to the denominator (Levy and Goldberg's value;
      gensim uses 1e-6; `epsilon=1e-6` gives gensim's scores) and honours
      `restrict_vocab` (gensim 4.4 ignores it).
    - `topn=0` is an error (gensim returns []); unknown words in `n_similarity` are an
      error (gensim drops them silently).

    `tokenizer` and `lowercase` say how the training text was split (w2v.corpus.make_tokenizer),
    None when unknown: vectors from a run folder or our torch bundle know them, word2vec files
    and .npy do not. `tokenize(text)` splits new text the same way.
    """

    def __init__(self, words: Sequence[str], matrix: "torch.Tensor | np.ndarray",
                 counts: Sequence[int] | None = None, tokenizer: str | None = None,
                 lowercase: bool | None = None) -> None:
        self.tokenizer, self.lowercase = checked(tokenizer, lowercase)
        self.words: list[str] = list(words)
        self._tensor: torch.Tensor | None = None
        self._array: np.ndarray = np.empty((0, 0), np.float32)
        self._set_matrix(matrix)
        self.counts: np.ndarray | None = None if counts is None else np.asarray(counts, dtype=np.int64)
        if self.counts is not None and len(self.counts) != len(self.words):
            raise UserError(f"{len(self.words)} words but {len(self.counts)} counts")
        # Duplicate words (possible in files from elsewhere): the first, most frequent one wins.
        self._index: dict[str, int] = {}
        for i, w in enumerate(self.words):
            self._index.setdefault(w, i)
        self._unit: np.ndarray | None = None
        self._unit_tensor: torch.Tensor | None = None
        self._unit_key: tuple | None = None

    def _set_matrix(self, matrix: "torch.Tensor | np.ndarray") -> None:
        tensor = None
        if _is_tensor(matrix):
            import torch

            tensor = matrix.detach().to(device="cpu", dtype=torch.float32)  # type: ignore[union-attr]
            array = tensor.numpy()  # shares memory with the tensor
        else:
            array = np.asarray(matrix, dtype=np.float32)
        if array.ndim != 2:
            raise UserError(f"vectors must be a 2-d matrix, got shape {tuple(array.shape)}")
        if array.shape[0] != len(self.words):
            raise UserError(f"{len(self.words)} words but {array.shape[0]} vectors")
        self._array, self._tensor = array, tensor

    @property
    def matrix(self) -> "torch.Tensor":
        """The vectors as a float32 tensor [V, d], sharing memory with `vectors`."""
        if self._tensor is None:
            import torch

            self._tensor = torch.from_numpy(self._array)
        return self._tensor

    @matrix.setter
    def matrix(self, matrix: "torch.Tensor | np.ndarray") -> None:
        self._set_matrix(matrix)

    # --- container protocol -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __iter__(self) -> Iterator[str]:
        """The words, in row order (like iterating a dict's keys)."""
        return iter(self.words)

    def __getitem__(self, key: "str | int | Sequence[str | int]") -> "torch.Tensor":
        """The vector of a word (a view into `matrix`), or [n, d] rows for a list of words."""
        if isinstance(key, (str, int, np.integer)):
            return self.matrix[self.get_index(key)]
        keys = list(key)
        missing = [k for k in keys if not self.has_index_for(k)]
        if missing:
            raise self._unknown(missing)
        return self.matrix[[self.get_index(k) for k in keys]]

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words, dim={self.dim})"

    def tokenize(self, text: str) -> list[str]:
        """`text` split into tokens the way the training text was (its tokenizer and lowercasing).

        A UserError when the vectors do not know their tokenizer: give it to the constructor or
        set `tokenizer` and `lowercase`. Phrases joined by `--phrases` are not joined here.
        """
        return tokenize(text, self.tokenizer, self.lowercase)

    @property
    def dim(self) -> int:
        """Number of dimensions of each vector."""
        return int(self._array.shape[1])

    def index(self, word: str) -> int:
        """Row of `word` in `matrix`; UnknownWordError (a UserError and a KeyError) if absent."""
        try:
            return self._index[word]
        except KeyError:
            raise self._unknown([word]) from None

    def _indices(self, words: Iterable[str]) -> list[int]:
        words = list(words)
        missing = [w for w in words if w not in self._index]
        if missing:
            raise self._unknown(missing)
        return [self._index[w] for w in words]

    def _unknown(self, missing: list[Any]) -> UnknownWordError:
        """The error for words not in the vocabulary, with a hint when only their case is wrong."""
        message = f"unknown word{'s' if len(missing) > 1 else ''}: " + ", ".join(repr(w) for w in missing)
        fixes = [w.lower() for w in missing if isinstance(w, str) and w.lower() != w and w.lower() in self._index]
        if fixes:
            lowercased = all(w == w.lower() for w in self.words)  # only looked at on an error
            what = "the vocabulary is lowercased: try" if lowercased else "try"
            message += f" ({what} {', '.join(repr(w) for w in fixes)})"
        return UnknownWordError(message)

    # --- gensim's KeyedVectors names --------------------------------------------------------

    @property
    def key_to_index(self) -> dict[str, int]:
        """Word -> row (gensim's name). Read it; do not change it."""
        return self._index

    @property
    def index_to_key(self) -> list[str]:
        """Row -> word: the `words` list (gensim's name)."""
        return self.words

    @property
    def vectors(self) -> np.ndarray:
        """The matrix as a numpy float32 array [V, d], sharing memory with `matrix` (gensim's name).

        Writes through it are not noticed by the cached unit vectors; write through
        `matrix` (or assign a new matrix) instead.
        """
        return self._array

    @property
    def vector_size(self) -> int:
        """gensim's name for `dim`."""
        return self.dim

    def get_index(self, key: "str | int", default: int | None = None) -> int:
        """Row of a word, or an int row itself if in range (as gensim); `default` or an error otherwise."""
        row = self._index.get(key, -1) if isinstance(key, str) else -1
        if row >= 0:
            return row
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise self._unknown([key])

    def has_index_for(self, key: "str | int") -> bool:
        """Whether `get_index(key)` finds a row (a word, or an int row in range)."""
        return self.get_index(key, -1) >= 0

    def get_vector(self, key: "str | int", norm: bool = False) -> np.ndarray:
        """The word's vector as a read-only numpy array (unit length with norm=True), as gensim."""
        row = self.get_index(key)
        out = (self._unit_array() if norm else self._array)[row]
        out.setflags(write=False)
        return out

    def get_normed_vectors(self) -> np.ndarray:
        """All vectors scaled to unit length, numpy [V, d] (cached; do not write to it)."""
        return self._unit_array()

    # --- normalised matrix, cached --------------------------------------------------------

    def _unit_array(self) -> np.ndarray:
        # Keyed on the array object and, once a tensor exists, torch's in-place version
        # counter: `v.matrix = new`, `v.matrix.add_(...)` and writes through `v[word]`
        # all invalidate it. Writes through the numpy array itself are not seen.
        t = self._tensor
        key = (id(self._array), self._array.shape, None if t is None else (id(t), t._version))
        if self._unit is None or self._unit_key != key:
            norms = np.linalg.norm(self._array, axis=1, keepdims=True)
            self._unit = self._array / np.maximum(norms, _TINY)
            self._unit_tensor = None
            self._unit_key = key
        return self._unit

    @property
    def unit_matrix(self) -> "torch.Tensor":
        """Rows scaled to unit length (zero rows stay zero) as a tensor, computed once and cached.

        The cache follows `v.matrix = new`, `v.matrix.add_(...)` and writes through
        `v[word]`. Writes made through a numpy array that shares memory are not seen.
        """
        unit = self._unit_array()
        if self._unit_tensor is None:
            import torch

            self._unit_tensor = torch.from_numpy(unit)
        return self._unit_tensor

    def _limit(self, restrict_vocab: int | None) -> int:
        if restrict_vocab is None:
            return len(self)
        if restrict_vocab < 1:
            raise UserError(f"restrict_vocab must be at least 1, got {restrict_vocab}")
        return min(restrict_vocab, len(self))

    @staticmethod
    def _terms(terms: Term | Sequence[Term] | None) -> list[Any]:
        if terms is None:
            return []
        if isinstance(terms, (str, np.ndarray)) or _is_tensor(terms):
            return [terms]
        return list(terms)  # type: ignore[arg-type]

    def _unit_rows(self, terms: list[Term]) -> tuple[np.ndarray, list[int]]:
        """Unit vectors of the terms [n, d] and the rows of those that are words."""
        rows = self._indices([t for t in terms if isinstance(t, str)])
        unit = self._unit_array()
        out, it = [], iter(rows)
        for t in terms:
            if isinstance(t, str):
                out.append(unit[next(it)])
            else:
                v = _as_array(t).reshape(-1)
                if v.size != self.dim:
                    raise UserError(f"query vector has {v.size} dimensions, expected {self.dim}")
                out.append(v / max(float(np.linalg.norm(v)), _TINY))
        return (np.stack(out) if out else np.empty((0, self.dim), np.float32)), rows

    def _top(self, scores: np.ndarray, exclude: list[int], topn: int) -> list[tuple[str, float]]:
        if topn < 1:
            raise UserError(f"topn must be at least 1, got {topn}")
        keep = sorted({i for i in exclude if i < scores.shape[0]})
        if keep:
            scores = scores.copy()
            scores[keep] = -np.inf
        k = min(topn, scores.shape[0] - len(keep))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in best.tolist()]

    # --- queries ---------------------------------------------------------------------------

    def most_similar(self, positive: Term | Sequence[Term] = (), negative: Term | Sequence[Term] = (),
                     topn: int | None = 10, restrict_vocab: int | None = None
                     ) -> list[tuple[str, float]] | np.ndarray:
        """The `topn` words closest by cosine to the sum of the terms' unit vectors (negatives subtracted).

        Terms are words, vectors, or gensim's (term, weight) pairs. Query words are never
        returned. `restrict_vocab=N` searches only the first (most frequent) N words.
        `topn=None` returns the cosine of every (searched) word, query words included, as
        a numpy array. Same ranking and scores as gensim's `most_similar`.
        """
        pos, neg = self._terms(positive), self._terms(negative)
        if not pos and not neg:
            raise UserError("most_similar needs at least one positive or negative word")
        weights, terms = [], []
        for sign, t in [(1.0, t) for t in pos] + [(-1.0, t) for t in neg]:
            if isinstance(t, tuple) and len(t) == 2 and isinstance(t[1], (int, float)):
                t, sign = t[0], float(t[1])  # gensim's (term, weight): the weight replaces the sign
            weights.append(sign)
            terms.append(t)
        units, rows = self._unit_rows(terms)
        query = (np.asarray(weights, np.float32)[:, None] * units).sum(0)
        query /= max(float(np.linalg.norm(query)), _TINY)  # so that scores are cosines
        scores = self._unit_array()[:self._limit(restrict_vocab)] @ query
        return scores if topn is None else self._top(scores, rows, topn)

    def most_similar_cosmul(self, positive: Term | Sequence[Term] = (), negative: Term | Sequence[Term] = (),
                            topn: int | None = 10, restrict_vocab: int | None = None, epsilon: float = 0.001
                            ) -> list[tuple[str, float]] | np.ndarray:
        """3CosMul (Levy and Goldberg 2014): prod cos'(x, p) / (prod cos'(x, n) + epsilon), cos' = (1 + cos) / 2.

        epsilon is Levy and Goldberg's 0.001; gensim uses 1e-6 (pass epsilon=1e-6 for its
        scores). `topn=None` returns every score as a numpy array.
        """
        pos, neg = self._terms(positive), self._terms(negative)
        if not pos:
            raise UserError("most_similar_cosmul needs at least one positive word")
        units, rows = self._unit_rows(pos + neg)
        sims = (1 + self._unit_array()[:self._limit(restrict_vocab)] @ units.T) / 2  # [n, terms], in [0, 1]
        scores = sims[:, :len(pos)].prod(1) / (sims[:, len(pos):].prod(1) + np.float32(epsilon))
        return scores if topn is None else self._top(scores, rows, topn)

    def similar_by_word(self, word: str, topn: int | None = 10,
                        restrict_vocab: int | None = None) -> list[tuple[str, float]] | np.ndarray:
        """gensim's name for `most_similar(word)`."""
        return self.most_similar([word], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word

    def similar_by_vector(self, vector: "np.ndarray | torch.Tensor", topn: int | None = 10,
                          restrict_vocab: int | None = None) -> list[tuple[str, float]] | np.ndarray:
        """The words closest by cosine to a vector (no word is left out)."""
        return self.most_similar([vector], topn=topn, restrict_vocab=restrict_vocab)

    def analogy(self, a: str, b: str, c: str, topn: int = 1, method: str = "3cosadd",
                restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """a is to b as c is to ?: `analogy("man", "king", "woman")` puts "queen" first.

        method "3cosadd" ranks by cos(x, b) - cos(x, a) + cos(x, c); "3cosmul" by
        cos'(x, b) * cos'(x, c) / (cos'(x, a) + 0.001). a, b and c are never returned.
        """
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)  # type: ignore[return-value]
        if method == "3cosmul":
            return self.most_similar_cosmul([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)  # type: ignore[return-value]
        raise UserError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        i, j = self._indices([w1, w2])
        unit = self._unit_array()
        return float(unit[i] @ unit[j])

    def distance(self, w1: str, w2: str) -> float:
        """Cosine distance, 1 - similarity."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector: "str | np.ndarray | torch.Tensor",
                  other_words: Sequence[str] = ()) -> np.ndarray:
        """Cosine distances (1 - cos) from a word or vector to `other_words` (all words if none)."""
        if isinstance(word_or_vector, str):
            query = self._unit_array()[self.index(word_or_vector)]
        else:
            query, _ = self._unit_rows([word_or_vector])
            query = query[0]
        unit = self._unit_array()
        others = unit[self._indices(other_words)] if len(other_words) else unit
        return 1 - others @ query

    def n_similarity(self, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        """Cosine similarity of the means of two sets of words' (raw) vectors, as gensim."""
        if not len(ws1) or not len(ws2):
            raise UserError("n_similarity needs at least one word in each set")
        m1 = self._array[self._indices(ws1)].mean(0)
        m2 = self._array[self._indices(ws2)].mean(0)
        return float(m1 @ m2 / max(float(np.linalg.norm(m1) * np.linalg.norm(m2)), _TINY))

    def closer_than(self, w1: str, w2: str) -> list[str]:
        """The words closer to w1 than w2 is, in row order (w1 itself left out)."""
        d = self.distances(w1)
        i, j = self._indices([w1, w2])
        return [self.words[k] for k in np.flatnonzero(d < d[j]).tolist() if k != i]

    words_closer_than = closer_than

    def rank(self, w1: str, w2: str) -> int:
        """Where w2 comes among w1's neighbours: 1 for the nearest."""
        return len(self.closer_than(w1, w2)) + 1

    def most_similar_to_given(self, word: str, candidates: Sequence[str]) -> str:
        """The candidate closest to `word` by cosine."""
        return candidates[int(np.argmax([self.similarity(word, c) for c in candidates]))]

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word furthest (by cosine) from the mean of the words' unit vectors.

        Unknown words are left out with a warning, as gensim does; an error only if no word is known.
        """
        words = [words] if isinstance(words, str) else list(words)
        known = [w for w in words if w in self._index]
        if len(known) < len(words):
            unknown = ", ".join(repr(w) for w in words if w not in self._index)
            warnings.warn(f"doesnt_match: left out words not in the vocabulary: {unknown}", stacklevel=2)
        if not known:
            raise UserError("doesnt_match: none of the words is in the vocabulary")
        units = self._unit_array()[self._indices(known)]
        return known[int(np.argmin(units @ units.mean(0)))]

    # --- construction and saving -----------------------------------------------------------

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, which: str = "in") -> "Vectors":
        """Vectors from a training run folder (vocab.tsv + model.pt).

        which: "in" (input vectors, the usual word vectors), "out" (negative-sampling
        output vectors) or "sum" (in + out, the w+c of Levy, Goldberg and Dagan 2015).
        """
        from w2v.runfolder import RunFolder

        folder = RunFolder(run_dir)
        return cls(*folder.read_vectors(which=which), *folder.tokenization())

    def normalized(self) -> "Vectors":
        """A copy whose vectors have unit length."""
        return Vectors(self.words, self._unit_array().copy(), self.counts, self.tokenizer, self.lowercase)

    def head(self, n: int) -> "Vectors":
        """The first (most frequent) n words (sharing memory with these)."""
        matrix = self._tensor if self._tensor is not None else self._array
        return Vectors(self.words[:n], matrix[:n], None if self.counts is None else self.counts[:n],
                       self.tokenizer, self.lowercase)

    def save(self, path: str | os.PathLike, format: str = "torch") -> None:
        """Write in one of w2v.formats.FORMATS (text, binary, torch, npy, projector)."""
        from w2v.formats import save
        save(self, path, format=format)


def load(path: str | os.PathLike, limit: int | None = None, which: str = "in",
         binary: bool | None = None) -> Vectors:
    """Read vectors from a run folder, our .pt bundle, .npy + .vocab.tsv, or a word2vec file.

    word2vec text and binary are detected from the content (header line optional for
    text), gzip'd too (a name ending in .gz); `binary=` forces one. `limit` keeps the first
    (most frequent) N words; `which` (in | out | sum) applies to run folders only. Vectors from
    a run folder or a torch bundle carry the tokenizer and lowercasing of their training
    (`Vectors.tokenize`).
    """
    from w2v.formats import load as _load
    from w2v.formats import read_tokenization

    table = _load(path, limit=limit, which=which, binary=binary)
    return Vectors(*table, *read_tokenization(path))
