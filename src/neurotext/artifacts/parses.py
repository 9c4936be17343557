"""Files of the parse stage (under ``results/{run}/``; docs/ARCHITECTURE.md, "Artifacts"):

* ``parses/targets.parquet`` (`TARGETS_SCHEMA`): the sentences to parse, the union of every top K and the sample.
* ``parses/{dataset}/{shard}.parquet`` (`PARSES_SCHEMA`): one row per target sentence of the shard, by id.
* the parse cache (``resources/parse_cache/...``, `CACHE_SCHEMA`): the parse columns keyed by text hash.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import check_all_found, isin

PathLike = str | os.PathLike[str]

#: `parses/{dataset}/{shard}.parquet`: one row per target sentence of the shard, sorted by sentence_id.
PARSES_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("tokens", pa.list_(pa.string()), nullable=False),  # as the parser splits them (spaces dropped)
        pa.field("char_start", pa.list_(pa.int32()), nullable=False),  # per token, offset into the corpus text
        pa.field("char_end", pa.list_(pa.int32()), nullable=False),  # per token, exclusive
        pa.field("tags", pa.list_(pa.string()), nullable=False),  # PTB tags, one per token
        pa.field("heads", pa.list_(pa.int32()), nullable=False),  # dependency head per token (-1 root); [] for constituency
        pa.field("tree", pa.string()),  # labels-only bracket tree; null when not parsed
        pa.field("parsed", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),  # why not parsed; null when parsed
    ]
)

#: `parses/targets.parquet`: the sentences to parse: the union of all top-K ids (base model) and the sample.
TARGETS_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("topk_count", pa.int32(), nullable=False),  # how many (layer, neuron) top-K sets hold it
        pa.field("in_sample", pa.bool_(), nullable=False),
    ]
)

#: Cache files: the parse columns keyed by the 64-bit text hash instead of the sentence id.
CACHE_SCHEMA = pa.schema([pa.field("text_hash", pa.uint64(), nullable=False), *list(PARSES_SCHEMA)[1:]])

#: The columns the patterns stage reads from the parse files.
MINED_COLUMNS: tuple[str, ...] = ("sentence_id", "tokens", "tags", "tree", "parsed", "reason")


def read_parse_rows(
    parse_files: Sequence[PathLike], wanted: np.ndarray, columns: Sequence[str] = MINED_COLUMNS
) -> pa.Table:
    """Rows of the parse files for the sentence ids `wanted` (sorted uint32), sorted by id; every id exactly once
    (a missing or repeated id is a ValueError naming it and the fix)."""
    columns = list(columns)
    pieces = []
    for path in parse_files:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"{path}: not a parse file (no columns {', '.join(missing)}); rerun the parse stage")
        pieces.append(pq.read_table(path, columns=columns, filters=isin("sentence_id", wanted)))
    table = pa.concat_tables(pieces).sort_by("sentence_id") if pieces else None
    found = table["sentence_id"].to_numpy() if table is not None else np.zeros(0, np.uint32)
    if found.size > 1 and np.any(found[1:] == found[:-1]):
        dup = int(found[1:][found[1:] == found[:-1]][0])
        raise ValueError(f"sentence {dup} has more than one row in the parse files {list(map(str, parse_files))}")
    check_all_found(wanted, found, "the parse files", "rerun the parse stage (parse_targets, parse_shard)")
    return table
