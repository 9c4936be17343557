"""Records artifacts: the files under ``results/{run}/records/{model}/`` (written by `neurotext.records`), their
Arrow schemas and readers.

* ``histogram_edges.npz`` (`HISTOGRAM_EDGES_PATH`): per layer ``layer{L}`` float32 [n_neurons, bins + 1], each
  neuron's bin edges, fixed from the sample before the scan.
* ``hist_layer{L}.parquet`` (`HISTOGRAM_PATH`, `HISTOGRAM_SCHEMA`, `read_histograms`): each neuron's exact histogram
  of its pooled activation over the whole corpus.
* ``layer{L}.parquet`` (`RECORDS_PATH`, `RECORDS_SCHEMA`, `read_records`): token-level activations of each
  neuron's top sentences (kind ``top``) and its quantile-band samples (kind ``quantile``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

#: Path templates relative to ``results/{run}/``.
HISTOGRAM_EDGES_PATH = "records/{model}/histogram_edges.npz"
HISTOGRAM_PATH = "records/{model}/hist_layer{layer}.parquet"
RECORDS_PATH = "records/{model}/layer{layer}.parquet"

KINDS = ("top", "quantile")

#: `records/{model}/layer{L}.parquet`, rows sorted by (neuron, kind top first, band, rank).
RECORDS_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # top | quantile
        pa.field("band", pa.int16()),  # quantile band, 0 = lowest; null for top
        pa.field("quantile", pa.float32()),  # (rank + 0.5) / n of the sentence in the sample, ascending; null for top
        pa.field("rank", pa.int32(), nullable=False),  # top: rank in the top K (0 = highest); quantile: pick order
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("activation", pa.float32(), nullable=False),  # pooled (the run's pooling), recomputed here
        pa.field("truncated", pa.bool_(), nullable=False),  # the sentence had more than model.max_length tokens
        pa.field("token_char_start", pa.list_(pa.int32()), nullable=False),  # per text token, into the corpus text
        pa.field("token_char_end", pa.list_(pa.int32()), nullable=False),
        pa.field("token_activations", pa.list_(pa.float32()), nullable=False),
    ]
)

#: `records/{model}/hist_layer{L}.parquet`, one row per neuron.
HISTOGRAM_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("edges", pa.list_(pa.float32()), nullable=False),  # bins + 1, strictly increasing
        pa.field("counts", pa.list_(pa.int64()), nullable=False),  # bins; bin j = [edges[j], edges[j + 1])
        pa.field("underflow", pa.int64(), nullable=False),  # values < edges[0], and NaN
        pa.field("overflow", pa.int64(), nullable=False),  # values >= edges[bins]
        pa.field("n", pa.int64(), nullable=False),  # sentences counted (the corpus)
        pa.field("min", pa.float32()),  # over the corpus, NaN ignored; null when nothing was counted
        pa.field("max", pa.float32()),
    ]
)


def _read(path: PathLike, schema: pa.Schema, what: str, rule: str) -> pa.Table:
    """The table at `path` with exactly the columns of `schema` (in its order); errors name the file and the rule."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise ValueError(f"{path}: not a readable {what} file ({error}); rerun {rule}") from error
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(
            f"{path}: not a {what} file: no column {missing[0]} (has {', '.join(table.column_names)}); rerun {rule}"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"{path}: a {what} column has the wrong type ({error}); rerun {rule}") from error


