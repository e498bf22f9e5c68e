"""Hostile and unusual files around w2v: special output paths, user files beside ours, half-written
pairs, NaN, tensors and arrays that are not matrices, endless lines, exotic whitespace, FIFOs,
words our own formats cannot hold, gensim pickles. Each case in docs/errors.md."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2v.cli import _echo_json
from w2v.corpus import Corpus
from w2v.errors import UserError
from w2v.fileio import atomic_writes, remove_stale_temporaries, temporary_name
from w2v.formats import save
from w2v.vectors import Vectors, load
from clitools import cli, one_line_error

ROOT = Path(__file__).resolve().parent.parent
MOBY = str(ROOT / "corpora" / "moby_dick.txt.gz")
FAST = ["--epochs", "1", "--threads", "1", "--dim", "10", "--no-tensorboard", "--quiet"]
DEAD_PID = 99_999_999  # above any pid_max: never a live process


def run_w2v(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "w2v", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def vecs_txt(tmp_path: Path) -> Path:
    path = tmp_path / "v.txt"
    rng = np.random.default_rng(0)
    words = ["the", "of", "and", "to", "king", "queen", "man", "woman"]
    path.write_text(f"{len(words)} 4\n" + "".join(f"{w} " + " ".join(f"{x:.4f}" for x in rng.normal(size=4)) + "\n"
                                                  for w in words))
    return path


def _mount_tmpfs(where: Path, size: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MB tmpfs; skipped where the sandbox cannot mount."""
    where = tmp_path / "disk"
    if not _mount_tmpfs(where, 1 << 20):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# --- A: export never replaces what is not a regular file ---------------------------------------


def test_export_to_dev_null_leaves_the_device(vecs_txt: Path) -> None:
    for fmt in ("text", "binary", "torch"):
        code, out = cli("export", vecs_txt, "-o", "/dev/null", "-f", fmt)
        assert code == 0, out
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in Path("/dev").glob(".null.*.tmp")]


