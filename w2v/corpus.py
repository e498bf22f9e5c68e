"""Stream a text corpus as sentences (lists of tokens) in bounded memory.

A sentence is a line. Files are read in fixed-size blocks, so a text8-style
corpus that is one 100 MB line never has to fit in memory: it comes out in
pieces of ``max_sentence_length`` tokens.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import re
import stat
import threading
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from w2v.config import TOKENIZERS
from w2v.errors import UserError


_BLOCK = 1 << 18  # bytes read per call: big enough to amortise, small enough that one block's tokens stay cheap
_MAX_CARRY = 1 << 20  # a run of non-space characters longer than this is cut rather than carried forever
_MAX_PENDING = 1 << 22  # characters of an open line's tokens; past this the line comes out in pieces
# The default tokenizer keeps what r"\w+(?:['’]\w+)*" would find, but builds it from C-speed
# string operations on a whole block: blank out ASCII non-word bytes with one bytes.translate,
# blank out non-ASCII punctuation and apostrophes not between word characters with a regex whose
# matches are rare, then str.split. One findall per line makes the whole read twice as slow.
_ASCII_BLANKS = bytes(b if chr(b).isalnum() or chr(b) in "_'\n" or b >= 0x80 else 0x20 for b in range(256))
_LONE_APOSTROPHE = re.compile(r"'(?:(?!\w)|(?<!\w'))")
_NON_WORD = re.compile(r"[^\x00-\x7f\w\s'’]+|['’](?:(?!\w)|(?<!\w['’]))")
_OPENERS: dict[str, tuple[str, Callable[[str], BinaryIO]]] = {
    ".gz": ("gzip", lambda p: gzip.open(p, "rb")),
    ".bz2": ("bz2", lambda p: bz2.open(p, "rb")),
    ".xz": ("xz", lambda p: lzma.open(p, "rb")),
}
# What a corrupt or truncated archive raises on read (OSError covers BadGzipFile and bz2).
_ARCHIVE_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)

# Undecodable bytes are counted inside the C decoder: this handler runs only on errors, so valid
# UTF-8 decodes at full speed. Handlers are registered globally, hence a per-thread tally that each
# reader samples around its own decode call.
_tally = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _tally.bad = getattr(_tally, "bad", 0) + exc.end - exc.start
    return "\ufffd", exc.end


codecs.register_error("w2v.count_replace", _count_and_replace)


def _last_space(text: str) -> int:
    """Index of the last character that str.split() splits at (any Unicode whitespace), or -1.

    rsplit scans from the end and stops at the first whitespace, so this costs the length of
    the last word, not of the text (a regex search from the start is quadratic over blocks).
    """
    if not text:
        return -1
    if text[-1].isspace():
        return len(text) - 1
    last = text.rsplit(None, 1)[-1]
    return len(text) - len(last) - 1  # -1 when the text is one word


def _blank_non_words(text: str) -> str:
    """Turn every character the default tokenizer drops into a space (newlines stay)."""
    text = text.encode("utf-8", "surrogatepass").translate(_ASCII_BLANKS).decode("utf-8", "surrogatepass")
    if text.isascii():
        return _LONE_APOSTROPHE.sub(" ", text) if "'" in text else text
    return _NON_WORD.sub(" ", text)


def _tokenizer_parts(name: str, lowercase: bool) -> tuple[Callable[[str], str], Callable[[str], list[str]]]:
    """Split a tokenizer into a whole-block preparation step and a per-line splitting step."""
    if name in ("default", "whitespace"):
        split: Callable[[str], list[str]] = str.split
        if name == "default":
            return ((lambda text: _blank_non_words(text.lower())) if lowercase else _blank_non_words), split
    elif name not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}")
    else:
        try:
            from nltk import tokenize as nltk_tokenize
        except ImportError as exc:
            raise UserError(f"tokenizer {name!r} needs nltk ({exc}); install it with: pip install nltk") from None
        split = {"treebank": lambda: nltk_tokenize.TreebankWordTokenizer().tokenize,
                 "toktok": lambda: nltk_tokenize.ToktokTokenizer().tokenize,
                 "wordpunct": lambda: nltk_tokenize.wordpunct_tokenize}[name]()
    return (str.lower if lowercase else str), split


def make_tokenizer(name: str = "default", lowercase: bool = True) -> Callable[[str], list[str]]:
    r"""Return a function turning text into tokens (never containing whitespace).

    "default" finds words like r"\w+(?:['’]\w+)*" (letters, digits, underscore, inner apostrophes),
    "whitespace" splits already-tokenized text, and "treebank", "toktok", "wordpunct" are nltk's
    tokenizers (imported only when chosen: nltk takes over a second to import).
    """
    prepare, split = _tokenizer_parts(name, lowercase)
    return lambda text: split(prepare(text))


def list_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, sorted, hidden entries skipped) into a file list."""
    if isinstance(paths, (str, os.PathLike)):  # one path, not a sequence of characters
        paths = [paths]
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UserError(f"corpus path not found: {path}")
        if not path.is_dir():
            if not path.is_file():  # open() of a FIFO blocks until a writer comes; a device may never end
                raise UserError(f"{path} is {_kind(path)}, not a regular file: w2v reads a corpus from files, "
                                "and may read it twice; save the stream to a file first")
            found = [path]
        else:
            found = []

            def fail(exc: OSError) -> None:
                raise UserError(f"cannot read {exc.filename or path}: {exc.strerror or exc}")

            for root, dirs, names in os.walk(path, onerror=fail):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [Path(root, n) for n in names if not n.startswith(".")]
            # Sort by path components so a folder's files stay together ("a/z" before "a-b").
            found.sort(key=lambda p: p.relative_to(path).parts)
            special = {p for p in found if p.exists() and not p.is_file()}  # a broken link fails below
            for p in sorted(special):  # opening a FIFO would block forever
                warnings.warn(f"skipped {p}: {_kind(p)}, not a regular file", stacklevel=2)
            found = [p for p in found if p not in special]
        for file in found:
            try:
                with open(file, "rb"):  # fail now, not an hour into training
                    pass
            except OSError as exc:
                raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None
        files += found
    if not files:
        raise UserError(f"no corpus files found in: {', '.join(str(p) for p in paths) or '(no paths given)'}")
    return files


