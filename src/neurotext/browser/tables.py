"""A layer's per-neuron tables as the pages show them: the top-K summary, the records' whole-corpus histograms,
patterns, profiles, metadata bars, clusters, overlap partners, the t-SNE map and the fine-tuning changes."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from neurotext.artifacts import patterns as patterns_files
from neurotext.artifacts import relations as relations_files
from neurotext.artifacts import topk as topk_files
from neurotext.artifacts.corpus import METADATA_FIELDS, DomainLookup
from neurotext.artifacts.finetune import read_neuron_changes
from neurotext.artifacts.records import LayerHistograms
from neurotext.browser.jsdata import number, round_significant

PathLike = str | os.PathLike[str]


def histogram_entries(hist: LayerHistograms) -> dict[int, dict[str, Any]]:
    """Per neuron, the page's histogram: ``{"lo", "hi", "counts", "n", "under", "over"}`` from the records' exact
    whole-corpus histogram (equal bins from ``lo`` to ``hi``, the records' edges; ``under`` / ``over``: sentences
    below / at or above them, NaN counted under)."""
    out: dict[int, dict[str, Any]] = {}
    for i, neuron in enumerate(hist.neuron.tolist()):
        out[neuron] = {"lo": number(hist.edges[i, 0]), "hi": number(hist.edges[i, -1]),
                       "counts": hist.counts[i].tolist(), "n": int(hist.n[i]), "under": int(hist.underflow[i]),
                       "over": int(hist.overflow[i])}  # fmt: skip
    return out


def _rows_by_neuron(table: pa.Table) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        out.setdefault(int(row["neuron"]), []).append(row)
    return out


#: Pattern kinds in the order of a neuron page's tables (Table 2's rows); other kinds follow, by name.
PAGE_KINDS = ("words:noun", "words:verb", "words:adjective", "skipgrams", "posgrams", "subtrees")
#: Pattern kinds in the index, coded by position (others get the next codes as they come); its first chips show
#: the best pattern of each kind in this order.
INDEX_KINDS = ("skipgrams", "words:noun", "words:verb", "words:adjective", "subtrees", "posgrams")


def read_patterns(path: PathLike, per_kind: int, index_per_kind: int) -> tuple[dict[int, list], dict[int, list]]:
    """Per neuron, the page's pattern tables ``[[kind, [[pattern, support_top, support_bg, z, lift, q], ...]], ...]``
    (words split by class into ``words:noun`` etc.; file order = best first) and the index's ``[[kind, pattern]]``."""
    table = patterns_files.read_patterns(path)
    limit = max(per_kind, index_per_kind)
    counts: Counter[tuple[int, str]] = Counter()
    keep: list[int] = []
    groups: list[tuple[int, str, str]] = []
    neurons = table["neuron"].to_numpy().tolist()
    for i, (neuron, kind, pattern) in enumerate(zip(neurons, table["kind"].to_pylist(), table["pattern"].to_pylist(),
                                                    strict=True)):  # fmt: skip
        if kind == "words" and ":" in pattern:
            word_class, _, pattern = pattern.partition(":")
            kind = f"words:{word_class}"
        if counts[(neuron, kind)] < limit:
            counts[(neuron, kind)] += 1
            keep.append(i)
            groups.append((neuron, kind, pattern))
    kept = table.take(pa.array(keep, pa.int64()))
    columns = [kept["support_top"].to_pylist(), kept["support_bg"].to_pylist(), round_significant(kept["z"]),
               round_significant(kept["lift"]), round_significant(kept["q"], 3)]  # fmt: skip
    page: dict[int, dict[str, list]] = {}
    for j, (neuron, kind, pattern) in enumerate(groups):
        page.setdefault(neuron, {}).setdefault(kind, []).append([pattern, *(column[j] for column in columns)])

    def table_order(kind: str) -> tuple[int, str]:
        return (PAGE_KINDS.index(kind) if kind in PAGE_KINDS else len(PAGE_KINDS), kind)

    def index_order(kind: str) -> tuple[int, str]:
        return (INDEX_KINDS.index(kind) if kind in INDEX_KINDS else len(INDEX_KINDS), kind)

    tables = {n: [[k, kinds[k][:per_kind]] for k in sorted(kinds, key=table_order)] for n, kinds in page.items()}
    index = {}
    for neuron, kinds in page.items():  # round robin: the best of each kind first, then the second best, ...
        ordered = sorted(kinds, key=index_order)
        index[neuron] = [[k, kinds[k][r][0]] for r in range(index_per_kind) for k in ordered if r < len(kinds[k])]
    return tables, index


