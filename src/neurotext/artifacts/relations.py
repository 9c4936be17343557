"""Files of the relations stage (under ``results/{run}/``; docs/ARCHITECTURE.md, "Artifacts"):

* ``relations/layer{L}/sse.csv``: k-means SSE per k (`SSE_COLUMNS`; `read_sse`).
* ``relations/layer{L}/clusters_k{k}.parquet`` (`CLUSTERS_SCHEMA`): the cluster of every neuron at the config's k.
* ``relations/layer{L}/tsne.parquet`` (`TSNE_SCHEMA`): a 2-D t-SNE map of the layer's neurons.
* ``relations/layer{L}/overlap.parquet`` (`OVERLAP_SCHEMA`; `read_overlap`): top-K overlap partners.
* ``relations/summary.csv``: one row per layer (`neurotext.relations.summary.LayerSummary`'s fields).
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

#: `relations/layer{L}/sse.csv` columns: k, SSE (squared standardized-activation units), SSE / total, iterations.
SSE_COLUMNS: tuple[str, ...] = ("k", "sse", "sse_fraction", "n_iter")

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


def read_sse(path: PathLike) -> pd.DataFrame:
    """Read an `sse.csv` (columns k, sse, sse_fraction, n_iter)."""
    table = pd.read_csv(path)
    missing = {"k", "sse"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not an sse.csv (missing columns {sorted(missing)}); rerun the relations_layer rule")
    return table


def read_overlap(path: PathLike) -> pd.DataFrame:
    """Read an `overlap.parquet` as a DataFrame (`OVERLAP_SCHEMA`)."""
    return pq.read_table(path).to_pandas()


def read_clusters(path: PathLike) -> pd.DataFrame:
    """Read a `clusters_k{k}.parquet` as a DataFrame (`CLUSTERS_SCHEMA`)."""
    return pq.read_table(path).to_pandas()


def read_tsne(path: PathLike) -> pd.DataFrame:
    """Read a `tsne.parquet` as a DataFrame (`TSNE_SCHEMA`)."""
    return pq.read_table(path).to_pandas()
