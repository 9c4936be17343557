"""Corpus stage: raw sources -> cleaned sentence parts -> one parquet per dataset with sentence ids -> stats, Table 1.

Files (DESIGN.md section 2):

- ``resources/punkt/{run}/{dataset}.json``: Punkt parameters (`train_punkt`), JSON, never pickled.
- ``corpus/{dataset}/part{p}.parquet`` (`formats.PART_SCHEMA`): the cleaned sentences of the documents with
  ``doc_index % parts == p`` (`build_part`); counts of drops and corrupt records in the schema metadata.
- ``corpus/{dataset}.parquet`` (`formats.CORPUS_SCHEMA`): parts in document order, within-dataset duplicates
  dropped (first occurrence wins), capped to whole documents, ids ``code << 27 | row`` (`merge_parts`).
- ``corpus/stats.tsv``, ``corpus/metadata_counts.tsv``, ``tables/table1.{md,csv}`` (`write_stats`).

`doc_index` counts every record the loader yields (documents and corrupt records alike), so fixing one corrupt
record never renumbers the others and every corrupt record is counted by exactly one part.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.cleaning import (
    DROP_REASONS,
    CleanConfig,
    clean_sentence,
    load_punkt,
    pretrained_punkt_parameters,
    punkt_parameters_to_json,
    split_sentences,
    train_punkt_parameters,
)
from neurotext.formats import CORPUS_SCHEMA, METADATA_FIELDS, PART_SCHEMA
from neurotext.ids import make_sentence_ids, splitmix64, text_hash64
from neurotext.io import write_json, write_parquet, write_parquet_batches, write_text
from neurotext.loaders.base import BadRecord, Document, SourceError, load_documents
from neurotext.logs import progress

log = logging.getLogger(__name__)

PART_STATS_KEY = b"neurotext.part_stats"
CORPUS_STATS_KEY = b"neurotext.corpus_stats"
#: Punkt training reads at most this many characters in all (~0.5M characters a CPU second), spread over the sampled
#: documents (at most PUNKT_MAX_CHARS_PER_DOC each: a whole book adds time, not knowledge).
PUNKT_TRAIN_CHARS_BUDGET = 10_000_000
PUNKT_MAX_CHARS_PER_DOC = 20_000
#: Pre-split documents (Brown) are never split by Punkt; their short training text only keeps the file valid.
PUNKT_PRESPLIT_CHARS_PER_DOC = 2_000
PUNKT_CHOICES = ("auto", "train", "english")
BATCH_ROWS = 65_536
HASH_CHUNK_ROWS = 1 << 18
SLICE_ROWS = 1 << 18  # rows per slice (and parquet row group) of a merged corpus file
BAD_RECORDS_SHOWN = 5
#: At most this many values per (dataset, field) in metadata_counts.tsv; the rest are summed into one row.
MAX_VALUES_PER_FIELD = 10_000
OTHER_VALUE = "*other*"
ALL_DATASETS = "*"


# --- Punkt -----------------------------------------------------------------------------------------------------


def _scores(indices: np.ndarray, seed: int) -> np.ndarray:
    """The seeded sampling score (uint64) of document indices: splitmix64(index ^ seed)."""
    return splitmix64(np.asarray(indices, dtype=np.uint64) ^ np.uint64(seed))


def _training_text(document: Document, max_chars: int) -> str:
    """The start of a document's text for Punkt training (pre-split documents: their sentences joined)."""
    if document.text is not None:
        return document.text[:max_chars]
    return " ".join(document.sentences or ())[: min(max_chars, PUNKT_PRESPLIT_CHARS_PER_DOC)]


