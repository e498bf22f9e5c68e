"""The tokenization of training travels with the vectors: run folders, torch bundles, Vectors.tokenize."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import w2v
from clitools import cli
from w2v.errors import UserError
from w2v.pretrained import embedding
from w2v.runfolder import CONFIG, IDS, MODEL, OFFSETS
from w2v.vectors import Vectors, load

QUIET = dict(progress=False, tensorboard=False, evaluate=False)
TINY = dict(epochs=1, dim=8, min_count=1, threads=1, seed=1, **QUIET)
FIRST_LINE = "The King."
TEXT = FIRST_LINE + "\n" + ("The King rode to the castle.\nThe Queen's horse, a grey one, followed the king.\n"
                            "A knight told the King: \"The castle is far.\"\n") * 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Runs on the same tiny text: lowercased (the default), with case kept, and from Python sentences."""
    tmp = tmp_path_factory.mktemp("tok")
    text = tmp / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    w2v.train([str(text)], out=str(tmp / "lower"), **TINY)
    w2v.train([str(text)], out=str(tmp / "cased"), lowercase=False, **TINY)
    w2v.train(sentences=[["The", "King"], ["the", "king"]], out=str(tmp / "sentences"), **TINY)
    return {"lower": tmp / "lower", "cased": tmp / "cased", "sentences": tmp / "sentences"}


def _first_sentence_ids(run: Path) -> list[int]:
    """The word ids training gave the text's first line (the run's encoded corpus)."""
    ids, offsets = np.load(run / IDS), np.load(run / OFFSETS)
    return ids[offsets[0]:offsets[1]].tolist()


@pytest.mark.parametrize("name, expected", [("lower", ["the", "king"]), ("cased", ["The", "King"])])
def test_tokenize_and_encode_give_the_ids_training_gave(runs, name: str, expected: list[str]) -> None:
    trained = _first_sentence_ids(runs[name])
    for v in (load(runs[name]), Vectors.from_run(runs[name]), load(runs[name] / MODEL)):
        assert (v.tokenizer, v.lowercase) == ("default", name == "lower")
        assert v.tokenize(FIRST_LINE) == expected
        assert [v.index(t) for t in v.tokenize(FIRST_LINE)] == trained
        emb = embedding(v)
        assert (emb.tokenizer, emb.lowercase) == (v.tokenizer, v.lowercase)
        assert emb.encode(FIRST_LINE).tolist() == [i + emb.offset for i in trained]


def test_the_run_returned_by_train_knows_its_tokenizer(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("One Two three\n" * 3, encoding="utf-8")
    v = w2v.train([str(text)], out=str(tmp_path / "r"), tokenizer="whitespace", lowercase=False, **TINY).vectors()
    assert (v.tokenizer, v.lowercase) == ("whitespace", False)
    assert v.tokenize("One, Two") == ["One,", "Two"]


def test_lowercased_vectors_look_tokens_up_lowercased_and_cased_ones_keep_case(runs) -> None:
    lower, cased = embedding(load(runs["lower"])), embedding(load(runs["cased"]))
    assert lower.encode(["King"]).tolist() == lower.encode(["king"]).tolist() != [lower.unk_index]
    assert cased.encode(["King"]).tolist() != cased.encode(["king"]).tolist()
    assert lower.unk_index not in cased.encode(["King", "king"]).tolist()


def test_a_run_on_python_sentences_does_not_claim_a_tokenizer(runs) -> None:
    v = load(runs["sentences"])
    assert (v.tokenizer, v.lowercase) == (None, None)
    with pytest.raises(UserError, match="do not record how their text was tokenized.*tokenizer='default'"):
        v.tokenize("The King")
    assert embedding(v).encode(["The", "king"]).tolist() == [v.index("The") + 2, v.index("king") + 2]


def test_the_torch_bundle_keeps_the_tokenization(runs, tmp_path: Path) -> None:
    v = load(runs["cased"])
    v.save(tmp_path / "v.pt", format="torch")
    bundle = torch.load(tmp_path / "v.pt", weights_only=True)
    assert (bundle["tokenizer"], bundle["lowercase"]) == ("default", False)
    back = load(tmp_path / "v.pt")
    assert (back.tokenizer, back.lowercase) == ("default", False)
    assert back.tokenize(FIRST_LINE) == ["The", "King"]
    assert (v.head(3).tokenizer, v.normalized().lowercase) == ("default", False)


def test_an_old_bundle_without_the_keys_still_loads(tmp_path: Path) -> None:
    torch.save({"words": ["a", "b"], "vectors": torch.ones(2, 3)}, tmp_path / "old.pt")
    v = load(tmp_path / "old.pt")
    assert (v.tokenizer, v.lowercase, len(v)) == (None, None, 2)
    v.save(tmp_path / "again.pt")
    assert "tokenizer" not in torch.load(tmp_path / "again.pt", weights_only=True)


@pytest.mark.parametrize("fmt", ["text", "binary", "npy"])
def test_formats_without_a_record_give_none(tmp_path: Path, fmt: str) -> None:
    v = Vectors(["a", "b"], np.eye(2, dtype=np.float32), tokenizer="default", lowercase=True)
    v.save(tmp_path / "v", format=fmt)
    assert (load(tmp_path / "v").tokenizer, load(tmp_path / "v").lowercase) == (None, None)


@pytest.mark.parametrize("tokenizer, lowercase, message", [
    ("spaces", True, "unknown tokenizer 'spaces'"),
    ("default", "yes", "lowercase must be True or False"),
    ("default", None, "without lowercase"),
])
def test_a_bad_tokenization_is_one_line(tmp_path: Path, tokenizer, lowercase, message: str) -> None:
    with pytest.raises(UserError, match=message):
        Vectors(["a"], np.ones((1, 2)), tokenizer=tokenizer, lowercase=lowercase)
    torch.save({"words": ["a"], "vectors": torch.ones(1, 2), "tokenizer": tokenizer, "lowercase": lowercase},
               tmp_path / "bad.pt")
    with pytest.raises(UserError, match=f"bad.pt: .*{message}"):
        load(tmp_path / "bad.pt")


def test_a_damaged_config_leaves_the_vectors_usable(runs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["lower"], run)
    (run / CONFIG).write_text("{", encoding="utf-8")
    with pytest.warns(UserWarning, match="damaged.*do not know their tokenizer"):
        v = load(run)
    assert v.tokenizer is None and len(v) == len(load(runs["lower"]))
    (run / CONFIG).unlink()
    assert load(run).tokenizer is None
    assert json.loads((runs["lower"] / CONFIG).read_text())["config"]["tokenizer"] == "default"


def test_w2v_export_to_torch_keeps_the_tokenization(runs, tmp_path: Path) -> None:
    code, out = cli("export", runs["cased"], "--format", "torch", "--normalize", "-o", tmp_path / "v.pt")
    assert code == 0, out
    bundle = torch.load(tmp_path / "v.pt", weights_only=True)
    assert (bundle["tokenizer"], bundle["lowercase"]) == ("default", False)
