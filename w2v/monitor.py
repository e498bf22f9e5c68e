"""Watching training: progress with words/s, loss, learning rate and ETA; TensorBoard scalars.

In a terminal the progress is one bar, redrawn in place and fitted to the terminal's
width. In a pipe or a log file (stderr not a terminal) it is one line every
W2V_PROGRESS_SECONDS seconds (10 by default; Monitor's `every` argument overrides it).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

PROGRESS_SECONDS = 10.0
ENV_PROGRESS_SECONDS = "W2V_PROGRESS_SECONDS"
_SAMPLE_SECONDS = 0.5  # how often rates are measured, TensorBoard written and the bar redrawn
_CLEAR_LINE = "\r\x1b[K"


def progress_seconds() -> float:
    """Seconds between progress lines in logs: W2V_PROGRESS_SECONDS, else 10."""
    raw = os.environ.get(ENV_PROGRESS_SECONDS)
    if raw is None:
        return PROGRESS_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        print(f"warning: {ENV_PROGRESS_SECONDS}={raw!r} is not a positive number of seconds; using "
              f"{PROGRESS_SECONDS:g}", file=sys.stderr)
        return PROGRESS_SECONDS
    return value


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Monitor:
    """Reports progress of `total` words; call `update(done, loss_sum, loss_count, alpha)` often.

    progress: show progress and `echo` lines (on stderr); tensorboard: write scalars to
    `run_dir`. every: seconds between progress lines when stderr is not a terminal
    (default: W2V_PROGRESS_SECONDS, else 10). A TensorBoard write that fails (disk
    full, read-only folder) prints one warning and ends TensorBoard logging; training
    goes on.
    """

    def __init__(self, total: int, run_dir: Path, progress: bool, tensorboard: bool, label: str = "training",
                 every: float | None = None, stream: IO[str] | None = None) -> None:
        self.total, self.label, self.quiet = max(int(total), 1), label, not progress
        self.stream = stream if stream is not None else sys.stderr
        self.tty = progress and _isatty(self.stream)
        self.every = every if every is not None else (progress_seconds() if progress and not self.tty else 0.0)
        self.start = time.perf_counter()
        self.done, self.alpha = 0, None
        self.rate: float | None = None
        self.loss: float | None = None  # None until a pair has been scored: never shown as nan
        self._first: tuple[float, int] | None = None  # (time, words) of the first update, for the ETA
        self._sample = (self.start, 0, 0.0, 0.0)  # (time, words, loss sum, loss count) at the last sample
        self._line = (self.start, 0, 0.0, 0.0)  # the same at the last log line
        self._bar_shown = False
        self.writer: Any = None
        self._hook: Any = None
        if tensorboard:
            self._open_tensorboard(run_dir)
        if self.tty:
            self._draw()

    # --- the trainer's interface -----------------------------------------------------------

    def update(self, done: int, loss_sum: float, loss_count: float, alpha: float, force: bool = False) -> None:
        """Words done so far, the running loss sum and count, and the current learning rate."""
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, done)
            self._sample = self._line = (now, done, loss_sum, loss_count)
        elif not force and now - self._sample[0] < _SAMPLE_SECONDS:
            return
        rate, loss = self._since(self._sample, now, done, loss_sum, loss_count)
        self.rate = rate if rate is not None else self.rate
        self.loss = loss if loss is not None else self.loss
        self.done, self.alpha = done, alpha
        if done > self._sample[1] and self.loss is not None:
            self.scalars({"train/loss": self.loss, "train/learning_rate": alpha,
                          "train/words_per_sec": self.rate or 0.0}, done)
        self._sample = (now, done, loss_sum, loss_count)
        if self.tty:
            self._draw()
        elif not self.quiet and now - self._line[0] >= self.every:
            rate, loss = self._since(self._line, now, done, loss_sum, loss_count)
            self._line = (now, done, loss_sum, loss_count)
            self._write(self._status(rate, loss if loss is not None else self.loss) + "\n")

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One TensorBoard scalar (nothing without TensorBoard)."""
        self.scalars({tag: value}, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Several TensorBoard scalars at one step, e.g. evaluation results after training."""
        if self.writer is None:
            return
        try:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
        except OSError as e:
            self._tensorboard_failed(e)

    def echo(self, message: str) -> None:
        """A line that stays (epoch summaries), printed above the bar; nothing when quiet."""
        if not self.quiet:
            self._print(message)

    def close(self) -> None:
        """Clear the bar and close TensorBoard's files."""
        if self._bar_shown:
            self._write(_CLEAR_LINE)
            self._bar_shown = False
        self.tty = False
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except OSError as e:
                self._tensorboard_failed(e)
        self._restore_hook()

    # --- drawing -----------------------------------------------------------------------------

    def _since(self, then: tuple[float, int, float, float], now: float, done: int, loss_sum: float,
               loss_count: float) -> tuple[float | None, float | None]:
        """Words/s and mean loss since `then`; None for what cannot be known yet."""
        t, d, s, c = then
        rate = (done - d) / (now - t) if now > t and done > d else None
        loss = (loss_sum - s) / (loss_count - c) if loss_count > c else None
        return rate, loss

    def _eta(self) -> str:
        if self._first is None or self.done <= self._first[1]:
            return "ETA -:--:--"
        t0, d0 = self._first
        rate = (self.done - d0) / max(time.perf_counter() - t0, 1e-9)
        return f"ETA {_clock((self.total - self.done) / rate)}"

    def _fields(self, rate: float | None, loss: float | None) -> list[str]:
        """words/s, loss and lr, each only once known, most important first."""
        fields = []
        if rate is not None:
            fields.append(f"{rate / 1e3:,.0f}k words/s")
        if loss is not None:
            fields.append(f"loss {loss:.4f}")
        if self.alpha is not None and loss is not None:  # the lr before the first scored pair is noise
            # Near the end of the decay six decimals would read 0.000000: switch to exponent form.
            fields.append(f"lr {self.alpha:.6f}" if self.alpha >= 1e-4 else f"lr {self.alpha:.2e}")
        return fields

    def _percent(self) -> str:
        return f"{min(100.0, 100.0 * self.done / self.total):3.0f}%"

    def _status(self, rate: float | None, loss: float | None) -> str:
        return "  ".join([self.label, self._percent(), *self._fields(rate, loss), self._eta()])

    def _draw(self) -> None:
        """Redraw the bar in place, one column short of the width so the line never wraps.

        Fields keep fixed widths (blank until known) so the bar does not jump as numbers
        change; a narrow terminal drops lr, then loss, then words/s, then the bar.
        """
        width = _columns(self.stream) - 1
        eta = self._eta().removeprefix("ETA ")  # click's layout: the time right after the percent
        known = self._fields(self.rate, self.loss)
        fields = [f.rjust(n) for f, n in zip(known + [""] * 3, (14, 11, 11))]
        while True:
            text = "  ".join([self._percent(), eta.rjust(7), *fields])
            bar = min(width - len(self.label) - len(text) - 6, 40)  # two gaps and the brackets
            if bar >= 10 or not fields:
                break
            fields = fields[:-1]
        line = f"{self.label}  {text}"
        if bar >= 10:
            filled = int(bar * min(self.done / self.total, 1.0))
            line = f"{self.label}  [{'#' * filled}{'-' * (bar - filled)}]  {text}"
        self._write(_CLEAR_LINE + line.rstrip()[:width])
        self._bar_shown = True

    def _print(self, message: str) -> None:
        """A whole line above the bar (the bar is redrawn below it)."""
        if self._bar_shown:
            self._write(_CLEAR_LINE + message + "\n")
            self._draw()
        else:
            self._write(message + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone (a dead pipe): progress is not worth a crash
            self.quiet, self.tty = True, False

    # --- TensorBoard -------------------------------------------------------------------------

    def _open_tensorboard(self, run_dir: Path) -> None:
        # The writer writes in a thread of its own; a failed write there (disk full) ends that
        # thread with a traceback on stderr, through the middle of the bar, and raises again
        # at our next add_scalar, where we report it once. So keep that thread quiet.
        previous = threading.excepthook

        def hook(args: Any) -> None:
            if not (issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
                previous(args)

        self._hook = (hook, previous)
        threading.excepthook = hook
        try:
            from torch.utils.tensorboard import SummaryWriter  # slow to import; only when wanted

            self.writer = SummaryWriter(log_dir=str(run_dir))
        except OSError as e:
            self._tensorboard_failed(e)

    def _restore_hook(self) -> None:
        if self._hook is not None and threading.excepthook is self._hook[0]:
            threading.excepthook = self._hook[1]
        self._hook = None

    def _tensorboard_failed(self, error: OSError) -> None:
        """Warn once, on one line, and write no more TensorBoard events."""
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # the same failure again; already reported below
                pass
        what = error.strerror or str(error) or type(error).__name__
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        self._print(f"warning: TensorBoard logging stopped: {what}{where}; training continues")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: IO[str]) -> int:
    """The terminal's width: $COLUMNS, else the size of `stream`'s terminal, else 80."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    try:
        return max(os.get_terminal_size(stream.fileno()).columns, 20)
    except (AttributeError, OSError, ValueError):
        return max(shutil.get_terminal_size().columns, 20)
