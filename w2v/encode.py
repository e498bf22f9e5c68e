"""One streaming pass over the corpus: count the vocabulary and store the text as token ids.

Every distinct token gets a provisional id the first time it is seen and the pass writes
those ids to disk, so once the vocabulary is final the ids are remapped with numpy
instead of tokenizing the corpus a second time. Only when `max_vocab_size` pruning
happens (the vocabulary outgrew memory, as in word2vec C and gensim) do we stop writing
provisional ids and read the corpus again to encode it.

The result is `ids.npy` (int32 token ids; the trainer reads each chunk's with pread, see
Encoded.read) and `offsets.npy` (int64 sentence starts plus the end), so epochs never
re-tokenize. Every step streams: what this process holds grows with the vocabulary, not
with the corpus (per-sentence data goes through scratch files in blocks).

With several workers the corpus is counted and remapped in pieces (w2v.prepare), and the
outputs are byte for byte those of the single pass.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from w2v import prepare
from w2v.corpus import Corpus
from w2v.dictionary import Dictionary
from w2v.errors import UserError
from w2v.fileio import atomic_write, temporary_name
from w2v.runfolder import IDS, OFFSETS, VOCAB

_BLOCK = prepare.BLOCK


@dataclass
class Encoded:
    """The corpus as ids, memory-mapped."""

    dictionary: Dictionary
    ids: np.ndarray  # int32 [N]
    offsets: np.ndarray  # int64 [S + 1], memory-mapped from a run folder: read ranges with read_offsets
    raw_tokens: int  # tokens in the corpus before dropping words outside the vocabulary
    _fds: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # by file, for pread

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    def read(self, start: int, stop: int) -> np.ndarray:
        """ids[start:stop] as a fresh array.

        From the file with pread rather than through the memory map: pages of a mapping count
        in the process's resident memory once touched, so reading a large corpus through the
        map every epoch would grow RSS by 4 bytes per token; read pages stay in the page cache
        only. In-memory ids (a torchrun shard) are sliced.
        """
        return self._pread(self.ids, start, stop)

    def read_offsets(self, start: int, stop: int) -> np.ndarray:
        """offsets[start:stop] as a fresh array, read like `read` reads ids (8 bytes per sentence otherwise)."""
        return self._pread(self.offsets, start, stop)

    def _pread(self, array: np.ndarray, start: int, stop: int) -> np.ndarray:
        """array[start:stop] of a memory-mapped .npy read with pread (POSIX), or sliced when in memory."""
        if not (isinstance(array, np.memmap) and array.filename and hasattr(os, "pread")):
            return np.ascontiguousarray(array[start:stop])
        fd = self._fds.get(array.filename)
        if fd is None:
            fd = self._fds[array.filename] = os.open(array.filename, os.O_RDONLY)
        size = array.dtype.itemsize
        raw = os.pread(fd, size * (stop - start), array.offset + size * start)
        if len(raw) != size * (stop - start):
            raise UserError(f"{array.filename} is shorter than its header says: the run folder is damaged")
        return np.frombuffer(raw, dtype=array.dtype)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    @classmethod
    def open(cls, run_dir: str | os.PathLike, dictionary: Dictionary, raw_tokens: int) -> "Encoded":
        """ids.npy and offsets.npy of a run folder, checked against each other and the vocabulary.

        Both stay memory-mapped and are checked in blocks: the corpus's size never becomes
        the process's (see `read`).
        """
        run_dir = Path(run_dir)
        again = "start the run again with --overwrite"
        try:
            ids = np.load(run_dir / IDS, mmap_mode="r", allow_pickle=False)
            offsets = np.load(run_dir / OFFSETS, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{run_dir}: ids.npy or offsets.npy does not load ({type(e).__name__}): {again}") from None
        if ids.dtype != np.dtype("<i4") or ids.ndim != 1:
            raise UserError(f"{run_dir / IDS}: {ids.dtype} of {ids.ndim} dims, not a vector of int32 ids: {again}")
        if offsets.dtype != np.dtype("<i8") or offsets.ndim != 1 or len(offsets) < 2 or not _ascending(offsets) \
                or offsets[0] != 0 or offsets[-1] != len(ids):
            raise UserError(f"{run_dir / OFFSETS} does not describe the sentences of ids.npy: {again}")
        encoded = cls(dictionary, ids, offsets, raw_tokens)
        for start in range(0, len(ids), _BLOCK):
            block = encoded.read(start, min(len(ids), start + _BLOCK))
            if int(block.min()) < 0 or int(block.max()) >= len(dictionary):
                encoded.close()
                raise UserError(f"{run_dir / IDS} holds word ids outside the {len(dictionary):,} words of "
                                f"vocab.tsv: {again}")
        return encoded


def _ascending(offsets: np.ndarray) -> bool:
    """Never decreasing; read in blocks with pread (memory-mapped pages would stay resident)."""
    last = 0
    for block in prepare.raw_blocks(Path(offsets.filename), offsets.offset, np.int64):
        if int(block[0]) < last or (np.diff(block) < 0).any():
            return False
        last = int(block[-1])
    return True


def build(
    sentences: Iterable[list[str]],
    run_dir: str | os.PathLike,
    min_count: int = 5,
    max_vocab_size: int | None = None,
    max_final_vocab: int | None = None,
    *,
    workers: int = 1,
    tokenizer: str | None = None,
    lowercase: bool | None = None,
    piece_bytes: int | None = None,
    rewrite: Callable[[Path, np.ndarray, object], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Encoded:
    """Count, choose the vocabulary, and write `vocab.tsv`, `ids.npy`, `offsets.npy` in run_dir.

    With workers > 1 and a Corpus of files, pieces of the corpus (files, and newline-cut byte
    ranges of large uncompressed files, about `piece_bytes` each) are counted and encoded in
    that many worker processes, with the same outputs byte for byte. The workers tokenize as
    `tokenizer` and `lowercase` say, which must be the Corpus's own settings. With
    max_vocab_size the pass stays in this process: pruning depends on the order in which the
    whole corpus's words arrive, and per-worker vocabularies would each take the bound.

    `rewrite(provisional ids file, sentence lengths, index)`, if given, rewrites the provisional
    ids before the vocabulary is chosen (w2v.phrasing joins phrases) and returns the new
    sentence lengths and counts of every id; it runs in this process.
    """
    run_dir = Path(run_dir)
    reader = _reader(sentences, tokenizer, lowercase)
    parallel = reader and not max_vocab_size and rewrite is None
    pieces = prepare.plan(sentences.files, workers, piece_bytes) if parallel else []
    workers = min(workers, len(pieces))
    scratch: list[Path] = []

    def temporary(name: str) -> Path:
        scratch.append(temporary_name(run_dir / name))
        return scratch[-1]

    try:
        if workers > 1:
            with prepare.Workers(workers) as pool:
                dictionary, raw_tokens = _build_parallel(sentences, pieces, reader, run_dir, min_count,
                                                         max_final_vocab, pool, temporary)
        else:
            dictionary, raw_tokens = _build_here(sentences, run_dir, min_count, max_vocab_size, max_final_vocab,
                                                 temporary, rewrite)
    finally:
        for path in scratch:
            path.unlink(missing_ok=True)
    _return_free_memory()
    return Encoded.open(run_dir, dictionary, raw_tokens)


def _reader(sentences: object, tokenizer: str | None, lowercase: bool | None) -> prepare.Reader | None:
    """How workers can read `sentences` again, piece by piece: only a Corpus whose settings we know."""
    tokenizer = tokenizer if tokenizer is not None else getattr(sentences, "tokenizer", None)
    lowercase = lowercase if lowercase is not None else getattr(sentences, "lowercase", None)
    if not isinstance(sentences, Corpus) or tokenizer is None or lowercase is None:
        return None
    return prepare.Reader(tokenizer, lowercase, sentences.max_sentence_length)


def _build_here(sentences, run_dir, min_count, max_vocab_size, max_final_vocab, temporary,
                rewrite=None) -> tuple[Dictionary, int]:
    """One pass in this process; a second one only when pruning renumbered the words."""
    ids, ends = temporary("provisional-ids.bin"), temporary("sentence-ends.bin")
    index, counts, raw_tokens, _, pruned = prepare.count(
        sentences, ids, ends, max_vocab_size, lambda *a: _prune(*a))  # looked up late: tests watch _prune
    if raw_tokens == 0:
        raise UserError("the corpus is empty: no tokens found")
    if rewrite is not None:
        if pruned:
            raise UserError("--phrases needs every token's count, but --max-vocab-size pruned the vocabulary "
                            "while counting: raise or drop --max-vocab-size")
        sentence_ends = np.fromfile(ends, dtype=np.int64)
        lengths, counts = rewrite(ids, np.diff(sentence_ends, prepend=0), index)
        with open(ends, "wb") as f:
            f.write(np.cumsum(np.asarray(lengths, dtype=np.int64)).astype("<i8").tobytes())
    dictionary, remap = _choose_vocabulary(index, counts, min_count, max_final_vocab)
    index.clear()  # every distinct token of the corpus: free it before the ids are rewritten
    del index
    dictionary.save(run_dir / VOCAB)
    if pruned:
        ids.unlink(missing_ok=True)
        ends.unlink(missing_ok=True)
        _encode_again(sentences, dictionary, run_dir, temporary)
    else:
        kept = int(counts[remap >= 0].sum())
        del counts
        _write_ids([(ids, ends, remap, kept)], run_dir, None, temporary)
    return dictionary, raw_tokens


def _build_parallel(corpus, pieces, reader, run_dir, min_count, max_final_vocab, pool,
                    temporary) -> tuple[Dictionary, int]:
    """Count pieces in the workers, merge in corpus order, remap each piece in the workers."""
    jobs = [(piece, reader, temporary(f"provisional-ids-{i}.bin"), temporary(f"sentence-ends-{i}.bin"))
            for i, piece in enumerate(pieces)]
    index = prepare.Index()
    counts = np.zeros(0, dtype=np.int64)
    found = []  # per piece: (provisional ids in the merged index, counts)
    raw_tokens = bad_bytes = 0
    for counted in pool.imap(prepare.count_piece, jobs):  # in piece order, while later pieces are counted
        # Words new to the merged index get ids in the piece's order of first appearance, after
        # every earlier piece's: exactly the ids one pass over the whole corpus gives.
        pids = np.fromiter(map(index.__getitem__, counted.words), dtype=np.int64, count=len(counted.words))
        if len(counts) < index.next_id:
            counts = np.concatenate([counts, np.zeros(index.next_id - len(counts), dtype=np.int64)])
        counts[pids] += counted.counts
        found.append((pids.astype(np.int32), counted.counts))
        raw_tokens += counted.raw_tokens
        bad_bytes += counted.bad_bytes
    corpus.bad_bytes = bad_bytes  # as one pass over the Corpus would have left it
    if raw_tokens == 0:
        raise UserError("the corpus is empty: no tokens found")
    dictionary, remap = _choose_vocabulary(index, counts, min_count, max_final_vocab)
    index.clear()
    del index, counts
    dictionary.save(run_dir / VOCAB)
    parts = []
    for (_, _, ids, ends), (pids, piece_counts) in zip(jobs, found):
        local = remap[pids]
        parts.append((ids, ends, local, int(piece_counts[local >= 0].sum())))
    del found
    _write_ids(parts, run_dir, pool, temporary)
    return dictionary, raw_tokens


def _write_ids(parts, run_dir: Path, pool, temporary) -> None:
    """ids.npy and offsets.npy from pieces given as (provisional ids, raw sentence ends, remap, kept tokens)."""
    total = sum(kept for *_, kept in parts)
    jobs, at = [], 0
    # Written, not memory-mapped: a full disk is then an error (ENOSPC), not a SIGBUS crash.
    with atomic_write(run_dir / IDS) as ids_out:
        _npy_header(ids_out, total)
        ids_out.flush()
        for i, (ids, ends, remap, kept) in enumerate(parts):
            jobs.append(prepare.Remap(ids, 0, ends, 0, remap, Path(ids_out.name), ids_out.tell() + 4 * at,
                                      temporary(f"offsets-{i}.bin")))
            at += kept
        done = pool.map(prepare.remap_piece, jobs) if pool else list(map(prepare.remap_piece, jobs))
    if [tokens for tokens, _ in done] != [kept for *_, kept in parts]:
        raise RuntimeError("the corpus changed while it was being prepared")  # counted once, remapped another time
    _write_offsets(run_dir, [(job.offsets, sentences) for job, (_, sentences) in zip(jobs, done)])


def _write_offsets(run_dir: Path, parts: list[tuple[Path, int]]) -> None:
    """offsets.npy: 0, then each part's sentence ends (a scratch file of int64) after the earlier parts' tokens."""
    with atomic_write(run_dir / OFFSETS) as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<i8", "fortran_order": False, "shape": (1 + sum(n for _, n in parts),)})
        f.write(np.zeros(1, dtype="<i8").tobytes())
        base = 0
        for path, n in parts:
            last = 0
            for block in prepare.raw_blocks(path, 0, np.int64):
                f.write((block + base).astype("<i8", copy=False).tobytes())
                last = int(block[-1])
            base += last


def _return_free_memory() -> None:
    """Hand the heap freed by the count (every distinct token) back to the OS.

    glibc keeps freed memory for reuse, so the process would carry the count's peak
    (~60 MB on the 12.6M-token benchmark corpus) through all of training.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _prune(index: prepare.Index, counts: np.ndarray, min_reduce: int) -> tuple[prepare.Index, np.ndarray]:
    """Drop words seen fewer than min_reduce times and renumber the rest densely (bounded memory)."""
    kept = prepare.Index()
    new_counts = []
    for word, pid in index.items():
        c = counts[pid]
        if c >= min_reduce:
            kept[word] = len(new_counts)
            new_counts.append(c)
    kept.next_id = len(new_counts)
    return kept, np.asarray(new_counts, dtype=np.int64)


