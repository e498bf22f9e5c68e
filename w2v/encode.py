"""One streaming pass over the corpus: count the vocabulary and store the text as token ids.

Every distinct token gets a provisional id the first time it is seen and the pass writes
those ids to disk, so once the vocabulary is final the ids are remapped with numpy
instead of tokenizing the corpus a second time. Only when `max_vocab_size` pruning
happens (the vocabulary outgrew memory, as in word2vec C and gensim) do we stop writing
provisional ids and read the corpus again to encode it.

The result is `ids.npy` (int32 token ids; the trainer reads each chunk's with pread, see
Encoded.read) and `offsets.npy` (int64 sentence starts plus the end), so epochs never
re-tokenize.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from w2v.dictionary import Dictionary
from w2v.errors import UserError
from w2v.fileio import atomic_write, temporary_name
from w2v.runfolder import IDS, OFFSETS, VOCAB

_BLOCK = 1 << 20  # provisional ids buffered in memory before they go to disk


class _Index(dict):
    """word -> provisional id; an unseen word gets the next id (from C, via __missing__)."""

    next_id = 0

    def __missing__(self, word: str) -> int:
        i = self[word] = self.next_id
        self.next_id += 1
        return i


@dataclass
class Encoded:
    """The corpus as ids, memory-mapped."""

    dictionary: Dictionary
    ids: np.ndarray  # int32 [N]
    offsets: np.ndarray  # int64 [S + 1]
    raw_tokens: int  # tokens in the corpus before dropping words outside the vocabulary
    _fd: int | None = field(default=None, repr=False, compare=False)

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
        ids = self.ids
        if not (isinstance(ids, np.memmap) and ids.filename and hasattr(os, "pread")):  # pread: POSIX
            return np.ascontiguousarray(ids[start:stop])
        if self._fd is None:
            self._fd = os.open(ids.filename, os.O_RDONLY)
        n = 4 * (stop - start)
        raw = os.pread(self._fd, n, ids.offset + 4 * start)
        if len(raw) != n:
            raise UserError(f"{ids.filename} is shorter than its header says: the run folder is damaged")
        return np.frombuffer(raw, dtype="<i4")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @classmethod
    def open(cls, run_dir: str | os.PathLike, dictionary: Dictionary, raw_tokens: int) -> "Encoded":
        """ids.npy and offsets.npy of a run folder, checked against each other and the vocabulary."""
        run_dir = Path(run_dir)
        again = "start the run again with --overwrite"
        try:
            ids = np.load(run_dir / IDS, mmap_mode="r", allow_pickle=False)
            offsets = np.load(run_dir / OFFSETS, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{run_dir}: ids.npy or offsets.npy does not load ({type(e).__name__}): {again}") from None
        if ids.dtype != np.dtype("<i4") or ids.ndim != 1:
            raise UserError(f"{run_dir / IDS}: {ids.dtype} of {ids.ndim} dims, not a vector of int32 ids: {again}")
        if offsets.dtype != np.dtype("<i8") or offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 \
                or offsets[-1] != len(ids) or (np.diff(offsets) < 0).any():
            raise UserError(f"{run_dir / OFFSETS} does not describe the sentences of ids.npy: {again}")
        encoded = cls(dictionary, ids, offsets, raw_tokens)
        for start in range(0, len(ids), _BLOCK):  # read in blocks (bounded memory; see `read`)
            block = encoded.read(start, min(len(ids), start + _BLOCK))
            if int(block.min()) < 0 or int(block.max()) >= len(dictionary):
                encoded.close()
                raise UserError(f"{run_dir / IDS} holds word ids outside the {len(dictionary):,} words of "
                                f"vocab.tsv: {again}")
        return encoded


def build(
    sentences: Iterable[list[str]],
    run_dir: str | os.PathLike,
    min_count: int = 5,
    max_vocab_size: int | None = None,
    max_final_vocab: int | None = None,
    rewrite: Callable[[Path, np.ndarray, "_Index"], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Encoded:
    """Count, choose the vocabulary, and write `vocab.tsv`, `ids.npy`, `offsets.npy` in run_dir.

    `rewrite(provisional ids file, sentence lengths, index)`, if given, rewrites the provisional
    ids before the vocabulary is chosen (w2v.phrasing joins phrases) and returns the new
    sentence lengths and counts of every id.
    """
    run_dir = Path(run_dir)
    tmp_ids = temporary_name(run_dir / "provisional-ids.bin")
    index = _Index()
    counts = np.zeros(0, dtype=np.int64)
    lengths = array("q")
    buf = array("i")
    min_reduce = 1
    pruned = False
    raw_tokens = 0
    out = _open_scratch(tmp_ids)
    try:

        def flush() -> None:
            nonlocal counts, buf
            if not buf:
                return
            block = np.frombuffer(buf, dtype=np.int32)
            counts = _add_counts(counts, block, index.next_id)
            if not pruned:
                out.write(block.tobytes())
            buf = array("i")

        for sentence in sentences:
            buf.extend(map(index.__getitem__, sentence))
            lengths.append(len(sentence))
            raw_tokens += len(sentence)
            # Checked after every sentence, as gensim does: the vocabulary never grows far past the limit.
            over = max_vocab_size and len(index) > max_vocab_size
            if len(buf) >= _BLOCK or over:
                flush()
                if over:
                    index, counts = _prune(index, counts, min_reduce)
                    min_reduce += 1
                    pruned = True
        flush()
        out.close()
    except OSError as e:
        out.close()
        tmp_ids.unlink(missing_ok=True)
        _no_space(e, tmp_ids)
        raise
    except BaseException:
        out.close()
        tmp_ids.unlink(missing_ok=True)
        raise
    if raw_tokens == 0:
        tmp_ids.unlink(missing_ok=True)
        raise UserError("the corpus is empty: no tokens found")
    if rewrite is not None:
        if pruned:
            tmp_ids.unlink(missing_ok=True)
            raise UserError("--phrases needs every token's count, but --max-vocab-size pruned the vocabulary "
                            "while counting: raise or drop --max-vocab-size")
        try:
            lengths, counts = rewrite(tmp_ids, np.frombuffer(lengths, dtype=np.int64), index)
        except BaseException:
            tmp_ids.unlink(missing_ok=True)
            raise

    try:
        dictionary, remap = _choose_vocabulary(index, counts, min_count, max_final_vocab)
        index.clear()  # every distinct token of the corpus: free it before the ids are rewritten
        del index, counts
        dictionary.save(run_dir / VOCAB)
        if pruned:
            tmp_ids.unlink(missing_ok=True)
            _encode_again(sentences, dictionary, run_dir)
        else:
            _remap(tmp_ids, np.asarray(lengths, dtype=np.int64), remap, run_dir)
    finally:
        tmp_ids.unlink(missing_ok=True)
    _return_free_memory()
    return Encoded.open(run_dir, dictionary, raw_tokens)


def _return_free_memory() -> None:
    """Hand the heap freed by the count (every distinct token) back to the OS.

    glibc keeps freed memory for reuse, so the process would carry the count's peak
    (~60 MB on the 12.6M-token benchmark corpus) through all of training.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _add_counts(counts: np.ndarray, block: np.ndarray, size: int) -> np.ndarray:
    if len(counts) < size:
        counts = np.concatenate([counts, np.zeros(size - len(counts), dtype=np.int64)])
    counts += np.bincount(block, minlength=size)
    return counts


