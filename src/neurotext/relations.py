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
"""

from __future__ import annotations

import csv
import io as _io
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from neurotext.config import ConfigError
from neurotext.formats import neuron_name
from neurotext.io import atomic_output, write_parquet, write_text
from neurotext.logs import progress

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

STANDARDIZE_CHOICES = ("zscore", "center", "none")
TSNE_BACKENDS = ("sklearn", "opentsne")
UNKNOWN_DOMAIN = "unknown"

#: `relations/layer{L}/clusters_k{k}.parquet`: one row per neuron.
CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),  # scikit-learn's label, 0..k-1
        pa.field("distance", pa.float64(), nullable=False),  # Euclidean distance to the cluster centre
        pa.field("constant", pa.bool_(), nullable=False),  # zero variance over the sample
    ]
)

#: `relations/layer{L}/tsne.parquet`: one row per neuron.
TSNE_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
    ]
)

#: `relations/layer{L}/overlap.parquet`: per neuron, its most overlapping partners (intersection > 0 only),
#: within the layer (other_layer = L, never itself) and with the next layer (other_layer = L + 1).
OVERLAP_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("other_layer", pa.int32(), nullable=False),
        pa.field("other_neuron", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),  # 0 = the most overlapping partner in other_layer
        pa.field("intersection", pa.int32(), nullable=False),  # sentences in both top-K sets
        pa.field("jaccard", pa.float64(), nullable=False),  # intersection / union
    ]
)

#: Fixed colours for the design's domains (tab10), so a domain keeps its colour across runs and configs; other
#: domains take the remaining tab10/tab20 colours in name order.
DOMAIN_COLOURS: dict[str, str] = {
    "book": "#1f77b4",
    "wiki": "#ff7f0e",
    "twitter": "#2ca02c",
    "review": "#d62728",
    "news": "#9467bd",
    "speech": "#8c564b",
}
_SPARE_COLOURS = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896")
UNKNOWN_COLOUR = "#c7c7c7"


# ---------------------------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class TsneSettings:
    """t-SNE of one layer's neurons: backend 'sklearn' or 'opentsne', perplexity (< number of neurons), seed,
    max_iter (total optimisation iterations, early exaggeration included)."""

    backend: str = "sklearn"
    perplexity: float = 30.0
    seed: int = 0
    max_iter: int = 1000


@dataclass(frozen=True)
class RelationsSettings:
    """The config's `relations` block, checked. Neuron ranges are 0-based and inclusive."""

    pooling: str = "cls"
    standardize: str = "zscore"
    k_min: int = 2
    k_max: int = 20
    k: int = 10
    n_init: int = 10
    max_iter: int = 300
    seed: int = 0
    threads: int = 1
    tsne: TsneSettings = field(default_factory=TsneSettings)
    top_pairs: int = 20
    figure2_neurons: tuple[int, int] = (301, 350)
    figure4_layer: int = 6

    @property
    def ks(self) -> list[int]:
        """The k values of the SSE sweep, k_min..k_max inclusive."""
        return list(range(self.k_min, self.k_max + 1))

    def layer_config(self) -> dict[str, Any]:
        """The keys the per-layer computation depends on (no figure keys), as a config block: the relations_layer
        rule's params, so changing a figure's range does not rerun k-means."""
        return {
            "pooling": self.pooling,
            "standardize": self.standardize,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "k": self.k,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "seed": self.seed,
            "tsne": {
                "backend": self.tsne.backend,
                "perplexity": self.tsne.perplexity,
                "seed": self.tsne.seed,
                "max_iter": self.tsne.max_iter,
            },
            "top_pairs": self.top_pairs,
        }

    @classmethod
    def from_config(cls, relations: Mapping[str, Any] | None) -> RelationsSettings:
        """Read and check the `relations` config block (missing keys take the defaults above)."""
        block = dict(relations or {})
        tsne_block = dict(block.get("tsne") or {})
        defaults = cls()
        tsne_defaults = TsneSettings()

        def integer(value: Any, key: str, minimum: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise ConfigError(f"relations.{key} = {value!r}: expected an integer >= {minimum}")
            return int(value)

        standardize = block.get("standardize", defaults.standardize)
        if standardize is True:  # accept the boolean spelling: true = z-score, false = raw activations
            standardize = "zscore"
        elif standardize is False:
            standardize = "none"
        if standardize not in STANDARDIZE_CHOICES:
            raise ConfigError(
                f"relations.standardize = {standardize!r}: choose one of {', '.join(STANDARDIZE_CHOICES)}"
            )
        backend = tsne_block.get("backend", tsne_defaults.backend)
        if backend not in TSNE_BACKENDS:
            raise ConfigError(f"relations.tsne.backend = {backend!r}: choose one of {', '.join(TSNE_BACKENDS)}")
        perplexity = tsne_block.get("perplexity", tsne_defaults.perplexity)
        if isinstance(perplexity, bool) or not isinstance(perplexity, int | float) or not perplexity > 0:
            raise ConfigError(f"relations.tsne.perplexity = {perplexity!r}: expected a number > 0")
        neurons = (block.get("figure2") or {}).get("neurons", list(defaults.figure2_neurons))
        if (
            not isinstance(neurons, list | tuple)
            or len(neurons) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in neurons)
            or not 0 <= neurons[0] <= neurons[1]
        ):
            raise ConfigError(
                f"relations.figure2.neurons = {neurons!r}: expected [first, last], 0-based and inclusive, "
                "first <= last (the paper's grid is [301, 350])"
            )
        settings = cls(
            pooling=str(block.get("pooling", defaults.pooling)),
            standardize=standardize,
            k_min=integer(block.get("k_min", defaults.k_min), "k_min", 1),
            k_max=integer(block.get("k_max", defaults.k_max), "k_max", 1),
            k=integer(block.get("k", defaults.k), "k", 1),
            n_init=integer(block.get("n_init", defaults.n_init), "n_init", 1),
            max_iter=integer(block.get("max_iter", defaults.max_iter), "max_iter", 1),
            seed=integer(block.get("seed", defaults.seed), "seed", 0),
            threads=integer(block.get("threads", defaults.threads), "threads", 1),
            tsne=TsneSettings(
                backend=backend,
                perplexity=float(perplexity),
                seed=integer(tsne_block.get("seed", tsne_defaults.seed), "tsne.seed", 0),
                max_iter=integer(tsne_block.get("max_iter", tsne_defaults.max_iter), "tsne.max_iter", 251),
            ),
            top_pairs=integer(block.get("top_pairs", defaults.top_pairs), "top_pairs", 1),
            figure2_neurons=(int(neurons[0]), int(neurons[1])),
            figure4_layer=integer(
                (block.get("figure4") or {}).get("layer", defaults.figure4_layer), "figure4.layer", 1
            ),
        )
        if settings.k_min > settings.k_max:
            raise ConfigError(f"relations.k_min = {settings.k_min} > relations.k_max = {settings.k_max}: swap them")
        return settings


