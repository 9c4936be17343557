"""Compile the numba kernels of pattern mining and scoring once, before the jobs that use them.

numba caches compiled kernels next to their modules (``__pycache__/*.nbi``, ``*.nbc``). On a fresh checkout the
first patterns job and the first scores job would both compile the same kernels at the same time (about 25 CPU-s
each on the development machine); the workflow's `mining_kernels` job compiles them once, early, so every later
job loads them from the cache. Results do not depend on it: a job that finds no cache compiles for itself.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from neurotext.io import atomic_output

log = logging.getLogger(__name__)


def warm_kernels() -> float:
    """Run every mining, counting, matching and scoring kernel on tiny inputs; returns the seconds it took."""
    from neurotext import scoring
    from neurotext.miners import (
        SequenceDB, SequenceIndex, TreeDB, TreeIndex, closed_subtrees, mine_subtree_table, warmup,
    )  # fmt: skip
    from neurotext.miners.presence import match_skipgrams, match_subtrees

    started = time.perf_counter()
    warmup()
    trees = TreeDB.from_brackets(["(A (B) (C))", "(A (B))", "(C (A (B)))"])
    table = mine_subtree_table(trees, min_support=1, max_nodes=3)
    closed_subtrees(table, 3)
    match_subtrees(TreeIndex.build(trees), table.patterns())
    seqs = SequenceDB.from_lists([["a", "b", "a"], ["b", "a"]])
    for gap in (None, 0, 2):
        match_skipgrams(SequenceIndex.build(seqs), [["a", "b"]], max_gap=gap)
    counts = np.array([3, 1], np.int64), np.array([10, 10], np.int64), np.array([2, 5], np.int64)
    for p_value in scoring.P_VALUE_KINDS:
        scoring.score_counts(counts[0], counts[1], counts[2], np.array([100, 100], np.int64), p_value=p_value,
                             min_support=np.array([3, 1], np.int64))  # fmt: skip
    return time.perf_counter() - started


def compile_kernels(out: str | os.PathLike[str]) -> None:
    """`warm_kernels`, then write `out`: one line naming the numba version, the file later jobs wait for."""
    import numba

    log.info("mining kernels compiled or loaded from numba's cache in %.1f s", warm_kernels())
    with atomic_output(out) as tmp:
        tmp.write_text(f"numba\t{numba.__version__}\n")
