"""BookCorpus (format `bookcorpus`): a directory of plain-text books, or the parquet export of the HF dataset.

Layouts (chosen by what `path` holds; option `layout: text|parquet` forces one):

- **text**: one UTF-8 `.txt` file a book, in a directory (any depth, read in sorted path order) or a tar/zip archive
  of one (archive order). A book is a document; its text goes to Punkt downstream. The doc id and the title are
  the file's path without `.txt`; genre is the folder the file sits in when books are filed by genre (option
  `genre_from_folder`, default false). Authors come from an optional `metadata_file` (CSV or JSONL with a `file`
  column, the book's path as in the directory, plus any of author, title, genre ...; other columns go to extra).
- **parquet**: one file or a directory of `*.parquet` files (sorted) with a `text` column, one sentence a row (the
  HF `bookcorpus` export: 74M lowercased, tokenised sentences, no book ids or authors). Book boundaries are unknown
  there, so rows are grouped in order into documents of `rows_per_document` consecutive rows (default 1000;
  the grouping only matters for seeded whole-document sampling and part balance). Rows are pre-split sentences,
  passed on as `sentences` (no Punkt). Doc id `<file stem>:<first row>`. Streamed by record batch.
- **lines**: the published `books_large_p1.txt` / `books_large_p2.txt` (one sentence a line), or a folder of them:
  read in line mode by default (`neurotext.loaders.lines`: each line a sentence, streamed by byte range; set
  `sentence_per_line: false` to read such a file as one book).

An empty book file is a bad record (`EMPTY_FILE`). Metadata: domain (default book), title/author/genre as above.
Dataset options: `layout`, `encoding` (text, default utf-8), `metadata_file`, `genre_from_folder`,
`text_column` (parquet, default text), `rows_per_document`, `sentence_per_line`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
from collections.abc import Iterator

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.loaders._common import (
    archive_kind,
    check_meta,
    dataset_meta,
    decode_text,
    iter_directory_files,
    iter_tar_files,
    open_parquet,
    parquet_batches,
    read_errors_as_source_error,
)
from neurotext.loaders.base import BadRecord, Document, SourceError, empty_file, register

DEFAULT_ROWS_PER_DOCUMENT = 1000


@register("bookcorpus")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream BookCorpus as documents (see the module docstring)."""
    layout = dataset.get("layout") or detect_layout(path)
    if layout == "parquet":
        yield from _load_parquet(path, dataset)
    elif layout == "text":
        yield from _load_text(path, dataset)
    else:
        raise SourceError(f"datasets.{dataset.get('name', '?')}.layout = {layout!r}: use text or parquet")


def detect_layout(path: str) -> str:
    """'parquet' for a .parquet file or a directory holding some, else 'text'."""
    if os.path.isdir(path):
        return "parquet" if iter_directory_files(path, ".parquet") else "text"
    return "parquet" if path.endswith(".parquet") else "text"


# -- text layout --------------------------------------------------------------------------------------------------


