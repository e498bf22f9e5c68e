"""What every engine does the same way: word2vec's semantics, stated once.

The C kernel (csrc/kernel.c) and the PyTorch path (w2v.model) both follow these rules;
the C side restates them in C, and tests/test_kernel.py holds both to the same
sequential-SGD reference.

- Learning rate: linear from alpha to min_alpha over every word of every epoch
  (`learning_rate`), on a word clock shared by all threads of a process.
- Chunks: whole sentences, about `batch_words` words each (`chunk_bounds`); each chunk's
  random stream (sub-sampling, windows, negatives) comes from (seed, epoch, chunk) alone
  (`chunk_seed`), so one thread reproduces exactly and resumes exactly at a chunk.
- Sub-sampling: word2vec C's keep probability per occurrence (Dictionary.keep_probabilities).
- Noise: counts ** ns_exponent (Dictionary.noise_distribution); a negative equal to the
  target is redrawn (C: up to NEGATIVE_REDRAWS times; torch: twice, then masked, since a
  GPU cannot loop until every clash is gone without stalling).
- Direction (`skipgram_input_is_context`): skip-gram with negative sampling alone scores the
  centre's input vector against each context word; with hierarchical softmax each context
  word's input vector is scored against the centre's Huffman path (word2vec C's order).
  CBOW: the mean of the context's input vectors predicts the centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from w2v.dictionary import Dictionary, build_alias_table

NEGATIVE_REDRAWS = 32  # kernel.c's limit on redrawing a negative that equals the target
# Default epochs: enough passes for about EPOCH_WORDS words of SGD, within [MIN_EPOCHS, MAX_EPOCHS].
EPOCH_WORDS = 100_000_000
MIN_EPOCHS, MAX_EPOCHS = 5, 15


def learning_rate(done: float, total: int, alpha: float, min_alpha: float) -> float:
    """word2vec's linear decay: alpha after 0 words, min_alpha after `total` (and beyond)."""
    return max(min_alpha, alpha - (alpha - min_alpha) * done / max(1, total))


def default_epochs(corpus_words: int) -> int:
    """Epochs when --epochs is not given: word2vec's 5 on big corpora, more on small ones.

    SGD needs a number of updates rather than a number of passes: a small corpus seen 5 times
    leaves the vectors undertrained (bench/RESULTS.md, "Defaults as users run them"), and w2v's
    speed pays for the extra passes. The time this takes grows with the corpus only up to
    EPOCH_WORDS / MIN_EPOCHS words, then as word2vec's 5 epochs do.
    """
    return min(MAX_EPOCHS, max(MIN_EPOCHS, round(EPOCH_WORDS / max(1, corpus_words))))


def chunk_bounds(offsets: np.ndarray, batch_words: int,
                 read: Callable[[int, int], np.ndarray] | None = None, block: int = 1 << 20) -> np.ndarray:
    """Sentence indices cutting the corpus into chunks of about batch_words words.

    With read (Encoded.read_offsets), offsets is searched in blocks of `block` entries read
    through it: a binary search over a memory-mapped offsets.npy touches pages all over the
    file, and touched pages of a mapping count in the process's resident memory (8 bytes per
    sentence on a big corpus).
    """
    total = int(offsets[-1])
    targets = np.arange(batch_words, total, batch_words)
    if read is None:
        cuts = np.searchsorted(offsets, targets, side="left")
    else:
        cuts = np.zeros(len(targets), dtype=np.int64)
        for start in range(0, len(offsets), block):
            cuts += np.searchsorted(read(start, min(start + block, len(offsets))), targets, side="left")
    return np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]]))


def chunk_seed(seed: int, epoch: int, chunk: int) -> int:
    """The random stream of one chunk: a function of (seed, epoch, chunk) only."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + chunk) & 0xFFFFFFFFFFFFFFFF


def skipgram_input_is_context(hs: bool) -> bool:
    """Skip-gram's pair order: True when the context word's vector is the hidden vector."""
    return hs


@dataclass
class Tables:
    """The per-word tables both engines sample from, built once per run from the counts."""

    keep: np.ndarray | None  # float32 [V] keep probability, None without sub-sampling
    noise: np.ndarray  # float64 [V] noise probabilities
    alias: tuple[np.ndarray, np.ndarray]  # Walker alias table of `noise` (accept, index)
    huffman: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (points, codes, lengths) with hs

    @classmethod
    def build(cls, dictionary: Dictionary, sample: float, ns_exponent: float, hs: bool) -> "Tables":
        noise = dictionary.noise_distribution(ns_exponent)
        return cls(keep=dictionary.keep_probabilities(sample) if sample > 0 else None,
                   noise=noise, alias=build_alias_table(noise), huffman=dictionary.huffman() if hs else None)
