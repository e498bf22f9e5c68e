"""Why gensim's corpus_file mode scores above its iterable mode: its learning-rate schedule.

    python bench/investigations/gensim_schedule.py --seeds 1 2        # sg, 2 workers, the benchmark's token file

In corpus_file mode each of gensim's W workers reads 1/W of the file, but computes its
learning rate from *its own* word count over the *whole* file's (word2vec_corpusfile.pyx,
get_next_alpha): within each epoch the rate only falls 1/W of the way it should, then
jumps at the next epoch. With W = 2 and 5 epochs the rate ends at 0.1 alpha instead of
~0 and is higher throughout. This script trains gensim corpus_file twice per seed through
bench/vs_gensim.py's own runs (same file and settings, each in its own process): as
shipped, and with the schedule corrected (one train() call per epoch whose start/end
alpha are set so that each worker's half-way decay lands exactly on word2vec's linear
schedule: vs_gensim.train_linear_schedule, which the benchmark uses). The corrected run is the like-for-like counterpart of w2v, whose rate
follows the words of all threads together.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for vs_gensim
from vs_gensim import MODELS, OUT, run_one, token_file  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--model", choices=list(MODELS), default="sg")
    p.add_argument("--quick", action="store_true", help="one source instead of all ten")
    a = p.parse_args()
    tok, tokens = token_file(a.quick)
    log = OUT / "gensim_schedule.jsonl"
    base = dict(tokfile=str(tok), tokens=tokens, epochs=a.epochs, threads=a.workers, cores=0,
                system="gensim", model=a.model)
    for seed in a.seeds:
        # vs_gensim's gensim runs: "corpus_file" on the linear schedule, "-shipped" as gensim ships it
        for mode, schedule in (("corpus_file-shipped", "as shipped"), ("corpus_file", "corrected")):
            r = run_one({**base, "seed": seed, "gensim_mode": mode})
            row = {"schedule": schedule, "seed": seed, "train_s": round(r["train_s"], 1),
                   "analogy": round(100 * r["analogy"], 2), "ws353": round(r["ws353"], 3),
                   "model": a.model, "workers": a.workers}
            print(json.dumps(row), flush=True)
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
