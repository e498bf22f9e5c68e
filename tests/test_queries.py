"""Queries: the analogy command line, gensim's KeyedVectors names side by side with gensim, case hints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from w2v.cli import main
from w2v.errors import UserError
from w2v.vectors import Vectors, load

WORDS = ["the", "king", "man", "woman", "queen", "his", "he", "she", "her", "london", "england", "france",
         "paris", "n", "ma", "e", "h", "nation", "json"] + [f"w{i}" for i in range(200)]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder (vocab.tsv + model.pt) of random vectors with a few planted analogies."""
    folder = tmp_path_factory.mktemp("queries") / "run"
    folder.mkdir()
    gen = torch.Generator().manual_seed(3)
    inp = torch.randn(len(WORDS), 16, generator=gen)
    ix = {w: i for i, w in enumerate(WORDS)}
    inp[ix["queen"]] = inp[ix["king"]] - inp[ix["man"]] + inp[ix["woman"]]
    inp[ix["her"]] = inp[ix["his"]] - inp[ix["he"]] + inp[ix["she"]]
    inp[ix["paris"]] = inp[ix["london"]] - inp[ix["england"]] + inp[ix["france"]]
    torch.save({"input": inp, "output": torch.randn(len(WORDS), 16, generator=gen)}, folder / "model.pt")
    (folder / "vocab.tsv").write_text("".join(f"{w}\t{1000 - i}\n" for i, w in enumerate(WORDS)))
    return folder


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def answers(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()]


# --- 1. the analogy command answers the question asked, or refuses ---------------------------

@pytest.mark.parametrize("args,positive,negative,topn", [
    (["king", "-man", "+woman", "-n", "3"], ["king", "woman"], ["man"], 3),  # was king - "ma"
    (["london", "-england", "+france"], ["london", "france"], ["england"], 10),  # was -e
    (["his", "-he", "+she"], ["his", "she"], ["he"], 10),  # was --help, exit 0
    (["king", "-", "man", "+", "woman", "--topn", "2"], ["king", "woman"], ["man"], 2),
    (["king", "-man", "+", "woman", "-n", "4"], ["king", "woman"], ["man"], 4),
    (["-n", "2", "king", "-man", "+woman"], ["king", "woman"], ["man"], 2),
    (["king", "-nation", "--topn=5"], ["king"], ["nation"], 5),
    (["--", "king", "-n", "+woman"], ["king", "woman"], ["n"], 10),  # after --, -n is a word
])
def test_analogy_terms_parse_as_written(run: Path, args: list[str], positive, negative, topn: int) -> None:
    code, out = invoke("analogy", run, *args)
    assert code == 0, out
    expected = load(run).most_similar(positive, negative, topn=topn)
    assert answers(out) == [w for w, _ in expected]


def test_analogy_options_anywhere(run: Path) -> None:
    code, out = invoke("analogy", "--json", run, "king", "-man", "--method", "3cosmul", "+woman", "-n", "1")
    data = json.loads(out)
    assert code == 0 and (data["positive"], data["negative"], data["method"]) == (["king", "woman"], ["man"], "3cosmul")
    assert [r["word"] for r in data["results"]] == ["queen"]
    code, out = invoke("analogy", run, "his", "-he", "+she", "-n", "1", "--which", "in", "--restrict-vocab", "100")
    assert code == 0 and answers(out) == ["her"]


@pytest.mark.parametrize("args,message", [
    (["king", "--man", "+woman"], "Error: no such option: --man"),
    (["king", "-man", "+woman", "-n3"], "Error: no such option: -n3"),
    (["king", "-man", "+woman", "-n"], "Error: option -n needs a value"),
    (["king", "-man", "+woman", "--jsn"], "Error: no such option: --jsn"),
])
def test_analogy_refuses_what_could_be_an_option(run: Path, args: list[str], message: str) -> None:
    code, out = invoke("analogy", run, *args)
    assert code == 2 and out.startswith(message) and out.count("\n") == 1, out


def test_analogy_help_is_complete() -> None:
    for args in (["analogy", "--help"], ["analogy", "-h"], ["analogy", "somewhere", "king", "--help"]):
        code, out = invoke(*args)
        assert code == 0
        assert all(o in out for o in ("-n, --topn", "--method", "--restrict-vocab", "--which", "--json", "-h, --help",
                                      "king -man +woman", "after --"))


