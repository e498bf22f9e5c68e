"""Preparing in pieces and workers (w2v.prepare) gives the very files of one pass over the corpus."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from w2v import encode, prepare
from w2v.config import TOKENIZERS
from w2v.corpus import Corpus
from w2v.dictionary import Dictionary
from w2v.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"  # the committed default corpus: these tests run wherever the checkout does
MOBY = CORPORA / "moby_dick.txt.gz"


def reference(corpus: Corpus, out: Path, min_count: int) -> None:
    """What one pass means, written plainly: counts, order by (-count, first appearance), ids, offsets."""
    counts: dict[str, int] = {}
    sentences = list(corpus)
    for sentence in sentences:
        for word in sentence:
            counts[word] = counts.get(word, 0) + 1
    first = {w: i for i, w in enumerate(counts)}
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], first[w]))
    Dictionary(words, np.array([counts[w] for w in words], dtype=np.int64)).save(out / "vocab.tsv")
    index = {w: i for i, w in enumerate(words)}
    ids, offsets = [], [0]
    for sentence in sentences:
        kept = [index[w] for w in sentence if w in index]
        if kept:
            ids += kept
            offsets.append(offsets[-1] + len(kept))
    np.save(out / "ids.npy", np.array(ids, dtype="<i4"))
    np.save(out / "offsets.npy", np.array(offsets, dtype="<i8"))


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real text: a 1.2 MB plain file with non-UTF-8 bytes and a 30,000-token line, a compressed
    file, and a file whose last line has no newline."""
    folder = tmp_path_factory.mktemp("text")
    raw = gzip.open(MOBY).read()
    raw = raw.replace(b"whale", b"wh\xffale", 40).replace(b"\n", b" ", 300)  # a 25,000-token first line
    (folder / "big.txt").write_bytes(raw)
    (folder / "tail.txt").write_bytes(gzip.open(CORPORA / "sotu.txt.gz").read()[:200_000].rstrip(b"\n"))
    return [folder / "big.txt", CORPORA / "sotu.txt.gz", folder / "tail.txt"]


def same_as_one_pass(files: list[Path], tmp_path: Path, tokenizer: str = "default", lowercase: bool = True,
                     max_sentence_length: int = 10_000, min_count: int = 2, piece_bytes: int = 150_000) -> Corpus:
    (tmp_path / "one").mkdir()
    (tmp_path / "pieces").mkdir()
    one = Corpus(files, tokenizer, lowercase, max_sentence_length)
    reference(one, tmp_path / "one", min_count)
    corpus = Corpus(files, tokenizer, lowercase, max_sentence_length)
    assert sum(p.path == files[0] for p in prepare.plan(corpus.files, 2, piece_bytes)) > 2  # cut into ranges
    data = encode.build(corpus, tmp_path / "pieces", min_count, workers=2, tokenizer=tokenizer, lowercase=lowercase,
                        piece_bytes=piece_bytes)
    data.close()
    for name in ("vocab.tsv", "ids.npy", "offsets.npy"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "pieces" / name).read_bytes(), name
    assert corpus.bad_bytes == one.bad_bytes > 0
    assert sorted(p.name for p in (tmp_path / "pieces").iterdir()) == ["ids.npy", "offsets.npy", "vocab.tsv"]
    return corpus


def test_pieces_in_workers_write_the_files_of_one_pass(text: list[Path], tmp_path: Path) -> None:
    # Pieces smaller than Corpus's 256 kB reads: ranges start and end inside and across its blocks.
    same_as_one_pass(text, tmp_path, piece_bytes=90_000, max_sentence_length=1000)


def test_one_worker_writes_the_files_of_one_pass(text: list[Path], tmp_path: Path) -> None:
    for name in ("one", "here"):
        (tmp_path / name).mkdir()
    reference(Corpus(text), tmp_path / "one", 5)
    encode.build(Corpus(text), tmp_path / "here", 5).close()
    for name in ("vocab.tsv", "ids.npy", "offsets.npy"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name


@pytest.mark.parametrize("tokenizer", [t for t in TOKENIZERS if t != "default"])
def test_every_tokenizer(text: list[Path], tmp_path: Path, tokenizer: str) -> None:
    if tokenizer not in ("whitespace",):
        pytest.importorskip("nltk")
    # nltk's tokenizers see a line cut between two reads as two texts: ranges must cut where one pass does.
    same_as_one_pass(text[:1], tmp_path, tokenizer, lowercase=tokenizer != "whitespace", min_count=3,
                     piece_bytes=300_000)


def test_continue_remap_streams_the_same_files(text: list[Path], tmp_path: Path) -> None:
    """remap_ids (w2v train --continue) rewrites ids and offsets like a fresh build with that vocabulary."""
    data = encode.build(Corpus(text), tmp_path, 1)
    data.close()
    keep = np.arange(len(data.dictionary)) % 3 != 0  # drop a third of the words, some sentences entirely
    remap = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int32)
    ids = np.load(tmp_path / "ids.npy")
    offsets = np.load(tmp_path / "offsets.npy")
    encode.remap_ids(tmp_path, remap)
    new = remap[ids]
    ends = np.cumsum(new >= 0)[offsets[1:] - 1]
    assert np.array_equal(np.load(tmp_path / "ids.npy"), new[new >= 0])
    assert np.array_equal(np.load(tmp_path / "offsets.npy"), np.unique(np.concatenate([[0], ends])))


def test_errors_in_workers_are_one_line_user_errors(text: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "cut.txt.gz"
    data = gzip.compress(b"the cat sat on the mat\n" * 5000)
    bad.write_bytes(data[: len(data) // 2])
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match="cut.txt.gz is not a valid gzip file"):
        encode.build(Corpus([text[0], bad]), tmp_path / "run", workers=2, tokenizer="default", lowercase=True)
    assert list((tmp_path / "run").iterdir()) == []  # scratch files removed


def test_ctrl_c_stops_the_workers(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        for _ in range(40):
            f.write(gzip.open(MOBY).read())
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from w2v import encode; from w2v.corpus import Corpus\n"
            f"encode.build(Corpus([{str(big)!r}]), {str(tmp_path / 'run')!r}, workers=2, tokenizer='default', "
            "lowercase=True, piece_bytes=1 << 20)\n")
    (tmp_path / "run").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ours is ignored
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".provisional") for p in (tmp_path / "run").iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert err.count("Traceback") == 1  # the workers ignore Ctrl-C: only the parent reports it
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):  # workers, and multiprocessing's helper
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.1)
    assert list((tmp_path / "run").iterdir()) == []
