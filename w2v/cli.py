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


def _config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One click option per TrainConfig setting: its help, default, choices and spelling come from config.py."""
    from dataclasses import MISSING

    from w2v.config import TrainConfig

    types = {"int": int, "int | None": int, "float": float, "float | None": float, "str": str, "str | None": str}
    for name, f in reversed(TrainConfig.options()):
        meta = f.metadata
        flags = (meta["flags"] or f"--{name.replace('_', '-')}").split(" ")
        default = f.default if f.default is not MISSING else None
        kwargs: dict[str, Any] = {"help": meta["help"], "default": default}
        if meta["shown"]:
            kwargs["show_default"] = meta["shown"]
        if f.type == "bool":
            if "/" not in flags[0]:
                kwargs["is_flag"] = True
        elif meta["choices"]:
            kwargs["type"] = click.Choice(list(meta["choices"]))
        else:
            kwargs["type"] = types[f.type]
        decls = flags[0].split("/") if f.type != "bool" and "/" in flags[0] else flags
        command = click.option(*decls, name, **kwargs)(command)
    return command


@main.command(context_settings={"show_default": True})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the interrupted run in this folder from its last checkpoint (other options are ignored).")
@_config_options
@user_errors
def train(paths: tuple[str, ...], resume_dir: str | None, **options: Any) -> None:
    """Train word vectors on PATHS (text files, .gz/.bz2/.xz, or folders).

    With no PATHS, trains on the default corpus that ships with w2v (about 4.5M words of
    public-domain English: `python -c "import w2v.resources as r; print(r.corpora_dir())"`). A sentence is a line; output goes to --out.
    """
    from w2v.config import TrainConfig
    from w2v.errors import Interrupted, LeaderFailed
    from w2v.report import final_report
    from w2v.trainer import Trainer

    if resume_dir is not None:
        trainer = Trainer.resuming(resume_dir)
    elif options["continue_from"] is not None:
        from w2v.continuation import continued_config

        context = click.get_current_context()
        given = {k: v for k, v in options.items()
                 if context.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
        given.pop("continue_from")
        trainer = Trainer(continued_config(options["continue_from"], list(paths), given))
    else:
        trainer = Trainer(TrainConfig(paths=list(paths), **options))
    try:  # in a torchrun group only the leading process speaks (trainer.reports)
        run = trainer.run()
    except Interrupted as stopped:
        if trainer.reports:
            click.echo(str(stopped), err=True)
        sys.exit(130)
    except LeaderFailed as failed:  # the leading process failed before training and says why
        sys.exit(failed.code)
    except KeyboardInterrupt:  # Ctrl-C outside the epochs, where the trainer cannot checkpoint
        if trainer.reports:
            click.echo("interrupted while preparing or saving the run (no checkpoint is written then): "
                       "run the command again", err=True)
        sys.exit(130)
    if trainer.reports:
        try:
            figures = final_report(run, echo=click.echo)
            scores = {k: figures[k] for k in ("analogy", "analogy_attempted", "wordsim") if k in figures}
            if scores:
                run.folder.update_meta(evaluation=scores)  # for `w2v info`
                if run.config.tensorboard:
                    _evaluation_to_tensorboard(run, scores)
        except KeyboardInterrupt:
            click.echo(f"interrupted during the report; the trained run is saved in {run.run_dir}", err=True)
            sys.exit(130)


def _evaluation_to_tensorboard(run: Any, scores: dict[str, float]) -> None:
    """The end-of-training scores as TensorBoard scalars beside the training curves (step: epochs)."""
    import contextlib

    try:
        from torch.utils.tensorboard import SummaryWriter

        with contextlib.closing(SummaryWriter(log_dir=str(run.run_dir))) as writer:
            for tag, key in (("eval/analogies", "analogy"), ("eval/wordsim353", "wordsim")):
                if scores.get(key) is not None:
                    writer.add_scalar(tag, scores[key], run.config.epochs)
    except OSError as e:  # a full or read-only disk: the run itself is saved
        click.echo(f"warning: evaluation not written to TensorBoard: {e.strerror or e}", err=True)


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print config.json's record as JSON for scripts.")
@user_errors
def info(run_dir: str, as_json: bool) -> None:
    """What a run folder holds: status, settings, corpus, vocabulary, speed and evaluation scores."""
    from w2v.runfolder import RunFolder

    folder = RunFolder(run_dir)
    if not folder.path.is_dir() or not (folder.is_run() or folder.held()):
        raise UserError(f"{run_dir} is not a training run folder (no vocab.tsv or config.json)")
    meta = folder.read_meta()
    if as_json:
        _echo_json({"status": folder.status(), **meta})
        return
    c, corpus = meta["config"], meta["corpus"]
    objective = " + ".join(n for n, on in ((f"negative sampling ({c.get('negative')})", c.get("negative")),
                                             ("hierarchical softmax", c.get("hs"))) if on)
    lines = [f"run:        {folder.path} ({folder.status()})",
             f"model:      {c.get('model')}, {c.get('dim')} dims, window {c.get('window')}, {objective}, "
             f"sample {c.get('sample')}, min count {c.get('min_count')}",
             f"training:   {c.get('epochs')} epochs, alpha {c.get('alpha')} -> {c.get('min_alpha')}, "
             f"{c.get('threads')} threads, seed {c.get('seed')}, device {meta.get('device')}",
             f"corpus:     {len(corpus.get('files', []))} file(s), {corpus.get('raw_tokens', 0):,} tokens "
             f"({corpus.get('tokens', 0):,} trained per epoch), tokenizer {c.get('tokenizer')}"
             f"{', lowercased' if c.get('lowercase') else ''}",
             f"vocabulary: {corpus.get('vocab', 0):,} words"]
    stats = meta.get("stats")
    if stats:
        lines.append(f"speed:      {stats.get('train_seconds', 0):.1f} s training, "
                     f"{(stats.get('words_per_second') or 0) / 1e3:,.0f}k words/s, "
                     f"mean loss {stats.get('mean_loss') or float('nan'):.4f}")
    scores = meta.get("evaluation")
    if scores:
        analogy, wordsim = scores.get("analogy"), scores.get("wordsim")
        lines.append("evaluation: " + ", ".join(
            part for part in ((f"analogies {analogy:.1%} of {scores.get('analogy_attempted', 0):,} questions"
                               if analogy is not None else ""),
                              (f"WordSim-353 Spearman {wordsim:.3f}" if wordsim is not None else "")) if part))
    for n, stage in enumerate(meta.get("history") or [], 1):
        lines.append(f"stage {n}:    {len(stage.get('files') or [])} file(s), vocabulary {stage.get('vocab_before'):,} "
                     f"-> {stage.get('vocab_after'):,} words, {stage.get('time') or 'time not recorded'}")
    versions = meta.get("versions") or {}
    lines.append("versions:   " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    click.echo("\n".join(lines))

@main.command(context_settings={"show_default": True})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The phrase table to write (phrase, count, score per line); with --apply, the text with "
              "phrases joined.")
@click.option("--apply", "table_path", type=click.Path(), default=None,
              help="Join the phrases of this saved table (a phrases.tsv) in PATHS instead of learning phrases.")
@click.option("--text", "text_out", type=click.Path(dir_okay=False), default=None,
              help="Also write PATHS with the learned phrases joined, a sentence a line.")
@click.option("--passes", type=int, default=1, help="Passes; 2 gives up to 4-word phrases.")
@click.option("--scorer", type=click.Choice(["default", "npmi"]), default="default",
              help="default: (count(ab) - min count) * V / (count(a) count(b)) as gensim; npmi: in [-1, 1].")
@click.option("--threshold", type=float, default=None, show_default="10 (default scorer), 0.5 (npmi)",
              help="A pair is a phrase when its score is above this.")
@click.option("--min-count", type=int, default=5, help="Pairs seen fewer times are not phrases.")
@click.option("--connectors", is_flag=True,
              help="English connector words (of, the, and, ...) may sit inside a phrase: bank_of_america.")
@click.option("--max-table", type=int, default=40_000_000,
              help="Prune rare pairs while counting when the table grows past this many (bounded memory).")
@click.option("--tokenizer", type=click.Choice(["default", "whitespace", "treebank", "toktok", "wordpunct"]),
              default="default", help="As for `w2v train`.")
@click.option("--lowercase/--no-lowercase", default=True, help="Lowercase the text.")
@click.option("--top", type=click.IntRange(min=0), default=20, help="Print this many of the most frequent phrases.")
@user_errors
def phrases(paths: tuple[str, ...], output: str, table_path: str | None, text_out: str | None, passes: int,
            scorer: str, threshold: float | None, min_count: int, connectors: bool, max_table: int, tokenizer: str,
            lowercase: bool, top: int) -> None:
    """Learn phrases (united_states) from PATHS and write the table to -o; or, with --apply, join a table's phrases.

    The same phrases as gensim's Phrases for the same settings. With no PATHS, the default
    corpus. `w2v train --phrases N` does this before training.
    """
    import time

    import w2v
    from w2v.phrasing import ENGLISH_CONNECTOR_WORDS, PhraseTable

    started = time.perf_counter()
    if table_path is not None:
        table = PhraseTable.load(table_path)
        if not paths:
            raise UserError("--apply needs the PATHS of the text to join phrases in")
        tokens = table.apply_files(list(paths), output, tokenizer=tokenizer, lowercase=lowercase)
        click.echo(f"joined the {len(table):,} phrases of {table_path} in {', '.join(paths)}: {tokens:,} tokens "
                   f"written to {output} in {time.perf_counter() - started:.1f} s")
        return
    table = w2v.phrases(list(paths), output, text_out=text_out, tokenizer=tokenizer, lowercase=lowercase,
                        passes=passes, min_count=min_count, threshold=threshold, scorer=scorer,
                        connectors=ENGLISH_CONNECTOR_WORDS if connectors else (), max_table=max_table)
    click.echo(f"{len(table):,} phrases in {time.perf_counter() - started:.1f} s; table written to {output}"
               + (f", text with phrases joined to {text_out}" if text_out else ""))
    rows = table.top(top)
    width = max((len(p.text) for p in rows), default=0)
    for p in rows:
        click.echo(f"{p.text:<{width}}  {p.count:>8,}  {p.score:10.3f}")


# --- vectors commands (similar, analogy, evaluate, export) ---


_SUFFIX_FORMATS = {".txt": "text", ".vec": "text", ".bin": "binary", ".pt": "torch", ".pth": "torch", ".npy": "npy"}


def _load_vectors(path: str, which: str = "in", limit: int | None = None):
    from w2v.vectors import load

    return load(path, limit=limit, which=which)


def _echo_json(data: Any) -> None:
    """JSON that every parser reads: a missing or undefined figure (nan, inf) is null, never bare NaN."""
    import json
    import math

    def finite(x: Any) -> Any:
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [finite(v) for v in x]
        return x

    click.echo(json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False))


def _interruptible(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Ctrl-C exits 130 with one line saying what was interrupted, as training does, not a traceback."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                click.echo(f"interrupted: {what}", err=True)
                sys.exit(130)

        return wrapper

    return decorate


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
              help="File to write; for npy, PATH.npy + PATH.vocab.tsv; for projector, a folder. A symlink's "
              "target is replaced (the link stays); /dev/stdout, /dev/null and FIFOs are written through.")
@_which_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Keep only the N most frequent words.  [default: all; 10,000 for projector]")
@click.option("--normalize", is_flag=True, help="Scale every vector to unit length.")
@user_errors
@_interruptible("nothing was written; a file that was at the output path is kept")
def export(vectors_path: str, fmt: str | None, output: str, which: str, limit: int | None, normalize: bool) -> None:
    """Write the vectors of VECTORS (a run folder, or any file `w2v similar` reads) as -o.

    \b
    text, binary  word2vec C's formats (gensim, fastText and others read them)
    torch         {"words", "counts", "vectors", "tokenizer", "lowercase"}, loads with torch.load(weights_only=True)
    npy           PATH.npy (float32 [V, d]) and PATH.vocab.tsv (word<TAB>count)
    projector     a TensorBoard folder: tensorboard --logdir PATH, Projector tab
    """
    from pathlib import Path

    from w2v.fileio import writes_through
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
    # `-o /dev/stdout | ...`: the summary must not land in the vectors.
    click.echo(f"wrote {len(vectors):,} vectors of {vectors.dim} dims ({fmt}) to {where}", err=writes_through(output))


@main.command(context_settings={"show_default": True})
@click.argument("vectors_path", metavar="VECTORS")
@click.argument("words", nargs=-1, required=True)
@click.option("-n", "--topn", type=click.IntRange(min=1), default=10, help="Number of neighbours.")
@click.option("--restrict-vocab", type=click.IntRange(min=1), default=None,
              help="Search only the N most frequent words.  [default: all]")
@_which_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@user_errors
@_interruptible("no neighbours were computed")
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
@_interruptible("no answers were computed")
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
              help="Analogy questions (questions-words format).  [default: the Google analogy set shipped with w2v, questions-words.txt]")
@click.option("--similarity", "similarity_path", type=click.Path(dir_okay=False), default=None,
              help="Word pairs with human scores.  [default: WordSim-353 shipped with w2v, wordsim353.tsv]")
@click.option("--restrict-vocab", type=click.IntRange(min=1), default=30_000,
              help="Analogy questions and answers use only the N most frequent words, as word2vec does.")
@click.option("--case-sensitive", is_flag=True, help="Match words exactly instead of case-insensitively.")
@_which_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@user_errors
@_interruptible("the evaluation did not finish")
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
