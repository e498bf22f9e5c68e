"""The word2vec parameters: input vectors and the two kinds of output vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: reading a run's vectors for a query never loads torch
    import torch


@dataclass
class Parameters:
    """Input vectors, negative-sampling output vectors, hierarchical-softmax inner-node vectors."""

    input: torch.Tensor  # [V, d]
    output: torch.Tensor  # [V, d], or [0, d] without negative sampling
    output_hs: torch.Tensor  # [V - 1, d], or [0, d] without hierarchical softmax

    @classmethod
    def initial(cls, vocab: int, dim: int, negative: int, hs: bool, seed: int) -> "Parameters":
        """Input uniform in ±0.5/dim, outputs zero: word2vec C's initialisation."""
        import torch

        g = torch.Generator().manual_seed(seed)
        inp = (torch.rand(vocab, dim, generator=g) - 0.5) / dim
        out = torch.zeros(vocab if negative > 0 else 0, dim)
        out_hs = torch.zeros(vocab - 1 if hs else 0, dim)
        return cls(inp, out, out_hs)

    def to(self, device: torch.device) -> "Parameters":
        return Parameters(self.input.to(device), self.output.to(device), self.output_hs.to(device))

    def copy_(self, other: "Parameters") -> None:
        """Take `other`'s values (e.g. back from a GPU) into these tensors."""
        for mine, theirs in zip(self.matrices(), other.matrices()):
            mine.copy_(theirs.cpu())

    def matrices(self) -> list[torch.Tensor]:
        return [self.input, self.output, self.output_hs]

    def state(self) -> dict[str, torch.Tensor]:
        return {"input": self.input.cpu(), "output": self.output.cpu(), "output_hs": self.output_hs.cpu()}
