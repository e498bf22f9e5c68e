"""Standard quality checks for word vectors: analogies (questions-words) and word-pair similarity.

The numbers equal gensim's `evaluate_word_analogies` and `evaluate_word_pairs` on the
same vectors and file (same vocabulary restriction, case folding and tie-breaking
rules), but the analogy search runs in batches of matrix products, so the whole Google
set takes about a second instead of a minute.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np
import torch

from w2v import resources
from w2v.errors import UserError
from w2v.vectors import Vectors

QUESTIONS = resources.questions()
WORDSIM = resources.wordsim()
_BATCH = 64  # questions per batch: 64 x 30,000 scores is 8 MB, cache-sized
_CACHE_FLOATS = 64_000_000  # question-word x vocabulary similarities kept at once (256 MB)
_MAX_LINE = 1 << 16  # bytes; real lines are a few words


@dataclass
class Section:
    """One ': name' section of an analogy file: questions answered correctly out of those attempted."""

    name: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class AnalogyResult:
    """Accuracies are in [0, 1] over attempted questions (all four words known), 0.0 if none."""

    sections: list[Section]
    semantic: float
    syntactic: float
    total: float
    correct: int
    attempted: int
    skipped: int  # questions with a word outside the first restrict_vocab words
    malformed: list[int] = field(default_factory=list)  # line numbers of lines that are not 4 words
    path: str = ""
    restrict_vocab: int | None = None

    def format(self) -> str:
        """A table: one row per section, then semantic / syntactic / total."""
        width = max([len(s.name) for s in self.sections] + [len("syntactic")])
        rows = [f"{'section':<{width}}  {'correct':>7}  {'total':>6}  accuracy"]
        rows += [f"{s.name:<{width}}  {s.correct:>7}  {s.total:>6}  {100 * s.accuracy:7.2f}%" for s in self.sections]
        sem = [s for s in self.sections if not _syntactic(s.name)]
        syn = [s for s in self.sections if _syntactic(s.name)]
        rows.append("-" * len(rows[0]))
        for name, group, acc in (("semantic", sem, self.semantic), ("syntactic", syn, self.syntactic),
                                 ("total", self.sections, self.total)):
            rows.append(f"{name:<{width}}  {sum(s.correct for s in group):>7}  "
                        f"{sum(s.total for s in group):>6}  {100 * acc:7.2f}%")
        where = "" if self.restrict_vocab is None else f" or past the first {self.restrict_vocab:,}"
        rows.append(f"attempted {self.attempted:,} of {self.attempted + self.skipped:,} questions; "
                    f"skipped {self.skipped:,} with a word unknown{where}")
        if self.malformed:
            rows.append(f"ignored {len(self.malformed)} malformed line(s), first: line {self.malformed[0]}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        d = asdict(self)
        for s in d["sections"]:
            s["accuracy"] = s["correct"] / s["total"] if s["total"] else 0.0
        return d


@dataclass
class SimilarityResult:
    """Correlation of cosine similarity with human scores over the pairs whose words are known."""

    spearman: float
    pearson: float
    pairs: int
    skipped: int  # pairs with an unknown word
    malformed: list[int] = field(default_factory=list)
    path: str = ""

    def format(self) -> str:
        out = (f"{Path(self.path).name}: Spearman {self.spearman:.4f}, Pearson {self.pearson:.4f} "
               f"over {self.pairs} pairs ({self.skipped} skipped for unknown words)")
        if self.malformed:
            out += f"; ignored {len(self.malformed)} malformed line(s), first: line {self.malformed[0]}"
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _syntactic(section: str) -> bool:
    # The Google set's convention (word2vec's compute-accuracy): "gram*" sections are syntactic.
    return section.startswith("gram")


def _known(vectors: Vectors, restrict_vocab: int | None, fold: Callable[[str], str]) -> tuple[dict[str, int], int]:
    """Folded word -> row among the first restrict_vocab rows; the first (most frequent) spelling wins."""
    n = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    known: dict[str, int] = {}
    for i, w in enumerate(vectors.words[:n]):
        known.setdefault(fold(w), i)
    return known, n


def _lines(f: IO[bytes], path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, refusing a line too long to be a question or a pair.

    Bounded reads: /dev/zero or a binary file would otherwise be read whole as one line.
    """
    for lineno in itertools.count(1):
        raw = f.readline(_MAX_LINE + 1)
        if not raw:
            return
        if len(raw) > _MAX_LINE:
            raise UserError(f"{path}, line {lineno}: longer than {_MAX_LINE:,} bytes; not an evaluation file")
        yield lineno, raw.decode("utf-8", errors="replace")


