"""Loaders of the paper's six corpora, on small files written in each exact published format (tests/data/...).

Archives (.bz2 dumps, .tar.gz, .zip) are built from the committed files in tmp_path, so each test also covers
reading through the archive the corpus is distributed as.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tarfile
import tracemalloc
import zipfile
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurotext.loaders import BadRecord, Document, SourceError, load_documents
from neurotext.loaders.wiki import iter_pages, render_plain_text

DATA = Path(__file__).parent / "data"
WIKI_XML = DATA / "wiki" / "enwiki-20201220-pages-articles-sample.xml"


def load(path: os.PathLike | str, format_name: str, **options) -> list[Document | BadRecord]:
    return list(load_documents(str(path), {"name": "test", "format": format_name, **options}))


def documents(items: list) -> list[Document]:
    return [item for item in items if isinstance(item, Document)]


def bad_records(items: list) -> list[BadRecord]:
    return [item for item in items if isinstance(item, BadRecord)]


def make_tar(out: Path, root: Path, names: list[str] | None = None, compression: str = "gz") -> Path:
    """A tar archive of the files under `root` (relative names), in the given order (default: sorted)."""
    names = names or sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    with tarfile.open(out, f"w:{compression}") as archive:
        for name in names:
            archive.add(root / name, arcname=name)
    return out


# -- Wikipedia -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki_dump(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wiki") / "enwiki-20201220-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(WIKI_XML.read_bytes()))
    return path


@pytest.fixture(scope="module")
def wiki_docs(wiki_dump) -> list[Document]:
    items = load(wiki_dump, "wiki")
    assert not bad_records(items)
    return documents(items)


def test_wiki_keeps_articles_only(wiki_docs):
    # redirect (10), project page ns 4 (11), {{disambiguation}} page (19), "(disambiguation)" title (20),
    # category ns 14 (21) are skipped
    assert [d.doc_id for d in wiki_docs] == ["680", "22"]
    assert [d.meta["entity"] for d in wiki_docs] == ["Aardvark", "Ada Lovelace"]
    assert all(d.meta["domain"] == "wiki" for d in wiki_docs)


def test_wiki_markup_removed(wiki_docs):
    aardvark = wiki_docs[0].text
    assert aardvark.startswith("The aardvark (Orycteropus afer) is a medium-sized, burrowing, nocturnal mammal")
    assert "It is the only living species of the order Tubulidentata." in aardvark
    assert 'means "earth pig" or "ground pig".' in aardvark  # entities decoded
    assert "sniff out food & water" in aardvark
    assert "The aardvark weighs between 60 and 80 kilograms." in aardvark  # a list item that is a sentence
    assert "See the diet page for more." in aardvark  # external link: its text, not its URL
    for leftover in ("{{", "}}", "[[", "]]", "<ref", "Schlitter", "cite book", "wikitable", "Afrikaans ||",
                     "thumb", "snout down", "Category", "Erdferkel", "Oryctérope", "comment must never", "Speciesbox",
                     "Short description", "'''", "''", "http://", "Aardwolf", "Pangolin", "Reflist", "Diets",
                     "Termites", "==", "Diet\n"):  # fmt: skip
        assert leftover not in aardvark, leftover
    ada = wiki_docs[1].text
    assert "She worked on Babbage's proposed mechanical general-purpose computer, the Analytical Engine." in ada
    for leftover in ("Infobox", "birth date", "1815|12", "hlist", "papers", "references", "cite web"):
        assert leftover not in ada, leftover


def test_wiki_paragraphs_are_blank_line_separated(wiki_docs):
    paragraphs = wiki_docs[0].text.split("\n\n")
    assert len(paragraphs) == 5
    assert all(p.strip() == p and p for p in paragraphs)
    assert "\n\n\n" not in wiki_docs[0].text


def test_wiki_plain_xml_and_archive_member_agree(wiki_dump, wiki_docs, tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(wiki_dump, "pkg/test_data/dump.xml.bz2")
        archive.writestr("pkg/__init__.py", "")
    from_xml = documents(load(WIKI_XML, "wiki"))
    from_member = documents(load(wheel, "wiki", member="test_data/dump.xml.bz2"))
    assert from_xml == wiki_docs == from_member


def test_wiki_parts_render_only_their_articles(wiki_dump, wiki_docs):
    merged = {}
    for part in range(2):
        items = load(wiki_dump, "wiki", parts=2, part=part)
        assert len(items) == len(wiki_docs)  # same positions in every part
        for position, item in enumerate(items):
            if position % 2 == part:
                merged[position] = item
            else:
                assert item.text is None and item.sentences is None  # placeholder, not rendered
    assert [merged[i] for i in range(len(wiki_docs))] == wiki_docs


def test_wiki_part_positions_count_bad_records_like_the_corpus_stage(tmp_path):
    """Positions count every yielded record (as the corpus stage's doc_index): a broken page shifts all parts."""
    broken = "<page><title>Broken</title><ns>0</ns><id>99</id></page>\n  <page>\n    <title>Mercury</title>"
    path = tmp_path / "dump.xml"
    path.write_text(WIKI_XML.read_text().replace("<page>\n    <title>Mercury</title>", broken, 1))
    full = load(path, "wiki")
    assert [type(item).__name__ for item in full] == ["Document", "BadRecord", "Document"]
    for part in range(2):
        items = load(path, "wiki", parts=2, part=part)
        assert [type(item) for item in items] == [type(item) for item in full]
        for position, item in enumerate(items):
            if isinstance(item, Document):
                assert (item.text is not None) == (position % 2 == part)
                if item.text is not None:
                    assert item == full[position]


def _big_dump(pages: int, page_chars: int) -> bytes:
    head = WIKI_XML.read_text().split("<page>")[0]
    body = ("Lorem ipsum dolor sit amet. " * (page_chars // 28)).strip()
    page = (
        "<page><title>Page {i}</title><ns>0</ns><id>{i}</id><revision><id>1</id>"
        '<text xml:space="preserve">{body}</text></revision></page>\n'
    )
    return (head + "".join(page.format(i=i, body=body) for i in range(pages)) + "</mediawiki>\n").encode()


def test_wiki_dump_is_streamed_not_held(tmp_path):
    data = _big_dump(pages=2000, page_chars=4000)  # ~8 MB of XML
    path = tmp_path / "big.xml.bz2"
    path.write_bytes(bz2.compress(data, 1))
    tracemalloc.start()
    with bz2.open(path) as stream:
        count = sum(1 for _ in iter_pages(stream, str(path)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 2000
    assert peak < len(data) / 4, f"peak {peak} bytes for a {len(data)}-byte dump"


def test_wiki_truncated_dump_names_the_file(wiki_dump, tmp_path):
    data = bz2.compress(_big_dump(pages=300, page_chars=2000))
    truncated = tmp_path / "enwiki-truncated.xml.bz2"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"enwiki-truncated\.xml\.bz2.*(truncated|corrupt)"):
        load(truncated, "wiki")


def test_wiki_not_a_dump(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text("<rss><channel/></rss>")
    with pytest.raises(SourceError, match=r"other\.xml: not a MediaWiki XML dump"):
        load(path, "wiki")


def test_wiki_page_without_text_is_a_bad_record(tmp_path):
    xml = WIKI_XML.read_text().replace(
        "</mediawiki>", "<page><title>Broken</title><ns>0</ns><id>99</id></page>\n</mediawiki>"
    )
    path = tmp_path / "dump.xml"
    path.write_text(xml)
    bad = bad_records(load(path, "wiki"))
    assert len(bad) == 1 and "page 99" in bad[0].where and "dump.xml" in bad[0].where


def test_render_plain_text_drops_tables_templates_refs_and_nested_markup():
    wikitext = (
        "{{Infobox|a={{nested|b}}}}Intro with a ref.<ref>{{cite|x}}</ref> And more text.\n"
        '{| class="wikitable"\n|-\n| cell one || cell two\n|}\n'
        "[[Image:X.png|thumb|caption [[with link]]]] After [[the image|link text]].\n"
        "== External links ==\n* [http://example.org site]\n=== Sub ===\nStill dropped.\n"
        "== History ==\nKept section.<!-- hidden -->"
    )
    text = render_plain_text(wikitext)
    assert text == "Intro with a ref. And more text.\n\nAfter link text.\n\nKept section."  # a table ends a paragraph


# -- BookCorpus ------------------------------------------------------------------------------------------------

BOOKS = DATA / "bookcorpus" / "books"


def test_bookcorpus_text_directory_with_metadata():
    docs = documents(load(BOOKS, "bookcorpus", metadata_file=str(DATA / "bookcorpus" / "metadata.jsonl"),
                          genre_from_folder=True))  # fmt: skip
    assert [d.doc_id for d in docs] == ["Romance/the-lighthouse-keeper", "Science_fiction/orbit-of-glass"]
    assert docs[0].meta == {"domain": "book", "title": "The Lighthouse Keeper", "genre": "Romance",
                            "author": "A. N. Writer"}  # fmt: skip
    assert docs[0].extra == {"price": "0.99"}
    assert docs[1].meta["author"] == "B. Novelist"
    assert docs[0].text == (BOOKS / "Romance" / "the-lighthouse-keeper.txt").read_text().strip()
    assert docs[0].sentences is None  # Punkt splits books downstream


def test_bookcorpus_text_archive_matches_directory(tmp_path):
    archive = make_tar(tmp_path / "books.tar.gz", BOOKS)
    assert documents(load(archive, "bookcorpus")) == documents(load(BOOKS, "bookcorpus"))


def test_bookcorpus_bad_utf8_book_is_a_bad_record(tmp_path):
    (tmp_path / "good.txt").write_text("A fine book.")
    (tmp_path / "bad.txt").write_bytes(b"Caf\xe9 in latin-1.")
    items = load(tmp_path, "bookcorpus")
    assert [d.doc_id for d in documents(items)] == ["good"]
    (bad,) = bad_records(items)
    assert bad.where.endswith("bad.txt") and "utf-8" in bad.reason


def _write_parquet(path: Path, texts: list[str | None]) -> None:
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path)


def test_bookcorpus_parquet_groups_rows_into_documents(tmp_path):
    first = [f"sentence {i} of the first file ." for i in range(2500)]
    first[1234] = ""  # empty rows are dropped, not counted as sentences
    second = [f"second file sentence {i} ." for i in range(10)]
    _write_parquet(tmp_path / "0000.parquet", first)
    _write_parquet(tmp_path / "0001.parquet", second)
    docs = documents(load(tmp_path, "bookcorpus"))
    assert [d.doc_id for d in docs] == ["0000:0", "0000:1000", "0000:2000", "0001:0"]
    assert [len(d.sentences) for d in docs] == [1000, 999, 500, 10]
    assert all(d.text is None and d.meta == {"domain": "book"} for d in docs)
    flat = [s for d in docs for s in d.sentences]
    assert flat == [t for t in first if t] + second  # every sentence, in order
    small = documents(load(tmp_path / "0001.parquet", "bookcorpus", rows_per_document=4))
    assert [len(d.sentences) for d in small] == [4, 4, 2]


def test_bookcorpus_parquet_without_text_column(tmp_path):
    pq.write_table(pa.table({"sentence": ["a b c"]}), tmp_path / "x.parquet")
    with pytest.raises(SourceError, match=r"x\.parquet: no column 'text'.*text_column"):
        load(tmp_path / "x.parquet", "bookcorpus")


# -- Sentiment140 ----------------------------------------------------------------------------------------------

S140 = DATA / "sentiment140" / "training.1600000.processed.noemoticon.csv"


def test_sentiment140_csv():
    items = load(S140, "sentiment140")
    docs = documents(items)
    assert [d.doc_id for d in docs] == ["1467810369", "1467810672", "1467822272", "1467822447", "1467822918"]
    assert [d.meta["sentiment"] for d in docs] == ["neg", "neg", "pos", "pos", "pos"]
    assert docs[2].meta["author"] == "café_lover"  # a latin-1 byte
    assert docs[2].text == 'Loving the café au lait here & the "best" croissants in town <3'  # entities decoded
    assert docs[3].text == "going to the naïve art show tonight, can't wait"  # a UTF-8 line stays UTF-8
    assert docs[0].meta == {"domain": "twitter", "sentiment": "neg", "author": "sample_user_a", "year": 2009,
                            "split": "train"}  # fmt: skip
    assert docs[0].extra == {"polarity": "0", "date": "Mon Apr 06 22:19:45 PDT 2009", "query": "NO_QUERY"}
    (bad,) = bad_records(items)
    assert bad.where == f"{S140}:5" and "5 fields" in bad.reason


def test_sentiment140_from_the_distributed_zip(tmp_path):
    archive = tmp_path / "trainingandtestdata.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(S140, S140.name)
        zf.writestr("testdata.manual.2009.06.14.csv", '"2","3","Mon May 11 03:17:40 UTC 2009","kindle2","u","ok"\n')
    from_zip = load(archive, "sentiment140", member=S140.name)
    assert documents(from_zip) == documents(load(S140, "sentiment140"))
    assert bad_records(from_zip)[0].where == f"{archive}:{S140.name}:5"
    (test_doc,) = documents(load(archive, "sentiment140", member="testdata.manual.2009.06.14.csv"))
    assert test_doc.meta["sentiment"] == "neutral" and test_doc.meta["split"] == "test"


def test_sentiment140_missing_member_names_archive_and_member(tmp_path):
    archive = tmp_path / "trainingandtestdata.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("testdata.manual.2009.06.14.csv", "")
    with pytest.raises(SourceError, match=r"trainingandtestdata\.zip: no member 'training\.1600000.*member"):
        load(archive, "sentiment140", member=S140.name)


def test_sentiment140_gzipped_csv(tmp_path):
    path = tmp_path / "training.csv.gz"
    path.write_bytes(gzip.compress(S140.read_bytes()))
    assert documents(load(path, "sentiment140")) == documents(load(S140, "sentiment140"))


def test_sentiment140_wrong_file_is_an_error(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("\n".join(f"just some text line {i}" for i in range(50)))
    with pytest.raises(SourceError, match=r"notes\.csv: the first 20 lines are not Sentiment140"):
        load(path, "sentiment140")


# -- IMDB ------------------------------------------------------------------------------------------------------

IMDB = DATA / "imdb"


@pytest.fixture(scope="module")
def imdb_archive(tmp_path_factory) -> Path:
    return make_tar(tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", IMDB)


def test_imdb_archive(imdb_archive):
    docs = documents(load(imdb_archive, "imdb"))
    by_id = {d.doc_id: d for d in docs}
    assert sorted(by_id) == ["test/neg/3", "test/pos/10", "train/neg/12", "train/pos/0", "train/unsup/5"]
    assert by_id["train/pos/0"].extra == {"label": "pos", "rating": "9"}
    assert by_id["train/pos/0"].meta == {"domain": "review", "sentiment": "pos", "split": "train"}
    assert by_id["test/neg/3"].meta["sentiment"] == "neg" and by_id["test/neg/3"].extra["rating"] == "1"
    unsup = by_id["train/unsup/5"]
    assert "sentiment" not in unsup.meta and unsup.extra == {"label": "unsup"}
    assert all("<br" not in d.text for d in docs)
    assert by_id["train/pos/0"].text.count("\n\n") == 1  # <br /><br /> -> a paragraph break
    assert "café" in by_id["test/neg/3"].text


def test_imdb_directory_equals_archive_and_filters(imdb_archive):
    from_dir = documents(load(IMDB / "aclImdb", "imdb"))
    assert sorted(from_dir, key=lambda d: d.doc_id) == sorted(documents(load(imdb_archive, "imdb")),
                                                              key=lambda d: d.doc_id)  # fmt: skip
    assert [d.doc_id for d in from_dir] == ["train/neg/12", "train/pos/0", "train/unsup/5", "test/neg/3",
                                            "test/pos/10"]  # fmt: skip
    labelled_train = documents(load(imdb_archive, "imdb", splits=["train"], labels=["pos", "neg"]))
    assert sorted(d.doc_id for d in labelled_train) == ["train/neg/12", "train/pos/0"]


def test_imdb_truncated_archive(imdb_archive, tmp_path):
    data = imdb_archive.read_bytes()
    truncated = tmp_path / "aclImdb_v1.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"aclImdb_v1\.tar\.gz.*(truncated|corrupt|fetch)"):
        load(truncated, "imdb")


def test_imdb_archive_without_reviews(tmp_path):
    archive = make_tar(tmp_path / "aclImdb_v1.tar.gz", IMDB, ["aclImdb/README", "aclImdb/imdb.vocab"])
    with pytest.raises(SourceError, match=r"aclImdb_v1\.tar\.gz: no aclImdb/"):
        load(archive, "imdb")


# -- 20 Newsgroups ---------------------------------------------------------------------------------------------

NG = DATA / "newsgroups" / "20news-bydate"
NG_ORDER = [  # archive order, as the real 20news-bydate.tar.gz: train before test
    "20news-bydate-train/sci.space/60804",
    "20news-bydate-train/alt.atheism/51060",
    "20news-bydate-test/rec.autos/103007",
    "20news-bydate-test/comp.graphics/38758",
]


@pytest.fixture(scope="module")
def ng_archive(tmp_path_factory) -> Path:
    return make_tar(tmp_path_factory.mktemp("ng") / "20news-bydate.tar.gz", NG, NG_ORDER)


def test_newsgroups_archive(ng_archive):
    docs = documents(load(ng_archive, "newsgroups"))
    # the rec.autos post holds nothing but headers and quotes: empty after cleaning, passed on with no text so that
    # the corpus stage names it as a document lost to cleaning (corpus/<dataset>.losses.tsv)
    assert [d.doc_id for d in docs] == ["train/sci.space/60804", "train/alt.atheism/51060",
                                        "test/rec.autos/103007", "test/comp.graphics/38758"]  # fmt: skip
    space, atheism, autos, graphics = docs
    assert autos.text == ""
    assert atheism.meta == {"domain": "news", "topic": "alt.atheism", "split": "train", "title": "Faith and reason"}
    assert atheism.extra == {"top_topic": "alt"}
    assert graphics.extra == {"top_topic": "comp"} and graphics.meta["split"] == "test"
    assert atheism.text.startswith("I do not think that is a fair description")
    assert atheism.text.endswith("The question is whether evidence should change a belief at all.")
    for removed in ("From:", "Subject:", "Organization", "writes:", ">Faith", "Quoted from", "John Doe",
                    "Opinions are my own", "jdoe@"):  # fmt: skip
        assert removed not in atheism.text, removed
    assert "Ron Example" not in space.text and space.text.endswith("high gain antenna problem.")
    assert "Merci beaucoup à tous." in graphics.text  # latin-1


def test_newsgroups_directory_and_split_filter(ng_archive):
    from_dir = documents(load(NG, "newsgroups"))
    assert sorted(d.doc_id for d in from_dir) == sorted(d.doc_id for d in documents(load(ng_archive, "newsgroups")))
    only_test = documents(load(ng_archive, "newsgroups", splits=["test"]))
    assert [d.doc_id for d in only_test] == ["test/rec.autos/103007", "test/comp.graphics/38758"]
    keep_headers = documents(load(NG, "newsgroups", remove=["quotes"], splits=["train"]))
    assert any(d.text.startswith("From:") for d in keep_headers)


def test_newsgroups_archive_without_posts(tmp_path):
    archive = make_tar(tmp_path / "20news-bydate.tar.gz", IMDB, ["aclImdb/README"])
    with pytest.raises(SourceError, match=r"20news-bydate\.tar\.gz: no 20news-bydate"):
        load(archive, "newsgroups")


# -- Reuters-21578 ---------------------------------------------------------------------------------------------

REUTERS = DATA / "reuters"


@pytest.fixture(scope="module")
def reuters_items() -> list:
    return load(REUTERS, "reuters")


def test_reuters_documents(reuters_items):
    docs = {d.doc_id: d for d in documents(reuters_items)}
    assert list(docs) == ["1", "2", "3", "4", "1001"]
    cocoa = docs["1"]
    assert cocoa.text.startswith("Showers continued throughout the week in\nthe Bahia cocoa zone")
    assert cocoa.text.endswith("5.93 mln bags.")  # the 'Reuter' sign-off and &#3; are gone
    assert cocoa.meta == {"domain": "news", "title": "BAHIA COCOA REVIEW", "category": "cocoa", "topic": "cocoa",
                          "split": "train", "year": 1987}  # fmt: skip
    assert cocoa.extra["places"] == "el-salvador|usa|uruguay" and cocoa.extra["dateline"] == "SALVADOR, Feb 26"
    grain = docs["2"]
    assert grain.meta["category"] == "grain|wheat|corn" and grain.meta["topic"] == "grain"
    assert grain.meta["author"] == "Jane Example"
    assert grain.meta["title"] == "U.S. GRAIN CARLOADINGS <GRAIN> FALL IN WEEK"  # &lt; decoded
    assert "Association of <American Railroads> said." in grain.text and "wheat & corn" in grain.text
    assert not grain.text.lower().endswith("reuter")


def test_reuters_documents_without_body(reuters_items):
    docs = {d.doc_id: d for d in documents(reuters_items)}
    brief = docs["3"]  # TYPE="BRIEF": title only, the 'Blah blah blah.' filler dropped
    assert brief.text == "NATIONAL AVERAGE PRICES FOR FARMER-OWNED RESERVE"
    assert brief.meta["split"] == "test" and "category" not in brief.meta
    unproc = docs["4"]  # TYPE="UNPROC": raw text, a stray latin-1 byte
    assert (
        unproc.text == "The München office reported steady trading in the morning session.\nPrices were "
        "little changed, dealers said."
    )
    assert unproc.meta["split"] == "not-used"


def test_reuters_no_control_characters(reuters_items):
    for doc in documents(reuters_items):
        values = [doc.text, *map(str, doc.meta.values()), *doc.extra.values()]
        assert not any(ch < " " and ch != "\n" for value in values for ch in value), doc.doc_id


def test_reuters_truncated_record_is_a_bad_record(reuters_items):
    (bad,) = bad_records(reuters_items)
    assert bad.where == f"{REUTERS / 'reut2-001.sgm'}:22" and "closing" in bad.reason


def test_reuters_archive_single_file_and_filters(reuters_items, tmp_path):
    archive = make_tar(tmp_path / "reuters21578.tar.gz", REUTERS, ["reut2-001.sgm", "reut2-000.sgm"])
    from_archive = load(archive, "reuters")
    assert documents(from_archive) == documents(reuters_items)  # files in name order whatever the archive order
    single = documents(load(REUTERS / "reut2-000.sgm", "reuters"))
    assert [d.doc_id for d in single] == ["1", "2", "3", "4"]
    modapte = documents(load(REUTERS, "reuters", modapte=True))
    assert [d.doc_id for d in modapte] == ["1", "2", "1001"]
    with pytest.raises(SourceError, match=r"reuters21578\.tar\.gz: holds 2 reut2-\*\.sgm files.*expected 22"):
        load(archive, "reuters", expected_files=22)


def test_reuters_not_sgml(tmp_path):
    path = tmp_path / "reut2-000.sgm"
    path.write_text("nothing here")
    with pytest.raises(SourceError, match=r"reut2-000\.sgm: no <REUTERS> records"):
        load(path, "reuters")


def test_archive_readers_stream_member_by_member(tmp_path):
    """A tar member is read through a stream: a large member is never materialised by the opener itself."""
    from neurotext.loaders._common import open_member

    big = tmp_path / "big.tar.gz"
    payload = b"x" * (4 << 20)
    with tarfile.open(big, "w:gz") as archive:
        info = tarfile.TarInfo("dir/big.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    with open_member(big, "big.bin") as (stream, where):
        assert where == f"{big}:dir/big.bin"
        assert len(list(islice(iter(lambda: stream.read(65536), b""), 4))) == 4
