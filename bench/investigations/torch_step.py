"""The PyTorch path's quality at the GPU's step size, against the C kernel, on the CPU.

    python bench/investigations/torch_step.py --seeds 1 2 --models cbow     # ~10 min here
    python bench/investigations/torch_step.py --report                 # the table of saved runs

Same token file as bench/vs_gensim.py (the benchmark corpus; --tokens-mb keeps its first N
MB), like-for-like settings (dim 100, window 5, negative 5, sample 1e-3, min_count 5, alpha
0.025 sg / 0.05 cbow), --epochs passes, 2 threads. Rows: the C kernel (sequential SGD per
thread), then the torch path at --batch-pairs pairs per step (131,072: the GPU's default)
and at 4,096 (the CPU default). On this 2-core machine a torch run at 131,072 takes minutes
where the kernel takes seconds: keep the corpus small (--tokens-mb).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vs_gensim import OUT, QUESTIONS, WORDSIM, token_file  # noqa: E402

LOG = OUT / "torch_step.jsonl"
VARIANTS = {  # name: (backend, batch_pairs, w2v.loss.IMPLICIT_SAMPLE: 0 is the plain summed step[, CBOW's windows
    # disjoint within a step[, w2v.loss.MAX_RUN: 1 scores every hs pair against the path as the step found it]])
    "kernel": ("native", 0, 0),
    "torch-131072": ("torch", 131072, 0),
    "torch-131072-pairs8": ("torch", 131072, 8),  # every 8th pair's hits
    "torch-131072-lowrank": ("torch", 131072, 1),
    "torch-4096": ("torch", 4096, 0),
    "torch-4096-pairs8": ("torch", 4096, 8),
    "torch-256": ("torch", 256, 0),  # nearly sequential: what is left when batches are small
    "torch-256-pairs8": ("torch", 256, 8),
    "torch-131072-disjoint": ("torch", 131072, 0, True),
    "torch-131072-pairs8-disjoint": ("torch", 131072, 8, True),  # as shipped: the GPU default
    "torch-4096-disjoint": ("torch", 4096, 0, True),
    "torch-4096-pairs8-disjoint": ("torch", 4096, 8, True),  # the CPU default
    "torch-131072-pairs8-disjoint-norun": ("torch", 131072, 8, True, 1),  # hs: no runs (as before commit "runs")
}
# Rows of earlier sessions in the log, no longer runnable: an exact conjugate-gradient solve of
# the implicit step (2, 6 or 12 iterations), CBOW context rows given 1/contexts of the curvature,
# the closed form with every 8th flat hit sampled (lowrank8; commit 069363e), disjoint CBOW
# windows in 100k-word chunks, CBOW's step sums sampled per context row (commit 2200759), and
# skip-gram in passes by offset (context - centre), so no step held two pairs of one centre.
RETIRED = [
    "torch-131072-pairs8-offsets",
    "torch-131072-pairs8-disjoint-percontextrow",
    "torch-4096-pairs8-disjoint-percontextrow",
    "torch-131072-pairs8-disjoint-chunk100k",
    "torch-131072-disjoint-chunk100k",
    "torch-131072-lowrank8",
    "torch-4096-lowrank8",
    "torch-131072-implicit2",
    "torch-131072-implicit",
    "torch-131072-implicit12",
    "torch-131072-implicit-percontext",
    "torch-131072-lowrank-percontext",
]


def worker(spec: dict) -> dict:
    import shutil

    import w2v
    from w2v.evaluate import analogies, similarity

    import w2v.loss
    import w2v.model

    backend, pairs, w2v.loss.IMPLICIT_SAMPLE, *rest = VARIANTS[spec["variant"]]
    w2v.model.SEPARATE_WINDOWS = bool(rest and rest[0])
    if len(rest) > 1:
        w2v.loss.MAX_RUN = rest[1]
    model, _, objective = spec["model"].partition("-")  # "sg", "cbow", "sg-hs", "cbow-hs"
    alpha = 0.025 if model == "sg" else 0.05
    run_dir = OUT / "runs" / f"torch-step-{abs(hash(json.dumps(spec, sort_keys=True)))}"
    run = w2v.train([spec["tokfile"]], tokenizer="whitespace", lowercase=False, model=model, dim=100,
                    window=5, negative=0 if objective == "hs" else 5, hs=objective == "hs", sample=1e-3,
                    min_count=5, epochs=spec["epochs"], alpha=alpha,
                    min_alpha=alpha * 1e-4, threads=2, seed=spec["seed"], backend=backend,
                    device=spec.get("device", "auto") if backend == "torch" else "cpu",
                    batch_pairs=pairs or None, out=str(run_dir), overwrite=True, checkpoint_every=0,
                    evaluate=False, tensorboard=False, progress=False)
    vectors = run.vectors()
    shutil.rmtree(run_dir, ignore_errors=True)
    return dict(analogy=analogies(vectors, QUESTIONS, restrict_vocab=30_000).total,
                ws353=similarity(vectors, WORDSIM).spearman, seconds=run.stats["train_seconds"])


def report(rows: list[dict]) -> str:
    lines = ["| model | engine | seeds | analogies % median [min-max] | WordSim-353 median [min-max] | train s |",
             "|---|---|---|---|---|---|"]
    for model in ("sg", "cbow", "sg-hs", "cbow-hs"):
        for name in [*VARIANTS, *RETIRED]:
            mine = [r for r in rows if r["variant"] == name and r["model"] == model]
            if not mine:
                continue
            a, w = [100 * r["analogy"] for r in mine], [r["ws353"] for r in mine]
            s = statistics.median(r["seconds"] for r in mine)
            lines.append(f"| {model} | {name} | {len(mine)} | {statistics.median(a):.2f} [{min(a):.2f}-{max(a):.2f}] | "
                         f"{statistics.median(w):.3f} [{min(w):.3f}-{max(w):.3f}] | {s:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--models", default="sg,cbow", help="comma list of: sg, cbow, sg-hs, cbow-hs (hierarchical softmax)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list of: " + ", ".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--tokens-mb", type=int, default=20, help="first N MB of the token file (0: all)")
    p.add_argument("--device", default="auto", help="the torch rows' device (auto: cuda where there is one)")
    p.add_argument("--report", action="store_true")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    if a.report:
        print(report([json.loads(line) for line in LOG.read_text().splitlines()]))
        return
    tok, _ = token_file(False)
    if a.tokens_mb:
        head = OUT / f"tokens-head{a.tokens_mb}mb.txt"
        if not head.exists():
            with open(tok, "rb") as f:
                data = f.read(a.tokens_mb << 20)
            head.write_bytes(data[: data.rfind(b"\n") + 1])
        tok = head
    for seed in a.seeds:
        for model in a.models.split(","):
            for name in a.variants.split(","):
                spec = dict(tokfile=str(tok), epochs=a.epochs, model=model, seed=seed, variant=name, device=a.device)
                proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                      text=True, cwd=ROOT)
                if proc.returncode != 0:
                    sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
                row = {**spec, **json.loads(proc.stdout.strip().splitlines()[-1])}
                print(f"{model} seed {seed} {name:28s} {100 * row['analogy']:.2f}%  {row['ws353']:.3f}  "
                      f"{row['seconds']:.0f} s", flush=True)
                with open(LOG, "a") as f:
                    f.write(json.dumps(row) + "\n")
    print(report([json.loads(line) for line in LOG.read_text().splitlines()]))


if __name__ == "__main__":
    main()
