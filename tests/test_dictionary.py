"""The dictionary: counts and order, pruning, sub-sampling, noise table, Huffman codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from w2v import encode
from w2v.dictionary import Dictionary, build_alias_table, huffman_tree
from w2v.errors import UserError

TEXT = [
    "the cat sat on the mat".split(),
    "the dog sat on the log".split(),
    "a cat and a dog".split(),
]


def test_counts_and_order_descending_with_ties_by_first_appearance(tmp_path):
    data = encode.build(TEXT, tmp_path, min_count=1)
    d = data.dictionary
    assert d.words[0] == "the"
    assert dict(zip(d.words, d.counts.tolist()))["the"] == 4
    # Ties keep first-appearance order, and counts never increase down the list.
    assert d.words[1:6] == ["cat", "sat", "on", "dog", "a"]
    assert d.counts[1:6].tolist() == [2, 2, 2, 2, 2]
    assert d.words[6:] == ["mat", "log", "and"]
    assert (np.diff(d.counts) <= 0).all()
    assert d.total == sum(len(s) for s in TEXT)


def test_chunks_read_from_the_ids_file_equal_the_memory_map(tmp_path):
    data = encode.build(TEXT, tmp_path, min_count=1)
    words = [data.dictionary.words[i] for i in data.read(0, len(data.ids))]
    assert words == [w for s in TEXT for w in s]
    for a, b in [(0, 1), (3, 9), (5, len(data.ids))]:
        assert data.read(a, b).tolist() == data.ids[a:b].tolist()
    data.close()


def test_min_count_drops_rare_words_and_their_tokens(tmp_path):
    data = encode.build(TEXT, tmp_path, min_count=2)
    d = data.dictionary
    assert "mat" not in d.words and "log" not in d.words and "and" not in d.words
    decoded = [[d.words[i] for i in data.ids[a:b]] for a, b in zip(data.offsets[:-1], data.offsets[1:])]
    assert decoded == [
        "the cat sat on the".split(),
        "the dog sat on the".split(),
        "a cat a dog".split(),
    ]


def test_vocab_tsv_round_trip(tmp_path):
    data = encode.build(TEXT, tmp_path, min_count=1)
    again = Dictionary.load(tmp_path / "vocab.tsv")
    assert again.words == data.dictionary.words
    assert again.counts.tolist() == data.dictionary.counts.tolist()
    first = (tmp_path / "vocab.tsv").read_text().splitlines()[0]
    assert first == "the\t4"


def test_max_vocab_size_prunes_while_counting_and_keeps_frequent_words(tmp_path, monkeypatch):
    # Frequent words recur; a flood of distinct rare tokens would blow up an unbounded count.
    monkeypatch.setattr(encode, "_BLOCK", 1000)
    rng = np.random.default_rng(0)
    sentences = []
    for i in range(400):
        rare = [f"rare{i}_{j}" for j in range(8)]
        common = ["alpha", "beta", "gamma"] * 3
        sentence = rare + common
        rng.shuffle(sentence)
        sentences.append(sentence)
    data = encode.build(sentences, tmp_path, min_count=5, max_vocab_size=200)
    d = data.dictionary
    assert sorted(d.words) == ["alpha", "beta", "gamma"]
    assert d.counts.tolist() == [1200, 1200, 1200]
    # Pruning forced a second encoding pass: every common token is still there.
    assert len(data.ids) == 400 * 9
    assert sorted(set(data.ids.tolist())) == [0, 1, 2]


def test_max_final_vocab_raises_the_threshold_without_splitting_ties(tmp_path):
    sentences = [["a"] * 10 + ["b"] * 8 + ["c"] * 8 + ["d"] * 6]
    d = encode.build(sentences, tmp_path, min_count=1, max_final_vocab=2).dictionary
    assert d.words == ["a"]  # b and c tie at 8: both go rather than one at random
    d = encode.build(sentences, tmp_path, min_count=1, max_final_vocab=3).dictionary
    assert d.words == ["a", "b", "c"]


def test_empty_corpus_and_all_rare_words_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="empty"):
        encode.build([], tmp_path)
    with pytest.raises(UserError, match="min-count"):
        encode.build([["once", "upon", "a", "time"]], tmp_path, min_count=5)


def test_keep_probability_is_word2vec_formula():
    d = Dictionary(["a", "b", "c"], np.array([100_000, 1_000, 10], dtype=np.int64))
    sample = 1e-3
    total = 101_010
    keep = d.keep_probabilities(sample)
    for p, c in zip(keep, d.counts):
        expected = min(1.0, (math.sqrt(c / (sample * total)) + 1) * (sample * total) / c)
        assert p == pytest.approx(expected, rel=1e-6)
    assert keep[0] < 0.2 and keep[2] == 1.0
    assert d.keep_probabilities(0).tolist() == [1.0, 1.0, 1.0]


def test_noise_distribution_is_counts_to_the_three_quarters():
    counts = np.array([1000, 300, 50, 7, 1], dtype=np.int64)
    d = Dictionary(list("abcde"), counts)
    p = d.noise_distribution(0.75)
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(p, expected)
    # The alias table encodes exactly these probabilities ...
    accept, alias = build_alias_table(p)
    n = len(p)
    implied = accept.astype(np.float64) / n
    np.add.at(implied, alias, (1 - accept.astype(np.float64)) / n)
    np.testing.assert_allclose(implied, expected, atol=1e-6)
    # ... and drawing from it as the kernel does gives those frequencies.
    rng = np.random.default_rng(1)
    slot = rng.integers(0, n, 400_000)
    draws = np.where(rng.random(400_000) < accept[slot], slot, alias[slot])
    freq = np.bincount(draws, minlength=n) / len(draws)
    np.testing.assert_allclose(freq, expected, atol=3e-3)


def test_huffman_codes_prefix_free_monotone_and_near_entropy():
    rng = np.random.default_rng(3)
    counts = np.sort(rng.zipf(1.3, 500).astype(np.int64))[::-1] + 1
    points, codes, lengths = huffman_tree(counts)
    words = ["".join(map(str, codes[w, : lengths[w]])) for w in range(len(counts))]
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            assert not a.startswith(b) and not b.startswith(a)
    # More frequent words never get longer codes.
    assert all(lengths[i] <= lengths[j] for i in range(len(counts)) for j in range(i + 1, len(counts)) if counts[i] > counts[j])
    p = counts / counts.sum()
    entropy = -(p * np.log2(p)).sum()
    mean_length = (p * lengths).sum()
    assert entropy <= mean_length < entropy + 1
    # Paths start at the root (the last inner node) and stay within the V-1 inner nodes.
    assert (points[:, 0] == len(counts) - 2).all()
    assert points.max() <= len(counts) - 2
