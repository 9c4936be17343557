"""One layer's data file, ``data/layer{L}.js``: per neuron its top sentences and quantile-band samples (references
into the layer's sentence table), histogram, patterns, metadata, cluster, overlap and fine-tuning entries, plus the
neuron's row of the index.

A neuron entry is a dict; `LayerTables.extras` names every optional block. To add a per-neuron block: read its
file in `LayerTables.read` (through `neurotext.artifacts`), return it from `LayerTables.extras` (None = the run
has no such table: left out), name it in `layer_sections`, and render it in ``browser_assets/browser.js``
(`neuronPage`); for the index, extend `index_row` and `INDEX_FIELDS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


from neurotext.artifacts.records import read_histograms, read_records
from neurotext.artifacts.scores import read_neuron_scores
from neurotext.artifacts.corpus import DomainLookup
from neurotext.browser.corpus import SentenceInfo
from neurotext.browser.inputs import LayerInputs
from neurotext.browser.jsdata import number
from neurotext.browser.sentences import NeuronSentences, ShownSentence, sentences_from_records, top_from_topk
from neurotext.browser.settings import BrowserSettings
from neurotext.browser.tables import (
    Clusters,
    TopKSummary,
    domain_bars_from_topk,
    histogram_entries,
    read_clusters,
    read_overlap,
    read_patterns,
    read_profile_metadata,
    read_profiles,
    read_tsne,
    summarize_topk,
)


class SentenceTable:
    """A layer's shown sentences, each once: ``[text, dataset, domain, detail]`` rows referenced by index."""

    def __init__(self, corpus: Mapping[int, SentenceInfo]):
        self._corpus = corpus
        self._index: dict[int, int] = {}
        self.rows: list[list] = []

    def ref(self, sentence_id: int) -> int:
        if sentence_id not in self._index:
            info = self._corpus.get(sentence_id)
            self._index[sentence_id] = len(self.rows)
            self.rows.append([info.text, info.dataset, info.domain, info.detail] if info else
                             [None, "", None, f"sentence {sentence_id} is in no corpus file"])  # fmt: skip
        return self._index[sentence_id]


def _top_tokens(rows: Sequence[ShownSentence], corpus: Mapping[int, SentenceInfo], n: int) -> list[list]:
    """The most frequent max-activating token texts of the top sentences, ``[[token, count], ...]`` (ties: the
    one from the better-ranked sentence first)."""
    counts: Counter[str] = Counter()  # insertion order = first appearance, rank order
    for s in rows:
        info = corpus.get(s.sentence_id)
        if info is None or s.best is None:
            continue
        token = info.text[s.best[0] : s.best[1]].strip()
        if token:
            counts[token] += 1
    return [[t, c] for t, c in sorted(counts.items(), key=lambda tc: -tc[1])[:n]]


@dataclass
class LayerSources:
    """Everything read for one layer before the corpus pass (see `build_browser`)."""

    inputs: LayerInputs
    summary: TopKSummary
    sentences: NeuronSentences
    hist: dict[int, dict[str, Any]] | None = None  # per neuron, `histogram_entries`; None: no records histogram


def read_layer_sources(layer: LayerInputs, settings: BrowserSettings) -> LayerSources:
    """A layer's top-K summary, shown sentences (the records' when the run has them, else the top K's) and the
    records' whole-corpus histograms."""
    summary = summarize_topk(layer.topk)
    if layer.records is not None:
        sentences = sentences_from_records(read_records(layer.records), settings.top_sentences)
    else:
        sentences = top_from_topk(layer.topk, settings.top_sentences)
    hist = histogram_entries(read_histograms(layer.histograms)) if layer.histograms is not None else None
    return LayerSources(layer, summary, sentences, hist)


def neuron_entry(
    neuron: int,
    src: LayerSources,
    table: SentenceTable,
    corpus: Mapping[int, SentenceInfo],
    extras: Mapping[str, Any],
    settings: BrowserSettings,
) -> dict[str, Any]:
    """One neuron's page data: top sentences and quantile samples (sentence references into `table`), K, top and
    K-th activation, token scale, top tokens, histogram, and the `extras` that are not None."""
    top = src.sentences.top.get(neuron, [])
    quant = src.sentences.quantile.get(neuron, [])
    scale = src.sentences.scale.get(neuron, 0.0)
    entry: dict[str, Any] = {
        "neuron": neuron,
        "k": src.summary.k.get(neuron, 0),
        "max": number(src.summary.top.get(neuron)),
        "kth": number(src.summary.kth.get(neuron)),
        "scale": number(scale, 6),
        "top": [[table.ref(s.sentence_id), number(s.activation), s.tokens] for s in top],
        "quantiles": [[s.label, table.ref(s.sentence_id), number(s.activation), s.tokens]
                      for s in quant],  # fmt: skip
        "top_tokens": _top_tokens(top, corpus, settings.top_tokens),
    }
    if src.hist is not None and neuron in src.hist:
        entry["hist"] = src.hist[neuron]
    for key, value in extras.items():
        if value is not None:
            entry[key] = value
    return entry


