"""Each neuron's one-line summary from its scores: the kinds that beat the controls (an AUROC above chance, the
derangement and the length control of the same neuron), best first, each shown by its pattern with the largest
contribution to the score, or a plain statement that nothing beats the controls.

A pattern's contribution is its weight times how much more often it occurs in the test top sentences than in the
negatives: ``z * (share of positives containing it - share of negatives containing it)``, the pattern's part of the
difference in mean prediction between the two groups (which is what the AUROC ranks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurotext.artifacts.scores import CONTROLS, KINDS, METRICS
from neurotext.scores.predict import PATTERN_KINDS, Explanation, Prediction

#: At most this many kinds are named in a summary.
MAX_PARTS = 3


@dataclass(frozen=True)
class Headline:
    """One `SUMMARY_SCHEMA` row."""

    neuron: int
    best_kind: str | None
    best_auroc: float
    control_auroc: float
    explained: bool
    summary: str


def _label(kind: str, expl: Explanation, j: int) -> str:
    if kind == "metadata":
        return f"{expl.meta_fields[j]}={expl.meta_values[j]}"
    pattern = expl.patterns[kind][j]
    if kind == "words":
        return pattern.split(":", 1)[1]
    if kind == "skipgrams":
        return f'"{pattern}"'
    if kind == "posgrams":
        return f"[{pattern}]"
    return pattern


def contributions(kind: str, expl: Explanation, test: Prediction, negatives: Prediction,
                  keep: np.ndarray) -> np.ndarray:  # fmt: skip
    """float64 ``[n_patterns of kind]``: each pattern's contribution (module docstring)."""
    weights = expl.meta_weights if kind == "metadata" else expl.weights[kind]
    n = weights.size
    n_pos = test.values.shape[1]
    n_neg = int(keep.sum())
    if n == 0 or n_pos == 0 or n_neg == 0:
        return np.zeros(n)
    pos = test.pattern_counts(kind, n) / n_pos
    neg = negatives.pattern_counts(kind, n, keep) / n_neg
    return weights * (pos - neg)


def all_contributions(expl: Explanation, test: Prediction, negatives: Prediction, keep: np.ndarray
                      ) -> dict[str, np.ndarray]:  # fmt: skip
    """`contributions` of every kind of `PATTERN_KINDS` and metadata."""
    return {kind: contributions(kind, expl, test, negatives, keep) for kind in (*PATTERN_KINDS, "metadata")}


def headline(neuron: int, matrix: np.ndarray, expl: Explanation, contrib: dict[str, np.ndarray],
             names: Sequence[str]) -> Headline:  # fmt: skip
    """The summary row of one neuron from its metric matrix ``[len(names), len(METRICS)]`` (rows `names`: the
    kinds, then the controls), its explanation and its patterns' contributions (`all_contributions`)."""
    auroc = matrix[:, METRICS.index("auroc")]
    by_name = dict(zip(names, auroc, strict=True))
    controls = [by_name[c] for c in ("derangement", "length") if c in CONTROLS and not np.isnan(by_name[c])]
    control = float(max([0.5, *controls]))  # the bar: chance, another neuron's patterns and length, whichever is higher
    kinds = [k for k in KINDS if k != "all" and not np.isnan(by_name[k])]
    if not kinds:
        return Headline(neuron, None, float("nan"), control, False, "not scored (no test sentences or negatives)")
    ranked = sorted(kinds, key=lambda k: (-by_name[k], KINDS.index(k)))
    best = ranked[0]
    winners = [k for k in ranked if by_name[k] > control]
    if not winners:
        text = f"nothing beats the controls (best {best} AUROC {by_name[best]:.2f} <= controls {control:.2f})"
        return Headline(neuron, best, float(by_name[best]), control, False, text)
    parts = []
    for kind in winners[:MAX_PARTS]:
        if kind not in (*PATTERN_KINDS, "metadata"):
            continue
        values = contrib.get(kind, np.zeros(0))
        if values.size and values.max() > 0:
            parts.append(_label(kind, expl, int(np.argmax(values))))
    shown = " · ".join(parts) if parts else "no single pattern stands out"
    text = f"{shown} (AUROC {by_name[best]:.2f} {best}, controls {control:.2f})"
    return Headline(neuron, best, float(by_name[best]), control, True, text)