def sample_training_texts(source: str, dataset: dict, n_docs: int, seed: int) -> list[str]:
    """Texts of the `n_docs` documents with the smallest splitmix64(doc_index ^ seed), in document order, each cut
    to its share of PUNKT_TRAIN_CHARS_BUDGET (1,000 to PUNKT_MAX_CHARS_PER_DOC characters). Streams the source;
    holds only the sample."""
    max_chars = min(PUNKT_MAX_CHARS_PER_DOC, max(1_000, PUNKT_TRAIN_CHARS_BUDGET // max(n_docs, 1)))
    heap: list[tuple[int, int, str]] = []  # (-score, doc_index, text): a max-heap of the kept scores
    block_scores = np.empty(0, dtype=np.uint64)
    for doc_index, item in enumerate(progress(load_documents(source, dataset), desc="punkt sample", unit="doc")):
        if doc_index % BATCH_ROWS == 0:
            block_scores = _scores(np.arange(doc_index, doc_index + BATCH_ROWS), seed)
        if not isinstance(item, Document):
            continue
        score = int(block_scores[doc_index % BATCH_ROWS])
        if len(heap) < n_docs:
            heapq.heappush(heap, (-score, doc_index, _training_text(item, max_chars)))
        elif score < -heap[0][0]:
            heapq.heapreplace(heap, (-score, doc_index, _training_text(item, max_chars)))
    return [text for _, _, text in sorted(heap, key=lambda entry: entry[1])]


def train_punkt(source: str, dataset: dict, corpus: dict, out: str) -> None:
    """Write the Punkt parameters of `dataset` to `out` (JSON).

    `corpus.punkt_model`: ``auto`` (default: NLTK's pretrained English model when its data is installed, else
    trained), ``train`` (always train here) or ``english`` (pretrained, an error when missing). Training is
    unsupervised (`PunktTrainer`) on a seeded sample of `corpus.punkt_train_docs` documents (`corpus.seed`).
    Pre-split sources (Brown) are trained on their joined sentences, so the file is always valid.
    """
    name = dataset.get("name", "?")
    choice = corpus.get("punkt_model") or "auto"
    if choice not in PUNKT_CHOICES:
        raise ValueError(f"corpus.punkt_model = {choice!r}: use one of {', '.join(PUNKT_CHOICES)}")
    if choice in ("auto", "english"):
        pretrained = pretrained_punkt_parameters("english")
        if pretrained is not None:
            log.info("%s: using NLTK's pretrained English Punkt model", name)
            write_json(out, punkt_parameters_to_json(pretrained, "pretrained:english"))
            return
        if choice == "english":
            raise ValueError(
                "corpus.punkt_model = 'english' but NLTK's punkt_tab data is not installed; run "
                "`python -m nltk.downloader punkt_tab` where the network allows, or set corpus.punkt_model: train"
            )
    n_docs = int(corpus.get("punkt_train_docs") or 5000)
    seed = int(corpus.get("seed") or 0)
    texts = sample_training_texts(source, dataset, n_docs, seed)
    params = train_punkt_parameters(texts)
    characters = sum(len(text) for text in texts)
    log.info(
        "%s: trained Punkt on %d documents (%d characters): %d abbreviations, %d collocations",
        name,
        len(texts),
        characters,
        len(params.abbrev_types),
        len(params.collocations),
    )
    write_json(out, punkt_parameters_to_json(params, "trained", documents=len(texts), characters=characters, seed=seed))


# --- parts -----------------------------------------------------------------------------------------------------


@dataclass
class PartStats:
    """Counts of one part (summed over parts for a dataset); stored as JSON in the parquet schema metadata."""

    documents: int = 0
    documents_without_sentences: int = 0
    sentences_split: int = 0
    sentences_kept: int = 0
    bad_records: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {reason: 0 for reason in DROP_REASONS})

    def add(self, other: PartStats) -> None:
        for name in ("documents", "documents_without_sentences", "sentences_split", "sentences_kept", "bad_records"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: bytes | str | None) -> PartStats:
        return cls(**json.loads(text)) if text else cls()


def metadata_defaults(dataset: dict) -> dict[str, Any]:
    """Dataset-level metadata defaults: the dataset config's keys that name a metadata field (e.g. `domain`)."""
    return {name: dataset[name] for name in METADATA_FIELDS if dataset.get(name) is not None}


class _PartRows:
    """Column buffers of PART_SCHEMA rows, flushed to record batches every BATCH_ROWS rows."""

    def __init__(self, dataset_name: str) -> None:
        self.dataset_name = dataset_name
        self.batches: list[pa.RecordBatch] = []
        self._reset()

    def _reset(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in PART_SCHEMA}

    def add_document(
        self,
        doc_index: int,
        document: Document,
        sentences: Sequence[tuple[int, str]],
        meta: dict[str, Any],
        extra: list[tuple[str, str]],
    ) -> None:
        """Append the kept `sentences` ((sentence_index, text) pairs) of one document."""
        columns = self.columns
        for sentence_index, text in sentences:
            columns["doc_index"].append(doc_index)
            columns["sentence_index"].append(sentence_index)
            columns["dataset"].append(self.dataset_name)
            columns["doc_id"].append(document.doc_id)
            columns["text"].append(text)
            for name in METADATA_FIELDS:
                columns[name].append(meta.get(name))
            columns["extra"].append(extra)
        if len(columns["text"]) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns["text"]:
            self.batches.append(pa.RecordBatch.from_pydict(self.columns, schema=PART_SCHEMA))
            self._reset()

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self.batches, schema=PART_SCHEMA)


