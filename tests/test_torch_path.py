"""The PyTorch path (w2v.model, w2v.loss): losses against autograd, windows, and training like the kernel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import w2v
import w2v.loss
from w2v.dictionary import huffman_tree
from w2v.loss import HierarchicalSoftmax, curvature_sums, implicit_rows, logistic_step
from w2v.model import context_pairs, disjoint_windows

MOBY = str(Path(__file__).resolve().parent.parent / "corpora" / "moby_dick.txt.gz")
QUIET = dict(progress=False, tensorboard=False, evaluate=False)


def test_logistic_step_gradients_match_autograd():
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.randn(5, 6, 8, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(5, 6, dtype=torch.float64)
    labels[:, 0] = 1
    weight = torch.ones(5, 6, dtype=torch.float64)
    weight[2, 3] = 0  # a masked (redrawn-away or padding) slot contributes nothing
    scores = torch.einsum("pd,pkd->pk", hidden, rows)
    loss = (F.softplus(torch.where(labels > 0, -scores, scores)) * weight).sum()
    loss.backward()
    ours, step_hidden, step_rows, curvature = logistic_step(hidden.detach(), rows.detach(), labels, weight, 0.1)
    assert ours.item() == pytest.approx(loss.item())
    p = torch.sigmoid(scores.detach())
    torch.testing.assert_close(curvature, 0.1 * p * (1 - p) * weight)  # d2 loss / d score2, times the rate
    torch.testing.assert_close(step_hidden, -0.1 * hidden.grad)
    torch.testing.assert_close(step_rows, -0.1 * rows.grad)


def test_reduced_window_is_uniform_over_one_to_window():
    window = 5
    sentence = torch.zeros(20_000, dtype=torch.long)  # one long sentence
    centre, _ = context_pairs(sentence, window, torch.Generator().manual_seed(0))
    per_centre = torch.bincount(centre, minlength=len(sentence))[window:-window]  # away from the edges
    reach = per_centre // 2
    freq = torch.bincount(reach, minlength=window + 1)[1:].double() / len(reach)
    assert set(reach.unique().tolist()) == set(range(1, window + 1))
    torch.testing.assert_close(freq, torch.full((window,), 1 / window, dtype=torch.float64), atol=0.015, rtol=0)


def test_context_pairs_stay_inside_sentences():
    sentence = torch.tensor([0, 0, 0, 1, 1, 2])
    centre, context = context_pairs(sentence, 3, torch.Generator().manual_seed(0))
    assert (sentence[centre] == sentence[context]).all()
    assert (centre != context).all()


def test_torch_path_trains_like_the_kernel(tmp_path):
    kw = dict(epochs=2, threads=2, seed=3, **QUIET)
    native = w2v.train([MOBY], out=str(tmp_path / "native"), **kw)
    batched = w2v.train([MOBY], out=str(tmp_path / "torch"), backend="torch", **kw)
    a, b = native.stats["epoch_losses"], batched.stats["epoch_losses"]
    assert b[1] < b[0]
    assert b[1] == pytest.approx(a[1], rel=0.1)
    assert torch.isfinite(batched.params.input).all()


def _dense_model_solve(total, where, against, curvature, rows, d):
    """The implicit step's model solved densely: (I + u u^T + diag(H - u u^T)) x = total per row."""
    out = []
    for r in range(rows):
        mine = where == r
        c, a = curvature[mine], against[mine]
        h = torch.einsum("nm,nmd,nme->de", c, a, a)
        u = torch.einsum("nm,nmd->d", c, a) / c.sum().sqrt()
        model = torch.eye(d, dtype=torch.float64) + torch.outer(u, u) + torch.diag(torch.diagonal(h) - u * u)
        out.append(torch.linalg.solve(model, total[r]))
    return torch.stack(out)


