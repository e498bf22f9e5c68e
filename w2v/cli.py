"""The `w2v` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import re
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
    import warnings

    # Warnings (e.g. words with bad UTF-8 in a vectors file) as one `warning: ...` line, not Python's two.
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"


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
@click.option("--batch-pairs", type=int, default=None,
              help="PyTorch path: (centre, context) pairs per SGD step; larger is faster on a GPU, "
              "but summed steps drift from sequential SGD.  [default: 4096 on CPU, 131072 on GPU]")
@click.option("--checkpoint-every", type=int, default=1, help="Epochs between checkpoints (0: only when interrupted).")
@click.option("--eval/--no-eval", "evaluate", default=True,
              help="Print analogy accuracy and king - man + woman at the end.")
@click.option("--tensorboard/--no-tensorboard", default=True, help="Write TensorBoard scalars to the run folder.")
@click.option("--progress/--quiet", default=True, help="Show the progress bar and summaries.")
@click.option("--distributed", is_flag=True,
              help="Train in torchrun's process group even with one process (it is used whenever torchrun "
              "starts several: `torchrun --nproc_per_node=N -m w2v train ...`).")
@click.option("--sync-words", type=int, default=500_000,
              help="Under torchrun: words each process trains between exchanges of every row's updates; "
              "frequent words' rows are exchanged 10 times as often. Lower: closer to one process; higher: faster.")
@click.option("--dist-timeout", type=float, default=600.0,
              help="Under torchrun: seconds to wait for a silent process before stopping with an error.")
@user_errors
def train(paths: tuple[str, ...], resume_dir: str | None, **options: Any) -> None:
    """Train word vectors on PATHS (text files, .gz/.bz2/.xz, or folders).

    With no PATHS, trains on the default corpus committed in corpora/ (about 4.5M words of
    public-domain English). A sentence is a line; output goes to --out.
    """
    import w2v
    from w2v import distributed
    from w2v.report import final_report
    from w2v.trainer import Interrupted

    try:  # under torchrun only the leading process speaks (distributed.reporting())
        model = distributed.resume(resume_dir) if resume_dir is not None else w2v.train(list(paths), **options)
    except Interrupted as stopped:
        if distributed.reporting():
            click.echo(str(stopped), err=True)
        sys.exit(130)
    except distributed.Follow as failed:  # the leading process failed before training and says why
        sys.exit(failed.code)
    except KeyboardInterrupt:  # Ctrl-C outside the epochs, where the trainer cannot checkpoint
        if distributed.reporting():
            click.echo("interrupted while preparing or saving the run (no checkpoint is written then): "
                       "run the command again", err=True)
        sys.exit(130)
    if distributed.reporting():
        try:
            final_report(model, echo=click.echo)
        except KeyboardInterrupt:
            click.echo(f"interrupted during the report; the trained run is saved in {model.run_dir}", err=True)
            sys.exit(130)




# --- vectors commands (similar, analogy, evaluate, export) ---


_SUFFIX_FORMATS = {".txt": "text", ".vec": "text", ".bin": "binary", ".pt": "torch", ".pth": "torch", ".npy": "npy"}


def _load_vectors(path: str, which: str = "in", limit: int | None = None):
    from w2v.vectors import load

    return load(path, limit=limit, which=which)


def _echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _echo_neighbours(results: list[tuple[str, float]]) -> None:
    width = max((len(w) for w, _ in results), default=0)
    for word, score in results:
        click.echo(f"{word:<{width}}  {score:.4f}")


def _parse_expression(terms: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """`king - man + woman` (or `king -man +woman`) -> positive [king, woman], negative [man]."""
    positive: list[str] = []
    negative: list[str] = []
    sign: str | None = "+"  # the first term is positive
    for token in " ".join(terms).split():
        if token in ("+", "-"):
            if sign is not None:
                raise UserError(f"expected a word before {token!r} in {' '.join(terms)!r}")
            sign = token
            continue
        if token[0] in "+-" and len(token) > 1 and sign is None:
            sign, token = token[0], token[1:]
        if sign is None:
            raise UserError(f"expected + or - before {token!r} in {' '.join(terms)!r}")
        (positive if sign == "+" else negative).append(token)
        sign = None
    if sign is not None:
        raise UserError(f"expression {' '.join(terms)!r} is empty or ends with an operator")
    return positive, negative


_which_option = click.option("--which", type=click.Choice(["in", "out", "sum"]), default="in", show_default=True,
                             help="For a run folder: input vectors, output vectors, or in + out.")


@main.command(context_settings={"show_default": True})
@click.argument("vectors_path", metavar="VECTORS")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "binary", "torch", "npy", "projector"]),
              default=None, help="Output format.  [default: from the -o suffix: .txt/.vec text, .bin binary, "
              ".pt torch, .npy npy]")
@click.option("--output", "-o", required=True, type=click.Path(),
              help="File to write; for npy, PATH.npy + PATH.vocab.tsv; for projector, a folder.")
@_which_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Keep only the N most frequent words.  [default: all; 10,000 for projector]")
@click.option("--normalize", is_flag=True, help="Scale every vector to unit length.")
@user_errors
def export(vectors_path: str, fmt: str | None, output: str, which: str, limit: int | None, normalize: bool) -> None:
    """Write the vectors of VECTORS (a run folder, or any file `w2v similar` reads) as -o.

    \b
    text, binary  word2vec C's formats (gensim, fastText and others read them)
    torch         {"words", "counts", "vectors"}, loads with torch.load(weights_only=True)
    npy           PATH.npy (float32 [V, d]) and PATH.vocab.tsv (word<TAB>count)
    projector     a TensorBoard folder: tensorboard --logdir PATH, Projector tab
    """
    from pathlib import Path

    from w2v.formats import PROJECTOR_LIMIT, npy_paths, save

    if fmt is None:
        fmt = _SUFFIX_FORMATS.get(Path(output).suffix)
        if fmt is None:
            raise UserError(f"cannot tell the format from {output!r}: pass --format text|binary|torch|npy|projector")
    if fmt == "projector" and limit is None:
        limit = PROJECTOR_LIMIT
    vectors = _load_vectors(vectors_path, which=which, limit=limit)
    if normalize:
        vectors = vectors.normalized()
    save(vectors, output, format=fmt)
    where = " and ".join(str(p) for p in npy_paths(output)) if fmt == "npy" else output
    click.echo(f"wrote {len(vectors):,} vectors of {vectors.dim} dims ({fmt}) to {where}")


@main.command(context_settings={"show_default": True})
@click.argument("vectors_path", metavar="VECTORS")
@click.argument("words", nargs=-1, required=True)
@click.option("-n", "--topn", type=click.IntRange(min=1), default=10, help="Number of neighbours.")
@click.option("--restrict-vocab", type=click.IntRange(min=1), default=None,
              help="Search only the N most frequent words.  [default: all]")
@_which_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@user_errors
def similar(vectors_path: str, words: tuple[str, ...], topn: int, restrict_vocab: int | None, which: str,
            as_json: bool) -> None:
    """Nearest neighbours of WORDS (their mean, if several) by cosine similarity.

    VECTORS is a run folder, a .pt bundle, a .npy (+ .vocab.tsv) or a word2vec text or
    binary file.
    """
    vectors = _load_vectors(vectors_path, which=which)
    results = vectors.most_similar(list(words), topn=topn, restrict_vocab=restrict_vocab)
    if as_json:
        _echo_json({"words": list(words), "results": [{"word": w, "similarity": s} for w, s in results]})
    else:
        _echo_neighbours(results)


class _ExpressionCommand(click.Command):
    """A command whose arguments are an arithmetic expression of words, e.g. `king -man +woman`.

    click would read `-man` as `-m an` or `-n` followed by junk, and `-he` as `-h`: terms of
    the expression get taken for options. Here only the command's own option names, spelled
    exactly, are options (anywhere on the line); every other token is a term. A token that
    looks like an option we do not have (`--man`, `-n3`) is refused, never guessed at.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags: set[str] = set()
        valued: set[str] = set()
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                names = param.opts + param.secondary_opts
                (flags if param.is_flag or param.count else valued).update(names)
        options: list[str] = []
        terms: list[str] = []
        tokens = iter(args)
        for token in tokens:
            if token == "--":  # the rest are terms, even `-n`
                terms.extend(tokens)
                break
            name = token.split("=", 1)[0] if token.startswith("--") else token
            if token in flags:
                options.append(token)
            elif token in valued:
                value = next(tokens, None)
                if value is None:
                    raise _OneLineError(f"option {token} needs a value")
                options += [token, value]
            elif name in valued and "=" in token:
                options.append(token)
            elif token.startswith("--") or re.fullmatch(r"-[a-zA-Z]\d+", token):
                raise _OneLineError(f"no such option: {token} (to subtract a word, write '- word' or '-word'; "
                                    "words after '--' are never options)")
            else:
                terms.append(token)
        # click now sees every option before `--` and the run and terms after it.
        return super().parse_args(ctx, options + ["--"] + terms)


