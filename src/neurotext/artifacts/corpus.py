"""The corpus: ``corpus/{dataset}.parquet`` (`CORPUS_SCHEMA`, one row per cleaned sentence, sorted by id) and the
per-part files ``corpus/{dataset}/part{p}.parquet`` (`PART_SCHEMA`, before ids are assigned).

See docs/ARCHITECTURE.md, "Artifacts" and "Identifiers".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]

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


def check_all_found(wanted: np.ndarray, found: np.ndarray, where: str, fix: str) -> None:
    """Raise ValueError naming the first missing ids of `wanted` not in `found` (both uint32), `where` and `fix`."""
    missing = np.setdiff1d(wanted, found)
    if missing.size:
        shown = ", ".join(str(int(x)) for x in missing[:5])
        raise ValueError(f"{missing.size} of {wanted.size} needed sentences have no row in {where} "
                         f"(sentence ids {shown}{' ...' if missing.size > 5 else ''}); {fix}")  # fmt: skip


def string_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A metadata column as strings (``year`` is int32 in the corpus)."""
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def isin(column: str, ids: np.ndarray) -> pc.Expression:
    """A parquet filter: `column` (uint32 sentence ids) in `ids`."""
    return pc.field(column).isin(pa.array(ids, pa.uint32()))


def read_metadata_rows(corpus_files: Sequence[PathLike], wanted: np.ndarray) -> pa.Table:
    """sentence_id and the `METADATA_FIELDS` (as strings) of the sentence ids `wanted` (uint32), sorted by id;
    every wanted id must be in some corpus file."""
    pieces = []
    for path in corpus_files:
        table = pq.read_table(path, columns=["sentence_id", *METADATA_FIELDS], filters=isin("sentence_id", wanted))
        columns = {"sentence_id": table["sentence_id"]}
        columns.update({name: string_column(table[name]) for name in METADATA_FIELDS})
        pieces.append(pa.table(columns))
    table = pa.concat_tables(pieces).sort_by("sentence_id")
    check_all_found(wanted, table["sentence_id"].to_numpy(), "the corpus files",
                    "the top K, sample and corpus must come from the same run")  # fmt: skip
    return table


#: The domain name given to sentences without one (`read_domains` with the default `null_as`).
UNKNOWN_DOMAIN = "unknown"


@dataclass(frozen=True)
class DomainLookup:
    """The corpus's domain of every sentence: `sentence_ids` uint32 sorted, `codes` int32 aligned with them,
    indexing `domains` (sorted names; -1 = no domain, only when built with ``null_as=None``)."""

    sentence_ids: np.ndarray
    codes: np.ndarray
    domains: tuple[str, ...]

    def shares(self) -> dict[str, float]:
        """Each domain's share of the corpus's sentences."""
        counts = np.bincount(self.codes[self.codes >= 0], minlength=len(self.domains))
        return {name: float(c) / max(len(self.codes), 1) for name, c in zip(self.domains, counts)}

    def counts(self) -> np.ndarray:
        """Sentences per domain over the corpus: int64 ``[len(domains)]``."""
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.domains)).astype(np.int64)

    def codes_of(self, sentence_ids: np.ndarray) -> np.ndarray:
        """Domain codes of `sentence_ids` (uint32 ``[n]``) -> int32 ``[n]``; -1 for an id in no corpus file."""
        ids = np.asarray(sentence_ids, dtype=np.uint32)
        out = np.full(ids.size, -1, np.int32)
        if not self.sentence_ids.size:
            return out
        position = np.minimum(np.searchsorted(self.sentence_ids, ids), self.sentence_ids.size - 1)
        found = self.sentence_ids[position] == ids
        out[found] = self.codes[position[found]]
        return out


def read_domains(corpus_files: Sequence[PathLike], null_as: str | None = UNKNOWN_DOMAIN) -> DomainLookup:
    """sentence_id and domain of every corpus file (``corpus/{dataset}.parquet``) as a `DomainLookup`; a null domain
    becomes the domain `null_as` (or code -1 when None). A repeated sentence id is an error."""
    ids, names = [], []
    for path in corpus_files:
        try:
            table = pq.read_table(path, columns=["sentence_id", "domain"])
        except (OSError, pa.ArrowInvalid, KeyError) as error:
            raise ValueError(f"{path}: cannot read sentence_id and domain ({error}); rerun the corpus rules") from error
        ids.append(table["sentence_id"].to_numpy().astype(np.uint32))
        column = table["domain"] if null_as is None else table["domain"].fill_null(null_as)
        names.append(column.to_numpy(zero_copy_only=False).astype(object))
    sentence_ids = np.concatenate(ids) if ids else np.empty(0, np.uint32)
    domain_names = np.concatenate(names) if names else np.empty(0, object)
    valid = np.array([name is not None for name in domain_names], dtype=bool)
    domains, codes = np.unique(domain_names[valid].astype(str), return_inverse=True)
    all_codes = np.full(domain_names.size, -1, np.int64)
    all_codes[valid] = codes
    order = np.argsort(sentence_ids, kind="stable")
    sentence_ids, all_codes = sentence_ids[order], all_codes[order].astype(np.int32)
    if len(sentence_ids) > 1 and (np.diff(sentence_ids) == 0).any():
        dup = int(sentence_ids[np.flatnonzero(np.diff(sentence_ids) == 0)[0]])
        raise ValueError(f"sentence_id {dup} occurs twice in the corpus files {list(map(str, corpus_files))}")
    return DomainLookup(sentence_ids, all_codes, tuple(str(d) for d in domains))


