"""IMDB Large Movie Review Dataset (format `imdb`): `aclImdb_v1.tar.gz` or the `aclImdb/` directory it unpacks to.

Reviews are the files `aclImdb/{train,test}/{pos,neg,unsup}/<id>_<rating>.txt` (UTF-8, one review a file, line
breaks written as `<br />`); everything else in the archive (vocabularies, bag-of-words features, URL lists) is
skipped. The archive is streamed in archive order; a directory is read in sorted order (train before test, then
neg, pos, unsup, ids numerically).

Text: the review with `<br />` tags turned into line breaks and HTML entities decoded. Metadata: domain (default
review), sentiment pos/neg (none for unsup), split train/test. `extra`: rating (1-10; 0 for unsup in the file
names, so left out there), label (pos/neg/unsup). The doc id is `<split>/<label>/<id>`.

Dataset options: `splits` (default [train, test]), `labels` (default [pos, neg, unsup]).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator

from neurotext.loaders._common import (
    archive_kind,
    check_meta,
    dataset_meta,
    decode_text,
    iter_directory_files,
    iter_tar_files,
)
from neurotext.loaders.base import BadRecord, Document, SourceError, empty_file, register

_REVIEW_NAME = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LABEL_ORDER = {"neg": 0, "pos": 1, "unsup": 2}


@register("imdb")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the reviews as documents (see the module docstring)."""
    splits = set(dataset.get("splits", ["train", "test"]))
    labels = set(dataset.get("labels", ["pos", "neg", "unsup"]))
    shared = dataset_meta(dataset, "review")
    found = 0
    for name, data, where in _review_files(path):
        match = _REVIEW_NAME.search(name)
        if match is None or match.group(1) not in splits or match.group(2) not in labels:
            continue
        found += 1
        split, label, review_id, rating = match.groups()
        if not data.strip():
            yield empty_file(where)
            continue
        try:
            raw = decode_text(data, "utf-8", where)
        except ValueError as error:
            yield BadRecord(where, str(error))
            continue
        text = clean_review(raw)  # may be empty (a review of only markup): a document lost to cleaning, named
        meta = {**shared, "sentiment": None if label == "unsup" else label, "split": split}
        extra = {"label": label} if label == "unsup" else {"label": label, "rating": str(int(rating))}
        yield Document(f"{split}/{label}/{review_id}", text=text, meta=check_meta(meta), extra=extra)
    if not found:
        raise SourceError(
            f"{path}: no aclImdb/{{train,test}}/{{pos,neg,unsup}}/<id>_<rating>.txt files for splits "
            f"{sorted(splits)} and labels {sorted(labels)}; is this aclImdb_v1.tar.gz (fetch it again if truncated)?"
        )


def clean_review(raw: str) -> str:
    """A review's text: `<br />` -> line break, entities decoded, surrounding space stripped."""
    return html.unescape(_BREAK.sub("\n", raw)).strip()


def _review_files(path: str) -> Iterator[tuple[str, bytes, str]]:
    """(member name, bytes, where) of every file that may be a review, in source order."""
    kind = archive_kind(path)
    if kind == "tar":
        for name, data in iter_tar_files(path, lambda name: _REVIEW_NAME.search(name) is not None):
            yield name, data, f"{path}:{name}"
    elif kind == "dir":
        names = [name for name in iter_directory_files(path, ".txt") if _REVIEW_NAME.search("/" + name)]
        for name in sorted(names, key=_directory_order):
            with open(os.path.join(path, name), "rb") as handle:
                yield name, handle.read(), os.path.join(path, name)
    else:
        raise SourceError(f"{path}: not a tar archive or a directory; give aclImdb_v1.tar.gz or the aclImdb folder")


def _directory_order(name: str) -> tuple:
    match = _REVIEW_NAME.search("/" + name)
    assert match is not None
    split, label, review_id, _rating = match.groups()
    return (0 if split == "train" else 1, _LABEL_ORDER[label], int(review_id))
