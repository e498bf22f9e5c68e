"""w2v export / similar / analogy / evaluate, end to end through click's CliRunner on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gensim.models import KeyedVectors

from w2v.cli import main
from w2v.vectors import load


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder whose input vectors make king - man + woman = queen."""
    folder = tmp_path_factory.mktemp("cli") / "run"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    words = ["the", "king", "man", "woman", "queen", "paris", "france", "london", "england"] + \
        [f"w{i}" for i in range(300)]
    inp, out = torch.randn(len(words), 20, generator=gen), torch.randn(len(words), 20, generator=gen)
    inp[4] = inp[1] - inp[2] + inp[3]
    torch.save({"input": inp, "output": out}, folder / "model.pt")
    (folder / "vocab.tsv").write_text("".join(f"{w}\t{1000 - i}\n" for i, w in enumerate(words)))
    return folder


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("fmt,name", [("text", "v.txt"), ("binary", "v.bin"), ("torch", "v.pt"), ("npy", "v.npy")])
def test_export_then_load(run: Path, tmp_path: Path, fmt: str, name: str) -> None:
    code, out = invoke("export", run, "--format", fmt, "-o", tmp_path / name)
    assert code == 0 and f"wrote 309 vectors of 20 dims ({fmt})" in out
    got, ref = load(tmp_path / name), load(run)
    assert got.words == ref.words
    assert torch.allclose(got.matrix, ref.matrix, atol=1e-6)
    if fmt in ("text", "binary"):
        assert KeyedVectors.load_word2vec_format(tmp_path / name, binary=fmt == "binary").index_to_key == ref.words


def test_export_options(run: Path, tmp_path: Path) -> None:
    state = torch.load(run / "model.pt", weights_only=True)
    assert invoke("export", run, "-o", tmp_path / "s.pt", "--which", "sum", "--limit", "5", "--normalize")[0] == 0
    got = load(tmp_path / "s.pt")  # format taken from the .pt suffix
    expect = state["input"][:5] + state["output"][:5]
    assert got.words[:2] == ["the", "king"] and len(got) == 5
    assert torch.allclose(got.matrix, expect / expect.norm(dim=1, keepdim=True))
    assert torch.equal(got.counts if isinstance(got.counts, torch.Tensor) else torch.from_numpy(got.counts),
                       torch.tensor([1000, 999, 998, 997, 996]))
    code, out = invoke("export", run, "-o", tmp_path / "v.weird")
    assert code == 2 and out.startswith("Error: cannot tell the format") and out.count("\n") == 1


def test_export_projector(run: Path, tmp_path: Path) -> None:
    code, out = invoke("export", run, "--format", "projector", "-o", tmp_path / "proj", "--limit", "50")
    assert code == 0
    (tensors,) = (tmp_path / "proj").rglob("tensors.tsv")
    assert len(tensors.read_text().splitlines()) == 50
    assert (tensors.parent / "metadata.tsv").read_text().splitlines()[:2] == ["the", "king"]


def test_similar_human_and_json(run: Path) -> None:
    code, out = invoke("similar", run, "king", "-n", "3")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and all(len(line.split()) == 2 for line in lines)
    code, out = invoke("similar", run, "king", "-n", "3", "--json")
    data = json.loads(out)
    assert data["words"] == ["king"] and len(data["results"]) == 3
    assert [r["word"] for r in data["results"]] == [line.split()[0] for line in lines]


def test_analogy_expression(run: Path) -> None:
    code, out = invoke("analogy", run, "king", "-", "man", "+", "woman", "-n", "2")
    assert code == 0 and out.splitlines()[0].split()[0] == "queen"
    code, out = invoke("analogy", run, "--json", "--method", "3cosmul", "--", "king", "-man", "+woman")
    data = json.loads(out)
    assert (data["positive"], data["negative"]) == (["king", "woman"], ["man"])
    assert data["results"][0]["word"] == "queen" and len(data["results"]) == 10


@pytest.mark.parametrize("args,message", [
    (["similar", "{run}", "king", "nosuchword"], "Error: unknown word: 'nosuchword'"),
    (["analogy", "{run}", "king", "-", "qqq", "+", "zzz"], "Error: unknown words: 'zzz', 'qqq'"),
    (["analogy", "{run}", "king", "-", "+", "woman"], "Error: expected a word before '+'"),
    (["analogy", "{run}", "king", "woman"], "Error: expected + or - before 'woman'"),
    (["analogy", "{run}", "king", "-"], "Error: expression 'king -' is empty or ends with an operator"),
    (["similar", "{run}/missing", "king"], "missing not found"),
    (["export", "{run}", "-o", "{run}/../o.txt", "--which", "out", "--limit", "0"], "Invalid value for '--limit'"),
])
def test_errors_are_one_line(run: Path, args: list[str], message: str) -> None:
    code, out = invoke(*[a.format(run=run) for a in args])
    assert code == 2 and message in out
    if message.startswith("Error:"):
        assert out.count("\n") == 1


def test_evaluate_human_and_json(run: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text(": family\nman king woman queen\nparis france london the\n: gram-x\nthe king the nope\n")
    pairs = tmp_path / "p.tsv"
    pairs.write_text("king\tqueen\t9\nman\twoman\t8\nthe\tparis\t1\nking\tnope\t3\n")
    code, out = invoke("evaluate", run, "--analogies", questions, "--similarity", pairs)
    assert code == 0 and "family" in out and "skipped 1" in out and "Spearman" in out
    code, out = invoke("evaluate", run, "--analogies", questions, "--json", "--restrict-vocab", "100")
    data = json.loads(out)
    assert set(data) == {"analogies"}
    assert data["analogies"]["sections"][0] == {"name": "family", "correct": 1, "total": 2, "accuracy": 0.5}
    assert data["analogies"]["attempted"] == 2 and data["analogies"]["skipped"] == 1
    code, out = invoke("evaluate", run, "--json")  # both committed sets
    data = json.loads(out)
    assert data["analogies"]["attempted"] + data["analogies"]["skipped"] == 19544
    assert data["similarity"]["skipped"] > 300


def test_help_shows_defaults() -> None:
    for command, expected in (("export", ["--which", "[default: in]", "10,000 for projector"]),
                              ("similar", ["[default: 10", "--json"]),
                              ("analogy", ["3cosadd", "king - man + woman"]),
                              ("evaluate", ["[default: 30000", "questions-words.txt", "wordsim353.tsv"])):
        code, out = invoke(command, "--help")
        assert code == 0 and all(e in out for e in expected), (command, out)
