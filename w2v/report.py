"""What `w2v train` prints at the end: where the run is, how fast it went, how good it is."""

from __future__ import annotations

from typing import Callable

from w2v.errors import UserError
from w2v.run import Run


def final_report(model: Run, echo: Callable[[str], None] = print) -> dict:
    """Print the run summary and, with config.evaluate, the analogy score and king - man + woman.

    Returns the figures printed, for callers that want them.
    """
    stats = dict(model.stats)
    echo(f"trained {len(model.dictionary):,} vectors of {model.config.dim} dims in "
         f"{stats.get('train_seconds', 0):.1f} s ({stats.get('words_per_second', 0) / 1e3:,.0f}k words/s); "
         f"saved to {model.run_dir}")
    if not model.config.evaluate:
        return stats
    from w2v import evaluate

    vectors = model.vectors()
    try:
        analogy = evaluate.analogies(vectors)
        similarity = evaluate.similarity(vectors)
    except UserError as e:
        # The run is trained and saved: a vocabulary that the standard sets do not cover (product
        # ids, another language) is no reason to report failure.
        echo(f"evaluation skipped: {e}")
        stats["evaluation_skipped"] = str(e)
        return stats
    stats.update(analogy=analogy.total, analogy_attempted=analogy.attempted, wordsim=similarity.spearman)
    echo(f"analogies: {analogy.total:.1%} of {analogy.attempted:,} questions "
         f"(semantic {analogy.semantic:.1%}, syntactic {analogy.syntactic:.1%}; "
         f"{analogy.skipped:,} skipped: a word outside the 30,000 most frequent)")
    echo(f"WordSim-353: Spearman {similarity.spearman:.3f} over {similarity.pairs} pairs")
    if all(w in vectors for w in ("king", "man", "woman")):
        answers = vectors.analogy("man", "king", "woman", topn=5)
        stats["king-man+woman"] = answers
        echo("king - man + woman = " + ", ".join(f"{w} ({s:.3f})" for w, s in answers))
    return stats
