"""Vectors: container protocol, queries against a brute-force reference, caching, speed, run folders."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from w2v.errors import UserError
from w2v.vectors import UnknownWordError, Vectors, load


def make_run(folder: Path, words: list[str], d: int = 8, output: str = "full", seed: int = 0) -> dict:
    """A run folder as the trainer writes it: vocab.tsv + model.pt (output: full | missing | empty)."""
    gen = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    state = {"input": torch.randn(len(words), d, generator=gen)}
    if output == "full":
        state["output"] = torch.randn(len(words), d, generator=gen)
    elif output == "empty":
        state["output"] = torch.zeros(0, d)
    torch.save(state, folder / "model.pt")
    (folder / "vocab.tsv").write_text("".join(f"{w}\t{1000 - i}\n" for i, w in enumerate(words)), encoding="utf-8")
    return state


@pytest.fixture(scope="module")
def rand() -> Vectors:
    rng = np.random.default_rng(1)
    return Vectors([f"w{i}" for i in range(3000)], rng.standard_normal((3000, 40)).astype(np.float32))


def unit64(v: Vectors) -> np.ndarray:
    m = v.matrix.double().numpy()
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def brute_most_similar(v: Vectors, pos: list[str], neg: list[str], topn: int, restrict: int | None = None):
    u = unit64(v)
    q = sum(u[v.index(w)] for w in pos) - sum((u[v.index(w)] for w in neg), np.zeros(v.dim))
    q /= np.linalg.norm(q)
    scores = u[:restrict] @ q
    for w in pos + neg:
        if v.index(w) < len(scores):
            scores[v.index(w)] = -np.inf
    order = np.argsort(-scores)[:topn]
    return [v.words[i] for i in order], scores[order]


def test_container_protocol(rand: Vectors) -> None:
    assert len(rand) == 3000 and rand.dim == 40
    assert "w7" in rand and "nope" not in rand and 3 not in rand
    assert rand.index("w7") == 7
    assert torch.equal(rand["w7"], rand.matrix[7])
    with pytest.raises(UnknownWordError, match="'nope'") as e:
        rand["nope"]
    assert isinstance(e.value, KeyError) and isinstance(e.value, UserError)
    assert str(e.value) == "unknown word: 'nope'"


def test_numpy_matrix_is_wrapped_without_copy() -> None:
    m = np.zeros((3, 2), dtype=np.float32)
    v = Vectors(["a", "b", "c"], m, counts=[3, 2, 1])
    assert v.matrix.data_ptr() == m.ctypes.data and v.counts.tolist() == [3, 2, 1]
    with pytest.raises(UserError, match="2 words but 3 vectors"):
        Vectors(["a", "b"], m)


def test_duplicate_words_index_the_first() -> None:
    v = Vectors(["a", "b", "a"], torch.eye(3))
    assert v.index("a") == 0 and len(v) == 3


@pytest.mark.parametrize("pos,neg,restrict", [
    (["w1"], [], None), (["w5", "w9"], [], None), (["w3", "w4"], ["w8"], None),
    ([], ["w11"], None), (["w2"], ["w6", "w10"], 1000), (["w2999"], [], 500),
])
def test_most_similar_matches_brute_force(rand: Vectors, pos, neg, restrict) -> None:
    got = rand.most_similar(pos, neg, topn=10, restrict_vocab=restrict)
    words, scores = brute_most_similar(rand, pos, neg, 10, restrict)
    assert [w for w, _ in got] == words
    np.testing.assert_allclose([s for _, s in got], scores, atol=1e-5)
    assert not set(pos + neg) & {w for w, _ in got}
    if restrict:
        assert all(rand.index(w) < restrict for w, _ in got)


def test_most_similar_accepts_a_word_or_a_vector(rand: Vectors) -> None:
    assert rand.most_similar("w1", topn=3) == rand.most_similar(["w1"], topn=3)
    by_vector = rand.most_similar(rand["w1"] * 3, topn=4)  # a vector is not excluded: w1 comes first
    assert by_vector[0][0] == "w1" and [w for w, _ in by_vector[1:]] == [w for w, _ in rand.most_similar("w1", topn=3)]
    assert len(rand.most_similar("w1", topn=10_000)) == 2999


def test_query_errors_name_the_problem(rand: Vectors) -> None:
    with pytest.raises(UnknownWordError, match="unknown words: 'x1', 'x2'"):
        rand.most_similar(["w1", "x1"], ["x2"])
    with pytest.raises(UserError, match="at least one"):
        rand.most_similar()
    with pytest.raises(UserError, match="topn"):
        rand.most_similar("w1", topn=0)
    with pytest.raises(UserError, match="3 dimensions, expected 40"):
        rand.most_similar(np.ones(3))
    with pytest.raises(UserError, match="unknown analogy method"):
        rand.analogy("w1", "w2", "w3", method="pairdirection")


def test_analogy_3cosadd_and_3cosmul_match_brute_force(rand: Vectors) -> None:
    u = unit64(rand)
    a, b, c = (rand.index(w) for w in ("w10", "w20", "w30"))
    add = u @ (u[b] - u[a] + u[c])
    cos = (1 + u @ u[[a, b, c]].T) / 2
    mul = cos[:, 1] * cos[:, 2] / (cos[:, 0] + 0.001)
    for method, scores in (("3cosadd", add), ("3cosmul", mul)):
        scores[[a, b, c]] = -np.inf
        got = rand.analogy("w10", "w20", "w30", topn=5, method=method)
        assert [w for w, _ in got] == [rand.words[i] for i in np.argsort(-scores)[:5]], method
    assert rand.analogy("w10", "w20", "w30", topn=3) == rand.most_similar(["w20", "w30"], ["w10"], topn=3)


def test_planted_analogy_comes_first() -> None:
    rng = np.random.default_rng(0)
    words = ["man", "king", "woman", "queen"] + [f"w{i}" for i in range(500)]
    m = rng.standard_normal((len(words), 50)).astype(np.float32)
    m[3] = m[1] - m[0] + m[2]
    v = Vectors(words, m)
    assert v.analogy("man", "king", "woman")[0][0] == "queen"
    assert v.analogy("man", "king", "woman", method="3cosmul")[0][0] == "queen"


def test_similarity_and_doesnt_match(rand: Vectors) -> None:
    u = unit64(rand)
    assert rand.similarity("w1", "w2") == pytest.approx(u[1] @ u[2], abs=1e-6)
    assert rand.similarity("w1", "w1") == pytest.approx(1.0, abs=1e-6)
    words = ["w1", "w2", "w3", "w4", "w5"]
    rows = u[[rand.index(w) for w in words]]
    assert rand.doesnt_match(words) == words[int(np.argmin(rows @ rows.mean(0)))]
    odd = Vectors(["a", "b", "c", "d"], torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.9, 0.0], [-1.0, 0.2]]))
    assert odd.doesnt_match(["a", "b", "c", "d"]) == "d"


def test_normalised_cache_follows_matrix_changes() -> None:
    v = Vectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    assert v.most_similar("a", topn=1)[0][0] == "b"
    v["b"].copy_(torch.tensor([-1.0, 0.0]))  # in place, through the view
    assert v.most_similar("a", topn=1)[0][0] == "c"
    v.matrix = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])  # replaced
    assert v.most_similar("a", topn=1)[0][0] == "c"
    assert v.most_similar("b", topn=1)[0][0] == "c"


def test_normalized_head_and_zero_vectors() -> None:
    v = Vectors(["a", "b", "z"], torch.tensor([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]]), counts=[5, 4, 3])
    n = v.normalized()
    assert torch.allclose(n.matrix.norm(dim=1), torch.tensor([1.0, 1.0, 0.0]))
    assert v.similarity("a", "z") == 0.0  # a zero vector is dissimilar to all, not NaN
    h = v.head(2)
    assert h.words == ["a", "b"] and h.counts.tolist() == [5, 4]


def test_most_similar_100k_by_100_takes_milliseconds() -> None:
    v = Vectors([f"w{i}" for i in range(100_000)], torch.randn(100_000, 100, generator=torch.Generator().manual_seed(0)))
    v.most_similar("w0")  # builds the normalised matrix once
    times = []
    for i in range(20):
        start = time.perf_counter()
        v.most_similar(f"w{i}", topn=10)
        times.append(time.perf_counter() - start)
    # About 3 ms on a laptop core; the bound leaves room for a loaded CI machine.
    assert sorted(times)[10] < 0.1


def test_from_run_in_out_sum(tmp_path: Path) -> None:
    words = ["the", "cat", "sat", "on"]
    state = make_run(tmp_path / "run", words)
    v = Vectors.from_run(tmp_path / "run")
    assert v.words == words and v.counts.tolist() == [1000, 999, 998, 997]
    assert torch.equal(v.matrix, state["input"])
    assert torch.equal(Vectors.from_run(tmp_path / "run", which="out").matrix, state["output"])
    assert torch.equal(Vectors.from_run(tmp_path / "run", which="sum").matrix, state["input"] + state["output"])
    assert torch.equal(load(tmp_path / "run", limit=2, which="sum").matrix, (state["input"] + state["output"])[:2])
    with pytest.raises(UserError, match="unknown --which"):
        Vectors.from_run(tmp_path / "run", which="both")


@pytest.mark.parametrize("output", ["missing", "empty"])
def test_from_run_hierarchical_softmax_only_has_no_output(tmp_path: Path, output: str) -> None:
    make_run(tmp_path / "run", ["a", "b"], output=output)
    assert len(Vectors.from_run(tmp_path / "run")) == 2
    for which in ("out", "sum"):
        with pytest.raises(UserError, match="no output vectors"):
            Vectors.from_run(tmp_path / "run", which=which)
