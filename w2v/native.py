"""The C training kernel: compiled on first use with the system C compiler, then cached.

A plain C file through ctypes rather than a torch C++ extension: it builds in well under
a second with any gcc/clang, needs no torch headers or ninja, and a ctypes call releases
the GIL, which is all hogwild threads need. `-march=native` is safe because the cache key
includes the CPU's flags. An installed wheel carries portable builds (w2v/prebuilt/, made
by setup.py) and uses the best one the CPU runs, so it needs no compiler. Without either,
`available()` is False and the trainer falls back to the PyTorch path.

The compiled library is cached under $W2V_CACHE (or $XDG_CACHE_HOME, or ~/.cache)/w2v with a
sidecar checksum written after it; a library whose checksum is missing or does not match
(a truncated file from a full disk or a killed build) is rebuilt, never loaded.

make_job checks every buffer and count before the kernel sees it (UserError, one line),
and the kernel stops a chunk whose scores become nan or infinite (`Diverged`).

W2V_KERNEL_SANITIZE=1 builds the kernel with AddressSanitizer and UndefinedBehaviorSanitizer,
into a cache entry of its own; the process must preload the sanitizer runtimes
(LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)").
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import operator
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from w2v.errors import UserError
from w2v.native_build import COMPILE_FLAGS, LEVEL_NEEDS, NATIVE_FLAGS, PORTABLE_LEVELS, compile_kernel

SOURCE = Path(__file__).with_name("csrc") / "kernel.c"
FLAGS = [*COMPILE_FLAGS, *NATIVE_FLAGS]  # compiled for this CPU on first use (see native_build)
PREBUILT = Path(__file__).with_name("prebuilt")  # portable builds that a wheel carries (setup.py)
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]

# w2v_train_chunk's return codes (kernel.c)
DONE, NO_MEMORY, DIVERGED, BAD_ID, BAD_SENTENCE, BAD_JOB = 0, -1, -2, -3, -4, -5
MAX_NEGATIVE = 1000
_INT32_MAX, _INT64_MAX = 2**31 - 1, 2**63 - 1

_i32p = ctypes.POINTER(ctypes.c_int32)
_f32p = ctypes.POINTER(ctypes.c_float)


class Job(ctypes.Structure):
    """Mirror of `Job` in kernel.c: pointers are raw addresses of numpy / torch buffers."""

    _fields_ = [
        ("input", ctypes.c_void_p),
        ("output", ctypes.c_void_p),
        ("output_hs", ctypes.c_void_p),
        ("vocab", ctypes.c_int64),
        ("dim", ctypes.c_int32),
        ("negative", ctypes.c_int32),
        ("window", ctypes.c_int32),
        ("cbow", ctypes.c_int32),
        ("ids", ctypes.c_void_p),
        ("offsets", ctypes.c_void_p),
        ("s_begin", ctypes.c_int64),
        ("s_end", ctypes.c_int64),
        ("keep", ctypes.c_void_p),
        ("alias_accept", ctypes.c_void_p),
        ("alias_index", ctypes.c_void_p),
        ("hs_points", ctypes.c_void_p),
        ("hs_codes", ctypes.c_void_p),
        ("hs_lengths", ctypes.c_void_p),
        ("hs_width", ctypes.c_int32),
        ("fixed_negatives", ctypes.c_void_p),
        ("n_fixed_negatives", ctypes.c_int64),
        ("alpha", ctypes.c_double),
        ("min_alpha", ctypes.c_double),
        ("total_words", ctypes.c_int64),
        ("words_done", ctypes.c_void_p),
        ("seed", ctypes.c_uint64),
        ("loss_sum", ctypes.c_double),
        ("loss_count", ctypes.c_int64),
        ("words", ctypes.c_int64),
        ("ids_base", ctypes.c_int64),
        ("top_nodes", ctypes.c_int32),
        # appended fields: the same order as in kernel.c
        ("n_ids", ctypes.c_int64),
        ("alpha_end", ctypes.c_double),
        ("error_at", ctypes.c_int64),
    ]


class Diverged(UserError):
    """Training diverged: a score became nan or infinite, so the chunk was stopped.

    `alpha` is the learning rate in effect then. Usually the rate is too high; a run resumed
    from vectors that already hold nan or inf diverges at any rate.
    """

    def __init__(self, alpha: float, option: str = "--alpha") -> None:
        self.alpha, self.option = alpha, option
        super().__init__(f"training diverged (a score became nan or infinite) at learning rate {alpha:.4g}: "
                         f"lower {option}")

    def __reduce__(self):  # pickle and copy rebuild it from its own arguments, not the message
        return Diverged, (self.alpha, self.option)


def _bad(message: str) -> UserError:
    return UserError(f"bad training input: {message}")


def _int(name: str, value, low: int, high: int = _INT32_MAX) -> int:
    """value as an int in [low, high] (the range of its C field, or tighter)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise _bad(f"{name} must be an integer, not {type(value).__name__}") from None
    if not low <= v <= high:
        raise _bad(f"{name} must be from {low} to {high}, not {v}")
    return v