@main.command(cls=_ExpressionCommand, context_settings={"show_default": True})
@click.argument("vectors_path", metavar="VECTORS")
@click.argument("expression", nargs=-1, required=True)
@click.option("-n", "--topn", type=click.IntRange(min=1), default=10, help="Number of answers.")
@click.option("--method", type=click.Choice(["3cosadd", "3cosmul"]), default="3cosadd",
              help="3cosadd: cos(x,b) - cos(x,a) + cos(x,c); 3cosmul: Levy and Goldberg's product form.")
@click.option("--restrict-vocab", type=click.IntRange(min=1), default=None,
              help="Search only the N most frequent words.  [default: all]")
@_which_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@user_errors
def analogy(vectors_path: str, expression: tuple[str, ...], topn: int, method: str, restrict_vocab: int | None,
            which: str, as_json: bool) -> None:
    """Words closest to an EXPRESSION of + and - terms, e.g. `king - man + woman`.

    The first term is positive; the words of the expression are never answers. VECTORS
    is anything `w2v similar` reads.

    \b
    w2v analogy runs/default king -man +woman -n 3
    w2v analogy runs/default king - man + woman --method 3cosmul
    w2v analogy runs/default -- paris -france +italy   (after --, nothing is an option)

    Options may come anywhere, spelled exactly; any other token is a term, so `-nation`
    subtracts "nation" and `-he` subtracts "he". An unknown `--word` is refused.
    """
    positive, negative = _parse_expression(expression)
    vectors = _load_vectors(vectors_path, which=which)
    if method == "3cosmul":
        results = vectors.most_similar_cosmul(positive, negative, topn=topn, restrict_vocab=restrict_vocab)
    else:
        results = vectors.most_similar(positive, negative, topn=topn, restrict_vocab=restrict_vocab)
    if as_json:
        _echo_json({"positive": positive, "negative": negative, "method": method,
                    "results": [{"word": w, "score": s} for w, s in results]})
    else:
        _echo_neighbours(results)


