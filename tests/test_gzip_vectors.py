"""gzip'd word2vec files (.txt.gz, .bin.gz): read as gensim reads them; damaged ones refused in one line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from w2v.errors import UserError
from w2v.formats import read_word2vec
from w2v.vectors import Vectors, load
from clitools import cli, one_line_error


@pytest.fixture(scope="module")
def vecs() -> Vectors:
    rng = np.random.default_rng(5)
    words = ["the", "naïve", "日本"] + [f"w{i}" for i in range(297)]
    return Vectors(words, rng.standard_normal((300, 12)).astype(np.float32), counts=list(range(1000, 700, -1)))


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_our_files_gzipped_read_as_the_plain_ones(vecs: Vectors, tmp_path: Path, fmt: str) -> None:
    plain = tmp_path / ("v.txt" if fmt == "text" else "v.bin")
    vecs.save(plain, format=fmt)
    packed = gzipped(plain)
    for kwargs in ({}, {"limit": 7}, {"binary": fmt == "binary"}):
        got, expect = load(packed, **kwargs), load(plain, **kwargs)
        assert got.words == expect.words
        np.testing.assert_array_equal(got.vectors, expect.vectors)
    code, out = cli("similar", packed, "the", "-n", "3")
    assert code == 0 and out == cli("similar", plain, "the", "-n", "3")[1]


@pytest.mark.parametrize("binary, header", [(True, True), (False, True), (False, False)])
def test_files_gensim_gzips_itself(vecs: Vectors, tmp_path: Path, binary: bool, header: bool) -> None:
    models = pytest.importorskip("gensim.models")
    kv = models.KeyedVectors(vecs.dim)
    kv.add_vectors(vecs.words, vecs.vectors)
    path = tmp_path / ("g.bin.gz" if binary else "g.txt.gz")
    kv.save_word2vec_format(str(path), binary=binary, write_header=header)  # smart_open gzips by the name
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    got = load(path)
    assert got.words == vecs.words
    np.testing.assert_array_equal(got.vectors, vecs.vectors)  # gensim writes shortest round-trip decimals
    assert load(path, limit=5).words == vecs.words[:5]
    back = models.KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=not header)
    np.testing.assert_array_equal(back.vectors, got.vectors)


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_a_truncated_gz_is_one_line(vecs: Vectors, tmp_path: Path, fmt: str) -> None:
    plain = tmp_path / f"v.{fmt}"
    vecs.save(plain, format=fmt)
    packed = gzipped(plain).read_bytes()
    cut = tmp_path / f"cut.{fmt}.gz"
    for keep in (len(packed) // 2, len(packed) - 4):  # in the middle; only the trailer gone
        cut.write_bytes(packed[:keep])
        one_line_error(*cli("similar", cut, "the"), f"{cut} is not a valid gzip file", "ended before")


def test_garbage_and_lies_are_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "g.txt.gz"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    one_line_error(*cli("similar", garbage, "a"), "g.txt.gz is not a valid gzip file: Not a gzipped file")
    damaged = tmp_path / "d.txt.gz"
    packed = bytearray(gzip.compress(b"2 3\na 1 2 3\nb 4 5 6\n" * 50))
    packed[20:30] = b"\xff" * 10
    damaged.write_bytes(bytes(packed))
    with pytest.raises(UserError, match="is not a valid gzip file"):
        load(damaged)
    lie = tmp_path / "lie.txt.gz"  # a header claiming far more than the stream holds: memory follows the data
    lie.write_bytes(gzip.compress(b"2000000000 300\n" + b"a" + b" 0.5" * 300 + b"\n"))
    one_line_error(*cli("similar", lie, "a"), "truncated: the header declares 2000000000 words")
    wide = tmp_path / "wide.txt.gz"
    wide.write_bytes(gzip.compress(b"1 100000000000000\na 1\n"))
    one_line_error(*cli("similar", wide, "a"), "wide.txt.gz")
    empty = tmp_path / "e.txt.gz"
    empty.write_bytes(gzip.compress(b""))
    one_line_error(*cli("similar", empty, "a"), "e.txt.gz: empty file")


def test_a_gzipped_bundle_is_named_not_parsed(vecs: Vectors, tmp_path: Path) -> None:
    vecs.save(tmp_path / "v.pt", format="torch")
    one_line_error(*cli("similar", gzipped(tmp_path / "v.pt"), "the"), "holds a torch, numpy or pickle file",
                   "gunzip -k")


def test_every_vectors_command_reads_gz(vecs: Vectors, tmp_path: Path) -> None:
    vecs.save(tmp_path / "v.bin", format="binary")
    packed = gzipped(tmp_path / "v.bin")
    assert cli("analogy", packed, "the", "-", "w1", "+", "w2", "-n", "2")[0] == 0
    assert cli("evaluate", packed, "--similarity", _pairs(tmp_path))[0] == 0
    assert cli("export", packed, "-o", tmp_path / "out.txt")[0] == 0
    assert read_word2vec(tmp_path / "out.txt")[0] == vecs.words


def _pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text("w1\tw2\t1.0\nw3\tw4\t2.0\nw5\tw6\t3.0\n", encoding="utf-8")
    return path
