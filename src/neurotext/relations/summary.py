"""``relations/summary.csv``: the numbers behind the paper's claims, one row per layer."""

from __future__ import annotations

import csv
import io as _io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neurotext.artifacts.corpus import DomainLookup, read_domains
from neurotext.artifacts.relations import read_clusters, read_overlap, read_sse
from neurotext.artifacts.topk import read_topk_pairs
from neurotext.io import write_text
from neurotext.logs import progress
from neurotext.relations.domains import dominant_domains
from neurotext.relations.overlap import mean_pairwise_jaccard, topk_sets

PathLike = str | os.PathLike[str]

@dataclass(frozen=True)
class LayerSummary:
    """The numbers behind the paper's claims for one layer (a row of `relations/summary.csv`).

    Domain diversity across neurons: `n_dominant_domains` (distinct dominant domains), `dominant_entropy_bits`
    (entropy of the dominant domains' distribution over the neurons), `top_domain` and `top_domain_fraction`
    (the most frequent dominant domain and the fraction of neurons it dominates). Concentration of each neuron's
    top K: `mean_dominant_share`, `mean_dominant_lift` (share / the domain's corpus share). Overlap of top-K
    sets: `mean_jaccard` (all pairs within the layer), `mean_best_jaccard` (each neuron's most overlapping
    partner), `mean_best_jaccard_next` (with the next layer; NaN for the last). Groups: `partner_same_domain`
    (fraction of neurons whose most overlapping partner in the layer has the same dominant domain) against
    `partner_same_domain_chance` (the sum of squared dominant-domain fractions: two neurons drawn at random);
    `sse_k` and `sse_fraction_k` (SSE at the config's k, and its share of the total sum of squares: low = neurons
    fall into few tight groups); `cluster_purity` (fraction of neurons whose dominant domain is their cluster's
    most common one) against `purity_baseline` (the same with dominant domains shuffled over the neurons, mean of
    100 seeded draws).
    """

    layer: int
    n_neurons: int
    n_dominant_domains: int
    dominant_entropy_bits: float
    top_domain: str
    top_domain_fraction: float
    mean_dominant_share: float
    mean_dominant_lift: float
    mean_jaccard: float
    mean_best_jaccard: float
    mean_best_jaccard_next: float
    partner_same_domain: float
    partner_same_domain_chance: float
    k: int
    sse_k: float
    sse_fraction_k: float
    cluster_purity: float
    purity_baseline: float


def cluster_purity(labels: np.ndarray, categories: np.ndarray) -> float:
    """Fraction of items whose category is the most common one in their cluster (items with category < 0 are
    left out). 1 = every cluster is one category."""
    keep = categories >= 0
    labels, categories = labels[keep], categories[keep]
    if not len(labels):
        return float("nan")
    table = pd.crosstab(labels, categories)
    return float(table.max(axis=1).sum() / len(labels))


def purity_baseline(labels: np.ndarray, categories: np.ndarray, draws: int = 100, seed: int = 0) -> float:
    """Mean `cluster_purity` with the categories shuffled over the items (seeded): the purity chance gives."""
    rng = np.random.default_rng(seed)
    return float(np.mean([cluster_purity(labels, rng.permutation(categories)) for _ in range(draws)]))


def entropy_bits(values: np.ndarray) -> float:
    """Shannon entropy (bits) of the empirical distribution of `values` (ignoring negatives)."""
    values = values[values >= 0]
    if not len(values):
        return float("nan")
    counts = np.unique(values, return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum() + 0.0)


