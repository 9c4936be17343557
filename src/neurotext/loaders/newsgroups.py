"""20 Newsgroups (format `newsgroups`): `20news-bydate.tar.gz`, its extracted directory, or gensim's `mini_newsgroup`.

- `20news-bydate.tar.gz` (or the directory it unpacks to): members `20news-bydate-{train,test}/<group>/<id>`, one
  post a file, latin-1. Streamed in archive order (a directory: sorted paths, numeric ids in numeric order).
- gensim's `mini_newsgroup` (200 real posts of alt.atheism and sci.space): a zlib-compressed protocol-0 pickle of a
  scikit-learn Bunch, read from the gensim wheel or sdist (`member: gensim/test/test_data/mini_newsgroup`) or as the
  extracted file. It is unpickled by `RestrictedUnpickler`, which admits only the six globals that file references
  (a Bunch becomes a plain dict subclass; numpy arrays are rebuilt by numpy's own reconstruction functions) and
  refuses everything else, so package data can never run code.

Each post is cleaned as scikit-learn's `fetch_20newsgroups(remove=('headers', 'footers', 'quotes'))` does (same
rules, reimplemented: `strip_header`, `strip_footer`, `strip_quoting`); a post left empty is passed on without
text (a document lost to cleaning, named in `corpus/<dataset>.losses.tsv`).
Metadata: domain (default news), topic = the group, title = the Subject header, split = train/test (bydate; none
for the mini sample); `extra`: top_topic (the group's first component: alt, comp, misc, rec, sci, soc, talk).

Dataset options: `member`, `encoding` (default latin-1), `remove` (subset of [headers, footers, quotes], default
all three), `splits` (default [train, test]).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from neurotext.loaders._common import (
    archive_kind,
    check_meta,
    dataset_meta,
    decode_text,
    file_magic,
    iter_directory_files,
    iter_tar_files,
    open_member,
    read_errors_as_source_error,
)
from neurotext.loaders.base import BadRecord, Document, SourceError, empty_file, register

_BYDATE_MEMBER = re.compile(r"(?:^|/)20news-bydate-(train|test)/([a-z0-9.+-]+)/(\d+)$")
_MINI_FILENAME = re.compile(r"([a-z0-9.+-]+)/(\d+)$")
_QUOTE_LINE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^In article|^Quoted from|^\||^>)")
_SUBJECT = re.compile(r"^Subject:[ \t]*(.*)$", re.MULTILINE | re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^(?:re:\s*)+", re.IGNORECASE)
ALL_PARTS = ("headers", "footers", "quotes")


@dataclass(frozen=True)
class Post:
    """One raw newsgroup post: its id, group, split (or None) and full text with headers."""

    post_id: str
    group: str
    split: str | None
    raw: str


# -- scikit-learn's three cleaning rules, reimplemented ------------------------------------------------------------


def strip_header(text: str) -> str:
    """Drop everything up to the first blank line (the headers)."""
    _headers, _blank, body = text.partition("\n\n")
    return body


def strip_quoting(text: str) -> str:
    """Drop lines that quote another post ('>' or '|' lines) or introduce a quote ('... writes:', 'In article')."""
    return "\n".join(line for line in text.split("\n") if not _QUOTE_LINE.search(line))


def strip_footer(text: str) -> str:
    """Drop the signature: everything from the last line that is empty or only dashes, unless that is line 0."""
    lines = text.strip().split("\n")
    cut = 0
    for cut in range(len(lines) - 1, -1, -1):
        if lines[cut].strip().strip("-") == "":
            break
    return "\n".join(lines[:cut]) if cut > 0 else text


def clean_post(raw: str, remove: tuple[str, ...] = ALL_PARTS) -> str:
    """A post's text with headers, signature and quoted replies removed (in scikit-learn's order)."""
    text = raw
    if "headers" in remove:
        text = strip_header(text)
    if "footers" in remove:
        text = strip_footer(text)
    if "quotes" in remove:
        text = strip_quoting(text)
    return text.strip()


def subject_of(raw: str) -> str | None:
    """The Subject header without 'Re:' prefixes, or None."""
    headers = raw.partition("\n\n")[0]
    match = _SUBJECT.search(headers)
    if not match:
        return None
    subject = _REPLY_PREFIX.sub("", match.group(1).strip())
    return subject or None


# -- the restricted unpickler ------------------------------------------------------------------------------------


class Bunch(dict):
    """Stands in for scikit-learn's Bunch: a plain dict (attribute access is not needed)."""


