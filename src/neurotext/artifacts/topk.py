"""Each neuron's top K sentences: ``topk/{model}/layer{L}.parquet`` (`TOPK_SCHEMA`), rank 0 = highest activation.

See docs/ARCHITECTURE.md, "Artifacts".
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

#: `topk/{model}/layer{L}.parquet`: each neuron's top K sentences, rank 0 = highest activation.
TOPK_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("activation", pa.float32(), nullable=False),
        pa.field("token_index", pa.int32(), nullable=False),  # index into the shard's input_ids (-1 if pooled)
        pa.field("char_start", pa.int32(), nullable=False),
        pa.field("char_end", pa.int32(), nullable=False),
    ]
)


def read_top_sentences(topk: PathLike, start: int, end: int) -> dict[int, np.ndarray]:
    """{neuron: its top sentence ids (uint32) by rank} for neurons ``start <= n < end`` present in `topk`."""
    expr = (pc.field("neuron") >= start) & (pc.field("neuron") < end)
    table = pq.read_table(topk, columns=["neuron", "rank", "sentence_id"], filters=expr)
    table = table.sort_by([("neuron", "ascending"), ("rank", "ascending")])
    neurons = table["neuron"].to_numpy()
    ids = table["sentence_id"].to_numpy().astype(np.uint32)
    bounds = np.flatnonzero(np.diff(neurons)) + 1
    return {int(chunk_neurons[0]): chunk_ids for chunk_neurons, chunk_ids in
            zip(np.split(neurons, bounds), np.split(ids, bounds), strict=True) if chunk_neurons.size}  # fmt: skip


def read_topk_ids(topk: PathLike) -> np.ndarray:
    """The distinct sentence ids (uint32, in first-seen order) of a top-K file."""
    return pc.unique(pq.read_table(topk, columns=["sentence_id"])["sentence_id"]).to_numpy()


def read_topk_pairs(path: PathLike, neurons: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(neuron int32, sentence_id uint32) of every row of a top-K file, optionally for neurons first..last only."""
    filters = None if neurons is None else [("neuron", ">=", neurons[0]), ("neuron", "<=", neurons[1])]
    try:
        table = pq.read_table(path, columns=["neuron", "sentence_id"], filters=filters)
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{path}: cannot read the top-K table ({error}); rerun the merge_topk rule") from error
    neuron = table["neuron"].to_numpy().astype(np.int32)
    sentence = table["sentence_id"].to_numpy().astype(np.uint32)
    return neuron, sentence


def read_topk(path: PathLike, neurons: Sequence[int] | None = None, max_rank: int | None = None,
              columns: Sequence[str] | None = None) -> pa.Table:  # fmt: skip
    """Rows of a top-K file (`TOPK_SCHEMA`, `columns` only when given), sorted by neuron then rank: all neurons or
    those in `neurons`, all ranks or those below `max_rank`."""
    expr = None
    if neurons is not None:
        expr = pc.field("neuron").isin(pa.array(list(neurons), pa.int32()))
    if max_rank is not None:
        below = pc.field("rank") < max_rank
        expr = below if expr is None else expr & below
    try:
        table = pq.read_table(path, columns=None if columns is None else list(columns), filters=expr)
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        raise ValueError(f"{path}: cannot read the top-K table ({error}); rerun the merge_topk rule") from error
    keys = [k for k in ("neuron", "rank") if k in table.column_names]
    return table.sort_by([(k, "ascending") for k in keys]) if keys else table
