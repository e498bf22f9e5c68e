"""Words/s and quality of the CUDA path (and of the C kernel on that machine's CPU cores).

    python bench/gpu.py CORPUS_FILES... [--epochs 5] [--batch-pairs 16384 65536]

Prints one line per run: model, engine, words/s (corpus words x epochs / training time),
analogy accuracy (Google set, restrict 30,000) and WordSim-353 Spearman.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

import w2v
from w2v import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-pairs", type=int, nargs="+", default=[16384, 65536])
    ap.add_argument("--cpu-threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if torch.cuda.is_available():
        print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, flush=True)
    runs = []
    for model in ("sg", "cbow"):
        if torch.cuda.is_available():
            runs += [(model, "cuda", dict(device="cuda", batch_pairs=b)) for b in args.batch_pairs]
        runs.append((model, f"cpu-native-{args.cpu_threads}t", dict(device="cpu", threads=args.cpu_threads)))
    for model, engine, options in runs:
        with tempfile.TemporaryDirectory() as out:
            m = w2v.train(args.paths, out=out, model=model, epochs=args.epochs, progress=False,
                          tensorboard=False, evaluate=False, **options)
            v = m.vectors()
            a, s = evaluate.analogies(v), evaluate.similarity(v)
            print(f"{model:4s} {engine:18s} batch_pairs={options.get('batch_pairs', '-')!s:6s} "
                  f"{m.stats['words_per_second'] / 1e6:6.2f}M words/s (trained tokens)  train {m.stats['train_seconds']:6.1f} s  "
                  f"prepare {m.stats['prepare_seconds']:5.1f} s  analogy {a.total:.3f} ({a.attempted})  "
                  f"wordsim {s.spearman:.3f}  final loss {m.stats['epoch_losses'][-1]:.4f}", flush=True)


if __name__ == "__main__":
    main()
