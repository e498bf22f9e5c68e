"""Interrupt, kill and resume: a resumed single-thread run ends with exactly the vectors of an
uninterrupted one, and a run folder is consistent whenever the process dies.

These run `python -m w2v train` in a subprocess and signal it for real, so they are part of
the normal test run (CI included).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import w2v
from w2v.cli import main
from w2v.dictionary import Dictionary
from w2v.errors import UserError
from w2v.errors import Interrupted
from w2v.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
MOBY = str(ROOT / "corpora" / "moby_dick.txt.gz")
QUIET = dict(progress=False, tensorboard=False, evaluate=False)
# Deterministic (one thread), many chunks per epoch, a checkpoint after every epoch.
SETTINGS = dict(epochs=6, dim=32, threads=1, batch_words=2000, seed=5)
CLI_ARGS = ["--epochs", "6", "--dim", "32", "--threads", "1", "--batch-words", "2000", "--seed", "5",
            "--no-eval", "--no-tensorboard"]
RUN_FILES = {"config.json", "vocab.tsv", "ids.npy", "offsets.npy", "checkpoint.pt", "model.pt"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> torch.Tensor:
    """Input vectors of the uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    return w2v.train([MOBY], out=str(out), **SETTINGS, **QUIET).params.input


def start(out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "w2v", "train", MOBY, "--out", str(out), *CLI_ARGS],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), cwd=ROOT)


def wait_for(process: subprocess.Popen, log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, f"exited {process.returncode} before {text!r}: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout} s: {log.read_text()}"
        time.sleep(0.02)


def resume(out: Path) -> tuple[int, str]:
    """`w2v train --resume OUT` in this process (the interrupted side ran in a real subprocess)."""
    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def final_vectors(out: Path) -> torch.Tensor:
    return torch.load(out / "model.pt", weights_only=True, map_location="cpu")["input"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_checkpoints_and_resume_is_exact(tmp_path: Path, reference: torch.Tensor, signum: int) -> None:
    out, log = tmp_path / "run", tmp_path / "log"
    process = start(out, log)
    try:
        wait_for(process, log, "epoch 1/6")  # mid-run, with a checkpoint already written
        process.send_signal(signum)
        assert process.wait(timeout=120) == 130, log.read_text()
    finally:
        process.kill()
    message = log.read_text().strip().splitlines()[-1]
    assert message == f"interrupted: checkpoint written to {out}; continue with `w2v train --resume {out}`"
    assert "Traceback" not in log.read_text()
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    progress = state["progress"]
    assert 1 <= progress["epoch"] < 6 and progress["words_done"] > 0
    assert not (out / "model.pt").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp or scratch files left

    code, output = resume(out)
    assert code == 0, output
    assert "epoch 6/6" in output and f"saved to {out}" in output
    assert torch.equal(final_vectors(out), reference)
    assert not (out / "checkpoint.pt").exists()


def _stop_after(trainer: Trainer, chunks: int) -> None:
    """Set the trainer's stop flag (what the signal handler does) after `chunks` chunks."""

    def stop(trained: int) -> None:
        if trained == chunks:
            trainer.stop.set()

    trainer.after_chunk = stop


@pytest.mark.parametrize("options", [
    dict(model="sg"), dict(model="cbow"), dict(model="sg", hs=True, negative=0), dict(model="sg", backend="torch"),
], ids=["sg", "cbow", "hs", "torch"])
def test_resume_from_the_middle_of_an_epoch_is_exact(tmp_path: Path, options: dict) -> None:
    from w2v.config import TrainConfig

    corpus = tmp_path / "moby_part.txt"
    corpus.write_text("\n".join(gzip.open(MOBY, "rt", encoding="utf-8").read().splitlines()[:500]))
    settings = dict(epochs=2, dim=16, threads=1, batch_words=1000, seed=3, checkpoint_every=0, **options, **QUIET)
    expect = w2v.train([str(corpus)], out=str(tmp_path / "ref"), **settings).params
    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(paths=[str(corpus)], out=str(run), **settings))
    _stop_after(trainer, 40)  # about 30 chunks an epoch: stops in the middle of the second
    with pytest.raises(Interrupted):
        trainer.run()
    progress = torch.load(run / "checkpoint.pt", weights_only=True)["progress"]
    assert progress["epoch"] == 1 and progress["chunk"] > 0
    got = w2v.resume(str(run)).params
    assert torch.equal(got.input, expect.input)
    assert torch.equal(got.output, expect.output) and torch.equal(got.output_hs, expect.output_hs)


def check_consistent(out: Path) -> set[str]:
    """Every file is whole and loads; anything else has a temporary (hidden) name. Returns the real files."""
    real = set()
    for path in out.iterdir():
        if path.name.startswith("."):  # temporaries (fileio.temporary_name), or the run's lock
            assert path.name.endswith(".tmp") or path.name == ".w2v-lock", path.name
            continue
        assert path.name in RUN_FILES, path.name
        real.add(path.name)
        if path.suffix == ".pt":
            state = torch.load(path, weights_only=True, map_location="cpu")
            assert state["input"].dim() == 2
        elif path.name == "config.json":
            assert json.loads(path.read_text())["config"]["epochs"] == 6
        elif path.name == "vocab.tsv":
            assert len(Dictionary.load(path)) > 1000
        else:
            assert np.load(path, mmap_mode="r").ndim == 1
    if "config.json" in real:  # written after the vocabulary and ids
        assert {"vocab.tsv", "ids.npy", "offsets.npy"} <= real
    if "checkpoint.pt" in real or "model.pt" in real:
        assert "config.json" in real
    return real


@pytest.mark.parametrize("moment", ["training", "random"])
def test_sigkill_leaves_a_consistent_resumable_folder(tmp_path: Path, reference: torch.Tensor, moment: str) -> None:
    out, log = tmp_path / "run", tmp_path / "log"
    seed = int(os.environ.get("W2V_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    process = start(out, log)
    try:
        if moment == "training":
            wait_for(process, log, "epoch 1/6")
            time.sleep(rng.uniform(0, 0.5))
        else:  # a random delay after a random landmark: reading the corpus, training, the last epochs
            landmark = rng.choice(["run folder made", "vocabulary:", "epoch 5/6"])
            if landmark == "run folder made":
                while not out.exists() and process.poll() is None:
                    time.sleep(0.005)
            else:
                wait_for(process, log, landmark)
            time.sleep(rng.uniform(0, 0.5))
        process.kill()
        process.wait(timeout=60)
    finally:
        process.kill()
    why = f"(W2V_KILL_SEED={seed}; log: {log.read_text()[-300:]!r})"
    real = check_consistent(out) if out.exists() else set()
    if "checkpoint.pt" in real:
        code, output = resume(out)
        assert code == 0, (output, why)
        assert torch.equal(final_vectors(out), reference), why
        assert not list(out.glob(".*.tmp")), why  # the killed run's temporaries are cleaned up
    elif "model.pt" in real:  # the run had finished
        assert torch.equal(final_vectors(out), reference), why
    else:  # killed before the first checkpoint: nothing to resume, and w2v says so
        code, output = resume(out)
        assert code == 2 and output.startswith("Error: ") and output.count("\n") == 1, (output, why)
        with pytest.raises(UserError):
            w2v.load(str(out))