def _rate(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{name} must be a number, not {type(value).__name__}") from None
    if not (math.isfinite(v) and v >= 0):
        raise _bad(f"{name} must be a finite number, 0 or more, not {v}")
    return v


def _array(name: str, x, dtype, shape: tuple[int | None, ...], writable: bool = False) -> np.ndarray:
    """x (a numpy array or CPU tensor) as a numpy array on the same memory, checked: dtype,
    shape (None: any length), C order, alignment, and writability for what the kernel writes."""
    if x is None:
        raise _bad(f"{name} is missing")
    if not isinstance(x, np.ndarray):
        device = getattr(x, "device", None)
        if device is None or not hasattr(x, "detach"):
            raise _bad(f"{name} must be a numpy array or a CPU tensor, not {type(x).__name__}")
        if device.type != "cpu":
            raise _bad(f"{name} is on {device}, not on the CPU")
        try:
            x = x.detach().numpy()
        except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16), a conjugate view
            raise _bad(f"{name} has dtype {x.dtype}, not {np.dtype(dtype).name}") from None
    if x.dtype != dtype:
        raise _bad(f"{name} has dtype {x.dtype}, not {np.dtype(dtype).name}")
    if x.ndim != len(shape) or any(want is not None and got != want for got, want in zip(x.shape, shape)):
        want = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ("," if len(shape) == 1 else "") + ")"
        raise _bad(f"{name} has shape {tuple(x.shape)}, not {want}")
    if not (x.flags.c_contiguous and x.flags.aligned):
        raise _bad(f"{name} is not a contiguous (C-order) array")
    if writable and not x.flags.writeable:
        raise _bad(f"{name} is read-only")
    return x


# Per-vocabulary tables (keep, alias, Huffman) are the same objects for every chunk of a
# run: their values are checked once per object (id -> (weak reference, what was checked)).
# Changing such an array in place after its first job is not noticed.
_checked: dict[int, tuple[weakref.ref, tuple]] = {}


def _check_once(array: np.ndarray, key: tuple, ok: Callable[[], bool], message: str) -> None:
    entry = _checked.get(id(array))
    if entry is not None and entry[0]() is array and entry[1] == key:
        return
    if not ok():
        raise _bad(message)
    try:
        ref = weakref.ref(array, lambda _, k=id(array): _checked.pop(k, None))
    except TypeError:
        return
    _checked[id(array)] = (ref, key)


def _max_u32(a: np.ndarray) -> int:
    """The largest value of an int32 array read as unsigned: negative values come out huge,
    so one pass checks both ends of a range [0, n)."""
    return int(a.view(np.uint32).max()) if a.size else 0


