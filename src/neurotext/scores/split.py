"""The explain/test split of a neuron's top K and the negatives (the second random sample).

Both depend only on sentence ids and seeds (`neurotext.ids.sample_order`, i.e. splitmix64(sentence_id ^ seed)), so
they never change with shards, cores, job ranges or the order sentences arrive in.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.ids import sample_order
from neurotext.io import write_parquet

log = logging.getLogger(__name__)

__all__ = ["draw_negatives", "explain_mask", "n_explain", "negative_ids"]


def n_explain(k: int, fraction: float) -> int:
    """Explain-part size for `k` top sentences: ``floor(fraction * k + 0.5)`` (80 of 100, 6 of 8)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"scores.explain_fraction = {fraction}: give a number strictly between 0 and 1")
    return min(k, int(math.floor(fraction * k + 0.5)))


def explain_mask(sentence_ids: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """bool ``[k]``: True for the explain part of one neuron's top sentences `sentence_ids` (uint32 ``[k]``, unique):
    the `n_explain` ids with the smallest splitmix64(sentence_id ^ seed); the rest are the test part."""
    ids = np.asarray(sentence_ids, dtype=np.uint32)
    if np.unique(ids).size != ids.size:
        raise ValueError("a neuron's top sentences must be distinct sentence ids")
    n = n_explain(ids.size, fraction)
    mask = np.zeros(ids.size, dtype=bool)
    if n:
        order = np.argsort(sample_order(ids, seed), kind="stable")
        mask[order[:n]] = True
    return mask


def negative_ids(corpus_ids: np.ndarray, sample_ids: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The negatives: among corpus ids not in the background sample, the `size` with the smallest
    splitmix64(sentence_id ^ seed), sorted (uint32). Disjoint from the sample by construction."""
    ids = np.setdiff1d(np.asarray(corpus_ids, np.uint32), np.asarray(sample_ids, np.uint32))
    if size >= ids.size:
        return np.sort(ids)
    chosen = np.argpartition(sample_order(ids, seed), size - 1)[:size]
    return np.sort(ids[chosen])


def draw_negatives(
    corpus_files: list[str], sample: str, size: int, seed: int, out: str, config_hash: str = ""
) -> pa.Table:
    """Write the negatives (``scores/negatives.parquet``): corpus rows (the corpus schema, like the sample's file,
    so the scan's `sample_activations` reads it), sorted by sentence_id. Memory: every corpus id once."""
    sample_ids = pq.read_table(sample, columns=["sentence_id"])["sentence_id"].to_numpy()
    corpus_ids = [pq.read_table(p, columns=["sentence_id"])["sentence_id"].to_numpy() for p in sorted(corpus_files)]
    all_ids = np.concatenate(corpus_ids) if corpus_ids else np.zeros(0, np.uint32)
    chosen = negative_ids(all_ids, sample_ids, size, seed)
    if chosen.size < size:
        log.warning("scores.negatives = %d but only %d corpus sentences are outside the sample: taking them all",
                    size, chosen.size)  # fmt: skip
    value_set = pa.array(chosen, pa.uint32())
    pieces = []
    for path in sorted(corpus_files):
        table = pq.read_table(path)
        pieces.append(table.filter(pc.is_in(table["sentence_id"], value_set=value_set)))
    table = pa.concat_tables(pieces).cast(CORPUS_SCHEMA) if pieces else CORPUS_SCHEMA.empty_table()
    table = table.sort_by("sentence_id").replace_schema_metadata(None)
    write_parquet(table, out, config_hash)
    log.info("negatives: %d sentences (seed %d), disjoint from the %d-sentence sample", table.num_rows, seed,
             sample_ids.size)  # fmt: skip
    return table
