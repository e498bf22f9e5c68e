"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from w2v.errors import UserError


# Our temporaries carry this mark and the writer's PID, so that cleaning up never touches a
# user's own hidden .tmp files: `.NAME.w2v-PID-HEX.tmp`.
_MARK = "w2v"
_OURS = re.compile(r"\A\..+\.w2v-(\d+)-[0-9a-f]{8}\.tmp\Z", re.DOTALL)


def temporary_name(path: Path) -> Path:
    """A unique hidden name beside `path`, for a file or folder that is renamed over it when complete."""
    return path.with_name(f".{path.name}.{_MARK}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete our temporaries (`.NAME.w2v-PID-HEX.tmp`) whose writer was killed: their PID is gone.

    A SIGKILL or power cut between creating a temporary and renaming it leaves the hidden
    file behind; nothing reads it, but it holds disk space. Any other name is the user's and
    is left alone. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        match = _OURS.match(tmp.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def _target(path: Path) -> tuple[Path, bool]:
    """Where to write for `path`, and whether to write straight into it rather than rename over it.

    A regular file (or nothing) is replaced by rename. A symlink is followed, so the link stays
    a link and its target is replaced. A character device or FIFO (/dev/null, a pipe) is written
    through: renaming over it would replace the device with a file. Anything else is refused.
    """
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as e:  # a loop of links, a file where a folder should be, ...
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path} is a folder; give a file name")
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        return path, True
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a socket" if stat.S_ISSOCK(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode) else \
            "not a regular file"
        raise UserError(f"{path} is {kind}; w2v writes only to regular files, character devices and FIFOs")
    if path.is_symlink():
        return Path(os.path.realpath(path)), False  # a dangling link: its target is created
    return path, False


def writes_through(path: str | os.PathLike) -> bool:
    """Whether atomic_write would write straight into `path` (a device or FIFO such as /dev/stdout)."""
    with contextlib.suppress(OSError):
        mode = os.stat(path).st_mode
        return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
    return False


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success flush, fsync and rename it over `path`.

    Symlinks are followed (their target is replaced); a character device or FIFO is written
    through, without a temporary.
    """
    with atomic_writes([path], mode) as (f,):
        yield f


@contextlib.contextmanager
def atomic_writes(paths: Sequence[str | os.PathLike], mode: str = "wb") -> Iterator[tuple[IO[Any], ...]]:
    """atomic_write for files that belong together (a .npy and its .vocab.tsv): all land or none.

    Every temporary is written, flushed and fsynced before the first rename, so a failure while
    writing (disk full, ...) keeps all the old files. Only a failure between the renames, which
    are metadata operations in one folder, could leave a new file beside an old one.
    """
    given = [Path(p) for p in paths]
    for path in given:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where a folder should be, no permission, ...
            raise UserError(f"cannot create the folder {path.parent}: {e.strerror or e}") from None
    targets = [_target(p) for p in given]
    kwargs: dict = {} if "b" in mode else {"encoding": "utf-8"}
    temps: list[Path] = []
    files: list[IO[Any]] = []
    path = given[0]
    try:
        for path, (real, through) in zip(given, targets):
            if through:
                files.append(open(real, mode, **kwargs))
            else:
                temps.append(temporary_name(real))
                # "x" honours the umask, unlike mkstemp's 0600: outputs stay readable by the group.
                files.append(open(temps[-1], mode.replace("w", "x"), **kwargs))
        yield tuple(files)
        for path, f, (real, through) in zip(given, files, targets):
            f.flush()
            if not through:  # fsync of a pipe or device fails (EINVAL) and means nothing
                os.fsync(f.fileno())
            f.close()
        for tmp, real in zip(temps, [real for real, through in targets if not through]):
            os.replace(tmp, real)
        for folder in {real.parent for real, through in targets if not through}:
            _sync_folder(folder)
    except BaseException as e:
        for f in files:
            with contextlib.suppress(OSError):
                f.close()
        for tmp in temps:
            _discard(tmp)
        # Written through a pipe or device, there is no previous file to keep.
        kept = "" if dict(zip(given, targets))[path][1] else "; the previous file is kept"
        error = write_failure(e, path, kept)
        if error is not None:
            raise error from None
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through atomic_write."""
    import torch  # here, not at the top: `w2v phrases` writes files without loading torch

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def write_failure(e: BaseException, target: str | os.PathLike, kept: str) -> UserError | None:
    """The one-line error for a write of `target` the machine refused (disk full, permissions,
    read-only file system), `kept` saying what survives; None for anything else (a bug)."""
    if _out_of_space(e):
        return UserError(f"no space left on the device while writing {target}{kept}")
    if isinstance(e, OSError):
        return UserError(f"cannot write {target}: {e.strerror or e}{kept}")
    return None


def _out_of_space(e: BaseException | None) -> bool:
    """ENOSPC, raised directly or behind another error (torch.save reports a failed write as RuntimeError)."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename itself survives a power cut (POSIX; not on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _discard(tmp: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):  # never created, or a read-only file system
        os.unlink(tmp)
