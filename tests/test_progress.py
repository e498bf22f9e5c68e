"""Progress: a bar that fits the terminal (checked in a pty), log lines in a pipe, TensorBoard failures."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# Drives a Monitor as the trainer does: a first update before any pair is scored, then
# updates with a growing loss count, an epoch summary, a forced update and close().
CHILD = r"""
import sys, time
import w2v.monitor as mon
from w2v.monitor import Monitor
mon._SAMPLE_SECONDS = 0.01
tb = sys.argv[1] == "tb"
if sys.argv[2:3] == ["enospc"]:  # the disk fills up after a few events, in TensorBoard's writer thread
    import errno
    from tensorboard.summary.writer import record_writer
    write, written = record_writer.RecordWriter.write, []
    def full(self, data):
        written.append(data)
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)
    record_writer.RecordWriter.write = full
m = Monitor(2_000_000, sys.argv[3] if len(sys.argv) > 3 else "unused", progress=True, tensorboard=tb,
            every=0.05 if not tb else None)
m.update(0, 0.0, 0.0, 0.025)
for i in range(1, 41):
    time.sleep(0.02)
    m.update(i * 50_000, i * 100.0, i * 300.0, 0.025 * (1 - i / 40))
    if i == 20:
        m.echo("epoch 1/2: loss 0.3333  500k words/s  1.0 s")
        m.scalar("epoch/loss", 0.3333, 1)
m.update(2_000_000, 4000.0, 12000.0, 0.0000025, force=True)
m.echo("epoch 2/2: loss 0.3333  500k words/s  1.0 s")
m.scalars({"eval/analogies": 0.1, "eval/wordsim": 0.3}, 1)
m.close()
print("done", file=sys.stderr)
"""


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return e


def in_pty(columns: int, *args: str) -> str:
    """Run CHILD with stdout and stderr on a terminal `columns` wide; what it wrote."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing of pytest's may run here
        os.execve(sys.executable, [sys.executable, "-c", CHILD, *args], env())
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out.decode()


def frames(output: str) -> list[str]:
    """What the screen shows line by line: every redraw (\r + erase to the end) is a frame."""
    text = output.replace("\r\n", "\n").replace("\x1b[K", "")
    return [f for line in text.split("\n") for f in line.split("\r")]


@pytest.mark.parametrize("columns", [80, 50, 132])
def test_terminal_bar_fits_and_redraws_in_place(columns: int) -> None:
    out = in_pty(columns, "no-tb")
    shown = frames(out)
    bars = [f for f in shown if f.startswith("training")]
    assert len(bars) > 10 and "\r\x1b[K" in out  # redrawn in place, not one line per update
    assert max(len(f) for f in shown) < columns, max(shown, key=len)  # never wraps
    assert all("nan" not in f and "lr 0.000000" not in f for f in shown)
    assert "[" in bars[-1] and "100%" in bars[-1]
    if columns >= 80:  # everything fits in 80 columns
        assert any("words/s" in f and "loss 0.3333" in f and "lr 0.0" in f for f in bars)
    # What stays on the screen: the epoch summaries, each on a line of its own; no bar, no blank line.
    stays = [line.split("\r")[-1] for line in out.replace("\x1b[K", "").split("\r\n")]
    assert stays == ["epoch 1/2: loss 0.3333  500k words/s  1.0 s", "epoch 2/2: loss 0.3333  500k words/s  1.0 s",
                     "done", ""]


def test_log_lines_in_a_pipe() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, "no-tb"], env=env(), capture_output=True, text=True,
                            check=True)
    lines = result.stderr.splitlines()
    assert "\r" not in result.stderr and "\x1b" not in result.stderr and "" not in lines  # no blank lines
    progress = [line for line in lines if line.startswith("training")]
    assert len(progress) >= 3
    pattern = r"training +\d+%  [\d,]+k words/s  loss \d\.\d{4}  lr (\d\.\d{6}|\d\.\d\de-\d\d)  ETA \d+:\d\d:\d\d"
    assert all(re.fullmatch(pattern, line) for line in progress), progress
    assert "epoch 1/2: loss 0.3333  500k words/s  1.0 s" in lines and lines[-1] == "done"


def test_log_interval_defaults_to_10_seconds_and_follows_the_environment(monkeypatch) -> None:
    from io import StringIO

    from w2v.monitor import Monitor

    monkeypatch.delenv("W2V_PROGRESS_SECONDS", raising=False)
    assert Monitor(100, Path("."), progress=True, tensorboard=False, stream=StringIO()).every == 10
    monkeypatch.setenv("W2V_PROGRESS_SECONDS", "2.5")
    assert Monitor(100, Path("."), progress=True, tensorboard=False, stream=StringIO()).every == 2.5
    assert Monitor(100, Path("."), True, False, every=1, stream=StringIO()).every == 1


def test_no_loss_before_the_first_scored_pair() -> None:
    from io import StringIO

    from w2v.monitor import Monitor

    out = StringIO()
    m = Monitor(1000, Path("."), progress=True, tensorboard=False, every=0, stream=out)
    m.update(0, 0.0, 0.0, 0.025)
    m.update(10, 0.0, 0.0, 0.025, force=True)  # words done, no pair scored yet
    m.close()
    assert "nan" not in out.getvalue() and "loss" not in out.getvalue() and "lr " not in out.getvalue()


def test_tensorboard_disk_full_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, "tb", "enospc", str(tmp_path)], env=env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "TensorBoard" in line]
    assert warnings == ["warning: TensorBoard logging stopped: No space left on device; training continues"]
    assert result.stderr.splitlines()[-1] == "done"


def test_tensorboard_folder_not_writable_warns_once(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run folder should be")
    result = subprocess.run([sys.executable, "-c", CHILD, "tb", "-", str(blocker / "run")], env=env(),
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "TensorBoard" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: TensorBoard logging stopped: ")


def test_scalars_reach_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    subprocess.run([sys.executable, "-c", CHILD, "tb", "-", str(tmp_path)], env=env(), check=True,
                   capture_output=True)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/words_per_sec", "epoch/loss", "eval/analogies",
            "eval/wordsim"} <= tags
    assert all(e.value == e.value for e in events.Scalars("train/loss"))  # no nan written
