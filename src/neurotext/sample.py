"""The one random sample (docs/ARCHITECTURE.md, "Identifiers"): the `size` sentence ids with the smallest
splitmix64(sentence_id ^ seed) over the whole corpus. It is both the background against which patterns are scored
and the sentences whose activations relate neurons to each other. The choice of a sentence depends only on its id
and the seed, so it never changes with shards, cores or the other datasets' sizes (only with which ids exist).
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.ids import sample_order
from neurotext.io import write_parquet

log = logging.getLogger(__name__)


def smallest_scores(sentence_ids: np.ndarray, seed: int, size: int) -> np.ndarray:
    """The (at most) `size` ids of `sentence_ids` (uint32) with the smallest sampling scores, sorted by id."""
    if size >= len(sentence_ids):
        return np.sort(sentence_ids)
    scores = sample_order(sentence_ids, seed)
    chosen = np.argpartition(scores, size - 1)[:size]
    return np.sort(sentence_ids[chosen])


def draw_sample(corpus_files: list[str], sample: dict, out: str, config_hash: str = "") -> pa.Table:
    """Write `sample/sentences.parquet`: the sampled corpus rows (`CORPUS_SCHEMA`), sorted by sentence_id.

    `sample` is the config block {size, seed}. Memory: one dataset's sentence ids at a time plus the candidates.
    When the corpus has fewer sentences than `size`, every sentence is taken (and a warning logged).
    """
    size, seed = int(sample["size"]), int(sample["seed"])
    candidates = []
    for path in sorted(corpus_files):
        ids = pq.read_table(path, columns=["sentence_id"])["sentence_id"].to_numpy()
        candidates.append(smallest_scores(ids.astype(np.uint32), seed, size))
    all_candidates = np.concatenate(candidates) if candidates else np.empty(0, np.uint32)
    chosen = smallest_scores(all_candidates, seed, size)
    if len(chosen) < size:
        log.warning("sample.size = %d but the corpus has only %d sentences: taking them all", size, len(chosen))
    chosen_set = pa.array(chosen, type=pa.uint32())
    pieces = []
    for path in sorted(corpus_files):
        table = pq.read_table(path)
        pieces.append(table.filter(pc.is_in(table["sentence_id"], value_set=chosen_set)))
    table = pa.concat_tables(pieces).cast(CORPUS_SCHEMA) if pieces else CORPUS_SCHEMA.empty_table()
    table = table.sort_by("sentence_id")
    log.info("sample: %d sentences from %d datasets (seed %d)", table.num_rows, len(corpus_files), seed)
    write_parquet(table, out, config_hash)
    return table