def _prune(index: _Index, counts: np.ndarray, min_reduce: int) -> tuple[_Index, np.ndarray]:
    """Drop words seen fewer than min_reduce times and renumber the rest densely (bounded memory)."""
    kept = _Index()
    new_counts = []
    for word, pid in index.items():
        c = counts[pid]
        if c >= min_reduce:
            kept[word] = len(new_counts)
            new_counts.append(c)
    kept.next_id = len(new_counts)
    return kept, np.asarray(new_counts, dtype=np.int64)


def _choose_vocabulary(
    index: _Index, counts: np.ndarray, min_count: int, max_final_vocab: int | None
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
    header = np.load(run_dir / IDS, mmap_mode="r").offset
    lengths = np.diff(np.load(run_dir / OFFSETS, allow_pickle=False))
    _remap(run_dir / IDS, lengths, np.asarray(remap, dtype=np.int32), run_dir, header)


def _remap(tmp_ids: Path, lengths: np.ndarray, remap: np.ndarray, run_dir: Path, header: int = 0) -> None:
    """Stream provisional ids to final ids, dropping out-of-vocabulary tokens and empty sentences.

    The provisional ids (raw int32 after `header` bytes) are read in blocks rather than
    memory-mapped, so they never count in the process's resident memory.
    """
    total = (tmp_ids.stat().st_size - header) // 4
    raw_offsets = np.concatenate([[0], np.cumsum(lengths)])
    new_offsets = np.empty_like(raw_offsets)
    n_kept = sum(int((remap[block] >= 0).sum()) for _, block in _blocks(tmp_ids, header=header))
    kept_before = 0
    # Written, not memory-mapped: a full disk is then an error (ENOSPC), not a SIGBUS crash.
    with atomic_write(run_dir / IDS) as ids_out:
        _npy_header(ids_out, n_kept)
        for start, raw in _blocks(tmp_ids, header=header):
            block = remap[raw]
            keep = block >= 0
            cum = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
            lo, hi = np.searchsorted(raw_offsets, [start, start + len(block)], side="left")
            new_offsets[lo:hi] = kept_before + cum[raw_offsets[lo:hi] - start]
            kept = block[keep]
            ids_out.write(kept.astype("<i4", copy=False).tobytes())
            kept_before += len(kept)
    new_offsets[np.searchsorted(raw_offsets, total, side="left") :] = kept_before
    _save_offsets(np.unique(new_offsets), run_dir)


def _blocks(path: Path, size: int = 1 << 20, header: int = 0):
    """(position, int32 block) over a file of raw ids after `header` bytes, `size` ids at a time."""
    with open(path, "rb") as f:
        f.seek(header)
        start = 0
        while block := f.read(4 * size):
            ids = np.frombuffer(block, dtype=np.int32)
            yield start, ids
            start += len(ids)


def _encode_again(sentences: Iterable[list[str]], dictionary: Dictionary, run_dir: Path) -> None:
    """Second pass after pruning: the provisional ids no longer name the final words."""
    get = dictionary.index.get
    tmp = temporary_name(run_dir / "ids.bin")
    offsets = array("q", [0])
    n = 0
    try:
        with _open_scratch(tmp) as out:
            for sentence in sentences:
                ids = np.fromiter((i for i in map(get, sentence) if i is not None), dtype=np.int32)
                if len(ids):
                    out.write(ids.astype("<i4", copy=False).tobytes())
                    n += len(ids)
                    offsets.append(n)
        with atomic_write(run_dir / IDS) as ids_out, open(tmp, "rb") as src:
            _npy_header(ids_out, n)
            shutil.copyfileobj(src, ids_out, 1 << 22)
    except OSError as e:
        _no_space(e, tmp)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    _save_offsets(np.frombuffer(offsets, dtype=np.int64), run_dir)


def _save_offsets(offsets: np.ndarray, run_dir: Path) -> None:
    with atomic_write(run_dir / OFFSETS) as f:
        np.save(f, np.ascontiguousarray(offsets, dtype=np.int64), allow_pickle=False)


def _npy_header(f, n: int) -> None:
    """The .npy header of an int32 vector of n ids; the ids follow as raw little-endian bytes."""
    np.lib.format.write_array_header_1_0(f, {"descr": "<i4", "fortran_order": False, "shape": (n,)})


def _open_scratch(path: Path):
    try:
        return open(path, "wb")
    except OSError as e:
        _no_space(e, path)
        raise UserError(f"cannot write in {path.parent}: {e.strerror or e}") from None


def _no_space(e: OSError, path: Path) -> None:
    if e.errno == errno.ENOSPC:
        raise UserError(f"no space left on the device while writing {path}: free some space or use "
                        "another --out") from None
