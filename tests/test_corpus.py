"""Corpus streaming: real files on disk, checked the way a user relies on them."""

import bz2
import gzip
import itertools
import lzma
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from w2v.corpus import TOKENIZERS, Corpus, list_files, make_tokenizer
from w2v.errors import UserError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = "The cat sat.\n\n  \nDon't  STOP me now!\r\ncafé, naïve — “quoted” words\n"
SAMPLE_SENTENCES = [["the", "cat", "sat"], ["don't", "stop", "me", "now"],
                    ["café", "naïve", "quoted", "words"]]
COMPRESSORS = {".txt": lambda b: b, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_plain_and_compressed_files_give_the_same_sentences(tmp_path, suffix):
    path = write(tmp_path / f"sample{suffix}", COMPRESSORS[suffix](SAMPLE.encode()))
    assert list(Corpus([path])) == SAMPLE_SENTENCES


def test_every_pass_rereads_the_files(tmp_path):
    corpus = Corpus([write(tmp_path / "a.txt", SAMPLE)])
    assert list(corpus) == list(corpus) == SAMPLE_SENTENCES


def test_folder_is_read_recursively_in_sorted_order_skipping_hidden(tmp_path):
    for name in ["b.txt", "a/2.txt", "a/1.txt.gz", "a-b.txt", ".hidden.txt", ".git/x.txt", "a/.swp"]:
        data = name.encode()
        write(tmp_path / name, gzip.compress(data) if name.endswith(".gz") else data)
    # A folder's files stay together: "a/..." comes before "a-b.txt".
    expected = ["a/1.txt.gz", "a/2.txt", "a-b.txt", "b.txt"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_files([tmp_path])] == expected
    whitespace = Corpus([tmp_path], tokenizer="whitespace", lowercase=False)
    assert [s[0] for s in whitespace] == expected


def test_missing_path_and_empty_folder_are_user_errors(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(UserError, match=f"corpus path not found: {re.escape(str(missing))}"):
        Corpus([write(tmp_path / "ok.txt", "x"), missing])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no corpus files"):
        list_files([tmp_path / "empty"])


@pytest.mark.parametrize("suffix,kind", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "xz")])
def test_fake_archive_is_a_one_line_user_error(tmp_path, suffix, kind):
    path = write(tmp_path / f"fake{suffix}", "plain text, not compressed\n" * 10)
    corpus = Corpus([path])  # the name alone is fine; the error comes on reading
    with pytest.raises(UserError, match=f"{re.escape(str(path))} is not a valid {kind} file") as err:
        list(corpus)
    assert "\n" not in str(err.value)


