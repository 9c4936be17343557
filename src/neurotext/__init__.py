"""neurotext: explain transformer neurons by the corpus sentences that activate them most.

Stage modules (corpus, shards, scan, parse, patterns, relations, finetune, report, browser) never import each
other; they meet in the files of DESIGN.md section 2, over the shared ground of `config`, `ids`, `io`, `formats`,
`topk` and the miners.
"""

__version__ = "0.1.0"
