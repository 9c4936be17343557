"""Corpus statistics: ``corpus/stats.tsv``, ``corpus/metadata_counts.tsv``, ``tables/table1.{md,csv}`` and the
summary printed on the console at the end of the corpus stage (`write_stats`)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.corpus.common import CORPUS_STATS_KEY, SLICE_ROWS
from neurotext.io import write_text
from neurotext.markdown import csv_text, escape_markdown

log = logging.getLogger(__name__)

#: At most this many values per (dataset, field) in metadata_counts.tsv; the rest are summed into one row.
MAX_VALUES_PER_FIELD = 10_000
OTHER_VALUE = "*other*"
ALL_DATASETS = "*"

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
    "documents_read",
    "documents_lost_cleaning",
    "documents_lost_duplicates",
    "empty_files",
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
    documents_read: int = 0
    documents_lost_cleaning: int = 0
    documents_lost_duplicates: int = 0
    empty_files: int = 0

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
            str(self.documents_read),
            str(self.documents_lost_cleaning),
            str(self.documents_lost_duplicates),
            str(self.empty_files),
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
        dataset=(names.pop() if len(names) == 1 else Path(path).name.removesuffix(".parquet")),
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
        documents_read=int(summary.get("documents_read", documents)),
        documents_lost_cleaning=int(summary.get("documents_lost_cleaning", 0)),
        documents_lost_duplicates=int(summary.get("documents_lost_duplicates", 0)),
        empty_files=int(summary.get("empty_files", 0)),
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


TABLE1_HEADER = (
    "Dataset",
    "Sentences",
    "Documents",
    "Domain",
    "Metadata",
    "Words/sentence",
    "Documents read",
    "Lost: cleaning",
    "Lost: duplicates",
    "Bad records",
)
_TABLE1_NUMERIC = {1, 2, 5, 6, 7, 8, 9}


@dataclass(frozen=True)
class Table1Row:
    """One row of Table 1: the paper's six columns, then what the corpus stage read and lost (documents read from
    the source, documents lost entirely to cleaning and to within-dataset duplicates, bad records skipped, empty
    files included; `corpus/{dataset}.losses.tsv` names each)."""

    dataset: str
    sentences: int
    documents: int
    domains: str
    fields: str
    mean_words: float
    documents_read: int
    lost_cleaning: int
    lost_duplicates: int
    bad_records: int


def table1_rows(stats: Sequence[DatasetStats]) -> list[Table1Row]:
    """Table 1 (the paper's corpus table): a row per dataset, then the total (words per sentence weighted)."""
    rows = [
        Table1Row(
            item.dataset,
            item.sentences,
            item.documents,
            ", ".join(item.domains),
            ", ".join(item.fields),
            item.mean_words,
            item.documents_read,
            item.documents_lost_cleaning,
            item.documents_lost_duplicates,
            item.bad_records,
        )
        for item in stats
    ]
    total = sum(item.sentences for item in stats)
    mean_words = sum(item.mean_words * item.sentences for item in stats) / total if total else 0.0
    domains = ", ".join(sorted({domain for item in stats for domain in item.domains}))
    rows.append(
        Table1Row(
            "Total",
            total,
            sum(item.documents for item in stats),
            domains,
            "",
            mean_words,
            sum(item.documents_read for item in stats),
            sum(item.documents_lost_cleaning for item in stats),
            sum(item.documents_lost_duplicates for item in stats),
            sum(item.bad_records for item in stats),
        )
    )
    return rows


def table1_markdown(rows: Sequence[Table1Row]) -> str:
    """Table 1 as a markdown table (numbers right-aligned, thousands separated; names escaped by
    `markdown.escape_markdown`, so a domain from the data never renders as HTML)."""
    cells = [list(TABLE1_HEADER)] + [
        [
            escape_markdown(row.dataset),
            f"{row.sentences:,}",
            f"{row.documents:,}",
            escape_markdown(row.domains),
            escape_markdown(row.fields),
            f"{row.mean_words:.1f}",
            f"{row.documents_read:,}",
            f"{row.lost_cleaning:,}",
            f"{row.lost_duplicates:,}",
            f"{row.bad_records:,}",
        ]
        for row in rows
    ]
    widths = [max(len(row[column]) for row in cells) for column in range(len(TABLE1_HEADER))]

    def line(row: list[str]) -> str:
        padded = [
            cell.rjust(width) if index in _TABLE1_NUMERIC else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + ":" if index in _TABLE1_NUMERIC else "-" * (width + 2)
            for index, width in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])]) + "\n"


def table1_csv(rows: Sequence[Table1Row]) -> str:
    """Table 1 as CSV with plain numbers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE1_HEADER)
    for row in rows:
        writer.writerow(
            [
                csv_text(row.dataset),
                row.sentences,
                row.documents,
                csv_text(row.domains),
                csv_text(row.fields),
                f"{row.mean_words:.2f}",
                row.documents_read,
                row.lost_cleaning,
                row.lost_duplicates,
                row.bad_records,
            ]
        )
    return buffer.getvalue()


def corpus_summary(stats: Sequence[DatasetStats], corpus_dir: str) -> str:
    """The console summary of the corpus stage: per dataset what was read, kept and lost, and where the losses are
    named."""
    lines = ["Corpus summary (documents lost entirely and bad records are listed in corpus/<dataset>.losses.tsv):"]
    for item in stats:
        lost = item.documents_lost_cleaning + item.documents_lost_duplicates
        line = (
            f"  {item.dataset}: {item.sentences:,} sentences in {item.documents:,} documents; "
            f"{item.documents_read:,} documents read, {lost:,} lost ({item.documents_lost_cleaning:,} to cleaning, "
            f"{item.documents_lost_duplicates:,} to duplicates), {item.bad_records:,} bad records skipped"
        )
        if item.empty_files:
            line += f" ({item.empty_files:,} empty files)"
        if lost or item.bad_records:
            line += f": see {os.path.join(corpus_dir, item.dataset + '.losses.tsv')}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_stats(
    corpus_files: Sequence[str],
    stats_tsv: str,
    table_md: str,
    table_csv: str,
    metadata_counts_tsv: str | None = None,
    summary_to: TextIO | None = None,
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
    - `summary_to` (e.g. the console's stderr): `corpus_summary` of the datasets.
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
    corpus_dir = os.path.dirname(corpus_files[0]) if corpus_files else os.path.dirname(stats_tsv)
    summary = corpus_summary(all_stats, corpus_dir)
    log.info("%s", summary.rstrip())
    if summary_to is not None:
        summary_to.write(summary)
        summary_to.flush()
