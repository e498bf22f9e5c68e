"""Losses of the PyTorch path: what a hidden vector is scored against.

The model (w2v.model) decides how the hidden vector is formed; a loss scores it against
output rows with the logistic loss and applies SGD to those rows. Both losses return the
summed loss, the number of scored pairs (both float64 tensors, so a GPU is not
synchronised per batch), the gradient step for the hidden vectors (already multiplied by
the learning rate, word2vec's `neu1e`), and the hidden vectors' saturation (curvature sums
over the rows each was scored against, for the implicit row step).

Updates of one batch are summed per row. A row hit hundreds of times in one batch (a
frequent word as a negative) would take all those steps at once where sequential SGD
saturates: each step moves the row, the logistic loss flattens along the directions its
hits share, and the next step is smaller. So each row takes the implicit (backward Euler)
step of its sum, (I + H_r) x = sum of its steps with H_r its hits' curvature, modelled as a
rank-one part and a diagonal (implicit_rows); the norm clip MAX_ROW_STEP stays as a guard.
Scaling by 1/hits instead starves frequent words' rows, and an exact conjugate-gradient
solve cost 2.5-8x the step's time for vectors no better (bench/RESULTS.md).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

MAX_ROW_STEP = 1.0
SHARED_NODES = 15  # hierarchical softmax: the inner nodes nearest the root, which nearly every run of a step hits
MAX_RUN = 16  # hierarchical softmax: pairs of one target scored in order; a longer run (a repeated word) is split
IMPLICIT_SAMPLE = 8  # every n-th pair's hits estimate each row's curvature for the implicit step; 0: the plain summed step

# Given flat positions of hits, the sums over what each hit was scored against (curvature_sums).
Saturation = Callable[[torch.Tensor], torch.Tensor]


def curvature_sums(against: torch.Tensor, curvature: torch.Tensor) -> torch.Tensor:
    """[S, 2d + 1]: sum c a, sum c a * a and sum c over each hit's vectors against [S, M, d], curvature c [S, M]."""
    d = against.shape[-1]
    sums = torch.empty(len(against), 2 * d + 1, dtype=against.dtype, device=against.device)
    if against.shape[1] == 1:
        torch.mul(curvature, against[:, 0], out=sums[:, :d])
        torch.mul(sums[:, :d], against[:, 0], out=sums[:, d : 2 * d])
    else:
        sums[:, :d] = torch.einsum("nm,nmd->nd", curvature, against)
        sums[:, d : 2 * d] = torch.einsum("nm,nmd->nd", curvature, against.square())
    torch.sum(curvature, 1, out=sums[:, 2 * d])
    return sums


