"""Continuing a finished run on new text (`w2v train --continue`): old rows stay where they
were, new words get rows that mean something, and a continued run is as safe as any other."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import w2v
from w2v.cli import main
from w2v.errors import Interrupted
from w2v.runfolder import REPLACED
from w2v.trainer import Trainer

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
QUIET = dict(progress=False, tensorboard=False, evaluate=False)
SETTINGS = dict(epochs=3, threads=1, dim=40, seed=2, **QUIET)


def _text(tmp_path: Path, name: str, source: str, lines: int) -> Path:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join(gzip.open(CORPORA / source, "rt", encoding="utf-8").read().splitlines()[:lines]))
    return path


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Run A on the KJV's start, then A continued on Moby-Dick into B."""
    tmp = tmp_path_factory.mktemp("continue")
    a_text, b_text = _text(tmp, "kjv", "kjv.txt.gz", 12_000), _text(tmp, "moby", "moby_dick.txt.gz", 25_000)
    a = w2v.train([str(a_text)], out=str(tmp / "A"), **SETTINGS)
    b = w2v.train([str(b_text)], out=str(tmp / "B"), continue_from=str(tmp / "A"), **SETTINGS)
    return a, b


def test_old_words_keep_their_rows_and_new_words_are_appended(stages) -> None:
    a, b = stages
    old = len(a.dictionary)
    assert b.dictionary.words[:old] == a.dictionary.words  # same index for every old word
    assert len(b.dictionary) > old and b.params.input.shape == (len(b.dictionary), 40)
    new_words = set(b.dictionary.words[old:])
    assert "queequeg" in new_words
    assert not new_words & set(a.dictionary.words)
    vocab = (b.run_dir / "vocab.tsv").read_text().splitlines()
    assert len(vocab) == len(b.dictionary) and vocab[0].split("\t")[0] == a.dictionary.words[0]
    # merged counts: an old word's count is its old count plus its count in the new text
    the_a, the_b = a.dictionary.counts[a.dictionary.index["the"]], b.dictionary.counts[b.dictionary.index["the"]]
    assert the_b > the_a


def test_new_words_get_meaningful_neighbours(stages) -> None:
    _, b = stages
    v = b.vectors()
    crew = {"stubb", "flask", "queequeg", "ahab", "starbuck", "captain", "mate", "harpooneer", "tashtego", "daggoo"}
    near = {w for w, _ in v.most_similar("starbuck", topn=15)}
    assert near & crew, near


def test_old_words_stay_close_to_where_they_were(stages) -> None:
    a, b = stages
    va, vb = a.vectors(), b.vectors()
    common = [w for w in ("father", "god", "king", "land", "son", "day", "people", "house") if w in va]
    overlap = [len({x for x, _ in va.most_similar(w, topn=10)} & {x for x, _ in vb.most_similar(w, topn=10)})
               for w in common]
    assert np.mean(overlap) >= 2, overlap


def test_history_records_every_stage(stages) -> None:
    _, b = stages
    history = json.loads((b.run_dir / "config.json").read_text())["history"]
    assert len(history) == 2
    assert history[1]["continued_from"].endswith("A") and history[1]["vocab_before"] < history[1]["vocab_after"]
    assert history[1]["files"][0].endswith("moby.txt")


def test_continuing_in_place_is_interruptible_and_resumes(tmp_path: Path) -> None:
    a_text, b_text = _text(tmp_path, "kjv", "kjv.txt.gz", 4000), _text(tmp_path, "moby", "moby_dick.txt.gz", 4000)
    run = tmp_path / "run"
    w2v.train([str(a_text)], out=str(run), **{**SETTINGS, "epochs": 1})
    before = torch.load(run / "model.pt", weights_only=True)["input"]
    from w2v.continuation import continued_config

    trainer = Trainer(continued_config(str(run), [str(b_text)], {**SETTINGS, "batch_words": 2000}))
    trainer.after_chunk = lambda n: trainer.stop.set() if n == 4 else None
    with pytest.raises(Interrupted):
        trainer.run()
    assert (run / REPLACED / "model.pt").exists()  # the old run is kept until the continued one finishes
    assert torch.equal(torch.load(run / REPLACED / "model.pt", weights_only=True)["input"], before)
    done = w2v.resume(str(run))
    assert not (run / REPLACED).exists() and (run / "model.pt").exists()
    assert done.params.input.shape[0] > before.shape[0]
    assert len(json.loads((run / "config.json").read_text())["history"]) == 2


def test_a_failed_continue_in_place_leaves_the_run_as_it_was(tmp_path: Path) -> None:
    a_text = _text(tmp_path, "kjv", "kjv.txt.gz", 3000)
    run = tmp_path / "run"
    w2v.train([str(a_text)], out=str(run), **{**SETTINGS, "epochs": 1})
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = CliRunner().invoke(main, ["train", "--continue", str(run), str(empty), "--quiet", "--no-eval"])
    assert result.exit_code == 2 and "empty" in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files


@pytest.mark.parametrize("args, message", [
    (["--dim", "50"], "--dim 50 differs from the run being continued (40)"),
    (["--model", "cbow"], "--model cbow differs"),
    (["--hs"], "--hs True differs"),
    (["--negative", "0", "--hs"], "differs"),
])
def test_changing_the_structure_is_a_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    a_text = _text(tmp_path, "kjv", "kjv.txt.gz", 3000)
    w2v.train([str(a_text)], out=str(tmp_path / "A"), **{**SETTINGS, "epochs": 1})
    result = CliRunner().invoke(main, ["train", "--continue", str(tmp_path / "A"), str(a_text), *args, "--quiet"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_runs_that_cannot_be_continued_are_refused(tmp_path: Path) -> None:
    a_text = _text(tmp_path, "kjv", "kjv.txt.gz", 3000)
    w2v.train([str(a_text)], out=str(tmp_path / "H"), hs=True, negative=0, **{**SETTINGS, "epochs": 1})
    for folder, message in ((tmp_path / "H", "hierarchical-softmax"), (tmp_path / "nothing", "not a finished")):
        result = CliRunner().invoke(main, ["train", "--continue", str(folder), str(a_text), "--quiet"])
        assert result.exit_code == 2 and message in result.output, result.output
