"""`w2v info RUN`: what a run folder holds, for people and for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from w2v.cli import main

MOBY = str(Path(__file__).resolve().parent.parent / "corpora" / "moby_dick.txt.gz")


def test_info_shows_settings_corpus_speed_and_scores(tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", MOBY, "--out", str(run), "--epochs", "1", "--dim", "30",
                                        "--no-tensorboard", "--quiet"])
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(main, ["info", str(run)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(finished)" in out and "sg, 30 dims" in out and "1 file(s)" in out
    assert "vocabulary: 4,155 words" in out and "words/s" in out
    assert "evaluation: analogies" in out and "WordSim-353 Spearman" in out
    record = json.loads(CliRunner().invoke(main, ["info", str(run), "--json"]).output)
    assert record["status"] == "finished" and record["config"]["dim"] == 30
    assert record["evaluation"]["analogy_attempted"] > 0 and record["stats"]["words_per_second"] > 0


def test_info_on_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(tmp_path)])
    assert result.exit_code == 2 and result.output.startswith("Error: ") and "not a training run" in result.output


def test_the_end_of_training_scores_go_to_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", MOBY, "--out", str(run), "--epochs", "1", "--dim", "30", "--quiet"])
    assert trained.exit_code == 0, trained.output
    events = EventAccumulator(str(run))
    events.Reload()
    assert {"eval/analogies", "eval/wordsim353", "epoch/loss"} <= set(events.Tags()["scalars"])
    analogies = events.Scalars("eval/analogies")[0]
    assert analogies.step == 1 and 0 <= analogies.value <= 1