def make_job(*, input, output, output_hs, dim: int, negative: int, window: int, cbow: bool,
             ids: np.ndarray, offsets: np.ndarray, s_begin: int, s_end: int, keep: np.ndarray | None,
             noise: tuple[np.ndarray, np.ndarray], huffman: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
             alpha: float, min_alpha: float, total_words: int, words_done: np.ndarray, seed: int,
             ids_base: int = 0, top_nodes: int = 0, fixed_negatives: np.ndarray | None = None) -> Job:
    """The one place a `Job` is built: every input checked, the buffers kept alive as long as the job.

    input/output/output_hs: float32 matrices (numpy or CPU torch) [V, dim], [V, dim] and
    [V - 1, dim] (or more rows); output is used only with negative > 0 and output_hs only when given (it
    needs huffman). ids (int32) holds the corpus's tokens from `ids_base` on; offsets
    (int64) are the sentence starts of the whole corpus; the chunk is sentences
    [s_begin, s_end). keep: per-word keep probabilities (None: no sub-sampling); noise: the
    alias table (accept, alias); huffman: (points, codes, lengths) or None; words_done: the
    int64 counter shared by all threads (the learning rate's clock). fixed_negatives: for
    the reference tests only.

    Anything the kernel could not train safely raises UserError with a one-line message:
    wrong dtypes, shapes or layouts, ids outside the vocabulary (only the chunk's are read),
    offsets outside ids or decreasing, counts out of range, non-finite rates. The per-chunk
    cost is a pass over the chunk's ids and offsets; per-vocabulary tables are checked once.
    """
    dim = _int("dim", dim, 1)
    negative = _int("negative", negative, 0, MAX_NEGATIVE)
    window = _int("window", window, 1)
    top_nodes = _int("top_nodes", top_nodes, 0)
    total_words = _int("total_words", total_words, 1, _INT64_MAX)
    ids_base = _int("ids_base", ids_base, 0, _INT64_MAX)
    seed = _int("seed", seed, -_INT64_MAX - 1, 2**64 - 1) & 0xFFFFFFFFFFFFFFFF
    alpha, min_alpha = _rate("alpha", alpha), _rate("min_alpha", min_alpha)

    inp = _array("input", input, np.float32, (None, dim), writable=True)
    vocab = inp.shape[0]
    if vocab < 1:
        raise _bad("input has no rows: the vocabulary is empty")
    out = _array("output", output, np.float32, (vocab, dim), writable=True) if negative else None
    out_hs = points = codes = lengths = None
    if output_hs is not None:
        if vocab < 2:
            raise _bad("hierarchical softmax needs at least 2 words in the vocabulary")
        out_hs = _array("output_hs", output_hs, np.float32, (None, dim), writable=True)
        if len(out_hs) < vocab - 1:  # more rows are never read (bench/investigations/kernel_ab.py passes [V, d])
            raise _bad(f"output_hs has shape {out_hs.shape}, not ({vocab - 1}, {dim})")
        if huffman is None or len(huffman) != 3:
            raise _bad("output_hs needs huffman (points, codes, lengths)")
        points = _array("Huffman points", huffman[0], np.int32, (vocab, None))
        width = points.shape[1]
        if width < 1:
            raise _bad("Huffman points have no columns")
        codes = _array("Huffman codes", huffman[1], np.uint8, (vocab, width))
        lengths = _array("Huffman lengths", huffman[2], np.int32, (vocab,))
        _check_once(points, ("points", vocab), lambda: _max_u32(points) <= vocab - 2,
                    f"Huffman points outside the {vocab - 1} inner nodes")
        _check_once(lengths, ("lengths", width), lambda: 1 <= lengths.min() and lengths.max() <= width,
                    f"Huffman path lengths outside 1..{width}")
    accept = alias = fixed = None
    if negative:
        if fixed_negatives is not None:
            fixed = _array("fixed_negatives", fixed_negatives, np.int32, (None,))
            if not fixed.size or _max_u32(fixed) >= vocab:
                raise _bad(f"fixed_negatives must be word ids 0..{vocab - 1}, and at least one")
        else:
            if noise is None or len(noise) != 2:
                raise _bad("negative sampling needs noise (alias accept, alias index)")
            accept = _array("alias accept", noise[0], np.float32, (vocab,))
            alias = _array("alias index", noise[1], np.int32, (vocab,))
            _check_once(alias, ("alias", vocab), lambda: _max_u32(alias) < vocab,
                        f"alias indices outside the vocabulary of {vocab} words")
    if keep is not None:
        keep = _array("keep", keep, np.float32, (vocab,))
        # min/max are nan if any value is: the comparisons then fail too
        _check_once(keep, ("keep",), lambda: bool(keep.min() >= 0 and keep.max() <= 1),
                    "keep probabilities must be finite and in [0, 1]")
    counter = _array("words_done", words_done, np.int64, (None,), writable=True)
    if not counter.size or counter[0] < 0:
        raise _bad("words_done must hold a word count, 0 or more")

    ids_arr = _array("ids", ids, np.int32, (None,))
    offs = _array("offsets", offsets, np.int64, (None,))
    if not offs.size:
        raise _bad("offsets is empty")
    s_begin = _int("s_begin", s_begin, 0, len(offs) - 1)
    s_end = _int("s_end", s_end, s_begin, len(offs) - 1)
    chunk = offs[s_begin : s_end + 1]
    first, last = int(chunk[0]) - ids_base, int(chunk[-1]) - ids_base
    if first < 0 or last > len(ids_arr) or last < first:
        raise _bad(f"sentences {s_begin}..{s_end} span tokens {first + ids_base}..{last + ids_base}, "
                   f"outside ids (tokens {ids_base}..{ids_base + len(ids_arr)})")
    if len(chunk) > 2 and not (chunk[1:] >= chunk[:-1]).all():
        raise _bad(f"offsets decrease within sentences {s_begin}..{s_end}")
    words = ids_arr[first:last]
    if _max_u32(words) >= vocab:
        at = int(np.flatnonzero(words.view(np.uint32) >= vocab)[0])
        raise _bad(f"word id {int(words[at])} at corpus position {ids_base + first + at} is outside "
                   f"the vocabulary of {vocab} words")

    def address(a: np.ndarray | None) -> int | None:
        return None if a is None else a.ctypes.data

    job = Job(
        input=address(inp), output=address(out), output_hs=address(out_hs), vocab=vocab, dim=dim,
        negative=negative, window=window, cbow=int(bool(cbow)), ids=address(ids_arr), offsets=address(offs),
        s_begin=s_begin, s_end=s_end, keep=address(keep), alias_accept=address(accept), alias_index=address(alias),
        hs_points=address(points), hs_codes=address(codes), hs_lengths=address(lengths),
        hs_width=points.shape[1] if points is not None else 0, fixed_negatives=address(fixed),
        n_fixed_negatives=len(fixed) if fixed is not None else 0, alpha=alpha, min_alpha=min_alpha,
        total_words=total_words, words_done=address(counter), seed=seed, ids_base=ids_base, top_nodes=top_nodes,
        n_ids=len(ids_arr),
    )
    # the callers' objects and the numpy views of them, alive as long as the job
    job.buffers = (input, output, output_hs, inp, out, out_hs, ids_arr, offs, keep, accept, alias, points, codes,
                   lengths, fixed, counter, words_done)
    return job


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


