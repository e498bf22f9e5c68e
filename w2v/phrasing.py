"""Phrases: join word pairs that occur together unusually often into one token (united_states).

The semantics are gensim 4's `Phrases` + `FrozenPhrases` (Mikolov et al.'s word2phrase,
with gensim's choices where they differ), computed on integer ids with numpy instead of
on strings in Python:

* counting: every non-connector word, and every pair of consecutive non-connector words
  of a sentence with the connector words between them ("bank of america" is the pair
  (bank, america) with the middle "of"); all tokens count, before any vocabulary cut;
* scoring: "default" is `(count(ab) - min_count) * V / (count(a) * count(b))` where V is
  gensim's `len(vocab)`: distinct non-connector words plus distinct pairs; "npmi" is the
  normalised pointwise mutual information (pairs seen fewer than min_count times never
  pass); a pair is a phrase when its score is above the threshold;
* joining: greedy, left to right, exactly gensim's `analyze_sentence`.

A pass turns the corpus into a new token stream; the next pass can join phrases again
(`passes=2` gives up to 4-word phrases). After the first, a pass scores the pair of tokens
it sees (new_york, city), as word2phrase run twice does; gensim instead splits the joined
string on "_" and scores (new, city), so passes after the first differ from gensim's.

The corpus stays on disk as provisional ids (w2v.encode's first pass), read in blocks of
whole sentences; the pair table is an array of packed int64 keys and counts, pruned as
word2phrase and gensim prune when it outgrows `max_table` entries.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from w2v.config import PHRASE_SCORERS as SCORERS
from w2v.config import TrainConfig
from w2v.errors import UserError
from w2v.fileio import atomic_write, temporary_name

# gensim.models.phrases.ENGLISH_CONNECTOR_WORDS (gensim 4.4), copied: gensim is not a dependency.
ENGLISH_CONNECTOR_WORDS = frozenset(
    " a an the "  # articles
    " for of with without at from to in on by "  # prepositions
    " and or "  # conjunctions
    .split()
)
DELIMITER = "_"
# gensim's default threshold for its default scorer (word2phrase's 100 goes with a V of all
# tokens, not gensim's distinct words + pairs); gensim has no npmi default.
DEFAULT_THRESHOLD = {"default": 10.0, "npmi": 0.5}
MAX_TABLE = 40_000_000  # gensim's max_vocab_size
_BLOCK = 1 << 20  # tokens per block (whole sentences)
_HEADER = "phrase\tcount\tscore\tpass\tparts"


@dataclass
class Phrase:
    """One learned phrase: its token, how often its pair occurred, its score, and how it was formed."""

    text: str  # the joined token, e.g. "bank_of_america"
    count: int
    score: float
    passes: int  # the pass that found it (1 for pairs of words)
    parts: tuple[str, ...]  # the tokens joined, as that pass saw them: ("bank", "of", "america")


@dataclass
class PhraseTable:
    """Learned phrases and the settings needed to apply them (`phrases.tsv`)."""

    phrases: list[Phrase]
    connectors: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.phrases)

    def top(self, n: int = 20) -> list[Phrase]:
        """The n most frequent phrases."""
        return sorted(self.phrases, key=lambda p: (-p.count, p.text))[:n]

    def save(self, path: str | os.PathLike) -> None:
        """Write the table: two `#` lines of settings, a header, then one phrase per line."""
        lines = ["# w2v phrases: " + " ".join(f"{k}={v}" for k, v in self.settings.items()),
                 "# connectors: " + " ".join(self.connectors), _HEADER]
        lines += [f"{p.text}\t{p.count}\t{p.score!r}\t{p.passes}\t{' '.join(p.parts)}" for p in self.phrases]
        with atomic_write(path) as f:
            f.write(("\n".join(lines) + "\n").encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PhraseTable":
        """Read a table written by `save`; a bad line is a one-line UserError naming it."""
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise UserError(f"{path} not found") from None
        except IsADirectoryError:
            raise UserError(f"{path} is a folder, not a phrase table") from None
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text, not a phrase table") from None
        table = cls([])
        seen_header = False
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.startswith("# connectors:"):
                table.connectors = tuple(line[len("# connectors:"):].split())
            elif line.startswith("# w2v phrases:"):
                table.settings = dict(kv.split("=", 1) for kv in line[len("# w2v phrases:"):].split() if "=" in kv)
            elif line == _HEADER:
                seen_header = True
            elif line.strip() and not line.startswith("#"):
                fields = line.split("\t")
                try:
                    text_, count, score, passes, parts = fields
                    phrase = Phrase(text_, int(count), float(score), int(passes), tuple(parts.split(" ")))
                except ValueError:
                    raise UserError(f"{path}, line {lineno}: expected phrase<TAB>count<TAB>score<TAB>pass<TAB>parts "
                                    "(a table written by `w2v phrases`)") from None
                if len(phrase.parts) < 2 or phrase.passes < 1 or not seen_header:
                    raise UserError(f"{path}, line {lineno}: not a phrase of a table written by `w2v phrases`")
                table.phrases.append(phrase)
        if not seen_header:
            raise UserError(f"{path}: no '{_HEADER.expandtabs(1)}' header: not a table written by `w2v phrases`")
        return table

    def apply(self, sentences: Iterable[list[str]]) -> Iterator[list[str]]:
        """The sentences with this table's phrases joined (gensim's `frozen[sentences]`)."""
        with tempfile.TemporaryDirectory(prefix="w2v-phrases-") as tmp:
            stream = _Stream.write(sentences, Path(tmp) / "ids.bin")
            stream = _apply_table(self, stream)
            words = np.array(list(stream.index), dtype=object)
            for ids, first, lengths in stream.blocks():
                for sentence in np.split(words[ids], np.cumsum(lengths)[:-1]):
                    yield sentence.tolist()

    def apply_files(self, paths: Sequence[str], out: str | os.PathLike, tokenizer: str = "default",
                    lowercase: bool = True) -> int:
        """Write the text of `paths` (tokenized) with phrases joined to `out`, a sentence a line; returns tokens written."""
        from w2v.corpus import Corpus

        corpus = Corpus(paths, tokenizer=tokenizer, lowercase=lowercase)
        with tempfile.TemporaryDirectory(prefix="w2v-phrases-") as tmp:
            return _apply_table(self, _Stream.write(corpus, Path(tmp) / "ids.bin")).write_text(out)


def check_settings(passes: int, min_count: int, threshold: float | None, scorer: str, max_table: int,
                   names: dict[str, str] | None = None) -> float:
    """Validate phrase settings (one-line UserErrors naming the options); returns the threshold to use."""
    names = {"passes": "--passes", "min_count": "--min-count", "threshold": "--threshold", "scorer": "--scorer",
             "max_table": "--max-table", **(names or {})}
    if scorer not in SCORERS:
        raise UserError(f"{names['scorer']} must be one of {', '.join(SCORERS)}, not {scorer!r}")
    if not 0 <= passes <= 10:
        raise UserError(f"{names['passes']} must be between 0 and 10, not {passes}")
    if min_count < 1:
        raise UserError(f"{names['min_count']} must be at least 1, not {min_count}")
    if max_table < 1:
        raise UserError(f"{names['max_table']} must be at least 1, not {max_table}")
    if threshold is None:
        return DEFAULT_THRESHOLD[scorer]
    if not math.isfinite(threshold):
        raise UserError(f"{names['threshold']} must be a finite number, not {threshold}")
    if scorer == "default" and threshold <= 0:
        raise UserError(f"{names['threshold']} must be above 0 for the default scorer, not {threshold}")
    if scorer == "npmi" and not -1 <= threshold <= 1:
        raise UserError(f"{names['threshold']} must be between -1 and 1 for the npmi scorer, not {threshold}")
    return float(threshold)


def learn(sentences: Iterable[list[str]], passes: int = 1, min_count: int = 5, threshold: float | None = None,
          scorer: str = "default", connectors: Iterable[str] = (), max_table: int = MAX_TABLE,
          text_out: str | os.PathLike | None = None, scratch_dir: str | os.PathLike | None = None) -> PhraseTable:
    """Learn phrases from tokenized sentences (a list, or a re-iterable like w2v.corpus.Corpus).

    Same settings, same phrases as gensim's `Phrases(sentences, min_count, threshold,
    scoring=scorer, connector_words=connectors)` for the first pass. With `text_out`, the
    sentences with phrases joined are written there, a sentence a line.
    """
    threshold = check_settings(passes, min_count, threshold, scorer, max_table)
    with tempfile.TemporaryDirectory(prefix="w2v-phrases-", dir=scratch_dir) as tmp:
        stream = _Stream.write(sentences, Path(tmp) / "ids.bin")
        table, stream = _learn(stream, passes, min_count, threshold, scorer, frozenset(connectors), max_table)
        if text_out is not None:
            stream.write_text(text_out)
    return table


def for_config(config: TrainConfig, run_dir: str | os.PathLike,
               echo: Callable[[str], None] = lambda s: None) -> Callable[..., tuple[np.ndarray, np.ndarray]] | None:
    """The `rewrite` for w2v.encode.build that `w2v train --phrases N` asks for (None for 0 passes).

    It joins the phrases learned from the provisional ids before the vocabulary is chosen,
    so phrase tokens are counted like words, and saves the table as phrases.tsv.
    """
    passes, min_count, scorer, max_table = (config.phrases, config.phrase_min_count, config.phrase_scorer,
                                            config.max_phrase_table)
    if passes == 0:
        return None
    from w2v.runfolder import PHRASES  # here: runfolder imports torch, which `w2v phrases` does not need

    connectors = ENGLISH_CONNECTOR_WORDS if config.phrase_connectors else frozenset()
    table_path = Path(run_dir) / PHRASES
    threshold = check_settings(passes, min_count, config.phrase_threshold, scorer, max_table)

    def rewrite(path: Path, lengths: np.ndarray, index: _Index) -> tuple[np.ndarray, np.ndarray]:
        started = time.perf_counter()
        stream = _Stream(path, np.asarray(lengths, dtype=np.int64), index)
        table, stream = _learn(stream, passes, min_count, threshold, scorer, connectors, max_table)
        table.save(table_path)
        if stream.scratch:
            os.replace(stream.path, path)
            stream = _Stream(path, stream.lengths, index)
        echo(f"phrases: {len(table):,} found in {passes} pass(es), {time.perf_counter() - started:.1f} s "
             f"(most frequent: {', '.join(p.text for p in table.top(5))}); table in {table_path}")
        return stream.lengths, stream.counts()

    return rewrite


# --- the corpus as provisional ids -------------------------------------------------------------


class _Index(dict):
    """word -> id; an unseen word gets the next id. The shape of w2v.encode's index (next_id
    included), which `w2v train --phrases` hands over; not imported, to keep torch out."""

    next_id = 0

    def __missing__(self, word: str) -> int:
        i = self[word] = self.next_id
        self.next_id += 1
        return i


def _open_scratch(path: Path):
    try:
        return open(path, "wb")
    except OSError as e:
        raise UserError(f"cannot write in {path.parent}: {e.strerror or e}") from None


@dataclass
class _Stream:
    """A corpus as int32 provisional ids in a scratch file, its sentence lengths, and word -> id."""

    path: Path
    lengths: np.ndarray  # int64, one per sentence (never 0)
    index: _Index
    scratch: bool = False  # made by a pass: removed when the next pass replaces it

    @classmethod
    def write(cls, sentences: Iterable[list[str]], path: Path) -> "_Stream":
        index, lengths, buf = _Index(), array("q"), array("i")
        with _open_scratch(path) as out:
            for sentence in sentences:
                if sentence:
                    buf.extend(map(index.__getitem__, sentence))
                    lengths.append(len(sentence))
                if len(buf) >= _BLOCK:
                    out.write(buf.tobytes())
                    buf = array("i")
            out.write(buf.tobytes())
        if not lengths:
            raise UserError("the corpus is empty: no tokens found")
        return cls(path, np.frombuffer(lengths, dtype=np.int64), index)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(ids, is-first-of-its-sentence, sentence lengths) for blocks of whole sentences."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        with open(self.path, "rb") as f:
            s = 0
            while s < len(self.lengths):
                e = max(s + 1, int(np.searchsorted(offsets, offsets[s] + _BLOCK, side="right")) - 1)
                n = int(offsets[e] - offsets[s])
                ids = np.frombuffer(f.read(4 * n), dtype=np.int32)
                if len(ids) != n:
                    raise UserError(f"{self.path} is shorter than expected: a scratch file was changed")
                first = np.zeros(n, dtype=bool)
                first[offsets[s:e] - offsets[s]] = True
                yield ids, first, self.lengths[s:e]
                s = e

    def counts(self) -> np.ndarray:
        """Occurrences of every id (int64, one per entry of the index)."""
        counts = np.zeros(len(self.index), dtype=np.int64)
        for ids, _, _ in self.blocks():
            counts += np.bincount(ids, minlength=len(counts))
        return counts

    def write_text(self, out: str | os.PathLike) -> int:
        words = np.array(list(self.index), dtype=object)
        n = 0
        with atomic_write(out) as f:
            for ids, _, lengths in self.blocks():
                tokens = words[ids].tolist()
                cuts = np.concatenate([[0], np.cumsum(lengths)]).tolist()
                f.write("".join(" ".join(tokens[a:b]) + "\n" for a, b in zip(cuts, cuts[1:])).encode())
                n += len(tokens)
        return n


# --- candidates: consecutive non-connector words and the connectors between them ----------------


class _Middles:
    """The runs of connector words inside candidates, numbered 1, 2, ... (0: none) for the whole corpus.

    Within a block a run is first coded as an int64, its connectors as digits in base C + 1
    (C connector words), so that numpy finds the distinct runs; only those reach Python.
    """

    def __init__(self, connector_ids: Sequence[int], size: int) -> None:
        self.digit = np.zeros(size, dtype=np.int64)  # 0 for words, 1..C for connectors
        self.digit[list(connector_ids)] = np.arange(1, len(connector_ids) + 1)
        self.pid = np.concatenate([[-1], np.asarray(connector_ids, dtype=np.int64)])  # digit -> id
        self.base = len(connector_ids) + 1
        self.max_len = int(62 / math.log2(self.base)) if self.base > 1 else 0  # runs that fit in 62 bits
        self.number: dict[tuple[int, ...], int] = {(): 0}
        self.runs: list[tuple[int, ...]] = [()]
        self._long: list[tuple[int, ...]] = []

    def grow(self, size: int) -> None:
        """Ids added since (phrases) are words, never connectors."""
        self.digit = np.concatenate([self.digit, np.zeros(size - len(self.digit), dtype=np.int64)])

    def id_of(self, run: tuple[int, ...]) -> int:
        if run not in self.number:
            self.number[run] = len(self.runs)
            self.runs.append(run)
        return self.number[run]

    def of_block(self, ids: np.ndarray, a_pos: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """The run number between each pair (a, a + gap + 1)."""
        middle = np.zeros(len(a_pos), dtype=np.int64)
        has = np.flatnonzero(gap > 0)
        if not len(has):
            return middle
        start, g = a_pos[has] + 1, gap[has]
        short = g <= self.max_len
        code = np.zeros(len(has), dtype=np.int64)
        digits = self.digit[ids]
        for k in range(min(int(g.max()), self.max_len)):
            sel = np.flatnonzero(short & (g > k))
            code[sel] = code[sel] * self.base + digits[start[sel] + k]
        for i in np.flatnonzero(~short):  # runs of many connectors: rare, in Python
            self._long.append(tuple(ids[start[i]:start[i] + g[i]].tolist()))
            code[i] = -len(self._long)
        distinct, inverse = np.unique(code, return_inverse=True)
        numbers = np.array([self.id_of(self._decode(int(c))) for c in distinct], dtype=np.int64)
        middle[has] = numbers[inverse]
        return middle

    def _decode(self, code: int) -> tuple[int, ...]:
        if code < 0:
            return self._long[-code - 1]
        run = []
        while code:
            code, d = divmod(code, self.base)
            run.append(int(self.pid[d]))
        return tuple(reversed(run))


def _candidates(ids: np.ndarray, first: np.ndarray, middles: _Middles, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a positions, b positions, keys) of every candidate pair of a block, left to right.

    A key packs (middle run, a, b) as (middle * n + a) * n + b.
    """
    words = np.flatnonzero(middles.digit[ids] == 0)
    a_pos, b_pos = words[:-1], words[1:]
    sentence = np.cumsum(first)
    same = sentence[a_pos] == sentence[b_pos]
    a_pos, b_pos = a_pos[same], b_pos[same]
    keys = ids[a_pos].astype(np.int64) * n + ids[b_pos]
    if middles.base > 1:
        middle = middles.of_block(ids, a_pos, b_pos - a_pos - 1)
        if len(middles.runs) * n * n >= 2**63:
            raise UserError(f"too many distinct tokens ({n:,}) for the phrase table's 64-bit keys")
        keys += middle * (n * n)
    elif n * n >= 2**63:
        raise UserError(f"too many distinct tokens ({n:,}) for the phrase table's 64-bit keys")
    return a_pos, b_pos, keys


# --- a pass: count, score, join ----------------------------------------------------------------


def _learn(stream: _Stream, passes: int, min_count: int, threshold: float, scorer: str,
           connectors: frozenset[str], max_table: int) -> tuple[PhraseTable, _Stream]:
    connector_ids = [stream.index[w] for w in sorted(connectors) if w in stream.index]
    middles = _Middles(connector_ids, len(stream.index))
    found: list[Phrase] = []
    for p in range(1, passes + 1):
        n = len(stream.index)
        middles.grow(n)
        keys, counts, unigrams, total = _count(stream, middles, n, max_table)
        chosen, scores = _score(keys, counts, unigrams, middles.digit[:n] != 0, n, min_count, threshold,
                                scorer, total)
        words = list(stream.index)
        phrases = [_phrase(int(k), int(c), float(s), p, n, middles, words)
                   for k, c, s in zip(keys[chosen], counts[chosen], scores[chosen])]
        found += phrases
        if not phrases:
            break
        stream = _join(stream, keys[chosen], [ph.text for ph in phrases], middles, n)
    settings = {"scorer": scorer, "threshold": threshold, "min_count": min_count, "passes": passes}
    table = PhraseTable(sorted(found, key=lambda ph: (ph.passes, -ph.count, ph.text)), tuple(sorted(connectors)),
                        {k: str(v) for k, v in settings.items()})
    return table, stream


def _count(stream: _Stream, middles: _Middles, n: int, max_table: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sorted distinct pair keys and their counts, word counts, and the number of tokens."""
    keys = np.zeros(0, dtype=np.int64)
    counts = np.zeros(0, dtype=np.int64)
    unigrams = np.zeros(n, dtype=np.int64)
    min_reduce = 1
    for ids, first, _ in stream.blocks():
        unigrams += np.bincount(ids, minlength=n)
        block_keys, block_counts = np.unique(_candidates(ids, first, middles, n)[2], return_counts=True)
        keys, counts = _merge(keys, counts, block_keys, block_counts)
        if len(keys) > max_table:  # word2phrase's ReduceVocab / gensim's prune_vocab: drop the rarest
            keep = counts >= min_reduce
            keys, counts = keys[keep], counts[keep]
            min_reduce += 1
    return keys, counts, unigrams, int(unigrams.sum())


def _merge(keys: np.ndarray, counts: np.ndarray, new_keys: np.ndarray, new_counts: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Add sorted distinct (new_keys, new_counts) into the sorted table (keys, counts)."""
    pos = np.searchsorted(keys, new_keys)
    hit = pos < len(keys)
    hit[hit] = keys[pos[hit]] == new_keys[hit]
    counts[pos[hit]] += new_counts[hit]
    fresh = ~hit
    return np.insert(keys, pos[fresh], new_keys[fresh]), np.insert(counts, pos[fresh], new_counts[fresh])


def _score(keys: np.ndarray, counts: np.ndarray, unigrams: np.ndarray, is_connector: np.ndarray, n: int,
           min_count: int, threshold: float, scorer: str, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs are phrases, and every pair's score: gensim's original_scorer / npmi_scorer, same float ops."""
    a = unigrams[(keys // n) % n]
    b = unigrams[keys % n]
    if scorer == "default":
        # gensim's len(vocab): its dict holds the non-connector words and the pairs
        vocab = int(np.count_nonzero(unigrams[~is_connector])) + len(keys)
        scores = (counts - min_count).astype(np.float64) / (a * b).astype(np.float64) * vocab
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            pa, pb, pab = a / float(total), b / float(total), counts / float(total)
            scores = np.log(pab / (pa * pb)) / -np.log(pab)
        scores[(counts < min_count) | ~np.isfinite(scores)] = -np.inf
    return scores > threshold, scores


def _phrase(key: int, count: int, score: float, passes: int, n: int, middles: _Middles, words: list[str]) -> Phrase:
    middle, rest = divmod(key, n * n)
    a, b = divmod(rest, n)
    parts = (words[a], *(words[c] for c in middles.runs[middle]), words[b])
    return Phrase(DELIMITER.join(parts), count, score, passes, parts)


def _join(stream: _Stream, phrase_keys: np.ndarray, texts: list[str], middles: _Middles, n: int) -> _Stream:
    """The stream with phrases joined, greedily left to right as gensim's analyze_sentence.

    phrase_keys are sorted; a phrase token is a word like any other (index[text]: an existing
    word when the text already occurs, e.g. a token that holds "_").
    """
    order = np.argsort(phrase_keys)
    phrase_keys = phrase_keys[order]
    phrase_ids = np.array([stream.index[texts[i]] for i in order], dtype=np.int32)
    out_path = temporary_name(stream.path.parent / "phrase-ids.bin")
    lengths = np.empty_like(stream.lengths)
    done = 0
    try:
        with _open_scratch(out_path) as out:
            for ids, first, block_lengths in stream.blocks():
                a_pos, b_pos, keys = _candidates(ids, first, middles, n)
                j = np.minimum(np.searchsorted(phrase_keys, keys), len(phrase_keys) - 1)
                hit = phrase_keys[j] == keys
                # A pair follows on from the one before when they share a word. In a chain of
                # phrases, analyze_sentence joins the 1st, 3rd, 5th...: after a join the next
                # word starts afresh.
                follows = np.concatenate([[False], b_pos[:-1] == a_pos[1:]])
                starts = hit & ~(follows & np.concatenate([[False], hit[:-1]]))
                k = np.arange(len(hit))
                run_start = np.maximum.accumulate(np.where(starts, k, 0))
                taken = hit & ((k - run_start) % 2 == 0)
                new = ids.copy()
                new[a_pos[taken]] = phrase_ids[j[taken]]
                inside = np.zeros(len(ids) + 1, dtype=np.int32)  # +1 after a, -1 after b: the middle and b go
                inside[a_pos[taken] + 1] += 1
                inside[b_pos[taken] + 1] -= 1
                keep = np.cumsum(inside[:-1]) == 0
                sentence = np.cumsum(first) - 1
                lengths[done:done + len(block_lengths)] = np.bincount(sentence[keep], minlength=len(block_lengths))
                done += len(block_lengths)
                out.write(new[keep].tobytes())
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    if stream.scratch:  # the previous pass's file
        stream.path.unlink(missing_ok=True)
    return _Stream(out_path, lengths, stream.index, scratch=True)


def _apply_table(table: PhraseTable, stream: _Stream) -> _Stream:
    """Join a saved table's phrases in a new stream, pass by pass."""
    index = stream.index
    connector_ids = [index[w] for w in table.connectors if w in index]
    middles = _Middles(connector_ids, len(index))
    connectors = set(table.connectors)
    for p in sorted({ph.passes for ph in table.phrases}):
        phrases = [ph for ph in table.phrases if ph.passes == p]
        parts = [[index[w] for w in ph.parts] for ph in phrases]  # unseen words get ids: they match nothing
        n = len(index)
        middles.grow(n)
        keys = []
        for ph, ids in zip(phrases, parts):
            if ph.parts[0] in connectors or ph.parts[-1] in connectors:
                raise UserError(f"phrase {ph.text!r} starts or ends with a connector word: not a table of w2v phrases")
            keys.append((middles.id_of(tuple(ids[1:-1])) * n + ids[0]) * n + ids[-1])
        if len(middles.runs) * n * n >= 2**63:
            raise UserError(f"too many distinct tokens ({n:,}) for the phrase table's 64-bit keys")
        stream = _join(stream, np.array(keys, dtype=np.int64), [ph.text for ph in phrases], middles, n)
    return stream
