"""PrefixSpan for skip-n-grams over integer-encoded sequences (docs/ARCHITECTURE.md, "Pattern mining"), exact, in numba.

Semantics
    A pattern is a tuple of items ``(i1, ..., in)``. It *occurs* in a sequence ``t`` at positions
    ``p1 < p2 < ... < pn`` when ``t[pj] == ij`` for every j and every *gap* ``p(j+1) - pj - 1`` (the number of
    tokens skipped between consecutive items) is at most ``max_gap``; ``max_gap=None`` means unbounded (classic
    sequential patterns), ``max_gap=0`` means contiguous n-grams.

    * ``support``: the number of sequences with at least one occurrence.
    * ``occurrences``: the number of distinct *end positions* ``pn`` over all occurrences, summed over sequences,
      i.e. the size of the pattern's projected database. (Counting every position tuple would explode with
      unbounded gaps; end positions are what the miner keeps anyway.) For a single item it is its token count;
      for contiguous n-grams (``max_gap=0``) it is the number of n-gram tokens.

    The background counter (`neurotext.miners.background.count_skipgrams`) uses exactly these definitions.

Algorithm
    Depth-first PrefixSpan with pseudo-projection. The projected database of a pattern is a list of
    ``(sequence, end position)`` pairs sorted by sequence then position. With a gap bound, *every* distinct end
    position is kept (keeping only the first one per sequence would miss patterns whose only valid continuation
    follows a later end); each extension scans the union of the windows ``(e, e + max_gap + 1]`` once per position.
    Without a gap bound, the first end per sequence suffices for the projection and the occurrences of an extension
    by item ``x`` are the positions of ``x`` after that first end. Positions holding an item that is infrequent on
    its own are skipped (it cannot occur in a frequent pattern). Extensions are counted in one pass over the scanned
    positions (support with a per-item "last sequence" stamp), infrequent extensions are pruned, and the frequent
    ones are scattered into per-item buckets that form the next level. The whole search runs inside one numba
    function with an explicit stack; memory is O(max_len x projected sizes).

Closed filter (``closed=True``)
    A pattern P is dropped when some *one-item extension* Q of P was mined with the same support. Q is a one-item
    extension when it has one more item and every occurrence of Q contains an occurrence of P: Q = P + x or x + P,
    and, only when ``max_gap`` is None, P with x inserted anywhere (with a gap bound an inserted item may widen a
    gap beyond the bound, so an inner insertion does not imply P). Patterns of length ``max_len`` cannot be checked
    against longer ones (those were not mined) and are always kept. With unbounded gaps this is the usual closed
    sequential pattern (a super-pattern with equal support implies a one-item extension with equal support).

Output order is deterministic: by decreasing support, then items (lexicographic, shorter first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.typed import List

from ._common import check_int, check_max_gap, grow
from .encoding import SequenceDB, Vocab, check_rows

__all__ = ["Pattern", "closed_filter", "format_skipgram", "frequent_items", "mine_skipgrams"]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A skip-n-gram with its support (sequences) and occurrences (distinct end positions), see module docstring."""

    items: tuple[int, ...]
    support: int
    occurrences: int

    def __len__(self) -> int:
        return len(self.items)


