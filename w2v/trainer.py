"""The trainer: corpus -> vocabulary and ids -> epochs of SGD -> run folder.

Work is cut into chunks of whole sentences (w2v.semantics). Each of the engine's threads
takes the next chunk and trains it (w2v.engines: the C kernel without the GIL, hogwild as
word2vec does, or the PyTorch path). A group (w2v.group: one process, or torchrun's
processes) prepares the run, deals the chunks and combines the processes' work each round.
"""

from __future__ import annotations

import dataclasses
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from w2v import __version__, continuation, distributed, encode, phrasing
from w2v.config import TrainConfig
from w2v.corpus import Corpus
from w2v.engines import Chunk, Clock, Engine, choose_backend, make_engine
from w2v.errors import Interrupted, UserError
from w2v.group import Group, Prepared
from w2v.monitor import Monitor
from w2v.parameters import Parameters
from w2v.run import Run
from w2v.runfolder import CONFIG, VOCAB, Progress, RunFolder
from w2v.semantics import default_epochs, learning_rate
from w2v.sentences import PATH as PYTHON_SENTENCES
from w2v.sentences import Sentences


class _Chunks:
    """Hands the chunks [next, end) of a round to worker threads, one at a time."""

    def __init__(self, start: int, end: int, stop: threading.Event) -> None:
        self.next, self.end, self.stop = start, end, stop
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.stop.is_set() or self.next >= self.end:
                return None
            self.next += 1
            return self.next - 1


