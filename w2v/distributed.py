"""Training on several processes and machines with torchrun: one process group, local SGD.

torchrun's environment (WORLD_SIZE > 1) turns this on; `--distributed` insists on it. README
("Distributed training") says how to launch it and what each setting does. The mechanics:

- One process leads: the first rank whose machine has the corpus (to resume: the run's
  checkpoint). It prepares the run as a single process does and sends the others the
  settings, the vocabulary, the parameters and each rank's shard of the ids, so the other
  machines need no corpus and no shared filesystem. Only the leader writes and prints.
- Rank r trains chunks r, r+W, r+2W, ... of each epoch; a chunk's random stream depends only
  on (seed, epoch, chunk), never on which rank trains it.
- Local SGD with summed updates: ranks train their own copies for a round, then all_reduce
  what changed (hogwild's sum; averaging would divide the learning rate by W). The rows of
  frequent words, which go stale fastest, are summed FREQUENT_SYNCS times per --sync-words.
- Stops are agreed at the end of a round; a lost rank fails the next collective and every
  process exits with one line; checkpoints are written only at epoch ends and agreed stops.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from w2v.config import TrainConfig
from w2v.dictionary import Dictionary
from w2v.encode import Encoded
from w2v.engines import chunk_words
from w2v.errors import LeaderFailed, UserError
from w2v.group import Group, Prepared, SingleProcess, check_resume, mid_epoch
from w2v.parameters import Parameters
from w2v.runfolder import CHECKPOINT, Progress
from w2v.semantics import chunk_bounds

# The other ranks wait this long for the leader to read the corpus and build the vocabulary
# (a dead leader is noticed at once: its sockets close); training collectives use
# --dist-timeout instead.
PREPARE_TIMEOUT = timedelta(hours=6)
_PIECE = 1 << 24  # ids per message when sending shards (64 MB)
# Rounds: the rows of frequent words are summed this many times per --sync-words, all rows once.
FREQUENT_SYNCS = 10
# A word is frequent when it occurs this many times, on average, in --sync-words words.
FREQUENT_OCCURRENCES = 50
# Settings that stay each process's own; everything else comes from the leader.
_LOCAL_SETTINGS = ("threads", "device", "progress", "tensorboard", "evaluate")


class LostPeer(UserError):
    """A collective failed: another process died, hung, or its machine is unreachable."""


# --- torchrun's environment ----------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's RANK under torchrun (0 outside it)."""
    return _env_int("RANK", 0)


def requested(config: TrainConfig) -> bool:
    """Whether to join a process group: under torchrun with several processes, or --distributed."""
    return bool(config.distributed) or world_size() > 1


def local_processes() -> int:
    """Processes torchrun starts on this machine (LOCAL_WORLD_SIZE; 1 outside torchrun)."""
    return max(1, _env_int("LOCAL_WORLD_SIZE", 1))


def start(config: TrainConfig, device: torch.device, resume: bool = False) -> Group:
    """The group this run trains in: torchrun's processes, or this process alone."""
    if not requested(config):
        return SingleProcess(device)
    return Distributed(config, device, resume)


def _holds_input(config: TrainConfig, resume: bool) -> bool:
    """Whether this machine can lead: it has the run's checkpoint (to resume) or every corpus path."""
    if resume:
        return (Path(config.out) / CHECKPOINT).exists()
    return all(Path(p).exists() for p in config.paths)


# --- dealing the corpus ------------------------------------------------------------------


@dataclass
class Shard:
    """One rank's share of an epoch: global chunks r, r+W, ..., as sentence and token ranges."""

    chunk_ids: np.ndarray  # int64 [n] global chunk numbers (for the chunk's random stream)
    bounds: np.ndarray  # int64 [n + 1] chunk boundaries in the shard's sentences
    offsets: np.ndarray  # int64 [S + 1] the shard's sentence offsets into its ids
    token_ranges: np.ndarray  # int64 [n, 2] each chunk's [begin, end) in the corpus's ids

    @property
    def tokens(self) -> int:
        return int(self.offsets[-1])


