"""The corpus in pieces: count and encode each piece on its own, in worker processes.

w2v.encode.build drives this. A piece is a whole file, or a byte range of a large
uncompressed file cut just after a newline (a compressed stream cannot be entered midway).
Counting a piece writes its provisional ids (in order of first appearance within the
piece) and its sentence ends to scratch files and returns its words and counts; once
the parent has merged the pieces in corpus order and chosen the vocabulary, remapping a
piece writes its final ids into their place in ids.npy and its sentence ends to a
scratch file.

Reading a byte range must give the very sentences a whole-file read gives there. Corpus
cuts its text at the last whitespace of each block it reads, and a line cut in two is
tokenized in two parts (which nltk's tokenizers can tell apart), so a range is read in
reads that end where the whole-file read's blocks end, and starts at the newline before
its first line, so that what Corpus carries between blocks is the same too.

Workers import numpy and w2v.corpus only, never torch, and are started with "spawn":
the parent has torch's threads running, and fork after threads is unsafe.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import multiprocessing
import os
import signal
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from w2v import corpus as _corpus
from w2v.corpus import Corpus
from w2v.errors import UserError

BLOCK = 1 << 20  # ids (or sentence ends) held in memory before they go to disk
_MIN_PIECE = 32 << 20  # bytes: smaller ranges cost more in worker start and merging than they save
_PIECES_PER_WORKER = 4  # several pieces per worker, so that one slow piece does not leave the others idle
_SLICE = "\0w2v-slice"  # the suffix by which Corpus finds the opener of a byte range


class Index(dict):
    """word -> provisional id; an unseen word gets the next id (from C, via __missing__)."""

    next_id = 0

    def __missing__(self, word: str) -> int:
        i = self[word] = self.next_id
        self.next_id += 1
        return i


@dataclass(frozen=True)
class Piece:
    """A file, or bytes [start, stop) of it; a range after the first starts at a newline."""

    path: Path
    start: int = 0
    stop: int | None = None  # None: to the end of the file


@dataclass(frozen=True)
class Reader:
    """How pieces are tokenized: Corpus's settings (picklable, unlike a Corpus)."""

    tokenizer: str
    lowercase: bool
    max_sentence_length: int

    def sentences(self, piece: Piece) -> Corpus:
        corpus = Corpus([piece.path], self.tokenizer, self.lowercase, self.max_sentence_length)
        if piece.start or piece.stop is not None:
            corpus.files = [_Slice(piece)]
        return corpus


