"""Relations among neurons (paper section 4.3): neurons compared, clustered and mapped across layers.

Per layer (`relations/layer{L}/`):
- each neuron is a vector of its activations over the sample (`sample/base/{pooling}/layer{L}.npy`, float32
  [n_sample, n_neurons]), standardized per neuron as the config says;
- k-means (scikit-learn, fixed seed, explicit n_init, thread count from config) for k = k_min..k_max: `sse.csv`
  (columns k, sse, sse_fraction, n_iter; SSE = sum of squared Euclidean distances of the neurons to their
  cluster's centroid, in standardized activation units squared; sse_fraction = SSE / the total sum of squares);
- the cluster of every neuron at the config's k: `clusters_k{k}.parquet` (`CLUSTERS_SCHEMA`);
- a 2-D t-SNE map of the neurons (scikit-learn, or openTSNE for many neurons): `tsne.parquet` (`TSNE_SCHEMA`);
- Jaccard overlap of top-K sentence sets within the layer and with the next layer, each neuron's `top_pairs` most
  overlapping partners kept: `overlap.parquet` (`OVERLAP_SCHEMA`), computed as a sparse incidence product.

Across layers: Figure 2 (dominant domain of each neuron's top K, layers x a neuron range), Figure 3 (SSE against k,
a line per layer), Figure 4 (t-SNE of one layer coloured by cluster), and `relations/summary.csv`, the numbers
behind the paper's claims (per layer: how diverse the dominant domains are, how concentrated each neuron's top K
is, how much top-K sets overlap, whether overlapping neurons and clusters share a domain).

Threads: one per job is the default (`relations.threads: 1`); the rule runs layers in parallel instead. scikit-learn's
OpenMP threads spin while they wait, and on a shared or oversubscribed machine 2 threads ran k-means up to 50x
slower than 1. Outputs are the same bytes for any thread count.

Handling of odd input, by design:
- a constant neuron (zero variance over the sample) cannot be z-scored: it is centred only, i.e. it becomes the
  zero vector, it is flagged `constant` in the clusters file and counted in the log;
- a neuron whose top K is empty has no dominant domain (null, share NaN) and Jaccard 0 with every neuron;
- k larger than the number of neurons, a t-SNE perplexity not below it, a sample of fewer than 2 sentences, and a
  layer or neuron range outside the model: `ConfigError` naming the config key and the valid range.

Modules: settings (the config block), vectors (neurons as points), kmeans, tsne, overlap, layer (the per-layer job),
domains (dominant domain of each top K), figures (Figures 2-4), summary (``relations/summary.csv``). Schemas and
readers of the files: `neurotext.artifacts.relations`.
"""

from neurotext.artifacts.corpus import DomainLookup, read_domains
from neurotext.artifacts.relations import CLUSTERS_SCHEMA, OVERLAP_SCHEMA, TSNE_SCHEMA, read_overlap, read_sse
from neurotext.artifacts.topk import read_topk_pairs
from neurotext.relations.domains import DominantDomains, DominantGrid, dominant_domains, dominant_grid
from neurotext.relations.figures import (
    domain_colours,
    figure2,
    figure3,
    figure4,
    grid_rgb,
    plot_figure2,
    plot_figure3,
    plot_figure4,
    shaded,
)
from neurotext.relations.kmeans import (
    KMeansResult,
    clusters_table,
    fit_kmeans,
    kmeans_sweep,
    partition_distances,
    sse_csv,
    total_sum_of_squares,
)
from neurotext.relations.layer import relations_layer
from neurotext.relations.overlap import (
    TopKSets,
    jaccard_matrix,
    mean_pairwise_jaccard,
    overlap_table,
    top_overlap_pairs,
    topk_sets,
)
from neurotext.relations.settings import (
    STANDARDIZE_CHOICES,
    TSNE_BACKENDS,
    LayerRelationsSettings,
    RelationsSettings,
    TsneSettings,
    check_points,
    check_relations_config,
    figure2_range,
)
from neurotext.relations.summary import (
    LayerSummary,
    cluster_purity,
    entropy_bits,
    purity_baseline,
    relations_summary,
    summarize_layer,
    summary_csv,
)
from neurotext.relations.tsne import tsne_map, tsne_table
from neurotext.relations.vectors import NeuronVectors, load_sample_activations, neuron_vectors

__all__ = [
    "LayerRelationsSettings", "figure2_range",
    "CLUSTERS_SCHEMA", "OVERLAP_SCHEMA", "STANDARDIZE_CHOICES", "TSNE_BACKENDS", "TSNE_SCHEMA", "DomainLookup",
    "DominantDomains", "DominantGrid", "KMeansResult", "LayerSummary", "NeuronVectors", "RelationsSettings",
    "TopKSets", "TsneSettings", "check_points", "check_relations_config", "cluster_purity", "clusters_table",
    "domain_colours", "dominant_domains", "dominant_grid", "entropy_bits", "figure2", "figure3", "figure4",
    "fit_kmeans", "grid_rgb", "jaccard_matrix", "kmeans_sweep", "load_sample_activations", "mean_pairwise_jaccard",
    "neuron_vectors", "overlap_table", "partition_distances", "plot_figure2", "plot_figure3", "plot_figure4",
    "purity_baseline", "read_domains", "read_overlap", "read_sse", "read_topk_pairs", "relations_layer",
    "relations_summary", "shaded", "sse_csv", "summarize_layer", "summary_csv", "top_overlap_pairs", "topk_sets",
    "total_sum_of_squares", "tsne_map", "tsne_table",
]  # fmt: skip