def deal(offsets: np.ndarray, bounds: np.ndarray, world: int, rank_: int) -> Shard:
    """Rank `rank_`'s shard of a corpus with sentence `offsets` cut into chunks at `bounds`."""
    ids = np.arange(rank_, len(bounds) - 1, world, dtype=np.int64)
    s_lo, s_hi = bounds[ids].astype(np.int64), bounds[ids + 1].astype(np.int64)
    local_bounds = np.concatenate([[0], np.cumsum(s_hi - s_lo)]).astype(np.int64)
    pieces, base = [np.zeros(1, dtype=np.int64)], 0
    for lo, hi in zip(s_lo.tolist(), s_hi.tolist()):
        seg = offsets[lo : hi + 1].astype(np.int64)
        pieces.append(seg[1:] - seg[0] + base)
        base += int(seg[-1] - seg[0])
    token_ranges = np.stack([offsets[s_lo], offsets[s_hi]], axis=1).astype(np.int64).reshape(-1, 2)
    return Shard(ids, local_bounds, np.concatenate(pieces), token_ranges)


def gather_ids(ids: np.ndarray, shard: Shard) -> np.ndarray:
    """The shard's ids, copied out of the corpus's (memory-mapped) ids."""
    out = np.empty(shard.tokens, dtype=np.int32)
    at = 0
    for lo, hi in shard.token_ranges.tolist():
        out[at : at + hi - lo] = ids[lo:hi]
        at += hi - lo
    return out


# --- the process group ---------------------------------------------------------------------


