"""Constants and the part counters shared by the corpus stage's modules (parts, merge, stats)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from neurotext.cleaning import DROP_REASONS

#: Key of the part counters (`PartStats`, JSON) in a part file's parquet key-value metadata.
PART_STATS_KEY = b"neurotext.part_stats"
#: Key of the dataset summary (JSON) in the schema metadata of `corpus/{dataset}.parquet`.
CORPUS_STATS_KEY = b"neurotext.corpus_stats"
BATCH_ROWS = 65_536
HASH_CHUNK_ROWS = 1 << 18
SLICE_ROWS = 1 << 18  # rows per slice (and parquet row group) of a merged corpus file
BAD_RECORDS_SHOWN = 5


@dataclass
class PartStats:
    """Counts of one part (summed over parts for a dataset); stored as JSON in the part file's metadata.

    `documents`: documents the loader yielded (read); `documents_without_sentences`: of these, documents that lost
    every sentence to cleaning (or had none); `bad_records`: records skipped as unreadable, `empty_files` of them
    empty source files; `dropped`: sentences dropped by cleaning, per reason.
    """

    documents: int = 0
    documents_without_sentences: int = 0
    sentences_split: int = 0
    sentences_kept: int = 0
    bad_records: int = 0
    empty_files: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {reason: 0 for reason in DROP_REASONS})

    COUNTS = (
        "documents",
        "documents_without_sentences",
        "sentences_split",
        "sentences_kept",
        "bad_records",
        "empty_files",
    )

    def add(self, other: PartStats) -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: bytes | str | None) -> PartStats:
        return cls(**json.loads(text)) if text else cls()
