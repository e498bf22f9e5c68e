"""Sentiment of movie reviews with an LSTM over w2v vectors, against random embeddings.

    python examples/sentiment_rnn.py --vectors runs/default

Reads the 2,000 labelled reviews in corpora/movie_reviews.zip (Pang & Lee's polarity
data, as shipped with nltk) with nltk's corpus reader, splits them 1,600 / 400 with a
fixed seed (balanced), and trains the same LSTM classifier twice: once with its
embedding layer made from the trained vectors, once with random vectors of the same
shape and the same reserved rows. Both use frozen embeddings unless --fine-tune is given,
so the only difference between the two runs is what is in the table. It prints the
held-out accuracy of each.

The classifier reads one output per review: the LSTM's output at the review's last real
token. Reviews in a batch are padded to the longest, so that step is at ``length - 1``,
different for each row; ``last_step`` gathers it (the padded-batch form of the classic
TensorFlow recipe's transpose-and-gather, which took the last column and so read padding
for every review shorter than the longest).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a clone without installing the package
    sys.path.insert(0, str(REPO))

from w2v.corpus import TOKENIZERS  # noqa: E402
from w2v.pretrained import PretrainedEmbedding, embedding  # noqa: E402

from w2v.resources import corpora_dir  # noqa: E402

REVIEWS_ZIP = corpora_dir() / "movie_reviews.zip"  # ships with w2v
LABELS = ("neg", "pos")  # class index = position here

Review = tuple[list[str], int]


def read_reviews(zip_path: Path, tokenize: Callable[[str], list[str]]) -> list[Review]:
    """All reviews as (tokens, label), in file order, read from the zip by nltk's corpus reader."""
    import nltk
    from nltk.corpus.reader import CategorizedPlaintextCorpusReader
    from nltk.data import ZipFilePathPointer

    # nltk (3.9.3+) reads only below its data roots; the zip's folder becomes one.
    folder = str(zip_path.resolve().parent)
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)

    class Tokenizer:  # the reader wants an object with .tokenize
        def tokenize(self, text: str) -> list[str]:
            return tokenize(text)

    reader = CategorizedPlaintextCorpusReader(
        ZipFilePathPointer(str(zip_path), "movie_reviews/"), r"(neg|pos)/.*\.txt",
        cat_pattern=r"(neg|pos)/.*", word_tokenizer=Tokenizer())
    return [(list(reader.words(f)), LABELS.index(reader.categories(f)[0])) for f in reader.fileids()]


def split(reviews: Sequence[Review], test_per_class: int, seed: int) -> tuple[list[Review], list[Review]]:
    """A fixed, class-balanced train/test split: the same seed gives the same split."""
    rng = random.Random(seed)
    train: list[Review] = []
    test: list[Review] = []
    for label in range(len(LABELS)):
        group = [r for r in reviews if r[1] == label]
        rng.shuffle(group)
        test += group[:test_per_class]
        train += group[test_per_class:]
    return train, test


