"""The exact count of every corpus metadata value (the ``patterns_corpus_metadata`` job):
``patterns/corpus_metadata.parquet``, the corpus share of Figure 1 and of the metadata scores."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS, string_column
from neurotext.artifacts.patterns import CORPUS_METADATA_SCHEMA
from neurotext.io import write_parquet

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def count_corpus_metadata(corpus_files: Sequence[PathLike], out: PathLike, config_hash: str = "") -> pa.Table:
    """Write `CORPUS_METADATA_SCHEMA`: the exact sentence count of every (field, value) over all corpus files.

    Streams each file in batches of 2**20 rows, metadata columns only; rows sorted by field (in
    `METADATA_FIELDS` order) then value. Nulls are not values (they are not counted).
    """
    pieces: list[pa.Table] = []
    for path in corpus_files:
        parquet = pq.ParquetFile(path)
        missing = [name for name in METADATA_FIELDS if name not in parquet.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: not a corpus file (no metadata columns {', '.join(missing)})")
        for batch in parquet.iter_batches(batch_size=1 << 20, columns=list(METADATA_FIELDS)):
            for order, name in enumerate(METADATA_FIELDS):
                counts = pc.value_counts(string_column(batch.column(name)))
                values, numbers = counts.field("values"), counts.field("counts")
                keep = pc.is_valid(values)
                n = int(pc.sum(keep).as_py() or 0)
                pieces.append(pa.table({"order": pa.array(np.full(n, order, np.int32)), "value": values.filter(keep),
                                        "count": pc.cast(numbers.filter(keep), pa.int64())}))  # fmt: skip
    if pieces:
        table = pa.concat_tables(pieces).group_by(["order", "value"]).aggregate([("count", "sum")])
        table = table.sort_by([("order", "ascending"), ("value", "ascending")])
        fields = pa.array([METADATA_FIELDS[i] for i in table["order"].to_pylist()], pa.string())
        result = pa.table([fields, table["value"], table["count_sum"]], schema=CORPUS_METADATA_SCHEMA)
    else:
        result = CORPUS_METADATA_SCHEMA.empty_table()
    write_parquet(result, out, config_hash)
    log.info("corpus metadata: %d (field, value) counts from %d files", result.num_rows, len(corpus_files))
    return result
