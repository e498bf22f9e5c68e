"""Bad input gives one line and exit 2, never a traceback; files are written whole or not at all;
loading never unpickles; memory stays bounded. docs/errors.md lists every case tested here."""

from __future__ import annotations

import ast
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import w2v
from w2v import encode
from w2v.cli import main
from w2v.errors import UserError
from w2v.fileio import atomic_torch_save, atomic_write, remove_stale_temporaries
from w2v.semantics import chunk_bounds
from clitools import cli, one_line_error

ROOT = Path(__file__).resolve().parent.parent
MOBY = str(ROOT / "corpora" / "moby_dick.txt.gz")
QUIET = dict(progress=False, tensorboard=False, evaluate=False)
FAST = ["--epochs", "1", "--dim", "10", "--no-eval", "--no-tensorboard", "--quiet"]


# --- training: bad corpora and options --------------------------------------------------------


def test_missing_corpus(tmp_path: Path) -> None:
    one_line_error(*cli("train", tmp_path / "nope.txt", "--out", tmp_path / "run", *FAST),
                   "corpus path not found", "nope.txt")


def test_unreadable_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 does not stop root, so make open() fail the way it does for an unreadable file.
    path = tmp_path / "secret.txt"
    path.write_text("a b c\n")
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    one_line_error(*cli("train", path, "--out", tmp_path / "run", *FAST), "cannot read", "Permission denied")


def test_empty_corpus_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n\n   \n")
    one_line_error(*cli("train", tmp_path / "empty.txt", "--out", tmp_path / "r1", *FAST), "corpus is empty")
    (tmp_path / "nothing").mkdir()
    one_line_error(*cli("train", tmp_path / "nothing", "--out", tmp_path / "r2", *FAST), "no corpus files found")


def test_every_word_under_min_count(tmp_path: Path) -> None:
    (tmp_path / "few.txt").write_text("alpha beta gamma\nalpha beta\n")
    one_line_error(*cli("train", tmp_path / "few.txt", "--out", tmp_path / "run", "--min-count", "3", *FAST),
                   "no word occurs at least 3 times", "the most frequent occurs 2 times", "--min-count")


def test_gzip_in_name_only(tmp_path: Path) -> None:
    (tmp_path / "fake.txt.gz").write_text("plain text, not gzip\n")
    one_line_error(*cli("train", tmp_path / "fake.txt.gz", "--out", tmp_path / "run", *FAST),
                   "fake.txt.gz is not a valid gzip file")


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(b"the cat sat on the mat\n" * 5000)
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    one_line_error(*cli("train", tmp_path / "cut.txt.gz", "--out", tmp_path / "run", *FAST),
                   "cut.txt.gz is not a valid gzip file")


def test_non_utf8_corpus_trains_and_warns_with_the_count(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café naïve word word word\n".encode("latin-1") * 10)  # é and ï: 2 bad bytes a line
    result = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run"), "--min-count", "1",
                                       *FAST])  # --quiet: the warning must show anyway
    assert result.exit_code == 0, result.output
    assert "warning: 20 undecodable bytes in the corpus (not UTF-8) were replaced with U+FFFD" in result.output
    config = (tmp_path / "run" / "config.json").read_text()
    assert '"bad_bytes": 20' in config
    words = (tmp_path / "run" / "vocab.tsv").read_text().split()
    assert "caf" in words and "word" in words  # U+FFFD is not a word character: "caf\ufffd" -> "caf"


def test_binary_file_as_corpus_trains_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    result = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run"), "--min-count", "1",
                                       *FAST])
    assert result.exit_code == 0, result.output
    assert "undecodable bytes in the corpus" in result.output and "Traceback" not in result.output


def test_vectors_too_big_for_memory(tmp_path: Path) -> None:
    one_line_error(*cli("train", MOBY, "--out", tmp_path / "run", *FAST, "--dim", "2000000000"),
                   "not enough memory for", "vectors of 2,000,000,000 dimensions")