def _numpy_globals() -> dict[tuple[str, str], object]:
    import numpy

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): numpy.ndarray,
        ("numpy", "dtype"): numpy.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles gensim's mini_newsgroup and nothing else: only the exact globals that file references are found.

    The file (a protocol-0 pickle written by Python 2) references: copy_reg._reconstructor, __builtin__.dict,
    sklearn.datasets.base.Bunch, numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype (checked with
    pickletools). Their Python 3 names are admitted too. Any other global raises UnpicklingError.
    """

    def find_class(self, module: str, name: str) -> object:
        import copyreg

        allowed: dict[tuple[str, str], object] = {
            ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
            ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
            ("__builtin__", "dict"): dict,
            ("builtins", "dict"): dict,
            ("sklearn.datasets.base", "Bunch"): Bunch,
            ("sklearn.utils._bunch", "Bunch"): Bunch,
            ("sklearn.utils", "Bunch"): Bunch,
            **_numpy_globals(),
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a newsgroups pickle")
        return allowed[(module, name)]


def load_mini_newsgroup(data: bytes, where: str) -> list[Post]:
    """The posts of gensim's mini_newsgroup file (zlib-compressed pickle bytes), in file order."""
    try:
        bunch = RestrictedUnpickler(io.BytesIO(zlib.decompress(data)), encoding="latin1").load()
    except zlib.error as error:
        raise SourceError(f"{where}: not a zlib-compressed newsgroups pickle ({error}); fetch it again") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise SourceError(f"{where}: not a readable newsgroups pickle ({error})") from error
    if not isinstance(bunch, dict) or not {"data", "target", "target_names"} <= set(bunch):
        raise SourceError(f"{where}: the pickle is not a newsgroups Bunch (needs data, target, target_names)")
    filenames = bunch.get("filenames")
    posts = []
    for index, (raw, target) in enumerate(zip(bunch["data"], bunch["target"], strict=True)):
        group = str(bunch["target_names"][int(target)])
        post_id = str(index)
        if filenames is not None:
            name = filenames[index]
            name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            match = _MINI_FILENAME.search(name)
            if match:
                post_id = match.group(2)
        posts.append(Post(post_id, group, None, str(raw)))
    return posts


# -- the loader ----------------------------------------------------------------------------------------------------


@register("newsgroups")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the posts of a 20 Newsgroups source as cleaned documents (see the module docstring)."""
    remove = tuple(dataset.get("remove", ALL_PARTS))
    unknown = set(remove) - set(ALL_PARTS)
    if unknown:
        raise SourceError(f"datasets.{dataset.get('name', '?')}.remove: unknown {sorted(unknown)}; use {ALL_PARTS}")
    shared = dataset_meta(dataset, "news")
    for item in iter_posts(path, dataset):
        if isinstance(item, BadRecord):
            yield item
            continue
        text = clean_post(item.raw, remove)  # may be empty: a document lost to cleaning (named in the losses)
        meta = check_meta({**shared, "topic": item.group, "split": item.split, "title": subject_of(item.raw)})
        doc_id = f"{item.split}/{item.group}/{item.post_id}" if item.split else f"{item.group}/{item.post_id}"
        yield Document(doc_id, text=text, meta=meta, extra={"top_topic": item.group.split(".")[0]})


def iter_posts(path: str, dataset: dict) -> Iterator[Post | BadRecord]:
    """Raw posts of any accepted layout, in source order."""
    encoding = dataset.get("encoding", "latin-1")
    splits = set(dataset.get("splits", ["train", "test"]))
    member = dataset.get("member")
    kind = archive_kind(path)
    if member is not None or (kind == "file" and file_magic(path)[:1] == b"x"):
        with open_member(path, member) as (stream, where), read_errors_as_source_error(where):
            data = stream.read()
        yield from load_mini_newsgroup(data, where)
        return
    found = 0
    if kind == "tar":
        for name, data in iter_tar_files(path, lambda name: _BYDATE_MEMBER.search(name) is not None):
            match = _BYDATE_MEMBER.search(name)
            assert match is not None
            if match.group(1) in splits:
                found += 1
                yield _post(match, data, encoding, f"{path}:{name}")
    elif kind == "dir":
        for relative in sorted(iter_directory_files(path), key=_numeric_order):
            match = _BYDATE_MEMBER.search(relative)
            if match and match.group(1) in splits:
                found += 1
                with open(os.path.join(path, relative), "rb") as handle:
                    yield _post(match, handle.read(), encoding, f"{path}/{relative}")
    else:
        raise SourceError(
            f"{path}: neither 20news-bydate.tar.gz, its directory, nor gensim's mini_newsgroup; check the path"
        )
    if not found:
        raise SourceError(
            f"{path}: no 20news-bydate-{{train,test}}/<group>/<id> files for splits {sorted(splits)}; is this the "
            "20news-bydate archive? (a truncated download holds fewer files: fetch it again)"
        )


def _post(match: re.Match[str], data: bytes, encoding: str, where: str) -> Post | BadRecord:
    if not data.strip():
        return empty_file(where)
    try:
        raw = decode_text(data, encoding, where)
    except ValueError as error:
        return BadRecord(where, str(error))
    return Post(match.group(3), match.group(2), match.group(1), raw.replace("\r\n", "\n"))


def _numeric_order(relative: str) -> tuple:
    """Sort key of a directory file: train before test, then group, then the numeric post id."""
    match = _BYDATE_MEMBER.search(relative)
    if not match:
        return (2, relative, 0)
    return (0 if match.group(1) == "train" else 1, match.group(2), int(match.group(3)))
