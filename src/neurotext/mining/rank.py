"""Scoring one neuron's candidates as one family and keeping the best patterns per kind.

z (log-odds, informative Dirichlet prior), lift, one-sided Fisher p and Benjamini-Hochberg q come from
`neurotext.scoring`; the kept rows are those with z > 0, significant (q < ``q_max``) first, each group by z.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurotext.mining.candidates import PATTERN_KINDS, Candidates
from neurotext.mining.settings import PatternSettings
from neurotext.scoring import score_counts


@dataclass
class PatternRows:
    """Kept patterns of one kind for one neuron, best first (`neurotext.artifacts.patterns.PATTERNS_SCHEMA`
    columns but neuron)."""

    pattern: list[str] = field(default_factory=list)
    support_top: list[int] = field(default_factory=list)
    support_bg: list[int] = field(default_factory=list)
    occurrences: list[int] = field(default_factory=list)
    z: list[float] = field(default_factory=list)
    lift: list[float] = field(default_factory=list)
    p: list[float] = field(default_factory=list)
    q: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pattern)


def _rank_order(
    patterns: Sequence[str], support_top: np.ndarray, z: np.ndarray, significant: np.ndarray, idx: np.ndarray
) -> list[int]:
    """`idx` sorted by (not significant, -z, -support_top, pattern): significant patterns first, each group by z
    (docs/ARCHITECTURE.md, "Pattern mining": rank by z), ties broken deterministically and independently of the
    job's neuron range."""
    return sorted(idx.tolist(), key=lambda i: (not significant[i], -z[i], -support_top[i], patterns[i]))


def score_candidates(candidates: Sequence[Candidates], settings: PatternSettings) -> tuple[dict[str, PatternRows], int]:
    """Score all candidates of one neuron as one BH family; keep z > 0, best `top_n` per kind (per class for words).

    Returns the kept rows per kind (`PATTERN_KINDS` order) and the number of candidates with q < `q_max`.
    """
    kept = {kind: PatternRows() for kind in PATTERN_KINDS}
    sizes = [len(c) for c in candidates]
    if sum(sizes) == 0:
        return kept, 0

    def cat(get: Callable[[Candidates], Any]) -> np.ndarray:
        return np.concatenate([np.broadcast_to(np.asarray(get(c)), (len(c),)) for c in candidates]).astype(np.int64)

    scores = score_counts(
        cat(lambda c: c.support_top), cat(lambda c: c.n_top), cat(lambda c: c.support_bg), cat(lambda c: c.n_bg),
        prior_weight=settings.prior_weight, min_support=cat(lambda c: c.min_support), p_value=settings.p_value,
    )  # fmt: skip
    n_significant = int(np.sum(scores.q < settings.q_max))
    start = 0
    for cand, size in zip(candidates, sizes, strict=True):
        part = slice(start, start + size)
        start += size
        z, lift_, p, q = scores.z[part], scores.lift[part], scores.p[part], scores.q[part]
        significant = q < settings.q_max
        order = _rank_order(cand.patterns, cand.support_top, z, significant, np.flatnonzero(z > 0))[: settings.top_n]
        rows = kept[cand.kind]
        for i in order:
            rows.pattern.append(cand.patterns[i])
            rows.support_top.append(int(cand.support_top[i]))
            rows.support_bg.append(int(cand.support_bg[i]))
            rows.occurrences.append(int(cand.occurrences[i]))
            rows.z.append(float(z[i]))
            rows.lift.append(float(lift_[i]))
            rows.p.append(float(p[i]))
            rows.q.append(float(q[i]))
    return kept, n_significant
