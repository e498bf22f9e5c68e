"""The C training kernel: compiled on first use with the system C compiler, then cached.

A plain C file through ctypes rather than a torch C++ extension: it builds in well under
a second with any gcc/clang, needs no torch headers or ninja, and a ctypes call releases
the GIL, which is all hogwild threads need. `-march=native` is safe because the cache key
includes the CPU's flags. Without a compiler, `available()` is False and the trainer
falls back to the PyTorch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("csrc") / "kernel.c"
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fPIC", "-shared", "-std=c99"]

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
    ]


def _address(buffer) -> int | None:
    """The raw address of a numpy array or CPU tensor (None stays None: a NULL pointer)."""
    if buffer is None:
        return None
    if isinstance(buffer, np.ndarray):
        return buffer.ctypes.data
    return buffer.data_ptr()


def make_job(*, input, output, output_hs, dim: int, negative: int, window: int, cbow: bool,
             ids: np.ndarray, offsets: np.ndarray, s_begin: int, s_end: int, keep: np.ndarray | None,
             noise: tuple[np.ndarray, np.ndarray], huffman: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
             alpha: float, min_alpha: float, total_words: int, words_done: np.ndarray, seed: int,
             ids_base: int = 0, top_nodes: int = 0, fixed_negatives: np.ndarray | None = None) -> Job:
    """The one place a `Job` is built: the buffers by keyword, kept alive as long as the job.

    input/output/output_hs: float32 matrices (numpy or CPU torch; output None without
    negative sampling, output_hs None without hierarchical softmax). ids holds the corpus's
    tokens from `ids_base` on; offsets are the sentence starts of the whole corpus; the
    chunk is sentences [s_begin, s_end). keep: per-word keep probabilities (None: no
    sub-sampling); noise: the alias table (accept, alias); huffman: (points, codes,
    lengths) or None; words_done: the int64 counter shared by all threads (the learning
    rate's clock). fixed_negatives: for the reference tests only.
    """
    points, codes, lengths = huffman if huffman is not None else (None, None, None)
    accept, alias = noise
    job = Job(
        _address(input), _address(output), _address(output_hs), int(input.shape[0]),
        dim, negative, window, int(cbow), _address(ids), _address(offsets), s_begin, s_end,
        _address(keep), _address(accept), _address(alias),
        _address(points), _address(codes), _address(lengths), points.shape[1] if points is not None else 0,
        _address(fixed_negatives), len(fixed_negatives) if fixed_negatives is not None else 0,
        alpha, min_alpha, total_words, _address(words_done), seed & 0xFFFFFFFFFFFFFFFF,
    )
    job.ids_base = ids_base
    job.top_nodes = top_nodes
    job.buffers = (input, output, output_hs, ids, offsets, keep, accept, alias, points, codes, lengths,
                   fixed_negatives, words_done)
    return job


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


def _cache_dir() -> Path:
    base = os.environ.get("W2V_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "w2v"


def _cpu_key() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def _compile() -> ctypes.CDLL:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        raise RuntimeError("no C compiler found (install gcc, or set CC)")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(FLAGS).encode() + _cpu_key().encode()).hexdigest()[:16]
    target = _cache_dir() / f"kernel-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            subprocess.run([compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], check=True, capture_output=True, text=True)
            os.replace(tmp, target)
        except subprocess.CalledProcessError as e:
            os.unlink(tmp)
            raise RuntimeError(f"compiling the kernel failed: {e.stderr.strip()[:500]}") from None
    lib = ctypes.CDLL(str(target))
    lib.w2v_train_chunk.argtypes = [ctypes.POINTER(Job)]
    lib.w2v_train_chunk.restype = ctypes.c_int
    lib.w2v_reset_fixed_negatives.argtypes = []
    return lib


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
    """Run one chunk; the GIL is released for the duration (ctypes.CDLL does that)."""
    rows = job.vocab * job.dim * 4
    for address in (job.input, job.output, job.output_hs):
        if address:
            advise_huge_pages(address, rows, job.words_done or 0)
    if library().w2v_train_chunk(ctypes.byref(job)) != 0:
        raise MemoryError("the training kernel could not allocate its buffers")