def logistic_step(
    hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score hidden [P, d] against rows [P, K, d] with labels [P, K] (1 target, 0 noise).

    weight [P, K] masks padding (0) and counts real pairs (1). Returns (loss sum in
    float64, gradient step for hidden [P, d], gradient step for rows [P, K, d], and
    alpha times the loss's second derivative along each score [P, K]).
    """
    scores = torch.einsum("pd,pkd->pk", hidden, rows)
    loss = (F.softplus(torch.where(labels > 0, -scores, scores)) * weight).sum(dtype=torch.float64)
    p = torch.sigmoid(scores)
    g = (labels - p) * weight * alpha
    curvature = p * (1 - p) * weight * alpha
    return loss, torch.einsum("pk,pkd->pd", g, rows), g.unsqueeze(-1) * hidden.unsqueeze(1), curvature


def implicit_rows(total: torch.Tensor, where: torch.Tensor, saturation: Saturation, every: int,
                  width: int = 1, sample: torch.Tensor | None = None) -> torch.Tensor:
    """The implicit step x_r = (I + H_r)^-1 total_r of every row r that where's hits land on.

    H_r = sum over the row's hits of curvature * a a^T (a: the vector the hit was scored
    against) is modelled as u u^T + diag(H_r - u u^T), u = sum c a / sqrt(sum c): the
    rank-one part is the direction the hits share (along which sequential SGD saturates);
    the diagonal keeps the rest's size. That system has a closed-form solution (Sherman-
    Morrison), so the step costs two scatters, not an iterative solve. The sums are estimated
    from the hits of every `every`-th pair (where holds `width` hits per pair, all of them
    taken, so no position within a pair is left out), or from the positions `sample` names,
    scaled by the row's hits over its sampled hits: frequent rows, the ones that need it, are
    sampled many times; a row with no sampled hit keeps its step.
    """
    d = total.shape[1]
    if sample is None:
        pairs = torch.arange(0, len(where) // width, every, device=where.device)
        sample = (pairs.unsqueeze(1) * width + torch.arange(width, device=where.device)).reshape(-1)
    sampled_rows = where[sample]
    sums = torch.zeros(len(total), 2 * d + 1, dtype=total.dtype, device=total.device).index_add_(0, sampled_rows, saturation(sample))
    if every > 1:
        hits = torch.bincount(where, minlength=len(total))
        sums *= (hits / torch.bincount(sampled_rows, minlength=len(total)).clamp(min=1)).to(total.dtype).unsqueeze(1)
    weighted, squares, mass = sums[:, :d], sums[:, d : 2 * d], sums[:, 2 * d :]
    u = weighted / mass.clamp(min=1e-30).sqrt()
    inverse = 1.0 / (1.0 + (squares - u * u).clamp(min=0))
    y, z = inverse * total, inverse * u
    return y - z * ((u * y).sum(1, keepdim=True) / (1.0 + (u * z).sum(1, keepdim=True)))


def apply_rows(matrix: torch.Tensor, index: torch.Tensor, step: torch.Tensor, saturation: Saturation | None = None,
               sample: torch.Tensor | None = None) -> None:
    """Sum the steps per row, take each row's implicit step (with saturation; implicit_rows), clip, add in place."""
    width = index.shape[-1] if index.dim() > 1 else 1
    index = index.reshape(-1)
    step = step.reshape(-1, matrix.shape[1])
    if matrix.is_cuda:
        # A dense scratch matrix costs a few microseconds on a GPU and, unlike
        # torch.unique, never waits for the device.
        rows, where = None, index
        total = torch.zeros_like(matrix).index_add_(0, index, step)
    else:
        rows, where = torch.unique(index, return_inverse=True)
        total = torch.zeros(len(rows), matrix.shape[1], dtype=step.dtype, device=step.device).index_add_(0, where, step)
    if IMPLICIT_SAMPLE and saturation is not None:
        total = implicit_rows(total, where, saturation, IMPLICIT_SAMPLE, width, sample)
    total *= torch.clamp(MAX_ROW_STEP / total.norm(dim=1).clamp(min=1e-12), max=1.0).unsqueeze(1)
    if rows is None:
        matrix.add_(total)
    else:
        matrix.index_add_(0, rows, total)


