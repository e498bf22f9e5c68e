"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import IO, Any, Iterator

from w2v.errors import UserError


def temporary_name(path: Path) -> Path:
    """A unique hidden name beside `path`, for a file or folder that is renamed over it when complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries (`.NAME.PID.HEX.tmp`) of writers that were killed: their PID is gone.

    A SIGKILL or power cut between creating a temporary and renaming it leaves the hidden
    file behind; nothing reads it, but it holds disk space. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        parts = tmp.name.split(".")
        if len(parts) < 5 or not parts[-3].isdigit():
            continue
        pid = int(parts[-3])
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if tmp.is_dir():
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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success flush, fsync and rename it over `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder should be, no permission, ...
        raise UserError(f"cannot create the folder {path.parent}: {e.strerror or e}") from None
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    tmp = temporary_name(path)
    try:
        # "x" honours the umask, unlike mkstemp's 0600: outputs stay readable by the group.
        with open(tmp, mode.replace("w", "x"), **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except BaseException as e:
        _discard(tmp)
        if _out_of_space(e):
            raise UserError(f"no space left on the device while writing {path}; the previous file is kept") from None
        if isinstance(e, OSError):  # permissions, read-only file system, I/O error: not a bug in w2v
            raise UserError(f"cannot write {path}: {e.strerror or e}; the previous file is kept") from None
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through atomic_write."""
    import torch  # here, not at the top: `w2v phrases` writes files without loading torch

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


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
