"""Round trips through every format, against gensim's reader and writer, and malformed input."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from w2v.errors import UserError
from w2v.formats import read_word2vec, save
from w2v.vectors import Vectors, load


@pytest.fixture(scope="module")
def vecs() -> Vectors:
    rng = np.random.default_rng(3)
    words = ["the", "naïve", "café", "日本", "x"] + [f"w{i}" for i in range(295)]
    m = (rng.standard_normal((300, 16)) * np.logspace(-4, 1, 16)).astype(np.float32)
    return Vectors(words, m, counts=list(range(1000, 700, -1)))


def kv_of(v: Vectors) -> KeyedVectors:
    kv = KeyedVectors(v.dim)
    kv.add_vectors(v.words, v.matrix.numpy())
    return kv


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("fmt,binary", [("text", False), ("binary", True)])
def test_word2vec_round_trip_through_gensim_and_us(vecs: Vectors, tmp_path: Path, fmt: str, binary: bool) -> None:
    path = tmp_path / f"v.{fmt}"
    save(vecs, path, format=fmt)
    kv = KeyedVectors.load_word2vec_format(path, binary=binary)
    ours = load(path)
    assert kv.index_to_key == vecs.words == ours.words
    # "%lf" prints 6 decimals; reading back rounds to float32 once more (half an ulp).
    atol, rtol = (5e-7, 2 ** -23) if fmt == "text" else (0, 0)
    np.testing.assert_allclose(kv.vectors, vecs.matrix.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.matrix.numpy(), vecs.matrix.numpy(), rtol=rtol, atol=atol)
    assert no_temporaries(tmp_path)


def test_word2vec_bytes_are_word2vec_c_s(tmp_path: Path) -> None:
    v = Vectors(["the", "dog"], torch.tensor([[0.1, -0.25, 3.0], [-1e-9, 0.0, 12.5]]))
    save(v, tmp_path / "v.txt", format="text")
    assert (tmp_path / "v.txt").read_bytes() == (
        b"2 3\nthe 0.100000 -0.250000 3.000000 \ndog -0.000000 0.000000 12.500000 \n")
    save(v, tmp_path / "v.bin", format="binary")
    floats = v.matrix.numpy().astype("<f4")
    assert (tmp_path / "v.bin").read_bytes() == (
        b"2 3\nthe " + floats[0].tobytes() + b"\ndog " + floats[1].tobytes() + b"\n")


@pytest.mark.parametrize("binary,header", [(True, True), (False, True), (False, False)])
def test_we_read_gensim_written_files(vecs: Vectors, tmp_path: Path, binary: bool, header: bool) -> None:
    path = tmp_path / "g.vec"
    kv_of(vecs).save_word2vec_format(str(path), binary=binary, write_header=header)
    got = load(path)
    assert got.words == vecs.words
    assert torch.equal(got.matrix, vecs.matrix)  # gensim writes shortest round-trip decimals
    assert load(path, limit=7).words == vecs.words[:7]
    assert torch.equal(load(path, limit=7).matrix, vecs.matrix[:7])


def test_torch_bundle_loads_with_weights_only(vecs: Vectors, tmp_path: Path) -> None:
    save(vecs, tmp_path / "v.pt", format="torch")
    bundle = torch.load(tmp_path / "v.pt", weights_only=True)
    assert set(bundle) == {"words", "counts", "vectors"}
    assert bundle["words"] == vecs.words and bundle["counts"].dtype == torch.int64
    assert torch.equal(bundle["vectors"], vecs.matrix)
    got = load(tmp_path / "v.pt", limit=10)
    assert got.words == vecs.words[:10] and got.counts.tolist() == vecs.counts[:10].tolist()
    # A view saves only its rows, not the storage behind it.
    save(vecs.head(3), tmp_path / "h.pt", format="torch")
    assert (tmp_path / "h.pt").stat().st_size < (tmp_path / "v.pt").stat().st_size / 5


def test_npy_pair(vecs: Vectors, tmp_path: Path) -> None:
    save(vecs, tmp_path / "v.npy", format="npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy", "v.vocab.tsv"]
    assert np.array_equal(np.load(tmp_path / "v.npy"), vecs.matrix.numpy())
    assert (tmp_path / "v.vocab.tsv").read_text(encoding="utf-8").splitlines()[1] == "naïve\t999"
    for name in ("v.npy", "v"):
        got = load(tmp_path / name)
        assert got.words == vecs.words and torch.equal(got.matrix, vecs.matrix)
        assert got.counts.tolist() == vecs.counts.tolist()
    assert load(tmp_path / "v.npy", limit=4).matrix.shape == (4, 16)


def test_projector_folder(vecs: Vectors, tmp_path: Path) -> None:
    out = tmp_path / "proj"
    for _ in range(2):  # the second write replaces the first
        save(vecs, out, format="projector")
    tensors = sorted(out.rglob("tensors.tsv"))
    assert len(tensors) == 1 and (out / "projector_config.pbtxt").exists()
    assert np.loadtxt(tensors[0], delimiter="\t").shape == (300, 16)
    assert (tensors[0].parent / "metadata.tsv").read_text(encoding="utf-8").split("\n")[:2] == ["the", "naïve"]
    assert "metadata.tsv" in (out / "projector_config.pbtxt").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_writes_are_atomic_and_refuse_unstorable_words(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("old")
    with pytest.raises(UserError, match="word 2 .'a b'. is empty or contains whitespace"):
        save(Vectors(["ok", "a b"], torch.ones(2, 2)), path, format="text")
    assert path.read_text() == "old" and no_temporaries(tmp_path)
    with pytest.raises(UserError, match="unknown format"):
        save(Vectors(["ok"], torch.ones(1, 2)), path, format="hdf5")


def test_bad_utf8_is_replaced_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.bin"
    row = struct.pack("<2f", 1.0, 2.0)
    path.write_bytes(b"3 2\ngood " + row + b"\ncaf\xe9 " + row + b"\nna\xefve " + row + b"\n")
    with pytest.warns(UnicodeWarning, match="2 word.s. are not valid UTF-8 .first at word 2."):
        v = load(path)
    assert v.words == ["good", "caf\ufffd", "na\ufffdve"]


def test_text_variants_crlf_fasttext_trailing_space_and_no_header(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"2 2\r\nx 1 2 \r\ny 3 4\r\n")
    (tmp_path / "b.txt").write_bytes(b"x 1 2\ny 3 4")
    for name in ("a.txt", "b.txt"):
        v = load(tmp_path / name)
        assert v.words == ["x", "y"] and v.matrix.tolist() == [[1, 2], [3, 4]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean files warn about nothing
        load(tmp_path / "a.txt")


ROW = struct.pack("<2f", 1.0, 2.0)


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"3\nx 1 2\n", "line 1: expected a header"),
    (b"2 2\nx 1.0000 2.0000\n", "truncated: the header declares 2 words but the file ends after 1"),
    (b"2 2\nx 1 2\n", "declares 2 words of 2 numbers, more than the 6 bytes after it can hold"),
    (b"2 2\nx 1 2\ny 1\n", "line 3: expected a word and 2 numbers, found 1"),
    (b"x 1 2\ny 1 2 3\n", "line 2: expected a word and 2 numbers, found 3"),
    (b"2 2\nx 1 2\ny 1 two\n", "line 3: 'two' is not a number"),
    (b"1 2\nx 1 2\ny 1 2\n", "line 3: more rows than the 1 the header declares"),
    (b"2 2\nx 1 2\n\ny 1 2\n", "line 3: empty line"),
    (b"2 2\n 1 2\ny 1 2\n", "line 2: no word before the numbers"),
    (b"3000000000 300\nx " + b"1 " * 300 + b"\n", "declares 3000000000 words of 300 numbers"),
    (b"2 2\nlongword " + ROW + b"\ny " + ROW[:5], "truncated: the header declares 2 words but the file ends in word 2"),
    (b"1 2\nx " + ROW + b"\ny " + ROW, "more data after the 1 words"),
    (b"5000000000 1000000\nx " + ROW, "declares 5000000000 words of 1000000 numbers"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.vec"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_binary_without_word_separator_and_forced_modes(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(b"1 2\n" + b"\x01" * 200_000)
    with pytest.raises(UserError, match="no space after the word"):
        load(path)
    text = tmp_path / "t.txt"
    text.write_bytes(b"1 2\nx 1 2\n")
    assert load(text, binary=False).words == ["x"]
    with pytest.raises(UserError):
        read_word2vec(text, binary=True)


def test_other_inputs_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load(tmp_path / "missing.txt")
    (tmp_path / "v.txt.bz2").write_bytes(b"BZh9")
    with pytest.raises(UserError, match="decompress it first: bunzip2 -k"):
        load(tmp_path / "v.txt.bz2")
    with pytest.raises(UserError, match="not a training run"):
        load(tmp_path)
    torch.save({"something": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a w2v vectors bundle"):
        load(tmp_path / "other.pt")
    torch.save({"words": ["a"], "vectors": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="weights_only"):
        load(tmp_path / "pickled.pt")


def test_run_folder_mismatches(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "vocab.tsv").write_text("a\t3\nb\t2\nc\t1\n")
    with pytest.raises(UserError, match="model.pt not found"):
        load(run)
    torch.save({"input": torch.ones(2, 4)}, run / "model.pt")
    with pytest.raises(UserError, match="vocab.tsv has 3 words but model.pt has 2"):
        load(run)
    (run / "vocab.tsv").write_text("a\t3\nb two\n")
    with pytest.raises(UserError, match="vocab.tsv, line 2: expected word<TAB>count"):
        load(run)
    (run / "vocab.tsv").write_text("a\t3\nb\t2\n")
    assert load(run / "model.pt").words == ["a", "b"]  # model.pt alone finds its vocab.tsv
    save(load(run), tmp_path / "v.pt", format="torch")
    with pytest.raises(UserError, match="--which out needs a run folder"):
        load(tmp_path / "v.pt", which="out")
