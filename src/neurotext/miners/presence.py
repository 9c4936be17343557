"""Which sentences contain each pattern: the background counters' matching, per sentence instead of in total.

`match_skipgrams` and `match_subtrees` take the same prebuilt indexes (`SequenceIndex`, `TreeIndex`) and the same
pattern forms as `count_skipgrams` / `count_subtrees` and return, for every pattern, the sorted database rows that
contain it. The semantics are those of the counters (and so of the miners): a skip-n-gram's items in order with at
most ``max_gap`` tokens skipped between two consecutive ones (None: unbounded); an induced ordered subtree of a
labels-only tree. ``len(match(...).rows_of(k)) == count(...).support[k]`` for every pattern (tested).

Used to score explanations: a sentence's prediction is the sum of the weights of the patterns it contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._common import check_max_gap
from .background import (
    SequenceIndex,
    TreeIndex,
    _sequence_patterns,
    _skipgram_level,
    _subtree_level,
    _subtree_patterns,
    _tree_runs,
)
from .freqt import SubtreePattern
from .prefixspan import Pattern

__all__ = ["Matches", "match_skipgrams", "match_subtrees"]


@dataclass(frozen=True)
class Matches:
    """Rows containing each pattern: pattern ``k`` occurs in database rows ``rows[offsets[k]:offsets[k + 1]]``.

    Attributes:
        offsets: int64 ``[n_patterns + 1]``; rows: int64 ``[n_matches]``, sorted within each pattern.
    """

    offsets: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def rows_of(self, k: int) -> np.ndarray:
        """Rows (int64, sorted) that contain pattern `k`."""
        return self.rows[self.offsets[k] : self.offsets[k + 1]]

    @property
    def pattern_of_match(self) -> np.ndarray:
        """int64 ``[n_matches]``: the pattern index of each entry of `rows`."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.offsets))


def _empty(n: int) -> Matches:
    return Matches(np.zeros(n + 1, np.int64), np.zeros(0, np.int64))


@njit(cache=True)
def _match_skipgrams_kernel(
    post_off, post_seq, post_pos, pat_items, pat_off, n_items, gap, cap, max_plen, out_off, out_seq
):  # pragma: no cover - compiled
    n_pat = pat_off.size - 1
    lseq = np.empty((max_plen, cap), np.int64)
    lpos = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    w = 0
    for k in range(n_pat):
        a = pat_off[k]
        length = pat_off[k + 1] - a
        out_off[k] = w
        for d in range(length):
            ln[d] = _skipgram_level(d, pat_items[a + d], n_items, post_off, post_seq, post_pos, gap, lseq, lpos, ln)[0]
        last = -1
        for q in range(ln[length - 1]):
            s = lseq[length - 1, q]
            if s != last:
                out_seq[w] = s
                w += 1
                last = s
    out_off[n_pat] = w
    return w


def match_skipgrams(
    index: SequenceIndex, patterns: Sequence[Pattern | Sequence[int] | Sequence[str]], *, max_gap: int | None
) -> Matches:
    """The rows of ``index.rows`` containing each pattern (items: ids or labels of the index's vocabulary), with
    `count_skipgrams`'s semantics for the same `max_gap`. Unknown items match nothing."""
    gap = check_max_gap(max_gap)
    seqs, lengths, pat_off, pat_items = _sequence_patterns(index, patterns)
    n = len(seqs)
    if n == 0:
        return _empty(0)
    db = index.db
    counts = np.diff(index.post_offsets)
    valid = (pat_items >= 0) & (pat_items < db.n_items)
    item_count = np.zeros(pat_items.size, np.int64)
    item_count[valid] = counts[pat_items[valid]]
    cap = int(item_count.max()) if item_count.size else 0
    bound = int(item_count[pat_off[:-1]].sum())  # a pattern's rows are at most its first item's postings
    out_off = np.zeros(n + 1, np.int64)
    out_seq = np.empty(max(bound, 1), np.int64)
    w = _match_skipgrams_kernel(
        index.post_offsets, index.post_seq, index.post_pos, pat_items, pat_off, np.int64(db.n_items), np.int64(gap),
        np.int64(max(cap, 1)), np.int64(lengths.max()), out_off, out_seq,
    )  # fmt: skip
    return Matches(out_off, index.rows[out_seq[:w]])


@njit(cache=True)
def _match_subtrees_kernel(
    labels, parent, first_child, next_sibling, node_tree, post_off, post_nodes, pat_lab, pat_dep, pat_off, n_labels,
    cap, max_plen, out_off, out_tree,
):  # pragma: no cover - compiled
    n_pat = pat_off.size - 1
    lnode = np.empty((max_plen, cap), np.int64)
    ln = np.zeros(max_plen, np.int64)
    stamp = np.full(labels.size, -1, np.int64)
    token = 0
    w = 0
    for k in range(n_pat):
        a = pat_off[k]
        length = pat_off[k + 1] - a
        out_off[k] = w
        for d in range(length):
            token += 1
            ln[d] = _subtree_level(
                d, a, pat_lab, pat_dep, n_labels, labels, parent, first_child, next_sibling, post_off, post_nodes,
                stamp, token, lnode, ln,
            )  # fmt: skip
        w += _tree_runs(node_tree, lnode[length - 1], ln[length - 1], out_tree[w:])
    out_off[n_pat] = w
    return w


def match_subtrees(
    index: TreeIndex, patterns: Sequence[SubtreePattern | str | tuple[Sequence[int], Sequence[int]]]
) -> Matches:
    """The trees (rows of ``index.rows``) containing each subtree pattern, with `count_subtrees`'s semantics.

    Patterns as for `count_subtrees`: `SubtreePattern`, bracket strings over the index's vocabulary, or
    ``(labels, depths)`` in preorder. Unknown labels match nothing."""
    lengths, pat_off, pat_lab, pat_dep, _ = _subtree_patterns(index, patterns)
    n = lengths.size
    if n == 0:
        return _empty(0)
    counts = np.diff(index.post_offsets)
    label_count = np.zeros(pat_lab.size, np.int64)
    label_count[pat_lab >= 0] = counts[pat_lab[pat_lab >= 0]]
    # level d holds distinct nodes labelled like pattern node d: at most that label's postings
    cap = int(label_count.max()) if pat_lab.size else 0
    bound = int(label_count[pat_off[1:] - 1].sum())  # rows <= images of the last node
    out_off = np.zeros(n + 1, np.int64)
    out_tree = np.empty(max(bound, 1), np.int64)
    f = index.forest
    w = _match_subtrees_kernel(
        index.labels, f.parent, f.first_child, f.next_sibling, f.node_tree, index.post_offsets, index.post_nodes,
        pat_lab, pat_dep, pat_off, np.int64(index.post_offsets.size - 1), np.int64(max(cap, 1)),
        np.int64(lengths.max()), out_off, out_tree,
    )  # fmt: skip
    return Matches(out_off, index.rows[out_tree[:w]])
