"""The per-layer job (``relations_layer``): SSE sweep, clusters, t-SNE map and top-K overlap of one layer."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from neurotext.ids import neuron_name
from neurotext.io import write_parquet, write_text
from neurotext.relations.kmeans import clusters_table, kmeans_sweep, sse_csv, total_sum_of_squares
from neurotext.relations.overlap import overlap_table
from neurotext.relations.settings import LayerRelationsSettings, check_points
from neurotext.relations.tsne import tsne_map, tsne_table
from neurotext.relations.vectors import load_sample_activations, neuron_vectors

log = logging.getLogger("neurotext.relations")

PathLike = str | os.PathLike[str]

def relations_layer(
    sample: PathLike,
    topk: PathLike,
    topk_next: PathLike | None,
    layer: int,
    relations: Mapping[str, Any],
    threads: int,
    sse_out: PathLike,
    clusters_out: PathLike,
    tsne_out: PathLike,
    overlap_out: PathLike,
    config_hash: str = "",
) -> None:
    """Write one layer's `sse.csv`, `clusters_k{k}.parquet`, `tsne.parquet` and `overlap.parquet`.

    `sample`: the layer's sample activations (the config's pooling); `topk`/`topk_next`: this layer's and the
    next layer's top-K tables (None for the last layer); `threads`: OpenMP/BLAS threads for k-means and t-SNE.
    """
    settings = LayerRelationsSettings.from_config(relations)  # the rule's params: RelationsSettings.layer_config()
    activations = load_sample_activations(sample)
    n_sample, n_neurons = activations.shape
    check_points(settings, n_neurons)
    points = neuron_vectors(activations, settings.standardize)
    if points.constant.any():
        count = int(points.constant.sum())
        names = ", ".join(neuron_name(layer, int(i)) for i in np.flatnonzero(points.constant)[:10])
        log.warning(
            "layer %d: %d constant neuron(s) over the %d-sentence sample (%s%s): centred only (zero vectors)",
            layer, count, n_sample, names, ", ..." if count > 10 else "",
        )  # fmt: skip
    log.info("layer %d: %d neurons x %d sample sentences", layer, n_neurons, n_sample)
    overlap = overlap_table(topk, topk_next, layer, n_neurons, settings.top_pairs)  # checks the top K first
    log.info("layer %d: %d overlap pairs kept", layer, overlap.num_rows)
    ks = sorted(set(settings.ks) | {settings.k})
    fits = kmeans_sweep(points.vectors, ks, settings.n_init, settings.seed, settings.max_iter, threads)
    log.info("layer %d: k-means k=%d..%d done; t-SNE (%s)", layer, ks[0], ks[-1], settings.tsne.backend)
    coordinates = tsne_map(points.vectors, settings.tsne, threads)
    # everything computed: write the four files (each atomically)
    write_text(sse_out, sse_csv({k: fits[k] for k in settings.ks}, total_sum_of_squares(points.vectors)))
    write_parquet(clusters_table(fits[settings.k], points.constant), clusters_out, config_hash)
    write_parquet(tsne_table(coordinates), tsne_out, config_hash)
    write_parquet(overlap, overlap_out, config_hash)
