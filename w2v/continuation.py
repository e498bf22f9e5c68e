"""Training an existing run further on new text, with new words (`w2v train --continue RUN`).

- Old words keep their rows (same index), so an embedding exported from the old run stays
  valid; words of the new text that reach --min-count and were not in the vocabulary get
  new rows appended (input vectors drawn as word2vec initialises them, output rows zero).
- Counts: `--continue-counts merged` (default) adds the new text's counts to the old ones,
  so sub-sampling and the noise distribution reflect everything trained on; `new` uses the
  new text's counts alone. Either way a new word qualifies by its count in the new text.
- The learning rate restarts from --alpha and decays over the new text's epochs.
- The structure of the model cannot change (--model, --dim, negative sampling on or off,
  tokenizer, lowercasing): giving another value is a one-line error. Hierarchical
  softmax runs cannot continue: the Huffman tree of the merged counts would give most words
  new paths, so the trained inner nodes would no longer mean anything.
- config.json keeps the history of every stage (corpus, time, settings, vocabulary sizes).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from w2v.config import TrainConfig
from w2v.dictionary import Dictionary
from w2v.errors import UserError
from w2v.parameters import Parameters
from w2v.runfolder import CHECKPOINT, RunFolder

# Settings that fix the shape or meaning of the parameters: a continued run keeps them.
STRUCTURAL = ("model", "dim", "hs", "tokenizer", "lowercase")
COUNTS = ("merged", "new")


def continued_config(run_dir: str, paths: list[str], given: dict[str, Any]) -> TrainConfig:
    """The settings of a run continued from `run_dir`: the old run's, with the options `given`
    explicitly; --out defaults to the old run's folder."""
    old_folder = RunFolder(run_dir)
    if not old_folder.is_run() or not old_folder.held():
        raise UserError(f"{run_dir} is not a finished training run: --continue takes a run folder with model.pt")
    if (old_folder / CHECKPOINT).exists():
        raise UserError(f"{run_dir} holds an interrupted run: finish it first with `w2v train --resume {run_dir}`")
    old = old_folder.read_config()
    if old.hs:
        raise UserError("--continue cannot extend a hierarchical-softmax run: the merged counts give most words a "
                        "new Huffman path, so the trained inner nodes would be meaningless; train a new run")
    for key in STRUCTURAL:
        if key in given and given[key] != getattr(old, key):
            raise UserError(f"--{key.replace('_', '-')} {given[key]} differs from the run being continued "
                            f"({getattr(old, key)}): a continued run keeps its structure")
    if "negative" in given and (given["negative"] > 0) != (old.negative > 0):
        raise UserError("--negative cannot switch negative sampling on or off when continuing a run")
    if not paths:
        raise UserError("--continue needs the new text to train on: w2v train --continue RUN PATHS...")
    own = ("paths", "out", "name", "overwrite", "threads", "progress", "tensorboard", "evaluate", "device",
           "alpha", "min_alpha", "epochs")  # this invocation's, or defaults (epochs: from the new text's size)
    keep = {k: v for k, v in old.to_dict().items() if k not in own}
    settings = {**keep, **given, "paths": list(paths), "continue_from": str(old_folder.path)}
    if given.get("out") is None:
        settings["out"] = str(old_folder.path)
    if given.get("alpha") is None:  # the rate restarts from the old run's initial rate (and end rate)
        settings["alpha"] = old.alpha
        if given.get("min_alpha") is None:
            settings["min_alpha"] = old.min_alpha
    return TrainConfig(**settings)


def merge(old: Dictionary, new: Dictionary, min_count: int, counts: str) -> tuple[Dictionary, np.ndarray]:
    """The merged vocabulary (old words first, in their order; new words after, most frequent
    first) and the map from `new`'s ids to merged ids (-1: the word stays out)."""
    if counts not in COUNTS:
        raise UserError(f"--continue-counts must be one of {', '.join(COUNTS)}, not {counts!r}")
    old_index = old.index
    new_counts = np.asarray(new.counts, dtype=np.int64)
    at_old = np.array([old_index.get(w, -1) for w in new.words], dtype=np.int64)
    fresh = np.flatnonzero((at_old < 0) & (new_counts >= min_count))
    fresh = fresh[np.argsort(-new_counts[fresh], kind="stable")]
    if counts == "merged":
        merged_counts = np.asarray(old.counts, dtype=np.int64).copy()
        seen = at_old >= 0
        np.add.at(merged_counts, at_old[seen], new_counts[seen])
    else:
        merged_counts = np.zeros(len(old), dtype=np.int64)
        seen = at_old >= 0
        merged_counts[at_old[seen]] = new_counts[seen]
        merged_counts = np.maximum(merged_counts, 1)  # a word absent from the new text is still drawable
    words = list(old.words) + [new.words[i] for i in fresh.tolist()]
    counts_all = np.concatenate([merged_counts, new_counts[fresh]])
    remap = np.where(at_old >= 0, at_old, -1).astype(np.int32)
    remap[fresh] = np.arange(len(old), len(old) + len(fresh), dtype=np.int32)
    return Dictionary(words, counts_all), remap


def extend(params: Parameters, vocab: int, dim: int, seed: int) -> Parameters:
    """The old parameters with rows for new words: input as word2vec initialises it, output zero."""
    extra = vocab - params.input.shape[0]
    g = torch.Generator().manual_seed(seed)
    new_input = (torch.rand(extra, dim, generator=g) - 0.5) / dim
    inp = torch.cat([params.input, new_input])
    out = torch.cat([params.output, torch.zeros(extra, dim)]) if params.output.numel() else params.output
    return Parameters(inp, out, torch.zeros(0, dim))


def stage(config: TrainConfig, corpus_info: dict[str, Any], vocab_before: int, vocab_after: int) -> dict[str, Any]:
    """One entry of config.json's history."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "continued_from": config.continue_from,
            "files": corpus_info.get("files", []), "tokens": corpus_info.get("tokens"),
            "vocab_before": vocab_before, "vocab_after": vocab_after,
            "settings": {k: v for k, v in config.to_dict().items() if k != "paths"}}
