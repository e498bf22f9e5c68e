"""The trainer: corpus -> vocabulary and ids -> epochs of SGD -> run folder.

Work is cut into chunks of whole sentences (about `batch_words` words). On the CPU each
of `threads` workers takes the next chunk and runs it in the C kernel without the GIL,
updating the shared matrices hogwild as word2vec does; on a GPU (or without a C
compiler) chunks go through the batched PyTorch path. Each chunk's random stream is
derived from (seed, epoch, chunk), so a single-threaded run is exactly reproducible and
resumes exactly from a chunk boundary.
"""

from __future__ import annotations

import json
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from w2v import __version__, distributed, encode, native
from w2v.config import TrainConfig
from w2v.corpus import Corpus
from w2v.dictionary import Dictionary, build_alias_table
from w2v.errors import UserError
from w2v.fileio import atomic_torch_save, atomic_write, remove_stale_temporaries
from w2v.model import Parameters, TorchTrainer, Word2Vec
from w2v.monitor import Monitor

RUN_FILES = ("config.json", "model.pt", "checkpoint.pt")
TOP_NODES = 128  # inner nodes nearest the Huffman root each thread trains in its own copy


@dataclass
class Progress:
    """Where training stands: enough to resume exactly."""

    epoch: int = 0
    chunk: int = 0  # next chunk of `epoch` to train
    words_done: int = 0
    loss_sum: float = 0.0
    loss_count: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)