def _load_text(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    encoding = dataset.get("encoding", "utf-8")
    genre_from_folder = bool(dataset.get("genre_from_folder", False))
    books_meta = read_books_metadata(dataset["metadata_file"]) if dataset.get("metadata_file") else {}
    shared = dataset_meta(dataset, "book")
    found = 0
    for name, data, where in _book_files(path):
        found += 1
        if not data.strip():
            yield empty_file(where)
            continue
        try:
            text = decode_text(data, encoding, where).replace("\r\n", "\n").strip()
        except ValueError as error:
            yield BadRecord(where, str(error))
            continue
        book_id = name[: -len(".txt")]
        meta: dict[str, str | int | None] = {**shared, "title": posixpath.basename(book_id)}
        if genre_from_folder and "/" in book_id:
            meta["genre"] = posixpath.basename(posixpath.dirname(book_id))
        known_meta, extra = books_meta.get(name, ({}, {}))
        meta.update(known_meta)
        yield Document(book_id, text=text, meta=check_meta(meta), extra=dict(extra))
    if not found:
        raise SourceError(f"{path}: no .txt books found; give a directory (or archive) of plain-text books")


def _book_files(path: str) -> Iterator[tuple[str, bytes, str]]:
    """(relative name, bytes, where) of every .txt book, in source order."""
    kind = archive_kind(path)
    if kind == "dir":
        for name in iter_directory_files(path, ".txt"):
            where = os.path.join(path, name)
            with read_errors_as_source_error(where), open(where, "rb") as handle:
                yield name, handle.read(), where
    elif kind == "tar":
        for name, data in iter_tar_files(path, lambda name: name.endswith(".txt")):
            yield name.removeprefix("./"), data, f"{path}:{name}"
    elif kind == "zip":
        import zipfile

        with read_errors_as_source_error(path), zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".txt"):
                    yield name, archive.read(name), f"{path}:{name}"
    elif path.endswith(".txt"):
        with read_errors_as_source_error(path), open(path, "rb") as handle:
            yield os.path.basename(path), handle.read(), path
    else:
        raise SourceError(f"{path}: not a directory, archive or .txt file of books")


def read_books_metadata(path: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per book file name: (fixed metadata fields, extra) from a CSV or JSONL table with a `file` column."""
    rows: list[dict] = []
    with read_errors_as_source_error(path), open(path, "rb") as handle:
        data = handle.read().decode("utf-8")
    if path.endswith((".jsonl", ".ndjson", ".json")):
        for line_number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SourceError(f"{path}:{line_number}: not JSON ({error})") from error
    else:
        rows = list(csv.DictReader(io.StringIO(data)))
    table: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for line_number, row in enumerate(rows, start=1):
        if "file" not in row:
            raise SourceError(f"{path}: row {line_number} has no `file` column (the book's path, e.g. x/y.txt)")
        fixed = {k: str(v) for k, v in row.items() if k in METADATA_FIELDS and k != "year" and v not in (None, "")}
        extra = {k: str(v) for k, v in row.items() if k not in METADATA_FIELDS and k != "file" and v not in (None, "")}
        table[str(row["file"])] = (fixed, extra)
    return table


# -- parquet layout -----------------------------------------------------------------------------------------------


def _load_parquet(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    column = dataset.get("text_column", "text")
    rows_per_document = int(dataset.get("rows_per_document", DEFAULT_ROWS_PER_DOCUMENT))
    if rows_per_document < 1:
        raise SourceError(f"datasets.{dataset.get('name', '?')}.rows_per_document must be >= 1")
    shared = check_meta(dataset_meta(dataset, "book"))
    files = (
        [os.path.join(path, name) for name in iter_directory_files(path, ".parquet")] if os.path.isdir(path) else [path]
    )
    if not files:
        raise SourceError(f"{path}: no .parquet files")
    for file in files:
        stem = os.path.basename(file)[: -len(".parquet")] if file.endswith(".parquet") else os.path.basename(file)
        with read_errors_as_source_error(file):
            parquet = open_parquet(file)
            if column not in parquet.schema_arrow.names:
                raise SourceError(
                    f"{file}: no column {column!r} (has {parquet.schema_arrow.names}); set the dataset's `text_column`"
                )
            sentences: list[str] = []
            first_row = 0
            row = 0
            for batch in parquet_batches(parquet, file, [column]):
                for value in batch.column(0).to_pylist():
                    if value is not None and value.strip():
                        if not sentences:
                            first_row = row
                        sentences.append(value.strip())
                    row += 1
                    if row % rows_per_document == 0 and sentences:
                        yield Document(f"{stem}:{first_row}", sentences=tuple(sentences), meta=shared)
                        sentences = []
            if sentences:
                yield Document(f"{stem}:{first_row}", sentences=tuple(sentences), meta=shared)
