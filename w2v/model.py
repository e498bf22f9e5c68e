"""The model: the word2vec parameters and, on the PyTorch path, how the hidden vector is formed.

Skip-gram: the centre word's input vector is the hidden vector for each of its context
words; with hierarchical softmax each context word's input vector is the hidden vector for
the centre word (word2vec C's order; see csrc/kernel.c for why). CBOW: the mean of the
context words' input vectors is the hidden vector for the centre word, and each context row
receives the full hidden-layer step (word2vec C's update). The CPU kernel (csrc/kernel.c)
implements the same model pair by pair; this module does it over large batches with tensor
ops, for GPUs and machines without a C compiler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from w2v.dictionary import Dictionary
from w2v.loss import HierarchicalSoftmax, NegativeSampling, apply_rows


@dataclass
class Parameters:
    """Input vectors, negative-sampling output vectors, hierarchical-softmax inner-node vectors."""

    input: torch.Tensor  # [V, d]
    output: torch.Tensor  # [V, d], or [0, d] without negative sampling
    output_hs: torch.Tensor  # [V - 1, d], or [0, d] without hierarchical softmax

    @classmethod
    def initial(cls, vocab: int, dim: int, negative: int, hs: bool, seed: int) -> "Parameters":
        """Input uniform in ±0.5/dim, outputs zero: word2vec C's initialisation."""
        g = torch.Generator().manual_seed(seed)
        inp = (torch.rand(vocab, dim, generator=g) - 0.5) / dim
        out = torch.zeros(vocab if negative > 0 else 0, dim)
        out_hs = torch.zeros(vocab - 1 if hs else 0, dim)
        return cls(inp, out, out_hs)

    def to(self, device: torch.device) -> "Parameters":
        return Parameters(self.input.to(device), self.output.to(device), self.output_hs.to(device))

    def state(self) -> dict[str, torch.Tensor]:
        return {"input": self.input.cpu(), "output": self.output.cpu(), "output_hs": self.output_hs.cpu()}


def context_pairs(sentence: torch.Tensor, window: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, context) positions within each sentence, with a reduced window drawn per centre.

    sentence [N] holds the sentence number of each (kept) token; pairs come sorted by centre.
    """
    n = len(sentence)
    device = sentence.device
    reach = torch.randint(1, window + 1, (n,), generator=generator, device=device)
    offsets = torch.cat([torch.arange(-window, 0, device=device), torch.arange(1, window + 1, device=device)])
    pos = torch.arange(n, device=device).unsqueeze(1) + offsets.unsqueeze(0)
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, n - 1)
    ok = inside & (offsets.abs().unsqueeze(0) <= reach.unsqueeze(1)) & (sentence[pos] == sentence.unsqueeze(1))
    centre, k = ok.nonzero(as_tuple=True)
    return centre, pos[centre, k]


class TorchTrainer:
    """Trains chunks of sentences with batched tensor ops on any torch device."""

    def __init__(self, params: Parameters, dictionary: Dictionary, cbow: bool, window: int, negative: int,
                 hs: bool, ns_exponent: float, keep: np.ndarray, seed: int, batch_pairs: int) -> None:
        self.params, self.cbow, self.window, self.batch_pairs, self.hs = params, cbow, window, batch_pairs, hs
        device = params.input.device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.keep = torch.from_numpy(keep).to(device)
        self.losses = []
        if negative > 0:
            noise = torch.from_numpy(dictionary.noise_distribution(ns_exponent))
            self.losses.append(NegativeSampling(params.output, noise, negative, self.generator))
        if hs:
            points, codes, lengths = (torch.from_numpy(a) for a in dictionary.huffman())
            self.losses.append(HierarchicalSoftmax(params.output_hs, points, codes, lengths))

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def train_chunk(self, ids: np.ndarray, offsets: np.ndarray, alpha_at) -> tuple[float, float]:
        """Train on the sentences ids[offsets[0]:offsets[-1]]; alpha_at(fraction done) gives the rate."""
        device = self.params.input.device
        tokens = torch.from_numpy(np.asarray(ids[offsets[0] : offsets[-1]], dtype=np.int64)).to(device, non_blocking=True)
        lengths = torch.from_numpy(np.diff(offsets)).to(device)
        sentence = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
        kept = torch.rand(len(tokens), generator=self.generator, device=device) < self.keep[tokens]
        tokens, sentence = tokens[kept], sentence[kept]
        loss = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.float64, device=device)
        if len(tokens) == 0:
            return 0.0, 0.0
        centre, context = context_pairs(sentence, self.window, self.generator)
        step = self.batch_pairs
        for start in range(0, len(centre), step):
            alpha = alpha_at(start / max(1, len(centre)))
            c, x = centre[start : start + step], context[start : start + step]
            if self.cbow:
                l, n = self._cbow(tokens, c, x, alpha)
            elif self.hs:  # the context word's vector predicts the centre (module docstring)
                l, n = self._skipgram(tokens[x], tokens[c], alpha)
            else:
                l, n = self._skipgram(tokens[c], tokens[x], alpha)
            loss += l
            count += n
        return float(loss), float(count)

    def _skipgram(self, centres: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        loss, count, grad = self._score(self.params.input[centres], targets, alpha)
        apply_rows(self.params.input, centres, grad)
        return loss, count

    def _cbow(self, tokens: torch.Tensor, centre: torch.Tensor, context: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        # A slice may cut one centre's contexts in two; that centre then trains twice on
        # fewer contexts, which is rare (once per slice) and harmless.
        centres, group = torch.unique_consecutive(centre, return_inverse=True)
        rows = tokens[context]
        hidden = torch.zeros(len(centres), self.params.input.shape[1], device=rows.device)
        hidden.index_add_(0, group, self.params.input[rows])
        hidden /= torch.bincount(group, minlength=len(centres)).unsqueeze(1)
        loss, count, grad = self._score(hidden, tokens[centres], alpha)
        apply_rows(self.params.input, rows, grad[group])
        return loss, count

    def _score(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every objective (negative sampling, hierarchical softmax) on the same hidden vectors."""
        grad = torch.zeros_like(hidden)
        loss = count = 0
        for objective in self.losses:
            l, n, g = objective(hidden, targets, alpha)
            loss, count, grad = loss + l, count + n, grad + g
        return loss, count, grad


class Word2Vec:
    """A trained model: the dictionary, the parameters and the settings, tied to its run folder."""

    def __init__(self, dictionary: Dictionary, params: Parameters, config, run_dir) -> None:
        from pathlib import Path

        self.dictionary, self.params, self.config, self.run_dir = dictionary, params, config, Path(run_dir)
        self.stats: dict[str, float] = {}

    def vectors(self, which: str = "in"):
        """The word vectors as a `w2v.vectors.Vectors` (which: in, out or sum = in + out)."""
        from w2v.vectors import Vectors

        matrix = {"in": lambda: self.params.input, "out": lambda: self.params.output,
                  "sum": lambda: self.params.input + self.params.output}[which]()
        return Vectors(self.dictionary.words, matrix, self.dictionary.counts)

    def save(self) -> None:
        """model.pt: plain tensors only, so torch.load(..., weights_only=True) reads it."""
        from w2v.fileio import atomic_torch_save

        atomic_torch_save(self.params.state(), self.run_dir / "model.pt")
