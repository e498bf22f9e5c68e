"""Training settings: every option's validation, from the command line, Python and config.json."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from w2v.cli import main
from w2v.config import TrainConfig
from w2v.errors import UserError
from clitools import cli, one_line_error

MOBY = str(Path(__file__).resolve().parent.parent / "corpora" / "moby_dick.txt.gz")
FAST = ["--epochs", "1", "--dim", "10", "--no-eval", "--no-tensorboard", "--quiet"]


@pytest.mark.parametrize("args, message", [
    (["--dim", "0"], "--dim"), (["--negative", "-1"], "--negative"), (["--window", "0"], "--window"),
    (["--sample", "-0.1"], "--sample"), (["--epochs", "0"], "--epochs"), (["--alpha", "0"], "--alpha"),
    (["--negative", "0"], "--hs"), (["--negative", "5000"], "at most 1000"),
])
def test_cli_option_out_of_range_is_one_line_error(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", MOBY, "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    # tests/test_train.py covers --dim 0, --negative -1, --window 0, --sample -0.1, --epochs 0, --alpha 0.
    (["--alpha", "-0.5"], "--alpha must be above 0"),
    (["--alpha", "inf"], "--alpha must be a finite number"),  # used to crash the C kernel (SIGSEGV)
    (["--alpha", "nan"], "--alpha must be a finite number"),
    (["--min-alpha", "-1"], "--min-alpha must be 0 or more"),
    (["--sample", "nan"], "--sample must be a finite number"),
    (["--ns-exponent", "nan"], "--ns-exponent must be a finite number"),  # trained silently on garbage
    (["--min-count", "0"], "--min-count must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--batch-words", "0"], "--batch-words must be at least 1"),
    (["--max-vocab-size", "0"], "--max-vocab-size must be at least 1"),
    (["--max-final-vocab", "0"], "--max-final-vocab must be at least 1"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be 0 or more"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--window", "20000"], "longer than the longest sentence"),
    (["--dim", "3000000000"], "--dim 3000000000 is too large"),
    (["--negative", "3000000000"], "--negative 3000000000 is too large"),
    (["--device", "bogus"], "--device 'bogus' is not a device"),
])
def test_option_out_of_range(tmp_path: Path, args: list[str], message: str) -> None:
    one_line_error(*cli("train", MOBY, "--out", tmp_path / "run", *FAST, *args), message)


def test_not_a_number_option_is_clicks_usage_error(tmp_path: Path) -> None:
    code, out = cli("train", MOBY, "--out", tmp_path, "--dim", "ten")
    assert code == 2 and "Invalid value for '--dim'" in out and "Traceback" not in out


@pytest.mark.parametrize("args, message", [
    (["--seed", str(2**64)], "--seed must be below 2**63"),
    (["--epochs", "10000000"], "--epochs must be at most"),
    (["--dist-timeout", "inf"], "--dist-timeout must be a number of seconds"),
    (["--device", "meta"], "w2v trains on cpu or cuda only"),
    (["--device", "mps"], "w2v trains on cpu or cuda only"),
])
def test_options_that_used_to_crash_later_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    one_line_error(*cli("train", MOBY, "--out", tmp_path / "run", *FAST, *args), message)


@pytest.mark.parametrize("field, value", [
    ("dim", "100"), ("dim", 1.5), ("epochs", True), ("hs", 1), ("alpha", "0.1"), ("model", 3),
    ("paths", "corpus.txt"), ("threads", [2]),
])
def test_settings_of_the_wrong_type_are_refused(field: str, value: object) -> None:
    # config.json of a run folder may hold anything: TrainConfig checks types as well as ranges.
    with pytest.raises(UserError, match=f"--{field.replace('_', '-')} must be"):
        TrainConfig.from_dict({field: value}).resolved()


def test_every_setting_is_an_option_with_help_and_its_default() -> None:
    result = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    for name, f in TrainConfig.options():
        flag = (f.metadata["flags"] or f"--{name.replace('_', '-')}").split("/")[0]
        assert flag in result.output, flag
        assert f.metadata["help"].split(".")[0][:30] in " ".join(result.output.split())


def test_epochs_default_to_enough_passes_for_the_corpus(tmp_path: Path) -> None:
    from w2v.semantics import default_epochs

    assert default_epochs(4_400_000) == 15 and default_epochs(12_600_000) == 8
    assert default_epochs(100_000_000) == 5 and default_epochs(2_000_000_000) == 5
    code, out = cli("train", MOBY, "--out", tmp_path / "run", "--dim", "10", "--no-eval", "--no-tensorboard")
    assert code == 0 and "epoch 15/15" in out  # 200k words: the most passes
    import json

    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["epochs"] == 15
