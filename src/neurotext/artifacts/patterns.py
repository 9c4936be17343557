"""Files of the patterns stage (all under ``results/{run}/``; docs/ARCHITECTURE.md, "Artifacts"):

* ``patterns/corpus_metadata.parquet`` (`CORPUS_METADATA_SCHEMA`): the exact count of every metadata value over
  the whole corpus; read back as {field: `FieldCounts`} by `read_corpus_metadata`.
* ``patterns/sentences/layer{L}.parquet`` (`SENTENCES_SCHEMA`): tokens, tags, tree and metadata of every sentence
  in the layer's top K or in the sample.
* ``patterns/{kind}/layer{L}/n{start:05d}-{end:05d}.parquet``: per neuron range (end exclusive), the pattern kinds
  in `PATTERNS_SCHEMA`, ``metadata`` in `METADATA_SCHEMA`, ``profile`` in `profile_schema`.
* ``patterns/layer{L}.parquet``: the pattern kinds of a layer with a leading ``kind`` column (`MERGED_SCHEMA`);
  ``profiles/layer{L}.parquet`` (`profile_schema`); ``profiles/metadata/layer{L}.parquet`` (`METADATA_SCHEMA`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS, isin

PathLike = str | os.PathLike[str]

CORPUS_METADATA_SCHEMA = pa.schema(
    [
        pa.field("field", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),  # corpus sentences with this value
    ]
)

#: `patterns/sentences/layer{L}.parquet`: one row per sentence in the layer's top K or in the sample.
SENTENCES_SCHEMA = pa.schema(
    [
        pa.field("sentence_id", pa.uint32(), nullable=False),
        pa.field("in_sample", pa.bool_(), nullable=False),
        pa.field("tokens", pa.list_(pa.string()), nullable=False),
        pa.field("tags", pa.list_(pa.string()), nullable=False),
        pa.field("tree", pa.string()),
        pa.field("parsed", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),
        *[pa.field(name, pa.string()) for name in METADATA_FIELDS],  # year as its decimal string
    ]
)

#: `patterns/{kind}/layer{L}/n{start}-{end}.parquet` for the pattern kinds.
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

#: `patterns/layer{L}.parquet`: every pattern kind of a layer, `kind` first (rows by kind, then neuron, then rank).
MERGED_SCHEMA = pa.schema([pa.field("kind", pa.string()), *PATTERNS_SCHEMA])

#: `patterns/metadata/layer{L}/n*.parquet` and `profiles/metadata/layer{L}.parquet`.
METADATA_SCHEMA = pa.schema(
    [
        pa.field("neuron", pa.int32(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("count_top", pa.int32(), nullable=False),  # top sentences with this value
        pa.field("n_top", pa.int32(), nullable=False),  # top sentences where the field is set
        pa.field("share_top", pa.float64(), nullable=False),  # count_top / n_top
        pa.field("count_corpus", pa.int64(), nullable=False),  # corpus sentences with this value (top included)
        pa.field("n_corpus", pa.int64(), nullable=False),  # corpus sentences where the field is set
        pa.field("share_corpus", pa.float64(), nullable=False),  # count_corpus / n_corpus
        pa.field("z", pa.float64(), nullable=False),
        pa.field("lift", pa.float64(), nullable=False),
        pa.field("p", pa.float64(), nullable=False),
        pa.field("q", pa.float64(), nullable=False),
        pa.field("dominant", pa.bool_(), nullable=False),  # the field's most frequent value in the top K
    ]
)


def profile_schema(class_names: Sequence[str]) -> pa.Schema:
    """Schema of `profiles/layer{L}.parquet` (and the per-range profile files) for the configured word classes."""
    shares = []
    for name in class_names:
        shares += [pa.field(f"{name}_share", pa.float64(), nullable=False),  # tokens of the class / parsed tokens
                   pa.field(f"{name}_share_background", pa.float64(), nullable=False)]  # fmt: skip
    return pa.schema(
        [
            pa.field("neuron", pa.int32(), nullable=False),
            pa.field("summary", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),  # ok | too_few_top_sentences
            pa.field("n_top", pa.int32(), nullable=False),  # top sentences in the top-K file
            pa.field("n_top_tokenized", pa.int32(), nullable=False),  # ... with tokens (skip-n-grams)
            pa.field("n_top_parsed", pa.int32(), nullable=False),  # ... parsed (words, POS n-grams, subtrees)
            pa.field("n_top_unparsed", pa.int32(), nullable=False),  # n_top - n_top_parsed: left out of tag/tree kinds
            pa.field("n_background", pa.int32(), nullable=False),  # sample sentences with tokens, minus the overlap
            pa.field("n_background_parsed", pa.int32(), nullable=False),
            pa.field("n_background_unparsed", pa.int32(), nullable=False),  # sample minus overlap, not parsed
            pa.field("min_support", pa.int32(), nullable=False),  # threshold for n_top sentences
            pa.field("n_patterns", pa.int32(), nullable=False),  # kept rows over the four pattern kinds
            pa.field("n_significant", pa.int32(), nullable=False),  # candidates with q < q_max (before top_n)
            pa.field("dominant_domain", pa.string()),
            pa.field("dominant_domain_share", pa.float64(), nullable=False),  # NaN when no domain is set
            pa.field("dominant_domain_corpus_share", pa.float64(), nullable=False),
            *shares,  # NaN when no sentence is parsed
        ]
    )


def profile_class_names(profile_columns: Sequence[str]) -> list[str]:
    """The word classes of a profiles file, from its ``{class}_share_background`` columns (schema order)."""
    return [c[: -len("_share_background")] for c in profile_columns if c.endswith("_share_background")]


@dataclass(frozen=True)
class FieldCounts:
    """Corpus counts of one metadata field: `values` (sorted), int64 `counts` ``[n_values]``, `total` (set)."""

    values: tuple[str, ...]
    counts: np.ndarray
    index: Mapping[str, int]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def read_corpus_metadata(path: PathLike) -> dict[str, FieldCounts]:
    """``patterns/corpus_metadata.parquet`` as {field: FieldCounts} for every field of `METADATA_FIELDS`."""
    table = pq.read_table(path)
    missing = {f.name for f in CORPUS_METADATA_SCHEMA} - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: not a corpus metadata file (missing columns {sorted(missing)})")
    fields = np.asarray(table["field"].to_pylist(), dtype=object)
    values = np.asarray(table["value"].to_pylist(), dtype=object)
    counts = table["count"].to_numpy()
    result = {}
    for name in METADATA_FIELDS:
        mask = fields == name
        vals = tuple(values[mask].tolist())
        result[name] = FieldCounts(vals, counts[mask].astype(np.int64), {v: i for i, v in enumerate(vals)})
    return result


def read_sentences(path: PathLike, sentence_ids: np.ndarray | None = None, with_sample: bool = True) -> pa.Table:
    """Rows of ``patterns/sentences/layer{L}.parquet`` (`SENTENCES_SCHEMA`) sorted by sentence_id: those in
    `sentence_ids` (all when None), plus every sample sentence when `with_sample`."""
    if sentence_ids is None:
        table = pq.read_table(path)
    else:
        expr = isin("sentence_id", np.asarray(sentence_ids, np.uint32))
        table = pq.read_table(path, filters=(pc.field("in_sample") | expr) if with_sample else expr)
    return table.sort_by("sentence_id")


def _read_per_neuron(path: PathLike, required: Sequence[str], what: str, rule: str,
                     neurons: Sequence[int] | None, columns: Sequence[str] | None) -> pa.Table:  # fmt: skip
    """Rows of a per-layer file with a ``neuron`` column, all or those of `neurons`, in file order; a ValueError
    names the file, the missing columns and the rule to rerun."""
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid) as error:
        raise ValueError(f"{path}: cannot read the {what} ({error}); rerun the {rule} rule") from error
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"{path}: not a {what} file (no column {', '.join(missing)}); rerun the {rule} rule")
    expr = None if neurons is None else pc.field("neuron").isin(pa.array(list(neurons), pa.int32()))
    return pq.read_table(path, columns=None if columns is None else list(columns), filters=expr)


def read_patterns(path: PathLike, neurons: Sequence[int] | None = None,
                  columns: Sequence[str] | None = None) -> pa.Table:  # fmt: skip
    """Rows of ``patterns/layer{L}.parquet`` (`MERGED_SCHEMA`; per kind and neuron best first), all or those of
    `neurons`, in file order."""
    return _read_per_neuron(path, MERGED_SCHEMA.names, "merged patterns", "patterns_merge", neurons, columns)


def read_profiles(path: PathLike, neurons: Sequence[int] | None = None,
                  columns: Sequence[str] | None = None) -> pa.Table:  # fmt: skip
    """Rows of ``profiles/layer{L}.parquet`` (`profile_schema`, one per neuron), all or those of `neurons`."""
    required = [f.name for f in profile_schema(()) if f.name in ("neuron", "summary", "status", "n_top")]
    return _read_per_neuron(path, required, "profiles", "patterns_merge", neurons, columns)


def read_profile_metadata(path: PathLike, neurons: Sequence[int] | None = None) -> pa.Table:
    """Rows of ``profiles/metadata/layer{L}.parquet`` (`METADATA_SCHEMA`; per neuron and field, most frequent value
    first), all or those of `neurons`, in file order."""
    return _read_per_neuron(path, METADATA_SCHEMA.names, "profile metadata", "patterns_merge", neurons, None)
