"""Documents and records a dataset loses, named: ``corpus/{dataset}.losses.tsv`` (and one file per part).

Nothing is lost silently: every document the loader yields either keeps at least one sentence in the dataset's
corpus file, or has a row here saying why it has none; every record the loader could not read has a row too.
Documents left out by the seeded cap (`corpus.max_sentences_per_dataset`) are a sample, not a loss: not listed.

Columns (TSV with a header, rows in source order, i.e. by `doc_index`):

- ``doc_index``: the record's position in the source (0-based; in line mode the document's byte block);
- ``doc_id``: the document's id (empty for a bad record);
- ``loss``: ``cleaning`` (every sentence dropped by `corpus.clean`, or no sentence at all), ``duplicates`` (every
  kept sentence repeats an earlier one of the dataset), ``bad_record`` (an unreadable record, skipped), or
  ``empty_file`` (an empty source file; also a bad record, counted against `corpus.max_bad_records`);
- ``where``: file and line (or member, or byte offset) of a bad record or empty file;
- ``detail``: the sentences dropped per reason, or the reason a record is bad.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from neurotext.io import write_text

LOSS_COLUMNS = ("doc_index", "doc_id", "loss", "where", "detail")
LOSS_KINDS = ("cleaning", "duplicates", "bad_record", "empty_file")


@dataclass(frozen=True, order=True)
class Loss:
    """One row of a losses file (see the module docstring)."""

    doc_index: int
    doc_id: str
    loss: str
    where: str = ""
    detail: str = ""


def losses_tsv(losses: Iterable[Loss]) -> str:
    """The TSV text of `losses` in source order (sorted by doc_index, then the other columns)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(LOSS_COLUMNS)
    for loss in sorted(losses):
        writer.writerow(astuple(loss))
    return buffer.getvalue()


def write_losses(path: str, losses: Iterable[Loss]) -> None:
    """Write a losses file atomically."""
    write_text(path, losses_tsv(losses))


def read_losses(path: str) -> list[Loss]:
    """The rows of a losses file written by `write_losses`."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != LOSS_COLUMNS:
            raise ValueError(f"{path}: not a losses file (header {header}); delete it and rerun the corpus stage")
        return [Loss(int(row[0]), row[1], row[2], row[3], row[4]) for row in reader]
