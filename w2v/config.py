"""Training settings: one dataclass, validated once, saved whole in config.json."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from w2v.errors import UserError

MODELS = ("sg", "cbow")
TOKENIZERS = ("default", "whitespace", "treebank", "toktok", "wordpunct")
BACKENDS = ("auto", "native", "torch")
PHRASE_SCORERS = ("default", "npmi")


def setting(default: Any, help: str, *, flags: str | None = None, choices: tuple[str, ...] | None = None,
            shown: str | None = None, option: bool = True) -> Any:
    """A TrainConfig field and its command-line option (w2v.cli builds `w2v train`'s options from these).

    flags: the option's spelling when not --NAME (e.g. "--progress/--quiet" for a bool);
    shown: the default as --help prints it, for defaults that depend on other settings;
    option=False: a Python-only setting.
    """
    meta = {"help": help, "flags": flags, "choices": choices, "shown": shown, "option": option}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every training setting; defaults are word2vec C's / gensim's."""

    paths: list[str] = setting([], "Corpus files or folders; empty: the default corpus.", option=False)
    out: str | None = setting(None, "Run folder for config.json, vocab.tsv, model.pt and TensorBoard logs.",
                              flags="--out/-o", shown="runs/NAME")
    name: str = setting("default", "Run name, used for the default --out.")
    overwrite: bool = setting(False, "Replace a run already in --out.", flags="--overwrite")
    model: str = setting("sg", "Skip-gram or CBOW.", choices=MODELS)
    dim: int = setting(100, "Vector dimensions.")
    window: int = setting(5, "Maximum window; each centre word draws its window from 1..WINDOW.")
    negative: int = setting(5, "Negative samples per positive (0: none, needs --hs).")
    hs: bool = setting(False, "Hierarchical softmax over a Huffman tree (with --negative 0 alone, else both).",
                       flags="--hs")
    ns_exponent: float = setting(0.75, "Noise distribution: counts to this power.")
    sample: float = setting(1e-3, "Sub-sampling threshold for frequent words (0: off).")
    min_count: int = setting(5, "Ignore words rarer than this.")
    max_vocab_size: int | None = setting(None, "Prune rare words while counting when the vocabulary grows past "
                                         "this (bounded memory).", shown="no limit")
    max_final_vocab: int | None = setting(None, "Raise the effective min count so at most this many words are kept.",
                                          shown="no limit")
    epochs: int | None = setting(None, "Passes over the corpus.", shown="enough for 100M words, 5 to 15")
    alpha: float | None = setting(None, "Initial learning rate.", shown="0.025 for sg, 0.05 for cbow")
    min_alpha: float | None = setting(None, "Final learning rate, reached linearly.", shown="alpha × 1e-4")
    threads: int | None = setting(None, "CPU threads for training.", shown="all cores")
    seed: int = setting(1, "Random seed; with --threads 1 a run is exactly reproducible.")
    tokenizer: str = setting("default", "default: lowercased word characters; whitespace: text is already "
                             "tokenized; treebank/toktok/wordpunct: nltk's tokenizers.", choices=TOKENIZERS)
    lowercase: bool = setting(True, "Lowercase the text.", flags="--lowercase/--no-lowercase")
    max_sentence_length: int = setting(10_000, "Longer lines are cut into sentences of this many tokens.")
    # Phrases (w2v/phrasing.py): gensim Phrases' settings and defaults
    phrases: int = setting(0, "Passes of phrase detection before training (word2phrase / gensim Phrases): pairs "
                           "that occur together often become one token (united_states); 2 passes give up to "
                           "4-word phrases. The table is saved in the run folder as phrases.tsv.")
    phrase_scorer: str = setting("default", "default: (count(ab) - phrase min count) * V / (count(a) count(b)), "
                                 "V: distinct words + pairs (gensim); npmi: normalised PMI in [-1, 1].",
                                 choices=PHRASE_SCORERS)
    phrase_threshold: float | None = setting(None, "A pair is a phrase when its score is above this.",
                                             shown="10 (default scorer), 0.5 (npmi)")
    phrase_min_count: int = setting(5, "Pairs seen fewer times are not phrases.")
    phrase_connectors: bool = setting(False, "English connector words (of, the, and, ...: gensim's "
                                      "ENGLISH_CONNECTOR_WORDS) may sit inside a phrase: bank_of_america.",
                                      flags="--phrase-connectors")
    max_phrase_table: int = setting(40_000_000, "Prune rare pairs while counting phrases when the table grows past "
                                    "this many (bounded memory).")
    device: str = setting("auto", "auto (cuda when available, else cpu), cpu, cuda or cuda:N.")
    backend: str = setting("auto", "auto: the C kernel on CPU, PyTorch on GPU; torch forces the PyTorch path.",
                           choices=BACKENDS)
    batch_words: int | None = setting(None, "Words per work unit (chunk) handed to a thread.",
                                      shown="100000; CBOW on the PyTorch path: batch-pairs x (2 window + 1) / window")
    batch_pairs: int | None = setting(None, "PyTorch path: (centre, context) pairs per SGD step; larger is faster "
                                      "on a GPU, but summed steps drift from sequential SGD.",
                                      shown="4096 on CPU, 131072 on GPU")
    checkpoint_every: int = setting(1, "Epochs between checkpoints (0: only when interrupted).")
    evaluate: bool = setting(True, "Print analogy accuracy and king - man + woman at the end.",
                             flags="--eval/--no-eval")
    tensorboard: bool = setting(True, "Write TensorBoard scalars to the run folder.",
                                flags="--tensorboard/--no-tensorboard")
    progress: bool = setting(True, "Show the progress bar and summaries.", flags="--progress/--quiet")
    progress_every: float | None = setting(None, "Seconds between progress lines when stderr is not a terminal "
                                           "(a log file or pipe).", shown="10, or $W2V_PROGRESS_SECONDS")
    # Several processes (w2v/distributed.py): on whenever torchrun starts more than one.
    distributed: bool = setting(False, "Train in torchrun's process group even with one process (it is used "
                                "whenever torchrun starts several: `torchrun --nproc_per_node=N -m w2v train ...`).",
                                flags="--distributed")
    sync_words: int = setting(500_000, "Under torchrun: words each process trains between exchanges of every "
                              "row's updates; frequent words' rows are exchanged 10 times as often. Lower: closer "
                              "to one process; higher: faster.")
    continue_from: str | None = setting(None, "Train the finished run in this folder further on PATHS: old words keep "
                                        "their rows, new words get new ones; written back into it unless --out "
                                        "names another folder.", flags="--continue", shown="a new run")
    continue_counts: str = setting("merged", "With --continue: counts for sub-sampling and noise: merged (old + new "
                                   "text) or new (the new text alone).", choices=("merged", "new"))
    dist_timeout: float = setting(600.0, "Under torchrun: seconds to wait for a silent process before stopping "
                                  "with an error.")

    def resolved(self) -> "TrainConfig":
        """A validated copy with the defaults that depend on other settings filled in."""
        c = TrainConfig(**asdict(self))
        c.validate()
        if c.alpha is None:
            c.alpha = 0.025 if c.model == "sg" else 0.05
        if c.min_alpha is None:
            c.min_alpha = c.alpha * 1e-4
        if c.threads is None:
            c.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            # torchrun's processes on this machine share its cores (LOCAL_WORLD_SIZE: 1 outside torchrun)
            c.threads = max(1, c.threads // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))
        if not c.paths:
            from w2v.resources import default_corpus

            c.paths = default_corpus()
        if c.out is None:
            c.out = str(Path("runs") / c.name)
        return c

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(message)

        for f in fields(self):  # settings also come from config.json files, which may hold anything
            value = getattr(self, f.name)
            need(_has_type(value, f.type), f"--{f.name.replace('_', '-')} must be {_TYPE_NAMES.get(f.type, f.type)}, "
                 f"not {value!r}"[:200])

        for name in ("alpha", "min_alpha", "sample", "ns_exponent"):  # nan and inf pass the range checks below
            value = getattr(self, name)
            need(value is None or math.isfinite(value), f"--{name.replace('_', '-')} must be a finite number, not {value}")
        for name in ("dim", "window", "negative"):  # the C kernel holds these in 32 bits
            need(getattr(self, name) < 2**31, f"--{name} {getattr(self, name)} is too large")
        need(self.model in MODELS, f"--model must be one of {', '.join(MODELS)}, not {self.model!r}")
        need(self.dim >= 1, f"--dim must be at least 1, not {self.dim}")
        need(self.window >= 1, f"--window must be at least 1, not {self.window}")
        need(self.negative >= 0, f"--negative must be 0 or more, not {self.negative}")
        # word2vec uses 5-25; thousands only make a run crawl (and buffers scale with it).
        need(self.negative <= 1000, f"--negative must be at most 1000, not {self.negative}")
        need(self.negative > 0 or self.hs, "--negative 0 needs --hs: nothing would be trained")
        need(self.sample >= 0, f"--sample must be 0 or more, not {self.sample}")
        need(self.min_count >= 1, f"--min-count must be at least 1, not {self.min_count}")
        need(self.epochs is None or self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}")
        need(self.alpha is None or self.alpha > 0, f"--alpha must be above 0, not {self.alpha}")
        need(self.min_alpha is None or self.min_alpha >= 0, f"--min-alpha must be 0 or more, not {self.min_alpha}")
        need(self.threads is None or self.threads >= 1, f"--threads must be at least 1, not {self.threads}")
        need(self.max_vocab_size is None or self.max_vocab_size >= 1, "--max-vocab-size must be at least 1")
        need(self.max_final_vocab is None or self.max_final_vocab >= 1, "--max-final-vocab must be at least 1")
        need(self.max_sentence_length >= 1, "--max-sentence-length must be at least 1")
        need(0 <= self.phrases <= 10, f"--phrases must be between 0 and 10, not {self.phrases}")
        need(self.phrase_scorer in PHRASE_SCORERS, f"--phrase-scorer must be one of {', '.join(PHRASE_SCORERS)}, "
             f"not {self.phrase_scorer!r}")
        need(self.phrase_min_count >= 1, f"--phrase-min-count must be at least 1, not {self.phrase_min_count}")
        need(self.max_phrase_table >= 1, f"--max-phrase-table must be at least 1, not {self.max_phrase_table}")
        t = self.phrase_threshold
        need(t is None or math.isfinite(t), f"--phrase-threshold must be a finite number, not {t}")
        need(t is None or self.phrase_scorer != "default" or t > 0,
             f"--phrase-threshold must be above 0 for the default scorer, not {t}")
        need(t is None or self.phrase_scorer != "npmi" or -1 <= t <= 1,
             f"--phrase-threshold must be between -1 and 1 for the npmi scorer, not {t}")
        need(self.window <= self.max_sentence_length,
             f"--window {self.window} is longer than the longest sentence ({self.max_sentence_length} tokens)")
        need(self.batch_words is None or self.batch_words >= 1, "--batch-words must be at least 1")
        need(self.batch_pairs is None or self.batch_pairs >= 1, "--batch-pairs must be at least 1")
        need(self.checkpoint_every >= 0, "--checkpoint-every must be 0 or more")
        need(self.progress_every is None or (math.isfinite(self.progress_every) and self.progress_every > 0),
             f"--progress-every must be a positive number of seconds, not {self.progress_every}")
        need(self.sync_words >= 1, f"--sync-words must be at least 1, not {self.sync_words}")
        need(self.dist_timeout > 0, f"--dist-timeout must be above 0, not {self.dist_timeout}")
        need(self.continue_counts in ("merged", "new"),
             f"--continue-counts must be merged or new, not {self.continue_counts!r}")
        need(self.backend in ("auto", "native", "torch"), f"--backend must be auto, native or torch, not {self.backend!r}")
        need(self.seed >= 0, f"--seed must be 0 or more, not {self.seed}")
        need(self.seed < 2**63, f"--seed must be below 2**63, not {self.seed}")
        need(math.isfinite(self.dist_timeout) and self.dist_timeout <= 10**7,
             f"--dist-timeout must be a number of seconds up to 10,000,000, not {self.dist_timeout}")
        need(self.epochs is None or self.epochs <= 10**6, f"--epochs must be at most 1,000,000, not {self.epochs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def options(cls) -> list[tuple[str, Any]]:
        """(name, dataclass field) of every setting that is a command-line option, in order."""
        return [(f.name, f) for f in fields(cls) if f.metadata.get("option", True)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


_TYPE_NAMES = {"int": "a whole number", "int | None": "a whole number", "float": "a number",
               "float | None": "a number", "bool": "true or false", "str": "text", "str | None": "text",
               "list[str]": "a list of paths"}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether `value` fits a field annotated `annotation` (a string: annotations are postponed)."""
    if annotation.endswith(" | None"):
        if value is None:
            return True
        annotation = annotation[: -len(" | None")]
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    if annotation == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True