def test_implicit_row_step_solves_its_model_in_closed_form():
    g = torch.Generator().manual_seed(0)
    rows, d, hits, m = 5, 8, 200, 3
    where = torch.randint(0, rows, (hits,), generator=g)
    against = torch.randn(hits, m, d, generator=g, dtype=torch.float64)
    curvature = torch.rand(hits, m, generator=g, dtype=torch.float64) * 0.05
    total = torch.randn(rows, d, generator=g, dtype=torch.float64)
    x = implicit_rows(total, where, lambda n: curvature_sums(against[n], curvature[n]), every=1)
    torch.testing.assert_close(x, _dense_model_solve(total, where, against, curvature, rows, d))


def test_implicit_row_step_is_exact_where_a_row_is_scored_against_one_vector():
    """A row hit once, or always against the same vector, takes the exact implicit step (not a summed one)."""
    g = torch.Generator().manual_seed(1)
    rows, d, hits = 4, 6, 120
    where = torch.randint(0, rows, (hits,), generator=g)
    direction = torch.randn(rows, d, generator=g, dtype=torch.float64)
    against = direction[where].unsqueeze(1)
    curvature = torch.rand(hits, 1, generator=g, dtype=torch.float64) * 0.05
    total = torch.randn(rows, d, generator=g, dtype=torch.float64)
    x = implicit_rows(total, where, lambda n: curvature_sums(against[n], curvature[n]), every=1)
    for r in range(rows):
        mine = where == r
        exact = torch.eye(d, dtype=torch.float64) + torch.einsum("nm,nmd,nme->de", curvature[mine], against[mine], against[mine])
        torch.testing.assert_close(x[r], torch.linalg.solve(exact, total[r]))


def test_implicit_row_step_scales_sampled_hits_to_all_of_them():
    """Every 4th hit stands for all of a row's hits: identical hits give the step all of them give."""
    d, hits = 5, 64
    where = torch.tensor([0] * 40 + [1] * 24)
    g = torch.Generator().manual_seed(2)
    against = torch.randn(2, 2, d, generator=g, dtype=torch.float64)[where]
    curvature = torch.full((hits, 2), 0.03, dtype=torch.float64)
    total = torch.randn(2, d, generator=g, dtype=torch.float64)
    saturation = lambda n: curvature_sums(against[n], curvature[n])  # noqa: E731
    torch.testing.assert_close(implicit_rows(total, where, saturation, every=4), implicit_rows(total, where, saturation, every=1))
    unsampled = torch.tensor([0, 1, 2])  # row 1 is hit once, at position 1: not sampled, its step stays
    x = implicit_rows(torch.ones(3, d, dtype=torch.float64), unsampled, lambda n: curvature_sums(against[n], curvature[n]), every=2)
    torch.testing.assert_close(x[1], torch.ones(d, dtype=torch.float64))


def test_implicit_row_step_samples_every_position_within_a_pair():
    """With 6 hits per pair (a target and 5 negatives) and every 8th pair sampled, hits at every k are sampled."""
    pairs, k, d = 64, 6, 3
    where = torch.arange(pairs * k) % k  # row r is always hit at position r of a pair
    seen = []

    def saturation(n):
        seen.append(n)
        return curvature_sums(torch.ones(len(n), 1, d, dtype=torch.float64), torch.full((len(n), 1), 0.1, dtype=torch.float64))

    x = implicit_rows(torch.ones(k, d, dtype=torch.float64), where, saturation, every=8, width=k)
    assert sorted(set((seen[0] % k).tolist())) == list(range(k))
    assert torch.allclose(x, x[0].expand_as(x))  # every row was damped alike
    assert (x < 1).all()


@pytest.mark.parametrize("model,hs", [("sg", False), ("cbow", False), ("sg", True), ("cbow", True)])
def test_torch_path_trains_with_and_without_the_implicit_step(tmp_path, monkeypatch, model, hs):
    kw = dict(epochs=2, threads=1, seed=3, dim=24, model=model, backend="torch", batch_pairs=65_536,
              negative=0 if hs else 5, hs=hs, **QUIET)
    for sample in (w2v.loss.IMPLICIT_SAMPLE, 0):
        monkeypatch.setattr(w2v.loss, "IMPLICIT_SAMPLE", sample)
        run = w2v.train([MOBY], out=str(tmp_path / f"{model}-{hs}-{sample}"), **kw)
        losses = run.stats["epoch_losses"]
        assert losses[1] < losses[0]
        assert torch.isfinite(run.params.input).all()


