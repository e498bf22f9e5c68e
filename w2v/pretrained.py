"""Trained vectors as a ready ``nn.Embedding`` for a downstream PyTorch model.

The layer's rows are the reserved rows first (``<pad>`` at 0, then ``<unk>``), then the
vectors in the trainer's order: the word with index ``i`` in the vectors (``vocab.tsv``
line ``i``) is row ``i + offset``, where ``offset`` is the number of reserved rows
(2 with the defaults). A model therefore looks a word up by the trainer's numbering
shifted by a constant, and ``encode`` does that mapping from tokens.

The ``<unk>`` row is the mean of the known vectors, not zeros: zeros would make an
unknown word indistinguishable from padding and carry no signal, while the mean is the
least surprising "some word" for a model that was never shown this one (a common choice,
e.g. in torchtext recipes and the fastText/GloVe transfer literature). The ``<pad>`` row
is zeros and is the layer's ``padding_idx``, so it stays zeros even when fine-tuning.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

from w2v.errors import UserError

if TYPE_CHECKING:
    from w2v.vectors import Vectors

PAD = "<pad>"
UNK = "<unk>"


class PretrainedEmbedding:
    """An ``nn.Embedding`` over trained vectors plus the token <-> row mapping.

    Attributes:
        layer: the embedding layer (``[len(itos), dim]``); put it in your model.
        itos: row -> token (reserved rows are named ``<pad>`` and ``<unk>``).
        stoi: word -> row, for the vectors' words only (reserved names are not keys, so a
            vocabulary that really contains the string ``"<unk>"`` keeps its own row).
        pad_index: row of the zero padding vector, or None when built with padding=False.
        unk_index: row used for out-of-vocabulary tokens, or None when built with unknown=False.
        offset: number of reserved rows; vectors word ``i`` is row ``i + offset``.
    """

    def __init__(self, layer: nn.Embedding, itos: list[str], stoi: dict[str, int],
                 pad_index: int | None, unk_index: int | None, offset: int) -> None:
        self.layer = layer
        self.itos = itos
        self.stoi = stoi
        self.pad_index = pad_index
        self.unk_index = unk_index
        self.offset = offset

    @property
    def dim(self) -> int:
        """Width of each row."""
        return self.layer.embedding_dim

    def __len__(self) -> int:
        return self.layer.num_embeddings

    def __repr__(self) -> str:
        frozen = not self.layer.weight.requires_grad
        return (f"PretrainedEmbedding(rows={len(self)}, dim={self.dim}, offset={self.offset}, "
                f"pad_index={self.pad_index}, unk_index={self.unk_index}, frozen={frozen})")

    def encode(self, tokens: Sequence[str]) -> torch.Tensor:
        """Rows for ``tokens`` as a 1-D LongTensor; unknown tokens map to ``unk_index``.

        Tokens are looked up as given: tokenize and lowercase them the way the vectors were
        trained (the trainer's default lowercases). Raises KeyError for an unknown token when
        the embedding has no ``<unk>`` row.
        """
        stoi, unk = self.stoi, self.unk_index
        if unk is not None:
            rows = [stoi.get(t, unk) for t in tokens]
        else:
            try:
                rows = [stoi[t] for t in tokens]
            except KeyError as exc:
                raise KeyError(f"token {exc.args[0]!r} is not in the vocabulary and this "
                               "embedding has no <unk> row (built with unknown=False)") from None
        return torch.tensor(rows, dtype=torch.long)

    def encode_batch(self, batch: Sequence[Sequence[str]],
                     max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode token lists into a right-padded ``[B, T]`` LongTensor and their lengths ``[B]``.

        Sequences longer than ``max_len`` keep their first ``max_len`` tokens (slice the
        lists yourself to keep another part). ``T`` is the longest kept length, and
        positions past a sequence's length hold ``pad_index``. A model that reads one
        output per sequence must take it at ``lengths - 1``, not at the last column.
        """
        if max_len is not None and max_len < 1:
            raise UserError(f"max_len must be at least 1, got {max_len}")
        encoded = [self.encode(tokens[:max_len] if max_len is not None else tokens) for tokens in batch]
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        width = int(lengths.max()) if len(encoded) else 0
        if self.pad_index is None:
            if bool((lengths != width).any()):
                raise ValueError("sequences of different lengths need a padding row; "
                                 "build the embedding with padding=True")
            fill = 0  # never used: every sequence fills the whole width
        else:
            fill = self.pad_index
        out = torch.full((len(encoded), width), fill, dtype=torch.long)
        for row, e in enumerate(encoded):
            out[row, :len(e)] = e
        return out, lengths


def embedding(vectors: Vectors | str | os.PathLike, freeze: bool = True, padding: bool = True,
              unknown: bool = True, limit: int | None = None) -> PretrainedEmbedding:
    """Build an ``nn.Embedding`` (via ``nn.Embedding.from_pretrained``) from trained vectors.

    Args:
        vectors: a ``w2v.vectors.Vectors``, or a path that ``w2v.vectors.load`` reads
            (a run folder, a ``.pt`` bundle, a word2vec text or binary file).
        freeze: keep the weights fixed (no gradient); False fine-tunes them with the model.
        padding: reserve row 0 as an all-zeros padding row (the layer's ``padding_idx``).
        unknown: reserve a row, set to the mean of the kept vectors, for unknown tokens.
        limit: keep only the first ``limit`` words (the most frequent); the rest are unknown.

    The weights are a copy: fine-tuning never changes ``vectors.matrix``.
    """
    if isinstance(vectors, (str, os.PathLike)):
        from w2v.vectors import load  # imported here: only this form needs the loaders

        vectors = load(vectors)
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    words = list(vectors.words)[:limit]
    matrix = vectors.matrix
    if isinstance(matrix, np.ndarray):
        matrix = torch.from_numpy(matrix)
    matrix = matrix[:len(words)].detach().to(torch.float32)
    if not words or matrix.shape[0] != len(words):
        raise UserError(f"vectors have {len(words)} words but {matrix.shape[0]} rows to use")

    reserved: list[tuple[str, torch.Tensor]] = []
    if padding:
        reserved.append((PAD, torch.zeros(1, matrix.shape[1])))
    if unknown:
        reserved.append((UNK, matrix.mean(dim=0, keepdim=True)))
    offset = len(reserved)
    # cat copies even when nothing is reserved (clone covers that case), so the layer
    # never shares storage with the caller's vectors.
    weights = torch.cat([r for _, r in reserved] + [matrix]) if reserved else matrix.clone()
    layer = nn.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=0 if padding else None)

    # Filled in reverse so that a repeated word keeps its first (most frequent) row.
    stoi = {w: i + offset for i, w in reversed(list(enumerate(words)))}
    itos = [name for name, _ in reserved] + words
    return PretrainedEmbedding(layer, itos, stoi,
                               pad_index=0 if padding else None,
                               unk_index=offset - 1 if unknown else None,
                               offset=offset)
