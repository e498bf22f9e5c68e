"""The C kernel against autograd: its updates are word2vec's sequential SGD, pair by pair.

tests/test_torch_path.py holds the PyTorch path to the same reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from w2v import native
from w2v.dictionary import build_alias_table, huffman_tree

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler")

V, D, ALPHA = 7, 6, 0.05


def run_kernel(inp, out, out_hs, sentence, negatives, cbow, hs_tree, top_nodes=0):
    ids = np.asarray(sentence, dtype=np.int32)
    offsets = np.array([0, len(ids)], dtype=np.int64)
    counter = np.zeros(1, dtype=np.int64)
    accept, alias = build_alias_table(np.full(V, 1 / V))
    fixed = np.asarray(negatives, dtype=np.int32)
    points, codes, lengths = hs_tree if hs_tree else (None, None, None)
    job = native.make_job(
        input=inp, output=out if negatives else None, output_hs=out_hs if hs_tree else None,
        dim=D, negative=2 if negatives else 0, window=1, cbow=cbow, ids=ids, offsets=offsets, s_begin=0, s_end=1,
        keep=None, noise=(accept, alias), huffman=hs_tree or None, alpha=ALPHA, min_alpha=ALPHA, total_words=10**9,
        words_done=counter, seed=7, top_nodes=top_nodes, fixed_negatives=fixed if negatives else None,
    )
    native.library().w2v_reset_fixed_negatives()
    native.train_chunk(job)
    return job.loss_sum, job.loss_count


def reference(inp, out, out_hs, sentence, negatives, cbow, hs_tree):
    """Sequential SGD pair by pair, each gradient from autograd (window 1, no sub-sampling)."""
    neg = iter(negatives * 1000)
    loss_sum, count = 0.0, 0

    def score(h, rows, r, label):
        nonlocal loss_sum, count
        hl = h.detach().clone().requires_grad_()
        v = rows[r].detach().clone().requires_grad_()
        loss = F.softplus(-(hl @ v)) if label else F.softplus(hl @ v)
        loss.backward()
        loss_sum += loss.item()
        count += 1
        rows[r] -= ALPHA * v.grad
        return -ALPHA * hl.grad

    def targets(h, t):
        step = torch.zeros(D)
        if negatives:
            step += score(h, out, t, 1)
            for _ in range(2):
                n = next(neg)
                if n != t:  # a negative equal to the target is never scored as a negative
                    step += score(h, out, n, 0)
        if hs_tree:
            points, codes, lengths = hs_tree
            for p, code in zip(points[t, : lengths[t]], codes[t, : lengths[t]]):
                step += score(h, out_hs, int(p), 1 - int(code))
        return step

    n = len(sentence)
    for i in range(n):
        ctx = [c for c in (i - 1, i + 1) if 0 <= c < n]
        if cbow:
            h = torch.stack([inp[sentence[c]] for c in ctx]).mean(0)
            step = targets(h, sentence[i])
            for c in ctx:  # word2vec C: every context row takes the whole hidden step
                inp[sentence[c]] += step
        elif hs_tree:  # with hierarchical softmax the context word predicts the centre
            for c in ctx:
                inp[sentence[c]] += targets(inp[sentence[c]], sentence[i])
        else:
            for c in ctx:
                inp[sentence[i]] += targets(inp[sentence[i]], sentence[c])
    return loss_sum, count


@pytest.mark.parametrize("cbow", [False, True], ids=["sg", "cbow"])
@pytest.mark.parametrize("objective", ["ns", "hs", "both"])
@pytest.mark.parametrize("top_nodes", [0, 3], ids=["shared", "top-copy"])
def test_kernel_equals_sequential_autograd_sgd(cbow, objective, top_nodes):
    """top-copy: the top 3 of the 6 inner nodes trained in the thread's own copy (as with
    several threads) is still exactly sequential SGD within the thread."""
    g = torch.Generator().manual_seed(0)
    inp = torch.randn(V, D, generator=g) * 0.3
    out = torch.randn(V, D, generator=g) * 0.3
    out_hs = torch.randn(V - 1, D, generator=g) * 0.3
    sentence = [0, 3, 1, 1, 5, 2, 6, 4, 0, 2]
    negatives = [4, 6, 2, 0, 5, 3, 1] if objective != "hs" else []
    tree = huffman_tree(np.array([50, 30, 20, 9, 5, 3, 1])) if objective != "ns" else None
    ours = [t.clone() for t in (inp, out, out_hs)]
    ref = [t.clone() for t in (inp, out, out_hs)]
    loss, count = run_kernel(*ours, sentence, negatives, cbow, tree, top_nodes)
    ref_loss, ref_count = reference(*ref, sentence, negatives, cbow, tree)
    assert count == ref_count
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