def _kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "unreadable (a broken link?)"
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


class Corpus:
    """Re-iterable stream of sentences from text files (plain, .gz, .bz2 or .xz, UTF-8).

    Each pass re-reads the files. Lines longer than ``max_sentence_length`` tokens come out
    in pieces of exactly that many tokens (the last shorter); empty lines are skipped.
    ``bad_bytes`` counts undecodable bytes (replaced by U+FFFD) in the current pass.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], tokenizer: str = "default",
                 lowercase: bool = True, max_sentence_length: int = 10_000) -> None:
        if max_sentence_length < 1:
            raise UserError(f"max_sentence_length must be at least 1, got {max_sentence_length}")
        self._prepare, self._split = _tokenizer_parts(tokenizer, lowercase)
        self.max_sentence_length = max_sentence_length
        self.files: list[Path] = list_files(paths)
        self.bad_bytes = 0

    def __iter__(self) -> Iterator[list[str]]:
        self.bad_bytes = 0
        prepare, tokenize, limit = self._prepare, self._split, self.max_sentence_length
        for path in self.files:
            pending: list[str] = []  # tokens of the line still open at the end of the previous block
            for text in self._texts(path):
                lines = prepare(text).split("\n")
                for line in lines[:-1]:
                    tokens = tokenize(line)
                    if pending:
                        tokens, pending = pending + tokens, []
                    if len(tokens) > limit:
                        for i in range(0, len(tokens), limit):
                            yield tokens[i:i + limit]
                    elif tokens:
                        yield tokens
                pending += tokenize(lines[-1])
                if len(pending) >= limit:  # keep an endless line from growing without bound
                    full = len(pending) - len(pending) % limit
                    for i in range(0, full, limit):
                        yield pending[i:i + limit]
                    pending = pending[full:]
                elif sum(map(len, pending)) > _MAX_PENDING:  # a few huge tokens (words cut at _MAX_CARRY)
                    yield pending
                    pending = []
            if pending:  # the last line of a file need not end with a newline
                yield pending

    def _texts(self, path: Path) -> Iterator[str]:
        """Yield decoded text cut at whitespace, so no token is split between two pieces."""
        kind, opener = _OPENERS.get(path.suffix.lower(), ("", lambda p: open(p, "rb")))
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="w2v.count_replace")
        carry = ""
        try:
            stream = opener(path)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        with stream:
            while True:
                try:
                    raw = stream.read(_BLOCK)
                except _ARCHIVE_ERRORS as exc:
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    if kind:
                        raise UserError(f"{path} is not a valid {kind} file: {reason}") from None
                    raise UserError(f"cannot read {path}: {reason}") from None
                before = getattr(_tally, "bad", 0)
                text = carry + decoder.decode(raw, final=not raw)
                self.bad_bytes += getattr(_tally, "bad", 0) - before
                if not raw:
                    yield text
                    return
                cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"), text.rfind("\r"))
                if cut < 0:  # only exotic whitespace (form feed, U+3000, ...), or none at all
                    cut = _last_space(text)
                if len(text) - cut > _MAX_CARRY:  # one word this long: cut it, rather than carry it on
                    cut = len(text)
                if cut < 0:
                    carry = text
                    continue
                carry = text[cut:]
                yield text[:cut]