@njit(cache=True)
def _expand(
    tokens, stops, pseq, ppos, a, b, gap, keep_all, min_support, allowed,
    sup, occ, seen, bidx, touched, wpos, vis_seq, vis_item, vis_pos,
    out_seq, out_pos, bstart, bitem, bsup, bocc,
):  # pragma: no cover - compiled
    """Extend the projection ``pseq/ppos[a:b]`` by one item; write the frequent extensions' buckets.

    `gap` < 0 scans everything after each sequence's first end. Positions whose item is not `allowed` (infrequent
    as a single item, so never part of a frequent pattern) are skipped. Returns the number of buckets and the
    (possibly regrown) output arrays. Scratch arrays indexed by item (sup, occ, seen, bidx) are left reset.
    """
    # 1. collect every scanned position once per sequence
    nv = 0
    i = a
    while i < b:
        s = pseq[i]
        stop = stops[s]
        j = i
        if gap < 0:
            q0 = ppos[i] + 1
            while j < b and pseq[j] == s:
                j += 1
            for q in range(q0, stop):
                it = tokens[q]
                if allowed[it]:
                    vis_seq[nv] = s
                    vis_item[nv] = it
                    vis_pos[nv] = q
                    nv += 1
        else:
            last = -1
            while j < b and pseq[j] == s:
                e = ppos[j]
                lo = e + 1
                if lo < last:
                    lo = last
                hi = e + gap + 2
                if hi > stop:
                    hi = stop
                for q in range(lo, hi):
                    it = tokens[q]
                    if allowed[it]:
                        vis_seq[nv] = s
                        vis_item[nv] = it
                        vis_pos[nv] = q
                        nv += 1
                if hi > last:
                    last = hi
                j += 1
        i = j
    # 2. count support and occurrences per item
    nt = 0
    for v in range(nv):
        it = vis_item[v]
        s = vis_seq[v]
        if occ[it] == 0:
            touched[nt] = it
            nt += 1
        occ[it] += 1
        if seen[it] != s:
            seen[it] = s
            sup[it] += 1
    # 3. lay out buckets for frequent items
    nbk = 0
    size = 0
    for t in range(nt):
        it = touched[t]
        if sup[it] >= min_support:
            nbk += 1
            size += occ[it] if keep_all else sup[it]
    bstart = grow(bstart, nbk + 1)
    bitem = grow(bitem, nbk)
    bsup = grow(bsup, nbk)
    bocc = grow(bocc, nbk)
    out_seq = grow(out_seq, size)
    out_pos = grow(out_pos, size)
    k = 0
    pos = 0
    for t in range(nt):
        it = touched[t]
        seen[it] = -1
        if sup[it] >= min_support:
            bidx[it] = k
            bitem[k] = it
            bsup[k] = sup[it]
            bocc[k] = occ[it]
            bstart[k] = pos
            wpos[k] = pos
            pos += occ[it] if keep_all else sup[it]
            k += 1
    bstart[nbk] = pos
    # 4. scatter the new end positions (sorted by sequence, then position, within each bucket)
    if nbk > 0:
        for v in range(nv):
            it = vis_item[v]
            k = bidx[it]
            if k >= 0:
                s = vis_seq[v]
                if keep_all or seen[it] != s:
                    seen[it] = s
                    w = wpos[k]
                    out_seq[w] = s
                    out_pos[w] = vis_pos[v]
                    wpos[k] = w + 1
    # 5. reset scratch
    for t in range(nt):
        it = touched[t]
        sup[it] = 0
        occ[it] = 0
        seen[it] = -1
        bidx[it] = -1
    return nbk, out_seq, out_pos, bstart, bitem, bsup, bocc