def last_step(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's output at its last real step: ``outputs[b, lengths[b] - 1]``.

    ``outputs`` is ``[B, T, H]`` (batch first) from a right-padded batch and ``lengths``
    is ``[B]``. ``outputs[:, -1]`` would be wrong for every sequence shorter than ``T``:
    a unidirectional RNN keeps running over the padding, so its last column has read
    pad rows. Gather picks one step per row instead.
    """
    if outputs.dim() != 3 or lengths.shape != outputs.shape[:1]:
        raise ValueError(f"want outputs [B, T, H] and lengths [B], got {tuple(outputs.shape)} "
                         f"and {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > outputs.shape[1]).any()):
        raise ValueError(f"lengths must be in 1..{outputs.shape[1]}, got {lengths.tolist()}")
    # [B] -> [B, 1, H]: for row b, every feature h reads time step lengths[b] - 1.
    index = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    return outputs.gather(1, index).squeeze(1)


class Classifier(nn.Module):
    """embedding -> LSTM -> output at the last real step -> linear to class scores."""

    def __init__(self, emb: nn.Embedding, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.emb = emb
        self.rnn = nn.LSTM(emb.embedding_dim, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.emb(ids))  # [B, T, hidden]
        return self.out(self.drop(last_step(outputs, lengths)))  # [B, classes] logits


def random_like(emb: PretrainedEmbedding, seed: int, freeze: bool) -> PretrainedEmbedding:
    """The baseline: the same words and reserved rows, random vectors of the same scale."""
    from w2v.vectors import Vectors

    trained = emb.layer.weight.detach()[emb.offset:]
    gen = torch.Generator().manual_seed(seed)
    # Matching the spread keeps the LSTM's inputs in the same range, so the baseline
    # loses the vectors' content, not their scale.
    matrix = torch.randn(trained.shape, generator=gen) * trained.std()
    return embedding(Vectors(emb.itos[emb.offset:], matrix), freeze=freeze)


def batches(data: Sequence[Review], size: int, gen: torch.Generator | None) -> list[list[Review]]:
    """Data in batches of ``size``; shuffled (by ``gen``) when a generator is given."""
    order = torch.randperm(len(data), generator=gen).tolist() if gen is not None else range(len(data))
    items = [data[i] for i in order]
    return [items[i:i + size] for i in range(0, len(items), size)]


def run(name: str, emb: PretrainedEmbedding, train: Sequence[Review], test: Sequence[Review],
        args: argparse.Namespace) -> float:
    """Train a fresh classifier on ``train``; return its accuracy on ``test``."""
    torch.manual_seed(args.seed)  # same initial LSTM and linear weights in every run
    model = Classifier(emb.layer, args.hidden, len(LABELS), args.dropout)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()  # on class indices: the sparse form, no one-hot labels
    gen = torch.Generator().manual_seed(args.seed)  # same batch order in every run
    started = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for batch in batches(train, args.batch_size, gen):
            ids, lengths = emb.encode_batch([tokens for tokens, _ in batch])
            labels = torch.tensor([label for _, label in batch])
            optimizer.zero_grad()
            loss = loss_fn(model(ids, lengths), labels)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)  # LSTMs over hundreds of steps spike otherwise
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"  {name}: epoch {epoch}/{args.epochs} train loss {total / len(train):.4f} "
              f"({time.time() - started:.0f}s)", flush=True)
    return accuracy(model, emb, test, args.batch_size)


@torch.no_grad()
def accuracy(model: nn.Module, emb: PretrainedEmbedding, data: Sequence[Review], batch_size: int) -> float:
    """Fraction of ``data`` whose highest-scoring class is its label."""
    model.eval()
    right = 0
    for batch in batches(data, batch_size, None):
        ids, lengths = emb.encode_batch([tokens for tokens, _ in batch])
        predicted = model(ids, lengths).argmax(dim=1)
        right += int((predicted == torch.tensor([label for _, label in batch])).sum())
    return right / len(data)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--vectors", default="runs/default",
                   help="a w2v run folder, .pt bundle or word2vec text/binary file")
    p.add_argument("--reviews", type=Path, default=REVIEWS_ZIP, help="the movie_reviews zip")
    p.add_argument("--tokenizer", default=None, choices=TOKENIZERS,
                   help="tokenizer for the reviews; default: the one the vectors were trained with "
                   "(recorded in run folders and .pt bundles), else 'default', lowercased")
    p.add_argument("--max-len", type=int, default=400, help="tokens kept per review: its last ones")
    p.add_argument("--fine-tune", action="store_true",
                   help="train the embeddings with the model instead of freezing them")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--test-per-class", type=int, default=200, help="held-out reviews of each label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-domain", action="store_true",
                   help="also train vectors on the training reviews plus the default corpus (never the test "
                   "reviews; --threads 1, so they repeat exactly) and compare all three tables")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads: the per-step matrices are small, so more threads buy little "
                   "on a busy machine (and the last digits of the results depend on the count)")
    return p.parse_args(argv)


class InDomainText:
    """The default corpus, then the training reviews: re-iterable token lists for w2v.train(sentences=...)."""

    def __init__(self, reviews: Sequence[Review]) -> None:
        self.reviews = reviews

    def __iter__(self):
        from w2v.corpus import Corpus
        from w2v.resources import default_corpus

        yield from Corpus(default_corpus())
        for tokens, _ in self.reviews:
            yield tokens


def in_domain_vectors(train: Sequence[Review], seed: int, out: Path):
    """Vectors trained on text near the task: one thread and a fixed seed, so they repeat exactly."""
    import w2v

    if (out / "model.pt").exists():
        from w2v.vectors import load

        return load(str(out))
    run = w2v.train(sentences=InDomainText(train), out=str(out), threads=1, seed=seed + 1, overwrite=True,
                    progress=False, tensorboard=False, evaluate=False)
    return run.vectors()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.vectors).exists():
        print(f"error: no vectors at {args.vectors}; train them first with `make train` "
              f"(or `w2v train --out {args.vectors}`), or pass --vectors PATH", file=sys.stderr)
        return 2
    if not args.reviews.is_file():
        print(f"error: reviews not found: {args.reviews}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    from w2v.vectors import load

    freeze = not args.fine_tune
    vectors = load(args.vectors)
    if args.tokenizer or vectors.tokenizer is None:  # word2vec files do not say how their text was split
        vectors.tokenizer = args.tokenizer or "default"
        vectors.lowercase = True if vectors.lowercase is None else vectors.lowercase
    trained = embedding(vectors, freeze=freeze)
    reviews = read_reviews(args.reviews, trained.tokenize)  # split as the vectors' training text was
    # The end of a review is where its verdict usually is, and the LSTM's last step
    # remembers recent tokens best: keep each review's last max_len tokens.
    reviews = [(tokens[-args.max_len:], label) for tokens, label in reviews]
    train, test = split(reviews, args.test_per_class, args.seed)

    tokens = [t for toks, _ in reviews for t in toks]
    known = sum(t in trained.stoi for t in tokens) / len(tokens)
    print(f"{len(train)} train / {len(test)} test reviews, up to {args.max_len} tokens each; "
          f"{trained!r}; {known:.1%} of review tokens have a vector")

    tables = [("w2v", trained), ("random", random_like(trained, args.seed, freeze))]
    if args.in_domain:
        vectors = in_domain_vectors(train, args.seed, REPO / "runs" / f"reviews-in-domain-seed{args.seed}")
        tables.insert(1, ("in-domain w2v", embedding(vectors, freeze=freeze)))
    results = {}
    for name, emb in tables:
        results[name] = run(name, emb, train, test, args)
    mode = "fine-tuned" if args.fine_tune else "frozen"
    for name, acc in results.items():
        right = round(acc * len(test))
        print(f"held-out accuracy, {name} embeddings ({mode}): {acc:.1%} ({right}/{len(test)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