def check_relations_config(
    relations: Mapping[str, Any] | None, n_layers: int, n_neurons: int, poolings: Iterable[str]
) -> RelationsSettings:
    """Check the `relations` block against the model (layers 1..n_layers, neurons 0..n_neurons-1) and the
    poolings the sample has; called when the workflow is built, so a bad value fails before any job runs."""
    settings = RelationsSettings.from_config(relations)
    available = sorted(set(poolings))
    if settings.pooling not in available:
        raise ConfigError(
            f"relations.pooling = {settings.pooling!r}: the sample has activations for {', '.join(available)} "
            "only (cls always, plus model.pooling)"
        )
    first, last = settings.figure2_neurons
    if last >= n_neurons:
        raise ConfigError(
            f"relations.figure2.neurons = [{first}, {last}]: the model has {n_neurons} neurons per layer, "
            f"numbered 0..{n_neurons - 1}; choose a range inside it"
        )
    if not 1 <= settings.figure4_layer <= n_layers:
        raise ConfigError(
            f"relations.figure4.layer = {settings.figure4_layer}: the model has layers 1..{n_layers} "
            "(0 = embeddings is never a target)"
        )
    check_points(settings, n_neurons)
    return settings


def check_points(settings: RelationsSettings, n_neurons: int) -> None:
    """k-means and t-SNE place the layer's neurons: k and the perplexity must stay below their number."""
    for key, value in (("k_max", settings.k_max), ("k", settings.k)):
        if value > n_neurons:
            raise ConfigError(
                f"relations.{key} = {value}: k-means clusters the layer's neurons and there are only {n_neurons}; "
                f"lower relations.{key} to at most {n_neurons}"
            )
    if settings.tsne.perplexity >= n_neurons:
        raise ConfigError(
            f"relations.tsne.perplexity = {settings.tsne.perplexity:g}: t-SNE needs it below the number of neurons "
            f"({n_neurons}); about n/3 or less is usual"
        )