def document_metadata(document: Document, defaults: dict[str, Any], where: str) -> tuple[dict, list]:
    """The fixed metadata columns (loader's value, else the dataset default) and the sorted `extra` pairs of one
    document; loader meta keys outside METADATA_FIELDS go to `extra`."""
    meta: dict[str, Any] = {}
    for name in METADATA_FIELDS:
        value = document.meta.get(name)
        meta[name] = defaults.get(name) if value is None else value
    if meta["year"] is not None:
        try:
            meta["year"] = int(meta["year"])
        except (TypeError, ValueError):
            raise SourceError(
                f"{where}: year {meta['year']!r} of document {document.doc_id!r} is not an integer"
            ) from None
    for name in METADATA_FIELDS:
        if name != "year" and meta[name] is not None:
            meta[name] = str(meta[name])
    extra = {str(key): str(value) for key, value in document.extra.items() if value is not None}
    for key, value in document.meta.items():
        if key not in METADATA_FIELDS and value is not None:
            extra.setdefault(str(key), str(value))
    return meta, sorted(extra.items())


def _too_many_bad(bad: list[BadRecord], count: int, limit: int, name: str, part: int, source: str) -> SourceError:
    shown = "\n".join(f"  {record.where}: {record.reason}" for record in bad[:BAD_RECORDS_SHOWN])
    return SourceError(
        f"datasets.{name} part {part}: more than corpus.max_bad_records = {limit} corrupt records in {source} "
        f"({count} so far); the first {min(len(bad), BAD_RECORDS_SHOWN)}:\n{shown}\n"
        "Fix or refetch the source, or raise corpus.max_bad_records if these records may be skipped"
    )


