"""Corpus shards: a contiguous row range of a dataset's corpus, tokenized once (`shards/{dataset}/{shard}.parquet`).

Shard `s` of `n` holds rows ``[s * N // n, (s + 1) * N // n)`` of the corpus parquet (N rows, sorted by
sentence_id), so shard boundaries depend only on N and n. Columns: `artifacts.shards.SHARD_SCHEMA` (token ids, per-token
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
from neurotext.artifacts.corpus import read_corpus_slice
from neurotext.artifacts.shards import SHARD_SCHEMA
from neurotext.io import write_parquet

log = logging.getLogger("neurotext.shards")


def shard_bounds(n_rows: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Row range [start, end) of shard `shard` of `n_shards` over `n_rows` rows."""
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise ConfigError(f"shard {shard} of datasets.<name>.shards = {n_shards}: need 0 <= shard < shards")
    return shard * n_rows // n_shards, (shard + 1) * n_rows // n_shards


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
    rows = read_corpus_slice(corpus, start, end)
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


def _list_parts(array: pa.Array, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(lengths int64 [n], flat values) of a list array, copied out of arrow memory."""
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]].astype(dtype, copy=True)
    return np.diff(offsets), values


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)


def read_shard(path: str | os.PathLike[str], with_offsets: bool = False, batch_rows: int = 2_048) -> Shard:
    """Read a shard file into flat numpy arrays (no Python object per token), `batch_rows` rows of arrow at a time
    with pre-buffering off, so that peak memory stays near the arrays' own size (about 5 bytes a token, 13 with
    char offsets): reading a whole large table at once costs several times that in decode buffers."""
    list_columns = ["input_ids", "special_mask"] + (["char_start", "char_end"] if with_offsets else [])
    dtypes = {"input_ids": np.int32, "special_mask": bool, "char_start": np.int32, "char_end": np.int32}
    lengths: dict[str, list[np.ndarray]] = {name: [] for name in list_columns}
    values: dict[str, list[np.ndarray]] = {name: [] for name in list_columns}
    sentence_ids: list[np.ndarray] = []
    truncated: list[np.ndarray] = []
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)
        for batch in parquet.iter_batches(
            batch_size=batch_rows, columns=["sentence_id", "truncated", *list_columns], use_threads=False
        ):
            sentence_ids.append(batch.column("sentence_id").to_numpy().astype(np.uint32))
            truncated.append(batch.column("truncated").to_numpy(zero_copy_only=False).astype(bool))
            for name in list_columns:
                column_lengths, column_values = _list_parts(batch.column(name), dtypes[name])
                lengths[name].append(column_lengths)
                values[name].append(column_values)
    except (pa.ArrowInvalid, KeyError, OSError) as error:
        raise ValueError(f"{path}: not a readable shard file ({error})") from error
    token_lengths = _concat(lengths["input_ids"], np.int64)
    for name in list_columns[1:]:
        if not np.array_equal(_concat(lengths[name], np.int64), token_lengths):
            raise ValueError(f"{path}: the {name} and input_ids lists differ in length")
    offsets = np.zeros(len(token_lengths) + 1, dtype=np.int64)
    np.cumsum(token_lengths, out=offsets[1:])
    empty = np.empty(0, dtype=np.int32)
    tokens = Tokens(
        offsets=offsets,
        input_ids=_concat(values["input_ids"], np.int32),
        special_mask=_concat(values["special_mask"], bool),
        char_start=_concat(values["char_start"], np.int32) if with_offsets else empty,
        char_end=_concat(values["char_end"], np.int32) if with_offsets else empty,
        truncated=_concat(truncated, bool),
    )
    return Shard(_concat(sentence_ids, np.uint32), tokens)