def read_profiles(path: PathLike) -> dict[int, dict[str, Any]]:
    """Per neuron, the profile fields the browser shows (summary, status, dominant domain, shares, counts)."""
    keep = ("summary", "status", "n_top", "n_patterns", "n_significant", "dominant_domain", "dominant_domain_share",
            "dominant_domain_corpus_share")  # fmt: skip
    out = {}
    for row in patterns_files.read_profiles(path).to_pylist():
        out[int(row["neuron"])] = {k: (number(row[k]) if isinstance(row[k], float) else row[k]) for k in keep
                                   if k in row}  # fmt: skip
    return out


def read_profile_metadata(path: PathLike, per_field: int) -> dict[int, list]:
    """Per neuron ``[[field, [[value, share_top, share_corpus, count_top], ...]], ...]``, fields in
    `artifacts.corpus.METADATA_FIELDS` order, the `per_field` most frequent values in the top K first."""
    order = {name: i for i, name in enumerate(METADATA_FIELDS)}
    out: dict[int, list] = {}
    for neuron, rows in _rows_by_neuron(patterns_files.read_profile_metadata(path)).items():
        fields: dict[str, list] = {}
        for row in sorted(rows, key=lambda r: (order.get(r["field"], len(order)), r["field"], -r["count_top"],
                                               str(r["value"]))):  # fmt: skip
            values = fields.setdefault(row["field"], [])
            if len(values) < per_field:
                values.append([str(row["value"]), number(row["share_top"]), number(row["share_corpus"]),
                               int(row["count_top"])])  # fmt: skip
        out[neuron] = [[name, values] for name, values in fields.items()]
    return out


@dataclass(frozen=True)
class Clusters:
    """A layer's k-means partition: each neuron's cluster and up to `cluster_mates` mates (nearest centre first)."""

    cluster: dict[int, int]
    mates: dict[int, list[int]]
    sizes: dict[int, int]


def read_clusters(path: PathLike, n_mates: int) -> Clusters:
    table = relations_files.read_clusters(path)
    neurons = table["neuron"].to_numpy()
    labels = table["cluster"].to_numpy()
    distance = table["distance"].to_numpy()
    members: dict[int, list[int]] = {}
    for i in np.lexsort((neurons, distance, labels)):
        members.setdefault(int(labels[i]), []).append(int(neurons[i]))
    cluster = {int(n): int(c) for n, c in zip(neurons, labels, strict=True)}
    mates = {n: [m for m in members[c] if m != n][:n_mates] for n, c in cluster.items()}
    return Clusters(cluster, mates, {c: len(m) for c, m in members.items()})


def read_overlap(path: PathLike, per_layer: int) -> dict[int, list]:
    """Per neuron ``[[other_layer, other_neuron, jaccard, intersection], ...]``: the `per_layer` best partners in
    each partner layer (by the file's rank)."""
    table = relations_files.read_overlap(path).sort_values(["neuron", "other_layer", "rank"], kind="stable")
    out: dict[int, list] = {}
    count: Counter[tuple[int, int]] = Counter()
    for row in table.to_dict("records"):
        key = (int(row["neuron"]), int(row["other_layer"]))
        if count[key] < per_layer:
            count[key] += 1
            out.setdefault(key[0], []).append([key[1], int(row["other_neuron"]), number(row["jaccard"], 3),
                                               int(row["intersection"])])  # fmt: skip
    return out


