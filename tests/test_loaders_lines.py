"""Line mode (`sentence_per_line`): every line read by exactly one part, constant memory, BookCorpus default."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurotext.corpus import build_part, merge_parts, train_punkt
from neurotext.loaders import lines as line_mode
from neurotext.loaders.base import BadRecord, Document, SourceError, load_documents

CORPUS = {"max_sentences_per_dataset": None, "seed": 13, "max_bad_records": 100, "clean": {}}

LINE = st.one_of(
    st.just(""),
    st.just("   "),
    st.text(alphabet="ab .\t", min_size=1, max_size=30).map(lambda text: text.strip() or "x"),
)


def _write(path: Path, lines: list[str], trailing_newline: bool) -> None:
    path.write_bytes(("\n".join(lines) + ("\n" if trailing_newline else "")).encode())


def _read_all(path: Path, parts: int) -> tuple[list[tuple[int, int, list[str]]], list[str]]:
    """(part, doc_index, sentences) of every document of every part, in part order; the bad records' places."""
    block = {"name": "x", "format": "bookcorpus", "sentence_per_line": True}
    out, bad = [], []
    for part in range(parts):
        for doc_index, record in line_mode.line_documents(str(path), block, part, parts):
            if isinstance(record, BadRecord):
                bad.append(record.where)
                continue
            out.append((part, doc_index, list(record.sentences or ())))
    return out, bad


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.lists(LINE, max_size=40), min_size=1, max_size=3),
    parts=st.integers(1, 9),
    block=st.integers(1, 64),
    trailing_newline=st.booleans(),
)
def test_parts_cover_every_line_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[str]], parts: int, block: int, trailing_newline: bool
) -> None:
    """Oracle: the non-empty lines of the files in order (str.splitlines). Any block size (lines longer than a block,
    blocks without a line start), any part count, with or without a final newline, one or several files.
    """
    folder = tmp_path_factory.mktemp("lines")
    expected, empty = [], []
    for index, lines in enumerate(files):
        path = folder / f"f{index}.txt"
        _write(path, lines, trailing_newline)
        expected += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not path.stat().st_size:
            empty.append(str(path))
    with mock.patch.object(line_mode, "LINE_BLOCK_BYTES", block):
        documents, bad = _read_all(folder, parts)
        single, _ = _read_all(folder, 1)
    assert bad == empty  # each empty file is one bad record
    assert [sentence for _, _, sentences in documents for sentence in sentences] == expected
    doc_indexes = [doc_index for _, doc_index, _ in documents]
    assert doc_indexes == sorted(set(doc_indexes))  # unique, increasing across parts
    assert [(d, s) for _, d, s in documents] == [(d, s) for _, d, s in single]  # documents do not depend on parts


def test_byte_ranges_split_at_line_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"aaa\nbbbbbbb\ncc\n\nd")
    starts = [0, 1, 4, 5, 11, 12, 13, 14, 15, 16]
    for start in starts:
        for end in starts:
            if end < start:
                continue
            got = [offset for offset, _ in line_mode.range_lines(str(path), start, end)]
            assert got == [offset for offset in (0, 4, 12, 15, 16) if start <= offset < end], (start, end)


def test_bad_lines_are_bad_records_at_their_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "books_large_p1.txt"
    path.write_bytes(b"a fine line .\nnot \xff utf-8 .\n" + b"x" * 40 + b"\nlast line .\n")
    block = {"name": "books", "format": "bookcorpus"}
    with mock.patch.object(line_mode, "MAX_LINE_BYTES", 32):
        records = [record for _, record in line_mode.line_documents(str(path), block)]
    bad = [record for record in records if isinstance(record, BadRecord)]
    assert [record.where for record in bad] == [f"{path}, byte 14", f"{path}, byte 28"]
    assert "not utf-8" in bad[0].reason and "longer than 32 bytes" in bad[1].reason
    assert [s for record in records if isinstance(record, Document) for s in record.sentences] == [
        "a fine line .",
        "last line .",
    ]


def test_bookcorpus_files_default_to_line_mode_and_keep_lines_as_sentences(tmp_path: Path) -> None:
    folder = tmp_path / "bookcorpus"
    folder.mkdir()
    (folder / "books_large_p1.txt").write_text(
        "dr. mcdreamy walked in . he said hello to everyone .\nthe second line is another sentence .\n\n"
    )
    (folder / "books_large_p2.txt").write_text("mrs. smith is here too , said the third line .\n")
    block = {"name": "books", "code": 1, "format": "bookcorpus", "path": str(folder), "parts": 2}
    assert line_mode.sentence_per_line(str(folder), block)
    assert line_mode.sentence_per_line(str(folder / "books_large_p2.txt"), block)
    assert not line_mode.sentence_per_line(str(folder), {**block, "sentence_per_line": False})
    assert not line_mode.sentence_per_line(str(folder), {**block, "format": "table"})
    punkt = tmp_path / "punkt.json"
    train_punkt(str(folder), block, CORPUS, str(punkt))
    assert json.loads(punkt.read_text())["origin"] == "unused:sentence_per_line"
    parts = [str(tmp_path / f"part{p}.parquet") for p in range(2)]
    for part, out in enumerate(parts):
        build_part(str(folder), str(punkt), block, CORPUS, part, out, "cafe")
    merge_parts(parts, block, CORPUS, str(tmp_path / "books.parquet"), "cafe")
    table = pq.read_table(tmp_path / "books.parquet").to_pylist()
    assert [row["text"] for row in table] == [
        "dr. mcdreamy walked in . he said hello to everyone .",
        "the second line is another sentence .",
        "mrs. smith is here too , said the third line .",
    ]
    assert [row["doc_id"] for row in table] == ["books_large_p1:0", "books_large_p1:0", "books_large_p2:0"]
    assert {row["domain"] for row in table} == {"book"}


