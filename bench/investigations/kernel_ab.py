"""A/B timing of kernel.c variants (and optionally gensim) on the same encoded corpus.

    python bench/investigations/kernel_ab.py old.c w2v/csrc/kernel.c --model sg --threads 2 --rounds 5

Each variant is compiled with native.FLAGS into bench/out/ab/, loaded with ctypes and run
over the first --words words of an epoch with `--threads` Python threads taking chunks
(as the trainer does). Rounds alternate the variants, so machine load hits them alike;
the output is words/s per variant per round and the median ratio to the first variant.
`--gensim` adds a gensim corpus_file run on the same token file to each round.
The variants must share native.Job's layout.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from w2v import encode, native  # noqa: E402
from w2v.native_build import compile_kernel  # noqa: E402
from w2v.corpus import Corpus  # noqa: E402
from w2v.dictionary import Dictionary, build_alias_table  # noqa: E402
from w2v.semantics import chunk_bounds, chunk_seed  # noqa: E402

OUT = ROOT / "bench" / "out"


def compile_variant(src: Path) -> ctypes.CDLL:
    data = src.read_bytes()
    key = hashlib.sha256(data + " ".join(native.FLAGS).encode()).hexdigest()[:12]
    so = OUT / "ab" / f"{src.stem}-{key}.so"
    if not so.exists():
        so.parent.mkdir(parents=True, exist_ok=True)
        compile_kernel("cc", src, so, native.NATIVE_FLAGS)  # as the product compiles it
    lib = ctypes.CDLL(str(so))
    lib.w2v_train_chunk.argtypes = [ctypes.POINTER(native.Job)]
    lib.w2v_train_chunk.restype = ctypes.c_int
    return lib


def encoded(tokfile: Path) -> encode.Encoded:
    d = OUT / f"enc-{tokfile.stem}"
    if (d / "ids.npy").exists():
        dictionary = Dictionary.load(d / "vocab.tsv")
        return encode.Encoded.open(d, dictionary, 0)
    d.mkdir(parents=True, exist_ok=True)
    return encode.build(Corpus([tokfile], tokenizer="whitespace", lowercase=False), d, 5)


def advise(arr: np.ndarray) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    start = (arr.ctypes.data + (1 << 21) - 1) & ~((1 << 21) - 1)
    end = (arr.ctypes.data + arr.nbytes) & ~((1 << 21) - 1)
    if end > start:
        for advice in (14, 25):
            if libc.madvise(start, end - start, advice) != 0:
                print("madvise", advice, "failed, errno", ctypes.get_errno())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kernels", nargs="+", type=Path)
    p.add_argument("--tokens", type=Path, default=OUT / "tokens-all.txt")
    p.add_argument("--model", default="sg", choices=("sg", "cbow"))
    p.add_argument("--hs", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--words", type=int, default=3_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-words", type=int, default=100_000)
    p.add_argument("--gensim", action="store_true")
    p.add_argument("--private", action="store_true", help="each thread its own output matrices (contention test)")
    p.add_argument("--huge", action="store_true", help="madvise the matrices MADV_HUGEPAGE + MADV_COLLAPSE")
    p.add_argument("--top-nodes", type=int, default=0, help="Job.top_nodes for every variant (hs)")
    a = p.parse_args()

    data = encoded(a.tokens)
    dic = data.dictionary
    V, dim = len(dic), 100
    negative = 0 if a.hs else 5
    alpha = 0.025 if a.model == "sg" else 0.05
    keep = dic.keep_probabilities(1e-3)
    accept, alias = build_alias_table(dic.noise_distribution(0.75))
    hs = dic.huffman() if a.hs else None
    ids, offsets = np.ascontiguousarray(data.ids), np.ascontiguousarray(data.offsets)
    bounds = chunk_bounds(offsets, a.batch_words)
    n_chunks = int(np.searchsorted(offsets[bounds], a.words)) or 1
    n_chunks = min(n_chunks, len(bounds) - 1)
    words = int(offsets[bounds[n_chunks]])
    libs = [compile_variant(k) for k in a.kernels]
    rng = np.random.default_rng(1)
    init = ((rng.random((V, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)

    def run(lib) -> tuple[float, float, float]:
        inp = init.copy()
        out = np.zeros((V, dim), np.float32) if negative else None
        out_hs = np.zeros((V, dim), np.float32) if a.hs else None
        counter = np.zeros(1, np.int64)
        if a.huge:
            for arr in (inp, out, out_hs):
                if arr is not None:
                    advise(arr)
        nxt = [0]
        lock = threading.Lock()
        losses = []
        cpu = [0.0]

        def work():
            mine_out, mine_hs = out, out_hs
            if a.private:  # contention test: this thread's own output matrices (not training!)
                mine_out = out.copy() if negative else None
                mine_hs = out_hs.copy() if a.hs else None
            while True:
                with lock:
                    k = nxt[0]
                    nxt[0] += 1
                if k >= n_chunks:
                    return
                job = native.make_job(
                    input=inp, output=mine_out, output_hs=mine_hs, dim=dim, negative=negative, window=5,
                    cbow=a.model == "cbow", ids=ids, offsets=offsets, s_begin=int(bounds[k]),
                    s_end=int(bounds[k + 1]), keep=keep, noise=(accept, alias), huffman=hs, alpha=alpha,
                    min_alpha=alpha * 1e-4, total_words=words, words_done=counter, seed=chunk_seed(1, 0, k),
                    top_nodes=a.top_nodes)
                c0 = time.thread_time()
                lib.w2v_train_chunk(ctypes.byref(job))
                c1 = time.thread_time()
                with lock:
                    losses.append((job.loss_sum, job.loss_count))
                    cpu[0] += c1 - c0

        ts = [threading.Thread(target=work) for _ in range(a.threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        loss = sum(l for l, _ in losses) / max(sum(c for _, c in losses), 1)
        return words / dt, loss, words / cpu[0]

    def run_gensim() -> float:
        code = (f"import time; from gensim.models import Word2Vec; "
                f"m = Word2Vec(vector_size=100, window=5, negative={negative}, hs={int(a.hs)}, sample=1e-3, "
                f"min_count=5, alpha={alpha}, min_alpha={alpha * 1e-4}, workers={a.threads}, "
                f"sg={int(a.model == 'sg')}, epochs=1); m.build_vocab(corpus_file='{a.tokens}'); "
                f"t = time.perf_counter(); m.train(corpus_file='{a.tokens}', total_words=m.corpus_total_words, "
                f"epochs=1); print(m.corpus_total_words / (time.perf_counter() - t))")
        return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.split()[-1])

    import os

    names = [k.name if k.name != "kernel.c" else str(k) for k in a.kernels] + (["gensim"] if a.gensim else [])
    speeds: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    print(f"{a.model}{' hs' if a.hs else ''}, {a.threads} threads, {words:,} words per run "
          f"({n_chunks} chunks), vocab {V:,}", flush=True)
    for r in range(a.rounds):
        row = []
        for name, lib in zip(names, libs):
            s, loss, c = run(lib)
            speeds[name].append(s)
            cpus[name].append(c)
            row.append(f"{name} {s / 1e3:,.0f}k ({c / 1e3:,.0f}k/cpu-s, loss {loss:.4f})")
        if a.gensim:
            s = run_gensim()
            speeds["gensim"].append(s)
            row.append(f"gensim {s / 1e3:,.0f}k")
        print(f"round {r + 1} load {os.getloadavg()[0]:.2f}: " + "  ".join(row), flush=True)
    base = speeds[names[0]]
    for n in names:
        ratios = [x / b for x, b in zip(speeds[n], base)]
        print(f"{n:40} median {statistics.median(speeds[n]) / 1e3:8,.0f}k  vs {names[0]}: "
              f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]", end="")
        if cpus.get(n):
            cr = [x / b for x, b in zip(cpus[n], cpus[names[0]])]
            print(f"   per cpu-s {statistics.median(cpus[n]) / 1e3:,.0f}k, ratio {statistics.median(cr):.3f} "
                  f"[{min(cr):.3f}-{max(cr):.3f}]", end="")
        print()


if __name__ == "__main__":
    main()
