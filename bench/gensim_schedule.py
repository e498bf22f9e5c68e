"""Why gensim's corpus_file mode scores above its iterable mode: its learning-rate schedule.

    python bench/gensim_schedule.py --seeds 1 2        # sg, 2 workers, the benchmark's token file

In corpus_file mode each of gensim's W workers reads 1/W of the file, but computes its
learning rate from *its own* word count over the *whole* file's (word2vec_corpusfile.pyx,
get_next_alpha): within each epoch the rate only falls 1/W of the way it should, then
jumps at the next epoch. With W = 2 and 5 epochs the rate ends at 0.1 alpha instead of
~0 and is higher throughout. This script trains gensim corpus_file twice on the same file
and settings as bench/vs_gensim.py: as shipped, and with the schedule corrected (one
train() call per epoch whose start/end alpha are set so that each worker's half-way decay
lands exactly on word2vec's linear schedule: vs_gensim.train_linear_schedule, which the
benchmark uses). The corrected run is the like-for-like counterpart of w2v, whose rate
follows the words of all threads together.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vs_gensim import OUT, QUESTIONS, WORDSIM, token_file, train_linear_schedule


def train(tok: Path, seed: int, corrected: bool, workers: int, epochs: int, sg: bool) -> dict:
    from gensim.models import Word2Vec

    alpha = 0.025 if sg else 0.05
    min_alpha = alpha * 1e-4
    model = Word2Vec(vector_size=100, window=5, negative=5, hs=0, sample=1e-3, min_count=5, alpha=alpha,
                     min_alpha=min_alpha, workers=workers, sg=int(sg), seed=seed, epochs=epochs)
    model.build_vocab(corpus_file=str(tok))
    t0 = time.perf_counter()
    if corrected:
        train_linear_schedule(model, str(tok), epochs, workers, alpha, min_alpha)
    else:
        model.train(corpus_file=str(tok), total_words=model.corpus_total_words, epochs=epochs)
    seconds = time.perf_counter() - t0
    score, _ = model.wv.evaluate_word_analogies(str(QUESTIONS), restrict_vocab=30_000)
    pairs = model.wv.evaluate_word_pairs(str(WORDSIM))
    return {"schedule": "corrected" if corrected else "as shipped", "seed": seed, "train_s": round(seconds, 1),
            "analogy": round(100 * float(score), 2), "ws353": round(float(pairs[1][0]), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--model", choices=("sg", "cbow"), default="sg")
    p.add_argument("--quick", action="store_true", help="one source instead of all ten")
    a = p.parse_args()
    tok, _ = token_file(a.quick)
    log = OUT / "gensim_schedule.jsonl"
    for seed in a.seeds:
        for corrected in (False, True):
            r = train(tok, seed, corrected, a.workers, a.epochs, a.model == "sg")
            r.update(model=a.model, workers=a.workers)
            print(json.dumps(r), flush=True)
            with open(log, "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