# ---------------------------------------------------------------------------------------------------------------
# Neuron vectors


@dataclass(frozen=True)
class NeuronVectors:
    """Neurons as points: `vectors` float64 [n_neurons, n_sample] (row i = neuron i's activations over the sample
    after standardization); `constant` bool [n_neurons] marks neurons with zero variance over the sample."""

    vectors: np.ndarray
    constant: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.vectors.shape[0])


def load_sample_activations(path: PathLike) -> np.ndarray:
    """The sample's activations of one layer, float32 [n_sample, n_neurons]; errors name the file."""
    try:
        activations = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot read the sample activations ({error}); rerun the sample_activations rule"
        ) from error
    if activations.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array [n_sample, n_neurons], got shape {activations.shape}")
    if activations.shape[0] < 2:
        raise ConfigError(
            f"{path}: the sample has {activations.shape[0]} sentence(s); neurons need at least 2 to be compared: "
            "raise sample.size (or add sentences to the corpus)"
        )
    if not np.isfinite(activations).all():
        bad = np.argwhere(~np.isfinite(activations))[0]
        raise ValueError(
            f"{path}: non-finite activation at sample row {bad[0]}, neuron {bad[1]}; rerun the sample_activations "
            "rule (with scan.dtype float32 if it overflows)"
        )
    return activations


def neuron_vectors(activations: np.ndarray, standardize: str = "zscore") -> NeuronVectors:
    """Neurons as vectors of their activations over the sample.

    `activations`: [n_sample, n_neurons]. `standardize`: 'zscore' (each neuron centred and divided by its standard
    deviation over the sample, population form), 'center' (centred only) or 'none'. A constant neuron is centred
    only under 'zscore' (it becomes the zero vector) and flagged.
    """
    if standardize not in STANDARDIZE_CHOICES:
        raise ConfigError(f"relations.standardize = {standardize!r}: choose one of {', '.join(STANDARDIZE_CHOICES)}")
    vectors = np.asarray(activations, dtype=np.float64).T.copy()
    spread = vectors.max(axis=1) - vectors.min(axis=1)
    constant = spread == 0
    if standardize in ("zscore", "center"):
        vectors -= vectors.mean(axis=1, keepdims=True)
    if standardize == "zscore":
        std = vectors.std(axis=1, keepdims=True)
        std[constant] = 1.0
        vectors /= std
    return NeuronVectors(np.ascontiguousarray(vectors), constant)


# ---------------------------------------------------------------------------------------------------------------
# k-means


@dataclass(frozen=True)
class KMeansResult:
    """One k-means fit: `labels` int32 [n_neurons] (scikit-learn's), `distances` float64 [n_neurons] (Euclidean,
    to the centroid of the neuron's cluster), `sse` (sum of the squared distances), `n_iter` (Lloyd iterations of
    the best init)."""

    k: int
    labels: np.ndarray
    distances: np.ndarray
    sse: float
    n_iter: int


