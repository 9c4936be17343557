"""Sentiment140 (format `sentiment140`): `training.1600000.processed.noemoticon.csv`.

No header; six quoted columns: polarity (0 = negative, 2 = neutral, 4 = positive), tweet id, date
('Mon Apr 06 22:19:45 PDT 2009'), query ('NO_QUERY'), user, text. Encoding latin-1, but the file mixes latin-1 lines
with UTF-8 ones ('naÃ¯ve' when read as latin-1): a line that is valid UTF-8 is read as UTF-8, any other in
`encoding` (option `repair_utf8`, default true; latin-1 reads every byte, so a line never fails to decode).

The source is the CSV itself (also .gz/.bz2/.xz) or the distributed `trainingandtestdata.zip` with `member` naming
the CSV. Streamed line by line: one tweet a line, parsed with the csv module; a line that is not six fields is
reported as a bad record (file:line).

Text: the tweet with HTML entities decoded (`&quot;` -> '"', `&amp;` -> '&'; option `unescape_html`, default true).
Metadata: domain (default twitter), sentiment neg/neutral/pos, author = user, year from the date, split (option
`split`; default from the file name: 'test' in it -> test, else train). `extra`: polarity, date, query. The doc id
is the tweet id (the training file repeats some ids).

Dataset options: `member`, `encoding` (default latin-1), `repair_utf8`, `unescape_html`, `split`.
"""

from __future__ import annotations

import csv
import html
import os
from collections.abc import Iterator

from neurotext.loaders._common import check_meta, dataset_meta, open_member, year_of
from neurotext.loaders.base import BadRecord, Document, SourceError, register

POLARITY = {"0": "neg", "2": "neutral", "4": "pos"}
N_COLUMNS = 6
#: This many bad lines before the first good one means the file is not in this format at all.
GIVE_UP_AFTER = 20


@register("sentiment140")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the tweets of a Sentiment140 CSV as documents (see the module docstring)."""
    encoding = dataset.get("encoding", "latin-1")
    unescape = bool(dataset.get("unescape_html", True))
    repair_utf8 = bool(dataset.get("repair_utf8", True))
    shared = dataset_meta(dataset, "twitter")
    good = bad = 0
    with open_member(path, dataset.get("member")) as (stream, where):
        split = dataset.get("split") or split_of(dataset.get("member") or path)
        for line_number, raw_line in enumerate(stream, start=1):
            item = parse_line(raw_line, encoding, f"{where}:{line_number}", repair_utf8)
            if isinstance(item, BadRecord):
                bad += 1
                if not good and bad >= GIVE_UP_AFTER:
                    raise SourceError(
                        f"{where}: the first {bad} lines are not Sentiment140 CSV rows (6 quoted fields; last: "
                        f"{item.reason}); is this training.1600000.processed.noemoticon.csv?"
                    )
                yield item
                continue
            good += 1
            polarity, tweet_id, date, query, user, text = item
            meta = {
                **shared,
                "sentiment": POLARITY[polarity],
                "author": user,
                "year": year_of(date.rsplit(" ", 1)[-1]),
                "split": split,
            }
            yield Document(
                tweet_id,
                text=html.unescape(text) if unescape else text,
                meta=check_meta(meta),
                extra={"polarity": polarity, "date": date, "query": query},
            )
    if not good and not bad:
        raise SourceError(f"{path}: empty file; fetch it again")


def split_of(name: str) -> str:
    """'test' for the test file (testdata.manual.2009.06.14.csv), else 'train'."""
    base = os.path.basename(name).lower()
    return "test" if "test" in base and "training" not in base else "train"


def _decode(raw_line: bytes, encoding: str, repair_utf8: bool) -> str:
    """A line as text: UTF-8 when it is valid UTF-8 (and `repair_utf8`), else in `encoding`."""
    if repair_utf8:
        try:
            return raw_line.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return raw_line.decode(encoding)


def parse_line(raw_line: bytes, encoding: str, where: str, repair_utf8: bool = True) -> list[str] | BadRecord:
    """The six fields of one CSV line, or a BadRecord saying what is wrong."""
    try:
        line = _decode(raw_line, encoding, repair_utf8)
    except UnicodeDecodeError as error:
        return BadRecord(where, f"not {encoding} ({error}); set the dataset's `encoding`")
    except LookupError:
        raise SourceError(f"{where}: unknown encoding {encoding!r}; set the dataset's `encoding`") from None
    line = line.rstrip("\r\n")
    if not line:
        return BadRecord(where, "empty line")
    try:
        fields = next(csv.reader([line], strict=True))
    except csv.Error as error:
        return BadRecord(where, f"not a CSV row ({error})")
    if len(fields) != N_COLUMNS:
        return BadRecord(where, f"{len(fields)} fields, expected {N_COLUMNS}")
    if fields[0] not in POLARITY:
        return BadRecord(where, f"polarity {fields[0]!r} is not 0, 2 or 4")
    if not fields[1].strip():
        return BadRecord(where, "no tweet id")
    return fields
