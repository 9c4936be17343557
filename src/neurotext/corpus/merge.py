"""Merge of a dataset's parts: ``corpus/{dataset}.parquet`` (`CORPUS_SCHEMA`) and ``corpus/{dataset}.losses.tsv``.

Parts in document order, within-dataset duplicates dropped (first occurrence wins), capped to whole documents, ids
``code << 27 | row`` (`merge_parts`). The losses file gathers the parts' losses and the documents whose every
sentence was a duplicate (`neurotext.corpus.losses`); a dataset left with no sentence stops the run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.corpus.common import BATCH_ROWS, CORPUS_STATS_KEY, HASH_CHUNK_ROWS, SLICE_ROWS, PartStats
from neurotext.corpus.losses import Loss, read_losses, write_losses
from neurotext.corpus.parts import read_part_stats
from neurotext.ids import make_sentence_ids, splitmix64, text_hash64
from neurotext.io import write_parquet_batches
from neurotext.loaders.base import SourceError

log = logging.getLogger(__name__)
LOSSES_SHOWN = 5


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
    doc_index, sentence_index and text hash; per document, its doc_index and cap score.
    """

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
            stats.add(read_part_stats(path))
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
    concat = lambda arrays, dtype: (np.concatenate(arrays) if arrays else np.zeros(0, dtype))  # noqa: E731
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
    parts: Sequence[str], index: _PartIndex, rows: np.ndarray, sentence_ids: np.ndarray
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


def merge_parts(
    parts: Sequence[str],
    dataset: dict,
    corpus: dict,
    out: str,
    config_hash: str,
    part_losses: Sequence[str] | None = None,
    losses_out: str | None = None,
) -> None:
    """Merge the parts of `dataset` into the dataset's corpus file (CORPUS_SCHEMA, sorted by sentence_id) and its
    losses into `losses_out` (default ``<out stem>.losses.tsv``; the parts' losses files default to
    ``<part stem>.losses.tsv``).

    Steps: order rows by (doc_index, sentence_index); drop sentences whose `ids.text_hash64` was seen before in
    this dataset (a document left without sentences is a `duplicates` loss); cap to
    `corpus.max_sentences_per_dataset` whole documents (`choose_documents`, seed `corpus.seed`; null = no cap);
    number the rows in document order: sentence_id = code << 27 | row. A dataset with no sentence left raises
    SourceError naming it, its source and its first losses.
    Two passes over the parts: the first keeps ~45 bytes a sentence (positions, hashes, order, masks) and a few
    per document; the second streams the rows out in slices of SLICE_ROWS. Memory is thus about 50 bytes a
    sentence plus a few hundred MB whatever the text length: ~2 GB for the paper's 40M-sentence datasets.
    """
    name = dataset.get("name", "?")
    if part_losses is None:
        part_losses = [os.path.splitext(path)[0] + ".losses.tsv" for path in parts]
    if losses_out is None:
        losses_out = os.path.splitext(out)[0] + ".losses.tsv"
    index = _index_parts(parts, int(corpus.get("seed", 0)), name)
    order = np.lexsort((index.sentence_index, index.doc_index))
    rows = order[first_occurrences(index.hashes[order])]
    del order
    duplicates = len(index.hashes) - len(rows)
    before_cap = len(rows)
    losses = [loss for path in part_losses for loss in read_losses(path)]
    duplicate_losses = _duplicate_losses(parts, index, rows)
    losses += duplicate_losses
    if before_cap == 0:
        raise _empty_dataset_error(dataset, index.stats, losses, losses_out)
    cap = corpus.get("max_sentences_per_dataset")
    if cap is not None and len(rows) > int(cap):
        rows = cap_rows(index, rows, int(cap), name)
    sentence_ids = make_sentence_ids(int(dataset["code"]), np.arange(len(rows)), name)
    summary = {
        **index.stats.__dict__,
        "documents_read": index.stats.documents,
        "documents_lost_cleaning": index.stats.documents_without_sentences,
        "documents_lost_duplicates": len(duplicate_losses),
        "duplicates_removed": duplicates,
        "sentences_before_cap": before_cap,
        "sentences": len(rows),
        "documents": len(np.unique(index.doc_index[rows])),
    }
    schema = CORPUS_SCHEMA.with_metadata({CORPUS_STATS_KEY: json.dumps(summary, sort_keys=True)})
    log.info(
        "%s: %d sentences (%d duplicates removed, %d before the cap); %d documents lost (%d cleaning, %d duplicates), "
        "%d bad records: %s",
        name,
        len(rows),
        duplicates,
        before_cap,
        index.stats.documents_without_sentences + len(duplicate_losses),
        index.stats.documents_without_sentences,
        len(duplicate_losses),
        index.stats.bad_records,
        losses_out,
    )
    write_parquet_batches(_corpus_slices(parts, index, rows, sentence_ids), schema, out, config_hash)
    write_losses(losses_out, losses)


def _duplicate_losses(parts: Sequence[str], index: _PartIndex, rows: np.ndarray) -> list[Loss]:
    """A `duplicates` loss for each document with sentences in the parts but none among the deduplicated `rows`
    (their ids read back from the parts, two columns at a time)."""
    lost = np.setdiff1d(index.document_index, np.unique(index.doc_index[rows]), assume_unique=True)
    if not lost.size:
        return []
    documents, counts = np.unique(index.doc_index, return_counts=True)
    sizes = dict(zip(lost.tolist(), counts[np.searchsorted(documents, lost)].tolist(), strict=True))
    wanted = set(sizes)
    losses: dict[int, Loss] = {}
    for path in parts:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=["doc_index", "doc_id"]):
            doc_index = batch.column("doc_index").to_numpy()
            for position in np.flatnonzero(np.isin(doc_index, lost)):
                key = int(doc_index[position])
                if key in wanted and key not in losses:
                    detail = f"{sizes[key]} sentences, each a repeat of an earlier sentence of the dataset"
                    losses[key] = Loss(key, str(batch.column("doc_id")[position]), "duplicates", "", detail)
    return [losses[key] for key in sorted(losses)]


def _empty_dataset_error(dataset: dict, stats: PartStats, losses: list[Loss], losses_out: str) -> SourceError:
    """The error of a dataset with no sentence: its name, source, counts and first losses."""
    name = dataset.get("name", "?")
    source = dataset.get("path", "?") + (f" (member {dataset['member']})" if dataset.get("member") else "")
    shown = "\n".join(
        f"  {loss.loss}: {loss.doc_id or loss.where}{': ' + loss.detail if loss.detail else ''}"
        for loss in sorted(losses)[:LOSSES_SHOWN]
    )
    return SourceError(
        f"datasets.{name}: no sentence left from {source} (datasets.{name}.path): {stats.documents} documents read, "
        f"{stats.documents_without_sentences} lost to cleaning, {stats.bad_records} bad records "
        f"({stats.empty_files} empty files)" + (f"; the first losses:\n{shown}" if shown else "") + "\n"
        f"Check the files at datasets.{name}.path (format {dataset.get('format')!r}; see the README's dataset "
        f"layouts) and corpus.clean ({os.path.basename(losses_out)} is not written)"
    )
