"""Token shards: ``shards/{dataset}/{shard}.parquet`` (`SHARD_SCHEMA`), the model tokenizer's output per sentence.

See docs/ARCHITECTURE.md, "Artifacts".
"""

from __future__ import annotations

import pyarrow as pa

#: `shards/{dataset}/{shard}.parquet`: token ids from the model's fast tokenizer, special tokens included.
SHARD_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("char_start", pa.list_(pa.int32()), nullable=False),  # per token; special tokens (0, 0)
        pa.field("char_end", pa.list_(pa.int32()), nullable=False),
        pa.field("special_mask", pa.list_(pa.bool_()), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
    ]
)
