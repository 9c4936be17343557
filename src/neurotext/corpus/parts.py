"""Corpus parts: ``corpus/{dataset}/part{p}.parquet`` (`PART_SCHEMA`) and ``part{p}.losses.tsv`` (`build_part`).

Part p holds the cleaned sentences of the documents with ``doc_index % parts == p`` (line mode: of the part's byte
range, `neurotext.loaders.lines`), written batch by batch (memory: one batch of rows, whatever the part's size);
its counters (`PartStats`) go into the file's key-value metadata, its lost documents and bad records into the
losses file beside it (`neurotext.corpus.losses`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS, PART_SCHEMA
from neurotext.cleaning import CleanConfig, clean_sentence, load_punkt, sanitize, split_sentences
from neurotext.corpus.common import BAD_RECORDS_SHOWN, BATCH_ROWS, PART_STATS_KEY, PartStats
from neurotext.corpus.losses import Loss, write_losses
from neurotext.io import CONFIG_HASH_KEY, atomic_output
from neurotext.loaders.base import EMPTY_FILE, BadRecord, Document, SourceError, load_documents
from neurotext.loaders.lines import line_documents, sentence_per_line
from neurotext.logs import progress

log = logging.getLogger(__name__)


def metadata_defaults(dataset: dict) -> dict[str, Any]:
    """Dataset-level metadata defaults: the dataset config's keys that name a metadata field (e.g. `domain`)."""
    return {name: dataset[name] for name in METADATA_FIELDS if dataset.get(name) is not None}


class _PartWriter:
    """Column buffers of PART_SCHEMA rows, written to the part file every BATCH_ROWS rows (one row group each)."""

    def __init__(self, dataset_name: str, path: str, config_hash: str) -> None:
        self.dataset_name = dataset_name
        self.schema = PART_SCHEMA.with_metadata({**(PART_SCHEMA.metadata or {}), CONFIG_HASH_KEY: config_hash.encode()})
        self._output = atomic_output(path)
        self._writer = pq.ParquetWriter(
            self._output.__enter__(), self.schema, compression="zstd", write_statistics=True
        )
        self._reset()

    def _reset(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in PART_SCHEMA}

    def add_document(
        self,
        doc_index: int,
        doc_id: str,
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
            columns["doc_id"].append(doc_id)
            columns["text"].append(text)
            for name in METADATA_FIELDS:
                columns[name].append(meta.get(name))
            columns["extra"].append(extra)
        if len(columns["text"]) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns["text"]:
            self._writer.write_table(pa.Table.from_pydict(self.columns, schema=self.schema))
            self._reset()

    def close(self, stats: PartStats) -> None:
        """Write the last rows and the counters; move the file into place."""
        self.flush()
        self._writer.add_key_value_metadata({PART_STATS_KEY.decode(): stats.to_json()})
        self._writer.close()
        self._output.__exit__(None, None, None)

    def abort(self, error: BaseException) -> None:
        """Close and delete the unfinished file."""
        self._writer.close()
        self._output.__exit__(type(error), error, error.__traceback__)


def read_part_stats(path: str) -> PartStats:
    """The counters of a part file (file key-value metadata; older files: schema metadata)."""
    return PartStats.from_json((pq.ParquetFile(path).metadata.metadata or {}).get(PART_STATS_KEY))


def document_metadata(document: Document, defaults: dict[str, Any], where: str) -> tuple[dict, list]:
    """The fixed metadata columns (loader's value, else the dataset default) and the sorted `extra` pairs of one
    document; loader meta keys outside METADATA_FIELDS go to `extra`. Every string passes `cleaning.sanitize` (the
    rule sentence text follows: no control or bidirectional characters reach the corpus, tables or browser).
    """
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
            meta[name] = sanitize(str(meta[name]))
    extra = {sanitize(str(key)): sanitize(str(value)) for key, value in document.extra.items() if value is not None}
    for key, value in document.meta.items():
        if key not in METADATA_FIELDS and value is not None:
            extra.setdefault(sanitize(str(key)), sanitize(str(value)))
    return meta, sorted(extra.items())


def _too_many_bad(bad: list[BadRecord], count: int, limit: int, name: str, part: int, source: str) -> SourceError:
    shown = "\n".join(f"  {record.where}: {record.reason}" for record in bad[:BAD_RECORDS_SHOWN])
    return SourceError(
        f"datasets.{name} part {part}: more than corpus.max_bad_records = {limit} corrupt records in {source} "
        f"({count} so far); the first {min(len(bad), BAD_RECORDS_SHOWN)}:\n{shown}\n"
        "Fix or refetch the source, or raise corpus.max_bad_records if these records may be skipped"
    )


def part_records(source: str, dataset: dict, part: int, parts: int) -> Iterator[tuple[int, Document | BadRecord]]:
    """(doc_index, record) of part `part`: every `parts`-th record of the loader, or the part's byte range in line
    mode. `doc_index` counts every record the loader yields (documents and bad records alike), so fixing one bad
    record never renumbers the others."""
    if sentence_per_line(source, dataset):
        yield from line_documents(source, dataset, part, parts)
        return
    records = load_documents(source, {**dataset, "part": part, "parts": parts})  # loaders may skip other parts cheaply
    for doc_index, item in enumerate(records):
        if doc_index % parts == part:
            yield doc_index, item


#: Sentences dropped per drop reason (of one document).
ReasonCounts = dict[str, int]


def _cleaning_detail(dropped: ReasonCounts) -> str:
    if not dropped:
        return "no sentences"
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(dropped.items()))
    return f"{sum(dropped.values())} sentences dropped: {reasons}"


