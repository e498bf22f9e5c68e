"""The fast kernel (draw stage ahead of the train stage, prefetch queue, constant-dim
instances) computes exactly what a plain one-stage loop computes: a sequential numpy
re-implementation with the same random stream (splitmix64: sub-sampling, reduced windows,
alias draws with redraw of the target) gives the same updates and loss. Covers several
sentences (the pipeline runs across sentence ends), sub-sampling, windows > 1, drawn
negatives, hierarchical softmax, a compiled-in dimension (100) and a generic one (7).
"""

from __future__ import annotations

import numpy as np
import pytest

from w2v import native
from w2v.dictionary import build_alias_table, huffman_tree

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler")

M64 = (1 << 64) - 1
V = 23
ALPHA = 0.03


class Stream:
    """kernel.c's splitmix64 stream and the draws made from it."""

    def __init__(self, seed: int) -> None:
        self.s = seed

    def next(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    @staticmethod
    def uniform(r: int) -> np.float32:
        return np.float32(r >> 40) * np.float32(1.0 / 16777216.0)

    def noise(self, accept: np.ndarray, alias: np.ndarray) -> int:
        r = self.next()
        i = ((r >> 32) * V) >> 32
        return i if self.uniform((r << 32) & M64) < accept[i] else int(alias[i])


def reference(inp, out, out_hs, sentences, keep, accept, alias, tree, k, window, cbow, seed):
    """One-stage sequential SGD in float64 with exact sigmoid and loss."""
    rng = Stream(seed)
    loss_sum, count = 0.0, 0

    def score(h, rows, r, label, grad):
        nonlocal loss_sum, count
        f = float(h @ rows[r])
        loss_sum += np.logaddexp(0.0, -f if label else f)
        count += 1
        g = (label - 1.0 / (1.0 + np.exp(-f))) * ALPHA
        grad += g * rows[r]
        rows[r] += g * h

    def target(h, t, grad):
        if k:
            negs = []
            for _ in range(k):
                n, tries = t, 0
                while n == t and tries < 32:
                    n, tries = rng.noise(accept, alias), tries + 1
                negs.append(n)
            score(h, out, t, 1, grad)
            for n in negs:
                if n != t:
                    score(h, out, n, 0, grad)
        if tree is not None:
            points, codes, lengths = tree
            for p, code in zip(points[t, : lengths[t]], codes[t, : lengths[t]]):
                score(h, out_hs, int(p), 1 - int(code), grad)

    for sentence in sentences:
        sen = [w for w in sentence if not (keep[w] < 1.0 and keep[w] < rng.uniform(rng.next()))]
        n = len(sen)
        for i in range(n):
            b = 1 + rng.next() % window
            ctx = [sen[c] for c in range(max(i - b, 0), min(i + b, n - 1) + 1) if c != i]
            if cbow:
                if not ctx:
                    continue
                h = inp[ctx].mean(0)
                grad = np.zeros_like(h)
                target(h, sen[i], grad)
                for c in ctx:
                    inp[c] += grad
            elif tree is not None:  # with hierarchical softmax the context word predicts the centre
                for c in ctx:
                    grad = np.zeros(inp.shape[1])
                    target(inp[c].copy(), sen[i], grad)
                    inp[c] += grad
            else:
                for c in ctx:
                    grad = np.zeros(inp.shape[1])
                    target(inp[sen[i]].copy(), c, grad)
                    inp[sen[i]] += grad
    return loss_sum, count


def run_kernel(inp, out, out_hs, sentences, keep, accept, alias, tree, k, window, cbow, seed):
    ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in sentences])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sentences])]).astype(np.int64)
    counter = np.zeros(1, dtype=np.int64)
    job = native.make_job(
        input=inp, output=out if k else None, output_hs=out_hs if tree is not None else None,
        dim=inp.shape[1], negative=k, window=window, cbow=cbow, ids=ids, offsets=offsets, s_begin=0,
        s_end=len(sentences), keep=keep, noise=(accept, alias), huffman=tree, alpha=ALPHA, min_alpha=ALPHA,
        total_words=10**9, words_done=counter, seed=seed,
    )
    native.train_chunk(job)
    assert job.words == counter[0] == len(ids)
    return job.loss_sum, job.loss_count


def setup(dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.integers(1, 400, V))[::-1].astype(np.int64)
    counts[0] = 3000  # a frequent word, so sub-sampling drops some of it
    p = counts ** 0.75
    accept, alias = build_alias_table(p / p.sum())
    total = counts.sum()
    keep = np.minimum((np.sqrt(counts / (0.01 * total)) + 1) * 0.01 * total / counts, 1.0).astype(np.float32)
    tree = huffman_tree(counts)
    sentences = [list(rng.choice(V, size=n, p=counts / total)) for n in (17, 1, 9, 30, 2, 12)]
    inp = ((rng.random((V, dim)) - 0.5) / dim).astype(np.float32)
    out = (rng.standard_normal((V, dim)) * 0.1).astype(np.float32)
    out_hs = (rng.standard_normal((V - 1, dim)) * 0.1).astype(np.float32)
    return inp, out, out_hs, sentences, keep, accept, alias, tree


@pytest.mark.parametrize("dim", [100, 7])
@pytest.mark.parametrize("cbow", [False, True], ids=["sg", "cbow"])
@pytest.mark.parametrize("objective", ["ns", "hs", "both"])
def test_kernel_equals_one_stage_loop_with_the_same_stream(dim, cbow, objective):
    inp, out, out_hs, sentences, keep, accept, alias, tree = setup(dim)
    k = 0 if objective == "hs" else 4
    tree = tree if objective != "ns" else None
    mats = [inp, out, out_hs]
    ours = [m.copy() for m in mats]
    ref = [m.astype(np.float64) for m in mats]
    loss, count = run_kernel(*ours, sentences, keep, accept, alias, tree, k, 3, cbow, 12345)
    ref_loss, ref_count = reference(*ref, sentences, keep, accept, alias, tree, k, 3, cbow, 12345)
    assert count == ref_count
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=3e-6, rtol=1e-4)


def test_same_seed_same_bits_and_seed_matters():
    runs = []
    for seed in (7, 7, 8):
        inp, out, out_hs, sentences, keep, accept, alias, tree = setup(100)
        run_kernel(inp, out, out_hs, sentences, keep, accept, alias, None, 5, 5, False, seed)
        runs.append(inp)
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_huge_page_advice_keeps_contents():
    a = np.arange(3 << 20, dtype=np.float32)  # 12 MB: holds whole 2 MB pages
    before = a.copy()
    native.advise_huge_pages(a.ctypes.data, a.nbytes, run=id(a))
    assert np.array_equal(a, before)
    assert not native.advise_huge_pages(a.ctypes.data, a.nbytes, run=id(a))  # once per buffer and run
