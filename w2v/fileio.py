"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

import torch

from w2v.errors import UserError


def temporary_name(path: Path) -> Path:
    """A unique hidden name beside `path`, for a file or folder that is renamed over it when complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


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
    except BaseException as e:
        _discard(tmp)
        if _out_of_space(e):
            raise UserError(f"no space left on the device while writing {path}; the previous file is kept") from None
        if isinstance(e, OSError):  # permissions, read-only file system, I/O error: not a bug in w2v
            raise UserError(f"cannot write {path}: {e.strerror or e}; the previous file is kept") from None
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through atomic_write."""
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


def _discard(tmp: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):  # never created, or a read-only file system
        os.unlink(tmp)