def build_part(
    source: str,
    punkt: str,
    dataset: dict,
    corpus: dict,
    part: int,
    out: str,
    config_hash: str,
    losses_out: str | None = None,
) -> None:
    """Write part `part` of `dataset` to `out` and its losses to `losses_out` (default: ``<out stem>.losses.tsv``).

    Documents with `text` are split into sentences by the Punkt parameters in `punkt`; pre-split documents (and
    line mode) keep their sentences. Each sentence is cleaned (`neurotext.cleaning`, settings `corpus.clean`);
    dropped ones leave a gap in `sentence_index`; a document left without sentences is a `cleaning` loss. Bad
    records (empty files included) are logged, counted and listed; past `corpus.max_bad_records` the job fails with
    a SourceError listing the first few (file and line). Memory: one batch of BATCH_ROWS rows plus the losses.
    """
    name = dataset.get("name", "?")
    parts = int(dataset.get("parts", 1))
    if not 0 <= part < parts:
        raise ValueError(f"part {part} out of range: datasets.{name}.parts = {parts}")
    if losses_out is None:
        losses_out = os.path.splitext(out)[0] + ".losses.tsv"
    tokenizer = None if sentence_per_line(source, dataset) else load_punkt(punkt)
    clean = CleanConfig.from_config(corpus.get("clean"))
    max_bad = int(corpus.get("max_bad_records", 100))
    defaults = metadata_defaults(dataset)
    stats = PartStats()
    bad: list[BadRecord] = []
    losses: list[Loss] = []
    writer = _PartWriter(name, out, config_hash)
    try:
        for doc_index, item in progress(
            part_records(source, dataset, part, parts), desc=f"{name} part {part}", unit="doc"
        ):
            if isinstance(item, BadRecord):
                stats.bad_records += 1
                empty = item.reason == EMPTY_FILE
                stats.empty_files += empty
                losses.append(Loss(doc_index, "", "empty_file" if empty else "bad_record", item.where, item.reason))
                if len(bad) < BAD_RECORDS_SHOWN:
                    bad.append(item)
                log.warning("corrupt record skipped: %s: %s", item.where, item.reason)
                if stats.bad_records > max_bad:
                    raise _too_many_bad(bad, stats.bad_records, max_bad, name, part, source)
                continue
            if item.sentences is not None:
                raw_sentences: Sequence[str] = item.sentences
            else:
                assert tokenizer is not None
                raw_sentences = split_sentences(tokenizer, item.text or "")
            kept: list[tuple[int, str]] = []
            dropped: ReasonCounts = {}
            for sentence_index, raw in enumerate(raw_sentences):
                text, reason = clean_sentence(raw, clean)
                if reason is None:
                    kept.append((sentence_index, text))
                else:
                    stats.dropped[reason] += 1
                    dropped[reason] = dropped.get(reason, 0) + 1
            stats.documents += 1
            stats.sentences_split += len(raw_sentences)
            stats.sentences_kept += len(kept)
            doc_id = sanitize(item.doc_id)
            if not kept:
                stats.documents_without_sentences += 1
                losses.append(Loss(doc_index, doc_id, "cleaning", "", _cleaning_detail(dropped)))
                continue
            meta, extra = document_metadata(item, defaults, source)
            writer.add_document(doc_index, doc_id, kept, meta, extra)
        writer.close(stats)
    except BaseException as error:
        writer.abort(error)
        raise
    write_losses(losses_out, losses)
    log.info(
        "%s part %d: %d documents (%d without sentences), %d of %d sentences kept, dropped %s, %d bad records "
        "(%d empty files)",
        name,
        part,
        stats.documents,
        stats.documents_without_sentences,
        stats.sentences_kept,
        stats.sentences_split,
        stats.dropped,
        stats.bad_records,
        stats.empty_files,
    )
