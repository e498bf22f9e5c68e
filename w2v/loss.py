"""Losses of the PyTorch path: what a hidden vector is scored against.

The model (w2v.model) decides how the hidden vector is formed; a loss scores it against
output rows with the logistic loss and applies plain SGD to those rows. Both losses
return the summed loss, the number of scored pairs (both float64 tensors, so a GPU
is not synchronised per batch) and the gradient step for the hidden
vectors (already multiplied by the learning rate, word2vec's `neu1e`).

Updates of one batch are summed per row (index_add_), plain minibatch SGD. A row hit
hundreds of times in one batch (a frequent word as a negative) would take all those
steps at once where sequential SGD would have saturated, and large batches diverge; so
each row's summed step is clipped to a norm of MAX_ROW_STEP. Scaling by 1/hits instead
starves frequent words' output rows and all vectors collapse to one direction
(measurements: bench/RESULTS.md and bench/GPU.md). The implicit row step (implicit_rows,
IMPLICIT_ITERATIONS) closes most of the gap to sequential SGD at 131,072 pairs per step but
costs 2.5-8x the CPU time; it stays off until it is measured on a GPU (bench/RESULTS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_ROW_STEP = 1.0
IMPLICIT_ITERATIONS = 0  # conjugate-gradient iterations of the implicit row step; 0: the explicit sum


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


def implicit_rows(total: torch.Tensor, where: torch.Tensor, against: torch.Tensor, curvature: torch.Tensor) -> torch.Tensor:
    """Solve (I + H_r) x_r = total_r for every row r by a few conjugate-gradient iterations.

    H_r = sum over the row's hits n of sum_m curvature[n, m] against[n, m] against[n, m]^T:
    the curvature of the row's summed loss. x is the implicit (backward Euler) step of the
    summed update: a row hit many times in one batch saturates along the directions its hits
    share, as sequential SGD's steps do, and keeps the full step along the others.
    """
    def times_h(v: torch.Tensor) -> torch.Tensor:
        t = torch.einsum("nmd,nd->nm", against, v[where]) * curvature
        return torch.zeros_like(v).index_add_(0, where, torch.einsum("nm,nmd->nd", t, against))

    x = torch.zeros_like(total)
    r = total.clone()
    p = r.clone()
    rr = (r * r).sum(1, keepdim=True)
    for _ in range(IMPLICIT_ITERATIONS):
        ap = p + times_h(p)
        a = rr / (p * ap).sum(1, keepdim=True).clamp(min=1e-30)
        x += a * p
        r -= a * ap
        rr_next = (r * r).sum(1, keepdim=True)
        p = r + (rr_next / rr.clamp(min=1e-30)) * p
        rr = rr_next
    return x


def apply_rows(matrix: torch.Tensor, index: torch.Tensor, step: torch.Tensor,
               against: torch.Tensor | None = None, curvature: torch.Tensor | None = None) -> None:
    """Sum the steps per row, clip each row's step to MAX_ROW_STEP, add them in place.

    With IMPLICIT_ITERATIONS > 0 and, for each step, the vectors its row was scored against
    and the loss's curvature there (logistic_step), each row takes the implicit step of its
    sum instead (implicit_rows).
    """
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
    if IMPLICIT_ITERATIONS and against is not None:
        total = implicit_rows(total, where, against.reshape(len(index), -1, matrix.shape[1]),
                              curvature.reshape(len(index), -1))
    total *= torch.clamp(MAX_ROW_STEP / total.norm(dim=1).clamp(min=1e-12), max=1.0).unsqueeze(1)
    if rows is None:
        matrix.add_(total)
    else:
        matrix.index_add_(0, rows, total)


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

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        noise, noise_ok = self.draw(targets)
        index = torch.cat([targets.unsqueeze(1), noise], 1)
        labels = torch.zeros(index.shape, dtype=hidden.dtype, device=hidden.device)
        labels[:, 0] = 1
        weight = torch.cat([torch.ones_like(noise_ok[:, :1]), noise_ok], 1)
        rows = self.output[index]
        loss, grad_hidden, grad_rows, curvature = logistic_step(hidden, rows, labels, weight, alpha)
        apply_rows(self.output, index, grad_rows, hidden.unsqueeze(1).expand(-1, index.shape[1], -1), curvature)
        return loss, weight.sum(dtype=torch.float64), grad_hidden, rows, curvature


class HierarchicalSoftmax:
    """Logistic loss on each code bit along the target's Huffman path (inner-node rows)."""

    def __init__(self, output_hs: torch.Tensor, points: torch.Tensor, codes: torch.Tensor, lengths: torch.Tensor) -> None:
        self.output = output_hs
        device = output_hs.device
        self.points, self.codes = points.long().to(device), codes.to(device)
        width = points.shape[1]
        self.mask = (torch.arange(width, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)).to(output_hs.dtype)

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.points[targets]
        labels = 1.0 - self.codes[targets].to(hidden.dtype)
        weight = self.mask[targets]
        rows = self.output[index]
        loss, grad_hidden, grad_rows, curvature = logistic_step(hidden, rows, labels, weight, alpha)
        apply_rows(self.output, index, grad_rows * weight.unsqueeze(-1),
                   hidden.unsqueeze(1).expand(-1, index.shape[1], -1), curvature)
        return loss, weight.sum(dtype=torch.float64), grad_hidden, rows, curvature