@njit(cache=True)
def _mine_kernel(tokens, starts, stops, n_items, min_support, min_len, max_len, max_gap):  # pragma: no cover
    """Depth-first PrefixSpan. Returns flat pattern items, their offsets, support and occurrences (unsorted)."""
    n_seq = starts.size
    total = 0
    for s in range(n_seq):
        total += stops[s] - starts[s]
    keep_all = max_gap >= 0
    sup = np.zeros(n_items, np.int64)
    occ = np.zeros(n_items, np.int64)
    seen = np.full(n_items, -1, np.int64)
    bidx = np.full(n_items, -1, np.int64)
    touched = np.empty(n_items, np.int64)
    wpos = np.empty(n_items, np.int64)
    vis_seq = np.empty(total, np.int64)
    vis_item = np.empty(total, np.int32)
    vis_pos = np.empty(total, np.int64)

    lv_seq = List()
    lv_pos = List()
    lv_bstart = List()
    lv_bitem = List()
    lv_bsup = List()
    lv_bocc = List()
    for _ in range(max_len):
        lv_seq.append(np.empty(0, np.int64))
        lv_pos.append(np.empty(0, np.int64))
        lv_bstart.append(np.empty(0, np.int64))
        lv_bitem.append(np.empty(0, np.int32))
        lv_bsup.append(np.empty(0, np.int64))
        lv_bocc.append(np.empty(0, np.int64))
    nb = np.zeros(max_len, np.int64)
    cur = np.zeros(max_len, np.int64)

    out_items = np.empty(1024, np.int32)
    out_off = np.zeros(257, np.int64)
    out_sup = np.empty(256, np.int64)
    out_occ = np.empty(256, np.int64)
    n_out = 0
    prefix = np.empty(max_len, np.int32)

    if max_len == 0 or total == 0:
        return out_items[:0], out_off[:1], out_sup[:0], out_occ[:0]

    root_seq = np.arange(n_seq).astype(np.int64)
    root_pos = starts - 1
    allowed = np.ones(n_items, np.bool_)
    r = _expand(
        tokens, stops, root_seq, root_pos, 0, n_seq, -1, keep_all, min_support, allowed,
        sup, occ, seen, bidx, touched, wpos, vis_seq, vis_item, vis_pos,
        lv_seq[0], lv_pos[0], lv_bstart[0], lv_bitem[0], lv_bsup[0], lv_bocc[0],
    )
    nb[0] = r[0]
    lv_seq[0], lv_pos[0], lv_bstart[0], lv_bitem[0], lv_bsup[0], lv_bocc[0] = r[1], r[2], r[3], r[4], r[5], r[6]
    allowed[:] = False
    for j in range(nb[0]):
        allowed[lv_bitem[0][j]] = True
    depth = 0
    while depth >= 0:
        if cur[depth] >= nb[depth]:
            depth -= 1
            continue
        j = cur[depth]
        cur[depth] = j + 1
        prefix[depth] = lv_bitem[depth][j]
        length = depth + 1
        if length >= min_len:
            out_sup = grow(out_sup, n_out + 1)
            out_occ = grow(out_occ, n_out + 1)
            out_off = grow(out_off, n_out + 2)
            start = out_off[n_out]
            out_items = grow(out_items, start + length)
            out_items[start : start + length] = prefix[:length]
            out_off[n_out + 1] = start + length
            out_sup[n_out] = lv_bsup[depth][j]
            out_occ[n_out] = lv_bocc[depth][j]
            n_out += 1
        if length < max_len:
            d = depth + 1
            bs = lv_bstart[depth]
            r = _expand(
                tokens, stops, lv_seq[depth], lv_pos[depth], bs[j], bs[j + 1], max_gap, keep_all, min_support, allowed,
                sup, occ, seen, bidx, touched, wpos, vis_seq, vis_item, vis_pos,
                lv_seq[d], lv_pos[d], lv_bstart[d], lv_bitem[d], lv_bsup[d], lv_bocc[d],
            )
            nb[d] = r[0]
            lv_seq[d], lv_pos[d], lv_bstart[d], lv_bitem[d], lv_bsup[d], lv_bocc[d] = r[1], r[2], r[3], r[4], r[5], r[6]
            cur[d] = 0
            depth = d
    return out_items[: out_off[n_out]], out_off[: n_out + 1], out_sup[:n_out], out_occ[:n_out]


