"""Loader `vader`: the human-rated sentiment snippets of Hutto & Gilbert (ICWSM 2014) shipped with vaderSentiment.

Source: the vaderSentiment 3.3.2 source archive (``vaderSentiment-3.3.2.tar.gz``), which holds
``additional_resources/hutto_ICWSM_2014.tar.gz``, which holds ``hutto_ICWSM_2014/<member>``; `member` comes from the
dataset's config (``tweets_GroundTruth.txt``, ``movieReviewSnippets_GroundTruth.txt``,
``amazonReviewSnippets_GroundTruth.txt``, ``nytEditorialSnippets_GroundTruth.txt``). `path` may also be the inner
``hutto_ICWSM_2014.tar.gz`` or a plain ``*_GroundTruth.txt`` file.

Format: one snippet a line, ``id TAB mean rating (-4..4) TAB text``, CRLF line ends. Encoding: UTF-8 (all four real
files decode as strict UTF-8; movie reviews hold accented names and dashes, two tweets a pound sign and an n-tilde);
a line that is not UTF-8 is a BadRecord. HTML entities (``&amp;``, ``&lt;``, ``&gt;`` in the tweets) are unescaped.

Each line is one document (doc_id = the file's id, e.g. ``"17"`` or ``"1_2"``) with `sentiment` pos (rating > 0.5),
neg (< -0.5) or neutral, and the rating as written in ``extra['sentiment_score']``. The domain comes from the
dataset's config (`domain: twitter`), applied by the corpus stage.
"""

from __future__ import annotations

import html
import math
import os
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO

from neurotext.loaders.base import BadRecord, Document, SourceError, register

INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_DIRECTORY = "hutto_ICWSM_2014"
POSITIVE_ABOVE = 0.5
NEGATIVE_BELOW = -0.5
RATING_RANGE = (-4.0, 4.0)
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def sentiment_label(rating: float) -> str:
    """pos when rating > 0.5, neg when rating < -0.5, else neutral."""
    if rating > POSITIVE_ABOVE:
        return "pos"
    if rating < NEGATIVE_BELOW:
        return "neg"
    return "neutral"


def parse_line(raw: bytes, where: str) -> Document | BadRecord | None:
    """Parse one raw line (line end included or not); None for a blank line."""
    try:
        line = raw.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as error:
        return BadRecord(where, f"not UTF-8 (byte {error.start}: {raw[error.start:error.start + 1]!r})")
    if not line.strip():
        return None
    fields = line.split("\t", 2)
    if len(fields) != 3:
        return BadRecord(where, f"expected 3 TAB-separated fields (id, rating, text), found {len(fields)}")
    doc_id, rating_text, text = (fields[0].strip(), fields[1].strip(), html.unescape(fields[2]).strip())
    try:
        rating = float(rating_text)
    except ValueError:
        rating = math.nan
    if not math.isfinite(rating) or not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        return BadRecord(where, f"rating {rating_text!r} is not a number in -4..4")
    if not doc_id:
        return BadRecord(where, "empty id")
    if not text:
        return BadRecord(where, "empty text")
    return Document(
        doc_id=doc_id,
        text=text,
        meta={"sentiment": sentiment_label(rating)},
        extra={"sentiment_score": rating_text},
    )


def _open_member(stack: ExitStack, path: str, member: str) -> tuple[IO[bytes], str]:
    """Open the GroundTruth text inside the sdist (or inner archive); return (binary stream, name for messages)."""
    outer = stack.enter_context(tarfile.open(path, "r:*"))
    inner_info = next((info for info in outer if info.name.endswith(INNER_ARCHIVE)), None)
    if inner_info is None:
        archive = outer
        where_prefix = path
    else:
        inner_stream = outer.extractfile(inner_info)
        if inner_stream is None:
            raise SourceError(f"{path}: member {inner_info.name} is not a regular file")
        archive = stack.enter_context(tarfile.open(fileobj=inner_stream, mode="r:*"))
        where_prefix = f"{path}:{inner_info.name}"
    wanted = f"{INNER_DIRECTORY}/{member}"
    info = next((info for info in archive if info.name == wanted or info.name.endswith("/" + wanted)), None)
    if info is None or not info.isfile():
        raise SourceError(
            f"{where_prefix}: no member {wanted}; check datasets.<name>.member (one of the *_GroundTruth.txt files "
            "of hutto_ICWSM_2014) or refetch the vaderSentiment 3.3.2 source archive"
        )
    stream = archive.extractfile(info)
    assert stream is not None
    return stream, f"{where_prefix}:{info.name}"


@register("vader")
def load_vader(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the snippets of `dataset['member']` from `path` (sdist, inner archive or plain ``.txt`` file)."""
    if not os.path.isfile(path):
        raise SourceError(f"{path}: source file not found; run the fetch_source rule or fix datasets.<name>.path")
    member = dataset.get("member")
    is_text = path.endswith(".txt")
    if not is_text and not member:
        raise SourceError(
            f"datasets.{dataset.get('name', '?')}.member is not set: name the GroundTruth file inside {path}, "
            "e.g. tweets_GroundTruth.txt"
        )
    with ExitStack() as stack:
        try:
            if is_text:
                stream, where = stack.enter_context(open(path, "rb")), path
            else:
                stream, where = _open_member(stack, path, str(member))
            for line_number, raw in enumerate(stream, start=1):
                record = parse_line(raw, f"{where}, line {line_number}")
                if record is not None:
                    yield record
        except _ARCHIVE_ERRORS as error:
            raise SourceError(
                f"{path}: cannot read the archive ({type(error).__name__}: {error}); the file is truncated or "
                "corrupt: delete it and rerun the fetch_source rule"
            ) from error
