"""w2v.train(sentences=...): token lists from Python train exactly like the same tokens from a file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

import w2v
from w2v.errors import UserError

MOBY = Path(__file__).resolve().parent.parent / "corpora" / "moby_dick.txt.gz"
SETTINGS = dict(threads=1, epochs=1, dim=20, progress=False, tensorboard=False, evaluate=False)


@pytest.fixture(scope="module")
def lines() -> list[list[str]]:
    text = gzip.open(MOBY, "rt", encoding="utf-8").read().lower().splitlines()[:3000]
    return [line.split() for line in text if line.split()]


def test_sentences_train_exactly_like_the_same_tokens_from_a_file(tmp_path: Path, lines) -> None:
    ours = w2v.train(sentences=lines, out=str(tmp_path / "py"), **SETTINGS)
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join(" ".join(line) for line in lines))
    from_file = w2v.train(str(path), out=str(tmp_path / "file"), tokenizer="whitespace", lowercase=False,
                          **SETTINGS)
    assert ours.dictionary.words == from_file.dictionary.words
    assert torch.equal(ours.params.input, from_file.params.input)


def test_a_generator_is_enough_for_one_pass_and_refused_where_two_are_needed(tmp_path: Path, lines) -> None:
    once = w2v.train(sentences=(line for line in lines), out=str(tmp_path / "gen"), **SETTINGS)
    assert len(once.dictionary) > 100
    with pytest.raises(UserError, match="one-shot iterator"):  # pruning while counting reads the text twice
        w2v.train(sentences=(line for line in lines), out=str(tmp_path / "gen2"), max_vocab_size=500, **SETTINGS)


@pytest.mark.parametrize("sentences, message", [
    (["the king rode", "the queen rode"], "is a string, not a list of tokens"),
    ("the king rode", "iterable of token lists"),
    ([["the", "king"], ["a", 5]], "token 5"),
    ([["the", "king"], ["a", ""]], "token ''"),
    ([["the", "king"], 7], "is a int"),
])
def test_malformed_sentences_are_one_line_errors(tmp_path: Path, sentences, message: str) -> None:
    with pytest.raises(UserError, match=message):
        w2v.train(sentences=sentences, out=str(tmp_path / "bad"), min_count=1, **SETTINGS)


def test_paths_and_sentences_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="paths or sentences"):
        w2v.train([str(MOBY)], sentences=[["a"]], out=str(tmp_path / "x"), **SETTINGS)
