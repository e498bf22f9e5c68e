"""Sentiment of movie reviews with an LSTM over w2v vectors, against random embeddings.

    python examples/sentiment_rnn.py                       # default-corpus vectors, seed 0, frozen
    python examples/sentiment_rnn.py --in-domain --mode both --seeds 0 1 2

Reads the 2,000 labelled reviews in corpora/movie_reviews.zip (Pang & Lee's polarity
data, as shipped with nltk) with nltk's corpus reader, splits them 1,600 / 400 with a
fixed seed (balanced), and trains the same LSTM classifier on each embedding table:
vectors trained on the default corpus (by the example itself, one thread and a fixed
seed, so they repeat exactly; --vectors PATH for your own), with --in-domain vectors
trained on the training reviews plus the default corpus, and for each of them random
vectors of the same shape and the same reserved rows. Every table gets the same initial
weights and batch order, so the only difference between runs is what is in the table.
Embeddings are frozen unless --fine-tune (or --mode both). It prints the held-out
accuracy of each, and over several --seeds a table with the mean and spread.

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

from w2v.corpus import TOKENIZERS, make_tokenizer  # noqa: E402
from w2v.pretrained import PretrainedEmbedding, embedding  # noqa: E402
from w2v.resources import corpora_dir  # noqa: E402
from w2v.vectors import Vectors  # noqa: E402

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


def random_vectors(vectors: Vectors, seed: int) -> Vectors:
    """The baseline: the same words, random vectors of the same shape and spread."""
    matrix = torch.as_tensor(vectors.matrix).detach().to(torch.float32)
    gen = torch.Generator().manual_seed(seed)
    # Matching the spread keeps the LSTM's inputs in the same range, so the baseline
    # loses the vectors' content, not their scale. (embedding() adds the same <pad> and
    # <unk> rows to both: <unk> is the mean of the vectors either way.)
    return Vectors(list(vectors.words), torch.randn(matrix.shape, generator=gen) * matrix.std())


def batches(data: Sequence[Review], size: int, gen: torch.Generator | None) -> list[list[Review]]:
    """Data in batches of ``size``; shuffled (by ``gen``) when a generator is given."""
    order = torch.randperm(len(data), generator=gen).tolist() if gen is not None else range(len(data))
    items = [data[i] for i in order]
    return [items[i:i + size] for i in range(0, len(items), size)]


def run(name: str, emb: PretrainedEmbedding, train: Sequence[Review], test: Sequence[Review],
        args: argparse.Namespace, seed: int) -> float:
    """Train a fresh classifier on ``train``; return its accuracy on ``test``."""
    torch.manual_seed(seed)  # same initial LSTM and linear weights for every table
    model = Classifier(emb.layer, args.hidden, len(LABELS), args.dropout)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()  # on class indices: the sparse form, no one-hot labels
    gen = torch.Generator().manual_seed(seed)  # same batch order for every table
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


DEFAULT = "default"  # --vectors: the example trains its own default-corpus vectors
MODES = ("frozen", "fine-tuned")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--vectors", default=DEFAULT,
                   help=f"'{DEFAULT}': vectors the example trains on the default corpus (one thread, seed N + 1 "
                   "for --seed N, so they repeat exactly; cached in runs/default-corpus-seedN); or your own: "
                   "a w2v run folder, .pt bundle or word2vec text/binary file (./default for a path of that name)")
    p.add_argument("--reviews", type=Path, default=REVIEWS_ZIP, help="the movie_reviews zip")
    p.add_argument("--tokenizer", default=None, choices=TOKENIZERS,
                   help="tokenizer for the reviews; default: the one the vectors were trained with "
                   "(recorded in run folders and .pt bundles), else 'default', lowercased")
    p.add_argument("--max-len", type=int, default=400, help="tokens kept per review: its last ones")
    p.add_argument("--mode", choices=(*MODES, "both"), default="frozen",
                   help="freeze the embeddings, train them with the model (fine-tuned), or run both")
    p.add_argument("--fine-tune", dest="mode", action="store_const", const="fine-tuned",
                   help="the same as --mode fine-tuned")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--test-per-class", type=int, default=200, help="held-out reviews of each label")
    p.add_argument("--seed", "--seeds", dest="seeds", type=int, nargs="+", default=[0], metavar="N",
                   help="one or more seeds; each sets the classifier's initial weights and batch order, the "
                   "random baseline and the seed of the vectors the example trains; several give a table with "
                   "the mean and standard deviation")
    p.add_argument("--split-seed", type=int, default=0,
                   help="the train/test split, the same for every --seed so that all compare on one test set")
    p.add_argument("--in-domain", action="store_true",
                   help="also train vectors on the training reviews plus the default corpus (never the test "
                   "reviews; one thread, so they repeat exactly), with their own random baseline")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads: the per-step matrices are small, so more threads buy little "
                   "on a busy machine (and the last digits of the results depend on the count)")
    args = p.parse_args(argv)
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        p.error(f"seeds must be distinct and 0 or more, not {args.seeds}")
    args.modes = list(MODES) if args.mode == "both" else [args.mode]
    return args


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


def trained_vectors(out: Path, seed: int, **data) -> Vectors:
    """Vectors trained with one thread and w2v seed ``seed`` into ``out`` (so they repeat exactly),
    or read from there when a finished run with those settings is already there."""
    import json

    import w2v
    from w2v.vectors import load

    try:
        config = json.loads((out / "config.json").read_text())["config"]
        cached = (out / "model.pt").is_file() and (config["threads"], config["seed"]) == (1, seed)
    except (OSError, ValueError, KeyError, TypeError):
        cached = False
    if not cached:
        started = time.time()
        print(f"training vectors in {out} (one thread, seed {seed}) ...", flush=True)
        w2v.train(out=str(out), threads=1, seed=seed, overwrite=True, progress=False, tensorboard=False,
                  evaluate=False, **data)
        print(f"  trained in {time.time() - started:.0f}s", flush=True)
    return load(str(out))  # loaded back either way: the same floats whether trained now or cached


def default_corpus_vectors(seed: int, runs: Path = REPO / "runs") -> Vectors:
    """Vectors on the default corpus (what `w2v train` trains) with one thread, so they repeat exactly."""
    return trained_vectors(runs / f"default-corpus-seed{seed}", seed + 1)  # seed 0: w2v's own default, 1


def in_domain_vectors(train: Sequence[Review], seed: int, split_seed: int, runs: Path = REPO / "runs") -> Vectors:
    """Vectors on text near the task: the default corpus and the training reviews of split ``split_seed``."""
    return trained_vectors(runs / f"reviews-in-domain-split{split_seed}-seed{seed}", seed + 1,
                           sentences=InDomainText(train))


def coverage(vectors: Vectors, tokens: Sequence[str]) -> float:
    """The fraction of ``tokens`` that have a vector."""
    known = set(vectors.words)
    return sum(t in known for t in tokens) / len(tokens)


def spread(values: Sequence[float], points: bool = False) -> str:
    """'mean ± sample standard deviation' in percent, or signed percentage points (just the mean for one)."""
    mean = sum(values) / len(values)
    text = f"{100 * mean:+.1f}" if points else f"{mean:.1%}"
    if len(values) > 1:
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        text += f" ± {100 * sd:.1f}" if points else f" ± {sd:.1%}"
    return text + (" pts" if points else "")


def table(results: dict[tuple[str, str, int], float], baseline: dict[str, str], seeds: Sequence[int],
          modes: Sequence[str]) -> str:
    """A markdown table: one row per embedding kind and mode, one column per seed, the mean ± sd over
    seeds, and for trained vectors the mean ± sd of their gain over the random vectors of the same shape
    (paired by seed: same classifier initialisation and batch order)."""
    kinds = [kind for trained, random in baseline.items() for kind in (random, trained)]
    head = ["embeddings", "mode", *(f"seed {s}" for s in seeds), "mean ± sd", "gain over its random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mode in modes:
        for kind in kinds:
            accs = [results[kind, mode, s] for s in seeds]
            gain = ""
            if kind in baseline:
                gain = spread([a - results[baseline[kind], mode, s] for a, s in zip(accs, seeds)], points=True)
            lines.append("| " + " | ".join([kind, mode, *(f"{a:.1%}" for a in accs), spread(accs), gain]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.vectors != DEFAULT and not Path(args.vectors).exists():
        print(f"error: no vectors at {args.vectors}; train them with `w2v train --out {args.vectors}`, "
              f"or leave out --vectors to let the example train default-corpus vectors itself", file=sys.stderr)
        return 2
    if not args.reviews.is_file():
        print(f"error: reviews not found: {args.reviews}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    cpu_started, started = time.process_time(), time.time()

    from w2v.vectors import load

    given = None if args.vectors == DEFAULT else load(args.vectors)
    # Reviews are split as the vectors' training text was (the run records it; the example's own
    # vectors use the default tokenizer, lowercased; word2vec files do not say).
    tokenizer = args.tokenizer or (given is not None and given.tokenizer) or "default"
    lowercase = True if given is None or given.lowercase is None else given.lowercase
    reviews = read_reviews(args.reviews, make_tokenizer(tokenizer, lowercase=lowercase))
    # The end of a review is where its verdict usually is, and the LSTM's last step
    # remembers recent tokens best: keep each review's last max_len tokens.
    reviews = [(tokens[-args.max_len:], label) for tokens, label in reviews]
    train, test = split(reviews, args.test_per_class, args.split_seed)
    tokens = [t for toks, _ in reviews for t in toks]
    print(f"{len(train)} train / {len(test)} test reviews (split seed {args.split_seed}), "
          f"up to {args.max_len} tokens each; seeds {' '.join(map(str, args.seeds))}; {', '.join(args.modes)}")

    mine = "w2v, default corpus" if args.vectors == DEFAULT else f"w2v, {args.vectors}"
    baseline = {mine: f"random, {'default-corpus' if args.vectors == DEFAULT else args.vectors} shape"}
    if args.in_domain:
        baseline["w2v, in-domain"] = "random, in-domain shape"
    results: dict[tuple[str, str, int], float] = {}
    vector_cpu = 0.0
    for seed in args.seeds:
        cpu = time.process_time()
        trained = {mine: given if given is not None else default_corpus_vectors(seed)}
        if args.in_domain:
            trained["w2v, in-domain"] = in_domain_vectors(train, seed, args.split_seed)
        vector_cpu += time.process_time() - cpu
        tables = {}
        for kind, base in baseline.items():
            tables[base] = random_vectors(trained[kind], seed)
            tables[kind] = trained[kind]
        for kind, vectors in tables.items():
            print(f"seed {seed}, {kind}: {len(vectors.words):,} words x {vectors.dim}, "
                  f"{coverage(vectors, tokens):.1%} of review tokens have a vector", flush=True)
        for mode in args.modes:
            for kind, vectors in tables.items():
                # A fresh layer for every run: fine-tuning changes its weights.
                emb = embedding(vectors, freeze=mode == "frozen")
                acc = run(f"seed {seed}, {kind}, {mode}", emb, train, test, args, seed)
                results[kind, mode, seed] = acc
                print(f"held-out accuracy, seed {seed}, {kind} ({mode}): {acc:.1%} "
                      f"({round(acc * len(test))}/{len(test)})", flush=True)

    cpu = time.process_time() - cpu_started
    print(f"\nheld-out accuracy on {len(test)} reviews (split seed {args.split_seed}):\n")
    print(table(results, baseline, args.seeds, args.modes))
    print(f"\n{cpu / 60:.1f} CPU-minutes ({vector_cpu / 60:.1f} of them training vectors), "
          f"{(time.time() - started) / 60:.1f} minutes wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