@pytest.mark.parametrize("sample", [0, 1])
@pytest.mark.parametrize("in_runs", [False, True])
def test_hierarchical_softmax_scores_each_node_of_each_path_once(monkeypatch, sample, in_runs):
    """Flat per-node hits (CBOW) and runs of one pair give what scoring every path padded to the
    longest (and masked) gives."""
    monkeypatch.setattr(w2v.loss, "IMPLICIT_SAMPLE", sample)
    points, codes, lengths = (torch.from_numpy(a) for a in huffman_tree(np.array([50, 20, 9, 6, 3, 2, 1])))
    g = torch.Generator().manual_seed(4)
    d, targets = 6, torch.tensor([0, 6, 3, 0, 1, 5, 6, 2])
    hidden = torch.randn(len(targets), d, generator=g, dtype=torch.float64)
    start = torch.randn(len(points) - 1, d, generator=g, dtype=torch.float64)
    ours = start.clone()
    loss, count, step, saturation = HierarchicalSoftmax(ours, points, codes, lengths, in_runs)(hidden, targets, 0.1)

    index = points.long()[targets]
    weight = (torch.arange(points.shape[1]) < lengths[targets].unsqueeze(1)).to(torch.float64)
    rows = start[index]
    want_loss, want_step, row_steps, curvature = logistic_step(hidden, rows, 1.0 - codes[targets].to(torch.float64),
                                                               weight, 0.1)
    assert loss.item() == pytest.approx(want_loss.item())
    assert count.item() == weight.sum().item()
    torch.testing.assert_close(step, want_step)
    if sample:
        torch.testing.assert_close(saturation(torch.arange(len(targets))), curvature_sums(rows, curvature))
    else:  # the plain summed step: each inner node moves by the sum of its hits' steps
        torch.testing.assert_close(ours, start.index_add(0, index.reshape(-1), row_steps.reshape(-1, d)))


@pytest.mark.parametrize("max_run, shared_nodes, sample", [(16, 0, 0), (2, 0, 0), (16, 2, 0), (16, 2, 1), (2, 2, 1)])
def test_hierarchical_softmax_scores_a_runs_pairs_in_order(monkeypatch, max_run, shared_nodes, sample):
    """Consecutive pairs with one target (a skip-gram centre's context words) each see the path
    as the run's earlier pairs left it, as sequential SGD does, except the SHARED_NODES nearest
    the root, read as the step found them; runs start from the same path and their changes add
    up. A run longer than MAX_RUN is split. With the implicit step, each node's saturation is
    over the hidden vectors of its hits, each hidden vector's over the rows as its pair saw them."""
    monkeypatch.setattr(w2v.loss, "IMPLICIT_SAMPLE", sample)
    monkeypatch.setattr(w2v.loss, "MAX_RUN", max_run)
    monkeypatch.setattr(w2v.loss, "SHARED_NODES", shared_nodes)
    points, codes, lengths = (torch.from_numpy(a) for a in huffman_tree(np.array([50, 20, 9, 6, 3, 2, 1])))
    g = torch.Generator().manual_seed(6)
    d, targets = 5, torch.tensor([3, 3, 3, 5, 5, 0])
    hidden = torch.randn(len(targets), d, generator=g, dtype=torch.float64)
    start = torch.randn(len(points) - 1, d, generator=g, dtype=torch.float64)
    ours = start.clone()
    loss, count, step, saturation = HierarchicalSoftmax(ours, points, codes, lengths)(hidden, targets, 0.1)

    runs = [[0, 1, 2], [3, 4], [5]] if max_run == 16 else [[0, 1], [2], [3, 4], [5]]
    total, want_step, want_loss = torch.zeros_like(start), torch.zeros_like(hidden), 0.0
    node_sums, pair_sums = torch.zeros(len(start), 2 * d + 1, dtype=torch.float64), []
    for run in runs:
        path = start.clone()
        for p in run:
            nodes = points[targets[p], : lengths[targets[p]]].long()
            labels = 1.0 - codes[targets[p], : lengths[targets[p]]].to(torch.float64)
            seen = torch.where((nodes >= len(start) - shared_nodes).unsqueeze(1), start[nodes], path[nodes])
            scores = seen @ hidden[p]
            want_loss += F.softplus(torch.where(labels > 0, -scores, scores)).sum().item()
            grad = (labels - torch.sigmoid(scores)) * 0.1
            curvature = torch.sigmoid(scores) * (1 - torch.sigmoid(scores)) * 0.1
            want_step[p] = grad @ seen
            path[nodes] += grad.unsqueeze(1) * hidden[p]
            node_sums.index_add_(0, nodes, curvature_sums(hidden[p].expand(len(nodes), 1, d), curvature.unsqueeze(1)))
            pair_sums.append(curvature_sums(seen.unsqueeze(0), curvature.unsqueeze(0)))
        total += path - start
    assert loss.item() == pytest.approx(want_loss)
    assert count.item() == lengths[targets].sum().item()
    torch.testing.assert_close(step, want_step)
    if sample:  # each row's implicit step from its exact saturation, then the norm clip
        total = implicit_rows(total, torch.arange(len(start)), lambda m: node_sums[m], every=1)
        total *= torch.clamp(w2v.loss.MAX_ROW_STEP / total.norm(dim=1).clamp(min=1e-12), max=1.0).unsqueeze(1)
        torch.testing.assert_close(saturation(torch.arange(len(targets))), torch.cat(pair_sums))
    torch.testing.assert_close(ours, start + total)


