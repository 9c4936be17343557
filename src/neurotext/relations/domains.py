"""The dominant domain of each neuron's top K (Figure 2 and the summary), from the corpus's `DomainLookup`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neurotext.artifacts.corpus import DomainLookup
from neurotext.artifacts.topk import read_topk_pairs

PathLike = str | os.PathLike[str]

@dataclass(frozen=True)
class DominantDomains:
    """Per neuron of one layer: `counts` int64 [n_neurons, n_domains] of its top-K sentences per domain,
    `dominant` int32 [n_neurons] (index into `domains`, -1 when its top K is empty; ties: first name),
    `share` float64 [n_neurons] (dominant count / top-K size, NaN when empty)."""

    domains: tuple[str, ...]
    counts: np.ndarray
    dominant: np.ndarray
    share: np.ndarray


def dominant_domains(
    neuron: np.ndarray, sentence_id: np.ndarray, lookup: DomainLookup, n_neurons: int, source: str = "top-K table"
) -> DominantDomains:
    """The dominant domain of each neuron's top K, from (neuron, sentence_id) rows (neurons 0..n_neurons-1)."""
    position = np.searchsorted(lookup.sentence_ids, sentence_id)
    position = np.minimum(position, max(len(lookup.sentence_ids) - 1, 0))
    found = (
        (lookup.sentence_ids[position] == sentence_id) if len(lookup.sentence_ids) else np.zeros(len(sentence_id), bool)
    )
    if not found.all():
        missing = int(sentence_id[~found][0])
        raise ValueError(
            f"{source}: sentence_id {missing} is in no corpus file; the top K and the corpus come from different "
            "runs: rerun the scan"
        )
    n_domains = len(lookup.domains)
    flat = neuron.astype(np.int64) * n_domains + lookup.codes[position]
    counts = np.bincount(flat, minlength=n_neurons * n_domains).reshape(n_neurons, n_domains)
    totals = counts.sum(axis=1)
    dominant = np.where(totals > 0, counts.argmax(axis=1), -1).astype(np.int32)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, counts.max(axis=1, initial=0) / np.maximum(totals, 1), np.nan)
    return DominantDomains(lookup.domains, counts, dominant, share)


@dataclass(frozen=True)
class DominantGrid:
    """Figure 2's data: `layers` (1-based) x `neurons` (0-based); `dominant` int32 [n_layers, n_cols] indexing
    `domains` (-1: empty top K), `share` float64 [n_layers, n_cols] in [0, 1]."""

    layers: tuple[int, ...]
    neurons: tuple[int, ...]
    domains: tuple[str, ...]
    dominant: np.ndarray
    share: np.ndarray


def dominant_grid(
    topk_by_layer: Mapping[int, PathLike], lookup: DomainLookup, neurons: tuple[int, int]
) -> DominantGrid:
    """Dominant domain and share for every layer in `topk_by_layer` and neurons first..last (inclusive)."""
    first, last = neurons
    layers = sorted(topk_by_layer)
    width = last - first + 1
    dominant = np.full((len(layers), width), -1, np.int32)
    share = np.full((len(layers), width), np.nan)
    for row, layer in enumerate(layers):
        neuron, sentence = read_topk_pairs(topk_by_layer[layer], (first, last))
        result = dominant_domains(neuron - first, sentence, lookup, width, str(topk_by_layer[layer]))
        dominant[row], share[row] = result.dominant, result.share
    return DominantGrid(tuple(layers), tuple(range(first, last + 1)), lookup.domains, dominant, share)
