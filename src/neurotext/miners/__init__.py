"""Exact, fast pattern miners called per neuron (docs/ARCHITECTURE.md, "Pattern mining"): PrefixSpan, FREQT,
background counts.

Encode a corpus once (`SequenceDB`, `TreeDB`, one shared `Vocab` per kind of label); each neuron then passes only
row indices:

* `mine_skipgrams` : skip-n-grams (PrefixSpan with a gap bound); ``max_gap=0`` gives contiguous n-grams (POS
  n-grams), `frequent_items` the frequent words (of a POS class, via `SequenceDB.select_tokens`).
* `mine_subtrees` : frequent induced ordered subtrees (FREQT), bracket strings in and out.
* `count_skipgrams`, `count_subtrees` : the same patterns' support in the background sample, from posting lists
  (`SequenceIndex`, `TreeIndex`, built once and reused across neurons).

Semantics (support, occurrences, gaps, closedness) are stated in the docstrings of `prefixspan` and `freqt`.
"""

from ._common import default_min_support
from .background import Counts, SequenceIndex, TreeIndex, count_skipgrams, count_subtrees
from .encoding import BracketError, SequenceDB, TreeDB, Vocab, format_tree, parse_bracket
from .freqt import SubtreePattern, SubtreeTable, closed_subtrees, mine_subtree_table, mine_subtrees, parse_subtree
from .prefixspan import Pattern, closed_filter, format_skipgram, frequent_items, mine_skipgrams

__all__ = [
    "BracketError",
    "Counts",
    "Pattern",
    "SequenceDB",
    "SequenceIndex",
    "SubtreePattern",
    "SubtreeTable",
    "TreeDB",
    "TreeIndex",
    "Vocab",
    "closed_filter",
    "closed_subtrees",
    "count_skipgrams",
    "count_subtrees",
    "default_min_support",
    "format_skipgram",
    "format_tree",
    "frequent_items",
    "mine_skipgrams",
    "mine_subtree_table",
    "mine_subtrees",
    "parse_bracket",
    "parse_subtree",
    "warmup",
]


def warmup() -> None:
    """Compile (or load from numba's cache) every kernel on a tiny input, so timings exclude JIT cost."""
    seqs = SequenceDB.from_lists([["a", "b", "a"], ["b", "a"]])
    for gap in (None, 1):
        pats = mine_skipgrams(seqs, min_support=1, min_len=1, max_len=2, max_gap=gap)
        count_skipgrams(seqs, pats, max_gap=gap)
    trees = TreeDB.from_brackets(["(A (B) (C))", "(A (B))"])
    subs = mine_subtrees(trees, min_support=1, max_nodes=3)
    count_subtrees(trees, subs)