class Distributed:
    """This process's place in the group, and the collectives the trainer calls."""

    def __init__(self, config: TrainConfig, device: torch.device, resume: bool = False) -> None:
        import torch.distributed as dist

        if not dist.is_available():
            raise UserError("this build of torch has no torch.distributed: train in one process")
        self.dist = dist
        self.owns_group = not dist.is_initialized()
        if self.owns_group:
            missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
            if missing:
                raise UserError(f"--distributed needs the environment torchrun sets ({', '.join(missing)} missing): "
                                "launch with `torchrun --nproc_per_node=N -m w2v train ...`")
        if device.type == "cuda" and device.index is None:  # one GPU per process: cuda:LOCAL_RANK
            local = _env_int("LOCAL_RANK", 0)
            if local >= torch.cuda.device_count():
                raise UserError(f"process {local} on this machine has no GPU of its own ({torch.cuda.device_count()} "
                                f"here): start at most that many per machine (--nproc_per_node), or pass --device cpu")
            device = torch.device("cuda", local)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.device = device
        if self.owns_group:
            # gloo carries CPU tensors (settings, ids, the CPU matrices); nccl the CUDA matrices.
            backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
            try:
                dist.init_process_group(backend, timeout=timedelta(seconds=config.dist_timeout))
            except (RuntimeError, ValueError) as e:
                raise LostPeer(f"could not join the process group: {_first_line(e)}") from None
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        # Training collectives (the default group) wait --dist-timeout for a silent process;
        # `prep`, which waits for the leader to read the corpus and sends the shards, waits longer.
        self.group = None
        with self._collective("setting up the process group"):
            self.prep = dist.new_group(timeout=PREPARE_TIMEOUT)
            # Chunks are cut so that every thread of the busiest process has one each round; the
            # leader is the first rank that has the corpus (or checkpoint).
            threads = torch.tensor([config.threads or 1], dtype=torch.int64)
            dist.all_reduce(threads, op=dist.ReduceOp.MAX, group=self.group)
            holds = torch.zeros(self.world, dtype=torch.int64)
            holds[self.rank] = int(_holds_input(config, resume))
            dist.all_reduce(holds, group=self.group)
        self.max_threads = int(threads.item())
        holders = holds.nonzero().flatten().tolist()
        self.leader = holders[0] if holders else 0  # none: rank 0 leads, and says what is missing
        self.is_main = self.rank == self.leader
        self.config = config
        self.stopping = False  # a stop agreed on by all ranks
        self.round = 0
        self.positions = [0] * self.world
        self._snapshots: list[torch.Tensor] = []

    # --- errors ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        try:
            yield
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as e:  # gloo/nccl errors and timeouts are RuntimeErrors (DistError too)
            raise LostPeer(self._lost_message(what, e)) from None

    def _lost_message(self, what: str, error: BaseException) -> str:
        who = f"process {getattr(self, 'rank', rank())} of {getattr(self, 'world', world_size())}"
        message = (f"{who} lost contact with the others while {what} ({_first_line(error)}): "
                   "a training process died, or its machine stopped answering")
        config = getattr(self, "config", None)
        if config is not None and getattr(self, "is_main", False):
            if (Path(config.out) / CHECKPOINT).exists():
                message += f"; the last checkpoint resumes with `{self.resume_command(config.out)}`"
            else:
                message += "; no checkpoint was written yet: start again"
        return message

    def resume_command(self, out: str) -> str:
        """The command that continues this run: the same number of processes on the same machines."""
        here = local_processes()
        if here >= self.world:
            return f"torchrun --nproc_per_node={self.world} -m w2v train --resume {out}"
        return (f"torchrun --nnodes={self.world // here} --nproc_per_node={here} --node_rank=... "
                f"--rdzv_backend=c10d --rdzv_endpoint=HOST:PORT -m w2v train --resume {out}")

    # --- before training -----------------------------------------------------------------
    def prepare(self, config: TrainConfig, build: Callable[[TrainConfig], Prepared]) -> Prepared:
        """The leader runs `build` (vocabulary and ids, or the checkpoint) and shares the result.

        Every rank returns what it trains from: its own shard as `data`, and the leader's
        settings with its own _LOCAL_SETTINGS.
        """
        dist = self.dist
        message: list[Any] = [None]
        if self.is_main:
            try:
                prepared = build(config)
                data, params, progress = prepared.data, prepared.params, prepared.progress
                self.check_resume(prepared.resumed, progress)
                bounds = chunk_bounds(data.offsets, self._chunk_words(config), data.read_offsets).astype(np.int64)
                saved = prepared.resumed
                if saved is not None and mid_epoch(saved) and saved.get("chunk_words") != self._chunk_words(config):
                    raise UserError("this checkpoint was written in the middle of an epoch with other chunks: "
                                    "resume with the --threads it was trained with")
                if saved is not None and mid_epoch(saved) and saved.get("world_size") == self.world:
                    self.round, self.positions = int(saved["round"]), [int(p) for p in saved["positions"]]
                else:
                    self.round, self.positions = 0, [progress.chunk] * self.world
                message = [{
                    "config": prepared.config.to_dict(), "words": data.dictionary.words,
                    "counts": data.dictionary.counts, "raw_tokens": data.raw_tokens,
                    "corpus_info": prepared.corpus_info, "progress": dict(progress.__dict__), "bounds": bounds,
                    "chunk_tokens": np.diff(data.offsets[bounds]).astype(np.int64),
                    "round": self.round, "positions": self.positions,
                    "shapes": [tuple(t.shape) for t in (params.input, params.output, params.output_hs)],
                }]
            except BaseException as e:
                failure = {"error": f"process {self.rank} failed: {_first_line(e)}",
                           "code": 130 if isinstance(e, KeyboardInterrupt) else 2}
                with contextlib.suppress(Exception):
                    dist.broadcast_object_list([failure], src=self.leader, group=self.prep)
                raise
        with self._collective(f"waiting for process {self.leader} to read the corpus"):
            dist.broadcast_object_list(message, src=self.leader, group=self.prep)
        head = message[0]
        if "error" in head:
            raise LeaderFailed(head["error"], head["code"])
        if not self.is_main:
            # The leader's settings, so every rank trains the same model whatever its command line said.
            local = {k: getattr(config, k) for k in _LOCAL_SETTINGS}
            config = TrainConfig.from_dict({**head["config"], **local, "progress": False, "tensorboard": False})
            dictionary = Dictionary(list(head["words"]), np.asarray(head["counts"], dtype=np.int64))
            params = Parameters(*(torch.zeros(shape) for shape in head["shapes"]))
            progress = Progress(**head["progress"])
            prepared = Prepared(config, None, params, progress, head["corpus_info"])  # data: the shard, below
            self.round, self.positions = int(head["round"]), [int(p) for p in head["positions"]]
        else:
            config = prepared.config
        self.config = c = config
        bounds, chunk_tokens = head["bounds"], head["chunk_tokens"]
        n_chunks = len(bounds) - 1
        self.chunks_per_round = max(1, round(c.sync_words / FREQUENT_SYNCS / self._chunk_words(c)))
        most = -(-n_chunks // self.world)  # chunks of the rank with most
        self.rounds = max(1, -(-most // self.chunks_per_round))
        # Frequent words: rows 0..frequent_rows-1 of the input and output matrices (most frequent
        # first) and the last `frequent_rows` Huffman inner nodes (the root's end of the tree).
        counts = np.asarray(head["counts"], dtype=np.int64)
        self.frequent_rows = int((counts * c.sync_words >= FREQUENT_OCCURRENCES * max(1, int(counts.sum()))).sum())

        with self._collective(f"receiving the parameters from process {self.leader}"):
            for t in (params.input, params.output, params.output_hs):
                if t.numel():
                    dist.broadcast(t, src=self.leader, group=self.prep)
        with self._collective("sending each process its share of the corpus"):
            if self.is_main:
                for r in (r for r in range(self.world) if r != self.rank):
                    shard = deal(data.offsets, bounds, self.world, r)
                    dist.send(torch.from_numpy(shard.offsets), dst=r, group=self.prep)
                    ids = gather_ids(data.ids, shard)
                    for at in range(0, len(ids), _PIECE):
                        dist.send(torch.from_numpy(ids[at : at + _PIECE]), dst=r, group=self.prep)
                    del ids
                shard = deal(data.offsets, bounds, self.world, self.rank)
                mine = Encoded(data.dictionary, gather_ids(data.ids, shard), shard.offsets, data.raw_tokens)
                self.chunk_numbers, self.bounds = shard.chunk_ids, shard.bounds
            else:
                self.chunk_numbers = np.arange(self.rank, n_chunks, self.world, dtype=np.int64)
                sentences = bounds[self.chunk_numbers + 1] - bounds[self.chunk_numbers]
                self.bounds = np.concatenate([[0], np.cumsum(sentences)]).astype(np.int64)
                offsets = np.empty(int(self.bounds[-1]) + 1, dtype=np.int64)
                dist.recv(torch.from_numpy(offsets), src=self.leader, group=self.prep)
                ids = np.empty(int(chunk_tokens[self.chunk_numbers].sum()), dtype=np.int32)
                for at in range(0, len(ids), _PIECE):
                    dist.recv(torch.from_numpy(ids[at : at + _PIECE]), src=self.leader, group=self.prep)
                mine = Encoded(dictionary, ids, offsets, int(head["raw_tokens"]))
        self.words_per_epoch = int(chunk_tokens.sum())
        self.local_words_per_epoch = int(mine.offsets[-1])
        self._offsets = mine.offsets
        progress.chunk = self.positions[self.rank]
        prepared.data, prepared.config = mine, c
        return prepared

    def check_resume(self, saved: dict[str, Any] | None, progress: Progress) -> None:
        check_resume(saved, progress, world=self.world, in_group=True)

    def _chunk_words(self, config: TrainConfig) -> int:
        """--batch-words, made smaller if need be to give every thread a chunk in each round."""
        return max(1, min(chunk_words(config, self.device), config.sync_words // FREQUENT_SYNCS // self.max_threads))

    # --- training --------------------------------------------------------------------
    def begin(self, params: Parameters, progress: Progress, epochs: int) -> tuple[int, int]:
        """Before the first round: keep the matrices as they stand (each sync adds up the changes to them).

        Returns this rank's learning-rate clock: words it has trained, and will train in all.
        """
        self._snapshots = [t.detach().clone() for t in _matrices(params)]
        self._from_end = [t is params.output_hs for t in _matrices(params)]  # HS: hot nodes at the end
        self._base = (progress.words_done, progress.loss_sum, progress.loss_count)
        done = progress.epoch * self.local_words_per_epoch + int(self._offsets[self.bounds[progress.chunk]])
        return done, max(1, self.local_words_per_epoch * epochs)

    def round_end(self) -> int:
        """The local chunk at which this round stops."""
        return min(len(self.bounds) - 1, (self.round + 1) * self.chunks_per_round)

    def words_now(self, clock: int, progress: Progress) -> int:
        """An estimate of the words all ranks have trained, from this rank's clock (for display)."""
        return int(clock * self.words_per_epoch / max(1, self.local_words_per_epoch))

    def sync(self, params: Parameters, progress: Progress, position: int, stop_requested: bool) -> bool:
        """End of a round on every rank: sum the changes to the matrices, add up words and losses,
        and agree on stopping. True: train the next round of this epoch; False: the epoch is over,
        or all ranks stop (then `self.stopping` is set)."""
        stats = torch.zeros(4 + self.world, dtype=torch.float64)
        stats[0] = progress.words_done - self._base[0]
        stats[1] = progress.loss_sum - self._base[1]
        stats[2] = progress.loss_count - self._base[2]
        stats[3] = 1.0 if stop_requested else 0.0
        stats[4 + self.rank] = position
        with self._collective("combining the processes' updates"):
            self.dist.all_reduce(stats, group=self.group)
            stopping = stats[3].item() > 0
            # All rows at every FREQUENT_SYNCS-th round, at an epoch's end and before stopping (so that
            # checkpoints and the final model hold every rank's updates); frequent rows otherwise.
            full = stopping or self.round + 1 >= self.rounds or (self.round + 1) % FREQUENT_SYNCS == 0
            if self.world > 1:
                self._sum_changes(_matrices(params), full)
        progress.words_done = self._base[0] + int(round(stats[0].item()))
        progress.loss_sum = self._base[1] + stats[1].item()
        progress.loss_count = self._base[2] + stats[2].item()
        self._base = (progress.words_done, progress.loss_sum, progress.loss_count)
        self.positions = [int(p) for p in stats[4:].tolist()]
        if stopping:
            self.stopping = True
            return False
        self.round += 1
        if self.round < self.rounds:
            return True
        self.round, self.positions = 0, [0] * self.world
        return False

    def _sum_changes(self, matrices: list[torch.Tensor], full: bool) -> None:
        """Rows become their value at the last sync plus every rank's change since (hogwild's sum).

        all_reduce adds the W ranks' rows (old + change_r); W - 1 copies of old come off again.
        """
        for m, old, from_end in zip(matrices, self._snapshots, self._from_end):
            if not full:
                rows = slice(max(0, len(m) - self.frequent_rows), None) if from_end else slice(0, self.frequent_rows)
                m, old = m[rows], old[rows]
                if not len(m):
                    continue
            self.dist.all_reduce(m, group=self.group)
            m.sub_(old, alpha=self.world - 1)
            old.copy_(m)

    def state(self) -> dict[str, Any]:
        """What checkpoint.pt needs beyond the one-process progress: where each rank stands."""
        return {"world_size": self.world, "round": self.round, "positions": list(self.positions),
                "chunk_words": self._chunk_words(self.config), "sync_words": self.config.sync_words}

    def describe(self) -> dict[str, Any]:
        """For config.json."""
        return {"world_size": self.world, "backend": str(self.dist.get_backend()),
                "sync_words": self.config.sync_words, "frequent_rows": self.frequent_rows,
                "chunk_words": self._chunk_words(self.config), "rounds_per_epoch": self.rounds}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.owns_group and self.dist.is_initialized():
                self.dist.destroy_process_group()
            elif self.dist.is_initialized():
                self.dist.destroy_process_group(self.prep)


def _matrices(params: Parameters) -> list[torch.Tensor]:
    return [t for t in (params.input, params.output, params.output_hs) if t.numel()]


def _first_line(error: BaseException) -> str:
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())  # gloo's "[.../pair.cc:537] " prefix
    text = text.split(" This is typically caused")[0]
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 240 else line[:237] + "..."
