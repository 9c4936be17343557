"""Metadata of one neuron's top sentences against the corpus: per field of `METADATA_FIELDS`, each value's count in
the top K against its count in the rest of the corpus, scored like the patterns (min support 1, BH per neuron).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.artifacts.patterns import FieldCounts
from neurotext.mining.encode import EncodedSentences
from neurotext.mining.settings import PatternSettings
from neurotext.scoring import score_counts


def metadata_rows(
    enc: EncodedSentences, top_rows: np.ndarray, corpus_counts: Mapping[str, FieldCounts], neuron: int,
    settings: PatternSettings,
) -> list[dict[str, Any]]:  # fmt: skip
    """`neurotext.artifacts.patterns.METADATA_SCHEMA` rows of one neuron: per field, its values in the top K
    against the rest of the corpus."""
    found = []  # (field, value codes, counts in top, n_top)
    for name in METADATA_FIELDS:
        codes = enc.metadata_codes[name][top_rows]
        codes = codes[codes >= 0]
        if codes.size:
            counts = np.bincount(codes, minlength=len(corpus_counts[name].values))
            present = np.flatnonzero(counts)
            found.append((name, present, counts[present], int(codes.size)))
    if not found:
        return []
    a = np.concatenate([c for _, _, c, _ in found]).astype(np.int64)
    k = np.concatenate([np.full(p.size, n) for _, p, _, n in found]).astype(np.int64)
    c = np.concatenate([corpus_counts[f].counts[p] for f, p, _, _ in found]).astype(np.int64)
    total = np.concatenate([np.full(p.size, corpus_counts[f].total) for f, p, _, _ in found]).astype(np.int64)
    if np.any(c < a) or np.any(total < k):
        raise ValueError(f"neuron {neuron}: the corpus metadata counts are smaller than the top K's; rebuild "
                         "patterns/corpus_metadata.parquet from the same corpus")  # fmt: skip
    scores = score_counts(a, k, c - a, total - k, prior_weight=settings.prior_weight, min_support=1,
                          p_value=settings.p_value)  # fmt: skip
    rows, start = [], 0
    for name, present, counts, n_top in found:
        part = range(start, start + present.size)
        start += present.size
        values = corpus_counts[name].values
        order = sorted(part, key=lambda i: (-a[i], values[present[i - part.start]]))[: settings.metadata_top_n]
        for rank, i in enumerate(order):
            j = i - part.start
            rows.append({
                "neuron": neuron, "field": name, "value": values[present[j]], "count_top": int(a[i]),
                "n_top": n_top, "share_top": float(a[i] / n_top), "count_corpus": int(c[i]),
                "n_corpus": int(total[i]), "share_corpus": float(c[i] / total[i]), "z": float(scores.z[i]),
                "lift": float(scores.lift[i]), "p": float(scores.p[i]), "q": float(scores.q[i]), "dominant": rank == 0,
            })  # fmt: skip
    return rows


def dominant_domain(metadata: Sequence[Mapping[str, Any]]) -> tuple[str | None, float, float]:
    """(value, share in the top K, share in the corpus) of the dominant ``domain`` metadata row; (None, NaN, NaN)
    when no top sentence has a domain."""
    for row in metadata:
        if row["field"] == "domain" and row["dominant"]:
            return row["value"], row["share_top"], row["share_corpus"]
    return None, math.nan, math.nan
