"""Phrase detection: w2v against gensim's Phrases + freeze() + applying it, on the benchmark corpus.

    python bench/phrases.py [--connectors] [--scorer npmi --threshold 0.5] [--quick]

Both systems read the same whitespace-token file (bench/vs_gensim.py's token_file), learn
phrases with the same settings and write the corpus with phrases joined; each runs in its
own process, which reports its wall time and peak RSS (getrusage). Then the phrase sets,
their counts and the joined texts are compared and the top phrases printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vs_gensim import OUT, ROOT, token_file  # noqa: E402


def run_one(system: str, tokens: Path, out: Path, scorer: str, threshold: float, min_count: int,
            connectors: bool) -> dict:
    """Learn, freeze and apply in this process; returns the figures and writes the phrases to out/SYSTEM.json."""
    started = time.perf_counter()
    joined = out / f"joined-{system}.txt"
    if system == "gensim":
        from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS, Phrases
        from gensim.models.word2vec import LineSentence

        sentences = LineSentence(str(tokens))
        model = Phrases(sentences, min_count=min_count, threshold=threshold, scoring=scorer,
                        connector_words=ENGLISH_CONNECTOR_WORDS if connectors else frozenset())
        learned = time.perf_counter() - started
        frozen = model.freeze()
        del model
        with open(joined, "w", encoding="utf-8") as f:
            for s in frozen[sentences]:
                f.write(" ".join(s) + "\n")
        phrases = {p: [None, s] for p, s in frozen.phrasegrams.items()}
    else:
        sys.path.insert(0, str(ROOT))
        from w2v.corpus import Corpus
        from w2v.phrasing import ENGLISH_CONNECTOR_WORDS, learn

        table = learn(Corpus([tokens], tokenizer="whitespace", lowercase=False), min_count=min_count,
                      threshold=threshold, scorer=scorer, text_out=joined, scratch_dir=out,
                      connectors=ENGLISH_CONNECTOR_WORDS if connectors else ())
        learned = None
        phrases = {p.text: [p.count, p.score] for p in table.phrases}
    seconds = time.perf_counter() - started
    (out / f"{system}.json").write_text(json.dumps(phrases))
    return {"system": system, "seconds": seconds, "learn_seconds": learned, "phrases": len(phrases),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorer", default="default", choices=["default", "npmi"])
    ap.add_argument("--threshold", type=float, default=None, help="10 for default, 0.5 for npmi")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--connectors", action="store_true", help="gensim's ENGLISH_CONNECTOR_WORDS")
    ap.add_argument("--quick", action="store_true", help="one source file only")
    ap.add_argument("--systems", default="gensim,w2v")
    ap.add_argument("--one", choices=["gensim", "w2v"], help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--tokens", help=argparse.SUPPRESS)
    args = ap.parse_args()
    threshold = args.threshold if args.threshold is not None else (10.0 if args.scorer == "default" else 0.5)
    out = OUT / "phrases"
    out.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(run_one(args.one, Path(args.tokens), out, args.scorer, threshold, args.min_count,
                                 args.connectors)))
        return

    tokens, n_tokens = token_file(args.quick)
    print(f"corpus: {tokens.relative_to(ROOT)}, {n_tokens:,} tokens; scorer {args.scorer}, threshold {threshold}, "
          f"min_count {args.min_count}, connectors {'english' if args.connectors else 'none'}", flush=True)
    results = {}
    for system in args.systems.split(","):
        cmd = [sys.executable, __file__, "--one", system, "--tokens", str(tokens), "--scorer", args.scorer,
               "--threshold", str(threshold), "--min-count", str(args.min_count)] + \
              (["--connectors"] if args.connectors else [])
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[system] = r = json.loads(line)
        print(f"{system:>6}: {r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  {r['phrases']:,} phrases",
              flush=True)
    if len(results) < 2:
        return
    g, w = results["gensim"], results["w2v"]
    print(f"w2v is {g['seconds'] / w['seconds']:.1f}x faster and uses {g['peak_rss_mb'] / w['peak_rss_mb']:.1f}x "
          "less memory")
    ours = json.loads((out / "w2v.json").read_text())
    theirs = json.loads((out / "gensim.json").read_text())
    same_scores = all(abs(ours[p][1] - theirs[p][1]) <= 1e-9 * abs(theirs[p][1]) for p in ours.keys() & theirs.keys())
    print(f"same phrase set: {ours.keys() == theirs.keys()} (w2v only {len(ours.keys() - theirs.keys())}, "
          f"gensim only {len(theirs.keys() - ours.keys())}); same scores: {same_scores}")
    digests = {s: hashlib.sha256((out / f"joined-{s}.txt").read_bytes()).hexdigest()[:16] for s in ("gensim", "w2v")}
    print(f"joined corpus identical: {digests['gensim'] == digests['w2v']} (sha256 {digests['w2v']})")
    print("top phrases by count (w2v count, score):")
    for p, (count, score) in sorted(ours.items(), key=lambda kv: -kv[1][0])[:20]:
        print(f"  {p:<28} {count:>8,}  {score:9.2f}")


if __name__ == "__main__":
    main()
