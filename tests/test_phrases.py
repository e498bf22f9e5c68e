"""Phrases: the same phrases and joined text as gensim's Phrases + FrozenPhrases, and the commands around them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import w2v
from w2v.corpus import Corpus
from w2v.phrasing import ENGLISH_CONNECTOR_WORDS, PhraseTable, learn
from clitools import cli

ROOT = Path(__file__).resolve().parent.parent
SOTU = ROOT / "corpora" / "sotu.txt.gz"
FAST = ["--epochs", "1", "--dim", "20", "--threads", "1", "--no-eval", "--no-tensorboard", "--quiet"]


@pytest.fixture(scope="module")
def sotu() -> list[list[str]]:
    """The first ~400k tokens of the State of the Union corpus, as w2v train reads them (default tokenizer)."""
    sentences, n = [], 0
    for s in Corpus([SOTU], max_sentence_length=1000):
        sentences.append(s)
        n += len(s)
        if n > 400_000:
            return sentences
    return sentences


@pytest.mark.parametrize("scorer,threshold", [("default", 10.0), ("npmi", 0.5)])
@pytest.mark.parametrize("connectors", [False, True])
def test_same_phrases_and_text_as_gensim(sotu, scorer, threshold, connectors):
    phrases_module = pytest.importorskip("gensim.models.phrases")
    words = phrases_module.ENGLISH_CONNECTOR_WORDS if connectors else frozenset()
    assert ENGLISH_CONNECTOR_WORDS == phrases_module.ENGLISH_CONNECTOR_WORDS
    frozen = phrases_module.Phrases(sotu, min_count=5, threshold=threshold, scoring=scorer,
                                    connector_words=words).freeze()
    table = learn(sotu, min_count=5, threshold=threshold, scorer=scorer, connectors=words)
    ours = {p.text: p.score for p in table.phrases}
    assert len(ours) > 500
    assert ours.keys() == frozen.phrasegrams.keys()
    assert all(ours[k] == pytest.approx(frozen.phrasegrams[k], rel=1e-12) for k in ours)
    if connectors:
        assert any(len(p.parts) > 2 for p in table.phrases)  # e.g. secretary_of_the_treasury
    assert list(table.apply(sotu)) == list(frozen[sotu])


def test_greedy_chains_connectors_and_sentence_ends():
    """analyze_sentence's corner cases on a hand-made corpus, with min_count 1 so every pair counts."""
    gensim = pytest.importorskip("gensim.models.phrases")
    sentences = [["a", "b", "c", "d"], ["a", "b", "c"], ["b", "c", "d", "e"], ["the", "x", "of", "y", "the"],
                 ["x", "of", "y", "x", "of", "the", "y"], ["d", "e"], ["e", "a"], ["of", "of"], ["q"]] * 3
    for connectors in (frozenset(), ENGLISH_CONNECTOR_WORDS):
        frozen = gensim.Phrases(sentences, min_count=1, threshold=0.1, connector_words=connectors).freeze()
        table = learn(sentences, min_count=1, threshold=0.1, connectors=connectors)
        assert {p.text for p in table.phrases} == set(frozen.phrasegrams)
        assert list(table.apply(sentences)) == list(frozen[sentences])


def test_two_passes_give_longer_phrases(sotu):
    table = learn(sotu, passes=2, connectors=ENGLISH_CONNECTOR_WORDS)
    second = [p for p in table.phrases if p.passes == 2]
    assert second and any(p.text.count("_") >= 3 for p in second)


def test_table_round_trip_and_apply_on_new_text(tmp_path, sotu):
    table = learn(sotu, connectors=ENGLISH_CONNECTOR_WORDS, passes=2)
    path = tmp_path / "phrases.tsv"
    table.save(path)
    again = PhraseTable.load(path)
    assert again.phrases == table.phrases and again.connectors == table.connectors
    assert again.settings["scorer"] == "default"
    new = tmp_path / "new.txt"
    new.write_text("The United States of America.\nThe Secretary of the Treasury, and New York\n")
    code, out = cli("phrases", "--apply", path, new, "-o", tmp_path / "joined.txt")
    assert code == 0, out
    lines = (tmp_path / "joined.txt").read_text().splitlines()
    assert "united_states" in lines[0].split()
    assert "secretary_of_the_treasury" in lines[1].split()


