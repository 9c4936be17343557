"""Explanation metrics, vectorised over predictors: every function takes predictions ``[m, n]`` (m predictors of the
same n sentences; a 1-d ``[n]`` is one predictor) and returns one value per predictor (float64 ``[m]``).

Definitions (the README's "Explanation scores" section gives their sources):

* `auroc`: the probability that a random positive sentence gets a higher prediction than a random negative one,
  ties counting half (the Mann-Whitney U statistic over n_pos x n_neg; equals scikit-learn's ``roc_auc_score``).
  NaN when either class is empty; 0.5 for a constant prediction.
* `pearson`, `spearman`: correlation of prediction and true activation (Spearman: Pearson of the average ranks,
  ties averaged; equal to scipy's ``pearsonr`` / ``spearmanr``). 0.0 when the prediction or the activation is
  constant (scipy gives NaN there): a constant prediction carries no information.
* `precision_recall_f1`: of the binary prediction "contains at least one pattern" against the binary label;
  0.0 where a denominator is 0 (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["auroc", "average_ranks", "pearson", "precision_recall_f1", "spearman"]


def _as_2d(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[None, :]
    if a.ndim != 2:
        raise ValueError(f"predictions must be [n] or [m, n], got shape {a.shape}")
    return a


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis with ties given their average rank (scipy's ``rankdata(method='average')``
    row by row), float64 ``[m, n]``. NaN is not allowed."""
    a = _as_2d(x)
    m, n = a.shape
    if n == 0:
        return np.zeros((m, 0))
    if np.isnan(a).any():
        raise ValueError("predictions hold NaN; rank only finite values")
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    new = np.ones((m, n), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    flat_new = new.ravel()
    starts = np.flatnonzero(flat_new)
    ends = np.append(starts[1:], m * n) - 1
    pos = np.arange(m * n) % n + 1.0
    mean_rank = (pos[starts] + pos[ends]) / 2.0
    ranks_sorted = mean_rank[np.cumsum(flat_new) - 1].reshape(m, n)
    ranks = np.empty((m, n))
    np.put_along_axis(ranks, order, ranks_sorted, axis=1)
    return ranks


def auroc(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Detection AUROC of each predictor (rows) for the boolean `labels` ``[n]`` (ties count half)."""
    a = _as_2d(predictions)
    y = np.asarray(labels, dtype=bool)
    if y.shape != (a.shape[1],):
        raise ValueError(f"labels have shape {y.shape}, predictions {a.shape}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(a.shape[0], np.nan)
    ranks = average_ranks(a)
    u = ranks[:, y].sum(axis=1) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def pearson(predictions: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """Pearson correlation of each predictor with `activations` ``[n]`` (0.0 where either is constant)."""
    a = _as_2d(predictions)
    y = np.asarray(activations, dtype=np.float64)
    if y.shape != (a.shape[1],):
        raise ValueError(f"activations have shape {y.shape}, predictions {a.shape}")
    if a.shape[1] < 2:
        return np.zeros(a.shape[0])
    ac = a - a.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    # scale first so that sums of squares neither overflow nor underflow
    ac_scale = np.abs(ac).max(axis=1, keepdims=True)
    y_scale = np.abs(yc).max()
    ok = (np.ptp(a, axis=1) > 0) & (np.ptp(y) > 0)  # exactly constant: no information
    ac = ac / np.where(ac_scale > 0, ac_scale, 1.0)
    yc = yc / (y_scale if y_scale > 0 else 1.0)
    num = (ac * yc).sum(axis=1)  # elementwise + pairwise sums, not BLAS: same bytes whatever the thread count
    den = np.sqrt((ac * ac).sum(axis=1) * (yc * yc).sum())
    r = np.where(ok & (den > 0), num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def spearman(predictions: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """Spearman correlation (Pearson of average ranks) of each predictor with `activations` ``[n]``."""
    a = _as_2d(predictions)
    y = np.asarray(activations, dtype=np.float64)
    if a.shape[1] == 0:
        return np.zeros(a.shape[0])
    return pearson(average_ranks(a), average_ranks(y)[0])


def precision_recall_f1(present: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 (each float64 ``[m]``) of the boolean predictions `present` ``[m, n]`` against the
    boolean `labels` ``[n]``; 0.0 where a denominator is 0."""
    p = np.asarray(present, dtype=bool)
    if p.ndim == 1:
        p = p[None, :]
    y = np.asarray(labels, dtype=bool)
    if y.shape != (p.shape[1],):
        raise ValueError(f"labels have shape {y.shape}, predictions {p.shape}")
    tp = (p & y).sum(axis=1).astype(np.float64)
    predicted = p.sum(axis=1).astype(np.float64)
    actual = float(y.sum())
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / actual if actual > 0 else np.zeros_like(tp)
    den = precision + recall
    f1 = np.divide(2 * precision * recall, den, out=np.zeros_like(tp), where=den > 0)
    return precision, recall, f1