def _open(path: str | os.PathLike):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except OSError as e:  # permissions, a folder given through the API
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def analogies(vectors: Vectors, path: str | os.PathLike = QUESTIONS, restrict_vocab: int | None = 30_000,
              case_insensitive: bool = True) -> AnalogyResult:
    """Accuracy on a questions-words file (": section" lines, then "a b c d" for a:b :: c:d).

    A question counts only if its four words are among the first `restrict_vocab` words;
    the answer is the 3CosAdd best among those words, excluding a, b and c (any spelling
    when case-insensitive), as in word2vec's compute-accuracy and gensim.
    """
    fold = str.upper if case_insensitive else str
    known, n = _known(vectors, restrict_vocab, fold)
    names: list[str] = []
    questions: list[tuple[int, int, int, int, int]] = []  # section, a, b, c, expected
    malformed: list[int] = []
    skipped = 0
    with _open(path) as f:
        for lineno, line in _lines(f, path):
            if line.startswith(": "):
                names.append(line[2:].strip())
                continue
            parts = line.split()
            if not parts:
                continue
            if not names:
                raise UserError(f"{path}, line {lineno}: question before the first ': section' line")
            if len(parts) != 4:
                malformed.append(lineno)
                continue
            rows = [known.get(fold(p)) for p in parts]
            if None in rows:
                skipped += 1
            else:
                questions.append((len(names) - 1, *rows))
    if not names:
        raise UserError(f"{path}: no ': section' lines; not a questions-words file")

    correct = torch.zeros(len(questions), dtype=torch.bool)
    _answer(vectors, n, known, fold, questions, correct)

    per_section = np.bincount([x[0] for x in questions], minlength=len(names))
    right = np.bincount([x[0] for x, ok in zip(questions, correct.tolist()) if ok], minlength=len(names))
    sections = [Section(name, int(c), int(t)) for name, c, t in zip(names, right, per_section)]

    def acc(group: list[Section]) -> float:
        total = sum(s.total for s in group)
        return sum(s.correct for s in group) / total if total else 0.0

    return AnalogyResult(
        sections=sections,
        semantic=acc([s for s in sections if not _syntactic(s.name)]),
        syntactic=acc([s for s in sections if _syntactic(s.name)]),
        total=acc(sections), correct=int(correct.sum()), attempted=len(questions), skipped=skipped,
        malformed=malformed, path=str(path), restrict_vocab=restrict_vocab)


class _ThreadChooser:
    """Runs the batches with torch's threads or with one, whichever proves faster.

    On an idle 16-core machine all threads were 7 times faster than one; on a busy 2-core
    machine, where a descheduled thread stalls every op, one thread was 5 to 40 times
    faster. Batches 1-6 alternate between the two (batch 0 and the first of each are
    slow while threads and memory warm up, hence the best of three), the rest run the
    faster way.
    """

    PROBES = 6

    def __init__(self) -> None:
        self.all = torch.get_num_threads()
        self.batches = 0
        self.seconds: dict[int, list[float]] = {self.all: [], 1: []}

    def _threads(self, k: int) -> int:
        if k == 0 or self.all == 1:
            return self.all
        if k <= self.PROBES:
            return self.all if k % 2 else 1
        return self.all if min(self.seconds[self.all]) <= min(self.seconds[1]) else 1

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        k, self.batches = self.batches, self.batches + 1
        threads = self._threads(k)
        torch.set_num_threads(threads)
        start = time.perf_counter()
        try:
            yield
        finally:
            if 0 < k <= self.PROBES:
                self.seconds[threads].append(time.perf_counter() - start)
            torch.set_num_threads(self.all)


