"""Training settings: one dataclass, validated once, saved whole in config.json."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from w2v.errors import UserError

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "corpora"
MODELS = ("sg", "cbow")


@dataclass
class TrainConfig:
    """Every training setting; defaults are word2vec C's / gensim's."""

    paths: list[str] = field(default_factory=list)  # empty: the committed default corpus
    out: str | None = None  # default: runs/<name>
    name: str = "default"
    overwrite: bool = False
    model: str = "sg"
    dim: int = 100
    window: int = 5
    negative: int = 5
    hs: bool = False
    ns_exponent: float = 0.75
    sample: float = 1e-3
    min_count: int = 5
    max_vocab_size: int | None = None
    max_final_vocab: int | None = None
    epochs: int = 5
    alpha: float | None = None  # default: 0.025 for sg, 0.05 for cbow
    min_alpha: float | None = None  # default: alpha * 1e-4
    threads: int | None = None  # default: all cores
    seed: int = 1
    tokenizer: str = "default"
    lowercase: bool = True
    max_sentence_length: int = 10_000
    device: str = "auto"  # auto | cpu | cuda[:N]
    backend: str = "auto"  # auto | native | torch
    batch_words: int = 100_000  # words per work unit (a chunk for one thread)
    batch_pairs: int | None = None  # PyTorch path: pairs per SGD step (default 4,096 on CPU, 131,072 on GPU)
    checkpoint_every: int = 1  # epochs between checkpoints (0: only on interruption)
    evaluate: bool = True  # analogy accuracy and king - man + woman at the end
    tensorboard: bool = True
    progress: bool = True
    # Several processes (w2v/distributed.py): on whenever torchrun starts more than one.
    distributed: bool = False  # insist on torchrun's process group even with one process
    sync_words: int = 500_000  # words each process trains between exchanges of all rows (frequent rows: 10x as often)
    dist_timeout: float = 600.0  # seconds a collective waits for a silent process

    def resolved(self) -> "TrainConfig":
        """A validated copy with the defaults that depend on other settings filled in."""
        c = TrainConfig(**asdict(self))
        c.validate()
        if c.alpha is None:
            c.alpha = 0.025 if c.model == "sg" else 0.05
        if c.min_alpha is None:
            c.min_alpha = c.alpha * 1e-4
        if c.threads is None:
            c.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            # torchrun's processes on this machine share its cores (LOCAL_WORLD_SIZE: 1 outside torchrun)
            c.threads = max(1, c.threads // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))
        if not c.paths:
            c.paths = [str(p) for p in sorted(DEFAULT_CORPUS.glob("*.txt.gz"))]
        if c.out is None:
            c.out = str(Path("runs") / c.name)
        return c

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(message)

        for name in ("alpha", "min_alpha", "sample", "ns_exponent"):  # nan and inf pass the range checks below
            value = getattr(self, name)
            need(value is None or math.isfinite(value), f"--{name.replace('_', '-')} must be a finite number, not {value}")
        for name in ("dim", "window", "negative"):  # the C kernel holds these in 32 bits
            need(getattr(self, name) < 2**31, f"--{name} {getattr(self, name)} is too large")
        need(self.model in MODELS, f"--model must be one of {', '.join(MODELS)}, not {self.model!r}")
        need(self.dim >= 1, f"--dim must be at least 1, not {self.dim}")
        need(self.window >= 1, f"--window must be at least 1, not {self.window}")
        need(self.negative >= 0, f"--negative must be 0 or more, not {self.negative}")
        # word2vec uses 5-25; thousands only make a run crawl (and buffers scale with it).
        need(self.negative <= 1000, f"--negative must be at most 1000, not {self.negative}")
        need(self.negative > 0 or self.hs, "--negative 0 needs --hs: nothing would be trained")
        need(self.sample >= 0, f"--sample must be 0 or more, not {self.sample}")
        need(self.min_count >= 1, f"--min-count must be at least 1, not {self.min_count}")
        need(self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}")
        need(self.alpha is None or self.alpha > 0, f"--alpha must be above 0, not {self.alpha}")
        need(self.min_alpha is None or self.min_alpha >= 0, f"--min-alpha must be 0 or more, not {self.min_alpha}")
        need(self.threads is None or self.threads >= 1, f"--threads must be at least 1, not {self.threads}")
        need(self.max_vocab_size is None or self.max_vocab_size >= 1, "--max-vocab-size must be at least 1")
        need(self.max_final_vocab is None or self.max_final_vocab >= 1, "--max-final-vocab must be at least 1")
        need(self.max_sentence_length >= 1, "--max-sentence-length must be at least 1")
        need(self.window <= self.max_sentence_length,
             f"--window {self.window} is longer than the longest sentence ({self.max_sentence_length} tokens)")
        need(self.batch_words >= 1, "--batch-words must be at least 1")
        need(self.batch_pairs is None or self.batch_pairs >= 1, "--batch-pairs must be at least 1")
        need(self.checkpoint_every >= 0, "--checkpoint-every must be 0 or more")
        need(self.sync_words >= 1, f"--sync-words must be at least 1, not {self.sync_words}")
        need(self.dist_timeout > 0, f"--dist-timeout must be above 0, not {self.dist_timeout}")
        need(self.backend in ("auto", "native", "torch"), f"--backend must be auto, native or torch, not {self.backend!r}")
        need(self.seed >= 0, f"--seed must be 0 or more, not {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
