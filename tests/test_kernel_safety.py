"""The C kernel never crashes: bad input is refused with one line, diverging training stops.

make_job checks every buffer and count (UserError); the kernel stops a chunk whose scores
become nan or infinite (native.Diverged) and guards the reads it can check cheaply itself;
a damaged cached library is rebuilt; the reference tests run clean under AddressSanitizer
and UndefinedBehaviorSanitizer; hostile inputs (hypothesis) end in an error or a clean chunk.

Run as a script (`python tests/test_kernel_safety.py fuzz`) it runs the fuzz loop, which the
test runs in a subprocess so that a crash shows as a signal rather than killing pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from w2v import native  # noqa: E402
from w2v.dictionary import build_alias_table, huffman_tree  # noqa: E402
from w2v.errors import UserError  # noqa: E402

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler")

V, D = 9, 6


def inputs(v: int = V, d: int = D, **changes) -> dict:
    """Valid make_job arguments (skip-gram, negative sampling and hierarchical softmax, a
    small corpus of four sentences, one empty), with `changes` applied."""
    rng = np.random.default_rng(0)
    counts = np.arange(v, 0, -1) * 10
    accept, alias = build_alias_table(counts / counts.sum())
    ids = rng.integers(0, v, 40).astype(np.int32)
    kw = dict(
        input=((rng.random((v, d)) - 0.5) / d).astype(np.float32), output=np.zeros((v, d), np.float32),
        output_hs=np.zeros((v - 1, d), np.float32) if v > 1 else None, dim=d, negative=2, window=2, cbow=False,
        ids=ids, offsets=np.array([0, 10, 10, 25, 40], np.int64), s_begin=0, s_end=4,
        keep=np.full(v, 0.9, np.float32), noise=(accept, alias), huffman=huffman_tree(counts) if v > 1 else None,
        alpha=0.025, min_alpha=0.0001, total_words=1000, words_done=np.zeros(1, np.int64), seed=3,
    )
    kw.update(changes)
    return kw


def train(**changes):
    job = native.make_job(**inputs(**changes))
    native.train_chunk(job)
    return job


def one_line(e: BaseException) -> str:
    text = str(e)
    assert text and "\n" not in text
    return text


def test_a_valid_chunk_trains() -> None:
    kw = inputs()
    job = native.make_job(**kw)
    native.train_chunk(job)
    assert job.words == 40 and job.loss_count > 0 and np.isfinite(job.loss_sum)
    assert job.alpha_end == pytest.approx(0.025 - (0.025 - 0.0001) * 40 / 1000, rel=1e-6)


# ---- divergence ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["sg", "cbow"])
@pytest.mark.parametrize("objective", ["ns", "hs"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_vector_stops_the_chunk(model: str, objective: str, bad: float) -> None:
    """The kernel is built with -ffast-math (finite-math-only): this proves its nan/inf test survives."""
    kw = inputs(cbow=model == "cbow")
    if objective == "ns":
        kw.update(output_hs=None, huffman=None)
    else:
        kw.update(negative=0, output=None)
    kw["input"][kw["ids"][3]] = bad
    with pytest.raises(native.Diverged) as e:
        native.train_chunk(native.make_job(**kw))
    assert one_line(e.value).startswith("training diverged (a score became nan or infinite) at learning rate 0.02")
    assert isinstance(e.value, UserError)


@pytest.mark.parametrize("alpha", [1e30, 3e38])
def test_a_huge_learning_rate_diverges_and_says_so(alpha: float) -> None:
    with pytest.raises(native.Diverged) as e:
        train(alpha=alpha, min_alpha=alpha, input=np.full((V, D), 0.5, np.float32))
    assert e.value.alpha == pytest.approx(alpha, rel=1e-6)
    assert one_line(e.value).endswith("lower --alpha")


def test_a_floor_above_the_rate_names_min_alpha() -> None:
    with pytest.raises(native.Diverged, match="at learning rate 1e\\+30: lower --min-alpha"):
        train(alpha=0.025, min_alpha=1e30, input=np.full((V, D), 0.5, np.float32))


def test_the_cli_reports_divergence_in_one_line(tmp_path: Path) -> None:
    """The issue's example: it used to end with SIGSEGV (exit 139)."""
    r = subprocess.run([sys.executable, "-m", "w2v", "train", str(ROOT / "corpora" / "austen.txt.gz"),
                        "--out", str(tmp_path / "r"), "--alpha", "1", "--epochs", "1", "--threads", "1",
                        "--dim", "20", "--no-eval", "--quiet"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().startswith("Error: training diverged") and len(r.stderr.strip().splitlines()) == 1


def _interrupted_run(tmp_path: Path) -> Path:
    """A run folder stopped after a few chunks, with a checkpoint to resume."""
    import gzip

    from w2v.config import TrainConfig
    from w2v.errors import Interrupted
    from w2v.trainer import Trainer

    corpus = tmp_path / "moby_part.txt"
    lines = gzip.open(ROOT / "corpora" / "moby_dick.txt.gz", "rt", encoding="utf-8").read().splitlines()[:300]
    corpus.write_text("\n".join(lines))
    run = tmp_path / "run"
    trainer = Trainer(TrainConfig(paths=[str(corpus)], out=str(run), epochs=2, dim=16, threads=1, batch_words=1000,
                                  progress=False, tensorboard=False, evaluate=False, backend="native"))
    trainer.after_chunk = lambda trained: trainer.stop.set()
    with pytest.raises(Interrupted):
        trainer.run()
    return run


@pytest.mark.parametrize("damage", ["nan in the checkpoint", "ids outside the vocabulary"])
def test_resuming_a_damaged_run_folder_ends_in_one_line(tmp_path: Path, damage: str) -> None:
    import torch

    run = _interrupted_run(tmp_path)
    if damage == "nan in the checkpoint":
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        state["input"][:5, 0] = float("nan")  # the most frequent words: the first chunk reads them
        torch.save(state, run / "checkpoint.pt")
        expect = "Error: " + str(run / "checkpoint.pt") + " input holds nan or infinite values"
    else:
        ids = np.load(run / "ids.npy", mmap_mode="r+")
        ids[:] = 10**6
        ids.flush()
        del ids
        expect = "Error: " + str(run / "ids.npy") + " holds word ids outside the"
    r = subprocess.run([sys.executable, "-m", "w2v", "train", "--resume", str(run)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith(expect) and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]


# ---- make_job's checks ---------------------------------------------------------------------

def _fortran(a):
    return np.asfortranarray(np.zeros((V, D), np.float32))


def _read_only():
    a = np.zeros((V, D), np.float32)
    a.flags.writeable = False
    return a


def _meta():
    import torch

    return torch.empty(V, D, device="meta")


def _ids_with(position: int, value: int) -> np.ndarray:
    ids = inputs()["ids"].copy()
    ids[position] = value
    return ids


def _points_with(value: int):
    points, codes, lengths = huffman_tree(np.arange(V, 0, -1) * 10)
    points = points.copy()
    points[2, 0] = value
    return points, codes, lengths


def _lengths_with(value: int):
    points, codes, lengths = huffman_tree(np.arange(V, 0, -1) * 10)
    lengths = lengths.copy()
    lengths[1] = value if value >= 0 else points.shape[1] + 1
    return points, codes, lengths


REFUSED = {
    "input float64": (lambda: dict(input=np.zeros((V, D))), "input has dtype float64, not float32"),
    "input Fortran order": (lambda: dict(input=_fortran(0)), "input is not a contiguous"),
    "input wrong width": (lambda: dict(input=np.zeros((V, D + 1), np.float32)), "input has shape (9, 7), not (any, 6)"),
    "input read-only": (lambda: dict(input=_read_only()), "input is read-only"),
    "input not on the CPU": (lambda: dict(input=_meta()), "input is on meta, not on the CPU"),
    "input a list": (lambda: dict(input=[[0.0] * D] * V), "input must be a numpy array or a CPU tensor, not list"),
    "no output with negatives": (lambda: dict(output=None), "output is missing"),
    "output fewer rows": (lambda: dict(output=np.zeros((V - 1, D), np.float32)), "output has shape (8, 6), not (9, 6)"),
    "output_hs too few rows": (lambda: dict(output_hs=np.zeros((V - 2, D), np.float32)),
                               "output_hs has shape (7, 6), not (8, 6)"),
    "output_hs without huffman": (lambda: dict(huffman=None), "output_hs needs huffman"),
    "hs with one word": (lambda: dict(input=np.zeros((1, D), np.float32), output=np.zeros((1, D), np.float32),
                                      output_hs=np.zeros((0, D), np.float32)), "at least 2 words"),
    "Huffman point too big": (lambda: dict(huffman=_points_with(V - 1)), "Huffman points outside the 8 inner nodes"),
    "Huffman point negative": (lambda: dict(huffman=_points_with(-1)), "Huffman points outside"),
    "Huffman length 0": (lambda: dict(huffman=_lengths_with(0)), "Huffman path lengths outside 1.."),
    "Huffman length past width": (lambda: dict(huffman=_lengths_with(-1)), "Huffman path lengths outside 1.."),
    "Huffman codes int32": (lambda: dict(huffman=(*_points_with(0)[:1], np.zeros((V, 4), np.int32),
                                                  _points_with(0)[2])), "Huffman codes has dtype int32"),
    "ids int64": (lambda: dict(ids=np.zeros(40, np.int64)), "ids has dtype int64, not int32"),
    "id = V": (lambda: dict(ids=_ids_with(12, V)), "word id 9 at corpus position 12 is outside the vocabulary of 9 words"),
    "id negative": (lambda: dict(ids=_ids_with(39, -1)), "word id -1 at corpus position 39"),
    "id 2**31-1": (lambda: dict(ids=_ids_with(0, 2**31 - 1)), "word id 2147483647 at corpus position 0"),
    "offsets past ids": (lambda: dict(offsets=np.array([0, 10, 10, 25, 41], np.int64)), "outside ids (tokens 0..40)"),
    "offsets before ids_base": (lambda: dict(ids_base=5), "span tokens 0..40, outside ids (tokens 5..45)"),
    "offsets decreasing": (lambda: dict(offsets=np.array([0, 20, 10, 25, 40], np.int64)), "offsets decrease"),
    "offsets int32": (lambda: dict(offsets=np.array([0, 40], np.int32), s_end=1), "offsets has dtype int32"),
    "offsets empty": (lambda: dict(offsets=np.zeros(0, np.int64), s_end=0), "offsets is empty"),
    "s_end past offsets": (lambda: dict(s_end=5), "s_end must be from 0 to 4, not 5"),
    "s_begin after s_end": (lambda: dict(s_begin=3, s_end=2), "s_end must be from 3 to 4, not 2"),
    "s_begin negative": (lambda: dict(s_begin=-1), "s_begin must be from 0 to 4, not -1"),
    "keep nan": (lambda: dict(keep=np.array([0.5] * (V - 1) + [np.nan], np.float32)), "keep probabilities"),
    "keep above 1": (lambda: dict(keep=np.full(V, 1.5, np.float32)), "keep probabilities"),
    "keep short": (lambda: dict(keep=np.ones(V - 1, np.float32)), "keep has shape (8,), not (9,)"),
    "alias index V": (lambda: dict(noise=(np.ones(V, np.float32), np.full(V, V, np.int32))), "alias indices outside"),
    "alias short": (lambda: dict(noise=(np.ones(V, np.float32), np.zeros(V - 1, np.int32))), "alias index has shape"),
    "fixed negative out of range": (lambda: dict(fixed_negatives=np.array([1, V], np.int32)), "fixed_negatives"),
    "dim 0": (lambda: dict(dim=0), "dim must be from 1 to"),
    "dim not an int": (lambda: dict(dim=6.0), "dim must be an integer, not float"),
    "window 0": (lambda: dict(window=0), "window must be from 1 to"),
    "window past int32": (lambda: dict(window=2**31), "window must be from 1 to 2147483647, not 2147483648"),
    "negative -1": (lambda: dict(negative=-1), "negative must be from 0 to 1000, not -1"),
    "negative 1001": (lambda: dict(negative=1001), "negative must be from 0 to 1000"),
    "total_words 0": (lambda: dict(total_words=0), "total_words must be from 1"),
    "alpha nan": (lambda: dict(alpha=float("nan")), "alpha must be a finite number, 0 or more, not nan"),
    "alpha negative": (lambda: dict(alpha=-0.1), "alpha must be a finite number"),
    "min_alpha inf": (lambda: dict(min_alpha=float("inf")), "min_alpha must be a finite number"),
    "words_done empty": (lambda: dict(words_done=np.zeros(0, np.int64)), "words_done must hold a word count"),
    "words_done int32": (lambda: dict(words_done=np.zeros(1, np.int32)), "words_done has dtype int32"),
    "words_done negative": (lambda: dict(words_done=np.array([-1], np.int64)), "words_done must hold"),
    "top_nodes -1": (lambda: dict(top_nodes=-1), "top_nodes must be from 0"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_make_job_refuses_what_the_kernel_cannot_train(case: str) -> None:
    changes, message = REFUSED[case]
    with pytest.raises(UserError) as e:
        native.make_job(**inputs(**changes()))
    text = one_line(e.value)
    assert text.startswith("bad training input: ") and message in text, text


def test_only_the_chunks_ids_are_checked() -> None:
    """ids beyond the chunk's sentences may be anything: the trainer hands over a window."""
    job = train(ids=_ids_with(30, -7), s_end=3)
    assert job.words == 25


def test_cpu_tensors_are_accepted_as_they_are() -> None:
    import torch

    kw = inputs()
    tensors = {k: torch.from_numpy(kw[k]) for k in ("input", "output", "output_hs")}
    before = tensors["input"].clone()
    native.train_chunk(native.make_job(**{**kw, **tensors}))
    assert not torch.equal(before, tensors["input"])  # trained in place


# ---- the kernel's own guards (a Job changed after make_job) -------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("vocab", 3, "the word id at corpus position 0 is outside the vocabulary of 3 words"),
    ("n_ids", 20, "sentence 2 lies outside the ids given"),
    ("dim", 0, "refused the job (code -5)"),
    ("window", -1, "refused the job"),
    ("negative", 5000, "refused the job"),
    ("total_words", 0, "refused the job"),
    ("alpha", float("nan"), "refused the job"),
    ("min_alpha", float("-inf"), "refused the job"),
    ("s_begin", 3, "refused the job"),  # after s_end (2)
])
def test_the_kernel_refuses_a_job_changed_after_make_job(field: str, value, message: str) -> None:
    job = native.make_job(**inputs(ids=np.full(40, 5, np.int32), s_end=2 if field == "s_begin" else 4))
    setattr(job, field, value)
    with pytest.raises(UserError) as e:
        native.train_chunk(job)
    assert message in one_line(e.value)


# ---- the cached library ----------------------------------------------------------------------

def _load_in_subprocess(cache: Path) -> subprocess.CompletedProcess:
    code = ("import numpy as np, sys; sys.path.insert(0, 'tests'); from test_kernel_safety import train; "
            "print(train().words)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "W2V_CACHE": str(cache), "PYTHONPATH": str(ROOT)})


def test_a_damaged_cached_library_is_rebuilt_not_loaded(tmp_path: Path) -> None:
    assert _load_in_subprocess(tmp_path).returncode == 0
    (so,) = (tmp_path / "w2v").glob("kernel-*.so")
    sidecar = so.with_name(so.name + ".sha256")
    whole = so.read_bytes()
    assert sorted(p.name for p in so.parent.iterdir()) == [so.name, sidecar.name]  # no temporary left
    for damage in ("truncate", "no sidecar", "wrong sidecar", "empty"):
        if damage == "truncate":  # a disk that filled up, a build killed: this used to crash every run (SIGBUS)
            so.write_bytes(whole[: len(whole) // 3])
        elif damage == "no sidecar":
            sidecar.unlink()
        elif damage == "wrong sidecar":
            sidecar.write_text("12 beef\n")
        else:
            so.write_bytes(b"")
        r = _load_in_subprocess(tmp_path)
        assert r.returncode == 0 and r.stdout.split()[-1] == "40", (damage, r.returncode, r.stderr[-2000:])
        assert so.read_bytes() == whole or len(so.read_bytes()) == len(whole), damage
        assert sidecar.exists()


# ---- sanitizers ------------------------------------------------------------------------------

def _sanitizer_runtimes(tmp: Path) -> list[str] | None:
    """The gcc runtimes to preload, or None where gcc cannot build with the sanitizers."""
    gcc = shutil.which("gcc")
    if not gcc:
        return None
    src = tmp / "probe.c"
    src.write_text("int probe(int *p) { return p[1]; }\n")
    built = subprocess.run([gcc, *native.SANITIZE_FLAGS, "-fPIC", "-shared", "-o", str(tmp / "probe.so"), str(src)],
                           capture_output=True)
    if built.returncode != 0:
        return None
    libs = [subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
            for name in ("libasan.so", "libubsan.so")]
    return libs if all(os.path.isabs(p) and os.path.exists(p) for p in libs) else None


@pytest.mark.skipif(os.environ.get("W2V_KERNEL_SANITIZE", "0") not in ("", "0"), reason="already sanitized")
def test_the_reference_tests_run_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    runtimes = _sanitizer_runtimes(tmp_path)
    if runtimes is None:
        pytest.skip("gcc cannot build with -fsanitize=address,undefined here")
    # allocator_may_return_null: a hostile job may ask for more memory than exists; the kernel
    # answers a NULL malloc with NO_MEMORY (MemoryError), which the fuzz test expects, where
    # ASan's default would abort the process.
    env = {**os.environ, "W2V_KERNEL_SANITIZE": "1", "CC": shutil.which("gcc"), "W2V_CACHE": str(tmp_path),
           "LD_PRELOAD": " ".join(runtimes),
           "ASAN_OPTIONS": "detect_leaks=0:allocator_may_return_null=1", "PYTHONPATH": str(ROOT),
           "UBSAN_OPTIONS": "print_stacktrace=1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/test_kernel.py",
                        "tests/test_kernel_speed_parity.py", "tests/test_kernel_safety.py",
                        "-k", "not cli and not damaged and not fuzz and not asan"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    output = r.stdout + r.stderr
    assert r.returncode == 0, output[-4000:]
    assert "runtime error" not in output and "AddressSanitizer" not in output, output[-4000:]
    (so,) = (tmp_path / "w2v").glob("kernel-*.so")
    assert b"__asan_" in so.read_bytes() and b"__ubsan_" in so.read_bytes()  # it was the sanitized build


# ---- fuzz ------------------------------------------------------------------------------------

def fuzz(examples: int) -> None:
    """Hostile make_job arguments: only a one-line UserError (Diverged included), MemoryError,
    or a clean chunk may come out; a crash ends the process with a signal."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    warnings.simplefilter("ignore", RuntimeWarning)  # casts of hostile values
    arrays = ["input", "output", "output_hs", "ids", "offsets", "keep", "words_done"]
    ints = st.one_of(st.integers(-3, 12), st.sampled_from([-2**63, -2**31 - 1, -1, 2**31 - 1, 2**31, 2**63 - 1]))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.sampled_from([0.0, 1e30, 3e38, 0.9]))
    dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.uint32, np.int64])

    def fit(value: int, dtype) -> int:
        info = np.iinfo(dtype)
        return min(max(value, info.min), info.max)

    @st.composite
    def change(draw, kw: dict) -> None:
        what = draw(st.sampled_from(["dtype", "shape", "layout", "value", "none", "scalar", "rate", "noise",
                                     "huffman"]))
        if what == "dtype":
            name = draw(st.sampled_from(arrays))
            if kw[name] is not None:
                kw[name] = kw[name].astype(draw(dtypes))
        elif what == "shape":
            name = draw(st.sampled_from(arrays))
            if kw[name] is not None:
                a = kw[name]
                kw[name] = draw(st.sampled_from([a[:-1], a[1:], a.reshape(-1), a[None], np.concatenate([a, a])]))
        elif what == "layout":
            name = draw(st.sampled_from(["input", "output", "ids", "offsets"]))
            if kw[name] is not None and kw[name].size > 2:
                kw[name] = kw[name][::2] if kw[name].ndim == 1 else np.asfortranarray(kw[name])
        elif what == "value":
            name = draw(st.sampled_from(arrays))
            a = kw[name]
            if a is not None and a.size:
                a = a.copy()
                i = draw(st.integers(0, a.size - 1))
                flat = a.reshape(-1)
                if a.dtype.kind == "f":
                    flat[i] = draw(floats)
                else:
                    flat[i] = fit(draw(ints), a.dtype)
                kw[name] = a
        elif what == "none":
            kw[draw(st.sampled_from(["output", "output_hs", "keep", "huffman", "noise"]))] = None
        elif what == "scalar":
            kw[draw(st.sampled_from(["dim", "negative", "window", "s_begin", "s_end", "total_words", "ids_base",
                                     "top_nodes"]))] = draw(ints)
        elif what == "rate":
            kw[draw(st.sampled_from(["alpha", "min_alpha"]))] = draw(floats)
        elif what == "noise" and kw["noise"] is not None:
            accept, alias = (a.copy() for a in kw["noise"])
            alias[draw(st.integers(0, len(alias) - 1))] = fit(draw(ints), alias.dtype)
            accept[0] = draw(floats)
            kw["noise"] = (accept, alias)
        elif what == "huffman" and kw["huffman"] is not None:
            points, codes, lengths = (a.copy() for a in kw["huffman"])
            (points if draw(st.booleans()) else lengths).reshape(-1)[0] = fit(draw(ints), np.int32)
            kw["huffman"] = (points, codes, lengths)

    @st.composite
    def hostile(draw) -> dict:
        kw = inputs(v=draw(st.integers(1, 12)), d=draw(st.integers(1, 8)), cbow=draw(st.booleans()),
                    top_nodes=draw(st.integers(0, 3)))
        for _ in range(draw(st.integers(1, 3))):
            draw(change(kw))
        return kw

    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(hostile())
    def run(kw: dict) -> None:
        try:
            job = native.make_job(**kw)
            native.train_chunk(job)
        except native.Diverged as e:
            one_line(e)
            outcomes["diverged"] = outcomes.get("diverged", 0) + 1
        except UserError as e:
            one_line(e)
            outcomes["refused"] = outcomes.get("refused", 0) + 1
        except MemoryError:
            outcomes["no memory"] = outcomes.get("no memory", 0) + 1
        else:
            assert np.isfinite(job.loss_sum) and 0 <= job.words <= len(kw["ids"])
            outcomes["trained"] = outcomes.get("trained", 0) + 1

    run()
    print("outcomes:", outcomes)


def test_hostile_inputs_never_crash_the_kernel() -> None:
    r = subprocess.run([sys.executable, __file__, "fuzz", "400"], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}: {(r.stdout + r.stderr)[-3000:]}"
    assert "trained" in r.stdout and "refused" in r.stdout, r.stdout


if __name__ == "__main__" and sys.argv[1:2] == ["fuzz"]:
    fuzz(int(sys.argv[2]))