def partition_distances(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Euclidean distance of each row of `vectors` to the mean of its cluster, float64 [n].

    Computed with element-wise numpy operations in a fixed order (no BLAS), so the same partition always gives
    the same bits; scikit-learn's inertia differs from the squared sum in the last digits (its BLAS and OpenMP
    reductions depend on memory alignment and threads) and by at most its convergence tolerance.
    """
    counts = np.bincount(labels, minlength=k)
    centroids = np.zeros((k, vectors.shape[1]))
    np.add.at(centroids, labels, vectors)
    centroids /= np.maximum(counts, 1)[:, None]
    residual = vectors - centroids[labels]
    return np.sqrt(np.sum(residual * residual, axis=1))


def fit_kmeans(vectors: np.ndarray, k: int, n_init: int, seed: int, max_iter: int = 300) -> KMeansResult:
    """scikit-learn KMeans (k-means++, Lloyd, `n_init` restarts, random_state=`seed`) on the rows of `vectors`;
    SSE and distances recomputed from its partition (`partition_distances`)."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=max_iter, algorithm="lloyd")
    labels = model.fit_predict(vectors).astype(np.int32)
    distances = partition_distances(vectors, labels, k)
    return KMeansResult(k, labels, distances, float(np.sum(distances * distances)), int(model.n_iter_))


def kmeans_sweep(
    vectors: np.ndarray, ks: Sequence[int], n_init: int, seed: int, max_iter: int = 300, threads: int = 1
) -> dict[int, KMeansResult]:
    """k-means for each k in `ks`, with at most `threads` OpenMP/BLAS threads. Same inputs, same results."""
    from threadpoolctl import threadpool_limits

    results: dict[int, KMeansResult] = {}
    with threadpool_limits(limits=threads):
        for k in progress(list(ks), desc="k-means", unit="k"):
            results[k] = fit_kmeans(vectors, k, n_init, seed, max_iter)
    return results


def total_sum_of_squares(vectors: np.ndarray) -> float:
    """SSE of one cluster (k = 1): squared distances of the rows of `vectors` to their mean, summed (fixed-order
    numpy, no BLAS). With z-scored neurons it is about n_neurons x n_sample."""
    residual = vectors - vectors.mean(axis=0)
    return float(np.sum(residual * residual))


def sse_csv(results: Mapping[int, KMeansResult], total: float) -> str:
    """`sse.csv`: header k,sse,sse_fraction,n_iter; a row per k in increasing order. `sse_fraction` = SSE / the
    total sum of squares `total` (the share of the neurons' variance the clusters leave unexplained). Floats with
    17 significant digits."""
    lines = ["k,sse,sse_fraction,n_iter"] + [
        f"{k},{results[k].sse:.17g},{results[k].sse / total if total > 0 else 0.0:.17g},{results[k].n_iter}"
        for k in sorted(results)
    ]
    return "\n".join(lines) + "\n"


