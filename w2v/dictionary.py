"""The dictionary: vocabulary with counts, sub-sampling, the noise table and the Huffman tree.

Everything here is derived from the word counts alone, so a run folder's `vocab.tsv`
is enough to rebuild it exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from w2v.errors import UserError
from w2v.fileio import atomic_write


@dataclass
class Dictionary:
    """Words in index order (descending count, ties by first appearance) and their counts."""

    words: list[str]
    counts: np.ndarray  # int64, same order as words
    _index: dict[str, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        """word -> id, built on first use."""
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.words)}
        return self._index

    @property
    def total(self) -> int:
        """Number of corpus tokens covered by the vocabulary."""
        return int(self.counts.sum())

    def save(self, path: str | os.PathLike) -> None:
        """Write vocab.tsv: `word<TAB>count` lines, most frequent first."""
        write_vocab_tsv(path, self.words, self.counts)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dictionary":
        """Read a vocab.tsv written by `save`; every line must have a count."""
        words, counts = read_vocab_tsv(path, with_counts=True)
        return cls(words, np.asarray(counts, dtype=np.int64))

    def keep_probabilities(self, sample: float) -> np.ndarray:
        """word2vec C's probability of keeping each occurrence: (sqrt(f/(sT)) + 1) * sT/f.

        `sample` is s, T the number of tokens; 0 disables sub-sampling (all ones).
        """
        if sample <= 0:
            return np.ones(len(self), dtype=np.float32)
        threshold = sample * self.total
        c = self.counts.astype(np.float64)
        keep = (np.sqrt(c / threshold) + 1.0) * threshold / c
        return np.minimum(keep, 1.0).astype(np.float32)

    def noise_distribution(self, exponent: float = 0.75) -> np.ndarray:
        """Probabilities of drawing each word as a negative: counts^exponent, normalised."""
        p = self.counts.astype(np.float64) ** exponent
        return p / p.sum()

    def huffman(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """word2vec C's Huffman tree over the counts, for hierarchical softmax.

        Returns (points [V, L] int32, codes [V, L] uint8, lengths [V] int32): for word w,
        points[w, :lengths[w]] are the inner nodes (rows of the output matrix, 0..V-2) from
        the root down and codes[w, :lengths[w]] the branch taken at each (word2vec's bits).
        """
        return huffman_tree(self.counts)


MAX_LINE_BYTES = 1 << 20  # a vocab.tsv line: a word (corpus words are cut at 1 MiB), a tab, a count


def vocab_tsv_bytes(words: list[str], counts: np.ndarray | None) -> bytes:
    """`word<TAB>count` per line (or `word` alone without counts), UTF-8."""
    if counts is None:
        return "".join(w + "\n" for w in words).encode()
    return "".join(f"{w}\t{c}\n" for w, c in zip(words, np.asarray(counts).tolist())).encode()


def write_vocab_tsv(path: str | os.PathLike, words: list[str], counts: np.ndarray | None) -> None:
    """vocab_tsv_bytes, written atomically."""
    with atomic_write(path) as f:
        f.write(vocab_tsv_bytes(words, counts))


def read_vocab_tsv(path: str | os.PathLike, limit: int | None = None,
                   with_counts: bool = True) -> tuple[list[str], list[int] | None]:
    """The words (the first `limit`) and counts of a vocab.tsv; one-line UserErrors naming the line.

    with_counts=False also accepts lines of a word alone (then counts is None).
    """
    words: list[str] = []
    counts: list[int] = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if limit is not None and len(words) >= limit:
                break
            if len(raw) > MAX_LINE_BYTES:  # no word is this long: the file is not a vocabulary
                raise UserError(f"{path}, line {lineno}: longer than {MAX_LINE_BYTES:,} bytes")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{path}, line {lineno}: not UTF-8 text") from None
            parts = line.rstrip("\n").split("\t")
            if not parts[0] or len(parts) > 2 or (with_counts and len(parts) != 2):
                raise UserError(f"{path}, line {lineno}: expected word<TAB>count")
            words.append(parts[0])
            if len(parts) == 2:
                if not (parts[1].isascii() and parts[1].isdigit()):
                    raise UserError(f"{path}, line {lineno}: count {parts[1][:40]!r} is not an integer")
                counts.append(int(parts[1]))
    if counts and len(counts) != len(words):
        raise UserError(f"{path}: some lines have counts and some do not")
    return words, counts or None


def build_alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table: O(1) exact draws from `probs` with two arrays of size V.

    Used instead of word2vec C's 1e8-entry table: exact, and ~1 MB instead of 400 MB.
    Returns (accept probability float32, alias index int32).
    """
    n = len(probs)
    scaled = np.asarray(probs, dtype=np.float64) * n
    accept = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Leftovers are 1 up to rounding error: always accept them.
    return accept.astype(np.float32), alias.astype(np.int32)


def huffman_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huffman codes by word2vec C's two-pointer construction (counts sorted descending)."""
    v = len(counts)
    if v < 2:
        raise UserError("hierarchical softmax needs at least 2 words in the vocabulary")
    count = np.empty(2 * v, dtype=np.int64)
    count[:v] = counts
    count[v:] = np.iinfo(np.int64).max // 4
    binary = np.zeros(2 * v, dtype=np.uint8)
    parent = np.zeros(2 * v, dtype=np.int64)
    pos1, pos2 = v - 1, v
    cnt = count.tolist()  # plain ints: this loop runs V times
    for a in range(v - 1):
        picks = []
        for _ in range(2):
            if pos1 >= 0 and cnt[pos1] < cnt[pos2]:
                picks.append(pos1)
                pos1 -= 1
            else:
                picks.append(pos2)
                pos2 += 1
        m1, m2 = picks
        cnt[v + a] = cnt[m1] + cnt[m2]
        parent[m1] = v + a
        parent[m2] = v + a
        binary[m2] = 1
    # All words' paths at once, one tree level per step from the leaves up (numpy arrays
    # rather than a list per word, which cost far more memory: bench/RESULTS.md).
    root = 2 * v - 2
    node = np.arange(v, dtype=np.int64)
    lengths = np.zeros(v, dtype=np.int32)
    up_points, up_codes = [], []
    while (active := node != root).any():
        lengths += active
        up_codes.append(np.where(active, binary[node], 0).astype(np.uint8))
        node = np.where(active, parent[node], root)
        up_points.append(np.where(active, node - v, 0).astype(np.int32))
    width = len(up_codes)
    up_p, up_c = np.stack(up_points, 1), np.stack(up_codes, 1)  # [v, width], leaf end first
    # Root first: position i of a path is position length - 1 - i of the leaf-first one.
    back = lengths[:, None] - 1 - np.arange(width)[None, :]
    inside = back >= 0
    back = np.maximum(back, 0)
    points_arr = np.where(inside, np.take_along_axis(up_p, back, 1), 0).astype(np.int32)
    codes_arr = np.where(inside, np.take_along_axis(up_c, back, 1), 0).astype(np.uint8)
    return points_arr, codes_arr, lengths