def plan(files: Iterable[Path], workers: int, piece_bytes: int | None = None) -> list[Piece]:
    """The corpus's files as pieces, in corpus order: large uncompressed files cut at newlines."""
    files = [Path(f) for f in files]
    if workers <= 1:
        return [Piece(f) for f in files]
    plain = [f for f in files if f.suffix.lower() not in _corpus._OPENERS]
    sizes = {f: _size(f) for f in plain}
    size = piece_bytes or max(_MIN_PIECE, sum(sizes.values()) // (workers * _PIECES_PER_WORKER))
    pieces: list[Piece] = []
    for f in files:
        if sizes.get(f, 0) <= size * 3 // 2:
            pieces.append(Piece(f))
            continue
        start = 0
        try:
            with open(f, "rb") as stream:
                while True:
                    newline = _next_newline(stream, start + size)
                    if newline is None or newline + 1 >= sizes[f]:
                        break
                    pieces.append(Piece(f, start, newline + 1))
                    start = newline  # the next range reads that newline again: see the module docstring
        except OSError as e:
            raise UserError(f"cannot read {f}: {e.strerror or e}") from None
        pieces.append(Piece(f, start, None))
    return pieces


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def _next_newline(stream, at: int) -> int | None:
    stream.seek(at)
    while block := stream.read(1 << 16):
        found = block.find(b"\n")
        if found >= 0:
            return at + found
        at += len(block)
    return None


class _Slice:
    """A piece as Corpus sees a path: the file's name, and the suffix of the opener of its byte range."""

    suffix = _SLICE

    def __init__(self, piece: Piece) -> None:
        self.piece = piece

    def __fspath__(self) -> str:
        return os.fspath(self.piece.path)

    def __str__(self) -> str:
        return str(self.piece.path)


class _RangeReader:
    """Reads bytes [start, stop) of a file, each read ending where a whole-file read of that size would."""

    def __init__(self, piece: Piece) -> None:
        self._file = open(piece.path, "rb")
        self._file.seek(piece.start)
        self._at, self._stop = piece.start, piece.stop

    def read(self, size: int) -> bytes:
        end = (self._at // size + 1) * size
        if self._stop is not None:
            end = min(end, self._stop)
        data = self._file.read(max(0, end - self._at))
        self._at += len(data)
        return data

    def __enter__(self) -> "_RangeReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


_corpus._OPENERS.setdefault(_SLICE, ("", lambda path: _RangeReader(path.piece)))


# --- counting ------------------------------------------------------------------------------------
@dataclass
class Counted:
    """What counting a piece found; `words` are in provisional-id order (first appearance)."""

    words: list[str]
    counts: np.ndarray  # int64, per provisional id
    raw_tokens: int
    sentences: int
    bad_bytes: int


def count(
    sentences: Iterable[list[str]],
    ids_path: Path,
    ends_path: Path,
    max_vocab_size: int | None = None,
    prune: Callable[[Index, np.ndarray, int], tuple[Index, np.ndarray]] | None = None,
) -> tuple[Index, np.ndarray, int, int, bool]:
    """Count tokens, writing provisional ids (int32) and raw sentence ends (int64) to scratch files.

    Returns (index, counts, raw tokens, sentences, pruned). Once `prune` has run (the
    vocabulary passed max_vocab_size), provisional ids no longer name the same words, so
    nothing more is written and the caller encodes the corpus again.
    """
    index = Index()
    counts = np.zeros(0, dtype=np.int64)
    buf, lengths = array("i"), array("q")
    min_reduce, pruned, raw_tokens, n_sentences = 1, False, 0, 0
    ids_out = ends_out = None
    try:
        ids_out, ends_out = open_scratch(ids_path), open_scratch(ends_path)

        def flush() -> None:
            nonlocal counts, buf, lengths, raw_tokens
            block = np.frombuffer(buf, dtype=np.int32)
            if len(counts) < index.next_id:
                counts = np.concatenate([counts, np.zeros(index.next_id - len(counts), dtype=np.int64)])
            counts += np.bincount(block, minlength=len(counts))
            ends = raw_tokens + np.cumsum(np.frombuffer(lengths, dtype=np.int64))
            if not pruned:
                ids_out.write(buf)
                ends_out.write(ends.tobytes())
            raw_tokens += len(block)
            buf, lengths = array("i"), array("q")

        for sentence in sentences:
            buf.extend(map(index.__getitem__, sentence))
            lengths.append(len(sentence))
            n_sentences += 1
            # Checked after every sentence, as gensim does: the vocabulary never grows far past the limit.
            over = max_vocab_size and len(index) > max_vocab_size
            if len(buf) >= BLOCK or len(lengths) >= BLOCK or over:
                flush()
                if over:
                    index, counts = prune(index, counts, min_reduce)
                    min_reduce += 1
                    pruned = True
        flush()
    except OSError as e:
        no_space(e, ids_path)
        raise
    finally:
        for f in (ids_out, ends_out):
            if f is not None:
                f.close()
    return index, counts, raw_tokens, n_sentences, pruned


def count_piece(job: tuple[Piece, Reader, Path, Path]) -> Counted:
    """Worker: count one piece (see `count`)."""
    piece, reader, ids_path, ends_path = job
    sentences = reader.sentences(piece)
    index, counts, raw_tokens, n_sentences, _ = count(sentences, ids_path, ends_path)
    return Counted(list(index), counts, raw_tokens, n_sentences, sentences.bad_bytes)


# --- remapping -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Remap:
    """Rewrite one piece's provisional ids as final ids (-1: dropped) into `out` at byte `out_at`."""

    ids: Path
    ids_at: int  # byte where the raw int32 ids start
    ends: Path
    ends_at: int  # byte where the raw int64 sentence ends start
    remap: np.ndarray  # int32, provisional id -> final id or -1
    out: Path
    out_at: int
    offsets: Path  # scratch: the piece's sentence ends after dropping, empty sentences dropped


def remap_piece(job: Remap) -> tuple[int, int]:
    """Worker: final ids and sentence ends of one piece, streamed in blocks; returns (tokens, sentences)."""
    ends = raw_blocks(job.ends, job.ends_at, np.int64)
    pending = np.empty(0, dtype=np.int64)
    exhausted = False
    kept_tokens = kept_sentences = last = 0
    fd = os.open(job.out, os.O_WRONLY)
    try:
        with open_scratch(job.offsets) as offsets_out:
            for start, raw in _positions(raw_blocks(job.ids, job.ids_at, np.int32)):
                final = job.remap[raw]
                keep = final >= 0
                cum = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
                stop = start + len(raw)
                while not exhausted and (not len(pending) or pending[-1] <= stop):
                    more = next(ends, None)
                    exhausted = more is None
                    if more is not None:
                        pending = np.concatenate([pending, more])
                n = int(np.searchsorted(pending, stop, side="right"))
                new_ends = kept_tokens + cum[pending[:n] - start]
                pending = pending[n:]
                # A sentence whose every token was dropped ends where the previous one did: it goes.
                new_ends = new_ends[np.diff(new_ends, prepend=last) > 0]
                if len(new_ends):
                    offsets_out.write(new_ends.tobytes())
                    kept_sentences += len(new_ends)
                    last = int(new_ends[-1])
                data = final[keep].astype("<i4", copy=False).tobytes()
                _pwrite_all(fd, data, job.out_at + 4 * kept_tokens)
                kept_tokens += int(keep.sum())
    finally:
        os.close(fd)
    return kept_tokens, kept_sentences


def _pwrite_all(fd: int, data: bytes, at: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, at)
        view, at = view[n:], at + n


def raw_blocks(path: Path, at: int, dtype: type, size: int = BLOCK) -> Iterator[np.ndarray]:
    """A file of raw little-endian numbers after byte `at`, `size` at a time."""
    width = np.dtype(dtype).itemsize
    with open(path, "rb") as f:
        f.seek(at)
        while block := f.read(width * size):
            yield np.frombuffer(block, dtype=dtype)


def _positions(blocks: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    start = 0
    for block in blocks:
        yield start, block
        start += len(block)


# --- workers -------------------------------------------------------------------------------------
class Workers:
    """Worker processes, started with "spawn", running w2v.prepare's functions; results in job order.

    Leaving the `with` block by an exception (Ctrl-C included) stops the workers at once.
    """

    def __init__(self, n: int) -> None:
        self._executor = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_ignore_interrupts)

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        with _bare_main(), _interrupts_ignored():  # spawn starts the workers while jobs are submitted
            futures = collections.deque(self._executor.submit(fn, job) for job in jobs)
        while futures:
            future = futures.popleft()  # a done future holds its result: let go of it once handed on
            try:
                result = future.result()
            except BrokenProcessPool:
                raise UserError("a worker preparing the corpus died (out of memory?): try fewer --threads") from None
            del future
            yield result
            del result

    def map(self, fn: Callable, jobs: Iterable) -> list:
        return list(self.imap(fn, jobs))

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        if kind is None:
            self._executor.shutdown(wait=True)
            return
        processes = list((getattr(self._executor, "_processes", None) or {}).values())  # shutdown forgets them
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Hide the caller's __main__ from spawn, which would import it again in every worker.

    That import would cost each worker torch's import time when the script imports torch,
    and would run the training again in a script without `if __name__ == "__main__":`.
    The workers need only w2v.prepare, which they import when they unpickle its functions.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Workers started meanwhile begin with Ctrl-C ignored (kept across exec): the parent handles it."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread, which alone receives Ctrl-C
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- scratch files -------------------------------------------------------------------------------
def open_scratch(path: Path):
    try:
        return open(path, "wb")
    except OSError as e:
        no_space(e, path)
        raise UserError(f"cannot write in {path.parent}: {e.strerror or e}") from None


def no_space(e: OSError, path: Path) -> None:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        raise UserError(f"no space left on the device while writing {path}: free some space or use "
                        "another --out") from None