def test_kernel_failure_is_an_error_not_a_silent_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker thread's exception used to vanish: the run "succeeded" with untrained vectors.
    from w2v import native

    if not native.available():
        pytest.skip("no C kernel here")

    def failing(job):
        raise MemoryError("the training kernel could not allocate its buffers")

    monkeypatch.setattr(native, "train_chunk", failing)
    one_line_error(*cli("train", MOBY, "--out", tmp_path / "run", *FAST, "--threads", "2"),
                   "out of memory while training")
    assert not (tmp_path / "run" / "model.pt").exists()

    def broken(job):
        raise ValueError("a bug")

    monkeypatch.setattr(native, "train_chunk", broken)
    with pytest.raises(ValueError, match="a bug"):  # an internal failure: a traceback, exit 1
        w2v.train([MOBY], out=str(tmp_path / "run2"), epochs=1, dim=10, threads=2, **QUIET)
    assert not (tmp_path / "run2" / "model.pt").exists()


def test_internal_failure_exits_1_with_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from w2v.trainer import Trainer

    def boom(*args, **kwargs):
        raise RuntimeError("internal")

    monkeypatch.setattr(Trainer, "_train_epoch", boom)
    result = CliRunner().invoke(main, ["train", MOBY, "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)  # python -m w2v prints its traceback


def test_out_folder_holding_another_run_is_refused_unless_overwrite(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    one_line_error(*cli("train", MOBY, "--out", run, *FAST), "holds another run (config.json)", "--overwrite")
    assert (run / "config.json").read_text() == "{}"
    code, out = cli("train", MOBY, "--out", run, *FAST, "--overwrite")
    assert code == 0, out
    assert (run / "model.pt").exists()


def test_out_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    one_line_error(*cli("train", MOBY, "--out", tmp_path / "file" / "run", *FAST),
                   "cannot create the run folder")


# --- resume -----------------------------------------------------------------------------------


def test_resume_without_a_checkpoint(tmp_path: Path) -> None:
    one_line_error(*cli("train", "--resume", tmp_path / "missing"), "not found")
    (tmp_path / "empty").mkdir()
    one_line_error(*cli("train", "--resume", tmp_path / "empty"), "no checkpoint.pt to resume from", "--overwrite")
    assert cli("train", MOBY, "--out", tmp_path / "done", *FAST)[0] == 0
    one_line_error(*cli("train", "--resume", tmp_path / "done"), "finished run", "nothing to resume")


def test_resume_with_a_damaged_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", MOBY, "--out", run, *FAST)[0] == 0
    (run / "model.pt").rename(run / "checkpoint.pt")
    (run / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:1000])
    one_line_error(*cli("train", "--resume", run), "checkpoint.pt does not load")
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config[: len(config) // 2])
    one_line_error(*cli("train", "--resume", run), "config.json is damaged (JSONDecodeError)")
    (run / "config.json").write_text(config)
    (run / "ids.npy").unlink()
    one_line_error(*cli("train", "--resume", run), "no ids.npy")


# --- vectors files: similar, analogy, evaluate, w2v.load --------------------------------------

VECTORS_CASES = {
    # name: (file content, message)
    "truncated.txt": (b"3 2\nthe 1 2\nof 3 4\n", "truncated: the header declares 3 words but the file ends after 2"),
    "wrong_header.txt": (b"hello world\nthe 1 2\n", "line 1: 'world' is not a number"),
    "header_too_big.txt": (b"5 2\nthe 1 2\n", "the header declares 5 words of 2 numbers"),
    "ragged.txt": (b"3 2\nthe 1 2\nof 3\nand 5 6\n", "line 3: expected a word and 2 numbers, found 1"),
    "not_a_number.txt": (b"3 2\nthe 1 2\nof 3 x\nand 5 6\n", "line 3: 'x' is not a number"),
    "nan.txt": (b"2 2\nthe 1 2\nof nan 4\n", "line 3: a value is nan or infinite"),
    "blank_line.txt": (b"3 2\nthe 1 2\n\nand 5 6\n", "line 3: empty line"),
    "extra_rows.txt": (b"1 2\nthe 1 2\nof 3 4\n", "line 3: more rows than the 1 the header declares"),
    "no_header_ragged.txt": (b"the 1 2\nof 3 4 5\n", "line 2: expected a word and 2 numbers, found 3"),
    "empty.txt": (b"", "empty file"),
    "zero_dim.txt": (b"3 0\nthe\n", "dimension must be at least 1"),
    "truncated.bin": (b"2 4\nthe " + np.ones(4, "<f4").tobytes() + b"\nof " + bytes(15),
                      "truncated: the header declares 2 words but the file ends in word 2"),
    "huge_header.bin": (b"2000000000 300\nthe \x00\x00\x00\x00\x01", "the header declares 2000000000 words of 300"),
    "huge_header.txt": (b"1000000000 1000000000\nthe 1 2\n", "the header declares 1000000000 words"),
    "no_space.bin": (b"2 2\n" + b"\x01" * 200_100, "no space after the word"),
    "compressed.txt.bz2": (b"BZh91AY&SY", "compressed files are not read directly"),
    "truncated.txt.gz": (gzip.compress(b"2 1\na 1\nb 2\n")[:-6], "not a valid gzip file"),
    "fake_torch.pt": (b"PK\x03\x04 not really a zip", "not a torch file that loads with weights_only=True"),
    "fake.npy": (b"\x93NUMPY garbage", "not a .npy matrix"),
}


@pytest.mark.parametrize("name", sorted(VECTORS_CASES))
def test_bad_vectors_file(tmp_path: Path, name: str) -> None:
    content, message = VECTORS_CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    if name == "fake.npy":
        (tmp_path / "fake.vocab.tsv").write_text("a\n")
    with pytest.raises(UserError, match=None) as caught:
        w2v.load(str(path))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    one_line_error(*cli("similar", path, "the"), message)


@pytest.mark.parametrize("name", ["hostile.txt", "hostile.txt.gz", "hostile.bin.gz"])
def test_huge_header_is_refused_before_allocating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / name
    content = b"4000000000 4000000000\nthe 1 2\n" if "txt" in name else b"4000000000 4000000000\nthe \x01\x02"
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    real_empty = np.empty

    def watched(shape, *args, **kwargs):
        assert np.prod(shape, dtype=np.float64) < 1e6, f"allocated {shape}"
        return real_empty(shape, *args, **kwargs)

    monkeypatch.setattr(np, "empty", watched)
    with pytest.raises(UserError, match="header declares 4000000000 words|line 2: expected a word and 4000000000"):
        w2v.load(str(path))


def test_bad_run_folders(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    one_line_error(*cli("similar", tmp_path / "plain", "the"), "not a training run (no vocab.tsv)")
    run = tmp_path / "run"
    run.mkdir()
    (run / "vocab.tsv").write_text("the\t5\n")
    one_line_error(*cli("similar", run, "the"), "model.pt not found")
    torch.save({"input": torch.zeros(2, 3)}, run / "model.pt")
    one_line_error(*cli("similar", run, "the"), "vocab.tsv has 1 words but model.pt has 2 input vectors")
    (run / "vocab.tsv").write_bytes(b"the\t5\ncaf\xff\t3\n")
    one_line_error(*cli("similar", run, "the"), "vocab.tsv, line 2: not UTF-8 text")
    (run / "vocab.tsv").write_text("the\t5\nof\tmany\n")
    one_line_error(*cli("similar", run, "the"), "line 2: count 'many' is not an integer")


def test_unknown_words_and_bad_expressions(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("3 2\nthe 1 2\nof 3 4\nand 5 6\n")
    one_line_error(*cli("similar", path, "nosuch"), "unknown word: 'nosuch'")
    one_line_error(*cli("analogy", path, "the", "-", "+", "of"), "expected a word before '+'")


@pytest.fixture
def small_vectors(tmp_path: Path) -> Path:
    path = tmp_path / "v.txt"
    rng = np.random.default_rng(0)
    words = ["the", "of", "and", "to", "king", "queen", "man", "woman"]
    path.write_text(f"{len(words)} 4\n" + "".join(f"{w} " + " ".join(f"{x:.4f}" for x in rng.normal(size=4)) + "\n"
                                                   for w in words))
    return path


def test_analogy_file_with_malformed_lines_skips_and_says_which(tmp_path: Path, small_vectors: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_bytes(b": family\nman king woman queen\nman king woman\nthe of and to extra\n\xff\xfe x y z\n")
    code, out = cli("evaluate", small_vectors, "--analogies", questions)
    assert code == 0, out
    assert "ignored 2 malformed line(s), first: line 3" in out
    code, out = cli("evaluate", small_vectors, "--analogies", questions, "--json")
    assert json.loads(out)["analogies"]["malformed"] == [3, 4]


def test_analogy_file_without_sections_is_refused(tmp_path: Path, small_vectors: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("man king woman queen\n")
    one_line_error(*cli("evaluate", small_vectors, "--analogies", questions),
                   "q.txt, line 1: question before the first ': section' line")
    questions.write_bytes(b"")
    one_line_error(*cli("evaluate", small_vectors, "--analogies", questions), "no ': section' lines")


def test_similarity_file_with_malformed_lines(tmp_path: Path, small_vectors: Path) -> None:
    pairs = tmp_path / "p.tsv"
    pairs.write_text("# comment\nking\tqueen\t9\nman\twoman\tmany\nthe\tof\t2\nand\n")
    code, out = cli("evaluate", small_vectors, "--similarity", pairs)
    assert code == 0, out
    assert "ignored 2 malformed line(s), first: line 3" in out
    pairs.write_text("king\tqueen\t9\nnosuch\tword\t3\n")
    one_line_error(*cli("evaluate", small_vectors, "--similarity", pairs),
                   "1 pair(s) with known words; need at least 2")


def test_missing_evaluation_files(tmp_path: Path, small_vectors: Path) -> None:
    one_line_error(*cli("evaluate", small_vectors, "--analogies", tmp_path / "none.txt"), "none.txt not found")
    one_line_error(*cli("evaluate", small_vectors, "--similarity", tmp_path / "none.tsv"), "none.tsv not found")


def test_unreadable_evaluation_file(tmp_path: Path, small_vectors: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text(": s\nman king woman queen\n")
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(questions):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    one_line_error(*cli("evaluate", small_vectors, "--analogies", questions), "cannot read", "Permission denied")


def test_vectors_with_bad_utf8_words_load_with_a_one_line_warning(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"2 2\ncaf\xe9 1 2\nof 3 4\n")
    with pytest.warns(UnicodeWarning, match="1 word"):
        code, out = cli("similar", path, "of")
    assert code == 0 and out.splitlines()[0].startswith("caf\ufffd")
    # The CLI prints warnings as one line (Python's default adds the source line).
    shown = warnings.formatwarning(UnicodeWarning("1 word(s) are not valid UTF-8"), UnicodeWarning, "formats.py", 1)
    assert shown == "warning: 1 word(s) are not valid UTF-8\n"


def test_export_where_a_file_is_in_the_way(tmp_path: Path, small_vectors: Path) -> None:
    one_line_error(*cli("export", small_vectors, "-o", small_vectors / "x.txt"), "cannot create the folder")
    one_line_error(*cli("export", small_vectors, "-o", tmp_path), "cannot tell the format")
    one_line_error(*cli("export", small_vectors, "-o", tmp_path, "--format", "text"), "is a folder; give a file name")


# --- nothing lost: atomic writes and a full disk ----------------------------------------------


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.pt"
    atomic_torch_save({"x": torch.ones(3)}, target)
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(target) as f:
            f.write(b"half of a file")
            raise RuntimeError("midway")
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_killed_writer_leaves_old_file_and_a_hidden_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    atomic_torch_save({"x": torch.ones(3)}, target)
    code = textwrap.dedent(f"""
        import sys, time
        from w2v.fileio import atomic_write
        with atomic_write({str(target)!r}) as f:
            f.write(b"x" * 100000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert p.stdout.readline().strip() == "writing"
    finally:
        p.kill()
        p.wait()
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(3))
    left = [p.name for p in tmp_path.iterdir() if p.name != "model.pt"]
    assert len(left) == 1 and left[0].startswith(".model.pt.") and left[0].endswith(".tmp")
    # The leftover is never taken for a run file or a vectors file.
    (tmp_path / "vocab.tsv").write_text("a\t1\nb\t1\nc\t1\n")
    torch.save({"input": torch.ones(3, 2), "output": torch.ones(3, 2)}, target)
    assert len(w2v.load(str(tmp_path))) == 3
    # The next run in the folder removes it (its writer is gone); a live writer's is kept.
    live = tmp_path / f".vocab.tsv.{os.getpid()}.0123abcd.tmp"
    live.write_text("being written")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "model.pt", "vocab.tsv"])


def _mount_tmpfs(where: Path, size: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A tmpfs mount whose size the test sets; skipped where the sandbox cannot mount."""
    where = tmp_path / "disk"
    if not _mount_tmpfs(where, 1 << 20):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")

    def resize(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)

    try:
        yield where, resize
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_full_disk_on_checkpoint_keeps_the_previous_one(tiny_disk) -> None:
    disk, resize = tiny_disk
    target = disk / "checkpoint.pt"
    atomic_torch_save({"x": torch.arange(10.0)}, target)
    with pytest.raises(UserError, match="no space left on the device while writing .*checkpoint.pt; "
                                        "the previous file is kept"):
        atomic_torch_save({"x": torch.zeros(1 << 19)}, target)  # 2 MB into a 1 MB disk: torch.save's RuntimeError
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.arange(10.0))
    assert [p.name for p in disk.iterdir()] == ["checkpoint.pt"]


def _pages(n: int) -> int:
    return -(-n // 4096) * 4096


def test_full_disk_while_training_then_resume(tiny_disk, tmp_path: Path) -> None:
    """model.pt does not fit beside the last checkpoint: a one-line error, and the checkpoint resumes."""
    disk, resize = tiny_disk
    args = [MOBY, "--epochs", "2", "--dim", "64", "--threads", "1", "--no-eval", "--no-tensorboard", "--quiet"]
    ref = tmp_path / "ref"
    assert cli("train", *args, "--out", ref)[0] == 0
    data = sum(_pages(p.stat().st_size) for p in ref.iterdir() if p.name != "model.pt")
    model = _pages((ref / "model.pt").stat().st_size)
    resize(data + model + model // 2)  # room for one checkpoint, not for model.pt beside it
    run = disk / "run"
    code, out = cli("train", *args, "--out", run)
    one_line_error(code, out, "no space left on the device while writing", "model.pt", "the previous file is kept")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "ids.npy", "offsets.npy",
                                                     "vocab.tsv"]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["progress"]["epoch"] == 1
    resize(data + 3 * model)
    code, out = cli("train", "--resume", run)
    assert code == 0, out
    expect = torch.load(ref / "model.pt", weights_only=True)["input"]
    assert torch.equal(torch.load(run / "model.pt", weights_only=True)["input"], expect)


def test_read_only_file_system(tiny_disk, small_vectors: Path) -> None:
    disk, resize = tiny_disk
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    one_line_error(*cli("export", small_vectors, "-o", disk / "v.txt"), "cannot write", "Read-only file system")
    one_line_error(*cli("train", MOBY, "--out", disk / "run", *FAST), "cannot create the run folder",
                   "Read-only file system")


def test_full_disk_while_preparing(tiny_disk) -> None:
    disk, resize = tiny_disk
    resize(256 << 10)  # the ids of moby_dick take 800 kB
    code, out = cli("train", MOBY, "--out", disk / "run", *FAST)
    one_line_error(code, out, "no space left on the device while writing")
    assert [p.name for p in (disk / "run").iterdir() if p.name.startswith(".")] == []  # scratch files removed


# --- safety: nothing is unpickled ---------------------------------------------------------------


def test_every_torch_load_is_weights_only_and_numpy_never_unpickles() -> None:
    calls = 0
    for source in sorted((ROOT / "w2v").glob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and source.name != "torchfile.py":
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "cPickle", "dill", "joblib"} & set(names), f"{source.name} imports pickle"
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            if owner == "torch" and node.func.attr == "load":
                calls += 1
                value = keywords.get("weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, \
                    f"{source.name}:{node.lineno}: torch.load without weights_only=True"
            if owner == "np" and node.func.attr == "load":
                value = keywords.get("allow_pickle")
                assert value is None or (isinstance(value, ast.Constant) and value.value is False), \
                    f"{source.name}:{node.lineno}: np.load with allow_pickle"
    assert calls >= 2


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_payload_is_never_run(tmp_path: Path) -> None:
    payload = _Payload()
    payload.marker = str(tmp_path / "pwned")
    torch.save({"words": ["a"], "vectors": torch.zeros(1, 2), "extra": payload}, tmp_path / "evil.pt")
    one_line_error(*cli("similar", tmp_path / "evil.pt", "a"), "not a torch file that loads with weights_only=True")
    # The same payload as a run's checkpoint: resume refuses it too.
    run = tmp_path / "run"
    assert cli("train", MOBY, "--out", run, *FAST)[0] == 0
    (run / "model.pt").unlink()
    torch.save({"input": torch.zeros(1), "progress": payload}, run / "checkpoint.pt")
    one_line_error(*cli("train", "--resume", run), "checkpoint.pt does not load")
    np.save(tmp_path / "evil.npy", np.array([payload], dtype=object), allow_pickle=True)
    (tmp_path / "evil.vocab.tsv").write_text("a\n")
    one_line_error(*cli("similar", tmp_path / "evil.npy", "a"), "not a .npy matrix")
    assert not (tmp_path / "pwned").exists()


# --- limits: memory stays bounded ----------------------------------------------------------------


def _random_words_corpus(path: Path, tokens: int, distinct: int, seed: int = 0) -> None:
    """Half the tokens from 2,000 common words, half uniform over `distinct` random strings."""
    rng = np.random.default_rng(seed)
    common = rng.zipf(1.3, tokens) % 2000
    rare = 2000 + rng.integers(0, distinct, tokens)
    ids = np.where(rng.random(tokens) < 0.5, common, rare)
    words = np.char.add("w", np.char.mod("%x", ids))
    lines = [" ".join(words[i:i + 20]) for i in range(0, tokens, 20)]
    path.write_text("\n".join(lines) + "\n")


def test_max_vocab_size_bounds_the_vocabulary_while_counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "rare.txt"
    _random_words_corpus(corpus, 600_000, 300_000)
    sizes: list[int] = []
    real_prune = encode._prune

    def watched(index, counts, min_reduce):
        sizes.append(len(index))
        return real_prune(index, counts, min_reduce)

    monkeypatch.setattr(encode, "_prune", watched)
    model = w2v.train([str(corpus)], out=str(tmp_path / "run"), max_vocab_size=20_000, min_count=2, epochs=1,
                      dim=10, threads=2, **QUIET)
    assert sizes and max(sizes) <= 20_020  # never more than the limit + one 20-word line held while counting
    assert 0 < len(model.dictionary) <= 20_000
    ids = np.load(tmp_path / "run" / "ids.npy", mmap_mode="r")
    assert ids.max() < len(model.dictionary) and torch.isfinite(model.params.input).all()
    unlimited = w2v.train([str(corpus)], out=str(tmp_path / "run2"), min_count=2, epochs=1, dim=10, threads=2, **QUIET)
    assert len(unlimited.dictionary) > len(model.dictionary)


def test_a_30_mb_single_line_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A text8-style file (one line, no newline) is read in blocks and comes out in 10,000-token pieces."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the peak memory")
    path = tmp_path / "one_line.txt"
    words = np.array(gzip.open(MOBY, "rt", encoding="utf-8").read().lower().split())
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        while f.tell() < 30 << 20:
            f.write(" ".join(rng.choice(words, 200_000).tolist()) + " ")
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still holds the parent's (pytest's) peak.
    code = textwrap.dedent(f"""
        import re
        from w2v.corpus import Corpus

        def kb(field):
            return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

        before = kb("VmRSS")
        tokens = pieces = longest = 0
        for sentence in Corpus([{str(path)!r}]):
            tokens, pieces, longest = tokens + len(sentence), pieces + 1, max(longest, len(sentence))
        print(before // 1024, kb("VmHWM") // 1024, tokens, pieces, longest)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    before_mb, peak_mb, tokens, pieces, longest = map(int, r.stdout.split())
    assert tokens > 5_000_000 and longest == 10_000 and pieces == -(-tokens // 10_000)
    # Holding the line whole would take 30 MB of text and a few hundred MB of token strings.
    assert peak_mb - before_mb < 40, (before_mb, peak_mb)


def _mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of path (what the OS counts in RSS)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                inside = len(parts) > 5 and parts[5] == str(path)
            elif inside and parts[0] == "Rss:":
                total += int(parts[1])
    return total


def test_chunk_bounds_leave_a_mapped_offsets_file_untouched(tmp_path: Path) -> None:
    """Cutting a big corpus into chunks reads offsets.npy with pread, so its pages never count in RSS."""
    if not Path("/proc/self/smaps").exists():
        pytest.skip("needs Linux's /proc to read a mapping's resident pages")
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(1, 40, size=4_000_000))]).astype(np.int64)
    path = tmp_path / "offsets.npy"
    np.save(path, offsets)
    data = encode.Encoded(dictionary=None, ids=np.zeros(0, np.int32), offsets=np.load(path, mmap_mode="r"), raw_tokens=0)
    try:
        blocked = chunk_bounds(data.offsets, 10_000, data.read_offsets, block=100_003)
        assert _mapped_kb(path) <= 64  # the last entry's page and the header, not 32 MB of offsets
        assert np.array_equal(blocked, chunk_bounds(offsets, 10_000))
        chunk_bounds(data.offsets, 10_000)  # searched through the map: the pages it touches count
        assert _mapped_kb(path) > 1_000
    finally:
        data.close()
