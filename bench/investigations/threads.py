"""What bounds the second thread: shared rows, or the machine? Same kernel, same words, five ways.

    python bench/investigations/threads.py --model sg --rounds 5      # about a minute per model

Every way trains the first --words words of the benchmark's token file with the product's
kernel (native.library()), chunks handed out as the trainer does, and reports words/s and
words per CPU-second of the training threads:

  1 thread             the baseline
  2 threads            as w2v trains: both threads write the same input and output matrices
  2 threads, private   each thread its own copy of both matrices: nothing written is shared
                       (not training: a contention test)
  2 processes          two independent 1-thread runs at once, each in its own process: what
                       the machine gives a second core when the program shares nothing at all
  spin, 1 / 2          a pure compute loop (no memory traffic) alone and two at once: whether
                       the two CPUs are two whole cores for arithmetic

If "2 threads, private" is no faster than "2 threads", the shared rows are not what stops the
second thread; if "2 processes" loses as much per process, the bound is the machine (memory
system, shared caches, the hypervisor's CPUs), not w2v. Hardware counters would say which
part of the machine; this VM exposes none (`perf stat -e cache-misses` says not supported).
Rounds alternate the ways, so machine load hits them alike.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel_ab import OUT, encoded  # noqa: E402
from w2v import native  # noqa: E402
from w2v.semantics import chunk_bounds, chunk_seed  # noqa: E402

SPIN = 30_000_000


def train(a: argparse.Namespace, threads: int, private: bool) -> tuple[float, float]:
    """words/s and words per CPU-second of `threads` threads over the first a.words words."""
    data = encoded(a.tokens)
    dic = data.dictionary
    V, dim = len(dic), 100
    alpha = 0.025 if a.model == "sg" else 0.05
    keep = dic.keep_probabilities(1e-3)
    from w2v.dictionary import build_alias_table

    noise = build_alias_table(dic.noise_distribution(0.75))
    ids, offsets = np.ascontiguousarray(data.ids), np.ascontiguousarray(data.offsets)
    bounds = chunk_bounds(offsets, 100_000)
    n_chunks = min(max(int(np.searchsorted(offsets[bounds], a.words)), 1), len(bounds) - 1)
    words = int(offsets[bounds[n_chunks]])
    rng = np.random.default_rng(1)
    init = ((rng.random((V, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    shared = (init.copy(), np.zeros((V, dim), np.float32))
    counter = np.zeros(1, np.int64)
    lock = threading.Lock()
    nxt, cpu = [0], [0.0]
    lib = native.library()

    copies = [(shared[0].copy(), shared[1].copy()) if private else shared for _ in range(threads)]
    for m in (m for pair in copies for m in pair):
        native.advise_huge_pages(m.ctypes.data, m.nbytes)

    def work(inp: np.ndarray, out: np.ndarray) -> None:
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= n_chunks:
                return
            job = native.make_job(
                input=inp, output=out, output_hs=None, dim=dim, negative=5, window=5, cbow=a.model == "cbow",
                ids=ids, offsets=offsets, s_begin=int(bounds[k]), s_end=int(bounds[k + 1]), keep=keep, noise=noise,
                huffman=None, alpha=alpha, min_alpha=alpha * 1e-4, total_words=words, words_done=counter,
                seed=chunk_seed(1, 0, k), top_nodes=0)
            c0 = time.thread_time()
            lib.w2v_train_chunk(ctypes.byref(job))
            with lock:
                cpu[0] += time.thread_time() - c0

    workers = [threading.Thread(target=work, args=pair) for pair in copies]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return words / (time.perf_counter() - t0), words / cpu[0]


def spin() -> float:
    """Seconds for a pure-Python arithmetic loop: no memory traffic beyond L1."""
    t0 = time.perf_counter()
    x = 0
    for i in range(SPIN):
        x += i * i & 7
    return time.perf_counter() - t0


def together(args: list[str], n: int) -> list[dict]:
    """Run this script's --child mode n times at once; each prints one JSON line."""
    procs = [subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("sg", "cbow"), default="sg")
    p.add_argument("--tokens", type=Path, default=OUT / "tokens-all.txt")
    p.add_argument("--words", type=int, default=3_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--child", choices=("train", "spin"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child == "train":
        print(json.dumps(dict(zip(("speed", "per_cpu"), train(a, 1, False)))))
        return
    if a.child == "spin":
        print(json.dumps({"seconds": spin()}))
        return
    encoded(a.tokens)  # built once before any timing
    child = ["--model", a.model, "--tokens", str(a.tokens), "--words", str(a.words)]
    rows: dict[str, list[tuple[float, float]]] = {}
    for r in range(a.rounds):
        got = {
            "1 thread": train(a, 1, False),
            "2 threads": train(a, 2, False),
            "2 threads, private": train(a, 2, True),
        }
        pair = together(child + ["--child", "train"], 2)
        got["2 processes (sum)"] = (sum(x["speed"] for x in pair), statistics.mean(x["per_cpu"] for x in pair))
        alone = together(["--child", "spin"], 1)[0]["seconds"]
        two = statistics.mean(x["seconds"] for x in together(["--child", "spin"], 2))
        got["spin: 2 at once / 1 alone (time)"] = (two / alone, 0.0)
        for name, v in got.items():
            rows.setdefault(name, []).append(v)
        print(f"round {r + 1}: " + "  ".join(f"{n} {v[0] / 1e3:,.0f}k" if v[1] else f"{n} {v[0]:.2f}"
                                             for n, v in got.items()), flush=True)
    one = [s for s, _ in rows["1 thread"]]
    print(f"\n{a.model}, {a.words:,} words, {a.rounds} rounds: medians [min-max]")
    print("| way | words/s | vs 1 thread | words per CPU-second |\n|---|---|---|---|")
    for name, vs in rows.items():
        speeds = [s for s, _ in vs]
        if name.startswith("spin"):
            print(f"| {name} | {statistics.median(speeds):.2f} [{min(speeds):.2f}-{max(speeds):.2f}] | | |")
            continue
        ratios = [s / o for s, o in zip(speeds, one)]
        cpus = [c for _, c in vs]
        print(f"| {name} | {statistics.median(speeds) / 1e3:,.0f}k | {statistics.median(ratios):.2f}x "
              f"[{min(ratios):.2f}-{max(ratios):.2f}] | {statistics.median(cpus) / 1e3:,.0f}k |")


if __name__ == "__main__":
    main()
