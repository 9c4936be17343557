"""Overlap of top-K sentence sets within a layer and with the next one, as a sparse incidence product:
``overlap.parquet``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from neurotext.artifacts.relations import OVERLAP_SCHEMA
from neurotext.artifacts.topk import read_topk_pairs

PathLike = str | os.PathLike[str]

@dataclass(frozen=True)
class TopKSets:
    """Each neuron's top-K sentence set as one row of a sparse 0/1 incidence matrix `incidence` (CSR, int32,
    [n_neurons, n_sentences]) whose columns index `sentence_ids` (uint32, sorted). `sizes` int64 [n_neurons]."""

    incidence: sp.csr_matrix
    sentence_ids: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.incidence.indptr).astype(np.int64)


def topk_sets(layers: Sequence[tuple[np.ndarray, np.ndarray]], n_neurons: int) -> list[TopKSets]:
    """Incidence matrices of several layers' top-K sets over one shared sentence index.

    `layers`: per layer, (neuron, sentence_id) arrays as from `read_topk_pairs`. A (neuron, sentence) pair
    listed twice counts once. Neurons outside 0..n_neurons-1 are an error.
    """
    ids = np.concatenate([s for _, s in layers]).astype(np.uint32) if layers else np.empty(0, np.uint32)
    # one sort of all ids gives the shared column index (np.unique and searchsorted are far slower at 10^7)
    order = np.argsort(ids)
    sorted_ids = ids[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    columns = np.empty(len(ids), dtype=np.int64)
    columns[order] = np.cumsum(first) - 1
    all_ids = sorted_ids[first]
    result, start = [], 0
    for neuron, _ in layers:
        if len(neuron) and (neuron.min() < 0 or neuron.max() >= n_neurons):
            raise ValueError(f"top-K table has neuron {int(neuron.max())} outside 0..{n_neurons - 1}")
        matrix = sp.csr_matrix(
            (np.ones(len(neuron), dtype=np.int32), (neuron, columns[start : start + len(neuron)])),
            shape=(n_neurons, len(all_ids)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1
        result.append(TopKSets(matrix, all_ids))
        start += len(neuron)
    return result


def jaccard_matrix(a: TopKSets, b: TopKSets) -> tuple[np.ndarray, np.ndarray]:
    """(intersections int64 [n_a, n_b], Jaccard float64 [n_a, n_b]) of every pair of a's and b's top-K sets.

    Intersections come from the sparse product A @ B.T; Jaccard = |A∩B| / (|A| + |B| - |A∩B|), 0 when both are
    empty. Both must share the sentence index (`topk_sets` over both layers).
    """
    if a.incidence.shape[1] != b.incidence.shape[1]:
        raise ValueError("the two top-K sets do not share a sentence index: build them in one topk_sets call")
    intersections = (a.incidence @ b.incidence.T).toarray().astype(np.int64)
    union = a.sizes[:, None] + b.sizes[None, :] - intersections
    with np.errstate(invalid="ignore", divide="ignore"):
        jaccard = np.where(union > 0, intersections / np.maximum(union, 1), 0.0)
    return intersections, jaccard


def top_overlap_pairs(
    intersections: np.ndarray, jaccard: np.ndarray, top_pairs: int, other_layer: int, exclude_self: bool
) -> pa.Table:
    """Per row neuron, its `top_pairs` partners with the highest Jaccard (ties: lower partner id first), only
    partners sharing at least one sentence, and never itself when `exclude_self` (within one layer)."""
    n_rows, n_cols = jaccard.shape
    eligible = intersections > 0
    if exclude_self:
        np.fill_diagonal(eligible, False)
    key = np.where(eligible, jaccard, -1.0)
    partner = np.broadcast_to(np.arange(n_cols), key.shape)
    order = np.lexsort((partner, -key), axis=1)[:, :top_pairs]
    rows = np.repeat(np.arange(n_rows), order.shape[1]).reshape(order.shape)
    ranks = np.broadcast_to(np.arange(order.shape[1]), order.shape)
    keep = eligible[rows, order]
    row, col, rank = rows[keep], order[keep], ranks[keep]
    return pa.table(
        {
            "neuron": row.astype(np.int32),
            "other_layer": np.full(len(row), other_layer, dtype=np.int32),
            "other_neuron": col.astype(np.int32),
            "rank": rank.astype(np.int32),
            "intersection": intersections[row, col].astype(np.int32),
            "jaccard": jaccard[row, col].astype(np.float64),
        },
        schema=OVERLAP_SCHEMA,
    )


def overlap_table(topk: PathLike, topk_next: PathLike | None, layer: int, n_neurons: int, top_pairs: int) -> pa.Table:
    """The overlap file's table: within the layer, then with the next layer when `topk_next` is given."""
    paths = [topk] + ([topk_next] if topk_next else [])
    pairs = [read_topk_pairs(path) for path in paths]
    for path, (neuron, _) in zip(paths, pairs):
        if len(neuron) and (neuron.min() < 0 or neuron.max() >= n_neurons):
            raise ValueError(
                f"{path}: neuron {int(neuron.max())} outside 0..{n_neurons - 1}, the sample's neurons; the top K and "
                "the sample come from different models or sites: rerun the scan"
            )
    sets = topk_sets(pairs, n_neurons)
    inter, jac = jaccard_matrix(sets[0], sets[0])
    tables = [top_overlap_pairs(inter, jac, top_pairs, layer, exclude_self=True)]
    if len(sets) > 1:
        inter, jac = jaccard_matrix(sets[0], sets[1])
        tables.append(top_overlap_pairs(inter, jac, top_pairs, layer + 1, exclude_self=False))
    return pa.concat_tables(tables).sort_by(
        [("neuron", "ascending"), ("other_layer", "ascending"), ("rank", "ascending")]
    )


def mean_pairwise_jaccard(sets: TopKSets) -> float:
    """Mean Jaccard over all unordered pairs of distinct neurons of one layer (NaN with fewer than 2 neurons)."""
    n = sets.incidence.shape[0]
    if n < 2:
        return float("nan")
    _, jac = jaccard_matrix(sets, sets)
    return float(jac[np.triu_indices(n, k=1)].mean())
