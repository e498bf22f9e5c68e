"""Training on several processes under torchrun (gloo on the CPU): one run folder, the accuracy of
one process, exact equality with one process in the group, agreed stops, lost processes."""

from __future__ import annotations

import json
import os
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
from w2v import distributed, evaluate
from w2v.cli import main
from w2v.config import TrainConfig
from w2v.errors import UserError
from w2v.group import check_resume, mid_epoch
from w2v.runfolder import Progress
from w2v.semantics import chunk_bounds

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
SLICE = [str(CORPORA / "kjv.txt.gz"), str(CORPORA / "austen.txt.gz")]
MOBY = str(CORPORA / "moby_dick.txt.gz")
QUIET = ["--quiet", "--no-tensorboard", "--no-eval"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc to find torchrun's workers")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"  # as torchrun would, without its warning
    return env


def _torchrun(nproc: int, args: list[str], log: Path) -> subprocess.Popen:
    """`torchrun --standalone` (a free port, so parallel test runs don't collide) in the background."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "w2v", "train", *args]
    return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"torchrun still running after {timeout} s:\n{log.read_text()[-3000:]}") from None
    return code, log.read_text()


def _worker(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker with this RANK (the workers are the launcher's children)."""
    children = []
    for task in Path(f"/proc/{launcher}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    for pid in children:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"RANK={rank}".encode() in f.read().split(b"\0"):
                return pid
    raise AssertionError(f"no worker with RANK={rank} among {children}")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"torchrun ended before {path.name} appeared"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.02)


def _accuracy(run: Path) -> float:
    from w2v.vectors import load

    return evaluate.analogies(load(str(run)), restrict_vocab=30_000).total


# --- two processes against one -------------------------------------------------------------


def test_two_processes_write_one_run_as_good_as_one_process(tmp_path):
    settings = ["--epochs", "3", "--seed", "5", "--no-eval", "--quiet"]
    log = tmp_path / "torchrun.log"
    proc = _torchrun(2, [*SLICE, "--out", str(tmp_path / "two"), "--threads", "1", *settings], log)
    # One thread per process, and one in the single process: both runs are exactly reproducible.
    one = w2v.train(SLICE, out=str(tmp_path / "one"), epochs=3, seed=5, threads=1, evaluate=False,
                    progress=False, tensorboard=False)
    code, output = _finish(proc, log)
    assert code == 0, output[-3000:]

    run = tmp_path / "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "torchrun.log", "two"]
    files = {p.name for p in run.iterdir()}
    assert {"config.json", "vocab.tsv", "ids.npy", "offsets.npy", "model.pt"} <= files
    assert "checkpoint.pt" not in files and not [f for f in files if "tmp" in f]
    assert len([f for f in files if f.startswith("events.out.tfevents")]) == 1  # rank 0's TensorBoard only
    assert output.count("trained ") == 1  # rank 0's report only; the others are quiet
    meta = json.loads((run / "config.json").read_text())
    assert meta["distributed"]["world_size"] == 2 and meta["config"]["threads"] == 1
    assert (run / "vocab.tsv").read_text() == (one.run_dir / "vocab.tsv").read_text()

    two_acc, one_acc = _accuracy(run), _accuracy(one.run_dir)
    assert one_acc > 0.05, one_acc
    assert abs(two_acc - one_acc) <= 0.02, (two_acc, one_acc)


def test_one_process_in_a_group_trains_exactly_as_without(tmp_path):
    """The distributed path (shards, rounds, clock, seeds) with one process: bit-identical vectors."""
    args = [MOBY, "--epochs", "2", "--threads", "1", "--batch-words", "20000", "--sync-words", "200000", *QUIET]
    log = tmp_path / "torchrun.log"
    proc = _torchrun(1, [*args, "--distributed", "--out", str(tmp_path / "group")], log)
    plain = w2v.train([MOBY], out=str(tmp_path / "plain"), epochs=2, threads=1, batch_words=20_000,
                      progress=False, tensorboard=False, evaluate=False)
    code, output = _finish(proc, log)
    assert code == 0, output[-3000:]
    group = torch.load(tmp_path / "group" / "model.pt", weights_only=True)
    for name, tensor in plain.params.state().items():
        assert torch.equal(group[name], tensor), name
    assert not torch.distributed.is_initialized()  # a plain run never joins a group


def test_other_machines_need_neither_the_corpus_nor_the_run_folder(tmp_path):
    """Rank 0 runs elsewhere, with a corpus path and options that mean nothing there (torchrun's
    c10d rendezvous may number the machine with the corpus 1): rank 1 leads, its settings,
    vocabulary and ids reach rank 0 over the group, and rank 0 writes nothing, even to resume."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = tmp_path / "run"

    def start(rank: int, args: list[str]) -> subprocess.Popen:
        env = {**_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
               "RANK": str(rank), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "PYTHONPATH": str(ROOT)}
        log = tmp_path / f"rank{rank}.log"
        return subprocess.Popen([sys.executable, "-m", "w2v", "train", *args], cwd=ROOT if rank == 1 else elsewhere,
                                env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)

    procs = []
    try:
        procs += [start(0, ["no-such-corpus.txt", "--out", "nowhere", "--dim", "7", "--epochs", "1", *QUIET]),
                  start(1, [MOBY, "--out", str(run), "--epochs", "8", "--threads", "1", "--sync-words", "100000",
                            "--dist-timeout", "60", *QUIET])]
        _wait_for(run / "checkpoint.pt", procs[1])
        procs[1].send_signal(signal.SIGINT)  # Ctrl-C on the leader: both stop at the end of the round
        assert [p.wait(timeout=60) for p in procs] == [130, 130], (tmp_path / "rank1.log").read_text()[-3000:]
        assert (run / "checkpoint.pt").exists() and not (run / "model.pt").exists()

        procs = [start(0, ["--resume", "nowhere"]), start(1, ["--resume", str(run)])]
        assert procs[1].wait(timeout=120) == 0, (tmp_path / "rank1.log").read_text()[-3000:]
        assert procs[0].wait(timeout=60) == 0, (tmp_path / "rank0.log").read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert list(elsewhere.iterdir()) == []
    state = torch.load(run / "model.pt", weights_only=True)
    assert state["input"].shape[1] == 100 and json.loads((run / "config.json").read_text())["config"]["epochs"] == 8
    assert "trained " in (tmp_path / "rank1.log").read_text()  # the leader reports, the other is quiet
    assert (tmp_path / "rank0.log").read_text().strip() == ""


# --- stopping ------------------------------------------------------------------------------


def test_a_killed_process_stops_the_job_and_the_checkpoint_resumes(tmp_path):
    run = tmp_path / "run"
    args = [MOBY, "--out", str(run), "--epochs", "6", "--hs", "--batch-words", "20000", "--sync-words", "40000",
            "--threads", "1", "--dist-timeout", "60", *QUIET]
    log = tmp_path / "torchrun.log"
    proc = _torchrun(2, args, log)
    _wait_for(run / "checkpoint.pt", proc)
    killed = time.monotonic()
    os.kill(_worker(proc.pid, 1), signal.SIGKILL)
    code, output = _finish(proc, log, timeout=90)
    assert code != 0
    assert time.monotonic() - killed < 45, "the job took too long to notice"
    assert "lost contact with the others" in output, output[-3000:]
    assert "model.pt" not in {p.name for p in run.iterdir()}
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    assert saved["progress"]["epoch"] >= 1 and saved["distributed"]["world_size"] == 2

    log = tmp_path / "resume.log"
    code, output = _finish(_torchrun(2, ["--resume", str(run)], log), log)
    assert code == 0, output[-3000:]
    state = torch.load(run / "model.pt", weights_only=True)
    assert state["output_hs"].shape[0] == state["input"].shape[0] - 1
    assert torch.isfinite(state["input"]).all() and not (run / "checkpoint.pt").exists()
    assert json.loads((run / "config.json").read_text())["config"]["hs"] is True


def test_a_hung_process_stops_the_job_after_the_timeout(tmp_path):
    run = tmp_path / "run"
    args = [str(CORPORA / "kjv.txt.gz"), "--out", str(run), "--epochs", "3", "--threads", "1", "--dist-timeout", "3",
            *QUIET]
    log = tmp_path / "torchrun.log"
    proc = _torchrun(2, args, log)
    _wait_for(run / "config.json", proc)
    time.sleep(0.5)
    hung = _worker(proc.pid, 1)
    os.kill(hung, signal.SIGSTOP)  # alive but silent, as a machine that stopped answering
    stopped = time.monotonic()
    try:
        while "lost contact" not in log.read_text():
            assert time.monotonic() - stopped < 40, "no error 40 s after a process stopped answering"
            time.sleep(0.1)
    finally:
        os.kill(hung, signal.SIGCONT)  # so that torchrun's SIGTERM can end it
    code, output = _finish(proc, log, timeout=60)
    assert code != 0 and "Timed out" in output, output[-3000:]


def test_a_signal_to_one_process_stops_all_at_the_round_and_resumes(tmp_path):
    run = tmp_path / "run"
    args = [str(CORPORA / "kjv.txt.gz"), "--out", str(run), "--epochs", "2", "--batch-words", "10000",
            "--sync-words", "20000", "--threads", "1", "--checkpoint-every", "0", *QUIET]
    log = tmp_path / "torchrun.log"
    proc = _torchrun(2, args, log)
    _wait_for(run / "config.json", proc)  # rank 0 has prepared; training starts
    time.sleep(1.0)
    os.kill(_worker(proc.pid, 1), signal.SIGTERM)
    code, output = _finish(proc, log, timeout=90)
    assert code != 0 and "interrupted: checkpoint written to" in output, output[-3000:]
    assert output.count("interrupted:") == 1  # said once, by rank 0
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    where = saved["distributed"]
    assert where["world_size"] == 2 and saved["progress"]["words_done"] > 0

    if mid_epoch(where):  # nearly always: a checkpoint between rounds of an epoch
        refused = CliRunner().invoke(main, ["train", "--resume", str(run)], env={"WORLD_SIZE": None, "RANK": None})
        assert refused.exit_code == 2 and "2 processes" in refused.output, refused.output

    log = tmp_path / "resume.log"
    code, output = _finish(_torchrun(2, ["--resume", str(run)], log), log)
    assert code == 0, output[-3000:]
    assert (run / "model.pt").exists() and not (run / "checkpoint.pt").exists()


# --- pieces, in this process ---------------------------------------------------------------


def test_chunks_are_dealt_in_turn_and_shards_hold_their_text():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=500)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, 1000, size=int(offsets[-1])).astype(np.int32)
    bounds = chunk_bounds(offsets, 300)
    n = len(bounds) - 1
    seen = []
    for r in range(3):
        shard = distributed.deal(offsets, bounds, 3, r)
        mine = distributed.gather_ids(ids, shard)
        assert shard.chunk_ids.tolist() == list(range(r, n, 3))
        assert len(mine) == shard.offsets[-1] and len(shard.bounds) == len(shard.chunk_ids) + 1
        for j, k in enumerate(shard.chunk_ids):  # local chunk j is global chunk k, sentence for sentence
            lo, hi = bounds[k], bounds[k + 1]
            local = shard.offsets[shard.bounds[j] : shard.bounds[j + 1] + 1]
            assert np.array_equal(np.diff(local), lengths[lo:hi])
            assert np.array_equal(mine[local[0] : local[-1]], ids[offsets[lo] : offsets[hi]])
        seen += shard.chunk_ids.tolist()
    assert sorted(seen) == list(range(n))


def test_checkpoints_resume_only_where_they_fit():
    at_epoch_end = {"world_size": 4, "round": 0, "positions": [0, 0, 0, 0]}
    mid_epoch_ = {"world_size": 4, "round": 3, "positions": [31, 30, 30, 29]}
    check_resume(at_epoch_end, Progress(epoch=2), world=1, in_group=False)  # any world size, even none
    check_resume(at_epoch_end, Progress(epoch=2), world=2, in_group=True)
    with pytest.raises(UserError, match="4 processes"):
        check_resume(mid_epoch_, Progress(epoch=2, chunk=31), world=2, in_group=True)
    with pytest.raises(UserError, match="without torchrun|4 processes"):
        check_resume(mid_epoch_, Progress(epoch=2, chunk=31), world=1, in_group=False)
    with pytest.raises(UserError, match="one process"):
        check_resume(None, Progress(epoch=1, chunk=7), world=2, in_group=True)
    check_resume(None, Progress(epoch=1, chunk=7), world=1, in_group=False)


def test_distributed_flag_outside_torchrun_is_a_one_line_error(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["train", MOBY, "--out", str(tmp_path), "--distributed", *QUIET])
    assert result.exit_code == 2 and "torchrun" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not distributed.requested(TrainConfig())