def test_line_mode_refuses_archives_and_names_the_key(tmp_path: Path) -> None:
    import tarfile

    (tmp_path / "books_large_p1.txt").write_text("a line .\n")
    archive = tmp_path / "bookcorpus.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "books_large_p1.txt", arcname="books_large_p1.txt")
    block = {"name": "books", "format": "bookcorpus", "sentence_per_line": True}
    with pytest.raises(SourceError, match=r"datasets\.books\.path = .*tar archive.*extract it"):
        list(load_documents(str(archive), block))
    with pytest.raises(SourceError, match=r"datasets\.books\.path = .*no such file"):
        list(load_documents(str(tmp_path / "absent"), block))


def _generate(path: Path, megabytes: int) -> int:
    """A file of `megabytes` MB of numbered one-sentence lines; returns the line count."""
    count = 0
    with open(path, "wb") as out:
        while out.tell() < megabytes << 20:
            out.write(
                "".join(
                    f"line {count + i} of the generated book , with a few more words .\n" for i in range(10_000)
                ).encode()
            )
            count += 10_000
    return count


def test_reading_a_big_file_takes_constant_memory(tmp_path: Path) -> None:
    """tracemalloc's peak while streaming a 10 MB file stays under 2 MB (reading it whole would need over 10 MB)."""
    path = tmp_path / "books_large_p1.txt"
    lines = _generate(path, 10)
    tracemalloc.start()
    try:
        seen = sum(len(record.sentences) for _, record in line_mode.line_documents(str(path), {"format": "bookcorpus"}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == lines
    assert peak < 2 << 20, f"peak {peak / 2**20:.1f} MB"


_PEAK_RSS = """
import json, sys
import neurotext.corpus.parts
from neurotext.corpus import build_part, train_punkt
neurotext.corpus.parts.BATCH_ROWS = 4096  # so that the small file is past the first batches too
path, out = sys.argv[1], sys.argv[2]
block = {"name": "books", "code": 1, "format": "bookcorpus", "path": path}
corpus = {"seed": 0, "max_bad_records": 100, "clean": {}}
train_punkt(path, block, corpus, out + ".punkt.json")
build_part(path, out + ".punkt.json", block, corpus, 0, out, "x")
rss = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"peak_rss_kb": rss}))
"""


def _build_part_peak_rss_mb(path: Path, out: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path), str(out)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_kb"] / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux) for the peak RSS")
def test_a_corpus_part_of_a_big_file_has_bounded_peak_rss(tmp_path: Path) -> None:
    """A whole corpus_part job (read, clean, write batch by batch) on 20 MB peaks at most 10 MB above the same job on
    2 MB (holding the part's rows would add well over 20 MB). benchmarks/corpus.py measures a few hundred MB.
    """
    small, big = (tmp_path / "small" / "books_large_p1.txt", tmp_path / "big" / "books_large_p1.txt")
    small.parent.mkdir()
    big.parent.mkdir()
    _generate(small, 2)
    _generate(big, 20)
    growth = _build_part_peak_rss_mb(big, tmp_path / "big.parquet") - _build_part_peak_rss_mb(
        small, tmp_path / "small.parquet"
    )
    assert growth < 10, f"peak RSS grew by {growth:.1f} MB"


_COVERAGE = """
import json, sys
from neurotext.loaders import lines as line_mode
path, lines, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = bytearray(lines)  # how many times each generated line came out of some part
for part in range(parts):
    for _, record in line_mode.line_documents(path, {"format": "bookcorpus"}, part, parts):
        for sentence in record.sentences:
            seen[int(sentence.split(" ", 2)[1])] += 1
rss = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"once": seen.count(1) == lines, "peak_rss_kb": rss}))
"""


def _coverage(path: Path, lines: int, parts: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _COVERAGE, str(path), str(lines), str(parts)], check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux) for the peak RSS")
def test_a_300_mb_file_in_parts_every_line_once_in_constant_memory(tmp_path: Path) -> None:
    """A generated 300 MB BookCorpus-format file read as 7 byte-range parts: every line comes out of exactly one
    part, and the reader's peak RSS is within 40 MB of reading a 3 MB file the same way (the per-line tally itself
    grows by ~4 MB; holding the file would add 300 MB)."""
    big, small = tmp_path / "big" / "books_large_p1.txt", tmp_path / "small" / "books_large_p1.txt"
    big.parent.mkdir()
    small.parent.mkdir()
    big_lines, small_lines = _generate(big, 300), _generate(small, 3)
    big_run, small_run = _coverage(big, big_lines, 7), _coverage(small, small_lines, 7)
    assert big_run["once"] and small_run["once"]
    growth = (big_run["peak_rss_kb"] - small_run["peak_rss_kb"]) / 1024
    assert growth < 40, f"peak RSS grew by {growth:.1f} MB"