def test_truncated_gzip_is_a_user_error(tmp_path):
    data = gzip.compress(SAMPLE.encode() * 1000)
    path = write(tmp_path / "cut.gz", data[: len(data) // 2])
    with pytest.raises(UserError, match="not a valid gzip file"):
        list(Corpus([path]))


def test_long_line_is_cut_into_pieces_of_max_sentence_length(tmp_path):
    line = " ".join(f"w{i}" for i in range(25_000))
    corpus = Corpus([write(tmp_path / "long.txt", f"first line\n{line}\nlast line\n")])
    sentences = list(corpus)
    assert [len(s) for s in sentences] == [2, 10_000, 10_000, 5_000, 2]
    assert list(itertools.chain(*sentences[1:4])) == line.split()


def test_single_line_file_streams_in_bounded_memory(tmp_path):
    # text8 style: ~30 MB, no newline at all. Tokens of 30 characters keep the test fast;
    # tokens must come out whole even where they straddle a read block.
    n_tokens = 1_000_000
    token = "abcdefghijklmnopqrstuvwxyz%04d"
    path = tmp_path / "text8"
    with open(path, "w") as f:
        for start in range(0, n_tokens, 10_000):
            f.write(" ".join(token % (i % 10_000) for i in range(start, start + 10_000)) + " ")
    size = path.stat().st_size
    assert size > 30_000_000
    tracemalloc.start()
    try:
        sizes = []
        for sentence in Corpus([path]):
            sizes.append(len(sentence))
            assert all(len(t) == 30 for t in sentence)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sizes == [10_000] * (n_tokens // 10_000)
    assert peak < size / 3, f"peak {peak:,} bytes for a {size:,}-byte file"


def test_text_without_any_whitespace_is_cut_rather_than_held_whole(tmp_path):
    corpus = Corpus([write(tmp_path / "blob.txt", "x" * 3_000_000)], tokenizer="whitespace")
    tokens = [t for s in corpus for t in s]
    assert "".join(tokens) == "x" * 3_000_000
    assert max(map(len, tokens)) < 3_000_000


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    # \xe9 is a truncated 3-byte sequence, \xff \xfe are never valid; a real U+FFFD is not bad.
    path = write(tmp_path / "latin1.txt", b"caf\xe9 ok\n\xff\xfe bad \xef\xbf\xbd\n")
    corpus = Corpus([path], tokenizer="whitespace")
    assert list(corpus) == [["caf\ufffd", "ok"], ["\ufffd\ufffd", "bad", "\ufffd"]]
    assert corpus.bad_bytes == 3
    list(corpus)
    assert corpus.bad_bytes == 3  # counted per pass, not accumulated


def test_characters_split_between_read_blocks_are_not_bad_bytes(tmp_path):
    path = write(tmp_path / "accents.txt.gz", gzip.compress(("é " * 400_000).encode()))
    corpus = Corpus([path])
    assert [t for s in corpus for t in s] == ["é"] * 400_000
    assert corpus.bad_bytes == 0


def test_byte_order_mark_is_not_part_of_the_first_token(tmp_path):
    path = write(tmp_path / "bom.txt", "\ufeffhello world\n".encode())
    assert list(Corpus([path], tokenizer="whitespace")) == [["hello", "world"]]


TEXT = 'He said "Don\'t go" to the U.S. office, 3 times.'


@pytest.mark.parametrize("name,lowercase,expected", [
    ("default", True, ["he", "said", "don't", "go", "to", "the", "u", "s", "office", "3", "times"]),
    ("default", False, ["He", "said", "Don't", "go", "to", "the", "U", "S", "office", "3", "times"]),
    ("whitespace", True, ["he", "said", '"don\'t', 'go"', "to", "the", "u.s.", "office,", "3", "times."]),
    ("treebank", True, ["he", "said", "``", "do", "n't", "go", "''", "to", "the", "u.s.", "office", ",",
                        "3", "times", "."]),
    ("toktok", False, ["He", "said", '"', "Don", "'", "t", "go", '"', "to", "the", "U.S.", "office", ",",
                       "3", "times", "."]),
    ("wordpunct", True, ["he", "said", '"', "don", "'", "t", "go", '"', "to", "the", "u", ".", "s", ".",
                         "office", ",", "3", "times", "."]),
])
def test_tokenizers_on_a_sample_sentence(name, lowercase, expected):
    assert make_tokenizer(name, lowercase)(TEXT) == expected


def test_whitespace_tokenizer_keeps_pretokenized_text():
    assert make_tokenizer("whitespace", lowercase=False)("New_York is n't far .\t!") == [
        "New_York", "is", "n't", "far", ".", "!"]


@pytest.mark.parametrize("name", TOKENIZERS)
def test_every_tokenizer_reads_a_file_and_honours_lowercase(tmp_path, name):
    path = write(tmp_path / "s.txt", "Hello\u00a0WORLD\tagain.\nSecond LINE\n")
    lower = [t for s in Corpus([path], tokenizer=name) for t in s]
    cased = [t for s in Corpus([path], tokenizer=name, lowercase=False) for t in s]
    assert lower == [t.lower() for t in cased] and lower != cased
    assert not any(ch.isspace() for t in cased for ch in t)


def test_unknown_tokenizer_lists_the_choices():
    with pytest.raises(UserError, match="unknown tokenizer 'spacy'.*default, whitespace, treebank"):
        Corpus([REPO / "corpora"], tokenizer="spacy")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZé9_ '’\n\t.,-—“\u00a0\u0301ßİ"), max_size=40))
def test_default_tokenizer_finds_exactly_the_word_regex(text):
    # The default tokenizer is built from string operations for speed; it must agree with
    # the one-line regex that defines it.
    assert make_tokenizer("default")(text) == re.findall(r"\w+(?:['’]\w+)*", text.lower())


def test_committed_default_corpus_is_readable():
    files = sorted((REPO / "corpora").glob("*.txt.gz"))
    assert files
    for path in files:
        corpus = Corpus([path])
        sentences = list(itertools.islice(corpus, 2000))  # some files have a whole speech per line
        assert sum(map(len, sentences)) > 10_000, path
        assert all(t == t.lower() for s in sentences for t in s), path
        assert corpus.bad_bytes == 0, path
