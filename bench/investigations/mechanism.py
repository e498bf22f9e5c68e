"""Why gensim's corpus_file mode with 2 workers scores above w2v on the same settings: each factor alone.

    python bench/investigations/mechanism.py --seeds 1 2 3            # skip-gram, 2 threads, ~45 min here
    python bench/investigations/mechanism.py --report                 # the table of bench/out/mechanism.jsonl

Same token file as bench/vs_gensim.py (the benchmark corpus, 12.6M whitespace tokens) and
its like-for-like settings (dim 100, window 5, negative 5, sample 1e-3, min_count 5, 5
epochs, alpha 0.025 sg / 0.05 cbow, min_alpha = alpha * 1e-4), 2 threads / 2 workers.
gensim's corpus_file mode differs from w2v in four ways, each switched on alone in w2v here
(throwaway changes made by this script, never in the product):

  halves          each thread reads its own half of the corpus, in order (gensim gives each
                  worker a byte range of the file); w2v hands chunks out in corpus order
  staircase       each thread's learning rate follows its own word count against the whole
                  epoch's (gensim's get_next_alpha): within an epoch it falls half as far as
                  it should, then jumps back up; it ends at 0.1 alpha
  skip-negatives  a negative equal to the target is dropped (gensim) instead of redrawn (w2v)
  context-input   skip-gram's context word's vector predicts the centre (gensim and word2vec
                  C); w2v's negative sampling scores the centre's vector against the context

plus `gensim-like` (all four) and gensim itself as shipped (2 workers), on the linear
schedule (bench/vs_gensim.py's train_linear_schedule) and with one worker. Each w2v run is
its own process: the kernel variants are compiled from w2v/csrc/kernel.c by text
substitution (asserted to match) into bench/out/ab/.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_gensim import OUT, QUESTIONS, WORDSIM, run_one, token_file  # noqa: E402

LOG = OUT / "mechanism.jsonl"
KERNEL = ROOT / "w2v" / "csrc" / "kernel.c"
# kernel.c text -> the variant's text
KERNEL_CHANGES = {
    "skip-negatives": [("n == t && tries < 32", "n == t && tries < 1")],
    "context-input": [("return j->out_hs ? slot->ctx[c] : slot->centre;", "return slot->ctx[c];"),
                      ("return j->out_hs ? slot->centre : slot->ctx[c];", "return slot->centre;")],
}
VARIANTS = {  # name: the changes switched on
    "w2v": [],
    "halves": ["halves"],
    "staircase": ["staircase"],
    "halves+staircase": ["halves", "staircase"],
    "skip-negatives": ["skip-negatives"],
    "context-input": ["context-input"],
    "gensim-like": ["halves", "staircase", "skip-negatives", "context-input"],
}
GENSIM = {  # name: (vs_gensim mode, workers)
    "gensim shipped": ("corpus_file-shipped", 2),
    "gensim linear": ("corpus_file", 2),
    "gensim 1 worker": ("corpus_file", 1),
}


def kernel_variant(changes: list[str]):
    from kernel_ab import compile_variant

    text = KERNEL.read_text()
    for name in changes:
        for old, new in KERNEL_CHANGES[name]:
            assert text.count(old) == 1, f"{name}: {old!r} not found once in kernel.c"
            text = text.replace(old, new)
    src = OUT / "ab" / f"mechanism-{'-'.join(changes)}.c"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(text)
    lib = compile_variant(src)
    lib.w2v_reset_fixed_negatives.argtypes = []
    return lib


def variant_engine(changes: list[str]):
    """A NativeEngine whose threads take chunks from their own half and/or keep their own clock."""
    from w2v import native
    from w2v.engines import ChunkResult, NativeEngine, TOP_NODES
    from w2v.semantics import chunk_seed

    class Variant(NativeEngine):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.lock = threading.Lock()
            self.local = threading.local()
            self.started = 0
            self.epoch = -1
            self.cursors: list[int] = []
            self.clocks = [np.zeros(1, np.int64) for _ in range(self.threads)]
            self.clock_epoch = [-1] * self.threads
            self.n_chunks = 0

        def _thread(self) -> int:
            if not hasattr(self.local, "index"):
                with self.lock:
                    self.local.index = self.started % self.threads
                    self.started += 1
            return self.local.index

        def _chunk_of(self, thread: int, chunk):
            """gensim's order: thread t reads half t in order (then helps with the other half)."""
            with self.lock:
                if chunk.epoch != self.epoch:
                    self.epoch = chunk.epoch
                    half = self.n_chunks // 2
                    self.cursors = [0, half]
                    self.ends = [half, self.n_chunks]
                mine = thread % 2
                part = mine if self.cursors[mine] < self.ends[mine] else 1 - mine
                k = self.cursors[part]
                self.cursors[part] += 1
            return k

        def train_chunk(self, chunk):
            thread = self._thread()
            c, p, t = self.config, self.params, self.tables
            k = chunk.number
            if "halves" in changes:
                k = self._chunk_of(thread, chunk)
            bounds = self.bounds
            s_begin, s_end = int(bounds[k]), int(bounds[k + 1])
            words_done, total = self.clock.words_done, self.clock.total
            if "staircase" in changes:
                words_done = self.clocks[thread]
                if self.clock_epoch[thread] != chunk.epoch:  # gensim: (epoch + own words / N) / epochs
                    self.clock_epoch[thread] = chunk.epoch
                    words_done[0] = chunk.epoch * (total // c.epochs)
            offsets = np.ascontiguousarray(self.data.read_offsets(s_begin, s_end + 1))
            base = int(offsets[0])
            job = native.make_job(
                input=p.input, output=p.output if c.negative else None, output_hs=p.output_hs if c.hs else None,
                dim=c.dim, negative=c.negative, window=c.window, cbow=c.model == "cbow",
                ids=self.data.read(base, int(offsets[-1])), offsets=offsets,
                s_begin=0, s_end=len(offsets) - 1, keep=t.keep, noise=t.alias,
                huffman=t.huffman, alpha=c.alpha, min_alpha=c.min_alpha, total_words=total,
                words_done=words_done, seed=chunk_seed(c.seed, chunk.epoch, k), ids_base=base,
                top_nodes=TOP_NODES if c.hs and c.threads > 1 else 0)
            native.train_chunk(job)
            if "staircase" in changes:
                self.clock.words_done[0] += job.words  # the run's own clock (progress) still counts
            return ChunkResult(job.loss_sum, float(job.loss_count), job.words)

    return Variant


def worker(spec: dict) -> dict:
    import w2v
    import w2v.trainer
    from w2v import native
    from w2v.evaluate import analogies, similarity
    from w2v.semantics import chunk_bounds

    changes = VARIANTS[spec["variant"]]
    kernel_changes = [x for x in changes if x in KERNEL_CHANGES]
    if kernel_changes:
        native._lib = kernel_variant(kernel_changes)
    engine_changes = [x for x in changes if x not in KERNEL_CHANGES]
    if engine_changes:
        Variant = variant_engine(engine_changes)
        from w2v.semantics import Tables

        def make_engine(backend, data, params, config, clock):
            tables = Tables.build(data.dictionary, config.sample, config.ns_exponent, config.hs)
            engine = Variant(data, params, tables, config, clock)
            engine.bounds = chunk_bounds(data.offsets, config.batch_words)
            engine.n_chunks = len(engine.bounds) - 1
            return engine

        w2v.trainer.make_engine = make_engine
    sg = spec["model"] == "sg"
    alpha = 0.025 if sg else 0.05
    run_dir = OUT / "runs" / f"mechanism-{spec['variant']}-{spec['seed']}"
    t0 = time.perf_counter()
    run = w2v.train([spec["tokfile"]], tokenizer="whitespace", lowercase=False, model=spec["model"],
                    dim=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=spec["epochs"],
                    alpha=alpha, min_alpha=alpha * 1e-4, threads=spec["threads"], seed=spec["seed"],
                    out=str(run_dir), overwrite=True, checkpoint_every=0, evaluate=False,
                    tensorboard=False, progress=False)
    seconds = time.perf_counter() - t0
    vectors = run.vectors()
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    return dict(analogy=analogies(vectors, QUESTIONS, restrict_vocab=30_000).total,
                ws353=similarity(vectors, WORDSIM).spearman, seconds=seconds)


def run_variant(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{spec['variant']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(rows: list[dict]) -> str:
    rows = list({(r["model"], r["variant"], r["seed"]): r for r in rows}.values())  # a rerun replaces its seed
    lines = ["| model | variant | seeds | analogies % median [min-max] | WordSim-353 median [min-max] |",
             "|---|---|---|---|---|"]
    order = list(VARIANTS) + list(GENSIM)
    for model in ("sg", "cbow"):
        for name in order:
            mine = [r for r in rows if r["variant"] == name and r["model"] == model]
            if not mine:
                continue
            a = [100 * r["analogy"] for r in mine]
            w = [r["ws353"] for r in mine]
            lines.append(f"| {model} | {name} | {len(mine)} | {statistics.median(a):.2f} [{min(a):.2f}-{max(a):.2f}] | "
                         f"{statistics.median(w):.3f} [{min(w):.3f}-{max(w):.3f}] |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--model", choices=("sg", "cbow"), default="sg")
    p.add_argument("--variants", default=",".join(list(VARIANTS) + list(GENSIM)),
                   help="comma list of " + ", ".join(list(VARIANTS) + list(GENSIM)))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--report", action="store_true", help="print the table of the saved runs and exit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    if a.report:
        print(report([json.loads(line) for line in LOG.read_text().splitlines()]))
        return
    tok, tokens = token_file(False)
    names = a.variants.split(",")
    for seed in a.seeds:  # seeds outermost: machine load drifts over time and hits every variant alike
        for name in names:
            spec = dict(tokfile=str(tok), tokens=tokens, epochs=a.epochs, model=a.model, seed=seed, variant=name)
            if name in GENSIM:
                mode, workers = GENSIM[name]
                r = run_one({**spec, "threads": workers, "cores": 0, "system": "gensim", "gensim_mode": mode})
                row = {**spec, "threads": workers, "analogy": r["analogy"], "ws353": r["ws353"],
                       "seconds": r["train_s"]}
            else:
                row = {**spec, "threads": 2, **run_variant({**spec, "threads": 2})}
            print(f"{a.model} seed {seed} {name:18s} {100 * row['analogy']:.2f}%  {row['ws353']:.3f}  "
                  f"{row['seconds']:.0f} s", flush=True)
            with open(LOG, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(report([json.loads(line) for line in LOG.read_text().splitlines()]))


if __name__ == "__main__":
    main()
