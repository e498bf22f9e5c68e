"""The embedding layer built from vectors, and the last-real-step gather of the RNN example."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from w2v.pretrained import PAD, UNK, embedding
from w2v.errors import UserError
from w2v.vectors import Vectors

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sentiment_rnn.py"


@pytest.fixture
def vectors() -> Vectors:
    gen = torch.Generator().manual_seed(0)
    words = ["the", "cat", "sat", "on", "mat"]
    return Vectors(words, torch.randn(5, 4, generator=gen), counts=[9, 5, 4, 3, 2])


@pytest.fixture(scope="module")
def example():
    """examples/sentiment_rnn.py as a module (it runs nothing on import)."""
    spec = importlib.util.spec_from_file_location("sentiment_rnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_known_words_get_their_exported_rows(vectors: Vectors) -> None:
    emb = embedding(vectors)
    assert emb.offset == 2 and emb.pad_index == 0 and emb.unk_index == 1
    assert len(emb) == len(vectors) + 2 and emb.dim == vectors.dim
    for i, word in enumerate(vectors.words):
        # Row = the trainer's index + offset, and the layer returns the vector bit for bit.
        assert emb.stoi[word] == vectors.index(word) + emb.offset == i + 2
        assert emb.itos[emb.stoi[word]] == word
        row = emb.layer(torch.tensor([emb.stoi[word]]))[0]
        assert torch.equal(row, vectors[word])
    ids = emb.encode(["mat", "the", "cat"])
    assert ids.dtype == torch.long
    assert torch.equal(emb.layer(ids), torch.stack([vectors["mat"], vectors["the"], vectors["cat"]]))


def test_unknown_words_get_the_mean_row_and_padding_is_zero(vectors: Vectors) -> None:
    emb = embedding(vectors)
    assert emb.itos[:2] == [PAD, UNK]
    ids = emb.encode(["dog", "the", "Cat"])  # lookup is exact: "Cat" is not "cat"
    assert ids.tolist() == [1, 2, 1]
    out = emb.layer(ids)
    assert torch.allclose(out[0], vectors.matrix.mean(0)) and torch.equal(out[0], out[2])
    assert torch.equal(emb.layer(torch.tensor([0])), torch.zeros(1, vectors.dim))


def test_freeze_stops_gradients_and_fine_tuning_keeps_padding_and_source(vectors: Vectors) -> None:
    frozen = embedding(vectors, freeze=True)
    assert not frozen.layer.weight.requires_grad
    out = nn.Linear(vectors.dim, 1)(frozen.layer(frozen.encode(["the", "dog"]))).sum()
    out.backward()
    assert frozen.layer.weight.grad is None

    before = vectors.matrix.clone()
    tuned = embedding(vectors, freeze=False)
    assert tuned.layer.weight.requires_grad
    ids, _ = tuned.encode_batch([["the", "cat"], ["sat"]])  # second row padded
    tuned.layer(ids).sum().backward()
    grad = tuned.layer.weight.grad
    assert torch.equal(grad[0], torch.zeros(vectors.dim))  # padding_idx: never updated
    assert grad[tuned.stoi["the"]].abs().sum() > 0
    with torch.no_grad():
        tuned.layer.weight.add_(1.0)
    assert torch.equal(vectors.matrix, before)  # the layer owns a copy


def test_encode_batch_pads_right_and_reports_lengths(vectors: Vectors) -> None:
    emb = embedding(vectors)
    ids, lengths = emb.encode_batch([["the", "cat", "sat"], ["mat"], ["on", "xyz"]])
    assert lengths.tolist() == [3, 1, 2]
    assert ids.tolist() == [[2, 3, 4], [6, 0, 0], [5, 1, 0]]
    ids, lengths = emb.encode_batch([["the", "cat", "sat"], ["mat"]], max_len=2)
    assert lengths.tolist() == [2, 1] and ids.tolist() == [[2, 3], [6, 0]]
    with pytest.raises(UserError):
        emb.encode_batch([["the"]], max_len=0)


def test_options_without_reserved_rows_and_limit(vectors: Vectors) -> None:
    bare = embedding(vectors, padding=False, unknown=False)
    assert bare.offset == 0 and bare.pad_index is None and bare.unk_index is None
    assert bare.layer.padding_idx is None
    assert torch.equal(bare.layer.weight, vectors.matrix)
    assert bare.layer.weight.data_ptr() != vectors.matrix.data_ptr()
    with pytest.raises(KeyError, match="dog"):
        bare.encode(["the", "dog"])
    with pytest.raises(ValueError, match="padding"):
        bare.encode_batch([["the", "cat"], ["sat"]])
    assert bare.encode_batch([["the", "cat"], ["sat", "on"]])[0].tolist() == [[0, 1], [2, 3]]

    unk_only = embedding(vectors, padding=False)
    assert (unk_only.offset, unk_only.unk_index, unk_only.stoi["the"]) == (1, 0, 1)

    top = embedding(vectors, limit=2)
    assert len(top) == 4 and top.encode(["cat", "sat"]).tolist() == [3, 1]
    assert torch.allclose(top.layer.weight[1], vectors.matrix[:2].mean(0))  # mean of kept words only
    with pytest.raises(UserError):
        embedding(vectors, limit=0)


def test_numpy_matrix_and_path(vectors: Vectors, tmp_path: Path) -> None:
    from_numpy = embedding(Vectors(vectors.words, vectors.matrix.numpy().astype(np.float64)))
    assert from_numpy.layer.weight.dtype == torch.float32
    vectors.save(tmp_path / "v.pt")
    from_path = embedding(tmp_path / "v.pt")
    assert torch.equal(from_path.layer.weight, embedding(vectors).layer.weight)


@pytest.mark.parametrize("rnn_type", [nn.LSTM, nn.GRU])
def test_last_step_matches_each_sequence_run_alone(example, rnn_type: type[nn.RNNBase]) -> None:
    torch.manual_seed(0)
    emb = nn.Embedding(20, 6, padding_idx=0)
    rnn = rnn_type(6, 5, batch_first=True)
    seqs = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12], [13]]
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), 5, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)

    outputs, _ = rnn(emb(ids))
    picked = example.last_step(outputs, lengths)
    for b, s in enumerate(seqs):
        alone, _ = rnn(emb(torch.tensor([s])))  # no padding at all
        assert torch.allclose(picked[b], alone[0, -1], atol=1e-6)
    # The naive last column reads padding for every sequence but the longest.
    assert torch.allclose(outputs[0, -1], picked[0])
    assert not torch.allclose(outputs[1, -1], picked[1], atol=1e-4)

    with pytest.raises(ValueError):
        example.last_step(outputs, torch.tensor([5, 0, 3, 1]))
    with pytest.raises(ValueError):
        example.last_step(outputs, torch.tensor([6, 2, 3, 1]))


def test_classifier_scores_a_padded_batch_like_single_reviews(example, vectors: Vectors) -> None:
    emb = embedding(vectors)
    torch.manual_seed(0)
    model = example.Classifier(emb.layer, hidden=8, classes=2, dropout=0.5).eval()
    reviews = [["the", "cat", "sat", "on", "mat"], ["cat", "dog"], ["mat"]]
    ids, lengths = emb.encode_batch(reviews)
    logits = model(ids, lengths)
    assert logits.shape == (3, 2)
    loss = nn.CrossEntropyLoss()(logits, torch.tensor([1, 0, 1]))  # class indices, not one-hot
    assert loss.ndim == 0
    for b, review in enumerate(reviews):
        one, n = emb.encode_batch([review])
        assert torch.allclose(model(one, n)[0], logits[b], atol=1e-6)


def test_split_is_balanced_and_fixed(example) -> None:
    reviews = [([f"w{i}"], i % 2) for i in range(40)]
    train, test = example.split(reviews, test_per_class=5, seed=3)
    assert len(test) == 10 and len(train) == 30
    assert sum(label for _, label in test) == 5
    assert {t[0][0] for t in train}.isdisjoint(t[0][0] for t in test)
    assert example.split(reviews, 5, 3) == (train, test)


def test_example_arguments_seeds_and_modes(example) -> None:
    args = example.parse_args([])
    assert (args.vectors, args.seeds, args.modes, args.split_seed) == (example.DEFAULT, [0], ["frozen"], 0)
    args = example.parse_args(["--seeds", "0", "1", "2", "--mode", "both"])
    assert (args.seeds, args.modes) == ([0, 1, 2], ["frozen", "fine-tuned"])
    args = example.parse_args(["--seed", "3", "--fine-tune"])
    assert (args.seeds, args.modes) == ([3], ["fine-tuned"])
    with pytest.raises(SystemExit):
        example.parse_args(["--seeds", "1", "1"])


def test_example_random_baseline_and_table(example, vectors: Vectors) -> None:
    rand = example.random_vectors(vectors, seed=1)
    assert rand.words == vectors.words and tuple(rand.matrix.shape) == tuple(vectors.matrix.shape)
    assert torch.equal(torch.as_tensor(rand.matrix), torch.as_tensor(example.random_vectors(vectors, 1).matrix))
    results = {("rand", "frozen", 0): 0.5, ("w2v", "frozen", 0): 0.6,
               ("rand", "frozen", 1): 0.6, ("w2v", "frozen", 1): 0.6}
    lines = example.table(results, {"w2v": "rand"}, [0, 1], ["frozen"]).splitlines()
    assert lines[2:] == ["| rand | frozen | 50.0% | 60.0% | 55.0% ± 7.1% |  |",
                         "| w2v | frozen | 60.0% | 60.0% | 60.0% ± 0.0% | +5.0 ± 7.1 pts |"]


def test_package_level_call_survives_importing_the_submodule() -> None:
    # The layer lives in w2v.pretrained so that importing it never shadows the function w2v.embedding.
    # A fresh interpreter, so that the import order is the one a user's script has.
    code = ("import torch, w2v\nfrom w2v.vectors import Vectors\n"
            "v = Vectors(['a', 'b'], torch.ones(2, 3))\n"
            "first = w2v.embedding(v)\nimport w2v.pretrained\nsecond = w2v.embedding(v, unknown=False)\n"
            "assert (first.offset, second.offset) == (2, 1), (first, second)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=EXAMPLE.parent.parent,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
