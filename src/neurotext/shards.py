"""Corpus shards: a contiguous row range of a dataset's corpus, tokenized once (`shards/{dataset}/{shard}.parquet`).

Shard `s` of `n` holds rows ``[s * N // n, (s + 1) * N // n)`` of the corpus parquet (N rows, sorted by
sentence_id), so shard boundaries depend only on N and n. Columns: `formats.SHARD_SCHEMA` (token ids, per-token
character offsets, special-token mask, truncation flag), read back with `read_shard`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.config import ConfigError
from neurotext.encoder import Tokens, load_tokenizer, tokenize
from neurotext.formats import SHARD_SCHEMA
from neurotext.io import write_parquet

log = logging.getLogger("neurotext.shards")


def shard_bounds(n_rows: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Row range [start, end) of shard `shard` of `n_shards` over `n_rows` rows."""
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise ConfigError(f"shard {shard} of datasets.<name>.shards = {n_shards}: need 0 <= shard < shards")
    return shard * n_rows // n_shards, (shard + 1) * n_rows // n_shards


def read_corpus_rows(corpus: str | os.PathLike[str], start: int, end: int) -> pa.Table:
    """Columns sentence_id and text of rows [start, end) of a corpus parquet, reading only the row groups needed."""
    parquet = pq.ParquetFile(corpus)
    missing = {"sentence_id", "text"} - set(parquet.schema_arrow.names)
    if missing:
        raise ValueError(f"{corpus}: not a corpus file (missing columns {sorted(missing)})")
    pieces: list[pa.Table] = []
    first_row = 0
    for group in range(parquet.metadata.num_row_groups):
        group_rows = parquet.metadata.row_group(group).num_rows
        group_end = first_row + group_rows
        if group_end > start and first_row < end:
            table = parquet.read_row_group(group, columns=["sentence_id", "text"])
            pieces.append(table.slice(max(start - first_row, 0), min(end, group_end) - max(start, first_row)))
        first_row = group_end
    if not pieces:
        return pa.table(
            {"sentence_id": pa.array([], pa.uint32()), "text": pa.array([], pa.string())}
        )
    return pa.concat_tables(pieces)


def tokens_table(sentence_ids: np.ndarray, tokens: Tokens) -> pa.Table:
    """A `SHARD_SCHEMA` table from sentence ids and their `Tokens`."""
    offsets = pa.array(tokens.offsets.astype(np.int32))

    def lists(values: np.ndarray, value_type: pa.DataType) -> pa.Array:
        return pa.ListArray.from_arrays(offsets, pa.array(values, type=value_type))

    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(sentence_ids, dtype=np.uint32), pa.uint32()),
            lists(tokens.input_ids, pa.int32()),
            lists(tokens.char_start, pa.int32()),
            lists(tokens.char_end, pa.int32()),
            lists(tokens.special_mask, pa.bool_()),
            pa.array(tokens.truncated, pa.bool_()),
        ],
        schema=SHARD_SCHEMA,
    )


def make_shard(
    corpus: str,
    shard: int,
    n_shards: int,
    model_dir: str,
    max_length: int,
    out: str,
    config_hash: str,
) -> None:
    """Tokenize shard `shard` of `n_shards` of `corpus` with the fast tokenizer in `model_dir` and write `out`.

    Special tokens are added, sentences longer than `max_length` tokens (special tokens included) are truncated and
    counted in the log; an empty row range gives a valid empty file.
    """
    if not isinstance(max_length, int) or max_length < 3:
        raise ConfigError(f"model.max_length = {max_length!r}: an integer >= 3")
    n_rows = pq.ParquetFile(corpus).metadata.num_rows
    start, end = shard_bounds(n_rows, shard, n_shards)
    rows = read_corpus_rows(corpus, start, end)
    sentence_ids = rows.column("sentence_id").to_numpy().astype(np.uint32)
    if sentence_ids.size > 1 and not (np.diff(sentence_ids.astype(np.int64)) > 0).all():
        raise ValueError(f"{corpus}: rows {start}..{end} are not sorted by strictly increasing sentence_id")
    texts = rows.column("text").to_pylist()
    tokenizer = load_tokenizer(model_dir)
    tokens = tokenize(tokenizer, texts, max_length)
    n_truncated = int(tokens.truncated.sum())
    log.info(
        "shard %d/%d of %s: rows %d..%d, %d sentences, %d tokens, %d truncated at max_length %d",
        shard,
        n_shards,
        corpus,
        start,
        end,
        len(texts),
        len(tokens.input_ids),
        n_truncated,
        max_length,
    )
    write_parquet(tokens_table(sentence_ids, tokens), out, config_hash)


@dataclass
class Shard:
    """A shard read back: sentence_ids uint32 [n] and their `Tokens` (char offsets only when asked for)."""

    sentence_ids: np.ndarray
    tokens: Tokens

    @property
    def n_truncated(self) -> int:
        return int(self.tokens.truncated.sum())


def _flat_values(column: pa.ChunkedArray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64 [n + 1], flat values) of a list column."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(array) == 0:
        return np.zeros(1, dtype=np.int64), np.empty(0, dtype=dtype)
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    values = values[offsets[0] : offsets[-1]]
    return offsets - offsets[0], values


def read_shard(path: str | os.PathLike[str], with_offsets: bool = False) -> Shard:
    """Read a shard file into flat arrays (no Python object per token). `with_offsets` also loads char offsets."""
    columns = ["sentence_id", "input_ids", "special_mask", "truncated"]
    if with_offsets:
        columns += ["char_start", "char_end"]
    try:
        table = pq.read_table(path, columns=columns, use_threads=False)  # fewer allocator arenas: lower peak RSS
    except (pa.ArrowInvalid, KeyError, OSError) as error:
        raise ValueError(f"{path}: not a readable shard file ({error})") from error
    offsets, input_ids = _flat_values(table.column("input_ids"), np.int32)
    special_offsets, special = _flat_values(table.column("special_mask"), bool)
    if not np.array_equal(offsets, special_offsets):
        raise ValueError(f"{path}: input_ids and special_mask lists differ in length")
    if with_offsets:
        _, char_start = _flat_values(table.column("char_start"), np.int32)
        _, char_end = _flat_values(table.column("char_end"), np.int32)
    else:
        char_start = char_end = np.empty(0, dtype=np.int32)
    tokens = Tokens(
        offsets=offsets,
        input_ids=input_ids,
        special_mask=special,
        char_start=char_start,
        char_end=char_end,
        truncated=table.column("truncated").to_numpy().astype(bool),
    )
    return Shard(table.column("sentence_id").to_numpy().astype(np.uint32), tokens)
