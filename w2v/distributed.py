"""Training on several processes and machines with torchrun: one process group, local SGD.

    torchrun --nproc_per_node=2 -m w2v train ...                      # one machine
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 \\
             --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 -m w2v train ...   # each machine

torchrun's environment (WORLD_SIZE > 1) turns this on; `--distributed` insists on it. A
run in one process never comes here: no process group, no change, no cost.

How the work is shared:

- One process leads: the first rank (in torchrun's order) whose machine has the corpus
  (to resume: the run folder's checkpoint), so rank 0 when every machine has them. It
  reads the corpus and builds the vocabulary and ids in its run folder, as a single
  process does (or reads its checkpoint), then sends the others what they need over the
  process group: its settings, the words and counts, the parameters and each rank's
  shard of the ids. Other machines need neither the corpus nor a shared filesystem, and
  only the leader writes files or prints. (torchrun's c10d rendezvous numbers machines
  in an order of its own, so with the corpus on one machine rank 0 may be elsewhere.)
- An epoch's chunks (whole sentences, --batch-words words or fewer) are dealt in turn:
  rank r trains chunks r, r+W, r+2W, ... with its own --threads hogwild threads and the
  same C kernel (or PyTorch path). All ranks work on the same stretch of the corpus at
  the same time, as the threads of one process do, and a chunk's random stream depends
  only on (seed, epoch, chunk), never on which rank trains it.
- Local SGD with summed updates: ranks train on their own copies for a round, then
  all_reduce what changed, so every rank's updates land, as every thread's do in hogwild
  (averaging instead would halve the learning rate with 2 processes: 7.5% analogies
  instead of 10.5% on the default corpus). Summing updates that are a round stale
  overshoots on the rows updated most, and those are few: the rows of frequent words
  (occurring at least HOT_OCCURRENCES times in --sync-words words) are summed every
  --sync-words / HOT_SYNCS words, all rows every --sync-words words (per process), at
  the end of each epoch and before stopping. On the default corpus with 2 processes that
  is 2,000 of 23,000 rows every 100k words, and the accuracy of one process.
- The learning rate decays over each rank's own words (its shard × epochs); shards are
  balanced to within a chunk, so this is the one-process schedule.
- SIGINT/SIGTERM on any rank is agreed on at the end of the round: all ranks stop there,
  the leader writes checkpoint.pt (with where each rank stood) and every rank exits 130.
- A rank that dies breaks the group: the others fail in their next collective (at once
  if its process died, after --dist-timeout if its machine went silent), say so in one
  line and exit non-zero, and torchrun stops the rest. Checkpoints are only written at
  epoch ends and agreed stops, atomically, so the last one stays resumable.
- Resume: `torchrun ... -m w2v train --resume RUN` on the same machines. A checkpoint from
  an epoch's end resumes with any number of processes (or none); one from an agreed stop
  in mid-epoch needs the same number of processes and threads.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch

from w2v.errors import UserError

if TYPE_CHECKING:
    from w2v.config import TrainConfig
    from w2v.encode import Encoded
    from w2v.model import Parameters
    from w2v.trainer import Progress, Trainer

# The other ranks wait this long for the leader to read the corpus and build the vocabulary
# (a dead leader is noticed at once: its sockets close); training collectives use
# --dist-timeout instead.
PREPARE_TIMEOUT = timedelta(hours=6)
_PIECE = 1 << 24  # ids per message when sending shards (64 MB)
# Rounds: the rows of frequent words are summed this many times per --sync-words, all rows once.
HOT_SYNCS = 10
# A word is frequent when it occurs this many times, on average, in --sync-words words.
HOT_OCCURRENCES = 50
# Settings that stay each process's own; everything else comes from the leader.
_LOCAL_SETTINGS = ("threads", "device", "progress", "tensorboard", "evaluate")


class LostPeer(UserError):
    """A collective failed: another process died, hung, or its machine is unreachable."""


class Follow(Exception):
    """Raised on the other ranks when the leader failed before training; the leader reports why."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


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