def _choose_vocabulary(
    index: prepare.Index, counts: np.ndarray, min_count: int, max_final_vocab: int | None
) -> tuple[Dictionary, np.ndarray]:
    """Words by descending count, ties by first appearance; returns the provisional->final id map."""
    pids = np.fromiter(index.values(), dtype=np.int64, count=len(index))
    words = np.array(list(index.keys()), dtype=object)
    c = counts[pids]
    threshold = min_count
    if max_final_vocab is not None:
        eligible = np.sort(c[c >= min_count])[::-1]
        if len(eligible) > max_final_vocab:
            # As gensim: raise the count threshold rather than split a tie arbitrarily.
            threshold = max(min_count, int(eligible[max_final_vocab]) + 1)
    keep = c >= threshold
    if not keep.any():
        most = int(c.max()) if len(c) else 0
        raise UserError(
            f"no word occurs at least {threshold} times (the most frequent occurs {most} times): "
            "lower --min-count or give more text"
        )
    pids, words, c = pids[keep], words[keep], c[keep]
    order = np.lexsort((pids, -c))
    remap = np.full(index.next_id, -1, dtype=np.int32)
    remap[pids[order]] = np.arange(len(order), dtype=np.int32)
    return Dictionary(words[order].tolist(), c[order].astype(np.int64)), remap


