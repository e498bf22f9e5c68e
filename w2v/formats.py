"""Reading and writing word vectors: word2vec text and binary, our torch bundle, .npy + vocab, projector.

Readers return a `Table`, (words, float32 matrix, counts or None); w2v.vectors wraps it
in a `Vectors`. Writers take anything with `words`, `matrix`, `counts`, `dim` and
`head(n)` (a `Vectors`).

Every writer goes through a temporary file in the target folder that is flushed, fsynced
and renamed over the target, so a crash leaves the old file or the new one. Readers
refuse malformed input with a one-line UserError naming the file and line (or row).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import sys
import warnings
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional, Union

import numpy as np

from w2v.dictionary import read_vocab_tsv, vocab_tsv_bytes
from w2v.errors import UserError
from w2v.fileio import atomic_write, atomic_writes, temporary_name, write_failure
from w2v.runfolder import MODEL, VOCAB, RunFolder, load_arrays
from w2v.tokenization import checked

if TYPE_CHECKING:  # torch is imported where a writer needs it: reading vectors for a query never loads it
    import torch

    from w2v.vectors import Vectors

FORMATS = ("text", "binary", "torch", "npy", "projector")
PROJECTOR_LIMIT = 10_000
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]")
_TSV_BREAKERS = re.compile(r"[\t\n\r]")
_MAX_WORD_BYTES = 100_000  # a longer "word" in a binary file means it is not one
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r")
_TEXT_BREAKERS = re.compile("[" + re.escape(_CONTROL.decode()) + "]")
# words, float32 matrix [V, d] (numpy or torch), counts or None
Table = tuple[list[str], Union[np.ndarray, "torch.Tensor"], Optional[np.ndarray]]


# --- writing -----------------------------------------------------------------------------

def _check_words(words: list[str], bad: re.Pattern, what: str) -> None:
    for i, w in enumerate(words):
        if not w or bad.search(w):
            raise UserError(f"word {i + 1} ({_shown(w)}) is empty or contains whitespace that {what} cannot "
                            "store; use --format torch")
        try:
            w.encode()
        except UnicodeEncodeError:  # a lone surrogate, from a bundle made elsewhere
            raise UserError(f"word {i + 1} ({_shown(w)}) is not valid Unicode; use --format torch") from None


def _shown(word: str) -> str:
    return repr(word[:40]) + ("..." if len(word) > 40 else "")


def _check_word2vec_words(words: list[str], binary: bool) -> None:
    """Refuse words that our reader (or gensim's) would read back differently from what was written."""
    _check_words(words, _ASCII_SPACE, "the word2vec format")
    for i, w in enumerate(words):
        # Readers tell text from binary by control bytes after the header: a text file must have none.
        if not binary and _TEXT_BREAKERS.search(w):
            raise UserError(f"word {i + 1} ({_shown(w)}) contains a control character that the word2vec text "
                            "format cannot store (readers would take the file for binary); use --format binary or "
                            "torch")
        if binary and len(w.encode()) >= _MAX_WORD_BYTES:  # the reader allows the newline before a word too
            raise UserError(f"word {i + 1} is {len(w.encode()):,} bytes long; word2vec binary readers stop at "
                            f"{_MAX_WORD_BYTES - 1:,}; use --format torch")


def write_word2vec(vectors: "Vectors", path: str | os.PathLike, binary: bool = False, precision: int = 6) -> None:
    """word2vec C's own format, byte for byte.

    Text: "V d" header, then per word `word` and "%lf " for each value (so a trailing
    space) and a newline. Binary: the same header, then `word `, d little-endian float32
    and a newline per word.
    """
    _check_word2vec_words(vectors.words, binary)
    m = vectors.matrix.contiguous().numpy().astype("<f4", copy=False)
    fmt = f"%.{precision}f " * vectors.dim + "\n"
    with atomic_write(path) as f:
        f.write(f"{len(vectors)} {vectors.dim}\n".encode())
        for start in range(0, len(vectors), 4096):  # batch small writes; never the whole file
            rows, words = m[start:start + 4096], vectors.words[start:start + 4096]
            if binary:
                f.write(b"".join(w.encode() + b" " + r.tobytes() + b"\n" for w, r in zip(words, rows)))
            else:
                f.write("".join(w + " " + fmt % tuple(r) for w, r in zip(words, rows.tolist())).encode())


def write_torch(vectors: "Vectors", path: str | os.PathLike) -> None:
    """{"words": list[str], "counts": LongTensor (if known), "vectors": FloatTensor[V, d],
    "tokenizer": str and "lowercase": bool (if known: how the training text was split)}.

    Only tensors, lists, strings and bools: `torch.load(path, weights_only=True)` reads it.
    """
    import torch

    m = vectors.matrix
    if m.storage_offset() or m.untyped_storage().nbytes() != m.numel() * 4 or not m.is_contiguous():
        m = m.contiguous().clone()  # torch.save writes a view's whole storage
    bundle: dict = {"words": list(vectors.words), "vectors": m}
    if vectors.counts is not None:
        bundle["counts"] = torch.from_numpy(np.asarray(vectors.counts, dtype=np.int64))
    tokenizer, lowercase = getattr(vectors, "tokenizer", None), getattr(vectors, "lowercase", None)
    if tokenizer is not None or lowercase is not None:
        bundle.update(tokenizer=tokenizer, lowercase=lowercase)
    with atomic_write(path) as f:
        torch.save(bundle, f)


def npy_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """The (.npy, .vocab.tsv) pair that write_npy writes for PATH."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix == ".npy" else path
    return base.with_name(base.name + ".npy"), base.with_name(base.name + ".vocab.tsv")


def write_npy(vectors: "Vectors", path: str | os.PathLike) -> None:
    """PATH.npy (float32 [V, d]) and PATH.vocab.tsv (`word<TAB>count` per line, or `word`).

    A trailing .npy on PATH is dropped first: `vecs.npy` and `vecs` both give
    vecs.npy + vecs.vocab.tsv.
    """
    _check_words(vectors.words, _TSV_BREAKERS, "a .tsv file")
    npy, tsv = npy_paths(path)
    # One pair: both temporaries are written whole before either is renamed, so a full disk
    # never leaves new vectors beside an old vocabulary.
    with atomic_writes([npy, tsv]) as (f_npy, f_tsv):
        np.save(f_npy, vectors.matrix.contiguous().numpy(), allow_pickle=False)
        f_tsv.write(vocab_tsv_bytes(vectors.words, vectors.counts))


def write_projector(vectors: "Vectors", folder: str | os.PathLike, limit: int | None = PROJECTOR_LIMIT) -> None:
    """A TensorBoard log folder whose Projector tab shows the first `limit` vectors, words as labels.

    View with `tensorboard --logdir FOLDER`. The folder is built beside the target and
    renamed into place; an existing folder of that name is replaced.
    """
    from torch.utils.tensorboard import SummaryWriter

    _check_words(vectors.words, _TSV_BREAKERS, "the projector's metadata.tsv")
    v = vectors.head(limit) if limit is not None else vectors
    folder = Path(folder)
    if folder.is_symlink():  # replace the link's target, as atomic_write does for files
        folder = Path(os.path.realpath(folder))
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder should be, read-only file system, ...
        raise UserError(f"cannot create the folder {folder.parent}: {e.strerror or e}") from None
    tmp = temporary_name(folder)
    try:
        with contextlib.closing(SummaryWriter(log_dir=str(tmp))) as writer:
            writer.add_embedding(v.matrix, metadata=v.words, tag="w2v")
        for root, _, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb+") as f:
                    os.fsync(f.fileno())
        old = temporary_name(folder) if folder.exists() else None
        if old:
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        error = write_failure(e, folder, "; the previous folder is kept")
        if error is not None:
            raise error from None
        raise


def save(vectors: "Vectors", path: str | os.PathLike, format: str = "torch") -> None:
    """Write `vectors` to `path` in one of FORMATS."""
    if format == "text":
        write_word2vec(vectors, path, binary=False)
    elif format == "binary":
        write_word2vec(vectors, path, binary=True)
    elif format == "torch":
        write_torch(vectors, path)
    elif format == "npy":
        write_npy(vectors, path)
    elif format == "projector":
        write_projector(vectors, path)
    else:
        raise UserError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")


# --- reading: our own formats ------------------------------------------------------------

def _regular(path: Path) -> None:
    """Refuse a FIFO or device where a vocabulary is read line by line: /dev/zero is one endless line."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file")


