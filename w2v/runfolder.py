"""The run folder: its file names, and reading and writing what a training run leaves there.

    config.json     settings, corpus summary, versions (RunFolder.write_meta / read_meta)
    vocab.tsv       word<TAB>count, most frequent first (w2v.dictionary)
    ids.npy         the corpus as int32 word ids; offsets.npy: int64 sentence starts + end
    checkpoint.pt   parameters and progress while training (removed when the run ends)
    model.pt        the trained parameters: {"input", "output", "output_hs"} tensors

Every file is written through w2v.fileio.atomic_write and read with weights_only=True;
reading a finished run's vectors does not import torch (w2v.torchfile reads model.pt).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from w2v.config import TrainConfig
from w2v.dictionary import Dictionary, read_vocab_tsv
from w2v.errors import UserError
from w2v.fileio import atomic_torch_save, atomic_write, remove_stale_temporaries
from w2v.parameters import Parameters
from w2v.tokenization import of_run
from w2v.torchfile import read_plain

if TYPE_CHECKING:
    import torch

CONFIG = "config.json"
VOCAB = "vocab.tsv"
IDS = "ids.npy"
OFFSETS = "offsets.npy"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
PHRASES = "phrases.tsv"
TENSORBOARD_EVENTS = "events.out.tfevents.*"
LOCK = ".w2v-lock"  # held (flock) by the run training in the folder
REPLACED = ".w2v-replaced"  # --overwrite: the previous run, kept until the new one has finished
RUN_FILES = (CONFIG, MODEL, CHECKPOINT)  # any of these: the folder holds a run
DATA_FILES = (CONFIG, VOCAB, IDS, OFFSETS, MODEL, CHECKPOINT, PHRASES)
WHICH = ("in", "out", "sum")  # input vectors, output vectors, or their sum (Levy, Goldberg and Dagan 2015)


def load_tensors(path: Path) -> object:
    """torch.load(weights_only=True), memory-mapped: only the rows copied out reach memory."""
    import torch

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


def load_arrays(path: Path) -> object:
    """What load_tensors returns, with numpy arrays for tensors, memory-mapped (copy-on-write).

    Our own files are read by w2v.torchfile without importing torch; any other file goes
    through load_tensors, and its dense tensors become arrays (other tensors stay tensors
    for the caller's checks to refuse).
    """
    plain = read_plain(path)
    if plain is not None:
        return plain
    state = load_tensors(path)
    return {k: _as_array(v) for k, v in state.items()} if isinstance(state, dict) else state


def _as_array(t: object) -> object:
    import torch

    if not isinstance(t, torch.Tensor) or t.is_meta or t.layout != torch.strided or t.device.type != "cpu":
        return t
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    try:
        return t.detach().numpy()
    except (TypeError, RuntimeError):  # a dtype numpy lacks (complex32, float8, quantized)
        return t


def select_vectors(which: str, input: np.ndarray | torch.Tensor, output: np.ndarray | torch.Tensor | None,
                   run: str) -> np.ndarray | torch.Tensor:
    """The one place in / out / sum is chosen: input vectors, output vectors, or input + output.

    Arrays for queries (read_vectors), tensors for a run just trained (w2v.run).
    """
    if which not in WHICH:
        raise UserError(f"unknown --which {which!r}: use in, out or sum")
    if which == "in":
        return input
    if output is None or 0 in output.shape:
        raise UserError(f"{run} has no output vectors (hierarchical softmax only); use --which in")
    return output if which == "out" else input + output


def _matrix_shapes(config: TrainConfig, vocab: int) -> dict[str, tuple[int, int]]:
    """The shape of each saved matrix for these settings and vocabulary (0 rows: not trained)."""
    return {"input": (vocab, config.dim), "output": (vocab if config.negative else 0, config.dim),
            "output_hs": (vocab - 1 if config.hs else 0, config.dim)}


def _checked_matrix(t: object, shape: tuple[int, int], what: str,
                    again: str = "; start the run again with --overwrite") -> torch.Tensor:
    """A saved matrix: a dense float32 CPU tensor of `shape` with finite values, or a one-line error."""
    import torch

    rows, dim = shape
    if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.device.type != "cpu":
        raise UserError(f"{what} is missing or not a tensor{again}")
    if t.dtype != torch.float32:
        raise UserError(f"{what} is {t.dtype}, not float32{again}")
    if (rows == 0 and t.numel() != 0) or (rows and tuple(t.shape) != (rows, dim)):
        raise UserError(f"{what} has shape {tuple(t.shape)} where the run's settings and vocabulary need "
                        f"{(rows, dim)}{again}")
    if rows == 0:
        return torch.zeros(0, dim)
    if not torch.isfinite(t).all():
        raise UserError(f"{what} holds nan or infinite values (training diverged?){again or ''}")
    return t.contiguous()


def _first_sentence(text: str) -> str:
    """torch's load errors run to several sentences of advice (some on how to unpickle): keep the first."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


@dataclass
class Progress:
    """Where training stands: enough to resume exactly."""

    epoch: int = 0
    chunk: int = 0  # next chunk of `epoch` to train
    words_done: int = 0
    loss_sum: float = 0.0
    loss_count: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Any, where: Path) -> "Progress":
        """Progress read back from a checkpoint, every field checked (a run folder is input too)."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: no progress record: start the run again with --overwrite")
        values = {}
        for name, kind in (("epoch", int), ("chunk", int), ("words_done", int), ("loss_sum", float),
                           ("loss_count", float)):
            v = d.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (kind is int and v != int(v)):
                raise UserError(f"{where}: progress {name} is {v!r}, not a count: start the run again with --overwrite")
            values[name] = kind(v)
        losses = d.get("epoch_losses", [])
        if not isinstance(losses, list) or not all(isinstance(x, (int, float)) for x in losses):
            raise UserError(f"{where}: progress epoch_losses is damaged: start the run again with --overwrite")
        return cls(**values, epoch_losses=[float(x) for x in losses])


def _rows(m: object, n: int, path: Path) -> np.ndarray:
    """The first n rows as float32: float32 stays mapped from the file, other types are converted."""
    if not isinstance(m, np.ndarray) or m.ndim != 2:
        raise UserError(f"{path}: vectors are not a 2-d tensor")
    return np.asarray(m[:n], dtype=np.float32)


def _plain(value: Any) -> Any:
    """Plain JSON values: numpy numbers as Python ones, nan and inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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

    # --- starting and resuming ----------------------------------------------------------
    def held(self) -> list[str]:
        """The run files already in the folder (a finished or interrupted run)."""
        return [f for f in RUN_FILES if (self.path / f).exists()]

    def remove_stale(self) -> None:
        """Delete the temporaries a killed w2v run left here (ours only: fileio.temporary_name)."""
        if self.path.is_dir():
            remove_stale_temporaries(self.path)

    def create(self) -> None:
        if self.path.is_dir():
            self.remove_stale()
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the run folder {self.path}: {e.strerror or e}") from None

    def lock(self) -> Any:
        """Take the folder for this process: a second run into the same folder gets a one-line error.

        An flock on LOCK, released by `release_lock` or when the process ends (even by
        SIGKILL), so a dead run never keeps the folder. Where flock is missing: no lock.
        """
        try:
            import fcntl
        except ImportError:
            return None
        f = open(self.path / LOCK, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise UserError(f"another w2v run (process {holder}) is training in {self.path}: wait for it to "
                            "finish or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        return f

    def release_lock(self, lock: Any) -> None:
        """Remove the lock file (while still holding it) and let go."""
        if lock is None:
            return
        with contextlib.suppress(OSError):
            (self.path / LOCK).unlink()
        lock.close()

    def run_files(self) -> list[Path]:
        """Every file a run leaves here: DATA_FILES and TensorBoard's event files."""
        return [self.path / f for f in DATA_FILES if (self.path / f).exists()] + \
            sorted(self.path.glob(TENSORBOARD_EVENTS))

    def set_aside(self) -> None:
        """--overwrite: move the old run into REPLACED, where it stays until the new run has finished."""
        aside = self.path / REPLACED
        if aside.exists():  # an older replacement that never finished: the user asked to replace it
            shutil.rmtree(aside)
        aside.mkdir()
        for f in self.run_files():
            os.replace(f, aside / f.name)

    def restore_aside(self) -> None:
        """The new run failed: remove what it wrote and bring the old run back."""
        aside = self.path / REPLACED
        if not aside.is_dir():
            return
        for f in self.run_files():
            f.unlink()
        for f in aside.iterdir():
            os.replace(f, self.path / f.name)
        aside.rmdir()

    def drop_aside(self) -> None:
        """The new run finished: the old one can go."""
        with contextlib.suppress(OSError):
            shutil.rmtree(self.path / REPLACED)

    def check_resumable(self) -> None:
        """A one-line reason why this folder cannot be resumed, before any file is read."""
        if not self.path.is_dir():
            raise UserError(f"{self.path} not found: --resume takes the run folder of an interrupted run")
        if not (self.path / CHECKPOINT).exists():
            if (self.path / MODEL).exists():
                raise UserError(f"{self.path} holds a finished run (model.pt, no checkpoint.pt): nothing to resume")
            raise UserError(f"{self.path} has no checkpoint.pt to resume from (the run stopped before its first "
                            "checkpoint, or this is not a run folder): start it again with --overwrite")
        missing = [f for f in (CONFIG, VOCAB, IDS, OFFSETS) if not (self.path / f).is_file()]
        if missing:
            raise UserError(f"{self.path} has a checkpoint but no {missing[0]}: it cannot be resumed; "
                            "start it again with --overwrite")

    # --- config.json ----------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        """config.json as written by write_meta: {"config", "corpus", "versions", ...}."""
        where = self.path / CONFIG
        try:
            meta = json.loads(where.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise UserError(f"{where} is damaged ({type(e).__name__}): start the run again with --overwrite") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) \
                or not isinstance(meta.get("corpus"), dict):
            raise UserError(f"{where} is damaged (no config or corpus record): start the run again with --overwrite")
        return meta

    def read_config(self, **overrides: Any) -> TrainConfig:
        """The run's settings, validated like options, with `overrides` applied and out = this folder."""
        meta = self.read_meta()
        try:
            config = TrainConfig.from_dict({**meta["config"], **overrides, "out": str(self.path)}).resolved()
            if config.epochs is None:  # a run's config.json holds the epochs it was trained with
                raise UserError(f"--epochs must be a whole number, not {config.epochs}")
            return config
        except UserError as e:
            raise UserError(f"{self.path / CONFIG} is damaged ({e}): start the run again with --overwrite") from None

    def corpus_info(self) -> dict[str, Any]:
        info = self.read_meta()["corpus"]
        raw = info.get("raw_tokens")
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise UserError(f"{self.path / CONFIG} is damaged (corpus raw_tokens): start the run again with --overwrite")
        return info

    def tokenization(self) -> tuple[str | None, bool | None]:
        """(tokenizer, lowercase) the run's text was read with; (None, None) when config.json does not
        say (missing, unreadable: the vectors stay usable) or the run trained on Python sentences."""
        if not (self.path / CONFIG).exists():
            return None, None
        try:
            return of_run(self.read_meta(), str(self.path / CONFIG))
        except UserError as e:
            warnings.warn(f"{e}; the vectors do not know their tokenizer", stacklevel=2)
            return None, None

    def write_meta(self, meta: dict[str, Any]) -> None:
        with atomic_write(self.path / CONFIG, "w") as f:
            json.dump(_plain(meta), f, indent=2, allow_nan=False)

    def update_meta(self, **entries: Any) -> None:
        """Add entries (the run's stats, its evaluation) to config.json."""
        self.write_meta({**self.read_meta(), **entries})

    def status(self) -> str:
        """finished, interrupted (with a checkpoint), or preparing (neither yet)."""
        if (self.path / MODEL).exists() and not (self.path / CHECKPOINT).exists():
            return "finished"
        return "interrupted" if (self.path / CHECKPOINT).exists() else "incomplete"

    # --- vocabulary -----------------------------------------------------------------------
    def read_dictionary(self) -> Dictionary:
        return Dictionary.load(self.path / VOCAB)

    # --- parameters -----------------------------------------------------------------------
    def save_checkpoint(self, params: Parameters, progress: Progress, group_state: dict[str, Any] | None) -> None:
        state: dict[str, Any] = params.state()
        state["progress"] = dict(progress.__dict__)
        if group_state is not None:
            state["distributed"] = group_state
        atomic_torch_save(state, self.path / CHECKPOINT)

    def load_checkpoint(self, config: TrainConfig, vocab: int) -> tuple[Parameters, Progress, dict[str, Any] | None]:
        """Parameters, progress and the group's record, each checked against the settings and vocabulary."""
        import torch

        where = self.path / CHECKPOINT
        try:
            state = torch.load(where, weights_only=True, map_location="cpu")
        except Exception as e:
            raise UserError(f"{where} does not load ({type(e).__name__}); start the run again with --overwrite") from None
        if not isinstance(state, dict):
            raise UserError(f"{where} is not a checkpoint; start the run again with --overwrite")
        shapes = _matrix_shapes(config, vocab)
        tensors = [_checked_matrix(state.get(name), shape, f"{where} {name}") for name, shape in shapes.items()]
        progress = Progress.from_dict(state.get("progress"), where)
        if progress.epoch > config.epochs or (progress.epoch == config.epochs and progress.chunk):
            raise UserError(f"{where}: progress is past the run's {config.epochs} epochs: nothing to resume")
        saved = state.get("distributed")
        if saved is not None and not isinstance(saved, dict):
            raise UserError(f"{where}: the distributed record is damaged; start the run again with --overwrite")
        return Parameters(*tensors), progress, saved

    def load_model(self, config: TrainConfig, vocab: int) -> Parameters:
        """model.pt's parameters, each matrix checked against the settings and vocabulary."""
        where = self.path / MODEL
        if not where.exists():
            raise UserError(f"{where} not found: is {self.path} a finished training run?")
        state = load_tensors(where)
        if not isinstance(state, dict):
            raise UserError(f"{where} is not a w2v model")
        shapes = _matrix_shapes(config, vocab)
        # Copied out of the memory-mapped file: training writes to them.
        return Parameters(*[_checked_matrix(state.get(name), shape, f"{where} {name}", again="").clone()
                            for name, shape in shapes.items()])

    def save_model(self, params: Parameters) -> None:
        """model.pt: plain tensors only, so torch.load(..., weights_only=True) reads it."""
        atomic_torch_save(params.state(), self.path / MODEL)

    def finish(self) -> None:
        """The run ended: its checkpoint is no longer needed."""
        (self.path / CHECKPOINT).unlink(missing_ok=True)

    def read_vectors(self, which: str = "in", limit: int | None = None):
        """(words, float32 matrix, counts) of a finished run; which: in, out or sum (= in + out)."""
        if which not in WHICH:
            raise UserError(f"unknown --which {which!r}: use in, out or sum")
        words, counts = read_vocab_tsv(self / VOCAB, limit, with_counts=True)
        model = self / MODEL
        if not model.exists():
            raise UserError(f"{model} not found: is {self.path} a finished training run?")
        state = load_arrays(model)
        if not isinstance(state, dict) or "input" not in state:
            raise UserError(f"{model} has no 'input' vectors")
        n = len(words)
        rows = state["input"].shape[0] if isinstance(state["input"], np.ndarray) and state["input"].ndim else -1
        if rows < n or (limit is None and rows != n):
            raise UserError(f"{self.path}: vocab.tsv has {n} words but model.pt has {rows} input vectors")
        out = state.get("output")
        if which != "in" and isinstance(out, np.ndarray) and out.size and out.shape != state["input"].shape:
            raise UserError(f"{model}: input and output vectors differ in shape")
        inp = _rows(state["input"], n, model)
        out = _rows(out, n, model) if which != "in" and isinstance(out, np.ndarray) and out.size else None
        return words, select_vectors(which, inp, out, str(self.path)), counts