def test_phrases_command_learns_a_table_and_text(tmp_path):
    code, out = cli("phrases", SOTU, "-o", tmp_path / "t.tsv", "--text", tmp_path / "j.txt", "--top", "5")
    assert code == 0, out
    assert "united_states" in out
    table = PhraseTable.load(tmp_path / "t.tsv")
    assert "united_states" in {p.text for p in table.phrases}
    with open(tmp_path / "j.txt") as f:
        assert any("united_states" in line.split() for line in itertools.islice(f, 200))


def test_train_with_phrases_gives_phrase_vectors(tmp_path):
    small = tmp_path / "sotu.txt"
    import gzip

    with gzip.open(SOTU, "rt") as f:
        small.write_text("".join(itertools.islice(f, 40)))
    out = tmp_path / "run"
    code, text = cli("train", small, "--out", out, "--phrases", "1", *FAST)
    assert code == 0, text
    assert (out / "phrases.tsv").exists()
    vectors = w2v.load(str(out))
    assert "united_states" in vectors
    assert vectors.most_similar("united_states", topn=3)
    table = PhraseTable.load(out / "phrases.tsv")
    assert table.settings["passes"] == "1"


@pytest.mark.parametrize("args,needle", [
    (["--apply", "missing.tsv", "x.txt"], "missing.tsv not found"),
    (["--scorer", "npmi", "--threshold", "2"], "--threshold must be between -1 and 1 for the npmi scorer"),
    (["--threshold", "0"], "--threshold must be above 0 for the default scorer"),
    (["--threshold", "nan"], "--threshold must be a finite number"),
    (["--passes", "-1"], "--passes must be between 0 and 10"),
    (["--min-count", "0"], "--min-count must be at least 1"),
])
def test_phrases_command_errors_are_one_line(tmp_path, args, needle, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("a b c\n")
    code, out = cli("phrases", *args, *([] if "--apply" in args else ["x.txt"]), "-o", "t.tsv")
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], out


def test_bad_table_and_train_options_are_one_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("phrase\tcount\tscore\tpass\tparts\nnew_york\tmany\t1.0\t1\tnew york\n")
    (tmp_path / "x.txt").write_text("a b c\n")
    code, out = cli("phrases", "--apply", bad, tmp_path / "x.txt", "-o", tmp_path / "o.txt")
    assert code == 2 and out.strip().splitlines()[-1].startswith(f"Error: {bad}, line 2: expected"), out
    code, out = cli("train", tmp_path / "x.txt", "--out", tmp_path / "r", "--phrases", "1",
                    "--phrase-scorer", "npmi", "--phrase-threshold", "1.5", *FAST)
    assert code == 2 and "Error: --phrase-threshold must be between -1 and 1" in out, out
    code, out = cli("train", tmp_path / "x.txt", "--out", tmp_path / "r", "--phrases", "11", *FAST)
    assert code == 2 and "Error: --phrases must be between 0 and 10, not 11" in out, out


def test_not_a_table_and_pruned_vocabulary_are_one_line(tmp_path):
    (tmp_path / "x.txt").write_text("a b c d e f g\n" * 3)
    (tmp_path / "t.tsv").write_text("# notes\n")
    code, out = cli("phrases", "--apply", tmp_path / "t.tsv", tmp_path / "x.txt", "-o", tmp_path / "o.txt")
    assert code == 2 and "no 'phrase count score pass parts' header" in out.strip().splitlines()[-1], out
    code, out = cli("train", tmp_path / "x.txt", "--out", tmp_path / "r", "--phrases", "1", "--max-vocab-size", "2",
                    "--min-count", "1", *FAST)
    assert code == 2 and "Error: --phrases needs every token's count" in out, out