def _flat(column: pa.ChunkedArray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets int64 [rows + 1], flat values [offsets[-1]])."""
    array = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.asarray(pc.list_flatten(array).to_numpy(zero_copy_only=False), dtype=dtype)
    return offsets, flat


def concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated ranges [starts[i], starts[i] + counts[i]) as one int64 array."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(total, dtype=np.int64)


@dataclass(frozen=True)
class LayerHistograms:
    """One layer's whole-corpus histograms (`HISTOGRAM_SCHEMA`), rows by neuron ascending.

    neuron int64 [H]; edges float32 [H, bins + 1] (equal bins up to float32 rounding); counts int64 [H, bins];
    underflow, overflow, n int64 [H]; minimum, maximum float64 [H] (NaN when nothing was counted)."""

    neuron: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    underflow: np.ndarray
    overflow: np.ndarray
    n: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    def __len__(self) -> int:
        return len(self.neuron)


def read_histograms(path: PathLike) -> LayerHistograms:
    """Read ``records/{model}/hist_layer{L}.parquet``; every neuron must have the same number of bins."""
    table = _read(path, HISTOGRAM_SCHEMA, "records histogram", "records_histograms").sort_by("neuron")
    rows = table.num_rows
    edge_offsets, edges = _flat(table["edges"], np.float32)
    count_offsets, counts = _flat(table["counts"], np.int64)
    n_edges = np.diff(edge_offsets)
    n_counts = np.diff(count_offsets)
    if rows and (np.any(n_edges != n_edges[0]) or np.any(n_counts != n_edges - 1)):
        raise ValueError(f"{path}: neurons have different numbers of bins, or counts that do not fit their edges; "
                         "rerun records_histograms")  # fmt: skip
    bins = int(n_counts[0]) if rows else 0

    def floats(name: str) -> np.ndarray:
        return table[name].to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN

    return LayerHistograms(
        neuron=table["neuron"].to_numpy().astype(np.int64),
        edges=edges.reshape(rows, bins + 1) if rows else np.zeros((0, 0), np.float32),
        counts=counts.reshape(rows, bins),
        underflow=table["underflow"].to_numpy().astype(np.int64),
        overflow=table["overflow"].to_numpy().astype(np.int64),
        n=table["n"].to_numpy().astype(np.int64),
        minimum=floats("min"),
        maximum=floats("max"),
    )


@dataclass(frozen=True)
class LayerRecords:
    """One layer's records (`RECORDS_SCHEMA`) in file order, with the token lists flat: row i owns tokens
    ``offsets[i]:offsets[i + 1]`` of `char_start`, `char_end` (int64, code point offsets into the corpus text) and
    `values` (float64, the neuron's activation at each token).

    neuron int64 [R]; kind list[str] [R] (`KINDS`); band int64 [R] (-1 for top); quantile float64 [R] (NaN for top);
    rank int64 [R]; sentence_id uint32 [R]; activation float64 [R] (pooled); truncated bool [R]."""

    neuron: np.ndarray
    kind: list[str]
    band: np.ndarray
    quantile: np.ndarray
    rank: np.ndarray
    sentence_id: np.ndarray
    activation: np.ndarray
    truncated: np.ndarray
    offsets: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.neuron)


def read_records(path: PathLike) -> LayerRecords:
    """Read ``records/{model}/layer{L}.parquet``; a row whose three token lists differ in length is an error."""
    table = _read(path, RECORDS_SCHEMA, "records", "records_layers")
    starts_at, starts = _flat(table["token_char_start"], np.int64)
    ends_at, ends = _flat(table["token_char_end"], np.int64)
    values_at, values = _flat(table["token_activations"], np.float64)
    bad = np.flatnonzero((np.diff(starts_at) != np.diff(ends_at)) | (np.diff(starts_at) != np.diff(values_at)))
    neuron = table["neuron"].to_numpy().astype(np.int64)
    sentence_id = table["sentence_id"].to_numpy().astype(np.uint32)
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: the row of neuron {neuron[i]}, sentence {sentence_id[i]} has token lists of "
                         "different lengths (starts, ends, activations); rerun records_layers")  # fmt: skip
    kinds = table["kind"].to_pylist()
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(
            f"{path}: unknown record kind {unknown[0]!r} (kinds: {', '.join(KINDS)}); rerun records_layers"
        )
    return LayerRecords(
        neuron=neuron,
        kind=kinds,
        band=pc.fill_null(table["band"], -1).to_numpy().astype(np.int64),
        quantile=table["quantile"].to_numpy(zero_copy_only=False).astype(np.float64),
        rank=table["rank"].to_numpy().astype(np.int64),
        sentence_id=sentence_id,
        activation=table["activation"].to_numpy().astype(np.float64),
        truncated=table["truncated"].to_numpy(zero_copy_only=False).astype(bool),
        offsets=starts_at,
        char_start=starts,
        char_end=ends,
        values=values,
    )
