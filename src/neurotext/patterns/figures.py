"""The patterns stage's figures. Figure 1 (the ``figure1`` job): metadata shares of chosen neurons' top K beside the
corpus's; ``figures/fig1.{png,pdf}``. Each figure's rule entry (`figure1`) takes the rule's named inputs and params
(``workflow/scripts/patterns_figure.py``; docs/ARCHITECTURE.md, "How to add a figure")."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurotext.artifacts.patterns import FieldCounts, read_corpus_metadata, read_profile_metadata
from neurotext.ids import unit_name
from neurotext.plots import save_figure, use_agg

PathLike = str | os.PathLike[str]

FIGURE1_FIELDS: tuple[str, ...] = ("domain", "topic", "sentiment")


def _bars(
    top: Mapping[str, float], corpus: Mapping[str, float], max_bars: int
) -> tuple[list[str], list[float], list[float]]:
    """Values shown (most frequent in the corpus or the top K first, at most `max_bars`, the rest as 'other')."""
    values = sorted(set(top) | set(corpus), key=lambda v: (-max(top.get(v, 0.0), corpus.get(v, 0.0)), v))
    shown = values[:max_bars]
    top_shares = [top.get(v, 0.0) for v in shown]
    corpus_shares = [corpus.get(v, 0.0) for v in shown]
    rest_top, rest_corpus = 1.0 - sum(top_shares), 1.0 - sum(corpus_shares)
    if len(values) > max_bars or rest_top > 1e-9 or rest_corpus > 1e-9:
        shown, top_shares, corpus_shares = shown + ["other"], top_shares + [max(rest_top, 0.0)], corpus_shares + [
            max(rest_corpus, 0.0)]  # fmt: skip
    return shown, top_shares, corpus_shares


def plot_figure1(
    metadata: Mapping[tuple[int, int], Sequence[Mapping[str, Any]]],
    corpus_counts: Mapping[str, FieldCounts],
    fields: Sequence[str] = FIGURE1_FIELDS,
    max_bars: int = 8,
    features: str = "neurons",
):
    """Figure 1: per chosen neuron (rows) and field (columns: `fields` set anywhere in the corpus), bars of the top
    K's value shares beside the corpus's. `metadata` maps (layer, neuron) to its `METADATA_SCHEMA` rows; panels are
    titled with `neurotext.ids.unit_name` (`features` = the run's ``model.features``)."""
    import matplotlib.pyplot as plt

    shown_fields = [f for f in fields if corpus_counts[f].total > 0]
    neurons = list(metadata)
    n_rows, n_cols = max(len(neurons), 1), max(len(shown_fields), 1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols + 0.6, 2.6 * n_rows + 0.4), squeeze=False)
    for r, key in enumerate(neurons):
        for c, name in enumerate(shown_fields):
            ax = axes[r][c]
            rows = [row for row in metadata[key] if row["field"] == name]
            counts = corpus_counts[name]
            corpus = {v: int(n) / counts.total for v, n in zip(counts.values, counts.counts, strict=True)}
            top = {row["value"]: row["share_top"] for row in rows}
            values, top_shares, corpus_shares = _bars(top, corpus, max_bars)
            x = np.arange(len(values))
            ax.bar(x - 0.2, top_shares, width=0.4, label="top K", color="#d95f02")
            ax.bar(x + 0.2, corpus_shares, width=0.4, label="corpus", color="#7570b3")
            ax.set_xticks(x, values, rotation=40, ha="right", fontsize=7)
            ax.set_ylim(0, 1)
            n_top = rows[0]["n_top"] if rows else 0
            ax.set_title(f"{unit_name(*key, features)}: {name} ({n_top} top sentences with one)", fontsize=9)
            if c == 0:
                ax.set_ylabel("share")
            if r == 0 and c == n_cols - 1:
                ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def write_figure1(
    metadata_files: Mapping[int, PathLike],
    corpus_metadata: PathLike,
    neurons: Sequence[tuple[int, int]],
    png: PathLike,
    pdf: PathLike,
    features: str = "neurons",
) -> None:
    """Figure 1 for the chosen (layer, neuron) pairs from the merged ``profiles/metadata/layer{L}.parquet`` files."""
    use_agg()
    import matplotlib.pyplot as plt

    metadata = {}
    for layer, neuron in neurons:
        table = read_profile_metadata(metadata_files[layer], neurons=[neuron])
        metadata[(layer, neuron)] = table.to_pylist()
    fig = plot_figure1(metadata, read_corpus_metadata(corpus_metadata), features=features)
    try:
        save_figure(fig, png, pdf)
    finally:
        plt.close(fig)


def figure1(
    metadata: Sequence[PathLike],
    corpus_metadata: PathLike,
    layers: Sequence[int],
    neurons: Sequence[Sequence[int]],
    png: PathLike,
    pdf: PathLike,
    features: str = "neurons",
) -> None:
    """Rule entry: Figure 1 from the merged ``profiles/metadata/layer{L}.parquet`` files (`metadata[i]` is layer
    `layers[i]`) for the chosen (layer, neuron) pairs `neurons`; `features` = the run's ``model.features``."""
    write_figure1(dict(zip(layers, metadata, strict=True)), corpus_metadata, [tuple(pair) for pair in neurons], png,
                  pdf, features=features)  # fmt: skip
