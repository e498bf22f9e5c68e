"""Analogy and similarity evaluation: the same numbers as gensim on the same vectors and files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from w2v import evaluate
from w2v.errors import UserError
from w2v.evaluate import QUESTIONS, WORDSIM
from w2v.vectors import Vectors


def question_lines() -> list[str]:
    return QUESTIONS.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    """Every 6th question of each section of the Google set (about 3,300), so gensim runs in seconds."""
    out, kept = [], 0
    for line in question_lines():
        if line.startswith(":"):
            out.append(line)
        else:
            kept += 1
            if kept % 6 == 0:
                out.append(line)
    path = tmp_path_factory.mktemp("eval") / "questions-subset.txt"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def random_vectors(seed: int, planted_every: int = 5) -> Vectors:
    """Random vectors over the real words of both sets, lowercase duplicates of some, filler words,
    and correct answers planted for every `planted_every`-th question, so that many are right."""
    rng = np.random.default_rng(seed)
    questions = [line.split() for line in question_lines() if not line.startswith(":")]
    pairs = [line.split("\t")[:2] for line in WORDSIM.read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    words = sorted({w for q in questions for w in q} | {w for p in pairs for w in p})
    vocab = list(dict.fromkeys(words + [w.lower() for w in words[::3]] + [f"filler{i}" for i in range(1500)]))
    rng.shuffle(vocab)
    d = 24
    m = rng.standard_normal((len(vocab), d)).astype(np.float32)
    row = {w: i for i, w in enumerate(vocab)}
    for a, b, c, e in questions[::planted_every]:
        m[row[e]] = m[row[b]] - m[row[a]] + m[row[c]] + 0.2 * rng.standard_normal(d)
    return Vectors(vocab, m)


def kv_of(v: Vectors) -> KeyedVectors:
    kv = KeyedVectors(v.dim)
    kv.add_vectors(v.words, v.matrix.numpy())
    return kv


@pytest.mark.parametrize("seed,case_insensitive", [(0, True), (1, True), (2, False)])
def test_analogies_equal_gensim(subset: Path, seed: int, case_insensitive: bool) -> None:
    v = random_vectors(seed)
    restrict = len(v) - 400  # some question words fall outside and are skipped
    ours = evaluate.analogies(v, subset, restrict_vocab=restrict, case_insensitive=case_insensitive)
    score, sections = kv_of(v).evaluate_word_analogies(str(subset), restrict_vocab=restrict,
                                                       case_insensitive=case_insensitive)
    theirs = [(s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections]
    assert [(s.name, s.correct, s.total) for s in ours.sections] + [
        ("Total accuracy", ours.correct, ours.attempted)] == theirs
    assert ours.total == score
    questions = sum(1 for line in subset.read_text().splitlines() if not line.startswith(":"))
    assert ours.skipped == questions - ours.attempted > 0
    assert 0.1 < ours.total < 0.9  # the planted answers are found, the rest mostly not
    sem = [s for s in ours.sections if not s.name.startswith("gram")]
    assert ours.semantic == sum(s.correct for s in sem) / sum(s.total for s in sem)


def test_full_google_set_is_fast_and_restrict_vocab_counts() -> None:
    v = random_vectors(4)
    start = time.perf_counter()
    result = evaluate.analogies(v)  # restrict_vocab=30,000 is more than this vocabulary
    elapsed = time.perf_counter() - start
    assert result.attempted + result.skipped == 19544 and result.skipped == 0
    assert elapsed < 20  # about half a second on one core; the bound is for loaded CI machines
    assert evaluate.analogies(v, restrict_vocab=100).attempted < result.attempted


def test_thread_count_is_restored() -> None:
    before = torch.get_num_threads()
    evaluate.analogies(random_vectors(6))
    assert torch.get_num_threads() == before


def test_similarity_equals_gensim() -> None:
    v = random_vectors(5)
    keep = [w for w in v.words if w not in ("tiger", "Jerusalem", "FBI")]
    v = Vectors(keep, v.matrix[[v.index(w) for w in keep]])
    ours = evaluate.similarity(v)
    pearson, spearman, oov_ratio = kv_of(v).evaluate_word_pairs(str(WORDSIM), case_insensitive=True)
    assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-9)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert ours.skipped > 0 and ours.skipped / (ours.pairs + ours.skipped) * 100 == pytest.approx(oov_ratio)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_rank_ties_average_like_scipy(values: list[int]) -> None:
    x = np.array(values, dtype=float)
    assert np.array_equal(evaluate._rank(x), rankdata(x))


def test_malformed_lines_are_counted_with_their_numbers(tmp_path: Path) -> None:
    # Not orthogonal: every pair with cosine 0 leaves no correlation to compute (now an error).
    m = np.eye(5, dtype=np.float32) + np.arange(25, dtype=np.float32).reshape(5, 5) / 50
    v = Vectors(["a", "b", "c", "d", "e"], m)
    q = tmp_path / "q.txt"
    q.write_text(": sec\na b c d\na b c\n\nA B C E\na b c unknown\n: gram-x\nb c d e\n")
    r = evaluate.analogies(v, q)
    assert r.malformed == [3] and r.attempted == 3 and r.skipped == 1
    assert [s.name for s in r.sections] == ["sec", "gram-x"]
    text = r.format()
    assert "sec" in text and "syntactic" in text and "line 3" in text
    json.dumps(r.to_dict())
    p = tmp_path / "p.tsv"
    p.write_text("# comment\na\tb\t1.0\na b 2\na\tc\nb\tc\tlots\nc\td\t3\nzz\ta\t1\n")
    s = evaluate.similarity(v, p)
    assert s.pairs == 3 and s.skipped == 1 and s.malformed == [4, 5]
    assert "Spearman" in s.format() and json.dumps(s.to_dict())


def test_unusable_files_are_refused(tmp_path: Path) -> None:
    v = Vectors(["a", "b"], np.eye(2, dtype=np.float32))
    (tmp_path / "q.txt").write_text("a b c d\n")
    with pytest.raises(UserError, match="q.txt, line 1: question before the first"):
        evaluate.analogies(v, tmp_path / "q.txt")
    with pytest.raises(UserError, match="not found"):
        evaluate.analogies(v, tmp_path / "missing.txt")
    (tmp_path / "p.tsv").write_text("x\ty\t1\n")
    with pytest.raises(UserError, match="0 pair.s. with known words"):
        evaluate.similarity(v, tmp_path / "p.tsv")
