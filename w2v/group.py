"""The group of processes a run trains in. One process: `SingleProcess`; torchrun:
w2v.distributed.Distributed. Both have this interface, so the training loop has one path.

A group prepares the run (`prepare`: in a group the leader builds and shares), hands out
chunks (`bounds`, `chunk_numbers`, `round_end`), starts the learning-rate clock (`begin`),
combines work at the end of each round (`sync`) and agrees on stopping (`stopping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch

from w2v.config import TrainConfig
from w2v.encode import Encoded
from w2v.engines import chunk_words
from w2v.errors import UserError
from w2v.parameters import Parameters
from w2v.runfolder import Progress
from w2v.semantics import chunk_bounds


@dataclass
class Prepared:
    """Everything training starts from. In a group, `data` is this process's shard and
    `config` the leader's settings (with this process's own threads, device, output)."""

    config: TrainConfig
    data: Encoded
    params: Parameters
    progress: Progress
    corpus_info: dict[str, Any]
    resumed: dict[str, Any] | None = None  # the checkpoint's group record, on resume
    history: list[dict[str, Any]] | None = None  # the stages of a continued run (config.json "history")


class Group(Protocol):
    is_main: bool  # this process writes files and prints
    device: torch.device
    stopping: bool  # all processes agreed to stop (after a signal)
    bounds: np.ndarray  # chunk boundaries in this process's sentences
    chunk_numbers: np.ndarray | None  # each local chunk's global number (None: the same)
    words_per_epoch: int  # words of one epoch, all processes together

    def prepare(self, config: TrainConfig, build: Callable[[TrainConfig], Prepared]) -> Prepared: ...
    def check_resume(self, saved: dict[str, Any] | None, progress: Progress) -> None: ...
    def begin(self, params: Parameters, progress: Progress, epochs: int) -> tuple[int, int]: ...
    def round_end(self) -> int: ...
    def sync(self, params: Parameters, progress: Progress, position: int, stop_requested: bool) -> bool: ...
    def words_now(self, clock: int, progress: Progress) -> int: ...
    def state(self) -> dict[str, Any] | None: ...
    def describe(self) -> dict[str, Any] | None: ...
    def resume_command(self, out: str) -> str: ...
    def close(self) -> None: ...


class SingleProcess:
    """A run in one process: no collectives, nothing to agree on."""

    is_main = True
    chunk_numbers = None

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stopping = False

    def prepare(self, config: TrainConfig, build: Callable[[TrainConfig], Prepared]) -> Prepared:
        prepared = build(config)
        self.bounds = chunk_bounds(prepared.data.offsets, chunk_words(config, self.device), prepared.data.read_offsets)
        self.words_per_epoch = int(prepared.data.offsets[-1])
        self.check_resume(prepared.resumed, prepared.progress)
        return prepared

    def check_resume(self, saved: dict[str, Any] | None, progress: Progress) -> None:
        check_resume(saved, progress, world=1, in_group=False)

    def begin(self, params: Parameters, progress: Progress, epochs: int) -> tuple[int, int]:
        """The learning-rate clock: words trained before now, and in all."""
        return progress.words_done, self.words_per_epoch * epochs

    def round_end(self) -> int:
        return len(self.bounds) - 1

    def sync(self, params: Parameters, progress: Progress, position: int, stop_requested: bool) -> bool:
        self.stopping = stop_requested
        return False  # one round per epoch

    def words_now(self, clock: int, progress: Progress) -> int:
        return max(clock, progress.words_done)

    def state(self) -> None:
        return None

    def describe(self) -> None:
        return None

    def resume_command(self, out: str) -> str:
        return f"w2v train --resume {out}"

    def close(self) -> None:
        pass


def mid_epoch(saved: dict[str, Any]) -> bool:
    """Whether a group's checkpoint record was written between the rounds of an epoch."""
    return bool(saved.get("round")) or any(int(p) for p in saved.get("positions", ()))


def check_resume(saved: dict[str, Any] | None, progress: Progress, world: int, in_group: bool) -> None:
    """Refuse a checkpoint written in mid-epoch by another number of processes.

    `saved` is checkpoint.pt's "distributed" entry (None when one process wrote it). At an
    epoch's end all ranks hold the same matrices, so any number of processes may go on.
    """
    if saved is None:
        if progress.chunk and in_group:  # its chunks are not the ones a group deals
            raise UserError("this checkpoint was written by one process in the middle of an epoch: "
                            "resume it without torchrun (`w2v train --resume ...`)")
        return
    try:
        saved_world = int(saved["world_size"])
        if mid_epoch(saved) and saved_world != world:
            how = "without torchrun" if not in_group else f"with {world} processes"
            raise UserError(f"this checkpoint was written by {saved_world} processes in the middle of an "
                            f"epoch and cannot resume {how}: launch torchrun with {saved_world} processes in all")
    except (KeyError, TypeError, ValueError):
        raise UserError("the checkpoint's distributed record is damaged: start the run again with --overwrite") from None
