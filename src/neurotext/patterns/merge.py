"""One layer's range files merged (the ``patterns_merge`` job): ``patterns/layer{L}.parquet``,
``profiles/layer{L}.parquet`` and ``profiles/metadata/layer{L}.parquet``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.io import write_parquet
from neurotext.mining import PATTERN_KINDS

PathLike = str | os.PathLike[str]
log = logging.getLogger("neurotext.patterns")


def merge_layer(
    range_files: Mapping[str, Sequence[PathLike]],
    patterns_out: PathLike,
    profiles_out: PathLike,
    metadata_out: PathLike,
    config_hash: str = "",
) -> None:
    """Concatenate one layer's range files: `range_files` maps each of `RANGE_OUTPUTS` to its files (any order).

    ``patterns_out`` gets the four pattern kinds with a leading ``kind`` column (rows by kind, then neuron, then
    rank); ``profiles_out`` the profiles and ``metadata_out`` the metadata rows, by neuron.
    """
    pieces = []
    for kind in PATTERN_KINDS:
        table = _concat_by_neuron(range_files[kind])
        pieces.append(table.add_column(0, "kind", pa.array([kind] * table.num_rows, pa.string())))
    patterns = pa.concat_tables(pieces)
    if patterns.num_rows == 0:
        log.warning("%s: no patterns for any neuron of the layer; with scan.k at or above the corpus's sentence count "
                    "the top K holds every sentence and nothing stands out: lower scan.k", patterns_out)  # fmt: skip
    write_parquet(patterns, patterns_out, config_hash)
    write_parquet(_concat_by_neuron(range_files["profile"]), profiles_out, config_hash)
    write_parquet(_concat_by_neuron(range_files["metadata"]), metadata_out, config_hash)


def _concat_by_neuron(files: Sequence[PathLike]) -> pa.Table:
    """Range files concatenated in neuron order (each file keeps its row order; ranges do not overlap)."""
    tables = [pq.read_table(path) for path in files]
    tables = [t.replace_schema_metadata(None) for t in tables]
    firsts = [t["neuron"][0].as_py() if t.num_rows else -1 for t in tables]
    order = sorted(range(len(tables)), key=lambda i: (firsts[i], str(files[i])))
    return pa.concat_tables([tables[i] for i in order]) if tables else pa.table({})