def _answer(vectors: Vectors, n: int, known: dict[str, int], fold: Callable[[str], str],
            questions: list[tuple[int, int, int, int, int]], correct: torch.Tensor) -> None:
    """Set correct[i] when gensim's 3CosAdd rule answers question i right."""
    if not questions or not n:
        return
    q = torch.tensor(questions)
    # Row -> row of its first spelling, so "predicted word equals a question word" is an index test.
    canon = torch.tensor([known[fold(w)] for w in vectors.words[:n]])
    unit = vectors.unit_matrix[:n]
    words, inv = torch.unique(q[:, 1:4], return_inverse=True)
    # Few distinct question words (about 900 in the Google set): one product gives all their
    # similarities, and each question is then a sum of three rows instead of a product.
    sims = unit[words] @ unit.T if len(words) * n <= _CACHE_FLOATS else None
    threads = _ThreadChooser()
    for s in range(0, len(q), _BATCH):
        with threads.batch():
            qa, qb, qc, qd = q[s:s + _BATCH, 1:].T
            if sims is not None:
                i = inv[s:s + _BATCH]
                scores = sims[i[:, 1]]  # a copy: gathering rows never aliases sims
                scores += sims[i[:, 2]]
                scores -= sims[i[:, 0]]
            else:
                scores = (unit[qb] - unit[qa] + unit[qc]) @ unit.T
            scores.scatter_(1, q[s:s + _BATCH, 1:4], float("-inf"))
            best, top1 = scores.max(1)
            pred = canon[top1]
            # Rare: the best is another spelling of a question word (or nothing is left).
            hard = (pred == qa) | (pred == qb) | (pred == qc) | ~torch.isfinite(best)
            if hard.any():
                pred[hard] = _gensim_pick(scores[hard], canon, qa[hard], qb[hard], qc[hard])
            correct[s:s + _BATCH] = pred == qd


def _gensim_pick(scores: torch.Tensor, canon: torch.Tensor, qa: torch.Tensor, qb: torch.Tensor,
                 qc: torch.Tensor) -> torch.Tensor:
    """gensim's rule: of the 5 best (a, b, c excluded), the first that is no spelling of a, b or c,
    else the last of them; -1 if there is none."""
    top_scores, top = scores.topk(min(5, scores.shape[1]), dim=1)
    cand, valid = canon[top], torch.isfinite(top_scores)
    ok = valid & (cand != qa[:, None]) & (cand != qb[:, None]) & (cand != qc[:, None])
    pick = torch.where(ok.any(1), ok.int().argmax(1), valid.sum(1) - 1)
    pred = cand.gather(1, pick.clamp_min(0)[:, None])[:, 0]
    return torch.where(pick >= 0, pred, -1)


def _rank(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (scipy.stats.rankdata's default)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.flatnonzero(starts), len(x)]
    average = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = average[group]
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom else float("nan")


def similarity(vectors: Vectors, path: str | os.PathLike = WORDSIM, case_insensitive: bool = True,
               restrict_vocab: int | None = 300_000) -> SimilarityResult:
    """Spearman and Pearson correlation of cosine similarity with human judgements.

    Lines are `word1 word2 score`, tab separated (or whitespace when a line has no tab);
    '#' lines are comments. Pairs with a word outside the first `restrict_vocab` words
    are skipped and counted; lines that are not a pair and a number are listed in
    `malformed`. restrict_vocab=300,000 is gensim's default.
    """
    fold = str.upper if case_insensitive else str
    known, _ = _known(vectors, restrict_vocab, fold)
    gold: list[float] = []
    rows: list[tuple[int, int]] = []
    malformed: list[int] = []
    skipped = 0
    with _open(path) as f:
        for lineno, line in _lines(f, path):
            if line.startswith("#") or not line.strip():
                continue
            parts = [p.strip() for p in line.split("\t")] if "\t" in line else line.split()
            try:
                a, b, score = parts
                score = float(score)
            except ValueError:
                malformed.append(lineno)
                continue
            if not math.isfinite(score):  # one nan makes both correlations nan
                raise UserError(f"{path}, line {lineno}: the score {score} is not a finite number")
            i, j = known.get(fold(a)), known.get(fold(b))
            if i is None or j is None:
                skipped += 1
                continue
            gold.append(score)
            rows.append((i, j))
    if len(rows) < 2:
        raise UserError(f"{path}: {len(rows)} pair(s) with known words; need at least 2 to correlate")
    idx = torch.tensor(rows)
    unit = vectors.unit_matrix
    model = (unit[idx[:, 0]] * unit[idx[:, 1]]).sum(1).double().numpy()
    g = np.asarray(gold, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(model))
    if len(bad):  # a zero vector has no direction
        a, b = (vectors.words[k] for k in rows[bad[0]])
        raise UserError(f"{path}: the cosine similarity of {a!r} and {b!r} is undefined (a zero or non-finite "
                        "vector); cannot correlate")
    # A correlation with a constant is undefined (0/0): say so rather than print nan.
    if np.ptp(g) == 0:
        raise UserError(f"{path}: all {len(rows)} pairs with known words have the same score ({g[0]:g}); "
                        "cannot correlate")
    if np.ptp(model) == 0:
        raise UserError(f"{path}: the vectors give all {len(rows)} pairs the same similarity; cannot correlate")
    return SimilarityResult(spearman=_pearson(_rank(g), _rank(model)), pearson=_pearson(g, model),
                            pairs=len(rows), skipped=skipped, malformed=malformed, path=str(path))
