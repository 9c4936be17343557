"""Each layer's sentences gathered once (the ``patterns_sentences`` job): ``patterns/sentences/layer{L}.parquet``,
tokens, tags, tree and metadata of every sentence in the layer's top K or in the sample, so the range jobs never
scan every parse file."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from neurotext.artifacts.corpus import METADATA_FIELDS, read_metadata_rows
from neurotext.artifacts.parses import read_parse_rows
from neurotext.artifacts.patterns import SENTENCES_SCHEMA
from neurotext.artifacts.sample import read_sample_ids
from neurotext.artifacts.topk import read_topk_ids
from neurotext.io import write_parquet

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def gather_sentences(
    topk: PathLike,
    parse_files: Sequence[PathLike],
    corpus_files: Sequence[PathLike],
    sample: PathLike,
    out: PathLike,
    config_hash: str = "",
) -> pa.Table:
    """Write `SENTENCES_SCHEMA` for every sentence in the layer's top K (`topk`) or in the sample, sorted by id.

    Tokens, tags, tree and parse status come from the parse files, the metadata from the corpus files. A needed
    sentence missing from the parse files is an error (the parse stage covers every top-K and sample sentence).
    """
    top_ids = read_topk_ids(topk)
    sample_ids = read_sample_ids(sample)
    wanted = np.union1d(top_ids, sample_ids).astype(np.uint32)
    parses = read_parse_rows(parse_files, wanted)
    metadata = read_metadata_rows(corpus_files, wanted)
    in_sample = np.isin(wanted, sample_ids)
    columns = {
        "sentence_id": pa.array(wanted, pa.uint32()),
        "in_sample": pa.array(in_sample),
        **{name: parses[name] for name in ("tokens", "tags", "tree", "parsed", "reason")},
        **{name: metadata[name] for name in METADATA_FIELDS},
    }
    table = pa.table([columns[f.name] for f in SENTENCES_SCHEMA], schema=SENTENCES_SCHEMA)
    write_parquet(table, out, config_hash)
    n_parsed = int(pc.sum(table["parsed"]).as_py() or 0)
    log.info("%s: %d sentences (%d in the top K, %d in the sample), %d parsed",
             out, len(wanted), len(top_ids), int(in_sample.sum()), n_parsed)  # fmt: skip
    return table
