"""The embedding layer built from vectors, and the last-real-step gather of the RNN example."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from w2v.pretrained import PAD, UNK, PretrainedEmbedding, embedding, load_embedding
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


# --- tokenization, empty sentences, task vocabularies, saving -------------------------------

@pytest.fixture
def lowercased() -> Vectors:
    gen = torch.Generator().manual_seed(1)
    words = ["the", "king", "rode", "castle", "queen's"]
    return Vectors(words, torch.randn(5, 4, generator=gen) * 3 + 1, tokenizer="default", lowercase=True)


def test_encode_tokenizes_text_and_lowercases_tokens_like_training(lowercased: Vectors) -> None:
    emb = embedding(lowercased)
    assert emb.encode("The King rode, to the Castle!").tolist() == [2, 3, 4, 1, 2, 5]
    assert emb.encode(["The", "KING", "queen's"]).tolist() == [2, 3, 6]  # a lowercased vocabulary has no "King"
    ids, lengths = emb.encode_batch(["The Queen's castle", ["king"], "The"])
    assert ids.tolist() == [[2, 6, 5], [3, 0, 0], [2, 0, 0]] and lengths.tolist() == [3, 1, 1]
    with pytest.raises(UserError, match="list of sentences"):
        emb.encode_batch("the king")
    with pytest.raises(UserError, match="encode_batch"):
        emb.encode([["the"], ["king"]])


def test_vectors_without_a_tokenizer_say_how_to_give_one(vectors: Vectors) -> None:
    emb = embedding(vectors)
    assert emb.encode(["The", "cat"]).tolist() == [1, 3]  # unknown lowercasing: looked up as given
    with pytest.raises(UserError, match="tokenizer='default', lowercase=True"):
        emb.encode("the cat")
    given = embedding(vectors, tokenizer="default", lowercase=True)
    assert given.encode("The Cat sat.").tolist() == [2, 3, 4]
    with pytest.raises(UserError, match="without lowercase"):
        embedding(vectors, tokenizer="whitespace")
    with pytest.warns(UserWarning, match="lowercase=False overrides the True"):
        cased = embedding(Vectors(vectors.words, vectors.matrix, tokenizer="default", lowercase=True), lowercase=False)
    assert (cased.tokenizer, cased.lowercase) == ("default", False)


def test_an_empty_sentence_is_one_pad_step_through_a_packed_rnn(example, lowercased: Vectors) -> None:
    emb = embedding(lowercased)
    ids, lengths = emb.encode_batch(["the king rode", "", [], "!!"])  # "!!" has no tokens either
    assert lengths.tolist() == [3, 1, 1, 1] and ids[1:].tolist() == [[0, 0, 0]] * 3
    assert emb.encode("").tolist() == []
    torch.manual_seed(0)
    rnn = nn.GRU(emb.dim, 3, batch_first=True)
    packed = nn.utils.rnn.pack_padded_sequence(emb.layer(ids), lengths, batch_first=True, enforce_sorted=False)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True)
    last = example.last_step(outputs, lengths)
    alone, _ = rnn(emb.layer(torch.tensor([[emb.pad_index]])))
    assert torch.allclose(last[1], alone[0, -1], atol=1e-6) and torch.equal(last[1], last[2])

    bare = embedding(lowercased, padding=False)
    with pytest.raises(UserError, match="empty sentence needs a padding row") as error:
        bare.encode_batch(["the", ""])
    assert isinstance(error.value, ValueError)


def test_a_task_vocabulary_copies_known_words_and_draws_the_rest(lowercased: Vectors) -> None:
    task = ["Castle", "dragon", "the", "castle", "sword"]
    with pytest.warns(UserWarning, match="2 of 4 vocabulary words have no trained vector"):
        emb = embedding(lowercased, vocabulary=task, seed=7)
    assert emb.itos == [PAD, UNK, "castle", "dragon", "the", "sword"]  # lowercased, first of each kept
    assert emb.missing == ["dragon", "sword"]
    weight = emb.layer.weight
    assert torch.equal(weight[2], lowercased["castle"]) and torch.equal(weight[4], lowercased["the"])
    assert torch.allclose(weight[1], lowercased.matrix.mean(0))  # <unk>: the mean of all the vectors
    assert emb.encode("The dragon's Castle").tolist() == [4, 1, 2]
    with pytest.warns(UserWarning):
        again = embedding(lowercased, vocabulary=task, seed=7)
        other = embedding(lowercased, vocabulary=task, seed=8)
    assert torch.equal(again.layer.weight, weight)
    assert not torch.equal(other.layer.weight[3], weight[3]) and torch.equal(other.layer.weight[2], weight[2])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        many = embedding(lowercased, vocabulary=[f"new{i}" for i in range(4000)], seed=0).layer.weight[2:]
    source = lowercased.matrix
    assert torch.allclose(many.mean(0), source.mean(0), atol=0.15)  # drawn where trained words lie
    assert torch.allclose(many.std(0), source.std(0, correction=0), rtol=0.1)  # and at their scale


def test_task_vocabulary_mistakes_are_one_line(lowercased: Vectors) -> None:
    with pytest.raises(UserError, match="limit or vocabulary"):
        embedding(lowercased, vocabulary=["the"], limit=2)
    with pytest.raises(UserError, match="list of words"):
        embedding(lowercased, vocabulary="the king")
    with pytest.raises(UserError, match="empty"):
        embedding(lowercased, vocabulary=[])


def test_save_and_load_keep_fine_tuned_weights_and_encoding(lowercased: Vectors, tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        emb = embedding(lowercased, freeze=False, vocabulary=["king", "dragon", "the"])
    optimizer = torch.optim.SGD(emb.layer.parameters(), lr=0.5)
    emb.layer(emb.encode("the dragon king")).sum().backward()
    optimizer.step()
    assert not torch.equal(emb.layer.weight[2], lowercased["king"])  # fine-tuned
    emb.save(tmp_path / "emb.pt")
    back = PretrainedEmbedding.load(tmp_path / "emb.pt")
    assert torch.equal(back.layer.weight, emb.layer.weight) and back.layer.weight.requires_grad
    assert (back.itos, back.stoi, back.pad_index, back.unk_index, back.offset, back.missing) == \
        (emb.itos, emb.stoi, emb.pad_index, emb.unk_index, emb.offset, emb.missing)
    assert (back.tokenizer, back.lowercase, back.layer.padding_idx) == ("default", True, 0)
    for text in ("The Dragon and the king", ["KING", "elf"]):
        assert torch.equal(back.encode(text), emb.encode(text))
    plain = torch.load(tmp_path / "emb.pt", weights_only=True)  # no pickle needed
    assert plain["frozen"] is False and plain["itos"] == emb.itos

    frozen = embedding(Vectors(lowercased.words, lowercased.matrix), padding=False)  # no tokenizer, no pad row
    frozen.save(tmp_path / "emb.pt")  # replaces the file
    back = load_embedding(tmp_path / "emb.pt")
    assert not back.layer.weight.requires_grad and back.layer.padding_idx is None
    assert (back.pad_index, back.unk_index, back.tokenizer, back.lowercase) == (None, 0, None, None)
    assert [p.name for p in tmp_path.iterdir()] == ["emb.pt"]  # no temporary left behind


def test_a_foreign_or_damaged_embedding_file_is_one_line(lowercased: Vectors, tmp_path: Path) -> None:
    path = tmp_path / "e.pt"
    path.write_text("not torch")
    with pytest.raises(UserError, match="not a torch file"):
        PretrainedEmbedding.load(path)
    lowercased.save(path)  # a vectors bundle, not an embedding
    with pytest.raises(UserError, match="not a w2v embedding file"):
        PretrainedEmbedding.load(path)
    embedding(lowercased).save(path)
    good = torch.load(path, weights_only=True)
    for field, value, message in [("itos", ["a"], "'itos' is \\['a'\\], expected a list of 7 strings"),
                                  ("offset", 9, "'offset' is 9"), ("unk_index", 3, "'unk_index' is 3"),
                                  ("weight", torch.ones(7), "'weight' is a torch.float32 tensor of shape \\(7,\\)"),
                                  ("lowercase", None, "without lowercase"), ("version", 2, "version 2")]:
        torch.save({**good, field: value}, path)
        with pytest.raises(UserError, match=message) as error:
            PretrainedEmbedding.load(path)
        assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="not found"):
        PretrainedEmbedding.load(tmp_path / "nope.pt")
