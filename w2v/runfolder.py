"""The run folder: its file names, and reading and writing what a training run leaves there.

    config.json     settings, corpus summary, versions (RunFolder.write_meta / read_meta)
    vocab.tsv       word<TAB>count, most frequent first (w2v.dictionary)
    ids.npy         the corpus as int32 word ids; offsets.npy: int64 sentence starts + end
    checkpoint.pt   parameters and progress while training (removed when the run ends)
    model.pt        the trained parameters: {"input", "output", "output_hs"} tensors

Every file is written through w2v.fileio.atomic_write and read with weights_only=True.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from w2v.dictionary import read_vocab_tsv
from w2v.errors import UserError

CONFIG = "config.json"
VOCAB = "vocab.tsv"
IDS = "ids.npy"
OFFSETS = "offsets.npy"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
WHICH = ("in", "out", "sum")  # input vectors, output vectors, or their sum (Levy, Goldberg and Dagan 2015)


def load_tensors(path: Path) -> object:
    """torch.load(weights_only=True), memory-mapped: only the rows copied out reach memory."""
    try:
        try:
            return torch.load(path, weights_only=True, map_location="cpu", mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # files from torch < 1.6 cannot be mapped; read those whole
                raise
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # pickle/zip errors have many types; all mean "not a clean torch file"
        raise UserError(f"{path}: not a torch file that loads with weights_only=True "
                        f"({type(e).__name__}: {_first_sentence(str(e))})") from None


def _first_sentence(text: str) -> str:
    """torch's load errors run to several sentences of advice (some on how to unpickle): keep the first."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


def _rows(m: object, n: int, path: Path) -> torch.Tensor:
    """The first n rows as float32 in memory (copied out of the mapped file)."""
    if not isinstance(m, torch.Tensor) or m.dim() != 2:
        raise UserError(f"{path}: vectors are not a 2-d tensor")
    return m[:n].to(torch.float32, copy=True)


class RunFolder:
    """One run's folder on disk. `path / NAME` for the files named above."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    def is_run(self) -> bool:
        """Whether the folder holds a run's vocabulary (finished or not)."""
        return (self.path / VOCAB).exists()

    def read_vectors(self, which: str = "in", limit: int | None = None):
        """(words, float32 matrix, counts) of a finished run; which: in, out or sum (= in + out)."""
        if which not in WHICH:
            raise UserError(f"unknown --which {which!r}: use in, out or sum")
        words, counts = read_vocab_tsv(self / VOCAB, limit, with_counts=True)
        model = self / MODEL
        if not model.exists():
            raise UserError(f"{model} not found: is {self.path} a finished training run?")
        state = load_tensors(model)
        if not isinstance(state, dict) or "input" not in state:
            raise UserError(f"{model} has no 'input' vectors")
        n = len(words)
        rows = state["input"].shape[0] if isinstance(state["input"], torch.Tensor) else -1
        if rows < n or (limit is None and rows != n):
            raise UserError(f"{self.path}: vocab.tsv has {n} words but model.pt has {rows} input vectors")
        if which == "in":
            return words, _rows(state["input"], n, model), counts
        out = state.get("output")
        if out is None or (isinstance(out, torch.Tensor) and out.numel() == 0):
            raise UserError(f"{self.path} has no output vectors (hierarchical softmax only); use --which in")
        if not isinstance(out, torch.Tensor) or out.shape != state["input"].shape:
            raise UserError(f"{model}: input and output vectors differ in shape")
        if which == "out":
            return words, _rows(out, n, model), counts
        m = _rows(state["input"], n, model)
        m += out[:n]
        return words, m, counts
