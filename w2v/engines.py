"""Engines: what trains one chunk of sentences. The C kernel on CPUs, PyTorch elsewhere.

Both take the same `Chunk` and return the same `ChunkResult`; both follow w2v.semantics
and read the learning rate from the same `Clock`. `make_engine` is the one place an engine
is chosen and built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from w2v import native
from w2v.config import TrainConfig
from w2v.encode import Encoded
from w2v.errors import UserError
from w2v.model import TorchModel
from w2v.parameters import Parameters
from w2v.semantics import Tables, chunk_seed, learning_rate

# Hierarchical softmax with several threads: inner nodes nearest the Huffman root that each
# thread trains in its own copy (kernel.c explains why).
TOP_NODES = 128
TORCH_BATCH_PAIRS = {"cpu": 1 << 12, "cuda": 1 << 17}  # --batch-pairs defaults
CHUNK_WORDS = 100_000  # --batch-words default


def chunk_words(config: TrainConfig, device: torch.device) -> int:
    """Words per chunk: --batch-words, by default 100,000, more for CBOW on the PyTorch path.

    That path trains a CBOW chunk in 2 * window + 1 passes (w2v.model.disjoint_windows), each
    cut into steps of --batch-pairs: the chunk is made big enough (about window pairs per
    word) that each pass fills a step, as a GPU needs for its speed.
    """
    if config.batch_words is not None:
        return config.batch_words
    if config.model != "cbow" or not (_torch_asked(config, device) or not native.available()):
        return CHUNK_WORDS
    pairs = config.batch_pairs or TORCH_BATCH_PAIRS[device.type]
    return max(CHUNK_WORDS, pairs * (2 * config.window + 1) // config.window)


@dataclass
class Chunk:
    """Sentences [s_begin, s_end) of the (local) corpus; `number` picks its random stream."""

    epoch: int
    number: int
    s_begin: int
    s_end: int


@dataclass
class ChunkResult:
    loss_sum: float
    loss_count: float
    words: int


@dataclass
class Clock:
    """The learning rate's clock: words trained so far (shared with the C kernel, which adds
    to it as it goes) out of `total`."""

    words_done: np.ndarray  # int64 [1]
    total: int
    alpha: float
    min_alpha: float

    @property
    def now(self) -> int:
        return int(self.words_done[0])

    def rate(self, done: float | None = None) -> float:
        return learning_rate(self.now if done is None else done, self.total, self.alpha, self.min_alpha)


class Engine(Protocol):
    threads: int  # how many threads may call train_chunk at once

    def train_chunk(self, chunk: Chunk) -> ChunkResult: ...


class NativeEngine:
    """The C kernel: hogwild threads, each call trains one chunk without the GIL."""

    def __init__(self, data: Encoded, params: Parameters, tables: Tables, config: TrainConfig, clock: Clock) -> None:
        self.data, self.params, self.tables, self.config, self.clock = data, params, tables, config, clock
        self.threads = config.threads

    def train_chunk(self, chunk: Chunk) -> ChunkResult:
        c, p, t = self.config, self.params, self.tables
        # The chunk's own offsets and ids, read with pread: pages of the memory-mapped corpus
        # would count in the process's memory once touched (Encoded.read).
        offsets = np.ascontiguousarray(self.data.read_offsets(chunk.s_begin, chunk.s_end + 1))
        base = int(offsets[0])
        job = native.make_job(
            input=p.input, output=p.output if c.negative else None, output_hs=p.output_hs if c.hs else None,
            dim=c.dim, negative=c.negative, window=c.window, cbow=c.model == "cbow",
            ids=self.data.read(base, int(offsets[-1])), offsets=offsets,
            s_begin=0, s_end=len(offsets) - 1, keep=t.keep, noise=t.alias,
            huffman=t.huffman, alpha=c.alpha, min_alpha=c.min_alpha, total_words=self.clock.total,
            words_done=self.clock.words_done, seed=chunk_seed(c.seed, chunk.epoch, chunk.number), ids_base=base,
            top_nodes=TOP_NODES if c.hs and c.threads > 1 else 0)
        native.train_chunk(job)
        return ChunkResult(job.loss_sum, float(job.loss_count), job.words)


class TorchEngine:
    """The PyTorch path (w2v.model): batches of pairs on any device, one thread."""

    threads = 1

    def __init__(self, data: Encoded, params: Parameters, tables: Tables, config: TrainConfig, clock: Clock) -> None:
        c = config
        batch_pairs = c.batch_pairs or TORCH_BATCH_PAIRS["cuda" if params.input.is_cuda else "cpu"]
        self.model = TorchModel(params, tables, c.model == "cbow", c.window, c.negative, c.seed, batch_pairs)
        self.data, self.config, self.clock = data, config, clock

    def train_chunk(self, chunk: Chunk) -> ChunkResult:
        self.model.reseed(chunk_seed(self.config.seed, chunk.epoch, chunk.number))
        offsets = self.data.read_offsets(chunk.s_begin, chunk.s_end + 1)
        base = int(offsets[0])
        words = int(offsets[-1]) - base
        start = self.clock.now
        rate: Callable[[float], float] = lambda f: self.clock.rate(start + f * words)
        loss, count = self.model.train_chunk(self.data.read(base, int(offsets[-1])), offsets - base, rate)
        self.clock.words_done[0] += words
        return ChunkResult(loss, count, words)


def _torch_asked(config: TrainConfig, device: torch.device) -> bool:
    """The PyTorch path whatever the compiler: a GPU, or --backend torch."""
    return device.type != "cpu" or config.backend == "torch"


def choose_backend(config: TrainConfig, device: torch.device, warn: Callable[[str], None]) -> str:
    """"native" (the C kernel) or "torch", from --backend, the device and the compiler."""
    if _torch_asked(config, device):
        return "torch"
    if native.available():
        return "native"
    if config.backend == "native":
        raise UserError(f"the C kernel is not available: {native.unavailable_reason()}")
    warn(f"warning: C kernel unavailable ({native.unavailable_reason()}); using the slower PyTorch path")
    return "torch"


def make_engine(backend: str, data: Encoded, params: Parameters, config: TrainConfig, clock: Clock) -> Engine:
    """The engine for `backend` ("native" or "torch") over this process's data and parameters."""
    tables = Tables.build(data.dictionary, config.sample, config.ns_exponent, config.hs)
    engine = {"native": NativeEngine, "torch": TorchEngine}[backend]
    return engine(data, params, tables, config, clock)