def build_part(source: str, punkt: str, dataset: dict, corpus: dict, part: int, out: str, config_hash: str) -> None:
    """Write part `part` of `dataset`: the cleaned sentences of its documents with doc_index % parts == part.

    Documents with `text` are split into sentences by the Punkt parameters in `punkt`; pre-split documents keep
    their sentences. Each sentence is cleaned (`neurotext.cleaning`, thresholds `corpus.clean`); dropped ones
    leave a gap in `sentence_index`. Corrupt records are logged and counted; past `corpus.max_bad_records` the job
    fails with a SourceError listing the first few (file and line). Memory: the part's kept sentences as arrow
    columns (about the text bytes plus ~100 bytes a sentence).
    """
    name = dataset.get("name", "?")
    parts = int(dataset.get("parts", 1))
    if not 0 <= part < parts:
        raise ValueError(f"part {part} out of range: datasets.{name}.parts = {parts}")
    tokenizer = load_punkt(punkt)
    clean = CleanConfig.from_config(corpus.get("clean"))
    max_bad = int(corpus.get("max_bad_records", 100))
    defaults = metadata_defaults(dataset)
    stats = PartStats()
    bad: list[BadRecord] = []
    rows = _PartRows(name)
    records = load_documents(source, {**dataset, "part": part, "parts": parts})  # loaders may skip other parts cheaply
    for doc_index, item in enumerate(progress(records, desc=f"{name} part {part}", unit="doc")):
        if doc_index % parts != part:
            continue
        if isinstance(item, BadRecord):
            stats.bad_records += 1
            if len(bad) < BAD_RECORDS_SHOWN:
                bad.append(item)
            log.warning("corrupt record skipped: %s: %s", item.where, item.reason)
            if stats.bad_records > max_bad:
                raise _too_many_bad(bad, stats.bad_records, max_bad, name, part, source)
            continue
        raw_sentences = item.sentences if item.sentences is not None else split_sentences(tokenizer, item.text or "")
        kept: list[tuple[int, str]] = []
        for sentence_index, raw in enumerate(raw_sentences):
            text, reason = clean_sentence(raw, clean)
            if reason is None:
                kept.append((sentence_index, text))
            else:
                stats.dropped[reason] += 1
        stats.documents += 1
        stats.sentences_split += len(raw_sentences)
        stats.sentences_kept += len(kept)
        if not kept:
            stats.documents_without_sentences += 1
            continue
        meta, extra = document_metadata(item, defaults, source)
        rows.add_document(doc_index, item, kept, meta, extra)
    table = rows.table()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), PART_STATS_KEY: stats.to_json()})
    log.info(
        "%s part %d: %d documents, %d of %d sentences kept, dropped %s, %d corrupt records",
        name,
        part,
        stats.documents,
        stats.sentences_kept,
        stats.sentences_split,
        stats.dropped,
        stats.bad_records,
    )
    write_parquet(table, out, config_hash)


# --- merge -----------------------------------------------------------------------------------------------------


def first_occurrences(hashes: np.ndarray) -> np.ndarray:
    """Boolean mask: True at the first occurrence of each hash value."""
    keep = np.zeros(len(hashes), dtype=bool)
    keep[np.unique(hashes, return_index=True)[1]] = True
    return keep


def document_scores(doc_ids: Sequence[str], seed: int) -> np.ndarray:
    """The cap's seeded order of documents: splitmix64(text_hash64(doc_id) ^ seed), uint64 (smallest first)."""
    return splitmix64(text_hash64(list(doc_ids)) ^ np.uint64(seed))


def choose_documents(scores: np.ndarray, sizes: np.ndarray, cap: int) -> np.ndarray:
    """Boolean mask over documents (in document order, with their `document_scores` and sentence counts): whole
    documents by increasing score (ties by position) while they fit, skipping one that would pass `cap` sentences
    (first fit), until `cap` is reached. When not even one document fits, the first in that order is taken (the
    caller cuts it)."""
    order = np.lexsort((np.arange(len(sizes)), scores))
    chosen = np.zeros(len(sizes), dtype=bool)
    total = 0
    for document in order:
        size = int(sizes[document])
        if total + size <= cap:
            chosen[document] = True
            total += size
            if total == cap:
                break
    if total == 0 and len(order):
        chosen[order[0]] = True
    return chosen


@dataclass
class _PartIndex:
    """What the merge keeps of the parts in memory (pass 1): per row, in part order (parts concatenated), its
    doc_index, sentence_index and text hash; per document, its doc_index and cap score."""

    doc_index: np.ndarray  # int64 [rows]
    sentence_index: np.ndarray  # int32 [rows]
    hashes: np.ndarray  # uint64 [rows]
    part_starts: np.ndarray  # int64 [parts + 1]: first row of each part in the concatenation
    document_index: np.ndarray  # int64 [documents], sorted
    document_score: np.ndarray  # uint64 [documents]
    stats: PartStats


