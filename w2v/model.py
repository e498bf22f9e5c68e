"""The model on the PyTorch path: how the hidden vector is formed from a chunk's words.

Skip-gram: one word's input vector is the hidden vector for the other word of each
(centre, context) pair, in the order w2v.semantics.skipgram_input_is_context gives. CBOW:
the mean of the context words' input vectors is the hidden vector for the centre word, and
each context row receives the full hidden-layer step (word2vec C's update); a step never
holds two CBOW windows that share a position (disjoint_windows). The losses
(w2v.loss) score hidden vectors against output rows. The CPU kernel (csrc/kernel.c)
implements the same model pair by pair; this module does it over large batches with tensor
ops, for GPUs and machines without a C compiler.
"""

from __future__ import annotations

import numpy as np
import torch

from w2v import loss as loss_module
from w2v.loss import HierarchicalSoftmax, NegativeSampling, Saturation, apply_rows
from w2v.parameters import Parameters
from w2v.semantics import Tables, skipgram_input_is_context


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


SEPARATE_WINDOWS = True  # CBOW's steps keep windows apart (disjoint_windows); False only to measure against


def disjoint_windows(centre: torch.Tensor, context: torch.Tensor, window: int, step: int
                     ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """CBOW's pairs reordered so that no step holds two centres whose windows share a position.

    Neighbouring centres share most of their context rows, and sequential SGD lets each
    centre see the step its neighbour just gave them; one step summing both loses that. So
    the pairs go in 2 * window + 1 passes, pass r taking the centres at positions = r modulo
    that, cut into steps of at most `step` pairs that never straddle two passes. Returns the
    reordered centre and context and each step's [start, end).
    """
    passes = 2 * window + 1
    residue = centre % passes
    order = torch.argsort(residue, stable=True)
    ends = torch.cumsum(torch.bincount(residue, minlength=passes), 0).tolist()
    steps = [piece for begin, end in zip([0, *ends], ends) for piece in cut(begin, end, step)]
    return centre[order], context[order], steps


def cut(begin: int, end: int, step: int) -> list[tuple[int, int]]:
    """[begin, end) in pieces of at most `step`."""
    return [(s, min(s + step, end)) for s in range(begin, end, step)]


class TorchModel:
    """Trains chunks of sentences with batched tensor ops on any torch device."""

    def __init__(self, params: Parameters, tables: Tables, cbow: bool, window: int, negative: int,
                 seed: int, batch_pairs: int) -> None:
        self.params, self.cbow, self.window, self.batch_pairs = params, cbow, window, batch_pairs
        self.context_first = skipgram_input_is_context(tables.huffman is not None)
        device = params.input.device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.keep = None if tables.keep is None else torch.from_numpy(tables.keep).to(device)
        self.losses = []
        if negative > 0:
            noise = torch.from_numpy(tables.noise)
            self.losses.append(NegativeSampling(params.output, noise, negative, self.generator))
        if tables.huffman is not None:
            points, codes, lengths = (torch.from_numpy(a) for a in tables.huffman)
            # Skip-gram scores each context word against its centre's path: a centre's pairs are a run.
            self.losses.append(HierarchicalSoftmax(params.output_hs, points, codes, lengths, in_runs=not cbow))

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def train_chunk(self, ids: np.ndarray, offsets: np.ndarray, alpha_at) -> tuple[float, float]:
        """Train on the sentences ids[offsets[0]:offsets[-1]]; alpha_at(fraction done) gives the rate."""
        device = self.params.input.device
        tokens = torch.from_numpy(np.asarray(ids[offsets[0] : offsets[-1]], dtype=np.int64)).to(device, non_blocking=True)
        lengths = torch.from_numpy(np.diff(offsets)).to(device)
        sentence = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
        draws = torch.rand(len(tokens), generator=self.generator, device=device)  # drawn even without
        if self.keep is not None:  # sub-sampling, so the stream is the same either way
            kept = draws < self.keep[tokens]
            tokens, sentence = tokens[kept], sentence[kept]
        loss = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.float64, device=device)
        if len(tokens) == 0:
            return 0.0, 0.0
        centre, context = context_pairs(sentence, self.window, self.generator)
        if self.cbow and SEPARATE_WINDOWS:
            centre, context, steps = disjoint_windows(centre, context, self.window, self.batch_pairs)
        else:
            steps = cut(0, len(centre), self.batch_pairs)
        for start, end in steps:
            alpha = alpha_at(start / max(1, len(centre)))
            c, x = centre[start:end], context[start:end]
            if self.cbow:
                l, n = self._cbow(tokens, c, x, alpha)
            elif self.context_first:
                l, n = self._skipgram(tokens[x], tokens[c], alpha)
            else:
                l, n = self._skipgram(tokens[c], tokens[x], alpha)
            loss += l
            count += n
        return float(loss), float(count)

    def _skipgram(self, centres: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        loss, count, grad, saturation = self._score(self.params.input[centres], targets, alpha)
        apply_rows(self.params.input, centres, grad, saturation)
        return loss, count

    def _cbow(self, tokens: torch.Tensor, centre: torch.Tensor, context: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        # A slice may cut one centre's contexts in two; that centre then trains twice on
        # fewer contexts, which is rare (once per slice) and harmless.
        centres, group = torch.unique_consecutive(centre, return_inverse=True)
        rows = tokens[context]
        hidden = torch.zeros(len(centres), self.params.input.shape[1], device=rows.device)
        hidden.index_add_(0, group, self.params.input[rows])
        hidden /= torch.bincount(group, minlength=len(centres)).unsqueeze(1)
        loss, count, grad, saturation = self._score(hidden, tokens[centres], alpha)
        # Each context row is scored through its centre's hidden vector: the centre's curvature,
        # all of it, as if the centre's other context rows moved with it (word2vec's update
        # moves them all by the same step; 1/contexts of it scored worse, bench/RESULTS.md).
        # Sampled by centre: every n-th centre's sums, once, for all its context rows.
        if saturation is None:
            apply_rows(self.params.input, rows, grad[group])
        else:
            every = loss_module.IMPLICIT_SAMPLE
            sums = saturation(torch.arange(0, len(centres), every, device=rows.device))
            sample = (group % every == 0).nonzero().squeeze(1)
            apply_rows(self.params.input, rows, grad[group], lambda n: sums[group[n] // every], sample)
        return loss, count

    def _score(self, hidden: torch.Tensor, targets: torch.Tensor, alpha: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Saturation | None]:
        """Every objective (negative sampling, hierarchical softmax) on the same hidden vectors.

        Returns the loss, the scored pairs, the hidden vectors' step, and the hidden vectors'
        saturation for the implicit row step (w2v.loss.Saturation: curvature sums over the
        output rows each was scored against; None when the step is off).
        """
        grad = torch.zeros_like(hidden)
        loss = count = 0
        saturations = []
        for objective in self.losses:
            l, n, g, s = objective(hidden, targets, alpha)
            loss, count, grad = loss + l, count + n, grad + g
            saturations.append(s)
        if not loss_module.IMPLICIT_SAMPLE:
            return loss, count, grad, None
        if len(saturations) == 1:
            return loss, count, grad, saturations[0]
        return loss, count, grad, lambda n: sum(s(n) for s in saturations)  # the sums add up across objectives