def read_corpus_rows(
    corpus_files: Sequence[PathLike],
    sentence_ids: np.ndarray,
    columns: Sequence[str] = ("sentence_id", "text"),
    missing: str = "error",
) -> pa.Table:
    """The corpus rows of `sentence_ids` (uint32, any order, repeats ignored), `columns` only (those a file lacks,
    other than sentence_id and text, are left out), sorted by sentence_id.

    Each file is read row group by row group, ids first: a group whose sentence_id statistics exclude every wanted
    id is skipped, and the other columns are read only for a group that holds one. An id in two rows is a ValueError; an id in no file is a ValueError when `missing` is ``"error"``,
    left out when ``"skip"``.
    """
    wanted = np.unique(np.asarray(sentence_ids, dtype=np.uint32))
    value_set = pa.array(wanted, pa.uint32())
    columns = list(dict.fromkeys(["sentence_id", *columns]))
    pieces = []
    for path in sorted(map(str, corpus_files)):
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        absent = [c for c in ("sentence_id", "text") if c in columns and c not in names]
        if absent:
            raise ValueError(f"{path}: not a corpus file (no column {absent[0]}); expected CORPUS_SCHEMA columns")
        present = [c for c in columns if c in names]
        id_column = names.index("sentence_id")
        for group in range(parquet.metadata.num_row_groups):
            stats = parquet.metadata.row_group(group).column(id_column).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = np.searchsorted(wanted, [stats.min, stats.max + 1])
                if lo == hi:
                    continue
            ids = parquet.read_row_group(group, columns=["sentence_id"])["sentence_id"]
            hit = pc.indices_nonzero(pc.is_in(ids, value_set=value_set))
            if len(hit):  # read the other columns of the group only when it holds a wanted id
                pieces.append(parquet.read_row_group(group, columns=present).take(hit))
    if not pieces:
        table = pa.table({c: pa.array([], CORPUS_SCHEMA.field(c).type) for c in columns if c in CORPUS_SCHEMA.names})
    else:
        table = pa.concat_tables(pieces, promote_options="default").sort_by("sentence_id")
    found = table["sentence_id"].to_numpy().astype(np.uint32)
    if found.size > 1 and np.any(found[1:] == found[:-1]):
        dup = int(found[1:][found[1:] == found[:-1]][0])
        raise ValueError(f"sentence id {dup} appears in two corpus rows of {sorted(map(str, corpus_files))}")
    if missing == "error":
        check_all_found(wanted, found, "the corpus files", "the top K, sample and corpus must come from the same run")
    return table


def read_texts(corpus_files: Sequence[PathLike], sentence_ids: np.ndarray, missing: str = "error") -> dict[int, str]:
    """{sentence_id: text} of `sentence_ids` (see `read_corpus_rows` for `missing`)."""
    table = read_corpus_rows(corpus_files, sentence_ids, ("sentence_id", "text"), missing)
    return dict(zip(table["sentence_id"].to_pylist(), table["text"].to_pylist(), strict=True))


def read_corpus_slice(corpus_path: PathLike, start: int, end: int, columns: Sequence[str] = ("sentence_id", "text")
                      ) -> pa.Table:  # fmt: skip
    """`columns` of rows ``[start, end)`` (positions, not ids) of one corpus file, reading only overlapping row
    groups."""
    corpus = pq.ParquetFile(corpus_path)
    missing = set(columns) - set(corpus.schema_arrow.names)
    if missing:
        raise ValueError(f"{corpus_path}: not a corpus file (missing columns {sorted(missing)})")
    pieces: list[pa.Table] = []
    offset = 0
    for group in range(corpus.num_row_groups):
        group_rows = corpus.metadata.row_group(group).num_rows
        lo, hi = max(start, offset), min(end, offset + group_rows)
        if lo < hi:
            table = corpus.read_row_group(group, columns=list(columns))
            pieces.append(table.slice(lo - offset, hi - lo))
        offset += group_rows
    if not pieces:
        return pa.table({c: pa.array([], CORPUS_SCHEMA.field(c).type) for c in columns})
    return pa.concat_tables(pieces).combine_chunks()
