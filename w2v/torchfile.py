"""torch.save files of plain tensors read with numpy, so that a query never imports torch.

torch.save writes a zip: `<name>/data.pkl` pickles the object, and each tensor's data is
the member `<name>/data/<key>`, stored uncompressed. The files w2v writes hold only
dicts of dense tensors (and lists of words), so their data.pkl names nothing but
torch._utils._rebuild_tensor_v2, collections.OrderedDict and torch's storage types.

`read_plain` unpickles data.pkl with an Unpickler that knows those names and refuses
every other one before it is looked up, so no code a file names ever runs; the tensors
come back as numpy arrays memory-mapped from the zip. Anything else (another name, a
compressed member, a strided view, bfloat16) gives None and the caller falls back on
torch.load(weights_only=True), which stays the reference reader.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle  # restricted below: find_class knows three kinds of names
import struct
import zipfile
from typing import IO, Any, NamedTuple

import numpy as np

_STORAGE_DTYPES = {"DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "LongStorage": "i8",
                   "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "b1"}
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_PLAIN_VALUES = (str, bytes, int, float, bool, type(None))


class _NotPlain(Exception):
    """The file holds something this reader leaves to torch.load."""


class _StorageType(NamedTuple):
    """What the unpickler returns for `torch.FloatStorage` and its kin: a dtype, nothing callable."""

    dtype: str


class _Storage(NamedTuple):
    key: str
    dtype: str
    numel: int


class _Tensor(NamedTuple):
    """A tensor as data.pkl describes it; made into an array once unpickling is over."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]


def _is_count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _rebuild_tensor(storage: object, offset: object, shape: object, stride: object, requires_grad: object,
                    hooks: object, metadata: object = None) -> _Tensor:
    """Stands in for torch._utils._rebuild_tensor_v2: checks its arguments, builds nothing."""
    if not isinstance(storage, _Storage) or not _is_count(offset) or not isinstance(requires_grad, bool):
        raise _NotPlain("unexpected tensor arguments")
    if not isinstance(shape, tuple) or not isinstance(stride, tuple) or len(shape) != len(stride) \
            or not all(_is_count(n) for n in shape + stride):
        raise _NotPlain("unexpected tensor shape")
    if hooks or metadata:  # backward hooks or Python attributes: not a plain tensor
        raise _NotPlain("tensor with hooks or metadata")
    expected, step = [], 1
    for n in reversed(shape):
        expected.append(step)
        step *= n
    if any(s != e for n, s, e in zip(shape, stride, reversed(expected)) if n > 1):
        raise _NotPlain("not a contiguous tensor")  # a view saved with its whole storage: torch knows best
    return _Tensor(storage, offset, shape)


class _Unpickler(pickle.Unpickler):
    """Knows the three kinds of names torch writes for plain tensors; any other stops the load."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise _NotPlain(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[3], str) and _is_count(pid[4])):
            raise _NotPlain("unexpected storage record")
        return _Storage(pid[2], pid[1].dtype, pid[4])


class _Archive:
    """The zip's members, and each storage mapped (copy-on-write) from the bytes where it is stored."""

    def __init__(self, path: str | os.PathLike, fp: IO[bytes], zf: zipfile.ZipFile) -> None:
        self.path, self.fp, self.zf = path, fp, zf
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _NotPlain("no single data.pkl")
        self.prefix = pickles[0][:-len("data.pkl")]
        names = set(zf.namelist())
        order = zf.read(self.prefix + "byteorder").strip() if self.prefix + "byteorder" in names else b"little"
        if order not in (b"little", b"big"):
            raise _NotPlain("unknown byte order")
        self.order = "<" if order == b"little" else ">"
        self.storages: dict[str, np.ndarray] = {}

    def stored(self, name: str) -> zipfile.ZipInfo:
        info = self.zf.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:
            raise _NotPlain(f"{name} is compressed")
        return info

    def data_pkl(self) -> bytes:
        return self.zf.read(self.stored(self.prefix + "data.pkl"))

    def storage(self, s: _Storage) -> np.ndarray:
        if s.key not in self.storages:
            dtype = np.dtype(s.dtype).newbyteorder(self.order)
            info = self.stored(f"{self.prefix}data/{s.key}")
            if info.file_size != s.numel * dtype.itemsize:
                raise _NotPlain(f"storage {s.key} has {info.file_size} bytes, not {s.numel} values")
            if s.numel == 0:
                self.storages[s.key] = np.empty(0, dtype)
            else:
                self.fp.seek(info.header_offset)
                signature, name_length, extra_length = _LOCAL_HEADER.unpack(self.fp.read(_LOCAL_HEADER.size))
                if signature != b"PK\x03\x04":
                    raise _NotPlain("damaged zip entry")
                start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
                # "c": pages are read from the file as they are used, and writes stay in this process.
                self.storages[s.key] = np.memmap(self.path, dtype=dtype, mode="c", offset=start, shape=(s.numel,))
        return self.storages[s.key]

    def array(self, t: _Tensor) -> np.ndarray:
        data = self.storage(t.storage)
        size = math.prod(t.shape)
        if t.offset + size > len(data):
            raise _NotPlain("tensor runs past its storage")
        return data[t.offset:t.offset + size].reshape(t.shape).view(np.ndarray)  # still backed by the mapping

    def arrays(self, obj: Any) -> Any:
        """The unpickled object with arrays for tensors; anything but plain containers and values is refused."""
        if isinstance(obj, _Tensor):
            return self.array(obj)
        if isinstance(obj, dict):  # OrderedDict included
            if not all(isinstance(k, _PLAIN_VALUES) for k in obj):
                raise _NotPlain("unexpected dict key")
            return type(obj)((k, self.arrays(v)) for k, v in obj.items())
        if type(obj) in (list, tuple):
            return type(obj)(self.arrays(v) for v in obj)
        if type(obj) in _PLAIN_VALUES:
            return obj
        raise _NotPlain(f"unexpected {type(obj).__name__}")


def read_plain(path: str | os.PathLike) -> Any | None:
    """What torch.load(path, weights_only=True) returns, with numpy arrays for tensors; None if the
    file holds anything but plain tensors, containers and values (ask torch.load then)."""
    try:
        with open(path, "rb") as fp, zipfile.ZipFile(fp) as zf:
            archive = _Archive(path, fp, zf)
            return archive.arrays(_Unpickler(io.BytesIO(archive.data_pkl())).load())
    except Exception:  # a name we do not know, a damaged zip, a broken pickle: torch.load decides and explains
        return None
