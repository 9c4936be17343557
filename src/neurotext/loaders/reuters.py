"""Reuters-21578 (format `reuters`): the `reut2-000.sgm` ... `reut2-021.sgm` SGML files.

Input: the `reuters21578.tar.gz` archive, a directory holding the .sgm files, or one .sgm file. Files are read in
name order (latin-1: the collection has stray non-ASCII bytes), documents in file order. The files are not XML
(no root element, `&#3;`-style control-character entities, a DOCTYPE line), so each `<REUTERS ...> ... </REUTERS>`
record is cut out as text and its fields are taken with small patterns; entities are decoded (`&lt;` -> '<') and
control characters dropped.

Text: BODY (its trailing 'Reuter' sign-off removed). A record without BODY uses its TITLE (TYPE="BRIEF": a
headline and the filler 'Blah blah blah.', which is dropped), or for TYPE="UNPROC" the raw text.
Metadata: domain (default news), title = TITLE, category = all TOPICS joined with '|' in source order, topic = the
first topic, split = LEWISSPLIT (train, test, not-used), year from DATE, author from AUTHOR ('By X, Reuters' -> X).
`extra`: places, people, orgs, exchanges, companies ('|'-joined, when present), topics_attr (the TOPICS attribute:
YES/NO/BYPASS), cgisplit, oldid, dateline. The doc id is NEWID. A record without NEWID or without its closing tag
(a truncated file) is reported as a bad record.

Dataset options: `require_category` (default false: keep documents without topics), `lewis_splits` (default: all),
`modapte` (default false; true keeps the ModApte split's documents with a category: LEWISSPLIT TRAIN or TEST,
TOPICS="YES", at least one topic; 7,769 + 3,019 documents, as NLTK's Reuters corpus), `expected_files` (default
none: when set, that many reut2-*.sgm files must be present: the collection has 22).
"""

from __future__ import annotations

import html
import os
import posixpath
import re
from collections.abc import Iterator

from neurotext.loaders._common import (
    archive_kind,
    check_meta,
    dataset_meta,
    iter_directory_files,
    iter_tar_files,
    read_errors_as_source_error,
    year_of,
)
from neurotext.loaders.base import BadRecord, Document, SourceError, empty_file, register

_SGM_NAME = re.compile(r"(?:^|/)reut2-\d{3}\.sgm$")
_ATTRIBUTE = re.compile(r'([A-Z]+)="([^"]*)"')
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SIGN_OFF = re.compile(r"\s*\breuter\s*$", re.IGNORECASE)
_BRIEF_FILLER = re.compile(r"^\s*blah blah blah\.?\s*$", re.IGNORECASE)
_AUTHOR = re.compile(r"^\s*by\s+(.+?)(?:,\s*reuters?)?\s*$", re.IGNORECASE | re.DOTALL)
_D_ITEM = re.compile(r"<D>(.*?)</D>", re.DOTALL)
_LIST_FIELDS = ("places", "people", "orgs", "exchanges", "companies")
OPEN, CLOSE = "<REUTERS", "</REUTERS>"


@register("reuters")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the Reuters-21578 documents (see the module docstring)."""
    modapte = bool(dataset.get("modapte", False))
    require_category = modapte or bool(dataset.get("require_category", False))
    splits = ["train", "test"] if modapte else dataset.get("lewis_splits")
    keep_splits = None if splits is None else {str(s).lower() for s in splits}
    shared = dataset_meta(dataset, "news")
    files = list(_sgm_files(path))
    expected = dataset.get("expected_files")
    if expected is not None and len(files) != int(expected):
        names = ", ".join(name for name, _ in files[:3])
        raise SourceError(
            f"{path}: holds {len(files)} reut2-*.sgm files ({names} ...), expected {expected}; a file is missing: "
            "fetch the archive again (or unset the dataset's `expected_files`)"
        )
    for name, data in files:
        if not data.strip():
            yield empty_file(name)
            continue
        for item in iter_records(data.decode("latin-1"), name):
            if isinstance(item, BadRecord):
                yield item
                continue
            document = to_document(item, shared)
            if document is None:
                continue
            if require_category and not document.meta.get("category"):
                continue
            if modapte and document.extra.get("topics_attr") != "YES":
                continue
            if keep_splits is not None and document.meta.get("split") not in keep_splits:
                continue
            yield document


def _sgm_files(path: str) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of each .sgm file, in name order."""
    kind = archive_kind(path)
    if kind == "tar":
        found = dict(iter_tar_files(path, lambda name: _SGM_NAME.search(name) is not None))
        if not found:
            raise SourceError(f"{path}: no reut2-NNN.sgm files in the archive; is it reuters21578.tar.gz?")
        for name in sorted(found, key=posixpath.basename):
            yield f"{path}:{name}", found[name]
    elif kind == "dir":
        names = [name for name in iter_directory_files(path, ".sgm") if _SGM_NAME.search("/" + name)]
        if not names:
            raise SourceError(f"{path}: no reut2-NNN.sgm files in this directory; fix the dataset's path")
        for name in sorted(names, key=posixpath.basename):
            where = os.path.join(path, name)
            with read_errors_as_source_error(where), open(where, "rb") as handle:
                yield where, handle.read()
    else:
        with read_errors_as_source_error(path), open(path, "rb") as handle:
            data = handle.read()
        if OPEN.encode() not in data:
            raise SourceError(f"{path}: no <REUTERS> records; give a reut2-NNN.sgm file, their directory or archive")
        yield path, data