def sort_order(items: np.ndarray, offsets: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Order of flat patterns by (-support, items lexicographic, shorter first): int64 ``[n_patterns]``."""
    n = support.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    padded = np.full((n, width), -1, dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    col = np.arange(items.size) - np.repeat(offsets[:-1], lengths)
    padded[row, col] = items
    keys = [padded[:, c] for c in range(width - 1, -1, -1)] + [-support]
    return np.lexsort(keys)


def _rows_bounds(db: SequenceDB, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return db.offsets[rows], db.offsets[rows + 1]


def _mine_arrays(
    db: SequenceDB,
    rows: np.ndarray,
    min_support: int,
    min_len: int,
    max_len: int,
    max_gap: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    starts, stops = _rows_bounds(db, rows)
    longest = int((stops - starts).max()) if rows.size else 0
    eff_max = min(max_len, longest)
    if eff_max < min_len:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, np.int32), np.zeros(1, np.int64), empty, empty
    return _mine_kernel(
        db.tokens, starts, stops, np.int64(db.n_items), np.int64(min_support), np.int64(min_len),
        np.int64(eff_max), np.int64(max_gap),
    )


def mine_skipgrams(
    db: SequenceDB,
    rows: Sequence[int] | np.ndarray | None = None,
    *,
    min_support: int,
    min_len: int = 2,
    max_len: int = 4,
    max_gap: int | None = 2,
    closed: bool = False,
) -> list[Pattern]:
    """Frequent skip-n-grams of the sequences `rows` of `db` (all when None), exactly.

    Args:
        db: the encoded corpus.
        rows: indices of the sequences to mine (unique; order irrelevant).
        min_support: keep patterns contained in at least this many sequences (>= 1).
        min_len, max_len: pattern length range in items (1 <= min_len <= max_len).
        max_gap: at most this many tokens skipped between consecutive items; 0 = contiguous n-grams,
            None = unbounded.
        closed: drop patterns with a one-item extension of equal support (see the module docstring).

    Returns:
        `Pattern` objects sorted by (-support, items).
    """
    min_support = check_int("min_support", min_support, 1)
    min_len = check_int("min_len", min_len, 1)
    max_len = check_int("max_len", max_len, 1)
    if max_len < min_len:
        raise ValueError(f"max_len ({max_len}) must be >= min_len ({min_len})")
    gap = check_max_gap(max_gap)
    rows_arr = check_rows(rows, len(db))
    items, offsets, support, occurrences = _mine_arrays(db, rows_arr, min_support, min_len, max_len, gap)
    order = sort_order(items, offsets, support)
    flat = items.tolist()
    off = offsets.tolist()
    sup = support.tolist()
    occ = occurrences.tolist()
    patterns = [Pattern(tuple(flat[off[k] : off[k + 1]]), sup[k], occ[k]) for k in order.tolist()]
    if closed:
        patterns = closed_filter(patterns, max_len, unbounded=gap < 0)
    return patterns


def closed_filter(patterns: Sequence[Pattern], max_len: int, unbounded: bool) -> list[Pattern]:
    """Drop each pattern that has a one-item extension of equal support among `patterns` (module docstring).

    Patterns of length `max_len` are kept (their extensions were not mined). Order is preserved.
    """
    support = {p.items: p.support for p in patterns}
    not_closed: set[tuple[int, ...]] = set()
    for q in patterns:
        items = q.items
        n = len(items)
        if n < 2:
            continue
        subs = {items[1:], items[:-1]}
        if unbounded:
            subs.update(items[:i] + items[i + 1 :] for i in range(1, n - 1))
        for sub in subs:
            if support.get(sub) == q.support:
                not_closed.add(sub)
    return [p for p in patterns if len(p.items) >= max_len or p.items not in not_closed]


def frequent_items(
    db: SequenceDB, rows: Sequence[int] | np.ndarray | None = None, *, min_support: int
) -> list[Pattern]:
    """Items in at least `min_support` of the sequences `rows` (length-1 `mine_skipgrams`, same code).

    Frequent words of a POS class are ``frequent_items(words.select_tokens(mask), rows, ...)`` with `mask` true on
    the tokens whose tag is in the class.
    """
    return mine_skipgrams(db, rows, min_support=min_support, min_len=1, max_len=1, max_gap=None)


def format_skipgram(items: Iterable[int], vocab: Vocab | SequenceDB | None) -> str:
    """Readable pattern: labels joined by spaces, e.g. ``is going be``."""
    items = list(items)
    if isinstance(vocab, SequenceDB):
        return " ".join(vocab.decode(items))
    if vocab is None:
        return " ".join(str(int(i)) for i in items)
    return " ".join(vocab.decode(items))