def index_row(layer: int, entry: Mapping[str, Any], index_patterns: Sequence[list], kinds: dict[str, int]) -> list:
    """``[layer, neuron, summary, domain, domain_share, patterns, top_tokens, max, cluster, finetune, score,
    score_kind, explained, pattern_summary]``; patterns as ``[[kind code, pattern], ...]``, codes into `kinds` (extended here: the
    index's kind list); score: the best kind's explanation AUROC (the summary is the scores' one when the run has
    explanation scores; `pattern_summary` is then the patterns' own summary, which the index search also reads)."""
    profile = entry.get("profile") or {}
    domain, share = profile.get("dominant_domain"), profile.get("dominant_domain_share")
    if domain is None:
        for field_name, values in entry.get("metadata", []):
            if field_name == "domain" and values:
                domain, share = values[0][0], values[0][1]
    finetune = entry.get("finetune") or {}
    first = next(iter(finetune.values()), None) if finetune else None
    patterns = [[kinds.setdefault(kind, len(kinds)), pattern] for kind, pattern in index_patterns]
    scores = entry.get("scores") or {}
    summary = (scores.get("summary") if scores.get("best") else None) or profile.get("summary") or ""
    return [layer, entry["neuron"], summary, domain, share, patterns,
            [t for t, _ in entry["top_tokens"]], entry["max"], entry.get("cluster"), first,
            scores.get("best_auroc"), scores.get("best"), scores.get("explained"),
            profile.get("summary") if profile.get("summary") != summary else None]  # fmt: skip


INDEX_FIELDS = ("layer", "neuron", "summary", "domain", "domain_share", "patterns", "top_tokens", "max", "cluster",
                "finetune", "score", "score_kind", "explained", "pattern_summary")  # fmt: skip


@dataclass
class LayerTables:
    """A layer's optional per-neuron tables (empty, or None for the single-valued ones, when the run lacks them)."""

    patterns: dict[int, list] | None
    index_patterns: dict[int, list]
    profiles: dict[int, dict[str, Any]]
    metadata: dict[int, list]
    clusters: Clusters | None
    overlap: dict[int, list] | None
    tsne: list[list] | None
    scores: dict[int, dict] | None = None

    @classmethod
    def read(cls, layer: LayerInputs, settings: BrowserSettings, domains: DomainLookup | None) -> LayerTables:
        tables, index = ({}, {})
        if layer.patterns:
            tables, index = read_patterns(layer.patterns, settings.patterns_per_kind, settings.index_patterns)
        if layer.profile_metadata is not None:
            metadata = read_profile_metadata(layer.profile_metadata, settings.metadata_values)
        else:
            metadata = domain_bars_from_topk(layer.topk, domains, settings.metadata_values) if domains else {}
        clusters = read_clusters(layer.clusters, settings.cluster_mates) if layer.clusters else None
        return cls(
            patterns=tables if layer.patterns else None,
            index_patterns=index,
            profiles=read_profiles(layer.profiles) if layer.profiles else {},
            metadata=metadata,
            clusters=clusters,
            overlap=read_overlap(layer.overlap, settings.overlap_partners) if layer.overlap else None,
            tsne=read_tsne(layer.tsne, clusters) if layer.tsne else None,
            scores=read_neuron_scores(layer.scores, layer.scores_summary) if layer.scores else None,
        )

    def extras(self, neuron: int, finetune: dict[str, Any] | None) -> dict[str, Any]:
        """A neuron's entries from these tables (None = the run has no such table: left out of the page data)."""
        clusters = self.clusters
        cluster = clusters.cluster.get(neuron) if clusters else None
        return {
            "profile": self.profiles.get(neuron),
            "patterns": self.patterns.get(neuron, []) if self.patterns is not None else None,
            "metadata": self.metadata.get(neuron, []),
            "cluster": cluster,
            "cluster_size": clusters.sizes.get(cluster) if clusters and cluster is not None else None,
            "mates": clusters.mates.get(neuron, []) if clusters else None,
            "overlap": self.overlap.get(neuron, []) if self.overlap is not None else None,
            "finetune": finetune,
            "scores": self.scores.get(neuron) if self.scores is not None else None,
        }


def layer_sections(src: LayerSources, tables: LayerTables, has_finetune: bool) -> dict[str, bool]:
    """Which optional parts one layer has (meta.js ORs them over the layers; the index names what is missing)."""
    return {
        "records": src.sentences.token_level, "histogram": src.hist is not None,
        "patterns": tables.patterns is not None, "profiles": bool(tables.profiles),
        "clusters": tables.clusters is not None, "overlap": tables.overlap is not None,
        "tsne": tables.tsne is not None, "finetune": has_finetune, "scores": tables.scores is not None,
    }  # fmt: skip


def layer_data(
    src: LayerSources,
    tables: LayerTables,
    corpus: Mapping[int, SentenceInfo],
    finetune: Mapping[tuple[int, int], dict[str, Any]],
    settings: BrowserSettings,
    kinds: dict[str, int],
) -> tuple[dict[str, Any], list[list]]:
    """A layer's data (`data/layer{L}.js`) and its index rows; neurons 0..n-1, n the largest neuron any input has."""
    layer = src.inputs.layer
    sizes = [src.summary.n_neurons, max(src.hist) + 1 if src.hist else 0]
    sizes += [max(d) + 1 for d in (tables.profiles, tables.patterns) if d]
    n_neurons = max(sizes)
    table = SentenceTable(corpus)
    neurons, index_rows = [], []
    for neuron in range(n_neurons):
        extras = tables.extras(neuron, finetune.get((layer, neuron)))
        entry = neuron_entry(neuron, src, table, corpus, extras, settings)
        index_rows.append(index_row(layer, entry, tables.index_patterns.get(neuron, []), kinds))
        neurons.append(entry)
    data = {"layer": layer, "n_neurons": n_neurons, "sentences": table.rows, "neurons": neurons, "tsne": tables.tsne,
            "token_level": src.sentences.token_level}  # fmt: skip
    return data, index_rows