def read_tsne(path: PathLike, clusters: Clusters | None) -> list[list] | None:
    """The layer's t-SNE map scaled to 0..1000 (ints): ``[[x, y, cluster or -1], ...]`` by neuron."""
    table = relations_files.read_tsne(path).sort_values("neuron", kind="stable")
    x = table["x"].to_numpy().astype(np.float64)
    y = table["y"].to_numpy().astype(np.float64)
    if len(x) == 0:
        return None

    def scale(v: np.ndarray) -> np.ndarray:
        span = np.nanmax(v) - np.nanmin(v)
        return np.round((v - np.nanmin(v)) / (span if span > 0 else 1.0) * 1000).astype(int)

    neurons = table["neuron"].to_numpy()
    cluster = clusters.cluster if clusters else {}
    return [[int(a), int(b), cluster.get(int(n), -1)] for n, a, b in zip(neurons, scale(x), scale(y), strict=True)]


def read_finetune(path: PathLike) -> tuple[list[str], dict[tuple[int, int], dict[str, Any]]]:
    """Fine-tuning changes per (layer, neuron) (`artifacts.finetune.read_neuron_changes`): numbers to 4 significant
    digits, strings as they are; also the field names, in the page's order."""
    changes = read_neuron_changes(path)
    keys = list(changes.by_neuron)
    columns = {}
    for name in changes.fields:
        values = [changes.by_neuron[key][name] for key in keys]
        numeric = not any(isinstance(value, str) for value in values)
        columns[name] = round_significant(np.array(values, dtype=np.float64)) if numeric else values
    out = {key: {name: columns[name][i] for name in changes.fields} for i, key in enumerate(keys)}
    return list(changes.fields), out


@dataclass(frozen=True)
class TopKSummary:
    """Per neuron of a layer: K (rows), the highest and the K-th activation, from the whole top-K file."""

    k: dict[int, int]
    top: dict[int, float]
    kth: dict[int, float]
    n_neurons: int


def summarize_topk(path: PathLike) -> TopKSummary:
    table = topk_files.read_topk(path, columns=["neuron", "activation"])
    neurons = table["neuron"].to_numpy()
    acts = table["activation"].to_numpy().astype(np.float64)
    if len(neurons) == 0:
        return TopKSummary({}, {}, {}, 0)
    order = np.lexsort((acts, neurons))
    neurons, acts = neurons[order], acts[order]
    starts = np.flatnonzero(np.r_[True, neurons[1:] != neurons[:-1]])
    ends = np.r_[starts[1:], len(neurons)]
    k = {int(neurons[s]): int(e - s) for s, e in zip(starts, ends, strict=True)}
    kth = {int(neurons[s]): float(acts[s]) for s in starts}
    top = {int(neurons[s]): float(acts[e - 1]) for s, e in zip(starts, ends, strict=True)}
    return TopKSummary(k, top, kth, int(neurons.max()) + 1)


def domain_bars_from_topk(path: PathLike, domains: DomainLookup, per_field: int) -> dict[int, list]:
    """Without profile metadata: per neuron ``[["domain", [[value, share_top, share_corpus, count_top], ...]]]``
    over its whole top K, from the corpus domains."""
    table = topk_files.read_topk(path, columns=["neuron", "sentence_id"])
    neurons = table["neuron"].to_numpy()
    codes = domains.codes_of(table["sentence_id"].to_numpy().astype(np.uint32))
    corpus = domains.counts()
    corpus_share = corpus / max(int(corpus.sum()), 1)
    n_names = len(domains.domains)
    out: dict[int, list] = {}
    if n_names == 0:
        return out
    keep = codes >= 0
    counts = np.zeros((int(neurons.max()) + 1 if len(neurons) else 0, n_names), np.int64)
    np.add.at(counts, (neurons[keep], codes[keep]), 1)
    for neuron in np.unique(neurons):
        row = counts[neuron]
        total = int(row.sum())
        if total == 0:
            continue
        order = sorted(np.flatnonzero(row), key=lambda c: (-row[c], domains.domains[c]))[:per_field]
        out[int(neuron)] = [["domain", [[domains.domains[c], number(row[c] / total), number(corpus_share[c]),
                                         int(row[c])] for c in order]]]  # fmt: skip
    return out