@main.command(context_settings={"show_default": True})
@click.argument("vectors_path", metavar="VECTORS")
@click.option("--analogies", "analogies_path", type=click.Path(dir_okay=False), default=None,
              help="Analogy questions (questions-words format).  [default: corpora/questions-words.txt]")
@click.option("--similarity", "similarity_path", type=click.Path(dir_okay=False), default=None,
              help="Word pairs with human scores.  [default: corpora/wordsim353.tsv]")
@click.option("--restrict-vocab", type=click.IntRange(min=1), default=30_000,
              help="Analogy questions and answers use only the N most frequent words, as word2vec does.")
@click.option("--case-sensitive", is_flag=True, help="Match words exactly instead of case-insensitively.")
@_which_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@user_errors
def evaluate(vectors_path: str, analogies_path: str | None, similarity_path: str | None, restrict_vocab: int,
             case_sensitive: bool, which: str, as_json: bool) -> None:
    """Analogy accuracy and word-pair similarity correlation of VECTORS.

    With neither --analogies nor --similarity, runs both on the committed sets; with one
    of them, runs only that one.
    """
    from w2v import evaluate as ev

    both = analogies_path is None and similarity_path is None
    vectors = _load_vectors(vectors_path, which=which)
    results: dict[str, Any] = {}
    if analogies_path is not None or both:
        results["analogies"] = ev.analogies(vectors, analogies_path or ev.QUESTIONS, restrict_vocab=restrict_vocab,
                                            case_insensitive=not case_sensitive)
    if similarity_path is not None or both:
        results["similarity"] = ev.similarity(vectors, similarity_path or ev.WORDSIM,
                                              case_insensitive=not case_sensitive)
    if as_json:
        _echo_json({name: r.to_dict() for name, r in results.items()})
    else:
        click.echo("\n\n".join(r.format() for r in results.values()))
