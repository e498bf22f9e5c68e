"""Training end to end on real text: the loss falls, related words end up close, runs reproduce."""

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

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
KJV = str(CORPORA / "kjv.txt.gz")
MOBY = str(CORPORA / "moby_dick.txt.gz")
RELATED = [("father", "mother"), ("moses", "aaron"), ("gold", "silver"), ("bread", "wine")]
UNRELATED = [("father", "silver"), ("moses", "wine"), ("gold", "son"), ("bread", "aaron")]
QUIET = dict(progress=False, tensorboard=False, evaluate=False)


@pytest.fixture(scope="module")
def kjv_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("kjv")
    return w2v.train([KJV], out=str(out), epochs=3, threads=2, **QUIET)


def test_loss_falls_and_related_words_are_closer(kjv_model):
    losses = kjv_model.stats["epoch_losses"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    v = kjv_model.vectors()
    related = np.mean([v.similarity(a, b) for a, b in RELATED])
    unrelated = np.mean([v.similarity(a, b) for a, b in UNRELATED])
    assert related > unrelated + 0.3, (related, unrelated)
    assert [w for w, _ in v.most_similar("gold", topn=5)].count("silver") == 1


def test_run_folder_holds_what_users_load(kjv_model):
    run = kjv_model.run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["model"] == "sg" and config["config"]["epochs"] == 3
    assert config["config"]["paths"] == [KJV]
    assert config["corpus"]["raw_tokens"] > 700_000 and "torch" in config["versions"]
    state = torch.load(run / "model.pt", weights_only=True)
    assert state["input"].shape == (len(kjv_model.dictionary), 100)
    assert state["output"].shape == state["input"].shape
    vocab = (run / "vocab.tsv").read_text().splitlines()
    assert vocab[0].split("\t")[0] == "the" and len(vocab) == len(kjv_model.dictionary)
    assert np.load(run / "ids.npy", mmap_mode="r").dtype == np.int32
    assert not list(run.glob(".*tmp*")) and not (run / "checkpoint.pt").exists()


def test_same_seed_and_one_thread_give_identical_vectors(tmp_path):
    runs = [
        w2v.train([MOBY], out=str(tmp_path / name), epochs=1, threads=1, seed=seed, **QUIET).params.input
        for name, seed in (("a", 7), ("b", 7), ("c", 8))
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("model", ["sg", "cbow"])
def test_hierarchical_softmax_alone_and_with_negatives_trains(tmp_path, model):
    for negative in (0, 5):
        m = w2v.train([MOBY], out=str(tmp_path / f"{model}{negative}"), model=model, hs=True, negative=negative,
                      epochs=2, threads=2, **QUIET)
        assert m.params.output_hs.shape == (len(m.dictionary) - 1, 100)
        assert m.stats["epoch_losses"][1] < m.stats["epoch_losses"][0]
        assert torch.isfinite(m.params.input).all()


def test_text8_style_single_line_trains(tmp_path):
    # One line, no newline at all: streamed in blocks and cut into 10,000-token sentences.
    words = gzip.open(MOBY, "rt", encoding="utf-8").read().lower().split()[:60_000]
    path = tmp_path / "one_line.txt"
    path.write_text(" ".join(words))
    m = w2v.train([str(path)], out=str(tmp_path / "run"), epochs=1, **QUIET)
    offsets = np.load(m.run_dir / "offsets.npy")
    assert np.diff(offsets).max() <= 10_000 and len(offsets) - 1 >= 6


def test_cli_trains_reports_and_refuses_to_clobber(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", KJV, "--out", str(out), "--epochs", "1", "--no-tensorboard"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "epoch 1/1: loss" in result.output
    assert "analogies:" in result.output and "king - man + woman = " in result.output
    assert (out / "model.pt").exists() and (out / "vocab.tsv").exists()
    again = runner.invoke(main, args)
    assert again.exit_code == 2
    assert again.output.strip().splitlines()[-1].startswith("Error:") and "--overwrite" in again.output
    assert runner.invoke(main, args + ["--overwrite", "--quiet", "--no-eval"]).exit_code == 0


def test_cli_writes_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = CliRunner().invoke(main, ["train", MOBY, "--out", str(tmp_path), "--epochs", "2", "--no-eval"])
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/words_per_sec", "epoch/loss"} <= tags
    rates = [e.value for e in events.Scalars("train/learning_rate")]
    assert rates == sorted(rates, reverse=True)  # linear decay
