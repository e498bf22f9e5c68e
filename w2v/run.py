"""A trained run in memory: what `w2v.train` returns."""

from __future__ import annotations

from typing import Any

from w2v.config import TrainConfig
from w2v.dictionary import Dictionary
from w2v.parameters import Parameters
from w2v.runfolder import RunFolder, select_vectors
from w2v.vectors import Vectors


class Run:
    """The settings, vocabulary and parameters of a finished run, tied to its folder.

    `stats` holds the timings and losses: prepare_seconds, train_seconds,
    words_per_second, mean_loss, epoch_losses.
    """

    def __init__(self, config: TrainConfig, dictionary: Dictionary, params: Parameters, folder: RunFolder,
                 stats: dict[str, Any]) -> None:
        self.config, self.dictionary, self.params, self.folder, self.stats = config, dictionary, params, folder, stats

    @property
    def run_dir(self):
        return self.folder.path

    def vectors(self, which: str = "in") -> Vectors:
        """The word vectors (which: in, out or sum = in + out), with the run's tokenizer and lowercasing."""
        matrix = select_vectors(which, self.params.input, self.params.output, str(self.folder.path))
        return Vectors(self.dictionary.words, matrix, self.dictionary.counts, *self.folder.tokenization())
