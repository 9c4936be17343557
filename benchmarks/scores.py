#!/usr/bin/env python
"""CPU cost of the scores stage per neuron, and its projection to the paper (9,216 neurons x K = 10,000).

Two measurements, each the scores stage's own `score_layer` with its per-step CPU timers (load, mine, predict,
bow, metrics, derangement, write):

* ``run``: one layer of a finished run (``--run results/demo --layer 6``): the files the ``scores_layer`` rule reads.
* ``synthetic``: the synthetic layer of `neurotext.scores.synthetic` (random words, tags and flat trees with planted
  features) at a chosen scale: ``--k 100 --sample 2000 --negatives 2000`` (the demo's sizes) or ``--k 10000 --sample
  10000 --negatives 10000`` (the paper's), with ``--neurons`` noise neurons plus the 4 planted ones.

The projection multiplies the per-neuron CPU seconds by 9,216 neurons and divides by 16 cores (one layer job per
core; layers and neuron ranges parallelise). Results: benchmarks/README.md, section "Scores".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PAPER_NEURONS = 9216
NODE_CORES = 16
DEMO_NEURONS = 6 * 384


def _score(files: dict[str, Path], scores: dict, patterns: dict | None, out: Path) -> dict[str, float]:
    from neurotext.scores.stage import score_layer

    timings: dict[str, float] = {}
    start = time.process_time()
    wall = time.perf_counter()
    table = score_layer(files["topk"], files["sentences"], files["negative_sentences"], files["negative_acts"],
                        files["corpus_metadata"], patterns, scores, out, timings=timings)  # fmt: skip
    timings["total"] = time.process_time() - start
    timings["wall"] = time.perf_counter() - wall
    timings["neurons"] = float(len(set(table["neuron"].to_pylist())))
    return timings


def _report(name: str, t: dict[str, float]) -> dict[str, float]:
    n = t["neurons"]
    per = {k: 1000 * v / n for k, v in t.items() if k not in ("neurons", "wall")}
    summary = {
        "neurons": n,
        "cpu_s": t["total"],
        "wall_s": t["wall"],
        "ms_per_neuron": per,
        "demo_projection_cpu_s": per["total"] * DEMO_NEURONS / 1000,
        "paper_projection_node_h": per["total"] * PAPER_NEURONS / 1000 / NODE_CORES / 3600,
    }
    print(f"## {name}")
    print(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    run = sub.add_parser("run", help="one layer of a finished run")
    run.add_argument("--run", type=Path, default=Path("results/demo"))
    run.add_argument("--layer", type=int, default=6)
    run.add_argument("--pooling", default="max")
    run.add_argument("--patterns", choices=["top", "significant"], default=None)
    syn = sub.add_parser("synthetic", help="the synthetic layer at a chosen scale")
    syn.add_argument("--k", type=int, default=100)
    syn.add_argument("--sample", type=int, default=2000)
    syn.add_argument("--negatives", type=int, default=1000)
    syn.add_argument("--sentences", type=int, default=14000)
    syn.add_argument("--neurons", type=int, default=60, help="noise neurons (plus 4 planted)")
    syn.add_argument("--words", type=int, default=2000, help="vocabulary size")
    args = parser.parse_args(argv)

    from neurotext.miners import warmup

    warmup()
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "run":
            root = args.run
            files = {
                "topk": root / f"topk/base/layer{args.layer}.parquet",
                "sentences": root / f"patterns/sentences/layer{args.layer}.parquet",
                "negative_sentences": root / "scores/negatives/sentences.parquet",
                "negative_acts": root / f"scores/negatives/base/{args.pooling}/layer{args.layer}.npy",
                "corpus_metadata": root / "patterns/corpus_metadata.parquet",
            }
            import yaml

            from neurotext.validate import with_defaults

            config = yaml.safe_load(Path("config/config.yaml").read_text())
            scores = with_defaults("scores", config.get("scores"))
            if args.patterns:
                scores["patterns"] = args.patterns
            t = _score(files, scores, with_defaults("patterns", config.get("patterns")), Path(tmp) / "scores.parquet")
            _report(f"{root} layer {args.layer} (patterns: {scores.get('patterns', 'top')})", t)
        else:
            from neurotext.scores.synthetic import SyntheticLayer, build_layer

            spec = SyntheticLayer(n_sentences=args.sentences, n_sample=args.sample, n_negatives=args.negatives,
                                  k=args.k, n_random=args.neurons, n_words=args.words)  # fmt: skip
            root = build_layer(Path(tmp) / "layer", spec)
            files = {"topk": root / "topk.parquet", "sentences": root / "sentences.parquet",
                     "negative_sentences": root / "negatives.parquet", "negative_acts": root / "negatives.npy",
                     "corpus_metadata": root / "corpus_metadata.parquet"}  # fmt: skip
            from neurotext.validate import with_defaults

            t = _score(files, with_defaults("scores", {"negatives": args.negatives}), with_defaults("patterns"),
                       Path(tmp) / "scores.parquet")  # fmt: skip
            _report(f"synthetic K={args.k} sample={args.sample} negatives={args.negatives} "
                    f"sentences={args.sentences} words={args.words}", t)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