class Trainer:
    """Drives one training run. `w2v.train` and `w2v.resume` are the usual way in.

    `reports` is False in a process that follows a group's leader (it prints nothing);
    `after_chunk`, if set, is called with the number of chunks trained so far in this
    process after each one (from a worker thread): a place to watch or stop a run.
    """

    def __init__(self, config: TrainConfig, resume: bool = False, sentences: Any = None) -> None:
        if sentences is not None:  # token lists from Python instead of files (w2v.sentences)
            config = dataclasses.replace(config, paths=[PYTHON_SENTENCES])
        self.sentences = sentences
        self.config = config.resolved()
        self.folder = RunFolder(self.config.out)
        self.resume = resume
        self.stop = threading.Event()
        self.reports = True
        self.after_chunk: Callable[[int], None] | None = None
        self.chunks_trained = 0

    @classmethod
    def resuming(cls, run_dir: str | Path, **overrides: Any) -> "Trainer":
        """A trainer that continues the interrupted run in `run_dir` from its last checkpoint."""
        folder = RunFolder(run_dir)
        if distributed.world_size() > 1 and not (folder / CONFIG).exists():
            # Another process of the group leads and sends the settings (w2v.distributed).
            return cls(TrainConfig(out=str(run_dir), distributed=True), resume=True)
        folder.check_resumable()
        return cls(folder.read_config(**overrides), resume=True)

    def _echo(self, message: str) -> None:
        if self.config.progress and self.reports:
            import click

            click.echo(message, err=True)

    # --- the run ---------------------------------------------------------------------
    def run(self) -> Run:
        group = distributed.start(self.config, _device(self.config.device), self.resume)
        self.reports = group.is_main
        self._lock, self._set_aside = None, False
        try:
            run = self._run(group)
        except Interrupted:  # resumable: an --overwrite'n run stays aside until the new one finishes
            raise
        except BaseException:
            if group.is_main and self._set_aside:
                self.folder.restore_aside()  # --overwrite or --continue in place: the old run comes back
            raise
        finally:
            group.close()
            if self._lock is not None:
                self.folder.release_lock(self._lock)
        if group.is_main:
            run.folder.drop_aside()
        return run

    def _run(self, group: Group) -> Run:
        started = time.perf_counter()
        prepared = group.prepare(self.config, self._build)
        self.config, self.folder = c, folder = prepared.config, RunFolder(prepared.config.out)
        prepare_seconds = time.perf_counter() - started
        data, progress = prepared.data, prepared.progress
        if group.is_main:
            folder.write_meta({
                "config": c.to_dict(), "corpus": prepared.corpus_info,
                "versions": {"w2v": __version__, "torch": torch.__version__, "numpy": np.__version__,
                             "python": platform.python_version()},
                "device": str(group.device), "prepare_seconds": prepare_seconds,
                **({"distributed": group.describe()} if group.describe() else {}),
                **({"history": prepared.history} if prepared.history else {})})
        new_words = prepared.corpus_info.get("new_words") if c.continue_from else None
        grown = f", {new_words:,} of them new" if new_words is not None and not self.resume else ""
        self._echo(f"vocabulary: {len(data.dictionary):,} words{grown} (min count {c.min_count}) from "
                   f"{data.raw_tokens:,} tokens; {prepared.corpus_info['tokens']:,} tokens to train per epoch; "
                   f"prepared in {prepare_seconds:.1f} s")
        words_before = progress.words_done  # on resume, words trained before the interruption
        train_seconds = self._train(group, prepared)
        stats = {"prepare_seconds": prepare_seconds, "train_seconds": train_seconds,
                 "words_per_second": (progress.words_done - words_before) / max(train_seconds, 1e-9),
                 "mean_loss": progress.loss_sum / max(progress.loss_count, 1),
                 "epoch_losses": list(progress.epoch_losses)}
        if group.is_main:
            folder.save_model(prepared.params)
            folder.finish()
            folder.update_meta(stats={k: v for k, v in stats.items() if k != "epoch_losses"},
                               epoch_losses=stats["epoch_losses"])
        return Run(c, data.dictionary, prepared.params, folder, stats)

    def _build(self, config: TrainConfig) -> Prepared:
        """The vocabulary and ids, parameters and progress: from the corpus, or the checkpoint on resume."""
        folder = RunFolder(config.out)
        if self.resume:
            folder.check_resumable()
            self._lock = folder.lock()
            folder.create()
            dictionary = folder.read_dictionary()
            corpus_info = folder.corpus_info()
            data = encode.Encoded.open(folder.path, dictionary, corpus_info["raw_tokens"])
            params, progress, saved = folder.load_checkpoint(config, len(dictionary))
            return Prepared(config, data, params, progress, corpus_info, resumed=saved,
                            history=folder.read_meta().get("history"))
        if config.continue_from:
            return self._build_continued(config, folder)
        folder.remove_stale()
        held = folder.held()
        if held and not config.overwrite:
            raise UserError(f"{folder} holds another run ({held[0]}): choose another --out or pass --overwrite")
        folder.create()
        self._lock = folder.lock()
        if held:
            folder.set_aside()
            self._set_aside = True
        corpus = self._corpus(config)
        data = encode.build(corpus, folder.path, config.min_count, config.max_vocab_size, config.max_final_vocab,
                            rewrite=phrasing.for_config(config, folder.path, self._echo), workers=config.threads,
                            tokenizer=config.tokenizer, lowercase=config.lowercase)
        corpus_info = _corpus_info(corpus, data)
        config = self._with_epochs(config, data)
        try:
            params = Parameters.initial(len(data.dictionary), config.dim, config.negative, config.hs, config.seed)
        except (RuntimeError, MemoryError):
            raise UserError(f"not enough memory for {len(data.dictionary):,} vectors of {config.dim:,} dimensions: "
                            "lower --dim, or raise --min-count") from None
        return Prepared(config, data, params, Progress(), corpus_info)

    def _with_epochs(self, config: TrainConfig, data: encode.Encoded) -> TrainConfig:
        """--epochs when not given: from the corpus's size (semantics.default_epochs)."""
        if config.epochs is not None:
            return config
        return dataclasses.replace(config, epochs=default_epochs(int(data.offsets[-1])))

    def _corpus(self, config: TrainConfig) -> Corpus | Sentences:
        if self.sentences is not None:
            return Sentences(self.sentences, config.max_sentence_length)
        return Corpus(config.paths, tokenizer=config.tokenizer, lowercase=config.lowercase,
                      max_sentence_length=config.max_sentence_length)

    def _build_continued(self, config: TrainConfig, folder: RunFolder) -> Prepared:
        """--continue: the old run's vocabulary and parameters, extended by the new text's words."""
        old = RunFolder(config.continue_from)
        old_dictionary = old.read_dictionary()
        old_params = old.load_model(config, len(old_dictionary))
        history = old.read_meta().get("history") or [{**continuation.stage(
            old.read_config(), old.corpus_info(), 0, len(old_dictionary)), "time": None}]
        same = folder.path.resolve() == old.path.resolve()
        held = folder.held()
        if held and not same and not config.overwrite:
            raise UserError(f"{folder} holds another run ({held[0]}): choose another --out or pass --overwrite")
        folder.create()
        self._lock = folder.lock()
        if held:
            folder.set_aside()  # the old run stays there until the continued one has finished
            self._set_aside = True
        corpus = self._corpus(config)
        text = encode.build(corpus, folder.path, 1, config.max_vocab_size, workers=config.threads,
                            tokenizer=config.tokenizer, lowercase=config.lowercase)
        text.close()
        dictionary, remap = continuation.merge(old_dictionary, text.dictionary, config.min_count,
                                               config.continue_counts)
        encode.remap_ids(folder.path, remap)
        dictionary.save(folder / VOCAB)
        data = encode.Encoded.open(folder.path, dictionary, text.raw_tokens)
        corpus_info = {**_corpus_info(corpus, data), "new_words": len(dictionary) - len(old_dictionary)}
        params = continuation.extend(old_params, len(dictionary), config.dim, config.seed)
        config = self._with_epochs(config, data)
        history.append(continuation.stage(config, corpus_info, len(old_dictionary), len(dictionary)))
        return Prepared(config, data, params, Progress(), corpus_info, history=history)

    def _train(self, group: Group, prepared: Prepared) -> float:
        """Every remaining epoch; the parameters end up in prepared.params. Returns the seconds it took."""
        c, data, progress = self.config, prepared.data, prepared.progress
        device = group.device
        if device.type == "cpu":
            torch.set_num_threads(c.threads)
        params = prepared.params if device.type == "cpu" else prepared.params.to(device)
        backend = choose_backend(c, device, self._echo)
        total_words = group.words_per_epoch * c.epochs
        if total_words >= 2**62:  # the kernel's word clock is an int64
            raise UserError(f"--epochs {c.epochs} times {group.words_per_epoch:,} words per epoch is too many words")
        done, total = group.begin(params, progress, c.epochs)
        clock = Clock(np.array([done], dtype=np.int64), total, c.alpha, c.min_alpha)
        engine = make_engine(backend, data, params, c, clock)
        monitor = Monitor(total_words, self.folder.path, c.progress and group.is_main, c.tensorboard and group.is_main,
                          every=c.progress_every)
        handlers = self._catch_signals()
        started = time.perf_counter()
        try:
            while progress.epoch < c.epochs:
                epoch_start, loss_before = time.perf_counter(), (progress.loss_sum, progress.loss_count)
                self._train_epoch(group, engine, params, progress, clock, monitor)
                if group.stopping:  # all processes agreed: checkpoint and stop
                    if group.is_main:
                        self.folder.save_checkpoint(params, progress, group.state())
                    monitor.close()
                    raise Interrupted(f"interrupted: checkpoint written to {self.folder}; continue with "
                                      f"`{group.resume_command(str(self.folder))}`")
                progress.epoch, progress.chunk = progress.epoch + 1, 0
                loss = (progress.loss_sum - loss_before[0]) / max(progress.loss_count - loss_before[1], 1)
                seconds = time.perf_counter() - epoch_start
                monitor.update(progress.words_done, progress.loss_sum, progress.loss_count,
                               learning_rate(progress.words_done, total_words, c.alpha, c.min_alpha), force=True)
                monitor.echo(f"epoch {progress.epoch}/{c.epochs}: loss {loss:.4f}  "
                             f"{group.words_per_epoch / seconds / 1e3:,.0f}k words/s  {seconds:.1f} s")
                monitor.scalar("epoch/loss", loss, progress.epoch)
                progress.epoch_losses.append(loss)
                if c.checkpoint_every and progress.epoch % c.checkpoint_every == 0 and progress.epoch < c.epochs:
                    if group.is_main:
                        self.folder.save_checkpoint(params, progress, group.state())
        finally:
            self._restore_signals(handlers)
            monitor.close()
            data.close()
        if params is not prepared.params:
            prepared.params.copy_(params)
        return time.perf_counter() - started

    def _train_epoch(self, group: Group, engine: Engine, params: Parameters, progress: Progress, clock: Clock,
                     monitor: Monitor) -> None:
        """The rest of the epoch from progress.chunk, round by round (one round in one process)."""
        chunks = _Chunks(progress.chunk, group.round_end(), self.stop)
        lock = threading.Lock()
        failed: list[BaseException] = []  # a worker's exception, raised here in the main thread

        def work() -> None:
            try:
                while (k := chunks.take()) is not None:
                    number = k if group.chunk_numbers is None else int(group.chunk_numbers[k])
                    result = engine.train_chunk(Chunk(progress.epoch, number, int(group.bounds[k]),
                                                      int(group.bounds[k + 1])))
                    with lock:
                        progress.loss_sum += result.loss_sum
                        progress.loss_count += result.loss_count
                        progress.words_done += result.words
                        self.chunks_trained += 1
                        trained = self.chunks_trained
                    if self.after_chunk is not None:
                        self.after_chunk(trained)
            except BaseException as e:
                failed.append(e)
                self.stop.set()  # the other workers stop at their next chunk

        while True:
            workers = [threading.Thread(target=work, daemon=True) for _ in range(engine.threads)]
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers):
                for w in workers:
                    w.join(timeout=0.2)
                monitor.update(group.words_now(clock.now, progress), progress.loss_sum, progress.loss_count,
                               clock.rate())
            if failed:  # no checkpoint: the failed chunk was half applied
                if isinstance(failed[0], MemoryError):
                    raise UserError(f"out of memory while training ({failed[0]}): lower --window, "
                                    "--negative or --dim") from None
                raise failed[0]
            if not group.sync(params, progress, chunks.next, self.stop.is_set()):
                break
            chunks.end = group.round_end()
        progress.chunk = chunks.next
        if group.stopping:
            self.stop.set()

    # --- signals -----------------------------------------------------------------------
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


def _corpus_info(corpus: Corpus | Sentences, data: encode.Encoded) -> dict[str, Any]:
    """The corpus record the run's config keeps; warns (even with --quiet) about bytes that were not UTF-8."""
    if corpus.bad_bytes:  # the corpus is not what the user thinks
        import click

        click.echo(f"warning: {corpus.bad_bytes:,} undecodable bytes in the corpus (not UTF-8) "
                   "were replaced with U+FFFD", err=True)
    return {"files": [str(f) for f in corpus.files], "raw_tokens": data.raw_tokens, "tokens": int(data.offsets[-1]),
            "sentences": data.n_sentences, "vocab": len(data.dictionary), "bad_bytes": corpus.bad_bytes}


def _device(want: str) -> torch.device:
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(want)
    except RuntimeError:
        raise UserError(f"--device {want!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {want!r}: w2v trains on cpu or cuda only")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    return device
