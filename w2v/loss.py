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
(measurements: bench/RESULTS.md and bench/GPU.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_ROW_STEP = 1.0


def logistic_step(
    hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score hidden [P, d] against rows [P, K, d] with labels [P, K] (1 target, 0 noise).

    weight [P, K] masks padding (0) and counts real pairs (1). Returns (loss sum in
    float64, gradient step for hidden [P, d], gradient step for rows [P, K, d]).
    """
    scores = torch.einsum("pd,pkd->pk", hidden, rows)
    loss = (F.softplus(torch.where(labels > 0, -scores, scores)) * weight).sum(dtype=torch.float64)
    g = (labels - torch.sigmoid(scores)) * weight * alpha
    return loss, torch.einsum("pk,pkd->pd", g, rows), g.unsqueeze(-1) * hidden.unsqueeze(1)


def apply_rows(matrix: torch.Tensor, index: torch.Tensor, step: torch.Tensor) -> None:
    """Sum the steps per row, clip each row's step to MAX_ROW_STEP, add them in place."""
    index = index.reshape(-1)
    step = step.reshape(-1, matrix.shape[1])
    if matrix.is_cuda:
        # A dense scratch matrix costs a few microseconds on a GPU and, unlike
        # torch.unique, never waits for the device.
        total = torch.zeros_like(matrix).index_add_(0, index, step)
        scale = torch.clamp(MAX_ROW_STEP / total.norm(dim=1).clamp(min=1e-12), max=1.0).unsqueeze(1)
        matrix.add_(total * scale)
        return
    rows, where = torch.unique(index, return_inverse=True)
    total = torch.zeros(len(rows), matrix.shape[1], dtype=step.dtype, device=step.device).index_add_(0, where, step)
    scale = torch.clamp(MAX_ROW_STEP / total.norm(dim=1).clamp(min=1e-12), max=1.0).unsqueeze(1)
    matrix.index_add_(0, rows, total * scale)


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
        loss, grad_hidden, grad_rows = logistic_step(hidden, self.output[index], labels, weight, alpha)
        apply_rows(self.output, index, grad_rows)
        return loss, weight.sum(dtype=torch.float64), grad_hidden


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
        loss, grad_hidden, grad_rows = logistic_step(hidden, self.output[index], labels, weight, alpha)
        apply_rows(self.output, index, grad_rows * weight.unsqueeze(-1))
        return loss, weight.sum(dtype=torch.float64), grad_hidden
