"""The file PretrainedEmbedding.save writes: the layer's weights and its vocabulary, no pickle.

One ``torch.save`` dict of a tensor, strings, ints, bools and None, so that
``torch.load(path, weights_only=True)`` reads it; written through w2v.fileio.atomic_write.
Every field is checked on reading: a file from elsewhere, or a damaged one, is one UserError
line rather than a layer that fails later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from w2v.errors import UserError
from w2v.fileio import atomic_torch_save
from w2v.tokenization import checked

FORMAT = "w2v embedding"
VERSION = 1


def write_embedding(path: str | os.PathLike, weight: torch.Tensor, itos: list[str], pad_index: int | None,
                    unk_index: int | None, offset: int, tokenizer: str | None, lowercase: bool | None,
                    frozen: bool, missing: list[str]) -> None:
    """Save the fields PretrainedEmbedding.load needs (see read_embedding)."""
    atomic_torch_save({"format": FORMAT, "version": VERSION, "weight": weight.detach().cpu().contiguous(),
                       "itos": list(itos), "pad_index": pad_index, "unk_index": unk_index, "offset": offset,
                       "tokenizer": tokenizer, "lowercase": lowercase, "frozen": frozen,
                       "missing": list(missing)}, path)


def read_embedding(path: str | os.PathLike) -> dict[str, Any]:
    """The fields write_embedding saved, each checked; the weight is copied out of the file."""
    from w2v.runfolder import load_tensors  # one-line errors for files torch cannot read safely

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found" if not path.exists() else f"{path} is not a regular file")
    saved = load_tensors(path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise UserError(f"{path}: not a w2v embedding file (one written by PretrainedEmbedding.save)")
    if saved.get("version") != VERSION:
        raise UserError(f"{path}: embedding file version {saved.get('version')!r}; this w2v reads version {VERSION}")

    def bad(field: str, want: str) -> UserError:
        return UserError(f"{path}: '{field}' is {_shown(saved.get(field))}, expected {want}")

    weight = saved.get("weight")
    if not isinstance(weight, torch.Tensor) or weight.is_meta or weight.layout != torch.strided \
            or not weight.dtype.is_floating_point or weight.dim() != 2:
        raise bad("weight", "a 2-d tensor of floating-point numbers")
    if not torch.isfinite(weight).all():
        raise UserError(f"{path}: 'weight' holds nan or infinite values")
    rows = weight.shape[0]
    itos = saved.get("itos")
    if not isinstance(itos, list) or len(itos) != rows or not all(isinstance(w, str) for w in itos):
        raise bad("itos", f"a list of {rows} strings, one per row")
    offset = saved.get("offset")
    if not _is_int(offset) or not 0 <= offset <= rows:
        raise bad("offset", f"a row count from 0 to {rows}")
    for field in ("pad_index", "unk_index"):
        if saved.get(field) is not None and not (_is_int(saved[field]) and 0 <= saved[field] < offset):
            raise bad(field, f"None or a reserved row below {offset}")
    if not isinstance(saved.get("frozen"), bool):
        raise bad("frozen", "True or False")
    missing = saved.get("missing")
    if not isinstance(missing, list) or not all(isinstance(w, str) for w in missing):
        raise bad("missing", "a list of strings")
    tokenizer, lowercase = checked(saved.get("tokenizer"), saved.get("lowercase"), str(path))
    return {**saved, "weight": weight.clone(), "tokenizer": tokenizer, "lowercase": lowercase}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, torch.Tensor) else f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return text[:60] + ("..." if len(text) > 60 else "")