def each_hit_against(hidden: torch.Tensor, curvature: torch.Tensor) -> Saturation:
    """The saturation of output rows index [P, K]: hit (p, k) was scored against hidden[p]."""
    k = curvature.shape[1]
    return lambda n: curvature_sums(hidden[n // k].unsqueeze(1), curvature.reshape(-1)[n].unsqueeze(1))


Scored = tuple[torch.Tensor, torch.Tensor, torch.Tensor, Saturation]


def score_and_update(output: torch.Tensor, index: torch.Tensor, hidden: torch.Tensor, labels: torch.Tensor,
                     weight: torch.Tensor, alpha: float) -> Scored:
    """Score hidden [P, d] against output[index] ([P, K]) and step those output rows.

    Returns what every objective hands the model: the loss, the scored pairs, the hidden
    vectors' step, and the hidden vectors' saturation (curvature sums over the rows each pair
    was scored against, as they were before this step).
    """
    rows = output[index]
    loss, grad_hidden, grad_rows, curvature = logistic_step(hidden, rows, labels, weight, alpha)
    apply_rows(output, index, grad_rows, each_hit_against(hidden, curvature) if IMPLICIT_SAMPLE else None)
    return loss, weight.sum(dtype=torch.float64), grad_hidden, lambda n: curvature_sums(rows[n], curvature[n])


class NegativeSampling:
    """One positive and k negatives drawn from counts^exponent; a negative equal to the target is redrawn."""

    def __init__(self, output: torch.Tensor, noise: torch.Tensor, negative: int, generator: torch.Generator) -> None:
        self.output, self.negative, self.generator = output, negative, generator
        self.cum = torch.cumsum(noise.to(torch.float64), 0).to(output.device)

    def draw(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k noise words per target; clashes with the target are redrawn twice, then masked.

        Fixed rounds rather than `while clash.any()`: checking would stall a GPU every batch.
        """
        noise = self._sample((len(targets), self.negative))
        for _ in range(2):
            clash = noise == targets.unsqueeze(1)
            noise = torch.where(clash, self._sample(noise.shape), noise)
        return noise, (noise != targets.unsqueeze(1)).to(self.output.dtype)

    def _sample(self, shape: tuple[int, ...]) -> torch.Tensor:
        u = torch.rand(shape, generator=self.generator, device=self.cum.device, dtype=torch.float64)
        return torch.searchsorted(self.cum, u * self.cum[-1]).clamp_(max=len(self.cum) - 1)

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> Scored:
        noise, noise_ok = self.draw(targets)
        index = torch.cat([targets.unsqueeze(1), noise], 1)
        labels = torch.zeros(index.shape, dtype=hidden.dtype, device=hidden.device)
        labels[:, 0] = 1
        weight = torch.cat([torch.ones_like(noise_ok[:, :1]), noise_ok], 1)
        return score_and_update(self.output, index, hidden, labels, weight, alpha)


class HierarchicalSoftmax:
    """Logistic loss on each code bit along the target's Huffman path (inner-node rows).

    With in_runs, pairs come in runs: consecutive pairs with the same target (with hierarchical
    softmax, skip-gram scores each context word against its centre's path, so a centre's pairs
    are a run) score the target's path one after another, each against the path as the run's
    earlier pairs left it, as sequential SGD does; each inner node then takes the sum of its
    runs' changes (apply_rows). A run's path is gathered once and its pairs scored against it
    in one small matrix product, the runs of each length together (no run is padded to the
    step's longest); the order within a run lives in scalars only: pair r sees
    node j moved by sum over earlier pairs r' of g[r', j] * h[r'], so its score gains
    sum g[r', j] * (h[r] . h[r']), which the run's Gram matrix gives (no d-wide row is copied
    per pair). The SHARED_NODES nearest the root are the exception: nearly every run of a step
    hits them, and a private copy per run let each run fit its own root while the real one,
    summed and damped over thousands of runs, hardly moved; training then diverged (input
    norms 3x, training loss far below sequential SGD's). They are read as the step found them.
    Without runs (CBOW) hits are laid out flat, one per node on a path, not padded to the
    longest path (padding was ~40% of the work on the benchmark corpus). bench/RESULTS.md has
    the measurements.
    """

    def __init__(self, output_hs: torch.Tensor, points: torch.Tensor, codes: torch.Tensor, lengths: torch.Tensor,
                 in_runs: bool = True) -> None:
        self.output = output_hs
        device = output_hs.device
        self.points, self.codes, self.lengths = points.long().to(device), codes.to(device), lengths.long().to(device)
        self.in_runs = in_runs

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> Scored:
        if self.in_runs and MAX_RUN > 1:
            return self._in_runs(hidden, targets, alpha)
        return self._flat(hidden, targets, alpha)

    def _flat(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> Scored:
        """Every pair against the path as the step found it, one flat hit per node on its path."""
        device, pairs = hidden.device, len(hidden)
        lengths = self.lengths[targets]
        every = IMPLICIT_SAMPLE or pairs + 1  # without the implicit step nothing is sampled
        sampled = lengths * (torch.arange(pairs, device=device) % every == 0)
        # Both sizes in one transfer: a GPU waits for the device once per step.
        hits, sampled_hits = torch.stack([lengths.sum(), sampled.sum()]).tolist()
        pair = torch.repeat_interleave(torch.arange(pairs, device=device), lengths, output_size=hits)
        depth = torch.arange(hits, device=device) - (torch.cumsum(lengths, 0) - lengths)[pair]
        word = targets[pair]
        index = self.points[word, depth]
        labels = 1.0 - self.codes[word, depth].to(hidden.dtype)
        h, rows = hidden[pair], self.output[index]
        loss, grad_hidden, grad_rows, curvature = logistic_step(
            h, rows.unsqueeze(1), labels.unsqueeze(1), torch.ones_like(labels).unsqueeze(1), alpha)
        hidden_step = torch.zeros_like(hidden).index_add_(0, pair, grad_hidden)
        count = lengths.sum(dtype=torch.float64)
        if not IMPLICIT_SAMPLE:
            apply_rows(self.output, index, grad_rows)
            return loss, count, hidden_step, None
        # Both sides' implicit steps sample every every-th pair's hits (implicit_rows asks the
        # hidden side for every every-th pair).
        mine = torch.nonzero_static(pair % every == 0, size=sampled_hits).squeeze(1)
        apply_rows(self.output, index, grad_rows, each_hit_against(h, curvature), mine)
        pair_sums = torch.zeros((pairs + every - 1) // every, 2 * hidden.shape[1] + 1, dtype=hidden.dtype, device=device)
        pair_sums.index_add_(0, pair[mine] // every, curvature_sums(rows[mine].unsqueeze(1), curvature[mine]))
        return loss, count, hidden_step, lambda m: pair_sums[m // every]

    def _in_runs(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> Scored:
        """Each run's pairs in order against its path; the runs of each length as one block."""
        device, (pairs, d) = hidden.device, hidden.shape
        n = torch.arange(pairs, device=device)
        new_target = torch.ones(pairs, dtype=torch.bool, device=device)
        new_target[1:] = targets[1:] != targets[:-1]
        rank = n - torch.cummax(torch.where(new_target, n, 0), 0).values
        starts_run = new_target | (rank % MAX_RUN == 0)
        rank %= MAX_RUN  # a pair's place in its run
        ends_run = torch.ones_like(starts_run)
        ends_run[:-1] = starts_run[1:]
        run = torch.cumsum(starts_run, 0) - 1
        lengths = self.lengths[targets]
        every = IMPLICIT_SAMPLE or pairs + 1  # without the implicit step nothing is sampled
        # Per run length, counted at each run's last pair (the other pairs land in bin 0): runs,
        # their nodes, sampled runs, their nodes, sampled pairs (multiples of every), longest path.
        size = torch.where(ends_run, rank + 1, 0)
        sampled = run % every == 0
        multiples = torch.div(n, every, rounding_mode="floor") - torch.div(n - rank - 1, every, rounding_mode="floor")
        per_size = [torch.bincount(size, weights=w.to(torch.float64), minlength=MAX_RUN + 1)
                    for w in (torch.ones_like(lengths), lengths, sampled, lengths * sampled, multiples)]
        per_size.append(torch.zeros_like(per_size[0]).scatter_reduce_(0, size, lengths.to(torch.float64), "amax"))
        # Every size the step needs, in one transfer: a GPU waits for the device once per step.
        counts, nodes, sampled_runs, sampled_nodes, sampled_pairs, widest = torch.stack(per_size).long().tolist()

        runs = sum(counts[1:])
        first = torch.nonzero_static(starts_run, size=runs).squeeze(1)  # each run's first pair
        by_size = torch.argsort(rank[torch.nonzero_static(ends_run, size=runs).squeeze(1)], stable=True)
        loss = torch.zeros((), dtype=torch.float64, device=device)
        hidden_step = torch.empty_like(hidden)
        pair_sums = torch.zeros((pairs + every - 1) // every, 2 * d + 1, dtype=hidden.dtype, device=device)
        rows, moves, node_sums, node_sample = [], [], [], []
        done = 0
        for k in range(1, MAX_RUN + 1):
            if not counts[k]:
                continue
            these = by_size[done : done + counts[k]]  # runs of k pairs
            done += counts[k]
            at = first[these].unsqueeze(1) + torch.arange(k, device=device)  # [runs, k]: their pairs
            h = hidden[at]
            block_loss, step, change, index, on_path, path, g_private, curvature = self._score_runs(
                h, targets[first[these]], widest[k], alpha)
            loss += block_loss
            hidden_step[at] = step
            slot = torch.nonzero_static(on_path.reshape(-1), size=nodes[k]).squeeze(1)
            rows.append(index.reshape(-1)[slot])
            moves.append(change.reshape(-1, d)[slot])
            if IMPLICIT_SAMPLE:
                # A node's saturation: its run's hidden vectors, each with its curvature there;
                # sampled by run (every every-th run's nodes), as implicit_rows is told.
                sampled = these % every == 0
                picked = torch.nonzero_static(sampled, size=sampled_runs[k]).squeeze(1)
                c, hp = curvature[picked].transpose(1, 2), h[picked]  # [sampled runs, path, k], [.., k, d]
                sums = torch.cat([torch.bmm(c, hp), torch.bmm(c, hp.square()), c.sum(2, keepdim=True)], 2)
                picked_slots = torch.nonzero_static(on_path[picked].reshape(-1), size=sampled_nodes[k]).squeeze(1)
                node_sums.append(sums.reshape(-1, 2 * d + 1)[picked_slots])
                node_sample.append(sum(nodes[1:k]) + torch.nonzero_static(sampled[slot // widest[k]],
                                                                         size=sampled_nodes[k]).squeeze(1))
                # A hidden vector's saturation: the path as its pair saw it (every every-th pair).
                mine = torch.nonzero_static((at % every == 0).reshape(-1), size=sampled_pairs[k]).squeeze(1)
                mine_run, mine_rank = mine // k, mine % k
                earlier = (torch.arange(k, device=device) < mine_rank.unsqueeze(1)).to(hidden.dtype)
                moved = torch.bmm(g_private[mine_run].transpose(1, 2) * earlier.unsqueeze(1), h[mine_run])
                pair_sums[at.reshape(-1)[mine] // every] = curvature_sums(path[mine_run] + moved,
                                                                          curvature[mine_run, mine_rank])
        count = lengths.sum(dtype=torch.float64)
        rows, moves = torch.cat(rows), torch.cat(moves)
        if not IMPLICIT_SAMPLE:
            apply_rows(self.output, rows, moves)
            return loss, count, hidden_step, None
        node_sums, node_sample = torch.cat(node_sums), torch.cat(node_sample)
        part_of = torch.empty(len(rows), dtype=torch.long, device=device)
        part_of[node_sample] = torch.arange(len(node_sample), device=device)
        apply_rows(self.output, rows, moves, lambda m: node_sums[part_of[m]], node_sample)
        return loss, count, hidden_step, lambda m: pair_sums[m // every]

    def _score_runs(self, h: torch.Tensor, word: torch.Tensor, widest: int, alpha: float) -> tuple[torch.Tensor, ...]:
        """Runs of k pairs each, hidden vectors h [runs, k, d], against their targets' (word) paths.

        Pair r's score at node j is h[r] . path[j] + sum_{r' < r} g[r', j] (h[r] . h[r']) at private
        nodes (g: what pair r' did to node j, already times alpha). Returns the loss, each pair's
        step [runs, k, d], each run's change to each node of its path [runs, widest, d], the
        nodes [runs, widest] and which of them are on the path, the path as the step found it,
        g at private nodes and the curvature [runs, k, widest].
        """
        on_path = torch.arange(widest, device=h.device) < self.lengths[word].unsqueeze(1)
        index = self.points[word, :widest]  # paths are padded with node 0; on_path masks those
        labels = 1.0 - self.codes[word, :widest].to(h.dtype)
        private = (on_path & (index < len(self.output) - SHARED_NODES)).to(h.dtype)  # moved by the run's own pairs
        weight = on_path.to(h.dtype)
        path = self.output[index]
        scores = torch.bmm(h, path.transpose(1, 2))
        gram = torch.bmm(h, h.transpose(1, 2))
        g, g_private = torch.zeros_like(scores), torch.zeros_like(scores)
        for r in range(h.shape[1]):
            if r:
                scores[:, r] += torch.bmm(gram[:, r : r + 1, :r], g_private[:, :r]).squeeze(1)
            g[:, r] = (labels - torch.sigmoid(scores[:, r])) * weight * alpha
            g_private[:, r] = g[:, r] * private
        p = torch.sigmoid(scores)
        curvature = p * (1 - p) * weight.unsqueeze(1) * alpha
        loss = F.softplus(torch.where(labels.unsqueeze(1) > 0, -scores, scores)) * weight.unsqueeze(1)
        # Pair r's step: g[r] against the path it saw, path[j] + sum_{r' < r} g[r', j] h[r'] at private j.
        earlier_moves = torch.bmm(g_private, g.transpose(1, 2)).tril_(-1)  # [runs, r, r']
        step = torch.bmm(g, path) + torch.bmm(earlier_moves, h)
        change = torch.bmm(g.transpose(1, 2), h)
        return loss.sum(dtype=torch.float64), step, change, index, on_path, path, g_private, curvature
