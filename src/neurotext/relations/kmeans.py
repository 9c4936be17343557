"""k-means of one layer's neurons (scikit-learn, fixed seed, explicit n_init): the SSE sweep (``sse.csv``) and the
clusters at the config's k (``clusters_k{k}.parquet``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from neurotext.artifacts.relations import CLUSTERS_SCHEMA
from neurotext.logs import progress

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