def read_sse(path: PathLike) -> pd.DataFrame:
    """Read an `sse.csv` (columns k, sse, sse_fraction, n_iter)."""
    table = pd.read_csv(path)
    missing = {"k", "sse"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not an sse.csv (missing columns {sorted(missing)}); rerun the relations_layer rule")
    return table


def clusters_table(result: KMeansResult, constant: np.ndarray) -> pa.Table:
    """The clusters file's table (`CLUSTERS_SCHEMA`), neurons in order."""
    return pa.table(
        {
            "neuron": np.arange(len(result.labels), dtype=np.int32),
            "cluster": result.labels.astype(np.int32),
            "distance": result.distances.astype(np.float64),
            "constant": np.asarray(constant, dtype=bool),
        },
        schema=CLUSTERS_SCHEMA,
    )


# ---------------------------------------------------------------------------------------------------------------
# t-SNE


def tsne_map(vectors: np.ndarray, settings: TsneSettings, threads: int = 1) -> np.ndarray:
    """2-D t-SNE coordinates of the rows of `vectors`, float32 [n, 2] (PCA initialisation, seeded).

    Backend 'sklearn': Barnes-Hut, learning rate 'auto'. Backend 'opentsne' (FFT-accelerated, for many neurons;
    needs the openTSNE package): the same perplexity and seed, 250 early-exaggeration iterations and the rest
    of max_iter after them.
    """
    n = vectors.shape[0]
    if settings.perplexity >= n:
        raise ConfigError(
            f"relations.tsne.perplexity = {settings.perplexity:g}: t-SNE needs it below the number of neurons ({n})"
        )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        if settings.backend == "opentsne":
            try:
                from openTSNE import TSNE as OpenTSNE
            except ImportError:
                raise ConfigError(
                    "relations.tsne.backend = 'opentsne' needs the openTSNE package (pip install openTSNE==1.0.4); "
                    "install it or set relations.tsne.backend: sklearn"
                ) from None
            embedding = OpenTSNE(
                n_components=2,
                perplexity=settings.perplexity,
                n_iter=settings.max_iter - 250,
                early_exaggeration_iter=250,
                initialization="pca",
                random_state=settings.seed,
                n_jobs=threads,
            ).fit(vectors)
            return np.asarray(embedding, dtype=np.float32)
        from sklearn.manifold import TSNE

        model = TSNE(
            n_components=2,
            perplexity=settings.perplexity,
            init="pca",
            learning_rate="auto",
            max_iter=settings.max_iter,
            random_state=settings.seed,
            n_jobs=threads,
        )
        return np.asarray(model.fit_transform(vectors), dtype=np.float32)


def tsne_table(coordinates: np.ndarray) -> pa.Table:
    """The t-SNE file's table (`TSNE_SCHEMA`), neurons in order."""
    return pa.table(
        {
            "neuron": np.arange(len(coordinates), dtype=np.int32),
            "x": coordinates[:, 0].astype(np.float32),
            "y": coordinates[:, 1].astype(np.float32),
        },
        schema=TSNE_SCHEMA,
    )


# ---------------------------------------------------------------------------------------------------------------
# Top-K overlap


@dataclass(frozen=True)
class TopKSets:
    """Each neuron's top-K sentence set as one row of a sparse 0/1 incidence matrix `incidence` (CSR, int32,
    [n_neurons, n_sentences]) whose columns index `sentence_ids` (uint32, sorted). `sizes` int64 [n_neurons]."""

    incidence: sp.csr_matrix
    sentence_ids: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.incidence.indptr).astype(np.int64)


