"""neurotext: explain transformer neurons by the corpus sentences that activate them most.

Stage modules and packages (corpus, shards, scan, records, parse, patterns, relations, finetune, scores, report,
browser) never import each other; they meet in the files of `neurotext.artifacts` (docs/ARCHITECTURE.md,
"Artifacts"), over the shared ground of `config`, `ids`, `io`, `logs`, `plots`, `topk`, `encoder`, `scoring`, the
miners and `mining`.
"""

__version__ = "0.1.0"
