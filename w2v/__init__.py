"""w2v: word2vec (skip-gram and CBOW) trained with PyTorch.

    import w2v
    model = w2v.train(["my_corpus.txt.gz"], out="runs/mine", model="sg", epochs=5)
    vectors = model.vectors()            # or w2v.load("runs/mine")
    vectors.most_similar("king")
"""

from __future__ import annotations

from typing import Any, Sequence

__version__ = "0.1.0"


def train(paths: Sequence[str] | None = None, sentences: Any = None, **options: Any):
    """Train word vectors on text files or folders (the default corpus when none is given),
    or on `sentences`: any re-iterable of token lists, as gensim takes (w2v.sentences).

    `options` are the settings of `w2v.config.TrainConfig` (model, dim, window, negative,
    hs, sample, min_count, epochs, alpha, threads, seed, out, ...); returns a `w2v.run.Run`
    whose folder holds config.json, vocab.tsv and model.pt (`run.vectors()` for the vectors).
    """
    from w2v.config import TrainConfig
    from w2v.trainer import Trainer

    if paths is not None and sentences is not None:
        from w2v.errors import UserError

        raise UserError("give paths or sentences, not both")
    if options.get("continue_from"):  # train that finished run further on `paths` (w2v.continuation)
        from w2v.continuation import continued_config

        given = {k: v for k, v in options.items() if k != "continue_from"}
        new_text = list(paths or []) or ([] if sentences is None else ["<sentences from Python>"])
        return Trainer(continued_config(options["continue_from"], new_text, given), sentences=sentences).run()
    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
        paths = [paths]  # one file or folder
    config = TrainConfig(paths=[str(p) for p in paths or []], **options)
    return Trainer(config, sentences=sentences).run()


def resume(run_dir: str, **overrides: Any):
    """Continue an interrupted run from its last checkpoint; returns a `w2v.run.Run`."""
    from w2v.trainer import Trainer

    return Trainer.resuming(run_dir, **overrides).run()


def phrases(paths: Sequence[str] | None = None, out: str | None = None, *, text_out: str | None = None,
            tokenizer: str = "default", lowercase: bool = True, max_sentence_length: int = 10_000, **options: Any):
    """Learn phrases (united_states) from text files or folders (the default corpus when none is given).

    `options` are w2v.phrasing.learn's: passes, min_count, threshold, scorer ("default" or
    "npmi"), connectors (e.g. w2v.phrasing.ENGLISH_CONNECTOR_WORDS), max_table. Saves the
    table to `out` if given, writes the text with phrases joined to `text_out` if given, and
    returns a `w2v.phrasing.PhraseTable` (`table.apply(sentences)`; `PhraseTable.load(path)`).
    """
    from w2v.corpus import Corpus
    from w2v.phrasing import learn

    if not paths:
        from w2v.resources import default_corpus

        paths = default_corpus()
    corpus = Corpus(list(paths), tokenizer=tokenizer, lowercase=lowercase, max_sentence_length=max_sentence_length)
    table = learn(corpus, text_out=text_out, **options)
    if out is not None:
        table.save(out)
    return table


def load(path: str, limit: int | None = None, **options: Any):
    """Load vectors from a run folder, our .pt / .npy exports, or word2vec text/binary files (.gz too)."""
    from w2v.vectors import load as _load

    return _load(path, limit=limit, **options)


def embedding(vectors, **options: Any):
    """An `nn.Embedding` over `vectors` with padding and unknown rows, tokenizing text as training
    did; `vocabulary=` builds it over a task's own words: see w2v.pretrained.embedding."""
    from w2v.pretrained import embedding as _embedding

    return _embedding(vectors, **options)


def load_embedding(path: str):
    """An embedding saved with `PretrainedEmbedding.save(path)`: weights, vocabulary and tokenizer."""
    from w2v.pretrained import load_embedding as _load_embedding

    return _load_embedding(path)
