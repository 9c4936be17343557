"""Users' own corpora (format `table`): CSV/TSV, JSONL or Parquet with a text column and any metadata columns.

One row a document (its text split by Punkt downstream), streamed in file order. Declared in config:

```yaml
datasets:
  letters:
    code: 9
    format: table
    path: data/letters.csv        # .csv .tsv .jsonl .ndjson .parquet (csv/tsv/jsonl may be .gz/.bz2/.xz)
    text_column: body             # default: text
    id_column: letter_id          # default: none (the row number is the id)
    metadata:                     # column -> fixed metadata field (domain sentiment topic category author
      sender: author              #   entity genre split year title)
      sent: year                  # year: a number, or a date whose first 4-digit number is the year
    domain: letters               # every row's domain unless a column maps to domain
    extra_columns: all            # all (default): every other column into `extra`; none; or a list of columns
    encoding: utf-8               # csv/tsv/jsonl text encoding (default utf-8)
    table_format: csv             # default: from the file name
```

Rows whose text is empty or missing are skipped; a row that cannot be read (a JSONL line that is not JSON, a year
that is not a number, a byte that is not in `encoding`) is a bad record naming file and line (CSV/JSONL: the row's
own lines, a quoted field may span several) or row (Parquet); the rows after it are read. A file without the text
(or id, or a metadata) column is an error naming the file, the column and the columns it has.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.loaders._common import check_meta, dataset_meta, open_member, open_parquet, parquet_batches, year_of
from neurotext.loaders.base import BadRecord, Document, SourceError, register

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class TableSpec:
    """How to read a user table: which column is the text, the id, which columns feed which metadata field."""

    text_column: str
    id_column: str | None
    metadata: dict[str, str]  # column -> fixed metadata field
    extra_columns: str | tuple[str, ...]  # 'all', 'none' or the columns to keep in extra
    encoding: str


def table_spec(dataset: dict) -> TableSpec:
    """The TableSpec of a dataset block; bad options raise SourceError naming the config key."""
    name = dataset.get("name", "?")
    metadata = dict(dataset.get("metadata") or {})
    for column, field in metadata.items():
        if field not in METADATA_FIELDS:
            raise SourceError(
                f"datasets.{name}.metadata.{column} = {field!r} is not a metadata field; use one of "
                f"{', '.join(METADATA_FIELDS)} (other columns go into extra by themselves)"
            )
    extra = dataset.get("extra_columns", "all")
    if not (extra in ("all", "none") or isinstance(extra, list)):
        raise SourceError(f"datasets.{name}.extra_columns = {extra!r}: use all, none or a list of column names")
    return TableSpec(
        text_column=str(dataset.get("text_column", "text")),
        id_column=dataset.get("id_column"),
        metadata=metadata,
        extra_columns=tuple(extra) if isinstance(extra, list) else extra,
        encoding=dataset.get("encoding", "utf-8"),
    )


def table_format(path: str, dataset: dict) -> str:
    """The declared `table_format`, or the one the file name says."""
    declared = dataset.get("table_format")
    if declared is not None:
        if declared not in TABLE_FORMATS:
            raise SourceError(
                f"datasets.{dataset.get('name', '?')}.table_format = {declared!r}: use one of {TABLE_FORMATS}"
            )
        return declared
    name = path.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    for suffix, kind in (
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return kind
    raise SourceError(
        f"{path}: cannot tell the table format from the file name; set datasets.{dataset.get('name', '?')}"
        f".table_format to one of {TABLE_FORMATS}"
    )


@register("table")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the rows of a user table as documents (see the module docstring)."""
    spec = table_spec(dataset)
    kind = table_format(path, dataset)
    shared = dataset_meta(dataset, None)
    rows = _parquet_rows(path, spec) if kind == "parquet" else _text_rows(path, kind, spec, dataset)
    for item in rows:
        if isinstance(item, BadRecord):
            yield item
            continue
        where, row_number, row = item
        document = row_document(row, row_number, spec, shared, where)
        if document is not None:
            yield document


def row_document(row: dict, row_number: int, spec: TableSpec, shared: dict, where: str) -> Document | BadRecord | None:
    """The Document of one row (None when its text is empty)."""
    text = row.get(spec.text_column)
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    meta: dict[str, str | int | None] = dict(shared)
    for column, field in spec.metadata.items():
        value = row.get(column)
        if value is None or value == "":
            continue
        if field == "year":
            year = value if isinstance(value, int) else year_of(str(value))
            if year is None:
                return BadRecord(where, f"column {column!r} = {value!r} holds no year")
            meta["year"] = int(year)
        else:
            meta[field] = str(value)
    used = {spec.text_column, spec.id_column, *spec.metadata}
    if spec.extra_columns == "none":
        extra_names: list[str] = []
    elif spec.extra_columns == "all":
        extra_names = [column for column in row if column not in used]
    else:
        extra_names = [column for column in spec.extra_columns if column not in used]
    extra = {column: _as_text(row[column]) for column in extra_names if row.get(column) not in (None, "")}
    doc_id = str(row[spec.id_column]) if spec.id_column else str(row_number)
    return Document(doc_id, text=str(text), meta=check_meta(meta), extra=extra)


