"""Random and damaged files into the readers: the only outcomes are success or our one-line UserError."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2v.corpus import Corpus
from w2v.errors import UserError
from w2v.vectors import Vectors, load

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VECTORS = [
    b"3 2\nthe 0.1 -2\nof 3e-1 4\nand 5 6\n",
    b"the 0.1 -2\nof 3e-1 4\n",
    b"2 3\nab " + np.arange(3, dtype="<f4").tobytes() + b"\ncd " + np.ones(3, dtype="<f4").tobytes() + b"\n",
]


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, bytes to delete, bytes to insert) edits."""
    b = bytearray(data)
    for pos, delete, insert in edits:
        pos = pos % (len(b) + 1)
        b[pos:pos + delete] = insert
    return bytes(b)


_edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 4),
                            st.one_of(st.binary(max_size=4),
                                      st.sampled_from([b" ", b"\n", b"\t", b"nan", b"-", b"1e999", b"9" * 12,
                                                       b"\x00", b"\xff", b"\r"]))),
                  max_size=4)


def _read_vectors(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnicodeWarning)  # words with bad UTF-8 are kept and counted
            try:
                vectors = load(path)
            except UserError as e:
                assert str(e) and "\n" not in str(e), repr(str(e))
                return
        assert isinstance(vectors, Vectors)
        assert vectors.matrix.shape == (len(vectors.words), vectors.dim)
        assert bool(np.isfinite(vectors.matrix.numpy()).all())


@FUZZ
@given(data=st.binary(max_size=2000), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY", b"2 3\n"]),
       name=st.sampled_from(["v.txt", "v.bin", "v.vec", "v", "v.npy", "v.pt", "v.txt.gz"]))
def test_vectors_loader_on_random_bytes(data: bytes, prefix: bytes, name: str) -> None:
    _read_vectors(prefix + data, name)


@FUZZ
@given(base=st.sampled_from(_VECTORS), edits=_edits, name=st.sampled_from(["v.txt", "v.bin"]))
def test_vectors_loader_on_damaged_files(base: bytes, edits: list, name: str) -> None:
    _read_vectors(_mutate(base, edits), name)


@FUZZ
@given(base=st.sampled_from(_VECTORS), edits=_edits, name=st.sampled_from(["v.txt.gz", "v.bin.gz"]))
def test_gzipped_vectors_loader_on_damaged_archives(base: bytes, edits: list, name: str) -> None:
    _read_vectors(_mutate(gzip.compress(base), edits), name)


_COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, "": lambda b: b}


def _read_corpus(data: bytes, name: str, limit: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        corpus = Corpus([path], max_sentence_length=limit)
        try:
            sentences = list(corpus)
        except UserError as e:
            assert str(e) and "\n" not in str(e), repr(str(e))
            return
        for sentence in sentences:
            assert 1 <= len(sentence) <= limit
            assert all(token and not any(c.isspace() for c in token) for token in sentence), sentence
        assert corpus.bad_bytes >= 0


@FUZZ
@given(data=st.binary(max_size=3000), name=st.sampled_from(["c.txt", "c", "c.txt.gz", "c.bz2", "c.xz"]),
       limit=st.integers(1, 8))
def test_corpus_reader_on_random_bytes(data: bytes, name: str, limit: int) -> None:
    _read_corpus(data, name, limit)


@FUZZ
@given(text=st.binary(max_size=3000), suffix=st.sampled_from(sorted(_COMPRESS)), edits=_edits,
       limit=st.integers(1, 8))
def test_corpus_reader_on_damaged_archives(text: bytes, suffix: str, edits: list, limit: int) -> None:
    # Compress real bytes, then damage the archive: headers pass, the stream breaks inside.
    _read_corpus(_mutate(_COMPRESS[suffix](text), edits), "c.txt" + suffix, limit)
