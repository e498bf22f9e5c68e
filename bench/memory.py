"""Where w2v's memory goes: resident memory (RSS) at each phase of a training run.

    python bench/memory.py                       # sg, 1 epoch, the benchmark's token file
    python bench/memory.py --hs --epochs 5
    python bench/memory.py --model cbow --min-count 1
    python bench/memory.py --model cbow --min-count 8 --tokens bench/out/tokens-x8.txt  # 8x the text, same vocabulary

Samples /proc/self/smaps_rollup every 20 ms in a thread and prints, for each phase (imports,
vocabulary + ids, training and saving), the highest RSS seen in it, split into anonymous
memory and file-backed pages (memory-mapped files count in RSS once touched), then the
peak (ru_maxrss) and, for reference, what importing numpy, torch and gensim costs on their
own in fresh interpreters. The token file is the one bench/vs_gensim.py writes (run that,
or its --quick mode, first). Preparation workers (--threads > 1) are separate processes,
not counted here.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENS = ROOT / "bench" / "out" / "tokens-all.txt"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def rollup() -> tuple[float, float, float]:
    """(RSS, anonymous, file-backed) MB from smaps_rollup."""
    fields = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return fields["Rss"], fields["Anonymous"], fields["Rss"] - fields["Anonymous"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_cost(module: str) -> float:
    code = f"import resource, {module}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(out.stdout.strip()) if out.returncode == 0 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=Path, default=TOKENS)
    p.add_argument("--model", choices=("sg", "cbow"), default="sg")
    p.add_argument("--hs", action="store_true", help="--hs --negative 0")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-count", type=int, default=5, help="for the same vocabulary on the token file repeated "
                   "N times, give N times the count")
    a = p.parse_args()
    if not a.tokens.exists():
        sys.exit(f"{a.tokens} not found: run bench/vs_gensim.py first")
    # First: a child's ru_maxrss starts from its parent's at fork, so these must run while we are small.
    for module in ("numpy", "torch", "gensim.models"):
        print(f"import {module:14} alone: {import_cost(module):6.0f} MB peak")
    samples: list[tuple[float, float, float, float]] = []  # (time, rss, anonymous, file-backed)
    phases: list[tuple[str, float]] = []  # (name, end time)
    t0 = time.perf_counter()

    def sample() -> None:
        while True:
            samples.append((time.perf_counter() - t0, *rollup()))
            time.sleep(0.02)

    def phase(name: str) -> None:
        phases.append((name, time.perf_counter() - t0))

    threading.Thread(target=sample, daemon=True).start()
    sys.path.insert(0, str(ROOT))
    import w2v
    from w2v import encode, trainer

    phase("imports")
    build = encode.build

    def traced_build(*args, **kwargs):
        # What Trainer._build passes once it prepares with --threads workers (a no-op when it does).
        kwargs.setdefault("workers", a.threads)
        kwargs.setdefault("tokenizer", "whitespace")
        kwargs.setdefault("lowercase", False)
        result = build(*args, **kwargs)
        phase("vocabulary + ids")
        return result

    trainer.encode.build = traced_build
    with tempfile.TemporaryDirectory() as out:
        w2v.train([str(a.tokens)], tokenizer="whitespace", lowercase=False, model=a.model, hs=a.hs,
                  negative=0 if a.hs else 5, epochs=a.epochs, min_count=a.min_count, threads=a.threads, out=out, overwrite=True,
                  checkpoint_every=0, tensorboard=False, progress=False, evaluate=False)
    phase("training and saving")
    start = 0.0
    print(f"{'phase':22} {'until':>7} {'max RSS':>8} {'anon':>6} {'file':>6}  (MB, highest sample in the phase)")
    for name, end in phases:
        inside = [s for s in samples if start <= s[0] <= end] or [samples[-1]]
        top = max(inside, key=lambda s: s[1])
        print(f"{name:22} {end:6.1f}s {top[1]:8.0f} {top[2]:6.0f} {top[3]:6.0f}")
        start = end
    print(f"peak (ru_maxrss) {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
