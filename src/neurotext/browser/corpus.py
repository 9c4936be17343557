"""The corpus side of the browser: texts and metadata of the shown sentences (`read_corpus`, through
`neurotext.artifacts.corpus`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurotext.artifacts.corpus import read_corpus_rows

log = logging.getLogger("neurotext.browser")

PathLike = str | os.PathLike[str]

#: Metadata fields shown beside each sentence (after dataset and domain), each value cut to `_DETAIL_CHARS`.
SENTENCE_DETAIL_FIELDS = ("sentiment", "topic", "category", "genre", "author", "entity", "title", "year")
_DETAIL_CHARS = 60


@dataclass(frozen=True)
class SentenceInfo:
    """A shown sentence's text and the metadata printed beside it."""

    text: str
    dataset: str
    domain: str | None
    detail: str


def _detail(row: Mapping[str, Any]) -> str:
    parts = []
    for name in SENTENCE_DETAIL_FIELDS:
        value = row.get(name)
        if value is not None and str(value) != "":
            text = str(value)
            parts.append(f"{name}: {text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + '…'}")
    return "; ".join(parts)


def read_corpus(corpus_files: Sequence[PathLike], wanted: np.ndarray) -> dict[int, SentenceInfo]:
    """Texts and metadata of the `wanted` sentence ids (`artifacts.corpus.read_corpus_rows`: row groups without a
    wanted id are skipped). A wanted id found nowhere is left out (logged; the page shows it as missing)."""
    wanted = np.unique(np.asarray(wanted, np.uint32))
    columns = ["sentence_id", "dataset", "text", "domain", *SENTENCE_DETAIL_FIELDS]
    table = read_corpus_rows(corpus_files, wanted, columns, missing="skip")
    found: dict[int, SentenceInfo] = {}
    for row in table.to_pylist():
        found[int(row["sentence_id"])] = SentenceInfo(row["text"], row.get("dataset") or "", row.get("domain"),
                                                      _detail(row))  # fmt: skip
    if len(found) < len(wanted):
        lost = np.setdiff1d(wanted, np.fromiter(found, np.uint32, len(found)))
        log.warning("%d shown sentence ids are in no corpus file (first: %d); they are shown as missing",
                    len(lost), int(lost[0]))  # fmt: skip
    return found