def _check_resumable(run_dir: Path) -> None:
    """A one-line reason why `run_dir` cannot be resumed, before any file is read."""
    if not (run_dir / "checkpoint.pt").exists():
        if (run_dir / "model.pt").exists():
            raise UserError(f"{run_dir} holds a finished run (model.pt, no checkpoint.pt): nothing to resume")
        raise UserError(f"{run_dir} has no checkpoint.pt to resume from (the run stopped before its first "
                        "checkpoint, or this is not a run folder): start it again with --overwrite")
    missing = [f for f in ("config.json", "vocab.tsv", "ids.npy", "offsets.npy") if not (run_dir / f).exists()]
    if missing:
        raise UserError(f"{run_dir} has a checkpoint but no {missing[0]}: it cannot be resumed; "
                        "start it again with --overwrite")


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint."""


def chunk_bounds(offsets: np.ndarray, batch_words: int) -> np.ndarray:
    """Sentence indices cutting the corpus into chunks of about batch_words words."""
    total = int(offsets[-1])
    targets = np.arange(batch_words, total, batch_words)
    cuts = np.searchsorted(offsets, targets, side="left")
    return np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]]))


def chunk_seed(seed: int, epoch: int, chunk: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_033 + chunk) & 0xFFFFFFFFFFFFFFFF


class Trainer:
    """Drives one training run. Use `w2v.train(...)` rather than this class directly."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config = config.resolved()
        self.run_dir = Path(self.config.out)
        self.resume = resume
        self.stop = threading.Event()
        self.dist: distributed.Distributed | None = None  # set by run() under torchrun

    # --- setup -----------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        if self.run_dir.is_dir():
            remove_stale_temporaries(self.run_dir)  # left by a killed run
        if self.resume:
            return
        held = [f for f in RUN_FILES if (self.run_dir / f).exists()]
        if held and not self.config.overwrite:
            raise UserError(f"{self.run_dir} holds another run ({held[0]}): choose another --out or pass --overwrite")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create the run folder {self.run_dir}: {e.strerror or e}") from None
        for f in held:
            (self.run_dir / f).unlink()

    def _device(self) -> torch.device:
        want = self.config.device
        if want == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(want)
        except RuntimeError:
            raise UserError(f"--device {want!r} is not a device (auto, cpu, cuda, cuda:N)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA device is available")
        return device

    def _echo(self, message: str) -> None:
        if self.config.progress:
            import click

            click.echo(message, err=True)

    # --- the run ---------------------------------------------------------------------
    def run(self) -> Word2Vec:
        # Under torchrun, join the process group (w2v/distributed.py); one process: None, nothing changes.
        self.dist = distributed.start(self.config, self._device(), self.resume)
        try:
            return self._run()
        finally:
            if self.dist is not None:
                self.dist.close()

    def _run(self) -> Word2Vec:
        device = self._device() if self.dist is None else self.dist.device
        started = time.perf_counter()
        if self.dist is None:
            data, params, progress, corpus_info = self._prepare()
        else:  # rank 0 prepares as below and sends every rank the settings, parameters and its shard
            data, params, progress, corpus_info = self.dist.prepare(self, self._prepare)
        c = self.config
        main = self.dist is None or self.dist.is_main
        prepare_seconds = time.perf_counter() - started
        if main:
            self._write_config(corpus_info, device, prepare_seconds)
        self._echo(
            f"vocabulary: {len(data.dictionary):,} words (min count {c.min_count}) from {data.raw_tokens:,} tokens; "
            f"{corpus_info['tokens']:,} tokens to train per epoch; prepared in {prepare_seconds:.1f} s"
        )
        model = Word2Vec(data.dictionary, params, c, self.run_dir)
        words_before = progress.words_done  # on resume, words trained before the interruption
        train_seconds = self._train(data, params, progress, device)
        model.params = Parameters(params.input.cpu(), params.output.cpu(), params.output_hs.cpu())
        model.stats = {"prepare_seconds": prepare_seconds, "train_seconds": train_seconds,
                       "words_per_second": (progress.words_done - words_before) / max(train_seconds, 1e-9),
                       "mean_loss": progress.loss_sum / max(progress.loss_count, 1),
                       "epoch_losses": list(progress.epoch_losses)}
        if main:
            model.save()
            (self.run_dir / "checkpoint.pt").unlink(missing_ok=True)
        return model

    def _prepare(self) -> tuple[encode.Encoded, Parameters, Progress, dict[str, Any]]:
        """The run folder, the vocabulary and ids, the parameters and progress (from the checkpoint on resume)."""
        c = self.config
        self._prepare_run_dir()
        if self.resume:
            _check_resumable(self.run_dir)
            dictionary = Dictionary.load(self.run_dir / "vocab.tsv")
            meta = json.loads((self.run_dir / "config.json").read_text())
            corpus_info = meta["corpus"]
            data = encode.Encoded.open(self.run_dir, dictionary, corpus_info["raw_tokens"])
            try:
                state = torch.load(self.run_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
            except Exception as e:
                raise UserError(f"{self.run_dir / 'checkpoint.pt'} does not load ({type(e).__name__}); "
                                "start the run again with --overwrite") from None
            params = Parameters(state["input"], state["output"], state["output_hs"])
            progress = Progress(**{k: state["progress"][k] for k in Progress.__dataclass_fields__})
            distributed.check_resume(state.get("distributed"), progress, self.dist)
        else:
            corpus = Corpus(c.paths, tokenizer=c.tokenizer, lowercase=c.lowercase, max_sentence_length=c.max_sentence_length)
            data = encode.build(corpus, self.run_dir, c.min_count, c.max_vocab_size, c.max_final_vocab)
            dictionary = data.dictionary
            corpus_info = {"files": [str(f) for f in corpus.files], "raw_tokens": data.raw_tokens,
                           "tokens": int(data.offsets[-1]), "sentences": data.n_sentences,
                           "vocab": len(dictionary), "bad_bytes": corpus.bad_bytes}
            if corpus.bad_bytes:  # shown even with --quiet: the corpus is not what the user thinks
                import click

                click.echo(f"warning: {corpus.bad_bytes:,} undecodable bytes in the corpus (not UTF-8) "
                           "were replaced with U+FFFD", err=True)
            try:
                params = Parameters.initial(len(dictionary), c.dim, c.negative, c.hs, c.seed)
            except (RuntimeError, MemoryError):
                raise UserError(f"not enough memory for {len(dictionary):,} vectors of {c.dim:,} dimensions: "
                                "lower --dim, or raise --min-count") from None
            progress = Progress()
        return data, params, progress, corpus_info

    def _write_config(self, corpus_info: dict[str, Any], device: torch.device, prepare_seconds: float) -> None:
        meta = {"config": self.config.to_dict(), "corpus": corpus_info,
                "versions": {"w2v": __version__, "torch": torch.__version__, "numpy": np.__version__,
                             "python": platform.python_version()},
                "device": str(device), "prepare_seconds": prepare_seconds}
        if self.dist is not None:
            meta["distributed"] = self.dist.describe()
        with atomic_write(self.run_dir / "config.json", "w") as f:
            json.dump(meta, f, indent=2)

    def _train(self, data: encode.Encoded, params: Parameters, progress: Progress, device: torch.device) -> float:
        c = self.config
        bounds = chunk_bounds(data.offsets, c.batch_words) if self.dist is None else self.dist.bounds
        # Under torchrun `data` is this process's shard; words per epoch count all processes'.
        words_per_epoch = int(data.offsets[-1]) if self.dist is None else self.dist.words_per_epoch
        total_words = words_per_epoch * c.epochs
        keep = data.dictionary.keep_probabilities(c.sample)
        use_native = device.type == "cpu" and c.backend != "torch"
        if use_native and not native.available():
            if c.backend == "native":
                raise UserError(f"the C kernel is not available: {native.unavailable_reason()}")
            self._echo(f"warning: C kernel unavailable ({native.unavailable_reason()}); using the slower PyTorch path")
            use_native = False
        if device.type == "cpu":
            torch.set_num_threads(c.threads)
        params_dev = params if device.type == "cpu" else params.to(device)
        # Shared with the C kernel, which adds to it as it goes: the learning rate's clock.
        self._words_counter = np.array([progress.words_done], dtype=np.int64)
        clock_total = total_words
        if self.dist is not None:  # each process's clock runs over its own share of the words
            self._words_counter[0], clock_total = self.dist.begin(params_dev, progress)
        chunk_ids = None if self.dist is None else self.dist.chunk_ids  # for the chunks' random streams
        if use_native:
            run_chunk = self._native_runner(data, params_dev, keep, clock_total)
        else:
            run_chunk = self._torch_runner(data, params_dev, keep, clock_total)
        monitor = Monitor(total_words, self.run_dir, c.progress, c.tensorboard)
        lock = threading.Lock()
        handlers = self._catch_signals()
        started = time.perf_counter()
        try:
            while progress.epoch < c.epochs:
                epoch_start, epoch_loss = time.perf_counter(), (progress.loss_sum, progress.loss_count)
                n_chunks = len(bounds) - 1
                next_chunk = [progress.chunk]
                end = [n_chunks if self.dist is None else self.dist.round_end()]
                failed: list[BaseException] = []  # a worker's exception, raised here in the main thread

                def take() -> int | None:
                    with lock:
                        if self.stop.is_set() or next_chunk[0] >= end[0]:
                            return None
                        next_chunk[0] += 1
                        return next_chunk[0] - 1

                def work() -> None:
                    try:
                        while (k := take()) is not None:
                            seed_k = k if chunk_ids is None else int(chunk_ids[k])
                            loss, count, words = run_chunk(progress.epoch, seed_k, int(bounds[k]), int(bounds[k + 1]))
                            with lock:
                                progress.loss_sum += loss
                                progress.loss_count += count
                                progress.words_done += words
                    except BaseException as e:
                        failed.append(e)
                        self.stop.set()  # the other workers stop at their next chunk

                while True:  # one pass; under torchrun one per round, each ended by adding up all processes' updates
                    workers = [threading.Thread(target=work, daemon=True) for _ in range(c.threads if use_native else 1)]
                    for w in workers:
                        w.start()
                    while any(w.is_alive() for w in workers):
                        for w in workers:
                            w.join(timeout=0.2)
                        monitor.update(self._words_now(progress), progress.loss_sum, progress.loss_count,
                                       self._alpha(self._words_now(progress), total_words))
                    if failed:  # no checkpoint: the failed chunk was half applied
                        if isinstance(failed[0], MemoryError):
                            raise UserError(f"out of memory while training ({failed[0]}): lower --window, "
                                            "--negative or --dim") from None
                        raise failed[0]
                    if self.dist is None or not self.dist.sync(params_dev, progress, next_chunk[0], self.stop):
                        break
                    end[0] = self.dist.round_end()
                progress.chunk = next_chunk[0]
                if self.dist.stopping if self.dist is not None else self.stop.is_set():  # all ranks agreed
                    self._checkpoint(params_dev, progress)
                    monitor.close()
                    command = f"w2v train --resume {self.run_dir}" if self.dist is None else self.dist.resume_command()
                    raise Interrupted(f"interrupted: checkpoint written to {self.run_dir}; continue with `{command}`")
                progress.epoch, progress.chunk = progress.epoch + 1, 0
                loss = (progress.loss_sum - epoch_loss[0]) / max(progress.loss_count - epoch_loss[1], 1)
                seconds = time.perf_counter() - epoch_start
                monitor.update(progress.words_done, progress.loss_sum, progress.loss_count,
                               self._alpha(progress.words_done, total_words), force=True)
                monitor.echo(f"epoch {progress.epoch}/{c.epochs}: loss {loss:.4f}  "
                             f"{words_per_epoch / seconds / 1e3:,.0f}k words/s  {seconds:.1f} s")
                monitor.scalar("epoch/loss", loss, progress.epoch)
                progress.epoch_losses.append(loss)
                if c.checkpoint_every and progress.epoch % c.checkpoint_every == 0 and progress.epoch < c.epochs:
                    self._checkpoint(params_dev, progress)
        finally:
            self._restore_signals(handlers)
            monitor.close()
            data.close()
        if params_dev is not params:
            params.input.copy_(params_dev.input.cpu())
            params.output.copy_(params_dev.output.cpu())
            params.output_hs.copy_(params_dev.output_hs.cpu())
        return time.perf_counter() - started

    # --- the two engines ---------------------------------------------------------------
    def _native_runner(self, data: encode.Encoded, params: Parameters, keep: np.ndarray, total_words: int):
        c = self.config
        accept, alias = build_alias_table(data.dictionary.noise_distribution(c.ns_exponent))
        hs = data.dictionary.huffman() if c.hs else None
        offsets = np.ascontiguousarray(data.offsets)

        def run(epoch: int, k: int, s_begin: int, s_end: int) -> tuple[float, float, int]:
            base = int(offsets[s_begin])
            ids = data.read(base, int(offsets[s_end]))
            job = native.make_job(
                input=params.input, output=params.output if c.negative else None,
                output_hs=params.output_hs if c.hs else None, dim=c.dim, negative=c.negative, window=c.window,
                cbow=c.model == "cbow", ids=ids, offsets=offsets, s_begin=s_begin, s_end=s_end,
                keep=keep if c.sample > 0 else None, noise=(accept, alias), huffman=hs, alpha=c.alpha,
                min_alpha=c.min_alpha, total_words=total_words, words_done=self._words_counter,
                seed=chunk_seed(c.seed, epoch, k), ids_base=base,
                # Several threads: the top of the Huffman tree in per-thread copies (see kernel.c).
                top_nodes=TOP_NODES if c.hs and c.threads > 1 else 0)
            native.train_chunk(job)
            return job.loss_sum, float(job.loss_count), job.words

        return run

    def _torch_runner(self, data: encode.Encoded, params: Parameters, keep: np.ndarray, total_words: int):
        c = self.config
        batch_pairs = c.batch_pairs or (1 << 17 if params.input.is_cuda else 1 << 12)
        engine = TorchTrainer(params, data.dictionary, c.model == "cbow", c.window, c.negative, c.hs,
                              c.ns_exponent, keep, c.seed, batch_pairs)

        def run(epoch: int, k: int, s_begin: int, s_end: int) -> tuple[float, float, int]:
            engine.reseed(chunk_seed(c.seed, epoch, k))
            offsets = data.offsets[s_begin : s_end + 1]
            words = int(offsets[-1] - offsets[0])
            start = int(self._words_counter[0])
            loss, count = engine.train_chunk(data.ids, offsets, lambda f: self._alpha(start + f * words, total_words))
            self._words_counter[0] += words
            return loss, count, words

        return run

    # --- helpers -----------------------------------------------------------------------
    def _words_now(self, progress: Progress) -> int:
        if self.dist is not None:
            return self.dist.words_now(int(self._words_counter[0]))
        return max(int(self._words_counter[0]), progress.words_done)

    def _alpha(self, done: float, total: int) -> float:
        c = self.config
        return max(c.min_alpha, c.alpha - (c.alpha - c.min_alpha) * done / total)

    def _checkpoint(self, params: Parameters, progress: Progress) -> None:
        if self.dist is not None and not self.dist.is_main:
            return
        state = params.state()
        state["progress"] = dict(progress.__dict__)
        if self.dist is not None:
            state["distributed"] = self.dist.state()
        atomic_torch_save(state, self.run_dir / "checkpoint.pt")

    def _catch_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum: int, frame: Any) -> None:
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)
