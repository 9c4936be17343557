"""Corpus stage: raw sources -> cleaned sentence parts -> one parquet per dataset with sentence ids -> stats, Table 1.

Files (docs/ARCHITECTURE.md, "Artifacts"; schemas in `neurotext.artifacts.corpus`):

- ``resources/punkt/{run}/{dataset}.json``: Punkt parameters (`punkt.train_punkt`), JSON, never pickled.
- ``corpus/{dataset}/part{p}.parquet`` (PART_SCHEMA) and ``part{p}.losses.tsv``: the cleaned sentences of the
  documents with ``doc_index % parts == p`` (line mode: of the part's byte range), counters in the file metadata,
  lost documents and bad records beside it (`parts.build_part`).
- ``corpus/{dataset}.parquet`` (CORPUS_SCHEMA) and ``corpus/{dataset}.losses.tsv``: parts in document order,
  within-dataset duplicates dropped, capped to whole documents, ids ``code << 27 | row`` (`merge.merge_parts`).
- ``corpus/stats.tsv``, ``corpus/metadata_counts.tsv``, ``tables/table1.{md,csv}`` and a console summary
  (`stats.write_stats`).
"""

from __future__ import annotations

from neurotext.corpus.common import BATCH_ROWS, CORPUS_STATS_KEY, PART_STATS_KEY, SLICE_ROWS, PartStats
from neurotext.corpus.losses import LOSS_COLUMNS, Loss, read_losses, write_losses
from neurotext.corpus.merge import cap_rows, choose_documents, document_scores, first_occurrences, merge_parts
from neurotext.corpus.parts import build_part, document_metadata, metadata_defaults, part_records, read_part_stats
from neurotext.corpus.punkt import PUNKT_CHOICES, sample_training_texts, train_punkt
from neurotext.corpus.stats import (
    STATS_COLUMNS,
    TABLE1_HEADER,
    DatasetStats,
    Table1Row,
    corpus_summary,
    dataset_stats,
    table1_csv,
    table1_markdown,
    table1_rows,
    write_stats,
)

__all__ = [
    "BATCH_ROWS",
    "CORPUS_STATS_KEY",
    "LOSS_COLUMNS",
    "PART_STATS_KEY",
    "PUNKT_CHOICES",
    "SLICE_ROWS",
    "STATS_COLUMNS",
    "TABLE1_HEADER",
    "DatasetStats",
    "Loss",
    "PartStats",
    "Table1Row",
    "build_part",
    "cap_rows",
    "choose_documents",
    "corpus_summary",
    "dataset_stats",
    "document_metadata",
    "document_scores",
    "first_occurrences",
    "merge_parts",
    "metadata_defaults",
    "part_records",
    "read_losses",
    "read_part_stats",
    "sample_training_texts",
    "table1_csv",
    "table1_markdown",
    "table1_rows",
    "train_punkt",
    "write_losses",
    "write_stats",
]