def test_export_to_a_fifo_writes_through(tmp_path: Path, vecs_txt: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, out = cli("export", vecs_txt, "-o", fifo, "-f", "text")
    reader.join(30)
    assert code == 0, out
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not a file renamed over it
    assert cli("export", vecs_txt, "-o", tmp_path / "plain.txt")[0] == 0
    assert got == [(tmp_path / "plain.txt").read_bytes()]
    assert temporaries(tmp_path) == []


def test_export_to_stdout_is_the_file_alone(tmp_path: Path, vecs_txt: Path) -> None:
    r = run_w2v("export", vecs_txt, "-o", "/dev/stdout", "-f", "text")  # stdout is a pipe here
    assert r.returncode == 0, r.stderr
    assert cli("export", vecs_txt, "-o", tmp_path / "plain.txt")[0] == 0
    assert r.stdout == (tmp_path / "plain.txt").read_text()  # the "wrote ..." line went to stderr
    assert r.stderr.startswith("wrote 8 vectors")


def test_export_through_a_symlink_replaces_its_target(tmp_path: Path, vecs_txt: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "v.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert cli("export", vecs_txt, "-o", link)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load(target).words == load(vecs_txt).words
    assert temporaries(tmp_path) == temporaries(tmp_path / "real") == []
    (tmp_path / "proj").symlink_to(tmp_path / "real" / "proj")
    assert cli("export", vecs_txt, "-o", tmp_path / "proj", "-f", "projector")[0] == 0
    assert (tmp_path / "proj").is_symlink() and (tmp_path / "real" / "proj" / "projector_config.pbtxt").exists()
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "real" / "new.txt")
    assert cli("export", vecs_txt, "-o", dangling)[0] == 0
    assert dangling.is_symlink() and len(load(tmp_path / "real" / "new.txt")) == 8


def test_export_to_a_socket_is_refused(tmp_path: Path, vecs_txt: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        one_line_error(*cli("export", vecs_txt, "-o", path, "-f", "text"), "sock is a socket",
                       "writes only to regular files")
        assert stat.S_ISSOCK(os.stat(path).st_mode)


# --- B: only our own temporaries are removed ----------------------------------------------------


def test_a_users_tmp_files_survive_a_run(tmp_path: Path) -> None:
    run = tmp_path / "u"
    run.mkdir()
    mine = [".budget.final.tmp", f".report.{DEAD_PID}.final.tmp", f".notes.txt.{DEAD_PID}.0123abcd.tmp"]
    for name in mine:
        (run / name).write_text("x")
    (run / "config.json").write_text("x")
    stale = run / f".model.pt.w2v-{DEAD_PID}-0123abcd.tmp"  # ours, from a killed writer
    stale.write_text("x")
    one_line_error(*cli("train", MOBY, "--out", run, *FAST, "--no-eval"), "holds another run")
    assert sorted(p.name for p in run.iterdir()) == sorted(mine + ["config.json"])
    live = temporary_name(run / "vocab.tsv")
    live.write_text("being written")  # our own PID: alive
    assert remove_stale_temporaries(run) == [] and live.exists()
    assert live.name.startswith(".vocab.tsv.w2v-") and f"-{os.getpid()}-" in live.name


# --- C: an npy export is a pair -----------------------------------------------------------------


def _vectors(n: int, dim: int, word_len: int = 5, seed: int = 0) -> Vectors:
    rng = np.random.default_rng(seed)
    words = [f"w{i}".ljust(word_len, "x") for i in range(n)]
    return Vectors(words, rng.normal(size=(n, dim)).astype(np.float32), counts=list(range(n, 0, -1)))


def test_npy_pair_on_a_full_disk_keeps_both_old_files(tiny_disk: Path) -> None:
    old = _vectors(10, 4)
    save(old, tiny_disk / "v", format="npy")
    before = {p.name: p.read_bytes() for p in tiny_disk.iterdir()}
    # 2,000 x 64 floats (512 kB) fit beside the old pair; their 600 kB vocabulary does not.
    with pytest.raises(UserError, match=r"no space left on the device while writing .*v\.vocab\.tsv"):
        save(_vectors(2000, 64, word_len=300), tiny_disk / "v", format="npy")
    assert {p.name: p.read_bytes() for p in tiny_disk.iterdir()} == before
    assert load(tiny_disk / "v.npy").words == old.words


def test_npy_pair_failing_in_the_second_file_keeps_both(tmp_path: Path) -> None:
    a, b = tmp_path / "v.npy", tmp_path / "v.vocab.tsv"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_writes([a, b]) as (fa, fb):
            fa.write(b"new a, complete")
            fb.write(b"new b, half")
            raise RuntimeError("midway")
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
    assert temporaries(tmp_path) == []


# --- D: NaN and infinity ----------------------------------------------------------------------------


def test_nan_in_npy_torch_and_run_folders_is_refused(tmp_path: Path) -> None:
    m = np.ones((3, 2), dtype=np.float32)
    m[1, 0] = np.nan
    np.save(tmp_path / "v.npy", m)
    (tmp_path / "v.vocab.tsv").write_text("a\nb\nc\n")
    one_line_error(*cli("similar", tmp_path / "v.npy", "a"), "v.npy, row 2: a value is nan or infinite")
    m[1, 0], m[2, 1] = 1, np.inf
    torch.save({"words": ["a", "b", "c"], "vectors": torch.from_numpy(m)}, tmp_path / "v.pt")
    one_line_error(*cli("similar", tmp_path / "v.pt", "a"), "v.pt, row 3: a value is nan or infinite")
    run = tmp_path / "run"
    run.mkdir()
    (run / "vocab.tsv").write_text("a\t3\nb\t2\nc\t1\n")
    torch.save({"input": torch.from_numpy(m), "output": torch.zeros(3, 2)}, run / "model.pt")
    one_line_error(*cli("similar", run, "a"), "model.pt, row 3: a value is nan or infinite")


@pytest.mark.parametrize("lines, message", [
    ("king\tqueen\t9\nman\twoman\tnan\n", "p.tsv, line 2: the score nan is not a finite number"),
    ("king\tqueen\tinf\nman\twoman\t3\n", "p.tsv, line 1: the score inf is not a finite number"),
    ("king\tqueen\t5\nman\twoman\t5\nthe\tof\t5\n", "all 3 pairs with known words have the same score (5)"),
])
def test_similarity_that_cannot_correlate_names_why(tmp_path: Path, vecs_txt: Path, lines: str,
                                                    message: str) -> None:
    (tmp_path / "p.tsv").write_text(lines)
    one_line_error(*cli("evaluate", vecs_txt, "--similarity", tmp_path / "p.tsv"), message)
    one_line_error(*cli("evaluate", vecs_txt, "--similarity", tmp_path / "p.tsv", "--json"), message)


def test_similarity_with_vectors_that_give_one_value(tmp_path: Path) -> None:
    (tmp_path / "z.txt").write_text("3 2\nking 0 0\nqueen 1 0\nman 2 0\n")  # all on one line: cosines 0 or 1
    (tmp_path / "p.tsv").write_text("king\tqueen\t9\nking\tman\t3\n")
    one_line_error(*cli("evaluate", tmp_path / "z.txt", "--similarity", tmp_path / "p.tsv"),
                   "the vectors give all 2 pairs the same similarity")


def test_json_never_prints_nan(capsys: pytest.CaptureFixture) -> None:
    _echo_json({"spearman": float("nan"), "rows": [1.5, float("inf"), -float("inf")], "n": 2})
    out = capsys.readouterr().out
    assert json.loads(out) == {"spearman": None, "rows": [1.5, None, None], "n": 2}
    assert "NaN" not in out and "Infinity" not in out


# --- E: training ends well; Ctrl-C exits 130 ----------------------------------------------------------


def test_training_words_outside_the_evaluation_sets_exits_0(tmp_path: Path) -> None:
    (tmp_path / "skus.txt").write_text("sku1 sku2 sku3 sku4 sku5\n" * 2000)
    code, out = cli("train", tmp_path / "skus.txt", "--out", tmp_path / "r" / "sku", *FAST)
    assert code == 0, out
    assert "evaluation skipped: " in out and "0 pair(s) with known words" in out
    assert (tmp_path / "r" / "sku" / "model.pt").exists()
    one_line_error(*cli("evaluate", tmp_path / "r" / "sku"), "wordsim353.tsv: 0 pair(s) with known words")


def _wait_for(predicate, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _w2v_process(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "w2v", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_ctrl_c_during_export_exits_130_and_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "out" / "v.txt"
    out.parent.mkdir()
    out.write_text("old")
    # The signal must land while the text is written: on a fast or a loaded machine the export
    # can finish first, so a missed moment is tried again with a bigger file.
    for n in (300_000, 1_200_000, 4_800_000):
        big = tmp_path / f"big-{n}.pt"
        torch.save({"words": [f"w{i}" for i in range(n)], "vectors": torch.ones(n, 50)}, big)
        p = _w2v_process("export", big, "-o", out)
        try:
            _wait_for(lambda: temporaries(out.parent) or p.poll() is not None)  # the text is being written
            p.send_signal(signal.SIGINT)
            stdout, stderr = p.communicate(timeout=60)
        finally:
            p.kill()
        big.unlink()
        if p.returncode != 0:
            break
        out.write_text("old")  # it finished before the signal: not the moment this test is about
    assert p.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["interrupted: nothing was written; a file that was at the output "
                                           "path is kept"]
    assert out.read_text() == "old" and temporaries(out.parent) == []


def test_ctrl_c_during_evaluate_exits_130(tmp_path: Path, vecs_txt: Path) -> None:
    fifo = tmp_path / "questions"
    os.mkfifo(fifo)
    p = _w2v_process("evaluate", vecs_txt, "--analogies", fifo)
    try:
        with open(fifo, "wb"):  # returns once w2v has opened the pipe; it then waits for lines
            time.sleep(0.3)
            p.send_signal(signal.SIGINT)
            stdout, stderr = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["interrupted: the evaluation did not finish"]


# --- F: hostile vectors and evaluation files ----------------------------------------------------------


HOSTILE_BUNDLES = {
    "list_vectors": ({"words": ["a", "b"], "vectors": [[1.0, 2.0], [3.0, 4.0]]}, "'vectors' is a list, not a tensor"),
    "string_words": ({"words": "ab", "vectors": torch.zeros(2, 2)}, "'words' is not a list of strings"),
    "int_words": ({"words": [1, 2], "vectors": torch.zeros(2, 2)}, "'words' is not a list of strings"),
    "string_vectors": ({"words": ["a"], "vectors": "1 2"}, "'vectors' is a str, not a tensor"),
    "sparse": ({"words": ["a", "b"], "vectors": torch.eye(2).to_sparse()}, "'vectors' is a torch.sparse_coo tensor"),
    "meta": ({"words": ["a", "b"], "vectors": torch.zeros(2, 2, device="meta")}, "'vectors' is a meta tensor"),
    "int_dtype": ({"words": ["a", "b"], "vectors": torch.ones(2, 2, dtype=torch.int64)}, "holds int64"),
    "complex": ({"words": ["a", "b"], "vectors": torch.ones(2, 2, dtype=torch.complex64)}, "holds complex64"),
    "three_dims": ({"words": ["a", "b"], "vectors": torch.ones(2, 2, 2)}, "'vectors' has 3 dimensions"),
    "one_dim": ({"words": ["a", "b"], "vectors": torch.ones(2)}, "'vectors' has 1 dimensions"),
    "string_counts": ({"words": ["a"], "vectors": torch.ones(1, 2), "counts": ["many"]},
                      "'counts' is not a 1-d tensor of integers"),
    "run_sparse": ({"input": torch.eye(2).to_sparse(), "output": torch.eye(2)}, "'input' is a torch.sparse_coo"),
    "run_list": ({"input": [[1.0, 2.0]], "output": torch.eye(2)}, "'input' is a list, not a tensor"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BUNDLES))
def test_hostile_torch_bundle(tmp_path: Path, name: str) -> None:
    bundle, message = HOSTILE_BUNDLES[name]
    path = tmp_path / "v.pt"
    if name.startswith("run_"):
        path = tmp_path / "model.pt"
        (tmp_path / "vocab.tsv").write_text("a\t2\nb\t1\n")
    torch.save(bundle, path)
    one_line_error(*cli("similar", path, "a"), message)
    if name.startswith("run_"):
        one_line_error(*cli("similar", tmp_path, "a", "--which", "sum"), message)


def test_a_vocabulary_that_is_not_a_file(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones((2, 2), dtype=np.float32))
    (tmp_path / "v.vocab.tsv").symlink_to("/dev/zero")  # one endless line
    one_line_error(*cli("similar", tmp_path / "v.npy", "a"), "v.vocab.tsv is not a regular file")
    run = tmp_path / "run"
    run.mkdir()
    (run / "vocab.tsv").symlink_to("/dev/zero")
    torch.save({"input": torch.ones(2, 2)}, run / "model.pt")
    one_line_error(*cli("similar", run, "a"), "vocab.tsv is not a regular file")


@pytest.mark.parametrize("array, message", [
    (np.array([["a", "b"], ["c", "d"]]), "holds <U1 values; expected numbers"),
    (np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4")]), "values; expected numbers"),
    (np.zeros((2, 2), dtype=np.complex64), "holds complex64 values"),
    (np.zeros(2, dtype=np.float32), "has 1 dimensions (2,); expected a 2-d matrix"),
    (np.zeros((2, 2, 2), dtype=np.float32), "has 3 dimensions (2, 2, 2); expected a 2-d matrix"),
])
def test_hostile_npy(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "v.npy", array)
    (tmp_path / "v.vocab.tsv").write_text("a\nb\n")
    one_line_error(*cli("similar", tmp_path / "v.npy", "a"), message)


@pytest.mark.parametrize("option", ["--analogies", "--similarity"])
def test_an_endless_line_in_an_evaluation_file(tmp_path: Path, vecs_txt: Path, option: str) -> None:
    one_line_error(*cli("evaluate", vecs_txt, option, "/dev/zero"), "/dev/zero, line 1: longer than 65,536 bytes")
    (tmp_path / "long.txt").write_bytes(b": s\nking " + b"x" * 100_000 + b"\n")
    one_line_error(*cli("evaluate", vecs_txt, option, tmp_path / "long.txt"), "long.txt, line 2: longer than")


def test_projector_export_where_it_cannot_be_written(tmp_path: Path, vecs_txt: Path) -> None:
    (tmp_path / "afile").write_text("x")
    one_line_error(*cli("export", vecs_txt, "-o", tmp_path / "afile" / "proj", "-f", "projector"),
                   "cannot create the folder", "afile")


def test_projector_export_on_a_full_or_read_only_disk(tiny_disk: Path) -> None:
    big = tiny_disk.parent / "big.pt"
    torch.save({"words": [f"w{i}" for i in range(5000)], "vectors": torch.ones(5000, 64)}, big)
    one_line_error(*cli("export", big, "-o", tiny_disk / "proj", "-f", "projector"),
                   "no space left on the device while writing", "proj")
    assert list(tiny_disk.iterdir()) == []
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    one_line_error(*cli("export", big, "-o", tiny_disk / "proj", "-f", "projector"), "cannot write",
                   "Read-only file system")


# --- G: the corpus reader ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "\x0c" + "a" * 20_000_000,  # a form feed, then 20 MB without a space: was quadratic and held it all
    "x\u3000" + "b" * 20_000_000 + "\u3000c",
    "c" * 40_000_000,  # one 40M-character word: its 1 MiB pieces piled up in the open line
])
def test_long_runs_without_spaces_stream_in_bounded_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.txt"
    path.write_text(text)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        chars = sum(len(w) for sentence in Corpus([path], tokenizer="whitespace") for w in sentence)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chars == len("".join(text.split()))
    assert peak < 30e6, peak  # measured 13 to 21 MB; holding the text took 44 to 360 MB
    assert time.perf_counter() - start < 30


def test_every_whitespace_separates_words_across_blocks(tmp_path: Path) -> None:
    spaces = ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\u2003"]
    rng = np.random.default_rng(1)
    words = [f"w{i}" * int(rng.integers(1, 40)) for i in range(60_000)]  # about 1.5 MB: several blocks
    text = "".join(w + spaces[i % len(spaces)] for i, w in enumerate(words))
    (tmp_path / "c.txt").write_text(text)
    got = [w for sentence in Corpus([tmp_path / "c.txt"], tokenizer="whitespace", max_sentence_length=10**9)
           for w in sentence]
    assert got == text.split()


def test_a_fifo_in_a_corpus_folder_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(MOBY, folder / "moby.txt.gz")
    os.mkfifo(folder / "pipe")
    r = run_w2v("train", folder, "--out", tmp_path / "run", *FAST, "--no-eval", timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"warning: skipped {folder / 'pipe'}: a FIFO (named pipe), not a regular file" in r.stderr
    one_line_error(*cli("train", folder / "pipe", "--out", tmp_path / "run2", *FAST),
                   "pipe is a FIFO (named pipe), not a regular file", "save the stream to a file first")


# --- H: what w2v writes, w2v reads ------------------------------------------------------------------

_words = st.lists(st.one_of(st.text(st.characters(), min_size=1, max_size=12),
                            st.sampled_from(["\x01", "a\x00b", "\x85", "\u3000x", "\ud800", "x\x1f", "\x7f",
                                             "\ufeffbom", "1.5", "-", "\u2028"])),
                  min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=_words)
def test_what_is_written_is_read_back_or_refused(tmp_path: Path, words: list[str]) -> None:
    m = np.arange(len(words) * 3, dtype=np.float32).reshape(-1, 3) / 4  # exact in text; 0.0 holds \x00 bytes
    v = Vectors(words, m, counts=list(range(len(words), 0, -1)))
    for fmt, name in (("text", "v.txt"), ("binary", "v.bin"), ("torch", "v.pt"), ("npy", "v")):
        path = tmp_path / name
        try:
            save(v, path, format=fmt)
        except UserError:
            continue
        back = load(path if fmt != "npy" else tmp_path / "v.npy")
        assert back.words == words, fmt
        assert torch.equal(back.matrix, v.matrix), fmt


def test_very_long_and_control_character_words(tmp_path: Path) -> None:
    long_word = "é" * 50_000  # 100,000 bytes
    v = Vectors(["a", long_word], np.ones((2, 2), dtype=np.float32))
    with pytest.raises(UserError, match="word 2 is 100,000 bytes long; .*use --format torch"):
        save(v, tmp_path / "v.bin", format="binary")
    v = Vectors(["a", "é" * 49_999 + "x"], np.ones((2, 2), dtype=np.float32))  # 99,999 bytes: fits
    save(v, tmp_path / "v.bin", format="binary")
    assert load(tmp_path / "v.bin").words == v.words
    v = Vectors(["a", "tab\x01"], np.ones((2, 2), dtype=np.float32))
    code, out = cli("export", _saved(v, tmp_path / "ctl.pt"), "-o", tmp_path / "v.txt")
    one_line_error(code, out, "word 2 ('tab\\x01') contains a control character", "--format binary or torch")
    assert cli("export", tmp_path / "ctl.pt", "-o", tmp_path / "v.bin")[0] == 0
    assert load(tmp_path / "v.bin").words == v.words


def _saved(v: Vectors, path: Path) -> Path:
    save(v, path, format="torch")
    return path


# --- I: compressed word2vec files and gensim pickles -----------------------------------------------


@pytest.mark.parametrize("name, tool", [("v.txt.bz2", "bunzip2 -k"), ("v.bin.xz", "unxz -k"), ("v.zst", "unzstd")])
def test_compressed_word2vec_files_say_how_to_decompress(tmp_path: Path, name: str, tool: str) -> None:
    (tmp_path / name).write_bytes(gzip.compress(b"2 1\na 1\nb 2\n"))  # only the name matters; .gz is read
    one_line_error(*cli("similar", tmp_path / name, "a"), "compressed files are not read directly",
                   f"{tool} {tmp_path / name}")


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("name, how", [
    ("w.model", "Word2Vec.load("),
    ("w.kv", "KeyedVectors.load("),
    ("w.bin", "Word2Vec.load("),
])
def test_gensim_pickles_are_named_never_unpickled(tmp_path: Path, name: str, how: str) -> None:
    payload = _Payload()
    payload.marker = str(tmp_path / "pwned")
    for protocol in (2, 4, 5):
        (tmp_path / name).write_bytes(pickle.dumps({"wv": payload}, protocol=protocol))
        line = one_line_error(*cli("similar", tmp_path / name, "a"), "is a Python pickle (a gensim .model or .kv",
                              "never loads", how, ".save_word2vec_format('v.bin', binary=True)")
        assert str(tmp_path / name) in line
    assert not (tmp_path / "pwned").exists()