def remap_ids(run_dir: str | os.PathLike, remap: np.ndarray) -> None:
    """Rewrite a folder's ids.npy and offsets.npy through `remap` (id -> new id; -1 drops the token)."""
    run_dir = Path(run_dir)
    remap = np.asarray(remap, dtype=np.int32)
    ids_at = np.load(run_dir / IDS, mmap_mode="r").offset
    ends_at = np.load(run_dir / OFFSETS, mmap_mode="r").offset + 8  # the ends: every offset after the first 0
    kept = sum(int((remap[block] >= 0).sum()) for block in prepare.raw_blocks(run_dir / IDS, ids_at, np.int32))
    scratch = temporary_name(run_dir / "offsets.bin")
    try:
        with atomic_write(run_dir / IDS) as ids_out:
            _npy_header(ids_out, kept)
            ids_out.flush()
            _, sentences = prepare.remap_piece(prepare.Remap(run_dir / IDS, ids_at, run_dir / OFFSETS, ends_at, remap,
                                                             Path(ids_out.name), ids_out.tell(), scratch))
        _write_offsets(run_dir, [(scratch, sentences)])
    finally:
        scratch.unlink(missing_ok=True)


def _encode_again(sentences: Iterable[list[str]], dictionary: Dictionary, run_dir: Path, temporary) -> None:
    """Second pass after pruning: the provisional ids no longer name the final words."""
    get = dictionary.index.get
    tmp, ends = temporary("ids.bin"), temporary("offsets.bin")
    n = n_sentences = 0
    try:
        with prepare.open_scratch(tmp) as out, prepare.open_scratch(ends) as ends_out:
            for sentence in sentences:
                ids = np.fromiter((i for i in map(get, sentence) if i is not None), dtype=np.int32)
                if len(ids):
                    out.write(ids.astype("<i4", copy=False).tobytes())
                    n += len(ids)
                    n_sentences += 1
                    ends_out.write(np.int64(n).tobytes())  # buffered by the file: no per-sentence array in memory
        with atomic_write(run_dir / IDS) as ids_out, open(tmp, "rb") as src:
            _npy_header(ids_out, n)
            shutil.copyfileobj(src, ids_out, 1 << 22)
    except OSError as e:
        prepare.no_space(e, tmp)
        raise
    _write_offsets(run_dir, [(ends, n_sentences)])


def _npy_header(f, n: int) -> None:
    """The .npy header of an int32 vector of n ids; the ids follow as raw little-endian bytes."""
    np.lib.format.write_array_header_1_0(f, {"descr": "<i4", "fortran_order": False, "shape": (n,)})
