"""Files that ship with w2v: the default corpus and the evaluation sets.

In a wheel they are package data (w2v/corpora/, mapped from the repository's corpora/ by
setup.cfg); in a source checkout they are the repository's corpora/ folder.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def corpora_dir() -> Path:
    """The folder holding the default corpus (*.txt.gz) and the evaluation sets."""
    for candidate in (_HERE / "corpora", _HERE.parent / "corpora"):
        if (candidate / "questions-words.txt").is_file():
            return candidate
    return _HERE / "corpora"  # missing: callers name the file in their error


def default_corpus() -> list[str]:
    """The default corpus's files: five public-domain English texts (corpora/SOURCES.md)."""
    return [str(p) for p in sorted(corpora_dir().glob("*.txt.gz"))]


def questions() -> Path:
    """The Google analogy set (questions-words.txt)."""
    return corpora_dir() / "questions-words.txt"


def wordsim() -> Path:
    """WordSim-353 (word, word, human score)."""
    return corpora_dir() / "wordsim353.tsv"