def summarize_layer(
    layer: int,
    topk: PathLike,
    lookup: DomainLookup,
    clusters: PathLike,
    sse: PathLike,
    overlap: PathLike,
    k: int,
) -> LayerSummary:
    """One layer's `LayerSummary` from its top K, the corpus domains and the layer's relations files."""
    cluster_table = read_clusters(clusters)[["neuron", "cluster"]].sort_values("neuron")
    n_neurons = len(cluster_table)
    neuron, sentence = read_topk_pairs(topk)
    dom = dominant_domains(neuron, sentence, lookup, n_neurons, str(topk))
    has = dom.dominant >= 0
    corpus_share = lookup.shares()
    lifts = [dom.share[i] / corpus_share[dom.domains[c]] for i, c in enumerate(dom.dominant) if c >= 0]
    codes, counts = np.unique(dom.dominant[has], return_counts=True)
    top = int(np.lexsort((codes, -counts))[0]) if len(codes) else -1
    pairs = read_overlap(overlap)
    best = pairs[pairs["rank"] == 0]
    best_within = (
        best[best["other_layer"] == layer].set_index("neuron")["jaccard"].reindex(range(n_neurons), fill_value=0.0)
    )
    best_next = best[best["other_layer"] == layer + 1].set_index("neuron")["jaccard"]
    has_next = bool((pairs["other_layer"] == layer + 1).any())
    partner = best[best["other_layer"] == layer]
    same = dom.dominant[partner["neuron"].to_numpy()] == dom.dominant[partner["other_neuron"].to_numpy()]
    same &= dom.dominant[partner["neuron"].to_numpy()] >= 0
    fractions = counts / counts.sum() if len(counts) else np.empty(0)
    sse_table = read_sse(sse)
    at_k = sse_table[sse_table["k"] == k]
    labels = cluster_table["cluster"].to_numpy()
    return LayerSummary(
        layer=layer,
        n_neurons=n_neurons,
        n_dominant_domains=len(codes),
        dominant_entropy_bits=entropy_bits(dom.dominant),
        top_domain=dom.domains[codes[top]] if top >= 0 else "",
        top_domain_fraction=float(counts[top] / has.sum()) if top >= 0 else float("nan"),
        mean_dominant_share=float(np.nanmean(dom.share)) if has.any() else float("nan"),
        mean_dominant_lift=float(np.mean(lifts)) if lifts else float("nan"),
        mean_jaccard=mean_pairwise_jaccard(topk_sets([(neuron, sentence)], n_neurons)[0]),
        mean_best_jaccard=float(best_within.mean()) if n_neurons else float("nan"),
        mean_best_jaccard_next=(
            float(best_next.reindex(range(n_neurons), fill_value=0.0).mean()) if has_next else float("nan")
        ),
        partner_same_domain=float(same.mean()) if len(same) else float("nan"),
        partner_same_domain_chance=float((fractions**2).sum()) if len(fractions) else float("nan"),
        k=k,
        sse_k=float(at_k["sse"].iloc[0]) if len(at_k) else float("nan"),
        sse_fraction_k=float(at_k["sse_fraction"].iloc[0]) if len(at_k) and "sse_fraction" in at_k else float("nan"),
        cluster_purity=cluster_purity(labels, dom.dominant),
        purity_baseline=purity_baseline(labels, dom.dominant),
    )


def summary_csv(rows: Sequence[LayerSummary]) -> str:
    """`summary.csv` text: a header of `LayerSummary`'s fields, a row per layer; floats with 6 decimals."""
    from dataclasses import asdict, fields

    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in fields(LayerSummary)])
    for row in rows:
        writer.writerow(
            [("nan" if math.isnan(v) else f"{v:.6f}") if isinstance(v, float) else v for v in asdict(row).values()]
        )
    return buffer.getvalue()


def relations_summary(
    layers: Sequence[int],
    topk: Sequence[PathLike],
    clusters: Sequence[PathLike],
    sse: Sequence[PathLike],
    overlap: Sequence[PathLike],
    corpus: Sequence[PathLike],
    k: int,
    out: PathLike,
) -> list[LayerSummary]:
    """Rule entry: `relations/summary.csv` from every layer's files (lists aligned with `layers`); `k` is the
    config's k (`relations.k`), the one the clusters files hold."""
    lookup = read_domains(corpus)
    rows = [
        summarize_layer(layer, t, lookup, c, s, o, k)
        for layer, t, c, s, o in progress(
            list(zip(layers, topk, clusters, sse, overlap, strict=True)), desc="summary", unit="layer"
        )
    ]
    write_text(out, summary_csv(rows))
    return rows