def _index_parts(parts: Sequence[str], seed: int, name: str) -> _PartIndex:
    """Pass 1: stream every part's doc_index, sentence_index, doc_id and text; check each part is in document order."""
    doc_index, sentence_index, hashes, documents, scores = [], [], [], [], []
    part_starts = [0]
    stats = PartStats()
    for path in parts:
        try:
            part = pq.ParquetFile(path)
            stats.add(PartStats.from_json((part.schema_arrow.metadata or {}).get(PART_STATS_KEY)))
            previous = (-1, -1)
            batches = part.iter_batches(
                batch_size=HASH_CHUNK_ROWS, columns=["doc_index", "sentence_index", "doc_id", "text"]
            )
            for batch in batches:
                docs = batch.column("doc_index").to_numpy().astype(np.int64)
                sentences = batch.column("sentence_index").to_numpy().astype(np.int32)
                keys = np.stack([np.concatenate([[previous[0]], docs]), np.concatenate([[previous[1]], sentences])])
                if np.any(
                    (keys[0, 1:] < keys[0, :-1]) | ((keys[0, 1:] == keys[0, :-1]) & (keys[1, 1:] <= keys[1, :-1]))
                ):
                    raise ValueError(f"{path}: rows are not in (doc_index, sentence_index) order; rebuild this part")
                starts = np.flatnonzero(docs != keys[0, :-1])
                documents.append(docs[starts])
                scores.append(document_scores(batch.column("doc_id").take(pa.array(starts)).to_pylist(), seed))
                doc_index.append(docs)
                sentence_index.append(sentences)
                hashes.append(text_hash64(batch.column("text").to_pylist()))
                previous = (int(docs[-1]), int(sentences[-1]))
            part_starts.append(part_starts[-1] + part.metadata.num_rows)
        except (OSError, pa.ArrowException, KeyError) as error:
            raise SourceError(f"{path}: cannot read the corpus part ({error}); delete it and rerun") from error
    if len(parts) == 0:
        raise ValueError(f"datasets.{name}: no parts to merge")
    document_index = np.concatenate(documents) if documents else np.zeros(0, np.int64)
    document_order = np.argsort(document_index, kind="stable")
    document_index = document_index[document_order]
    if np.any(document_index[1:] == document_index[:-1]):
        raise ValueError(f"datasets.{name}: a doc_index occurs in two parts; rebuild the parts of this dataset")
    concat = lambda arrays, dtype: np.concatenate(arrays) if arrays else np.zeros(0, dtype)  # noqa: E731
    return _PartIndex(
        doc_index=concat(doc_index, np.int64),
        sentence_index=concat(sentence_index, np.int32),
        hashes=concat(hashes, np.uint64),
        part_starts=np.asarray(part_starts, dtype=np.int64),
        document_index=document_index,
        document_score=concat(scores, np.uint64)[document_order],
        stats=stats,
    )


def cap_rows(index: _PartIndex, rows: np.ndarray, cap: int, name: str) -> np.ndarray:
    """Cap `rows` (positions in the part concatenation, in document order) to whole documents, at most `cap`
    sentences, chosen by `choose_documents`; the result stays in document order."""
    documents, sizes = np.unique(index.doc_index[rows], return_counts=True)
    scores = index.document_score[np.searchsorted(index.document_index, documents)]
    chosen = choose_documents(scores, sizes, cap)
    rows = rows[np.repeat(chosen, sizes)]
    if len(rows) > cap:
        log.warning(
            "%s: no whole document fits corpus.max_sentences_per_dataset = %d; kept the first %d sentences "
            "of one document",
            name,
            cap,
            cap,
        )
        rows = rows[:cap]
    log.info("%s: cap %d kept %d of %d documents, %d sentences", name, cap, int(chosen.sum()), len(sizes), len(rows))
    return rows


class _PartCursor:
    """Pass 2: reads one part front to back and hands out rows by increasing position, holding only the batches
    between the last row handed out and the next one asked for."""

    COLUMNS = [name for name in CORPUS_SCHEMA.names if name != "sentence_id"]

    def __init__(self, path: str) -> None:
        self.batches = pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=self.COLUMNS)
        self.buffer: list[pa.RecordBatch] = []
        self.offset = 0  # position in the part of the buffer's first row

    def take(self, positions: np.ndarray) -> pa.Table:
        """Rows at `positions` (increasing, at or after the previous call's) of the part."""
        buffered_end = self.offset + sum(batch.num_rows for batch in self.buffer)
        while buffered_end <= positions[-1]:
            batch = next(self.batches)
            self.buffer.append(batch)
            buffered_end += batch.num_rows
        while self.buffer and self.offset + self.buffer[0].num_rows <= positions[0]:
            self.offset += self.buffer.pop(0).num_rows
        table = pa.Table.from_batches(self.buffer)
        return table.take(pa.array(positions - self.offset))