def test_cbow_steps_never_hold_two_windows_that_share_a_position():
    g = torch.Generator().manual_seed(5)
    sentence = torch.repeat_interleave(torch.arange(40), torch.randint(1, 30, (40,), generator=g))
    centre, context = context_pairs(sentence, 5, g)
    reordered, moved, steps = disjoint_windows(centre, context, 5, step=64)
    assert sorted(zip(reordered.tolist(), moved.tolist())) == sorted(zip(centre.tolist(), context.tolist()))
    assert [s for s, _ in steps] == sorted(s for s, _ in steps) and steps[-1][1] == len(centre)
    for start, end in steps:
        assert 0 < end - start <= 64
        centres = reordered[start:end].unique()
        assert (centres.diff() >= 11).all()  # windows of reach <= 5 around them are disjoint


def test_chunks_fill_cbow_steps_on_the_pytorch_path():
    from w2v.config import TrainConfig
    from w2v.engines import CHUNK_WORDS, chunk_words

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert chunk_words(TrainConfig(model="cbow"), gpu) == (1 << 17) * 11 // 5  # 2 * window + 1 passes of 131,072 pairs
    assert chunk_words(TrainConfig(model="cbow", window=8, batch_pairs=10_000), gpu) == CHUNK_WORDS
    assert chunk_words(TrainConfig(model="sg"), gpu) == CHUNK_WORDS
    assert chunk_words(TrainConfig(model="cbow", backend="torch"), cpu) == CHUNK_WORDS  # 4,096-pair steps
    assert chunk_words(TrainConfig(model="cbow", batch_words=5_000), gpu) == 5_000


def test_implicit_row_step_estimates_from_the_hits_it_is_given():
    """CBOW samples by centre (all context rows of every n-th centre): a given sample stands for all hits."""
    d = 4
    where = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2])
    against = torch.randn(1, 1, d, dtype=torch.float64).expand(len(where), 1, d)
    curvature = torch.full((len(where), 1), 0.05, dtype=torch.float64)
    total = torch.ones(3, d, dtype=torch.float64)
    saturation = lambda n: curvature_sums(against[n], curvature[n])  # noqa: E731
    given = implicit_rows(total, where, saturation, every=2, sample=torch.tensor([0, 1, 3]))
    torch.testing.assert_close(given, implicit_rows(total, where, saturation, every=1))
