"""Watching training: a progress bar with words/s, loss, learning rate and ETA; TensorBoard scalars."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


class Monitor:
    """Reports progress of `total` words; call `update(done, loss_sum, loss_count, alpha)` often."""

    def __init__(self, total: int, run_dir: Path, progress: bool, tensorboard: bool, label: str = "training") -> None:
        self.total, self.start, self.quiet = total, time.perf_counter(), not progress
        self.last_time, self.last_done = self.start, 0
        self.last_loss, self.last_count = 0.0, 0.0
        self.shown_done = 0
        self.rate, self.loss, self.alpha = 0.0, float("nan"), 0.0
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # import is slow; only when wanted

            self.writer = SummaryWriter(log_dir=str(run_dir))
        self.bar = None
        if progress:
            self.bar = click.progressbar(
                length=total, label=label, show_eta=True, show_percent=True, width=24,
                item_show_func=lambda _: self._status(), file=sys.stderr,
            )
            self.bar.__enter__()

    def _status(self) -> str:
        return f"{self.rate / 1e3:,.0f}k words/s  loss {self.loss:.4f}  lr {self.alpha:.6f}"

    def update(self, done: int, loss_sum: float, loss_count: float, alpha: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_time < 0.5:
            return
        if now > self.last_time and done > self.last_done:
            self.rate = (done - self.last_done) / (now - self.last_time)
        if loss_count > self.last_count:
            self.loss = (loss_sum - self.last_loss) / (loss_count - self.last_count)
        self.alpha = alpha
        if self.writer is not None and done > self.last_done:
            self.writer.add_scalar("train/loss", self.loss, done)
            self.writer.add_scalar("train/learning_rate", alpha, done)
            self.writer.add_scalar("train/words_per_sec", self.rate, done)
        self.last_time, self.last_done, self.last_loss, self.last_count = now, done, loss_sum, loss_count
        if self.bar is not None and done > self.shown_done:
            self.bar.update(done - self.shown_done)
            self.shown_done = done

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def echo(self, message: str) -> None:
        """A line that stays (epoch summaries), printed below the bar; nothing when quiet."""
        if self.quiet:
            return
        if self.bar is not None and not self.bar.hidden:
            click.echo("", err=True)
        click.echo(message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
