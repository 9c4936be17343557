"""Line mode (`datasets.<name>.sentence_per_line: true`): every non-empty line of a plain-text file is a sentence.

For sources that are already one sentence a line, like BookCorpus's published ``books_large_p1.txt`` and
``books_large_p2.txt`` (74M lowercased, tokenized sentences, several GB): no Punkt, no re-splitting
("dr. mcdreamy" stays one sentence). Line mode is the default for a ``bookcorpus`` dataset whose path is such a
file or a folder holding them; any dataset may set it.

Streaming and parts. The source is a plain (uncompressed) file or a folder of ``.txt`` files (sorted by path;
archives must be extracted first: their members cannot be split by byte range). The files, in that order, are cut
into blocks of `LINE_BLOCK_BYTES` bytes (numbered across files); a line belongs to the block holding its first
byte, and the non-empty lines of one block form one document (doc id ``<file>:<byte offset of its first line>``,
doc_index = the block number), so documents never depend on `parts`. Part p of P reads the blocks
``[p * N // P, (p + 1) * N // P)`` of the N blocks: a byte range per file, entered at the first line that starts
in it and left after the last one; every line is thus read by exactly one part. Memory is constant: one line
(at most `MAX_LINE_BYTES`; a longer one is a bad record) and one block's lines at a time.

Bad records: a line that is not valid in `encoding` (named by file and byte offset), a line longer than
`MAX_LINE_BYTES`, an empty file (reported by part 0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from neurotext.loaders._common import archive_kind, check_meta, dataset_meta, iter_directory_files
from neurotext.loaders.base import EMPTY_FILE, BadRecord, Document, SourceError

#: Bytes of a line-mode block (one document: about 1,000 sentences of BookCorpus).
LINE_BLOCK_BYTES = 1 << 16
#: Longest line read (bytes); a longer one is skipped as a bad record.
MAX_LINE_BYTES = 1 << 20
#: The published BookCorpus files, one sentence a line: line mode by default.
BOOKCORPUS_LINE_FILE = re.compile(r"(^|/)books_large_p\d+\.txt$")
_SKIP_CHUNK = 1 << 16


def sentence_per_line(path: str, dataset: dict) -> bool:
    """Whether `dataset` is read in line mode: its `sentence_per_line` key, else True for a ``bookcorpus`` dataset
    whose path is a ``books_large_p<N>.txt`` file or a folder holding some."""
    declared = dataset.get("sentence_per_line")
    if declared is not None:
        return bool(declared)
    if dataset.get("format") != "bookcorpus":
        return False
    if os.path.isdir(path):
        return any(BOOKCORPUS_LINE_FILE.search(name) for name in iter_directory_files(path, ".txt"))
    return bool(BOOKCORPUS_LINE_FILE.search(os.path.basename(path)))


@dataclass(frozen=True)
class LineFile:
    """One file of a line-mode source: its path, name in doc ids, size (bytes) and first block number."""

    path: str
    name: str
    size: int
    first_block: int

    @property
    def blocks(self) -> int:
        return -(-self.size // LINE_BLOCK_BYTES)


def line_files(path: str, dataset: dict) -> list[LineFile]:
    """The files of a line-mode source in reading order, with their block numbering."""
    name = dataset.get("name", "?")
    if not os.path.exists(path):
        raise SourceError(f"datasets.{name}.path = {path!r}: no such file or folder; fetch it or fix the path")
    kind = archive_kind(path)
    if kind == "dir":
        names = iter_directory_files(path, ".txt")
        paths = [(os.path.join(path, relative), relative.removesuffix(".txt")) for relative in names]
        if not paths:
            raise SourceError(f"datasets.{name}.path = {path!r}: no .txt files in this folder (sentence_per_line)")
    elif kind == "file":
        paths = [(path, os.path.basename(path).removesuffix(".txt"))]
    else:
        raise SourceError(
            f"datasets.{name}.path = {path!r} is a {kind} archive: sentence_per_line reads plain files by byte "
            "range; extract it (e.g. `tar xf`) and point the path at the extracted file or folder"
        )
    files, first_block = [], 0
    for file_path, file_name in paths:
        line_file = LineFile(file_path, file_name, os.path.getsize(file_path), first_block)
        files.append(line_file)
        first_block += line_file.blocks
    return files


def part_blocks(total_blocks: int, part: int, parts: int) -> tuple[int, int]:
    """The block range [first, end) of `part` of `parts` (contiguous, balanced, covering 0..total_blocks)."""
    return part * total_blocks // parts, (part + 1) * total_blocks // parts


def _skip_line(handle: BinaryIO) -> int:
    """Read up to and including the next newline (or the end); return the bytes read."""
    skipped = 0
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def range_lines(path: str, start: int, end: int) -> Iterator[tuple[int, bytes | None]]:
    """(byte offset, line bytes with its newline) of every line of `path` that starts in [start, end); None for a
    line longer than MAX_LINE_BYTES (skipped without being held)."""
    with open(path, "rb") as handle:
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                _skip_line(handle)  # the line in progress at `start` belongs to the range before
        offset = handle.tell()
        while offset < end:
            line = handle.readline(MAX_LINE_BYTES)
            if not line:
                return
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                yield offset, None
                offset += len(line) + _skip_line(handle)
                continue
            yield offset, line
            offset += len(line)


def line_documents(
    path: str, dataset: dict, part: int = 0, parts: int = 1
) -> Iterator[tuple[int, Document | BadRecord]]:
    """(doc_index, document or bad record) of `part` of a line-mode source, in source order (module docstring).

    Documents hold their lines as `sentences` (stripped of the line end and surrounding whitespace).
    """
    encoding = dataset.get("encoding", "utf-8")
    shared = check_meta(dataset_meta(dataset, "book" if dataset.get("format") == "bookcorpus" else None))
    files = line_files(path, dataset)
    total = files[-1].first_block + files[-1].blocks
    first, end = part_blocks(total, part, parts)
    for line_file in files:
        if line_file.size == 0:
            if part == 0:
                yield line_file.first_block, BadRecord(line_file.path, EMPTY_FILE)
            continue
        lo = max(first, line_file.first_block) - line_file.first_block
        hi = min(end, line_file.first_block + line_file.blocks) - line_file.first_block
        if lo >= hi:
            continue
        yield from _file_documents(line_file, lo * LINE_BLOCK_BYTES, hi * LINE_BLOCK_BYTES, encoding, shared)


def _file_documents(
    line_file: LineFile, start: int, end: int, encoding: str, shared: dict
) -> Iterator[tuple[int, Document | BadRecord]]:
    """Documents (one per block) and bad records of the lines of `line_file` starting in [start, end)."""
    block, block_start, sentences = -1, 0, []
    for offset, raw in range_lines(line_file.path, start, end):
        line_block = line_file.first_block + offset // LINE_BLOCK_BYTES
        if line_block != block:
            if sentences:
                yield block, Document(f"{line_file.name}:{block_start}", sentences=tuple(sentences), meta=shared)
            block, sentences = line_block, []
        where = f"{line_file.path}, byte {offset}"
        if raw is None:
            yield line_block, BadRecord(where, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = raw.decode(encoding).strip()
        except UnicodeDecodeError as error:
            yield line_block, BadRecord(
                where, f"not {encoding} (byte {raw[error.start:error.start + 1]!r} at column {error.start + 1})"
            )
            continue
        except LookupError:
            raise SourceError(
                f"{line_file.path}: unknown encoding {encoding!r}; set the dataset's `encoding`"
            ) from None
        if text:
            if not sentences:
                block_start = offset
            sentences.append(text)
    if sentences:
        yield block, Document(f"{line_file.name}:{block_start}", sentences=tuple(sentences), meta=shared)