# --- 3. gensim's KeyedVectors names, side by side with gensim 4.4 on the same matrix ------------

@pytest.fixture(scope="module")
def pair():
    """(our Vectors, gensim's KeyedVectors) over one random matrix."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(500)]
    m = rng.standard_normal((500, 24)).astype(np.float32)
    kv = KeyedVectors(24)
    kv.add_vectors(words, m.copy())
    return Vectors(words, m), kv


def same_results(ours, theirs, atol: float = 1e-5) -> None:
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=atol)


def test_iteration_and_lookup_tables(pair) -> None:
    v, kv = pair
    assert list(v) == kv.index_to_key == v.index_to_key  # list(v) used to fail: "unknown word: 0"
    assert v.key_to_index == kv.key_to_index and v.vector_size == kv.vector_size == 24
    assert isinstance(v.vectors, np.ndarray) and np.array_equal(v.vectors, kv.vectors)
    assert np.shares_memory(v.vectors, v.matrix.numpy())


def test_getitem_lists_ints_and_get_vector(pair) -> None:
    v, kv = pair
    rows = v[["w1", "w7"]]
    assert isinstance(rows, torch.Tensor) and tuple(rows.shape) == (2, 24)
    np.testing.assert_array_equal(rows.numpy(), kv[["w1", "w7"]])
    np.testing.assert_array_equal(v[3].numpy(), kv[3])
    np.testing.assert_array_equal(v.get_vector("w9"), kv.get_vector("w9"))
    np.testing.assert_allclose(v.get_vector("w9", norm=True), kv.get_vector("w9", norm=True), atol=1e-6)
    np.testing.assert_allclose(v.get_normed_vectors(), kv.get_normed_vectors(), atol=1e-6)
    for key in ("w3", 3, 499, 500, -1, "nope"):
        assert v.has_index_for(key) == kv.has_index_for(key), key
        assert v.get_index(key, -1) == kv.get_index(key, -1), key
    with pytest.raises(KeyError, match="'nope', 'zz'"):
        v[["w1", "nope", "zz"]]


@pytest.mark.parametrize("pos,neg,restrict", [
    (["w1"], [], None), (["w5", "w9"], ["w11"], None), ([], ["w3"], None), (["w2", "w8"], [], 100),
    ([("w4", 2.0), ("w6", 0.5)], [("w7", -1.0)], None),  # gensim's (key, weight) pairs
])
def test_most_similar_same_as_gensim(pair, pos, neg, restrict) -> None:
    v, kv = pair
    same_results(v.most_similar(pos, neg, topn=7, restrict_vocab=restrict),
                 kv.most_similar(pos, neg, topn=7, restrict_vocab=restrict))
    np.testing.assert_allclose(v.most_similar(pos, neg, topn=None, restrict_vocab=restrict),
                               kv.most_similar(pos, neg, topn=None, restrict_vocab=restrict), atol=1e-5)


def test_similar_by_word_and_vector_same_as_gensim(pair) -> None:
    v, kv = pair
    same_results(v.similar_by_word("w10", topn=5), kv.similar_by_word("w10", topn=5))
    same_results(v.similar_by_key("w10", topn=5, restrict_vocab=50), kv.similar_by_key("w10", topn=5, restrict_vocab=50))
    vec = kv["w10"] * 3 + kv["w11"]
    same_results(v.similar_by_vector(vec, topn=5), kv.similar_by_vector(vec, topn=5))
    same_results(v.similar_by_vector(torch.from_numpy(vec), topn=5), kv.similar_by_vector(vec, topn=5))


@pytest.mark.filterwarnings("ignore:Call to deprecated")  # gensim calls its own init_sims
def test_most_similar_cosmul_same_as_gensim_up_to_epsilon(pair) -> None:
    v, kv = pair
    pos, neg = ["w20", "w30"], ["w10"]
    same_results(v.most_similar_cosmul(pos, neg, topn=8, epsilon=1e-6), kv.most_similar_cosmul(pos, neg, topn=8))
    np.testing.assert_allclose(v.most_similar_cosmul(pos, neg, topn=None, epsilon=1e-6),
                               kv.most_similar_cosmul(pos, neg, topn=None), rtol=1e-5)
    # Our default epsilon is Levy and Goldberg's 0.001: the scores differ, on purpose.
    u = kv.get_normed_vectors().astype(np.float64)
    cos = (1 + u @ u[[10, 20, 30]].T) / 2
    np.testing.assert_allclose(v.most_similar_cosmul(pos, neg, topn=None),
                               cos[:, 1] * cos[:, 2] / (cos[:, 0] + 0.001), rtol=1e-4)


def test_pairwise_queries_same_as_gensim(pair) -> None:
    v, kv = pair
    assert v.similarity("w1", "w2") == pytest.approx(float(kv.similarity("w1", "w2")), abs=1e-6)
    assert v.distance("w1", "w2") == pytest.approx(float(kv.distance("w1", "w2")), abs=1e-6)
    assert v.n_similarity(["w1", "w2"], ["w3", "w4", "w5"]) == pytest.approx(
        float(kv.n_similarity(["w1", "w2"], ["w3", "w4", "w5"])), abs=1e-6)
    np.testing.assert_allclose(v.distances("w3"), kv.distances("w3"), atol=1e-5)
    np.testing.assert_allclose(v.distances("w3", ["w4", "w9"]), kv.distances("w3", ["w4", "w9"]), atol=1e-6)
    np.testing.assert_allclose(v.distances(kv["w3"] * 2), kv.distances(kv["w3"] * 2), atol=1e-5)
    for w1, w2 in (("w1", "w2"), ("w7", "w400"), ("w0", "w0")):
        assert v.rank(w1, w2) == kv.rank(w1, w2)
        assert v.closer_than(w1, w2) == kv.closer_than(w1, w2)
    assert v.words_closer_than("w7", "w40") == v.closer_than("w7", "w40")
    candidates = ["w8", "w80", "w300", "w9"]
    assert v.most_similar_to_given("w1", candidates) == kv.most_similar_to_given("w1", candidates)


def test_doesnt_match_skips_unknown_words_like_gensim(pair) -> None:
    v, kv = pair
    words = ["w1", "w2", "w3", "w4", "w5", "w6"]
    assert v.doesnt_match(words) == kv.doesnt_match(words)
    with pytest.warns(UserWarning, match="'nope'"):
        assert v.doesnt_match(words + ["nope"]) == kv.doesnt_match(words + ["nope"])
    with pytest.warns(UserWarning):
        assert v.doesnt_match(["w1", "nope"]) == "w1" == kv.doesnt_match(["w1", "nope"])
    with pytest.warns(UserWarning), pytest.raises(UserError, match="none of the words"):
        v.doesnt_match(["nope", "zz"])


# --- 4. a word that misses only by its case gets a hint ------------------------------------------

def test_case_hint_on_a_lowercased_vocabulary() -> None:
    v = Vectors(["the", "king", "queen"], np.eye(3, dtype=np.float32))
    with pytest.raises(KeyError) as e:
        v["King"]
    assert str(e.value) == "unknown word: 'King' (the vocabulary is lowercased: try 'king')"
    with pytest.raises(UserError, match=r"unknown words: 'King', 'Queen' \(the vocabulary is lowercased: "
                                        r"try 'king', 'queen'\)"):
        v.most_similar(["King", "Queen"])
    with pytest.raises(UserError, match=r"^unknown word: 'Zebra'$"):
        v.similarity("king", "Zebra")  # no lowercase form either: no hint
    cased = Vectors(["The", "the", "king"], np.eye(3, dtype=np.float32))
    with pytest.raises(UserError, match=r"^unknown word: 'KING' \(try 'king'\)$"):
        cased.index("KING")


def test_case_hint_reaches_the_command_line(run: Path) -> None:
    code, out = invoke("similar", run, "King")
    assert code == 2 and out == "Error: unknown word: 'King' (the vocabulary is lowercased: try 'king')\n"


# --- 5. the query path does not import what it does not need ---------------------------------------

def test_queries_on_numpy_vectors_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "import w2v.cli, w2v.vectors\n"
            "v = w2v.vectors.Vectors(['a', 'b', 'c'], np.eye(3, dtype=np.float32))\n"
            "v.most_similar('a'); v.most_similar_cosmul('a'); v.similarity('a', 'b'); v.doesnt_match(['a', 'b'])\n"
            "v.distances('a'); v.get_vector('a'); list(v)\n"
            "heavy = sorted(m for m in ('torch', 'nltk', 'tensorboard') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    root = Path(__file__).parent.parent  # this checkout's w2v, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)
