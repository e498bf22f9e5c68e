"""Queries: the analogy command line, gensim's KeyedVectors names side by side with gensim, case hints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from w2v.cli import main
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