def _corpus_slices(
    parts: Sequence[str],
    index: _PartIndex,
    rows: np.ndarray,
    sentence_ids: np.ndarray,
) -> Iterator[pa.Table]:
    """Pass 2: CORPUS_SCHEMA tables of `rows` (with their ids), SLICE_ROWS rows at a time, one chunk each."""
    cursors = [_PartCursor(path) for path in parts]
    for start in range(0, len(rows), SLICE_ROWS):
        chunk = rows[start : start + SLICE_ROWS]
        part_of = np.searchsorted(index.part_starts, chunk, side="right") - 1
        pieces, positions = [], []
        for part in np.unique(part_of):
            where = np.flatnonzero(part_of == part)
            pieces.append(cursors[part].take(chunk[where] - index.part_starts[part]))
            positions.append(where)
        table = pa.concat_tables(pieces).take(pa.array(np.argsort(np.concatenate(positions), kind="stable")))
        table = table.add_column(0, "sentence_id", pa.array(sentence_ids[start : start + SLICE_ROWS]))
        yield table.cast(CORPUS_SCHEMA).combine_chunks()
        pa.default_memory_pool().release_unused()


def merge_parts(parts: Sequence[str], dataset: dict, corpus: dict, out: str, config_hash: str) -> None:
    """Merge the parts of `dataset` into the dataset's corpus file (CORPUS_SCHEMA, sorted by sentence_id).

    Steps: order rows by (doc_index, sentence_index); drop sentences whose `ids.text_hash64` was seen before in
    this dataset; cap to `corpus.max_sentences_per_dataset` whole documents (`choose_documents`, seed
    `corpus.seed`; null = no cap); number the rows in document order: sentence_id = code << 27 | row.
    Two passes over the parts: the first keeps ~45 bytes a sentence (positions, hashes, order, masks) and a few
    per document; the second streams the rows out in slices of SLICE_ROWS. Memory is thus about 50 bytes a
    sentence plus a few hundred MB whatever the text length: ~2 GB for the paper's 40M-sentence datasets.
    """
    name = dataset.get("name", "?")
    index = _index_parts(parts, int(corpus.get("seed", 0)), name)
    order = np.lexsort((index.sentence_index, index.doc_index))
    rows = order[first_occurrences(index.hashes[order])]
    del order
    duplicates = len(index.hashes) - len(rows)
    before_cap = len(rows)
    cap = corpus.get("max_sentences_per_dataset")
    if cap is not None and len(rows) > int(cap):
        rows = cap_rows(index, rows, int(cap), name)
    sentence_ids = make_sentence_ids(int(dataset["code"]), np.arange(len(rows)), name)
    summary = {
        **index.stats.__dict__,
        "duplicates_removed": duplicates,
        "sentences_before_cap": before_cap,
        "sentences": len(rows),
        "documents": len(np.unique(index.doc_index[rows])),
    }
    schema = CORPUS_SCHEMA.with_metadata({CORPUS_STATS_KEY: json.dumps(summary, sort_keys=True)})
    log.info("%s: %d sentences (%d duplicates removed, %d before the cap)", name, len(rows), duplicates, before_cap)
    write_parquet_batches(_corpus_slices(parts, index, rows, sentence_ids), schema, out, config_hash)


# --- stats -----------------------------------------------------------------------------------------------------

STATS_COLUMNS = (
    "dataset",
    "sentences",
    "documents",
    "domains",
    "fields",
    "extra_fields",
    "mean_words",
    "mean_chars",
    "duplicates_removed",
    "sentences_before_cap",
    "dropped_sentences",
    "bad_records",
)
COUNTS_COLUMNS = ("dataset", "field", "value", "count", "n_values", "share_all", "share_field")


