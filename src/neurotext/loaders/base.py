"""The loader interface: a format's loader turns a source file into a stream of documents in source order.

A loader is ``load(path: str, dataset: dict) -> Iterator[Document | BadRecord]`` where `dataset` is the dataset's
config block (with its `name`). It never holds a whole big source in memory. A corrupt record inside a big file is
yielded as a `BadRecord` (counted and reported by the corpus stage, fatal only past `corpus.max_bad_records`), and
so is an empty file of a multi-file source (reason `EMPTY_FILE`); a source that cannot be read at all raises
`SourceError` naming the file (and member or line) and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


class SourceError(RuntimeError):
    """A source file is missing, truncated, in the wrong format or encoding; the message says which and what to do."""


@dataclass(frozen=True)
class Document:
    """One document of a source.

    Either `text` (raw text, split into sentences by Punkt downstream) or `sentences` (already split, e.g. the
    Brown corpus) is set. `meta` holds values for the fixed metadata columns (`neurotext.artifacts.corpus.METADATA_FIELDS`;
    `year` an int, the rest strings); `extra` anything else, as strings.
    """

    doc_id: str
    text: str | None = None
    sentences: tuple[str, ...] | None = None
    meta: dict[str, str | int | None] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be parsed: `where` names the file and line or member, `reason` what is wrong."""

    where: str
    reason: str


#: The reason of the BadRecord a loader yields for an empty source file (counted as a bad record and an empty file).
EMPTY_FILE = "empty file"


def empty_file(where: str) -> BadRecord:
    """The bad record of an empty source file `where`."""
    return BadRecord(where, EMPTY_FILE)


Loader = Callable[[str, dict], Iterator[Document | BadRecord]]
LOADERS: dict[str, Loader] = {}


def register(format_name: str) -> Callable[[Loader], Loader]:
    """Decorator: register a loader under `format_name` (the value of `datasets.<name>.format` in config)."""

    def decorate(loader: Loader) -> Loader:
        if format_name in LOADERS:
            raise ValueError(f"loader format {format_name!r} registered twice")
        LOADERS[format_name] = loader
        return loader

    return decorate


def load_documents(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the documents of `dataset` (its config block, with `name`) from `path` with its format's loader, or
    line by line when the dataset is in line mode (`neurotext.loaders.lines`)."""
    from neurotext.loaders import import_all
    from neurotext.loaders.lines import line_documents, sentence_per_line

    if sentence_per_line(path, dataset):
        records = line_documents(path, dataset, int(dataset.get("part", 0)), int(dataset.get("parts", 1)))
        return (record for _, record in records)

    import_all()
    format_name = dataset.get("format")
    if format_name not in LOADERS:
        known = ", ".join(sorted(LOADERS))
        raise SourceError(
            f"datasets.{dataset.get('name', '?')}.format = {format_name!r} is not a known format; use one of: {known}"
        )
    return LOADERS[format_name](path, dataset)
