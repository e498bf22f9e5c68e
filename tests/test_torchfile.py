"""w2v.torchfile: our torch.save files read with numpy, the same as torch.load; anything else left to torch."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from w2v.runfolder import RunFolder, load_arrays
from w2v.torchfile import read_plain
from w2v.vectors import Vectors, load
from clitools import cli, one_line_error

ROOT = Path(__file__).resolve().parent.parent
MOBY = str(ROOT / "corpora" / "moby_dick.txt.gz")
FAST = ["--epochs", "1", "--dim", "10", "--no-eval", "--no-tensorboard", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two real runs: negative sampling (input, output, empty output_hs) and hs alone (empty output)."""
    base = tmp_path_factory.mktemp("runs")
    for name, extra in (("ns", []), ("hs", ["--hs", "--negative", "0"])):
        assert cli("train", MOBY, "--out", base / name, *FAST, *extra)[0] == 0
    return {"ns": base / "ns", "hs": base / "hs"}


def assert_same_as_torch(path: Path) -> None:
    ours, theirs = read_plain(path), torch.load(path, weights_only=True)
    assert ours is not None and type(ours) is type(theirs) and ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert ours[key].dtype == value.numpy().dtype and ours[key].shape == tuple(value.shape), key
            assert np.array_equal(ours[key], value.numpy()), key
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("name", ["ns", "hs"])
def test_a_real_model_reads_as_torch_reads_it(runs: dict[str, Path], name: str) -> None:
    assert_same_as_torch(runs[name] / "model.pt")
    words, m, _ = RunFolder(runs[name]).read_vectors()
    assert not m.flags.owndata  # mapped from the file, not copied
    np.testing.assert_array_equal(m, torch.load(runs[name] / "model.pt", weights_only=True)["input"].numpy())


def test_an_exported_bundle_reads_as_torch_reads_it(runs: dict[str, Path], tmp_path: Path) -> None:
    load(runs["ns"]).save(tmp_path / "v.pt", format="torch")
    assert_same_as_torch(tmp_path / "v.pt")  # words (a list of strings), counts (int64), vectors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                                   torch.int16, torch.int8, torch.uint8, torch.bool])
def test_every_dtype_numpy_holds(tmp_path: Path, dtype: torch.dtype) -> None:
    whole = (torch.arange(24) % 7).to(dtype).reshape(6, 4)
    torch.save({"whole": whole, "tail": whole[2:], "row": whole[3], "empty": whole[:0], "scalar": whole[1, 1],
                "n": 3, "name": "x", "list": [1.5, None, True]}, tmp_path / "t.pt")
    assert_same_as_torch(tmp_path / "t.pt")  # "tail" and "row": offsets into a shared storage


@pytest.mark.parametrize("name, obj", [
    ("bfloat16", {"input": torch.ones(3, 2, dtype=torch.bfloat16)}),
    ("transposed", {"input": torch.arange(6.0).reshape(2, 3).t()}),
    ("sparse", {"input": torch.eye(2).to_sparse()}),
    ("meta", {"input": torch.zeros(2, 2, device="meta")}),
    ("complex", {"input": torch.ones(2, 2, dtype=torch.complex64)}),
])
def test_anything_else_is_left_to_torch(tmp_path: Path, name: str, obj: dict) -> None:
    torch.save(obj, tmp_path / "t.pt")
    assert read_plain(tmp_path / "t.pt") is None
    t = torch.load(tmp_path / "t.pt", weights_only=True)["input"]
    arrays = load_arrays(tmp_path / "t.pt")
    if name in ("bfloat16", "transposed", "complex"):  # torch read it: the same values, as an array
        np.testing.assert_array_equal(arrays["input"], t.float().numpy() if name == "bfloat16" else t.numpy())


def test_old_and_damaged_files_are_left_to_torch(tmp_path: Path) -> None:
    torch.save({"input": torch.ones(2, 2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert read_plain(tmp_path / "old.pt") is None
    np.testing.assert_array_equal(load_arrays(tmp_path / "old.pt")["input"], np.ones((2, 2), np.float32))
    torch.save({"input": torch.ones(2, 2)}, tmp_path / "t.pt")
    compressed = tmp_path / "compressed.pt"
    with zipfile.ZipFile(tmp_path / "t.pt") as zin, zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
    assert read_plain(compressed) is None
    cut = tmp_path / "cut.pt"
    cut.write_bytes((tmp_path / "t.pt").read_bytes()[:-200])
    assert read_plain(cut) is None
    assert read_plain(tmp_path / "missing.pt") is None


class _System:
    """Unpickling this would run a shell command: proof that code ran if the marker appears."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _with_data_pkl(source: Path, target: Path, data_pkl: bytes) -> None:
    """A copy of the torch file `source` whose data.pkl is replaced."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl") else zin.read(info))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch.load notes protocol 4
def test_a_hostile_pickle_is_refused_without_running(runs: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    (run / "vocab.tsv").write_bytes((runs["ns"] / "vocab.tsv").read_bytes())
    for protocol in (0, 2, 4):
        _with_data_pkl(runs["ns"] / "model.pt", run / "model.pt",
                       pickle.dumps({"input": _System(f"touch {marker}")}, protocol=protocol))
        assert read_plain(run / "model.pt") is None
        one_line_error(*cli("similar", run, "whale"), "not a torch file that loads with weights_only=True")
    assert not marker.exists()


def test_the_only_unpickler_is_the_restricted_one() -> None:
    tree = ast.parse((ROOT / "w2v" / "torchfile.py").read_text(encoding="utf-8"))
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "pickle"}
    assert used == {"Unpickler"}  # no pickle.load / loads: only the subclass below unpickles
    subclasses = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                  and any(ast.unparse(b) == "pickle.Unpickler" for b in n.bases)]
    assert [n.name for n in subclasses] == ["_Unpickler"]
    assert "find_class" in {f.name for f in subclasses[0].body if isinstance(f, ast.FunctionDef)}


def test_a_query_never_imports_torch(runs: dict[str, Path], tmp_path: Path) -> None:
    vectors = load(runs["ns"])
    vectors.save(tmp_path / "v.txt", format="text")
    vectors.save(tmp_path / "v.bin", format="binary")
    queries = [["similar", runs["ns"], "whale", "-n", "3"], ["similar", runs["ns"], "whale", "--which", "sum"],
               ["analogy", runs["hs"], "ahab", "-man", "+woman", "-n", "3"], ["similar", tmp_path / "v.txt", "whale"],
               ["similar", tmp_path / "v.bin", "whale"], ["similar", runs["ns"] / "model.pt", "whale", "--which", "out"]]
    for args in queries:
        code = (f"import sys\nfrom w2v.cli import main\nmain({[str(a) for a in args]!r}, standalone_mode=False)\n"
                "assert 'torch' not in sys.modules, 'torch was imported'\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, (args, done.stderr)
        assert len(done.stdout.splitlines()) >= 3, (args, done.stdout)


def test_the_queries_match_torchs_reading(runs: dict[str, Path]) -> None:
    state = torch.load(runs["ns"] / "model.pt", weights_only=True)
    words = RunFolder(runs["ns"]).read_vectors()[0]
    for which, expect in (("in", state["input"]), ("out", state["output"]), ("sum", state["input"] + state["output"])):
        ours = load(runs["ns"], which=which)
        np.testing.assert_array_equal(ours.vectors, expect.numpy())
        assert ours.most_similar("whale", topn=5) == Vectors(words, expect).most_similar("whale", topn=5)
