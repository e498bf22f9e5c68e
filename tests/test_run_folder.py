"""The run folder as input: --overwrite never loses the old run, one run per folder, and a
tampered folder is a one-line error before any native call (never a crash, never a wrong run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import w2v
from w2v.runfolder import LOCK, REPLACED, RunFolder
from clitools import cli, one_line_error

ROOT = Path(__file__).resolve().parent.parent
SMALL = "\n".join(["the king and the queen rode to the castle with the man and the woman"] * 300)
FAST = ["--epochs", "1", "--threads", "1", "--dim", "20", "--no-eval", "--no-tensorboard", "--quiet"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(SMALL)
    return path


def test_overwrite_keeps_the_old_run_when_the_new_one_fails(tmp_path: Path, small: Path) -> None:
    run = tmp_path / "r" / "a"
    assert cli("train", small, "--out", run, *FAST)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK}
    one_line_error(*cli("train", tmp_path / "smal.txt", "--out", run, "--overwrite", *FAST), "not found")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    one_line_error(*cli("train", empty, "--out", run, "--overwrite", *FAST), "corpus is empty")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != LOCK}
    assert after == before and not (run / REPLACED).exists()
    assert len(w2v.load(str(run))) > 5  # still loads


def test_overwrite_replaces_the_old_run_once_the_new_one_has_finished(tmp_path: Path, small: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", small, "--out", run, *FAST)[0] == 0
    assert cli("train", small, "--out", run, "--overwrite", *FAST, "--dim", "12")[0] == 0
    assert w2v.load(str(run)).dim == 12 and not (run / REPLACED).exists()


def test_a_second_run_into_the_same_folder_is_refused_naming_the_holder(tmp_path: Path, small: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    holder = RunFolder(run).lock()  # as a run in another process holds it
    try:
        code = (f"import fcntl, os; f = open({str(run / LOCK)!r}, 'a+'); "
                "fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)")
        assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0
        one_line_error(*cli("train", small, "--out", run, *FAST), "another w2v run", "is training in")
    finally:
        RunFolder(run).release_lock(holder)
    assert cli("train", small, "--out", run, *FAST)[0] == 0  # the lock dies with its holder


def _interrupted_run(tmp_path: Path, small: Path) -> Path:
    """A run folder stopped after its first epoch: checkpoint.pt and everything --resume reads."""
    from w2v.config import TrainConfig
    from w2v.errors import Interrupted
    from w2v.trainer import Trainer

    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(paths=[str(small)], out=str(run), epochs=2, threads=1, dim=20, batch_words=500,
                                  progress=False, tensorboard=False, evaluate=False))
    trainer.after_chunk = lambda n: trainer.stop.set() if n == 3 else None
    with pytest.raises(Interrupted):
        trainer.run()
    assert (run / "checkpoint.pt").exists()
    return run


def _tamper_checkpoint(run: Path, **changes: object) -> None:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    for key, value in changes.items():
        if key.startswith("progress."):
            state["progress"][key.split(".", 1)[1]] = value
        else:
            state[key] = value
    torch.save(state, run / "checkpoint.pt")


@pytest.mark.parametrize("tamper, message", [
    (lambda r: _tamper_checkpoint(r, input=torch.zeros(5, 20)), "has shape (5, 20)"),
    (lambda r: _tamper_checkpoint(r, input=torch.zeros(8, 20, dtype=torch.float64)), "not float32"),
    (lambda r: _tamper_checkpoint(r, output=torch.zeros(3)), "output has shape"),
    (lambda r: _tamper_checkpoint(r, input="nope"), "not a tensor"),
    (lambda r: _tamper_checkpoint(r, **{"progress.epoch": -3}), "progress epoch"),
    (lambda r: _tamper_checkpoint(r, **{"progress.chunk": "x"}), "progress chunk"),
    (lambda r: _tamper_checkpoint(r, progress=None), "no progress record"),
])
def test_a_tampered_checkpoint_is_a_one_line_error_and_nothing_is_deleted(tmp_path: Path, small: Path, tamper,
                                                                          message: str) -> None:
    run = _interrupted_run(tmp_path, small)
    tamper(run)
    files = sorted(p.name for p in run.iterdir())
    one_line_error(*cli("train", "--resume", run), message)
    assert sorted(p.name for p in run.iterdir()) == files


def test_a_checkpoint_holding_nan_is_refused(tmp_path: Path, small: Path) -> None:
    run = _interrupted_run(tmp_path, small)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["input"][1, 2] = float("nan")
    torch.save(state, run / "checkpoint.pt")
    one_line_error(*cli("train", "--resume", run), "nan or infinite")


@pytest.mark.parametrize("change, message", [
    ({"dim": 200}, "has shape"), ({"dim": 10}, "has shape"), ({"hs": True}, "output_hs has shape"),
    ({"dim": "20"}, "--dim must be"), ({"model": 7}, "--model must be"), ({"epochs": None}, "--epochs must be"),
])
def test_config_that_does_not_match_the_checkpoint_is_refused(tmp_path: Path, small: Path, change: dict,
                                                             message: str) -> None:
    run = _interrupted_run(tmp_path, small)
    meta = json.loads((run / "config.json").read_text())
    meta["config"].update(change)
    (run / "config.json").write_text(json.dumps(meta))
    one_line_error(*cli("train", "--resume", run), message)
    assert (run / "checkpoint.pt").exists()


@pytest.mark.parametrize("damage, message", [
    (lambda r: np.save(r / "ids.npy", np.load(r / "ids.npy") + 10**6), "outside the"),
    (lambda r: np.save(r / "ids.npy", np.load(r / "ids.npy") - 5), "outside the"),
    (lambda r: np.save(r / "ids.npy", np.load(r / "ids.npy").astype(np.int64)), "not a vector of int32"),
    (lambda r: (r / "ids.npy").write_bytes((r / "ids.npy").read_bytes()[:200]), "does not"),
    (lambda r: np.save(r / "offsets.npy", np.array([0, 5, 3], dtype=np.int64)), "does not describe"),
    (lambda r: (r / "vocab.tsv").write_text("\n".join((r / "vocab.tsv").read_text().splitlines()[:3]) + "\n"),
     "words of vocab.tsv"),
    (lambda r: (r / "vocab.tsv").write_text((r / "vocab.tsv").read_text() + "extra\t1\nmore\t1\n"), "has shape"),
    (lambda r: (r / "vocab.tsv").write_text("king\t١٢\n"), "is not an integer"),
])
def test_damaged_ids_or_vocabulary_are_refused_before_training(tmp_path: Path, small: Path, damage,
                                                              message: str) -> None:
    run = _interrupted_run(tmp_path, small)
    damage(run)
    one_line_error(*cli("train", "--resume", run), message)
    assert (run / "checkpoint.pt").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_run_folders_resume_correctly_or_fail_in_one_line(tmp_path_factory, data) -> None:
    """Mutate one thing in a real interrupted run folder: --resume either succeeds with finite vectors or
    exits 2 with one line; never a signal (the CLI runs in a subprocess), never a traceback."""
    base = tmp_path_factory.mktemp("fuzz")
    small = base / "small.txt"
    small.write_text(SMALL)
    run = _interrupted_run(base, small)
    target = data.draw(st.sampled_from(["config", "checkpoint", "ids", "offsets", "vocab"]))
    if target == "config":
        meta = json.loads((run / "config.json").read_text())
        key = data.draw(st.sampled_from(sorted(meta["config"])))
        meta["config"][key] = data.draw(st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64),
                                                  st.floats(allow_subnormal=False), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
        (run / "config.json").write_text(json.dumps(meta))
    elif target == "checkpoint":
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        key = data.draw(st.sampled_from(["input", "output", "output_hs"]))
        t = state[key]
        kind = data.draw(st.sampled_from(["dtype", "rows", "cols", "value"]))
        if kind == "dtype":
            state[key] = t.to(data.draw(st.sampled_from([torch.float64, torch.float16, torch.int32])))
        elif kind == "rows":
            state[key] = torch.zeros(data.draw(st.integers(0, 40)), t.shape[1] if t.dim() == 2 else 20)
        elif kind == "cols":
            state[key] = torch.zeros(t.shape[0], data.draw(st.integers(0, 40)))
        elif t.numel():
            t.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = data.draw(st.floats(width=32, allow_nan=True, allow_subnormal=False))
        torch.save(state, run / "checkpoint.pt")
    elif target in ("ids", "offsets"):
        arr = np.load(run / f"{target}.npy")
        if len(arr):
            arr[data.draw(st.integers(0, len(arr) - 1))] = data.draw(st.integers(-2**31, 2**31 - 1))
        np.save(run / f"{target}.npy", arr)
    else:
        lines = (run / "vocab.tsv").read_text().splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = data.draw(st.text(max_size=12))
        (run / "vocab.tsv").write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "w2v", "train", "--resume", str(run)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode in (0, 2), (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    if done.returncode == 2:
        assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr
    else:
        assert torch.isfinite(w2v.load(str(run)).matrix).all()


def test_a_vocabulary_with_an_endless_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    from w2v.dictionary import read_vocab_tsv
    from w2v.errors import UserError

    path = tmp_path / "vocab.tsv"
    path.write_bytes(b"the\t5\n" + b"x" * (3 << 20) + b"\t1\n")
    with pytest.raises(UserError, match="line 2: longer than"):
        read_vocab_tsv(path)
