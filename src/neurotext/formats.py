"""Arrow schemas of the files stages exchange (DESIGN.md section 2). Stages read and write only these."""

from __future__ import annotations

import pyarrow as pa

#: Fixed, nullable metadata columns of every corpus row; anything else goes in `extra`.
METADATA_FIELDS: tuple[str, ...] = (
    "domain",
    "sentiment",
    "topic",
    "category",
    "author",
    "entity",
    "genre",
    "split",
    "year",
    "title",
)

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        *[pa.field(name, pa.int32() if name == "year" else pa.string()) for name in METADATA_FIELDS],
        pa.field("extra", pa.map_(pa.string(), pa.string())),
    ]
)

#: One row per cleaned sentence of a corpus part, before ids are assigned (`corpus/{dataset}/part{p}.parquet`).
PART_SCHEMA = pa.schema(
    [
        pa.field("doc_index", pa.int64(), nullable=False),  # position of the document in the source, 0-based
        pa.field("sentence_index", pa.int32(), nullable=False),  # position of the sentence in its document
        *[f for f in CORPUS_SCHEMA if f.name not in ("sentence_id",)],
    ]
)

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

#: `patterns/{kind}/layer{L}/n{start}-{end}.parquet`.
PATTERNS_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("pattern", pa.string(), nullable=False),
        pa.field("support_top", pa.int32(), nullable=False),
        pa.field("support_bg", pa.int32(), nullable=False),
        pa.field("occurrences", pa.int64(), nullable=False),
        pa.field("z", pa.float64(), nullable=False),
        pa.field("lift", pa.float64(), nullable=False),
        pa.field("p", pa.float64(), nullable=False),
        pa.field("q", pa.float64(), nullable=False),
    ]
)


def neuron_name(layer: int, neuron: int) -> str:
    """Global neuron name: layer 11 neuron 309 -> 'L11.309'."""
    return f"L{layer}.{neuron}"


def parse_neuron_name(name: str) -> tuple[int, int]:
    """'L11.309' -> (11, 309); raises ValueError naming the bad string."""
    try:
        layer_part, neuron_part = name.strip().split(".")
        if not layer_part.upper().startswith("L"):
            raise ValueError
        return int(layer_part[1:]), int(neuron_part)
    except ValueError:
        raise ValueError(f"{name!r} is not a neuron name; write it as L<layer>.<neuron>, e.g. L11.309") from None
