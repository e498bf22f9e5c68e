"""w2v as a user installs it: a wheel, installed (not editable), used from another folder.

The wheel carries the default corpus, the evaluation sets and a prebuilt kernel, so every
documented default works without the checkout and without a C compiler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The wheel installed into a folder of its own; the environment that runs it from elsewhere."""
    work = tmp_path_factory.mktemp("install")
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("w2v-*.whl"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # PYTHONPATH puts the installed copy ahead of the checkout's editable install; no compiler,
    # an empty kernel cache: the prebuilt kernel must be used.
    env = {**os.environ, "PYTHONPATH": str(target), "CC": "/nonexistent/cc", "W2V_CACHE": str(work / "cache"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin/false-only"}
    return {"wheel": str(wheel), "site": str(target), "cwd": str(work), **{"env_" + k: v for k, v in env.items()}}


def _run(installed: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k[4:]: v for k, v in installed.items() if k.startswith("env_")}
    return subprocess.run([sys.executable, "-m", "w2v", *args], cwd=installed["cwd"], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_carries_the_data_and_a_prebuilt_kernel(installed: dict[str, str]) -> None:
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for needed in ("w2v/corpora/questions-words.txt", "w2v/corpora/wordsim353.tsv", "w2v/corpora/kjv.txt.gz",
                   "w2v/corpora/movie_reviews.zip", "w2v/csrc/kernel.c"):
        assert needed in names, needed
    assert any(n.startswith("w2v/prebuilt/kernel-") and n.endswith(".so") for n in names)
    assert "-none-any" not in installed["wheel"]  # a platform wheel: it holds compiled code


def test_installed_w2v_trains_evaluates_and_answers_from_another_folder(installed: dict[str, str]) -> None:
    where = _run(installed, "--version")
    assert where.returncode == 0, where.stderr
    probe = subprocess.run([sys.executable, "-c", "import w2v, w2v.native as n; print(w2v.__file__); "
                            "print(n.available(), n.unavailable_reason())"], cwd=installed["cwd"], capture_output=True,
                           text=True, env={k[4:]: v for k, v in installed.items() if k.startswith("env_")})
    assert probe.stdout.splitlines()[0].startswith(installed["site"]), probe.stdout
    assert probe.stdout.splitlines()[1].startswith("True"), probe.stdout  # prebuilt kernel, no compiler
    train = _run(installed, "train", "--epochs", "1", "--threads", "2", "--out", "R", "--no-tensorboard")
    assert train.returncode == 0, train.stderr[-2000:]
    assert "analogies:" in train.stdout and "king - man + woman = " in train.stdout
    assert "PyTorch path" not in train.stderr  # the C kernel trained
    evaluate = _run(installed, "evaluate", "R")
    assert evaluate.returncode == 0, evaluate.stderr
    assert "capital-common-countries" in evaluate.stdout and "wordsim353.tsv: Spearman" in evaluate.stdout
    analogy = _run(installed, "analogy", "R", "king", "-", "man", "+", "woman", "-n", "3")
    assert analogy.returncode == 0 and len(analogy.stdout.splitlines()) == 3, analogy.stderr