def _open(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def _check_finite(m: np.ndarray, path: Path, where: str, first: int) -> None:
    """nan or inf in a row makes every similarity with it nan: refuse the file, naming the row."""
    bad = np.flatnonzero(~np.isfinite(m).all(axis=1))
    if len(bad):
        raise UserError(f"{path}, {where} {first + int(bad[0])}: a value is nan or infinite")


def _check_matrix(m: object, path: Path, key: str) -> np.ndarray:
    """A dense, real, 2-d tensor with its data in the file; anything else is refused before it is used.

    load_arrays gives arrays for dense tensors; a tensor still a tensor is one numpy cannot hold.
    """
    if isinstance(m, np.ndarray):
        if m.dtype.kind != "f":
            raise UserError(f"{path}: '{key}' holds {m.dtype}; expected floating-point numbers")
        if m.ndim != 2:
            raise UserError(f"{path}: '{key}' has {m.ndim} dimensions ({m.shape}); expected a 2-d matrix")
        return m
    torch = sys.modules.get("torch")  # not imported means m cannot be a tensor
    if torch is None or not isinstance(m, torch.Tensor):
        raise UserError(f"{path}: '{key}' is a {type(m).__name__}, not a tensor")
    if m.is_meta:
        raise UserError(f"{path}: '{key}' is a meta tensor (a shape without data); expected a dense tensor of numbers")
    if m.layout != torch.strided or m.device.type != "cpu":
        raise UserError(f"{path}: '{key}' is a {m.layout} tensor on {m.device}; expected a dense tensor of numbers")
    # dense, on the CPU, yet not made an array: a dtype numpy lacks (complex32, float8, quantized)
    raise UserError(f"{path}: '{key}' holds {m.dtype}; expected floating-point numbers")


def _counts(counts: object, n: int, path: Path) -> np.ndarray:
    """The first n counts of a bundle: a 1-d integer tensor (what write_torch writes) or a list of ints."""
    if isinstance(counts, (list, tuple)) and all(isinstance(c, int) for c in counts[:n]) and len(counts) >= n:
        return np.asarray(counts[:n], dtype=np.int64)
    if not isinstance(counts, np.ndarray) or counts.ndim != 1 or counts.dtype.kind not in "iub" or counts.shape[0] < n:
        raise UserError(f"{path}: 'counts' is not a 1-d tensor of integers, one per word")
    return counts[:n].astype(np.int64)


def read_torch(path: str | os.PathLike, limit: int | None = None, which: str = "in") -> Table:
    """Our bundle; a run's model.pt is read together with the vocab.tsv beside it."""
    path = Path(path)
    obj = load_arrays(path)
    if isinstance(obj, dict) and "input" in obj and (path.parent / VOCAB).exists():
        for key in ("input", "output"):
            if key == "input" or (which != "in" and obj.get(key) is not None):
                _check_matrix(obj[key], path, key)
        words, m, counts = RunFolder(path.parent).read_vectors(which=which, limit=limit)
        _check_finite(m, path, "row", 1)
        return words, m, counts
    if not isinstance(obj, dict) or "words" not in obj or "vectors" not in obj:
        raise UserError(f"{path}: not a w2v vectors bundle (expected keys 'words' and 'vectors')")
    words = obj["words"]
    if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
        raise UserError(f"{path}: 'words' is not a list of strings")
    words = list(words[:limit])
    m = _check_matrix(obj["vectors"], path, "vectors")
    if m.shape[0] < len(words) or (limit is None and m.shape[0] != len(words)):
        raise UserError(f"{path}: {len(words)} words but {m.shape[0]} vectors")
    counts = obj.get("counts")
    if counts is not None:
        counts = _counts(counts, len(words), path)
    m = np.asarray(m[:len(words)], dtype=np.float32)  # float32 stays mapped from the file
    _check_finite(m, path, "row", 1)
    return words, m, counts


def read_npy(path: str | os.PathLike, limit: int | None = None) -> Table:
    """PATH.npy + PATH.vocab.tsv as written by write_npy."""
    npy, tsv = npy_paths(path)
    _regular(tsv)
    words, counts = read_vocab_tsv(tsv, limit, with_counts=False)
    try:
        m = np.load(npy, mmap_mode="r", allow_pickle=False)  # mapped: only the rows we keep are copied
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{npy}: not a .npy matrix ({e})") from None
    if m.dtype.kind not in "fiu":  # strings, objects, records, complex: not vectors
        raise UserError(f"{npy}: holds {m.dtype} values; expected numbers")
    if m.ndim != 2:
        raise UserError(f"{npy}: has {m.ndim} dimensions {m.shape}; expected a 2-d matrix (words x dimensions)")
    if m.shape[0] < len(words) or (limit is None and m.shape[0] != len(words)):
        raise UserError(f"{npy}: shape {m.shape} does not match {len(words)} words in {tsv}")
    out = np.array(m[:len(words)], dtype=np.float32)
    _check_finite(out, npy, "row", 1)
    return words, out, counts


def read_tokenization(path: str | os.PathLike) -> tuple[str | None, bool | None]:
    """(tokenizer, lowercase) recorded with the vectors that `load(path)` reads: a run's config.json
    or a torch bundle's keys; (None, None) for the formats that do not record them."""
    path = Path(path)
    if path.is_dir():
        return RunFolder(path).tokenization()
    if path.name == MODEL and (path.parent / VOCAB).exists():
        return RunFolder(path.parent).tokenization()
    if path.is_file():
        with _open(path) as f:
            if f.read(4) == b"PK\x03\x04":  # a torch file; load has read it already, so it loads
                bundle = load_arrays(path)
                if isinstance(bundle, dict):
                    return checked(bundle.get("tokenizer"), bundle.get("lowercase"), str(path))
    return None, None


# --- reading: word2vec text and binary --------------------------------------------------

class _BadUtf8:
    """Counts words whose bytes are not UTF-8; they are kept with U+FFFD in place of the bad bytes."""

    def __init__(self, path: Path) -> None:
        self.path, self.count, self.first = path, 0, ""

    def decode(self, raw: bytes, where: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.count += 1
            self.first = self.first or where
            return raw.decode("utf-8", errors="replace")

    def report(self) -> None:
        if self.count:
            warnings.warn(f"{self.path}: {self.count} word(s) are not valid UTF-8 (first at {self.first}); "
                          "the bad bytes were replaced with U+FFFD", UnicodeWarning, stacklevel=3)


def _parse_header(line: bytes) -> tuple[int, int] | None:
    tokens = line.split()
    if len(tokens) == 2 and all(t.isdigit() for t in tokens):
        return int(tokens[0]), int(tokens[1])
    return None


class _Rows:
    """The matrix a header declares, filled row by row.

    A header is a claim. In a file, rows * d floats are allocated at once after checking
    that the bytes after the header can hold them; in a stream (a .gz, whose decompressed
    size is unknown) nothing is allocated until a row has been read whole, then the matrix
    grows (doubling) as rows arrive, so memory follows the data actually read, and a short
    stream ends in the reader's "truncated" error.
    """

    _FIRST_BYTES = 1 << 22  # a stream's first allocation

    def __init__(self, path: Path, rows: int, d: int, row_bytes: int, available: int | None) -> None:
        if available is not None and rows * row_bytes > available:
            raise UserError(f"{path}: the header declares {rows} words of {d} numbers, more than the "
                            f"{available} bytes after it can hold (truncated file or wrong header)")
        self.path, self.declared, self.d = path, rows, d
        self.matrix = self._allocate(rows if available is not None else 0)

    def _allocate(self, rows: int) -> np.ndarray:
        try:
            return np.empty((rows, self.d), dtype=np.float32)
        except (MemoryError, ValueError):
            raise UserError(f"{self.path}: the header declares {self.declared} words of {self.d} numbers, "
                            "more than memory can hold") from None

    def row(self, i: int) -> np.ndarray:
        """Row i to fill, asked for once its data has been read; rows are filled in order."""
        if i == len(self.matrix):
            grown = self._allocate(min(self.declared, max(2 * i, self._FIRST_BYTES // (4 * self.d), 1)))
            grown[:i] = self.matrix
            self.matrix = grown
        return self.matrix[i]


def _parse_text_row(line: bytes, d: int, rows: _Rows, i: int, path: Path, lineno: int, utf8: _BadUtf8) -> str:
    """Parse a line into row i of `rows`; returns the word."""
    parts = utf8.decode(line, f"line {lineno}").rstrip().split(" ")
    if not parts[0]:
        raise UserError(f"{path}, line {lineno}: {'empty line' if len(parts) == 1 else 'no word before the numbers'}")
    if len(parts) != d + 1:
        raise UserError(f"{path}, line {lineno}: expected a word and {d} numbers, found {len(parts) - 1} numbers")
    try:
        rows.row(i)[:] = parts[1:]  # numpy parses the strings straight into the preallocated row
    except ValueError:
        bad = next(p for p in parts[1:] if not _is_number(p))
        shown = repr(bad[:40]) + ("..." if len(bad) > 40 else "")
        raise UserError(f"{path}, line {lineno}: {shown} is not a number") from None
    return parts[0]


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_text(f: IO[bytes], path: Path, first: bytes, header: tuple[int, int] | None,
               size: int | None, limit: int | None) -> Table:
    utf8 = _BadUtf8(path)
    if header is None:  # no header: count the rows first so the matrix is allocated once
        probe = utf8.decode(first, "line 1").rstrip().split(" ")
        d = len(probe) - 1
        if d < 1:
            raise UserError(f"{path}, line 1: expected a header 'count dimension' or a word and its numbers")
        total = 1 + sum(1 for line in f if line.strip())
        f.seek(0)
        lineno0 = 0
    else:
        total, d = header
        if d < 1:
            raise UserError(f"{path}, line 1: dimension must be at least 1")
        lineno0 = 1
    n = total if limit is None else min(total, limit)
    rows = _Rows(path, n, d, 2 * d + 1, None if size is None else size - (len(first) if header else 0))
    words: list[str] = []
    lines = enumerate(f, lineno0 + 1)
    while len(words) < n:
        lineno, line = next(lines, (None, b""))
        if lineno is None:
            raise UserError(f"{path}: truncated: the header declares {total} words but the file ends "
                            f"after {len(words)}")
        words.append(_parse_text_row(line, d, rows, len(words), path, lineno, utf8))
    if n == total:
        for lineno, line in lines:
            if line.strip():
                raise UserError(f"{path}, line {lineno}: more rows than the {total} the header declares")
    _check_finite(rows.matrix, path, "line", lineno0 + 1)
    utf8.report()
    return words, rows.matrix, None


def _read_binary(f: IO[bytes], path: Path, header: tuple[int, int], size: int | None, offset: int,
                 limit: int | None) -> Table:
    total, d = header
    if d < 1:
        raise UserError(f"{path}, line 1: dimension must be at least 1")
    n = total if limit is None else min(total, limit)
    vec_bytes = 4 * d
    rows = _Rows(path, n, d, vec_bytes + 2, None if size is None else size - offset)
    words: list[str] = []
    utf8 = _BadUtf8(path)
    # A stream's reads stay small whatever d the header claims: the bytes must arrive first.
    buf, pos, chunk = b"", 0, max(1 << 20, 2 * vec_bytes) if size is not None else 1 << 22
    for i in range(n):
        while True:
            sp = buf.find(b" ", pos)
            if sp != -1 and len(buf) - sp - 1 >= vec_bytes:
                break
            if sp == -1 and len(buf) - pos > _MAX_WORD_BYTES:
                raise UserError(f"{path}, word {i + 1} (byte {offset + pos}): no space after the word "
                                f"within {_MAX_WORD_BYTES} bytes: not a word2vec binary file")
            more = f.read(chunk)
            if not more:
                raise UserError(f"{path}: truncated: the header declares {total} words but the file ends "
                                f"in word {i + 1} (byte {offset + len(buf)})")
            offset += pos
            buf, pos = buf[pos:] + more, 0
        # word2vec C ends each vector with a newline, gensim does not: accept both.
        raw = buf[pos:sp].lstrip(b"\n")
        if not raw:
            raise UserError(f"{path}, word {i + 1} (byte {offset + pos}): empty word")
        words.append(utf8.decode(raw, f"word {i + 1}"))
        rows.row(i)[:] = np.frombuffer(buf, dtype="<f4", count=d, offset=sp + 1)
        pos = sp + 1 + vec_bytes
    if n == total and (buf[pos:].strip() or f.read(1 << 16).strip()):
        raise UserError(f"{path}: more data after the {total} words the header declares")
    _check_finite(rows.matrix, path, "word", 1)
    utf8.report()
    return words, rows.matrix, None


def read_word2vec(path: str | os.PathLike, limit: int | None = None, binary: bool | None = None) -> Table:
    """A word2vec text or binary file (gensim, fastText .vec and word2vec C files included).

    binary=None detects the format: text if the bytes after the header hold no control
    characters. Text may lack the "V d" header line. A .gz file is read as the gzip'd form
    of either, as gensim reads it.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: empty file")
    if path.suffix != ".gz":
        with _open(path) as f:
            return _read_word2vec(f, path, size, limit, binary)
    with _open(path) as raw, gzip.GzipFile(fileobj=raw) as f:
        try:
            return _read_word2vec(f, path, None, limit, binary)
        except (OSError, EOFError, zlib.error) as e:  # not gzip, damaged or cut short (BadGzipFile is an OSError)
            raise UserError(f"{path} is not a valid gzip file: {' '.join(str(e).split()) or type(e).__name__}") from None


def _read_word2vec(f: IO[bytes], path: Path, size: int | None, limit: int | None, binary: bool | None) -> Table:
    """read_word2vec on an open file of `size` bytes, or a stream (size None) that can seek back a little."""
    first = f.readline(1 << 20)  # bounded: a binary file may have no newline for a long way
    if not first:
        raise UserError(f"{path}: empty file")
    header = _parse_header(first)
    if header is None and len(first.split()) < 2:
        raise UserError(f"{path}, line 1: expected a header 'count dimension' or a word and its numbers")
    if binary is None:
        sample = f.read(1 << 16)
        binary = header is not None and any(b in _CONTROL for b in sample)
        f.seek(len(first))
    if binary:
        if header is None:
            raise UserError(f"{path}, line 1: a binary word2vec file must start with 'count dimension'")
        return _read_binary(f, path, header, size, len(first), limit)
    return _read_text(f, path, first, header, size, limit)


# --- reading: dispatch -------------------------------------------------------------------

def _refuse_gzipped_bundle(path: Path) -> None:
    """A gzip'd .pt, .npy or pickle would reach the word2vec parser as noise: say what it is instead."""
    with _open(path) as raw, gzip.GzipFile(fileobj=raw) as f:
        try:
            magic = f.read(6)
        except (OSError, EOFError, zlib.error):
            return  # read_word2vec explains
    if magic.startswith(b"PK\x03\x04") or magic == b"\x93NUMPY" or magic[:1] == b"\x80":
        raise UserError(f"{path} holds a torch, numpy or pickle file, which w2v reads only uncompressed: "
                        f"gunzip -k {path}")


def load(path: str | os.PathLike, limit: int | None = None, which: str = "in",
         binary: bool | None = None) -> Table:
    """Read any format we write, or a word2vec text/binary file from elsewhere. See w2v.vectors.load."""
    path = Path(path)
    if limit is not None and limit < 0:
        raise UserError(f"limit must be at least 0, got {limit}")
    if not path.exists():
        if npy_paths(path)[0].exists():
            return read_npy(path, limit)
        raise UserError(f"{path} not found")
    if path.is_dir():
        if RunFolder(path).is_run():
            _regular(path / VOCAB)
            if (path / MODEL).is_file():
                return read_torch(path / MODEL, limit, which)  # checks the tensors before they are used
            return RunFolder(path).read_vectors(which=which, limit=limit)
        raise UserError(f"{path} is a folder but not a training run (no vocab.tsv)")
    if which != "in" and not (path.name == MODEL and (path.parent / VOCAB).exists()):
        raise UserError(f"{path}: --which {which} needs a run folder; other files hold one set of vectors")
    if path.suffix in (".bz2", ".xz", ".zip", ".zst"):
        tool = {".bz2": "bunzip2 -k", ".xz": "unxz -k", ".zst": "unzstd"}.get(path.suffix, "unzip")
        raise UserError(f"{path}: compressed files are not read directly; decompress it first: {tool} {path}")
    if not path.is_file():  # a FIFO or device: the readers need the size and seek back
        raise UserError(f"{path} is not a regular file; save the vectors to a file first")
    if path.suffix == ".gz":  # word2vec text or binary, gzip'd (what gensim reads); not our .pt or .npy
        _refuse_gzipped_bundle(path)
        return read_word2vec(path, limit, binary)
    with _open(path) as f:
        magic = f.read(6)
    if magic[:1] == b"\x80" and magic[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        # gensim's .model and .kv files are pickles; unpickling runs whatever code the file names.
        loader = f"KeyedVectors.load({str(path)!r})" if path.suffix == ".kv" else f"Word2Vec.load({str(path)!r}).wv"
        raise UserError(f"{path} is a Python pickle (a gensim .model or .kv file?), which w2v never loads: "
                        f"convert it in gensim with {loader}.save_word2vec_format('v.bin', binary=True)")
    if magic.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        return read_torch(path, limit, which)
    if magic == b"\x93NUMPY":
        return read_npy(path, limit)
    return read_word2vec(path, limit, binary)
