"""The `w2v` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from w2v.errors import UserError


class _OneLineError(click.ClickException):
    """Printed as `Error: ...` on one line; exit 2 is click's code for a user error."""

    exit_code = 2


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our UserError into a one-line error with exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise _OneLineError(str(e)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="w2v", message="w2v %(version)s")
def main() -> None:
    """Train word2vec vectors (skip-gram, CBOW) and use them."""


# --- training commands (train) ---


@main.command(context_settings={"show_default": True})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Run folder for config.json, vocab.tsv, model.pt and TensorBoard logs.  [default: runs/NAME]")
@click.option("--name", default="default", help="Run name, used for the default --out.")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the interrupted run in this folder from its last checkpoint (other options are ignored).")
@click.option("--model", type=click.Choice(["sg", "cbow"]), default="sg", help="Skip-gram or CBOW.")
@click.option("--dim", type=int, default=100, help="Vector dimensions.")
@click.option("--window", type=int, default=5, help="Maximum window; each centre word draws its window from 1..WINDOW.")
@click.option("--negative", type=int, default=5, help="Negative samples per positive (0: none, needs --hs).")
@click.option("--hs", is_flag=True, help="Hierarchical softmax over a Huffman tree (with --negative 0 alone, else both).")
@click.option("--ns-exponent", type=float, default=0.75, help="Noise distribution: counts to this power.")
@click.option("--sample", type=float, default=1e-3, help="Sub-sampling threshold for frequent words (0: off).")
@click.option("--min-count", type=int, default=5, help="Ignore words rarer than this.")
@click.option("--max-vocab-size", type=int, default=None,
              help="Prune rare words while counting when the vocabulary grows past this (bounded memory).  [default: no limit]")
@click.option("--max-final-vocab", type=int, default=None,
              help="Raise the effective min count so at most this many words are kept.  [default: no limit]")
@click.option("--epochs", type=int, default=5, help="Passes over the corpus.")
@click.option("--alpha", type=float, default=None, help="Initial learning rate.  [default: 0.025 for sg, 0.05 for cbow]")
@click.option("--min-alpha", type=float, default=None, help="Final learning rate, reached linearly.  [default: alpha × 1e-4]")
@click.option("--threads", type=int, default=None, help="CPU threads for training.  [default: all cores]")
@click.option("--seed", type=int, default=1, help="Random seed; with --threads 1 a run is exactly reproducible.")
@click.option("--tokenizer", type=click.Choice(["default", "whitespace", "treebank", "toktok", "wordpunct"]),
              default="default", help="default: lowercased word characters; whitespace: text is already tokenized; "
              "treebank/toktok/wordpunct: nltk's tokenizers.")
@click.option("--lowercase/--no-lowercase", default=True, help="Lowercase the text.")
@click.option("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda or cuda:N.")
@click.option("--backend", type=click.Choice(["auto", "native", "torch"]), default="auto",
              help="auto: the C kernel on CPU, PyTorch on GPU; torch forces the PyTorch path.")
@click.option("--batch-words", type=int, default=100_000, help="Words per work unit handed to a thread.")
@click.option("--checkpoint-every", type=int, default=1, help="Epochs between checkpoints (0: only when interrupted).")
@click.option("--eval/--no-eval", "evaluate", default=True,
              help="Print analogy accuracy and king - man + woman at the end.")
@click.option("--tensorboard/--no-tensorboard", default=True, help="Write TensorBoard scalars to the run folder.")
@click.option("--progress/--quiet", default=True, help="Show the progress bar and summaries.")
@user_errors
def train(paths: tuple[str, ...], resume_dir: str | None, **options: Any) -> None:
    """Train word vectors on PATHS (text files, .gz/.bz2/.xz, or folders).

    With no PATHS, trains on the default corpus committed in corpora/ (about 4.5M words of
    public-domain English). A sentence is a line; output goes to --out.
    """
    import w2v
    from w2v.report import final_report
    from w2v.trainer import Interrupted

    try:
        model = w2v.resume(resume_dir) if resume_dir is not None else w2v.train(list(paths), **options)
    except Interrupted as stopped:
        click.echo(str(stopped), err=True)
        sys.exit(130)
    final_report(model, echo=click.echo)




# --- vectors commands (similar, analogy, evaluate, export) ---