@dataclass
class DatasetStats:
    """One row of stats.tsv (see `write_stats`)."""

    dataset: str
    sentences: int
    documents: int
    domains: list[str]
    fields: list[str]
    extra_fields: list[str]
    mean_words: float
    mean_chars: float
    duplicates_removed: int
    sentences_before_cap: int
    dropped_sentences: int
    bad_records: int

    def row(self) -> list[str]:
        return [
            self.dataset,
            str(self.sentences),
            str(self.documents),
            ",".join(self.domains),
            ",".join(self.fields),
            ",".join(self.extra_fields),
            f"{self.mean_words:.2f}",
            f"{self.mean_chars:.2f}",
            str(self.duplicates_removed),
            str(self.sentences_before_cap),
            str(self.dropped_sentences),
            str(self.bad_records),
        ]


def _value_counts(column: pa.Array) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in pc.value_counts(column.drop_null()).to_pylist():
        counts[str(entry["values"])] += int(entry["counts"])
    return counts


def dataset_stats(path: str) -> tuple[DatasetStats, dict[str, Counter[str]]]:
    """Stats of one corpus file and the value counts of each metadata field (non-null values, as strings); reads the
    file SLICE_ROWS rows at a time."""
    corpus_file = pq.ParquetFile(path)
    summary = json.loads((corpus_file.schema_arrow.metadata or {}).get(CORPUS_STATS_KEY, b"{}"))
    counts: dict[str, Counter[str]] = {field_name: Counter() for field_name in METADATA_FIELDS}
    names: set[str] = set()
    extra_keys: set[str] = set()
    n = words = chars = 0
    columns = ["dataset", "text", "extra", *METADATA_FIELDS]
    for batch in corpus_file.iter_batches(batch_size=SLICE_ROWS, columns=columns):
        n += batch.num_rows
        names.update(batch.column("dataset").unique().to_pylist())
        texts = batch.column("text")
        words += pc.sum(pc.list_value_length(pc.utf8_split_whitespace(texts))).as_py() or 0
        chars += pc.sum(pc.utf8_length(texts)).as_py() or 0
        extra_keys.update(batch.column("extra").keys.unique().to_pylist())
        for field_name in METADATA_FIELDS:
            counts[field_name].update(_value_counts(batch.column(field_name)))
    if "documents" in summary:
        documents = int(summary["documents"])
    else:
        documents = len(pc.unique(pq.read_table(path, columns=["doc_id"]).column("doc_id")))
    stats = DatasetStats(
        dataset=names.pop() if len(names) == 1 else Path(path).name.removesuffix(".parquet"),
        sentences=n,
        documents=documents,
        domains=sorted(counts["domain"]),
        fields=[field_name for field_name in METADATA_FIELDS if field_name != "domain" and counts[field_name]],
        extra_fields=sorted(extra_keys),
        mean_words=words / n if n else 0.0,
        mean_chars=chars / n if n else 0.0,
        duplicates_removed=int(summary.get("duplicates_removed", 0)),
        sentences_before_cap=int(summary.get("sentences_before_cap", n)),
        dropped_sentences=int(sum(summary.get("dropped", {}).values())),
        bad_records=int(summary.get("bad_records", 0)),
    )
    return stats, counts


def _count_rows(dataset: str, sentences: int, counts: dict[str, Counter[str]]) -> Iterator[list[str]]:
    """metadata_counts.tsv rows of one dataset (or of the whole corpus, dataset '*')."""
    for field_name in METADATA_FIELDS:
        values = sorted(counts[field_name].items(), key=lambda item: (-item[1], item[0]))
        with_field = sum(count for _, count in values)
        shown, rest = values[:MAX_VALUES_PER_FIELD], values[MAX_VALUES_PER_FIELD:]
        entries = [(value, count, 1) for value, count in shown]
        if rest:
            entries.append((OTHER_VALUE, sum(count for _, count in rest), len(rest)))
        for value, count, n_values in entries:
            yield [
                dataset,
                field_name,
                value,
                str(count),
                str(n_values),
                f"{count / sentences:.6g}",
                f"{count / with_field:.6g}",
            ]