def _cache_dir() -> Path:
    base = os.environ.get("W2V_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "w2v"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _cpu_key() -> str:
    return platform.machine() + _cpu_flags()


def _prebuilt() -> Path | None:
    """The best prebuilt kernel of an installed wheel that this CPU runs (None in a source checkout)."""
    if not PREBUILT.is_dir() or os.environ.get("W2V_KERNEL_SANITIZE", "0") not in ("", "0"):
        return None
    have = set(_cpu_flags().split())
    for level in PORTABLE_LEVELS.get(platform.machine(), {"default": []}):
        candidate = PREBUILT / f"kernel-{level}.so"
        if candidate.is_file() and LEVEL_NEEDS.get(level, set()) <= have:
            return candidate
    return None


def _flags() -> list[str]:
    return FLAGS + SANITIZE_FLAGS if os.environ.get("W2V_KERNEL_SANITIZE", "0") not in ("", "0") else FLAGS


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_whole(target: Path) -> bool:
    """Whether the cached library is the one a finished build wrote: its sidecar (written
    after it) holds its size and SHA-256. Loading a truncated library crashes the process
    (SIGBUS) instead of raising, so a missing or wrong sidecar means rebuild."""
    try:
        size, digest = _sidecar(target).read_text().split()
        data = target.read_bytes()
    except (OSError, ValueError):
        return False
    return len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.w2v_train_chunk.argtypes = [ctypes.POINTER(Job)]
    lib.w2v_train_chunk.restype = ctypes.c_int
    lib.w2v_reset_fixed_negatives.argtypes = []
    return lib


def _compile() -> ctypes.CDLL:
    prebuilt = _prebuilt()
    if prebuilt is not None:
        return _load(prebuilt)
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        raise RuntimeError("no C compiler found (install gcc, or set CC)")
    source = SOURCE.read_bytes()
    flags = _flags()
    key = hashlib.sha256(source + " ".join(flags).encode() + _cpu_key().encode()).hexdigest()[:16]
    target = _cache_dir() / f"kernel-{key}.so"
    if not _is_whole(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name and renamed: another process never sees half a file.
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            compile_kernel(compiler, SOURCE, Path(tmp), flags[len(COMPILE_FLAGS):])
            data = Path(tmp).read_bytes()
            _write_synced(tmp, data)
            os.replace(tmp, target)
        except subprocess.CalledProcessError as e:
            os.unlink(tmp)
            raise RuntimeError(f"compiling the kernel failed: {e.stderr.strip()[:500]}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fd, tmp = tempfile.mkstemp(suffix=".sha256", dir=target.parent)
        os.close(fd)
        try:
            _write_synced(tmp, f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode())
            os.replace(tmp, _sidecar(target))
        except OSError:  # the library is whole; without its sidecar the next process rebuilds it
            Path(tmp).unlink(missing_ok=True)
    return _load(target)


def library() -> ctypes.CDLL:
    """The compiled kernel (compiled once per source, flags and CPU); RuntimeError if it can't be."""
    global _lib, _error
    with _lock:
        if _lib is None and _error is None:
            try:
                _lib = _compile()
            except (RuntimeError, OSError) as e:
                _error = str(e)
        if _lib is None:
            raise RuntimeError(_error)
        return _lib


def available() -> bool:
    """Whether the C kernel can be used on this machine."""
    try:
        library()
        return True
    except RuntimeError:
        return False


def unavailable_reason() -> str | None:
    return None if available() else _error


_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25
_HUGE = 1 << 21
_advised: set[tuple[int, ...]] = set()


def advise_huge_pages(address: int, nbytes: int, run: int = 0) -> bool:
    """Ask Linux to back a matrix with 2 MB pages (MADV_HUGEPAGE, then MADV_COLLAPSE now).

    Training reads rows at random all over the input and output matrices: with 4 kB pages
    nearly every row costs a TLB miss and a page walk. numpy asks for huge pages on big
    arrays itself; torch's allocator does not, and with THP in `madvise` mode (the common
    default) its tensors stay on 4 kB pages. Only the 2 MB-aligned inside of the buffer is
    advised, so memory outside it is untouched. Advice changes the backing, never the
    contents; where it is not supported this does nothing. Done once per buffer and `run`
    (the trainer's shared word counter tells runs apart). W2V_HUGEPAGES=0 turns it off.
    """
    if not address or os.environ.get("W2V_HUGEPAGES", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    start, end = (address + _HUGE - 1) & ~(_HUGE - 1), (address + nbytes) & ~(_HUGE - 1)
    with _lock:
        if end <= start or (start, end, run) in _advised:
            return False
        _advised.add((start, end, run))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        if libc.madvise(start, end - start, _MADV_HUGEPAGE) != 0:
            return False
        libc.madvise(start, end - start, _MADV_COLLAPSE)  # kernels before 6.1: EINVAL, khugepaged does it later
    except (OSError, AttributeError):
        return False
    return True


def train_chunk(job: Job) -> None:
    """Run one chunk; the GIL is released for the duration (ctypes.CDLL does that).

    Raises MemoryError when the kernel cannot allocate its buffers, `Diverged` when a score
    became nan or infinite, and UserError when the kernel refuses the job (its own checks,
    for a Job changed after make_job). A chunk that raises has been partly applied.
    """
    rows = job.vocab * job.dim * 4
    for address in (job.input, job.output, job.output_hs):
        if address:
            advise_huge_pages(address, rows, job.words_done or 0)
    code = library().w2v_train_chunk(ctypes.byref(job))
    if code == DONE:
        return
    if code == NO_MEMORY:
        raise MemoryError("the training kernel could not allocate its buffers")
    if code == DIVERGED:
        # a floor above the starting rate is what set the rate in effect then
        raise Diverged(job.alpha_end, "--min-alpha" if job.min_alpha > job.alpha else "--alpha")
    if code == BAD_ID:
        raise _bad(f"the word id at corpus position {job.error_at} is outside the vocabulary of {job.vocab} words")
    if code == BAD_SENTENCE:
        raise _bad(f"sentence {job.error_at} lies outside the ids given, or its offsets decrease")
    raise _bad(f"the training kernel refused the job (code {code}): a count, buffer or rate is out of range")