def read_topk_pairs(path: PathLike, neurons: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(neuron int32, sentence_id uint32) of every row of a topk parquet, optionally for neurons first..last only."""
    filters = None if neurons is None else [("neuron", ">=", neurons[0]), ("neuron", "<=", neurons[1])]
    try:
        table = pq.read_table(path, columns=["neuron", "sentence_id"], filters=filters)
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{path}: cannot read the top-K table ({error}); rerun the merge_topk rule") from error
    neuron = table["neuron"].to_numpy().astype(np.int32)
    sentence = table["sentence_id"].to_numpy().astype(np.uint32)
    return neuron, sentence


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


# ---------------------------------------------------------------------------------------------------------------
# The per-layer rule


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
    settings = RelationsSettings.from_config(relations)
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


# ---------------------------------------------------------------------------------------------------------------
# Dominant domains


@dataclass(frozen=True)
class DomainLookup:
    """The corpus's domain of every sentence: `sentence_ids` uint32 sorted, `codes` int32 aligned with them,
    indexing `domains` (sorted names; a null domain is 'unknown')."""

    sentence_ids: np.ndarray
    codes: np.ndarray
    domains: tuple[str, ...]

    def shares(self) -> dict[str, float]:
        """Each domain's share of the corpus's sentences."""
        counts = np.bincount(self.codes, minlength=len(self.domains))
        return {name: float(c) / max(len(self.codes), 1) for name, c in zip(self.domains, counts)}


def read_domains(corpus_files: Sequence[PathLike]) -> DomainLookup:
    """Read sentence_id and domain of every corpus file (`corpus/{dataset}.parquet`)."""
    ids, names = [], []
    for path in corpus_files:
        try:
            table = pq.read_table(path, columns=["sentence_id", "domain"])
        except (OSError, pa.ArrowInvalid, KeyError) as error:
            raise ValueError(f"{path}: cannot read sentence_id and domain ({error}); rerun the corpus rules") from error
        ids.append(table["sentence_id"].to_numpy().astype(np.uint32))
        names.append(table["domain"].fill_null(UNKNOWN_DOMAIN).to_numpy(zero_copy_only=False).astype(object))
    sentence_ids = np.concatenate(ids) if ids else np.empty(0, np.uint32)
    domain_names = np.concatenate(names) if names else np.empty(0, object)
    domains, codes = np.unique(domain_names.astype(str), return_inverse=True)
    order = np.argsort(sentence_ids, kind="stable")
    sentence_ids, codes = sentence_ids[order], codes[order].astype(np.int32)
    if len(sentence_ids) > 1 and (np.diff(sentence_ids) == 0).any():
        dup = int(sentence_ids[np.flatnonzero(np.diff(sentence_ids) == 0)[0]])
        raise ValueError(f"sentence_id {dup} occurs twice in the corpus files {list(map(str, corpus_files))}")
    return DomainLookup(sentence_ids, codes, tuple(str(d) for d in domains))


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


# ---------------------------------------------------------------------------------------------------------------
# Figures


def domain_colours(domains: Sequence[str]) -> dict[str, str]:
    """A colour per domain: fixed for the design's domains, spare colours in name order for others."""
    spare = iter(_SPARE_COLOURS)
    colours = {}
    for name in sorted(domains):
        if name in DOMAIN_COLOURS:
            colours[name] = DOMAIN_COLOURS[name]
        elif name == UNKNOWN_DOMAIN:
            colours[name] = UNKNOWN_COLOUR
        else:
            colours[name] = next(spare, UNKNOWN_COLOUR)
    return colours


def shaded(colour: str, share: float) -> tuple[float, float, float]:
    """`colour` blended with white: share 1 -> the full colour, share 0 -> white (an empty cell is white)."""
    from matplotlib.colors import to_rgb

    if not np.isfinite(share):
        return (1.0, 1.0, 1.0)
    base = np.asarray(to_rgb(colour))
    return tuple(float(v) for v in 1.0 - share * (1.0 - base))


def grid_rgb(grid: DominantGrid) -> np.ndarray:
    """Figure 2's cell colours, float [n_layers, n_cols, 3]: the dominant domain's colour shaded by its share."""
    colours = domain_colours(grid.domains)
    rgb = np.ones(grid.dominant.shape + (3,))
    for (row, col), code in np.ndenumerate(grid.dominant):
        if code >= 0:
            rgb[row, col] = shaded(colours[grid.domains[code]], grid.share[row, col])
    return rgb


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_figure2(grid: DominantGrid):
    """Figure 2: a cell per (layer, neuron), colour = dominant domain of the neuron's top K, shade = its share;
    layer 1 at the bottom. Legend: the domains that are dominant somewhere, in name order."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    n_layers, width = grid.dominant.shape
    fig = _new_figure(max(6.0, 0.16 * width + 2.5), max(2.5, 0.32 * n_layers + 1.6))
    ax = fig.add_subplot()
    first, last = grid.neurons[0], grid.neurons[-1]
    ax.imshow(
        grid_rgb(grid), origin="lower", aspect="auto", interpolation="nearest",
        extent=(first - 0.5, last + 0.5, 0.5, n_layers + 0.5),
    )  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.set_yticks(range(1, n_layers + 1), [str(layer) for layer in grid.layers])
    ax.set_xlabel("neuron")
    ax.set_ylabel("layer")
    ax.set_title("Dominant domain of each neuron's top K (shade = its share)")
    colours = domain_colours(grid.domains)
    present = sorted({grid.domains[c] for c in grid.dominant.ravel() if c >= 0})
    handles = [Patch(facecolor=colours[name], label=name) for name in present]
    ax.legend(handles=handles, title="domain", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    shade = ScalarMappable(norm=Normalize(0.0, 1.0), cmap="Greys")
    fig.colorbar(shade, ax=ax, label="share of top K", location="bottom", shrink=0.35, aspect=25)
    return fig


def plot_figure3(sse_by_layer: Mapping[int, pd.DataFrame]):
    """Figure 3: k-means SSE against k, one line per layer (label 'layer L'), deeper layers darker."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    layers = sorted(sse_by_layer)
    cmap = colormaps["viridis"]
    for index, layer in enumerate(layers):
        table = sse_by_layer[layer].sort_values("k")
        colour = cmap(0.85 * (1.0 - index / max(len(layers) - 1, 1)))  # layer 1 light, the last dark
        ax.plot(
            table["k"].to_numpy(),
            table["sse"].to_numpy(),
            marker="o",
            markersize=3,
            color=colour,
            label=f"layer {layer}",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel("SSE (sum of squared distances to centres)")
    ax.set_title("k-means of each layer's neurons")
    ax.legend(ncols=2 if len(layers) > 6 else 1, fontsize="small", frameon=False)
    return fig


def plot_figure4(coordinates: pd.DataFrame, clusters: pd.DataFrame, layer: int):
    """Figure 4: the t-SNE map of one layer's neurons, one scatter series per cluster (label 'cluster c (n)')."""
    from matplotlib import colormaps

    merged = coordinates.merge(clusters[["neuron", "cluster"]], on="neuron", how="inner", validate="one_to_one")
    if len(merged) != len(coordinates) or len(merged) != len(clusters):
        raise ValueError(
            f"layer {layer}: the t-SNE and cluster files do not list the same neurons; rerun relations_layer"
        )
    k = int(clusters["cluster"].max()) + 1 if len(clusters) else 0
    fig = _new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    for cluster in range(k):
        members = merged[merged["cluster"] == cluster].sort_values("neuron")
        ax.scatter(
            members["x"].to_numpy(), members["y"].to_numpy(), s=10, color=cmap(cluster % cmap.N),
            label=f"cluster {cluster} ({len(members)})",
        )  # fmt: skip
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(f"Layer {layer}: t-SNE of {len(merged)} neurons, k-means k = {k}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, markerscale=1.5)
    return fig


def save_figure(fig, png: PathLike, pdf: PathLike) -> None:
    """Write `fig` as PNG (150 dpi) and PDF, atomically and without timestamps (same figure, same bytes)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "neurotext", "pdf.compression": 6}):
        with atomic_output(png) as tmp:
            fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
        with atomic_output(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None})


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)


def figure2(
    topk: Sequence[PathLike],
    layers: Sequence[int],
    corpus: Sequence[PathLike],
    neurons: Sequence[int],
    png: PathLike,
    pdf: PathLike,
) -> DominantGrid:
    """Rule entry: Figure 2 from every layer's top K (`topk[i]` is layer `layers[i]`) and the corpus, for neurons
    `neurons` = [first, last] (0-based, inclusive; `relations.figure2.neurons`)."""
    _use_agg()
    first, last = RelationsSettings.from_config({"figure2": {"neurons": list(neurons)}}).figure2_neurons
    grid = dominant_grid(dict(zip(layers, topk, strict=True)), read_domains(corpus), (first, last))
    save_figure(plot_figure2(grid), png, pdf)
    return grid


def figure3(sse: Sequence[PathLike], layers: Sequence[int], png: PathLike, pdf: PathLike) -> None:
    """Rule entry: Figure 3 from every layer's `sse.csv` (`sse[i]` is layer `layers[i]`)."""
    _use_agg()
    save_figure(plot_figure3({layer: read_sse(path) for layer, path in zip(layers, sse, strict=True)}), png, pdf)


def figure4(tsne: PathLike, clusters: PathLike, layer: int, png: PathLike, pdf: PathLike) -> None:
    """Rule entry: Figure 4 from one layer's `tsne.parquet` and `clusters_k{k}.parquet`."""
    _use_agg()
    fig = plot_figure4(pq.read_table(tsne).to_pandas(), pq.read_table(clusters).to_pandas(), layer)
    save_figure(fig, png, pdf)


# ---------------------------------------------------------------------------------------------------------------
# Summary


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
    cluster_table = pq.read_table(clusters, columns=["neuron", "cluster"]).to_pandas().sort_values("neuron")
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


def read_overlap(path: PathLike) -> pd.DataFrame:
    """Read an `overlap.parquet` as a DataFrame (`OVERLAP_SCHEMA`)."""
    return pq.read_table(path).to_pandas()


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