def requested(config: "TrainConfig") -> bool:
    """Whether to join a process group: under torchrun with several processes, or --distributed."""
    return bool(config.distributed) or world_size() > 1


def local_processes() -> int:
    """Processes torchrun starts on this machine (LOCAL_WORLD_SIZE; 1 outside torchrun)."""
    return max(1, _env_int("LOCAL_WORLD_SIZE", 1))


_reporting = True  # False in a process that follows another's lead


def reporting() -> bool:
    """Whether this process prints the run's summary: alone, or the leader of its group."""
    return _reporting


def start(config: "TrainConfig", device: torch.device, resume: bool = False) -> "Distributed | None":
    """The process group for this run, or None for a plain single-process run."""
    if not requested(config):
        return None
    return Distributed(config, device, resume)


def _holds_input(config: "TrainConfig", resume: bool) -> bool:
    """Whether this machine can lead: it has the run's checkpoint (to resume) or every corpus path."""
    if resume:
        return (Path(config.out) / "checkpoint.pt").exists()
    return all(Path(p).exists() for p in config.paths)


def resume(run_dir: str) -> Any:
    """`w2v.resume` that also works on a machine without the run folder (ranks other than 0).

    Those ranks take the settings, vocabulary, parameters and their ids from the leader.
    """
    import w2v
    from w2v.config import TrainConfig
    from w2v.trainer import Trainer

    if world_size() == 1 or (Path(run_dir) / "config.json").exists():
        return w2v.resume(run_dir)
    return Trainer(TrainConfig(out=str(run_dir), distributed=True), resume=True).run()


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

    def __init__(self, config: "TrainConfig", device: torch.device, resume: bool = False) -> None:
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
        global _reporting
        _reporting = self.is_main
        self.config = config
        self.stopping = False  # a stop agreed on by all ranks
        self.round = 0
        self.positions = [0] * self.world
        self._resumed: dict[str, Any] | None = None
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
            if (Path(config.out) / "checkpoint.pt").exists():
                message += f"; the last checkpoint resumes with `{self.resume_command()}`"
            else:
                message += "; no checkpoint was written yet: start again"
        return message

    def resume_command(self) -> str:
        """The command that continues this run: the same number of processes on the same machines."""
        out = self.config.out if getattr(self, "config", None) else "RUN"
        here = local_processes()
        if here >= self.world:
            return f"torchrun --nproc_per_node={self.world} -m w2v train --resume {out}"
        return (f"torchrun --nnodes={self.world // here} --nproc_per_node={here} --node_rank=... "
                f"--rdzv_backend=c10d --rdzv_endpoint=HOST:PORT -m w2v train --resume {out}")

    # --- before training -----------------------------------------------------------------
    def prepare(self, trainer: "Trainer", build: Callable[[], tuple]) -> tuple:
        """The leader runs `build` (vocabulary and ids, or the checkpoint) and shares the result.

        Every rank returns (data, params, progress, corpus_info), `data` being its own shard.
        """
        from w2v.config import TrainConfig
        from w2v.dictionary import Dictionary
        from w2v.encode import Encoded
        from w2v.model import Parameters
        from w2v.trainer import Progress, chunk_bounds

        dist = self.dist
        message: list[Any] = [None]
        if self.is_main:
            try:
                data, params, progress, corpus_info = build()
                bounds = chunk_bounds(data.offsets, self._chunk_words(trainer.config)).astype(np.int64)
                saved = self._resumed
                if saved is not None and _mid_epoch(saved) and saved.get("chunk_words") != self._chunk_words(trainer.config):
                    raise UserError("this checkpoint was written in the middle of an epoch with other chunks: "
                                    "resume with the --threads it was trained with")
                if saved is not None and _mid_epoch(saved) and saved.get("world_size") == self.world:
                    self.round, self.positions = int(saved["round"]), [int(p) for p in saved["positions"]]
                else:
                    self.round, self.positions = 0, [progress.chunk] * self.world
                message = [{
                    "config": trainer.config.to_dict(), "words": data.dictionary.words,
                    "counts": data.dictionary.counts, "raw_tokens": data.raw_tokens, "corpus_info": corpus_info,
                    "progress": dict(progress.__dict__), "bounds": bounds,
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
            raise Follow(head["error"], head["code"])
        if not self.is_main:
            # The leader's settings, so every rank trains the same model whatever its command line said.
            local = {k: getattr(trainer.config, k) for k in _LOCAL_SETTINGS}
            trainer.config = TrainConfig.from_dict({**head["config"], **local, "progress": False, "tensorboard": False})
            trainer.run_dir = Path(trainer.config.out)
            dictionary = Dictionary(list(head["words"]), np.asarray(head["counts"], dtype=np.int64))
            params = Parameters(*(torch.zeros(shape) for shape in head["shapes"]))
            progress = Progress(**head["progress"])
            corpus_info = head["corpus_info"]
            self.round, self.positions = int(head["round"]), [int(p) for p in head["positions"]]
        self.config = c = trainer.config
        bounds, chunk_tokens = head["bounds"], head["chunk_tokens"]
        n_chunks = len(bounds) - 1
        self.chunks_per_round = max(1, round(c.sync_words / HOT_SYNCS / self._chunk_words(c)))
        most = -(-n_chunks // self.world)  # chunks of the rank with most
        self.rounds = max(1, -(-most // self.chunks_per_round))
        # Frequent words: rows 0..hot-1 of the input and output matrices (most frequent first)
        # and the last `hot` Huffman inner nodes (the root's end of the tree).
        counts = np.asarray(head["counts"], dtype=np.int64)
        self.hot = int((counts * c.sync_words >= HOT_OCCURRENCES * max(1, int(counts.sum()))).sum())

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
                self.chunk_ids, self.bounds = shard.chunk_ids, shard.bounds
            else:
                self.chunk_ids = np.arange(self.rank, n_chunks, self.world, dtype=np.int64)
                sentences = bounds[self.chunk_ids + 1] - bounds[self.chunk_ids]
                self.bounds = np.concatenate([[0], np.cumsum(sentences)]).astype(np.int64)
                offsets = np.empty(int(self.bounds[-1]) + 1, dtype=np.int64)
                dist.recv(torch.from_numpy(offsets), src=self.leader, group=self.prep)
                ids = np.empty(int(chunk_tokens[self.chunk_ids].sum()), dtype=np.int32)
                for at in range(0, len(ids), _PIECE):
                    dist.recv(torch.from_numpy(ids[at : at + _PIECE]), src=self.leader, group=self.prep)
                mine = Encoded(dictionary, ids, offsets, int(head["raw_tokens"]))
        self.words_per_epoch = int(chunk_tokens.sum())
        self.local_words_per_epoch = int(mine.offsets[-1])
        self._offsets = mine.offsets
        progress.chunk = self.positions[self.rank]
        return mine, params, progress, corpus_info

    def _chunk_words(self, config: "TrainConfig") -> int:
        """--batch-words, made smaller if need be to give every thread a chunk in each round."""
        return max(1, min(config.batch_words, config.sync_words // HOT_SYNCS // self.max_threads))

    # --- training --------------------------------------------------------------------
    def begin(self, params: "Parameters", progress: "Progress") -> tuple[int, int]:
        """Before the first round: keep the matrices as they stand (each sync adds up the changes to them).

        Returns this rank's learning-rate clock: words it has trained, and will train in all.
        """
        self._snapshots = [t.detach().clone() for t in _matrices(params)]
        self._from_end = [t is params.output_hs for t in _matrices(params)]  # HS: hot nodes at the end
        self._base = (progress.words_done, progress.loss_sum, progress.loss_count)
        done = progress.epoch * self.local_words_per_epoch + int(self._offsets[self.bounds[progress.chunk]])
        return done, max(1, self.local_words_per_epoch * self.config.epochs)

    def round_end(self) -> int:
        """The local chunk at which this round stops."""
        return min(len(self.bounds) - 1, (self.round + 1) * self.chunks_per_round)

    def words_now(self, clock: int) -> int:
        """An estimate of the words all ranks have trained, from this rank's clock (for display)."""
        return int(clock * self.words_per_epoch / max(1, self.local_words_per_epoch))

    def sync(self, params: "Parameters", progress: "Progress", position: int, stop: Any) -> bool:
        """End of a round on every rank: average the matrices, add up words and losses, and
        agree on stopping. True: train the next round of this epoch; False: the epoch is over,
        or all ranks stop (then `self.stopping` and `stop` are set)."""
        stats = torch.zeros(4 + self.world, dtype=torch.float64)
        stats[0] = progress.words_done - self._base[0]
        stats[1] = progress.loss_sum - self._base[1]
        stats[2] = progress.loss_count - self._base[2]
        stats[3] = 1.0 if stop.is_set() else 0.0
        stats[4 + self.rank] = position
        with self._collective("combining the processes' updates"):
            self.dist.all_reduce(stats, group=self.group)
            stopping = stats[3].item() > 0
            # All rows at every HOT_SYNCS-th round, at an epoch's end and before stopping (so that
            # checkpoints and the final model hold every rank's updates); frequent rows otherwise.
            full = stopping or self.round + 1 >= self.rounds or (self.round + 1) % HOT_SYNCS == 0
            if self.world > 1:
                self._sum_changes(_matrices(params), full)
        progress.words_done = self._base[0] + int(round(stats[0].item()))
        progress.loss_sum = self._base[1] + stats[1].item()
        progress.loss_count = self._base[2] + stats[2].item()
        self._base = (progress.words_done, progress.loss_sum, progress.loss_count)
        self.positions = [int(p) for p in stats[4:].tolist()]
        if stopping:
            self.stopping = True
            stop.set()
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
                rows = slice(max(0, len(m) - self.hot), None) if from_end else slice(0, self.hot)
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
                "sync_words": self.config.sync_words, "frequent_rows": self.hot,
                "chunk_words": self._chunk_words(self.config), "rounds_per_epoch": self.rounds}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.owns_group and self.dist.is_initialized():
                self.dist.destroy_process_group()
            elif self.dist.is_initialized():
                self.dist.destroy_process_group(self.prep)


def _matrices(params: "Parameters") -> list[torch.Tensor]:
    return [t for t in (params.input, params.output, params.output_hs) if t.numel()]


def _mid_epoch(saved: dict[str, Any]) -> bool:
    return bool(saved.get("round")) or any(int(p) for p in saved.get("positions", ()))


def check_resume(saved: dict[str, Any] | None, progress: "Progress", group: "Distributed | None") -> None:
    """Refuse a checkpoint written in mid-epoch by another number of processes.

    `saved` is checkpoint.pt's "distributed" entry (None when one process wrote it). At an
    epoch's end all ranks hold the same matrices, so any number of processes may go on.
    """
    world = group.world if group is not None else 1
    if group is not None:
        group._resumed = saved
    if saved is None:
        if progress.chunk and group is not None:  # its chunks are not the ones a group deals
            raise UserError("this checkpoint was written by one process in the middle of an epoch: "
                            "resume it without torchrun (`w2v train --resume ...`)")
        return
    if _mid_epoch(saved) and int(saved["world_size"]) != world:
        how = ("without torchrun" if world == 1 and group is None else f"with {world} processes")
        raise UserError(f"this checkpoint was written by {saved['world_size']} processes in the middle of an "
                        f"epoch and cannot resume {how}: launch torchrun with {saved['world_size']} processes in all")


def _first_line(error: BaseException) -> str:
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())  # gloo's "[.../pair.cc:537] " prefix
    text = text.split(" This is typically caused")[0]
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 240 else line[:237] + "..."