def _tsv(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue()


TABLE1_HEADER = ("Dataset", "Sentences", "Documents", "Domain", "Metadata", "Words/sentence")


def table1_rows(stats: Sequence[DatasetStats]) -> list[tuple[str, int, int, str, str, float]]:
    """Table 1 (the paper's corpus table): a row per dataset, then the total (words per sentence weighted)."""
    rows = [
        (item.dataset, item.sentences, item.documents, ", ".join(item.domains), ", ".join(item.fields), item.mean_words)
        for item in stats
    ]
    total = sum(item.sentences for item in stats)
    mean_words = sum(item.mean_words * item.sentences for item in stats) / total if total else 0.0
    domains = ", ".join(sorted({domain for item in stats for domain in item.domains}))
    rows.append(("Total", total, sum(item.documents for item in stats), domains, "", mean_words))
    return rows


def table1_markdown(rows: Sequence[tuple[str, int, int, str, str, float]]) -> str:
    """Table 1 as a markdown table (numbers right-aligned, thousands separated)."""
    cells = [list(TABLE1_HEADER)] + [
        [name, f"{sentences:,}", f"{documents:,}", domains, fields, f"{words:.1f}"]
        for name, sentences, documents, domains, fields, words in rows
    ]
    widths = [max(len(row[column]) for row in cells) for column in range(len(TABLE1_HEADER))]
    numeric = {1, 2, 5}

    def line(row: list[str]) -> str:
        padded = [
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + ":" if index in numeric else "-" * (width + 2) for index, width in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])]) + "\n"


def table1_csv(rows: Sequence[tuple[str, int, int, str, str, float]]) -> str:
    """Table 1 as CSV with plain numbers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE1_HEADER)
    for name, sentences, documents, domains, fields, words in rows:
        writer.writerow([name, sentences, documents, domains, fields, f"{words:.2f}"])
    return buffer.getvalue()


def write_stats(
    corpus_files: Sequence[str], stats_tsv: str, table_md: str, table_csv: str, metadata_counts_tsv: str | None = None
) -> None:
    """Write corpus statistics and Table 1.

    - `stats_tsv`: one row per dataset: STATS_COLUMNS (domains and fields comma-separated; mean words =
      whitespace tokens per sentence, mean chars = code points per sentence; the last four from the merge).
    - `metadata_counts_tsv` (default: ``metadata_counts.tsv`` beside `stats_tsv`): long format COUNTS_COLUMNS, a
      row per (dataset, field, value) with its sentence count, `share_all` = count / the dataset's sentences and
      `share_field` = count / the dataset's sentences where the field is set; dataset ``*`` is the whole corpus
      (the corpus-level share of each metadata value). A field with more than MAX_VALUES_PER_FIELD values keeps the
      most frequent and sums the rest into value ``*other*`` (`n_values` says how many values it stands for).
    - `table_md`, `table_csv`: Table 1 (`table1_rows`).
    """
    all_stats: list[DatasetStats] = []
    corpus_counts: dict[str, Counter[str]] = {field_name: Counter() for field_name in METADATA_FIELDS}
    count_rows: list[list[str]] = [list(COUNTS_COLUMNS)]
    for path in corpus_files:
        stats, counts = dataset_stats(path)
        all_stats.append(stats)
        for field_name, field_counts in counts.items():
            corpus_counts[field_name].update(field_counts)
        if stats.sentences:
            count_rows.extend(_count_rows(stats.dataset, stats.sentences, counts))
    total = sum(stats.sentences for stats in all_stats)
    if total:
        count_rows.extend(_count_rows(ALL_DATASETS, total, corpus_counts))
    write_text(stats_tsv, _tsv([list(STATS_COLUMNS), *(stats.row() for stats in all_stats)]))
    counts_path = metadata_counts_tsv or os.path.join(os.path.dirname(stats_tsv), "metadata_counts.tsv")
    write_text(counts_path, _tsv(count_rows))
    rows = table1_rows(all_stats)
    write_text(table_md, table1_markdown(rows))
    write_text(table_csv, table1_csv(rows))
