"""How w2v and gensim scale with corpus length: prepare time, training speed, end-to-end time, peak RSS.

    python bench/scale.py                        # 12.6M, 50M and 100M tokens, 1 and 2 threads (~20 min on 2 cores)
    python bench/scale.py --sizes 1 --threads 2  # the 12.6M row only

The corpora are the benchmark's token file (bench/vs_gensim.py's `token_file`, 12.6M tokens)
repeated 1, 4 and 8 times into bench/out/tokens-xN.txt: the same vocabulary at every size, so
what grows with the corpus shows alone. Every run is its own process: CBOW, dim 100, window 5,
negative 5, min_count 5, 1 epoch; w2v as `w2v train --tokenizer whitespace --no-lowercase`
(preparation and training with --threads workers), gensim as shipped in corpus_file mode
(`build_vocab(corpus_file=...)` then `train(corpus_file=...)`, workers=threads).

  prepare s   w2v: vocabulary + ids (config.json's prepare_seconds); gensim: build_vocab
  words/s     corpus tokens / training seconds
  e2e s       process start -> model saved (w2v) / trained (gensim)
  peak MB     the main process's peak RSS (ru_maxrss from wait4); w2v's preparation workers,
              separate processes, are not in it (each holds one piece's vocabulary)

Writes bench/out/scale-TIME.md (the table, with the growth per 10M tokens between the
smallest and the largest corpus) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "bench"))

from vs_gensim import token_file  # noqa: E402

# `w2v train` with the preparation workers Trainer._build will pass (--threads of them); a no-op once it does.
W2V = """
import sys
from w2v import encode
build = encode.build
def build_with_workers(*args, **kwargs):
    kwargs.setdefault("workers", int(sys.argv[sys.argv.index("--threads") + 1]))
    kwargs.setdefault("tokenizer", "whitespace")
    kwargs.setdefault("lowercase", False)
    return build(*args, **kwargs)
encode.build = build_with_workers
from w2v.cli import main
main()
"""
GENSIM = """
import json, resource, sys, time
from gensim.models import Word2Vec
path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = Word2Vec(sg=0, vector_size=100, window=5, negative=5, min_count=5, workers=threads, epochs=1)
t = time.perf_counter()
model.build_vocab(corpus_file=path)
prepare = time.perf_counter() - t
t = time.perf_counter()
model.train(corpus_file=path, total_words=model.corpus_total_words, epochs=1)
train = time.perf_counter() - t
print(json.dumps({"prepare": prepare, "words_per_second": tokens / train}))
"""


def corpus(times: int) -> tuple[Path, int]:
    base, tokens = token_file(quick=False)
    if times == 1:
        return base, tokens
    path = OUT / f"tokens-x{times}.txt"
    if not path.exists() or path.stat().st_size != times * base.stat().st_size:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for _ in range(times):
                with open(base, "rb") as src:
                    while block := src.read(1 << 24):
                        out.write(block)
        os.replace(tmp, path)
    return path, tokens * times


def run(command: list[str]) -> tuple[float, float, str]:
    """(wall s, peak MB, stdout) of one process; ru_maxrss read with wait4, the process's own."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def w2v_row(path: Path, tokens: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(dir=OUT) as out:
        wall, peak, _ = run([sys.executable, "-c", W2V, "train", str(path), "--out", out, "--overwrite",
                             "--tokenizer", "whitespace", "--no-lowercase", "--model", "cbow", "--epochs", "1",
                             "--threads", str(threads), "--checkpoint-every", "0", "--no-eval",
                             "--no-tensorboard", "--quiet"])
        stats = json.loads((Path(out) / "config.json").read_text())["stats"]
    return {"prepare": stats["prepare_seconds"], "words_per_second": tokens / stats["train_seconds"],
            "e2e": wall, "peak": peak}


def gensim_row(path: Path, tokens: int, threads: int) -> dict:
    wall, peak, out = run([sys.executable, "-c", GENSIM, str(path), str(threads), str(tokens)])
    return {**json.loads(out.strip().splitlines()[-1]), "e2e": wall, "peak": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8], help="repeats of the 12.6M-token file")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")  # this checkout's w2v
    rows = []
    header = ("| tokens | threads | tool | prepare s | train words/s | e2e s | peak RSS MB |\n"
              "|---:|---:|---|---:|---:|---:|---:|")
    print(header, flush=True)
    for times in a.sizes:
        path, tokens = corpus(times)
        for threads in a.threads:
            for tool, row in (("gensim", gensim_row), ("w2v", w2v_row)):
                r = {"tokens": tokens, "threads": threads, "tool": tool, **row(path, tokens, threads)}
                rows.append(r)
                print(f"| {tokens / 1e6:.1f}M | {threads} | {tool} | {r['prepare']:.1f} | "
                      f"{r['words_per_second'] / 1e6:.2f}M | {r['e2e']:.1f} | {r['peak']:.0f} |", flush=True)
    lines = [header] + [f"| {r['tokens'] / 1e6:.1f}M | {r['threads']} | {r['tool']} | {r['prepare']:.1f} | "
                        f"{r['words_per_second'] / 1e6:.2f}M | {r['e2e']:.1f} | {r['peak']:.0f} |" for r in rows]
    small, large = min(a.sizes), max(a.sizes)
    if large > small:
        lines += ["", "growth per 10M tokens (smallest to largest corpus):", "",
                  "| threads | tool | prepare s | e2e s | peak RSS MB |", "|---:|---|---:|---:|---:|"]
        for threads in a.threads:
            for tool in ("gensim", "w2v"):
                pick = {r["tokens"]: r for r in rows if r["threads"] == threads and r["tool"] == tool}
                lo, hi = pick[min(pick)], pick[max(pick)]
                per = 1e7 / (hi["tokens"] - lo["tokens"])
                lines.append(f"| {threads} | {tool} | {(hi['prepare'] - lo['prepare']) * per:+.1f} | "
                             f"{(hi['e2e'] - lo['e2e']) * per:+.1f} | {(hi['peak'] - lo['peak']) * per:+.1f} |")
    load = os.getloadavg()
    lines += ["", f"load average before the last run: {load[0]:.1f} (cores: {os.cpu_count()})"]
    report = OUT / time.strftime("scale-%Y%m%d-%H%M%S.md")
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[len(rows) + 1:]))
    print(f"written to {report.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