def iter_records(text: str, where: str) -> Iterator[tuple[str, dict[str, str], str] | BadRecord]:
    """(location, attributes, inner SGML) of each <REUTERS> record of one file, or a BadRecord for a broken one."""
    position, line = 0, 1
    while True:
        start = text.find(OPEN, position)
        if start < 0:
            return
        line += text.count("\n", position, start)
        location = f"{where}:{line}"
        tag_end = text.find(">", start)
        close = text.find(CLOSE, start)
        following = text.find(OPEN, start + len(OPEN))
        if tag_end < 0 or close < 0 or (0 <= following < close):
            yield BadRecord(location, "<REUTERS> record without its closing </REUTERS> (truncated file?)")
            if following < 0:
                return
            line += text.count("\n", start, following)
            position = following
            continue
        attributes = dict(_ATTRIBUTE.findall(text[start:tag_end]))
        yield location, attributes, text[tag_end + 1 : close]
        line += text.count("\n", start, close)
        position = close + len(CLOSE)


def to_document(record: tuple[str, dict[str, str], str], shared: dict) -> Document | BadRecord | None:
    """A Document from one record; None when it holds no text at all."""
    location, attributes, inner = record
    newid = attributes.get("NEWID")
    if not newid:
        return BadRecord(location, "<REUTERS> record without a NEWID attribute")
    title = _clean(_field(inner, "TITLE"))
    body = _field(inner, "BODY")
    text_type = _text_type(inner)
    if body is not None:
        text = _SIGN_OFF.sub("", _clean_block(body))
    elif text_type == "UNPROC":
        raw = _field(inner, "TEXT") or ""
        text = _SIGN_OFF.sub("", _clean_block(re.sub(r"<[^>]+>", " ", raw)))
    else:
        text = title or ""
    # May be empty (a brief of only "blah blah blah"): a document lost to cleaning, named in the losses.
    text = "\n".join(line for line in text.split("\n") if not _BRIEF_FILLER.match(line)).strip()
    topics = _items(inner, "TOPICS")
    meta = {
        **shared,
        "title": title or None,
        "category": "|".join(topics) or None,
        "topic": topics[0] if topics else None,
        "split": attributes.get("LEWISSPLIT", "").lower() or None,
        "year": year_of(_field(inner, "DATE")),
        "author": _author(_field(inner, "AUTHOR")),
    }
    extra = {name: "|".join(values) for name in _LIST_FIELDS if (values := _items(inner, name.upper()))}
    extra.update(
        {
            key: value
            for key, value in (
                ("topics_attr", attributes.get("TOPICS", "")),
                ("cgisplit", attributes.get("CGISPLIT", "")),
                ("oldid", attributes.get("OLDID", "")),
                ("dateline", _clean(_field(inner, "DATELINE")).rstrip(" -")),
                ("text_type", text_type or ""),
            )
            if value
        }
    )
    return Document(newid, text=text, meta=check_meta(meta), extra=extra)


def _field(inner: str, tag: str) -> str | None:
    """Raw content of the first <TAG ...>...</TAG> in a record, or None."""
    match = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}>", inner, re.DOTALL)
    return match.group(1) if match else None


def _text_type(inner: str) -> str | None:
    match = re.search(r'<TEXT\b[^>]*\bTYPE="([A-Z]+)"', inner)
    return match.group(1) if match else None


def _items(inner: str, tag: str) -> list[str]:
    """The <D> items of a list field (TOPICS, PLACES, ...), decoded."""
    block = _field(inner, tag)
    return [_clean(item) for item in _D_ITEM.findall(block or "") if _clean(item)]


def _clean(value: str | None) -> str:
    """Entities decoded, control characters dropped, whitespace collapsed to single spaces."""
    if not value:
        return ""
    return " ".join(_CONTROL.sub(" ", html.unescape(value)).split())


def _clean_block(value: str) -> str:
    """Like `_clean` but keeping line breaks (spaces collapsed within each line)."""
    decoded = _CONTROL.sub(" ", html.unescape(value).replace("\r\n", "\n"))
    return "\n".join(" ".join(line.split()) for line in decoded.split("\n")).strip()


def _author(value: str | None) -> str | None:
    """'    By Greg McCune, Reuters' -> 'Greg McCune'."""
    cleaned = _clean(value)
    if not cleaned:
        return None
    match = _AUTHOR.match(cleaned)
    return (match.group(1) if match else cleaned).strip() or None