def _as_text(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _require_columns(where: str, columns: list[str], spec: TableSpec) -> None:
    """SourceError when a declared column is missing from the file."""
    wanted = [("text_column", spec.text_column)]
    if spec.id_column:
        wanted.append(("id_column", spec.id_column))
    wanted += [(f"metadata.{column}", column) for column in spec.metadata]
    for key, column in wanted:
        if column not in columns:
            raise SourceError(
                f"{where}: no column {column!r} (declared as {key}); the file has columns {columns}; fix the "
                "dataset's column names"
            )


def _text_rows(path: str, kind: str, spec: TableSpec, dataset: dict) -> Iterator[tuple[str, int, dict] | BadRecord]:
    """(where, row number, row) of a CSV/TSV/JSONL file, or BadRecords for unreadable lines."""
    with open_member(path, dataset.get("member")) as (stream, where):
        if kind == "jsonl":
            yield from _jsonl_rows(stream, where, spec)
            return
        try:
            codecs.lookup(spec.encoding)
        except LookupError:
            raise SourceError(f"{where}: unknown encoding {spec.encoding!r}; set the dataset's `encoding`") from None
        # Bytes the encoding rejects are kept as lone surrogates and make their row a bad record (at its real line).
        text = io.TextIOWrapper(
            stream, encoding=spec.encoding, errors="surrogateescape", newline=""  # type: ignore[arg-type]
        )
        reader = csv.DictReader(text, delimiter="\t" if kind == "tsv" else dataset.get("delimiter", ","))
        try:
            columns = list(reader.fieldnames or [])
            undecodable = next((column for column in columns if _UNDECODED.search(column)), None)
            if undecodable is not None:
                raise SourceError(
                    f"{where}:{reader.line_num}: the header is not {spec.encoding} "
                    f"({_undecoded_byte(undecodable)}); set the dataset's `encoding` (e.g. latin-1, cp1252)"
                )
            _require_columns(where, columns, spec)
            row_number = 0
            first_line = reader.line_num + 1
            for row in reader:
                row_number += 1
                lines = str(first_line) if reader.line_num == first_line else f"{first_line}-{reader.line_num}"
                first_line = reader.line_num + 1
                if None in row:  # more fields than the header
                    found = len(columns) + len(row[None])
                    yield BadRecord(f"{where}:{lines}", f"{found} fields, the header has {len(columns)}")
                    continue
                bad_value = next(
                    (value for value in row.values() if isinstance(value, str) and _UNDECODED.search(value)), None
                )
                if bad_value is not None:
                    yield BadRecord(
                        f"{where}:{lines}",
                        f"not {spec.encoding} ({_undecoded_byte(bad_value)}); set the dataset's `encoding` "
                        "(e.g. latin-1, cp1252)",
                    )
                    continue
                yield f"{where}:{reader.line_num}", row_number - 1, row
        except csv.Error as error:
            raise SourceError(f"{where}:{reader.line_num}: not valid CSV ({error})") from error
        except LookupError:
            raise SourceError(f"{where}: unknown encoding {spec.encoding!r}; set the dataset's `encoding`") from None


_UNDECODED = re.compile("[\udc80-\udcff]")


def _undecoded_byte(value: str) -> str:
    """Names the first byte `surrogateescape` kept in `value`, e.g. "byte 0xe9"."""
    match = _UNDECODED.search(value)
    return f"byte {ord(match.group(0)) - 0xDC00:#04x}" if match else "no undecodable byte"


def _jsonl_rows(stream: IO[bytes], where: str, spec: TableSpec) -> Iterator[tuple[str, int, dict] | BadRecord]:
    """(where, row number, row) of each JSON object line; the first object must have the text column."""
    row_number = 0
    for line_number, raw in enumerate(stream, start=1):
        location = f"{where}:{line_number}"
        try:
            line = raw.decode(spec.encoding)
        except UnicodeDecodeError as error:
            yield BadRecord(location, f"not {spec.encoding} ({error}); set the dataset's `encoding`")
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield BadRecord(location, f"not JSON ({error})")
            continue
        if not isinstance(row, dict):
            yield BadRecord(location, "not a JSON object")
            continue
        if row_number == 0 and spec.text_column not in row:
            raise SourceError(
                f"{location}: no key {spec.text_column!r} (declared as text_column); the first row has keys "
                f"{sorted(row)}; fix the dataset's `text_column`"
            )
        yield location, row_number, row
        row_number += 1


def _parquet_rows(path: str, spec: TableSpec) -> Iterator[tuple[str, int, dict] | BadRecord]:
    """(where, row number, row) of a Parquet file, streamed one row group at a time."""
    parquet = open_parquet(path)
    _require_columns(path, list(parquet.schema_arrow.names), spec)
    row_number = 0
    for batch in parquet_batches(parquet, path, None, rows=8192):
        for row in batch.to_pylist():
            yield f"{path}: row {row_number}", row_number, row
            row_number += 1
