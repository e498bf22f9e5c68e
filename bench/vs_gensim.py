"""w2v against gensim 4.4.0, side by side, same machine, same run, same token stream.

    python bench/vs_gensim.py                 # full benchmark: 10 sources, 5 epochs, sg/cbow (+hs), 2 threads
    python bench/vs_gensim.py --threads 1     # the same on 1 core / 1 worker
    python bench/vs_gensim.py --quick         # one source, 1 epoch, sg and cbow: about a minute
    python bench/vs_gensim.py --shipped --models sg,cbow   # as users run them: each tool's own defaults

The corpus (../shared/corpora/*.txt.gz) is tokenized once with w2v's default tokenizer
into a whitespace-token file (one sentence per line) under bench/out/, and both systems
train on that file with the same settings: dim 100, window 5, sample 1e-3, min_count 5,
negative 5 (or hs with negative 0), the same epochs, alpha 0.025 (sg) / 0.05 (cbow) and
min_alpha = alpha * 1e-4 on both sides, decaying linearly over all words of all epochs (for
gensim's corpus_file mode that takes one train() call per epoch: see train_linear_schedule;
with --gensim-mode auto a run with gensim's shipped schedule is shown too). Every run is
its own subprocess (peak RSS is the process's ru_maxrss when training ends, before
evaluation); runs alternate gensim, w2v, gensim, w2v, ... and the table gives medians, the
min-max spread and w2v/gensim ratios.

--shipped compares the tools as users run them: gensim's `Word2Vec(corpus_file=..., sg=...,
workers=N)` with every other setting at gensim's defaults (its alpha is 0.025 for CBOW too,
and its shipped corpus_file schedule) against `w2v train FILE --model ... --threads N` with
w2v's defaults (checkpoints each epoch included); same token file, same cores.

Figures per run:
  train words/s  corpus tokens (of the token file) x epochs / training wall time
  vocab s        gensim build_vocab (scan + weights) / w2v vocabulary + id encoding + weights
  e2e s          process spawn -> trained model in memory (interpreter, imports, vocab, training, save)
  peak RSS MB    ru_maxrss after training
  analogy %      Google analogy set, restrict_vocab 30,000 (gensim's evaluate_word_analogies for
                 gensim vectors, w2v.evaluate.analogies for w2v vectors: the same rules)
  ws353          WordSim-353 Spearman (evaluate_word_pairs / w2v.evaluate.similarity)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SOURCES = ROOT.parent / "shared" / "corpora"
QUICK_SOURCE = "wiki_vital_summaries.txt.gz"
QUESTIONS = ROOT / "corpora" / "questions-words.txt"
WORDSIM = ROOT / "corpora" / "wordsim353.tsv"
MODELS = {  # name: (sg?, hs?)
    "sg": (True, False),
    "cbow": (False, False),
    "sg-hs": (True, True),
    "cbow-hs": (False, True),
}


# --- the token file ---------------------------------------------------------------------
def token_file(quick: bool) -> tuple[Path, int]:
    """Tokenize the sources once (w2v's default tokenizer) into one whitespace-token file."""
    files = sorted(SOURCES.glob("*.txt.gz"))
    if quick:
        files = [f for f in files if f.name == QUICK_SOURCE] or files[:1]
    if not files:
        sys.exit(f"no corpus files in {SOURCES}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("tokens-quick.txt" if quick else "tokens-all.txt")
    meta_path = path.with_suffix(".json")
    key = [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            return path, meta["tokens"]
    sys.path.insert(0, str(ROOT))
    from w2v.corpus import Corpus

    started = time.perf_counter()
    tokens = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for sentence in Corpus(files):
            f.write(" ".join(sentence))
            f.write("\n")
            tokens += len(sentence)
    os.replace(tmp, path)
    meta_path.write_text(json.dumps({"key": key, "tokens": tokens}))
    print(f"tokenized {len(files)} file(s) into {path.relative_to(ROOT)}: {tokens:,} tokens "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    return path, tokens


# --- one run, in its own process -----------------------------------------------------------
def train_linear_schedule(model, corpus_file: str, epochs: int, workers: int, alpha: float, min_alpha: float) -> None:
    """gensim corpus_file training with word2vec's linear learning-rate schedule.

    In corpus_file mode each of gensim's W workers reads 1/W of the file but computes its
    rate from its own word count against the whole file's (get_next_alpha in
    word2vec_corpusfile.pyx): within an epoch the rate falls only 1/W of the way, then jumps
    at the next epoch, so with W = 2 it runs higher throughout and ends at 0.1 alpha, not ~0.
    One train() call per epoch, with the end rate stretched so that each worker's 1/W decay
    lands on the linear schedule, gives gensim the same rates as w2v (and as gensim's own
    iterable mode); with one worker this is the shipped schedule. bench/investigations/gensim_schedule.py
    measures the difference.
    """

    def rate(e: float) -> float:
        return alpha - (alpha - min_alpha) * e / epochs

    for e in range(epochs):
        start, end = rate(e), rate(e + 1)
        model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=1,
                    start_alpha=start, end_alpha=start - (start - end) * workers)


def worker(spec: dict) -> dict:
    if spec["cores"]:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[: spec["cores"]]))
    sg, hs = MODELS[spec["model"]]
    alpha = 0.025 if sg else 0.05
    negative = 0 if hs else 5
    tok, epochs, threads, seed = spec["tokfile"], spec["epochs"], spec["threads"], spec["seed"]
    result: dict = {}
    if spec.get("shipped"):
        return shipped_worker(spec, sg, hs)
    if spec["system"] == "gensim":
        from gensim.models import Word2Vec
        from gensim.models.word2vec import LineSentence

        model = Word2Vec(vector_size=100, window=5, negative=negative, hs=int(hs), sample=1e-3, min_count=5,
                         alpha=alpha, min_alpha=alpha * 1e-4, workers=threads, sg=int(sg), seed=seed,
                         epochs=epochs)
        t0 = time.perf_counter()
        if spec["gensim_mode"] == "corpus_file":
            model.build_vocab(corpus_file=tok)
            t1 = time.perf_counter()
            train_linear_schedule(model, tok, epochs, threads, alpha, alpha * 1e-4)
        elif spec["gensim_mode"] == "corpus_file-shipped":
            model.build_vocab(corpus_file=tok)
            t1 = time.perf_counter()
            model.train(corpus_file=tok, total_words=model.corpus_total_words, epochs=epochs)
        else:
            sentences = LineSentence(tok)
            model.build_vocab(sentences)
            t1 = time.perf_counter()
            model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
        t2 = time.perf_counter()
        result.update(trained_at=time.time(), vocab_s=t1 - t0, train_s=t2 - t1, vocab=len(model.wv),
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        score, _ = model.wv.evaluate_word_analogies(str(QUESTIONS), restrict_vocab=30_000)
        pairs = model.wv.evaluate_word_pairs(str(WORDSIM))
        result.update(analogy=float(score), ws353=float(pairs[1][0]))
    else:
        sys.path.insert(0, str(ROOT))
        import w2v
        from w2v.evaluate import analogies, similarity

        run_dir = OUT / "runs" / f"w2v-{os.getpid()}"
        model = w2v.train([tok], tokenizer="whitespace", lowercase=False, model="sg" if sg else "cbow",
                          dim=100, window=5, negative=negative, hs=hs, sample=1e-3, min_count=5,
                          epochs=epochs, alpha=alpha, min_alpha=alpha * 1e-4, threads=threads, seed=seed,
                          out=str(run_dir), overwrite=True, device="cpu", checkpoint_every=0,
                          evaluate=False, tensorboard=False, progress=False)
        result.update(trained_at=time.time(), vocab_s=model.stats["prepare_seconds"],
                      train_s=model.stats["train_seconds"], vocab=len(model.dictionary),
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      loss=model.stats.get("mean_loss", model.stats.get("final_loss")))
        vectors = model.vectors()
        result.update(analogy=analogies(vectors, QUESTIONS, restrict_vocab=30_000).total,
                      ws353=similarity(vectors, WORDSIM).spearman)
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def shipped_worker(spec: dict, sg: bool, hs: bool) -> dict:
    """One run with the tool's own defaults: only the corpus, the model, the cores and the seed are given."""
    tok, threads, seed = spec["tokfile"], spec["threads"], spec["seed"]
    extra = {"hs": 1, "negative": 0} if hs else {}
    if spec["system"] == "gensim":
        from gensim.models import Word2Vec

        t0 = time.perf_counter()
        model = Word2Vec(corpus_file=tok, sg=int(sg), workers=threads, seed=seed, **extra)
        train_s = time.perf_counter() - t0  # build_vocab and train together, as users call it
        result = dict(trained_at=time.time(), vocab_s=0.0, train_s=train_s, vocab=len(model.wv),
                      epochs_run=model.epochs, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        score, _ = model.wv.evaluate_word_analogies(str(QUESTIONS), restrict_vocab=30_000)
        result.update(analogy=float(score), ws353=float(model.wv.evaluate_word_pairs(str(WORDSIM))[1][0]))
        return result
    sys.path.insert(0, str(ROOT))
    import shutil

    import w2v
    from w2v.evaluate import analogies, similarity

    run_dir = OUT / "runs" / f"w2v-{os.getpid()}"
    t0 = time.perf_counter()
    model = w2v.train([tok], tokenizer="whitespace", lowercase=False, model="sg" if sg else "cbow",
                      threads=threads, seed=seed, out=str(run_dir), overwrite=True, evaluate=False,
                      tensorboard=False, progress=False, **({"hs": True, "negative": 0} if hs else {}))
    train_s = time.perf_counter() - t0
    result = dict(trained_at=time.time(), vocab_s=0.0, train_s=train_s, vocab=len(model.dictionary),
                  epochs_run=model.config.epochs, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    vectors = model.vectors()
    result.update(analogy=analogies(vectors, QUESTIONS, restrict_vocab=30_000).total,
                  ws353=similarity(vectors, WORDSIM).spearman)
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def run_one(spec: dict) -> dict:
    load = os.getloadavg()[0]
    spawned = time.time()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{spec['system']} run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    epochs = result.get("epochs_run", spec["epochs"])
    result.update(spec, load=load, e2e_s=result["trained_at"] - spawned,
                  words_per_s=spec["tokens"] * epochs / result["train_s"])
    return result


# --- the table -----------------------------------------------------------------------------
def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def table(results: list[dict]) -> str:
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in results:
        if r.get("probe"):
            continue
        groups.setdefault((r["cores"] or 2, r["threads"], r["model"]), {}).setdefault(r["system"], []).append(r)
    metrics = [("train words/s", "words_per_s", lambda v: f"{v / 1e3:,.0f}k", True),
               ("vocab s", "vocab_s", lambda v: f"{v:.2f}", False),
               ("e2e s", "e2e_s", lambda v: f"{v:.1f}", False),
               ("peak RSS MB", "rss_mb", lambda v: f"{v:,.0f}", False),
               ("analogy %", "analogy", lambda v: f"{100 * v:.2f}", None),
               ("ws353", "ws353", lambda v: f"{v:.3f}", None)]
    lines = ["| threads | model | metric | gensim median [min-max] | w2v median [min-max] | w2v/gensim [min-max of paired runs] |",
             "|---|---|---|---|---|---|"]
    for (cores, threads, model), by in sorted(groups.items(), key=lambda kv: (-kv[0][1], list(MODELS).index(kv[0][2]))):
        g, w = by.get("gensim", []), by.get("w2v", [])
        g, w = g[: len(w)], w[: len(g)]  # complete gensim/w2v pairs only
        for label, key, fmt, ratio in metrics:
            gv, wv = [r[key] for r in g], [r[key] for r in w]
            cell = lambda v: f"{fmt(_med(v))} [{fmt(min(v))}-{fmt(max(v))}]" if v else "-"
            if ratio is None:  # quality: difference, not ratio
                diff = _med(wv) - _med(gv)
                rc = f"{100 * diff:+.2f} points" if key == "analogy" else f"{diff:+.3f}"
            elif not all(r[key] for r in g):  # --shipped: no separate vocabulary time
                continue
            else:
                pairs = [wr[key] / gr[key] for gr, wr in zip(g, w)]
                rc = f"**{_med(wv) / _med(gv):.2f}x** [{min(pairs):.2f}-{max(pairs):.2f}]" if pairs else "-"
            lines.append(f"| {threads} | {model} | {label} | {cell(gv)} | {cell(wv)} | {rc} |")
    return "\n".join(lines)


def probes(results: list[dict]) -> str:
    """The one-off gensim runs of each mode (speed and quality), next to w2v's medians."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("probe"):
            groups.setdefault((r["threads"], r["model"]), []).append(r)
    if not groups:
        return ""
    lines = ["| threads | model | run | train words/s | analogy % | ws353 |", "|---|---|---|---|---|---|"]
    for (threads, model), rows in groups.items():
        for r in rows:
            lines.append(f"| {threads} | {model} | gensim {r['gensim_mode']}, 1 run | "
                         f"{r['words_per_s'] / 1e3:,.0f}k | {100 * r['analogy']:.2f} | {r['ws353']:.3f} |")
        w = [x for x in results if x["system"] == "w2v" and x["model"] == model and x["threads"] == threads]
        if w:
            lines.append(f"| {threads} | {model} | w2v, median of {len(w)} | "
                         f"{_med([x['words_per_s'] for x in w]) / 1e3:,.0f}k | "
                         f"{100 * _med([x['analogy'] for x in w]):.2f} | {_med([x['ws353'] for x in w]):.3f} |")
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one source, 1 epoch, sg and cbow")
    p.add_argument("--threads", type=int, default=2, help="cores, workers and threads (1 pins each run to one core)")
    p.add_argument("--models", default=None, help="comma list of sg,cbow,sg-hs,cbow-hs (default: all; quick: sg,cbow)")
    p.add_argument("--epochs", type=int, default=None, help="default 5 (quick: 1)")
    p.add_argument("--reps", type=int, default=3, help="alternating gensim/w2v pairs per model (seeds 1..reps)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="the seeds of the alternating pairs, instead of 1..reps (to add repeats to a saved run)")
    p.add_argument("--gensim-mode", choices=("auto", "corpus_file", "iterable"), default=None,
                   help="auto: corpus_file and iterable once on the first model to choose the faster, and "
                        "with several workers corpus_file with gensim's shipped schedule once per model "
                        "(default: auto; quick: corpus_file). corpus_file runs use word2vec's linear "
                        "learning-rate schedule (see train_linear_schedule)")
    p.add_argument("--shipped", action="store_true",
                   help="each tool with its own defaults (gensim Word2Vec(corpus_file, sg, workers); w2v train "
                        "--model --threads): the comparison users make; train s is build + train")
    p.add_argument("--report", metavar="JSONL", nargs="+", help="print the tables of saved results files and exit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    if a.report:
        results = [json.loads(line) for f in a.report for line in open(f)]
        print(table(results))
        print()
        print(probes(results))
        return
    models = (a.models or ("sg,cbow" if a.quick else ",".join(MODELS))).split(",")
    for m in models:
        if m not in MODELS:
            p.error(f"unknown model {m!r}")
    epochs = a.epochs or (1 if a.quick else 5)
    gensim_mode = a.gensim_mode or ("corpus_file" if a.quick else "auto")
    cores = 1 if a.threads == 1 else 0  # 1 thread runs are pinned to one core
    tok, tokens = token_file(a.quick)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = OUT / f"results-{stamp}.jsonl"
    print(f"{machine()}; load {os.getloadavg()[0]:.2f}; {tokens:,} tokens x {epochs} epochs; "
          f"threads {a.threads}; results -> {log.relative_to(ROOT)}", flush=True)
    base = dict(tokfile=str(tok), tokens=tokens, epochs=epochs, threads=a.threads, cores=cores, shipped=a.shipped)
    if a.shipped:
        gensim_mode = "shipped"
    results: list[dict] = []

    def record(r: dict) -> None:
        results.append(r)
        with open(log, "a") as f:
            f.write(json.dumps(r) + "\n")
        print(f"  {r['system']:6} {r['model']:7} seed {r['seed']}: {r['words_per_s'] / 1e3:7,.0f}k words/s  "
              f"train {r['train_s']:6.1f} s  vocab {r['vocab_s']:5.2f} s  e2e {r['e2e_s']:6.1f} s  "
              f"rss {r['rss_mb']:5.0f} MB  analogy {100 * r['analogy']:5.2f}%  ws353 {r['ws353']:.3f}  "
              f"(load {r['load']:.2f}{', ' + r['gensim_mode'] if r['system'] == 'gensim' else ''})", flush=True)

    if gensim_mode == "auto" and not a.shipped:
        # Both gensim modes once on the first model to choose the timed mode; with several
        # workers, also corpus_file with gensim's shipped schedule once per model, to show
        # what its higher learning rate does to quality (train_linear_schedule).
        speeds = {}
        for i, m in enumerate(models):
            shipped = ("corpus_file-shipped",) if a.threads > 1 else ()
            for mode in (("corpus_file", "iterable") if i == 0 else ()) + shipped:
                r = run_one({**base, "system": "gensim", "model": m, "seed": 1, "gensim_mode": mode})
                r["probe"] = True
                record(r)
                if mode in ("corpus_file", "iterable"):
                    speeds[mode] = r["words_per_s"]
            if i == 0:
                gensim_mode = max(speeds, key=speeds.get)
                print(f"gensim mode: {gensim_mode} (corpus_file {speeds['corpus_file'] / 1e3:,.0f}k, "
                      f"iterable {speeds['iterable'] / 1e3:,.0f}k words/s on {m})", flush=True)
    for seed in a.seeds or range(1, a.reps + 1):
        for m in models:
            for system in ("gensim", "w2v"):
                record(run_one({**base, "system": system, "model": m, "seed": seed, "gensim_mode": gensim_mode}))
    print()
    print(table(results))
    print()
    print(probes(results))


if __name__ == "__main__":
    main()
