"""Where w2v's memory goes: resident memory (RSS) at each phase of a training run.

    python bench/memory.py                       # sg, 1 epoch, the benchmark's token file
    python bench/memory.py --hs --epochs 5

Samples VmRSS every 20 ms in a thread and prints it at the phase boundaries (imports,
vocabulary + ids, training), the peak (ru_maxrss) and, for reference, what importing
numpy, torch and gensim costs on their own in fresh interpreters. The token file is the
one bench/vs_gensim.py writes (run that, or its --quick mode, first).
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
    a = p.parse_args()
    if not a.tokens.exists():
        sys.exit(f"{a.tokens} not found: run bench/vs_gensim.py first")
    for module in ("numpy", "torch", "gensim.models"):
        print(f"import {module:14} alone: {import_cost(module):6.0f} MB peak")

    samples: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    def sample() -> None:
        while True:
            samples.append((time.perf_counter() - t0, rss_mb()))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    sys.path.insert(0, str(ROOT))
    import w2v
    from w2v import encode, trainer

    print(f"{time.perf_counter() - t0:6.1f} s  imports done          rss {rss_mb():5.0f} MB  peak {peak_mb():5.0f} MB")
    build = encode.build

    def traced_build(*args, **kwargs):
        result = build(*args, **kwargs)
        print(f"{time.perf_counter() - t0:6.1f} s  vocabulary + ids done rss {rss_mb():5.0f} MB  peak {peak_mb():5.0f} MB")
        return result

    trainer.encode.build = traced_build
    with tempfile.TemporaryDirectory() as out:
        w2v.train([str(a.tokens)], tokenizer="whitespace", lowercase=False, model=a.model, hs=a.hs,
                  negative=0 if a.hs else 5, epochs=a.epochs, threads=a.threads, out=out, overwrite=True,
                  checkpoint_every=0, tensorboard=False, progress=False, evaluate=False)
    print(f"{time.perf_counter() - t0:6.1f} s  trained and saved     rss {rss_mb():5.0f} MB  peak {peak_mb():5.0f} MB")
    when, most = max(samples, key=lambda s: s[1])
    print(f"highest sample: {most:.0f} MB at {when:.1f} s")


if __name__ == "__main__":
    main()
