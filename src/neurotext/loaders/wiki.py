"""MediaWiki XML dumps (format `wiki`): `enwiki-YYYYMMDD-pages-articles.xml.bz2`, streamed.

The dump is read with `xml.etree.ElementTree.iterparse`, each `<page>` cleared as soon as it is handled, so memory
stays bounded by the largest page whatever the dump size. The source may be the .xml.bz2 (or .xml, .gz, .xz)
itself, or an archive holding it (`member`: the demo reads gensim's real dump sample straight from the gensim
wheel or sdist, member `gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2`).

Kept: pages of the configured namespaces (`namespaces`, default [0] = articles) that are neither redirects nor
disambiguation pages. Wikitext is parsed with mwparserfromhell and rendered to plain text without templates,
tables, refs and other invisible tags, files/images, categories, interlanguage links, headings (a heading becomes a
paragraph break), boilerplate sections (`drop_sections`) and list items that are not sentences. Paragraphs are
separated by a blank line. Metadata: domain (default wiki), entity = page title; the page id is the doc id.

Dataset options: `member`, `namespaces` (list of ints, default [0]), `drop_sections` (section titles, lowercase).
Set by the corpus stage (not config): `part`, see `load`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from neurotext.loaders._common import check_meta, dataset_meta, open_member, read_errors_as_source_error
from neurotext.loaders.base import BadRecord, Document, SourceError, register

DEFAULT_DROP_SECTIONS: frozenset[str] = frozenset(
    {
        "references",
        "external links",
        "see also",
        "further reading",
        "notes",
        "footnotes",
        "citations",
        "bibliography",
        "sources",
        "notes and references",
        "works cited",
        "explanatory notes",
    }
)

#: Tags whose content is not running text (refs, tables, galleries, maths, code ...): dropped with their content.
DROPPED_TAGS: frozenset[str] = frozenset(
    {
        "ref",
        "references",
        "table",
        "gallery",
        "math",
        "chem",
        "ce",
        "timeline",
        "imagemap",
        "score",
        "graph",
        "templatedata",
        "categorytree",
        "inputbox",
        "section",
        "syntaxhighlight",
        "source",
        "pre",
        "code",
        "hiero",
        "mapframe",
        "maplink",
        "noinclude",
        "includeonly",
        "onlyinclude",
        "indicator",
        "nowiki",
        "div",  # layout boxes (navigation, galleries) in articles; prose is not wrapped in divs
    }
)

#: Link namespaces that render as no text in an article.
DROPPED_LINK_NAMESPACES: frozenset[str] = frozenset({"file", "image", "media", "category"})

#: Interlanguage links ([[de:Anarchismus]]): a language code as the namespace and no display text.
_LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$|^simple$")

#: A template that marks a disambiguation page: {{Disambiguation}}, {{dab}}, {{hndis|...}}, {{Place name
#: disambiguation}}, ... (names compared case-insensitively, '_' as ' ').
_DISAMBIGUATION_TEMPLATE = re.compile(
    r"\{\{\s*(?:disambiguation|disambig|dab|disamb|hndis|geodis|numberdis|mathdab|schooldis"
    r"|[^{}|<>\[\]\n]*?[ _]disambiguation)\s*(?:\||\}\})",
    re.IGNORECASE,
)

_LIST_MARKUP = frozenset({"li", "dt", "dd"})
_LIST_MARK = "\x00"  # marks the start of a list item in the rendered text (removed before output)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_BEHAVIOUR_SWITCH = re.compile(r"__[A-Z]+__")
_EMPTY_BRACKETS = re.compile(r"\(\s*(?:[,;:]\s*)*\)")
_BRACKET_OPEN_PUNCT = re.compile(r"\(\s*[,;:]+\s*")
_BRACKET_CLOSE_PUNCT = re.compile(r"\s*[,;:]+\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_REDIRECT = re.compile(r"^\s*#\s*redirect", re.IGNORECASE)
_HEADING_LINE = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$", re.MULTILINE)
_HEADING_MARKUP = re.compile(r"\[\[|\]\]|'{2,}|<[^>]*>")
_LEFTOVER_QUOTES = re.compile(r"'{2,}")
#: Comments and refs (self-closing, or up to </ref>; an unclosed ref ends at the paragraph's end).
_REF_OR_COMMENT = re.compile(
    r"<!--.*?(?:-->|$)|<ref\b[^>]*?/\s*>|<ref\b[^>]*>.*?(?:</ref\s*>|(?=\n\n)|$)", re.DOTALL | re.IGNORECASE
)
_LEFTOVER_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")


@dataclass(frozen=True)
class Page:
    """One `<page>` of a dump: title, namespace, page id, whether it is a redirect, and its wikitext."""

    title: str
    namespace: int
    page_id: str
    redirect: bool
    wikitext: str


@register("wiki")
def load(path: str, dataset: dict) -> Iterator[Document | BadRecord]:
    """Stream the articles of a MediaWiki XML dump as documents (page id, plain text, entity = title).

    Every article yields exactly one record: a Document (its text may be empty when nothing but markup is left) or,
    when its wikitext cannot be parsed, a BadRecord; so record positions never depend on the rendering.

    Parallel parts: when `dataset` carries `part` (0-based; the corpus stage's part index, with `parts` the part
    count), only the articles at record positions i with i % parts == part are rendered, the others yield a
    placeholder Document with neither text nor sentences. Positions count every yielded record (documents and
    bad records), as the corpus stage's `doc_index` does. Rendering is ~95% of the cost, so parts then scale.
    """
    namespaces = {int(ns) for ns in dataset.get("namespaces", [0])}
    drop_sections = frozenset(s.lower() for s in dataset.get("drop_sections", DEFAULT_DROP_SECTIONS))
    part, parts = dataset.get("part"), int(dataset.get("parts", 1))
    shared = dataset_meta(dataset, "wiki")
    position = -1  # of the last yielded record
    with open_member(path, dataset.get("member")) as (stream, where):
        for item in iter_pages(stream, where):
            if isinstance(item, BadRecord):
                position += 1
                yield item
                continue
            if not is_article(item, namespaces):
                continue
            position += 1
            meta = check_meta({**shared, "entity": item.title})
            if part is not None and position % parts != int(part):
                yield Document(item.page_id, meta=meta)  # another part's article: not rendered here
                continue
            try:
                text = render_plain_text(item.wikitext, drop_sections)
            except Exception as error:  # the parser's own failure on one page: report it, go on  # noqa: BLE001
                yield BadRecord(f"{where}: page {item.page_id}", f"wikitext does not parse ({error})")
                continue
            yield Document(item.page_id, text=text, meta=meta)


def is_article(page: Page, namespaces: set[int]) -> bool:
    """A page of the kept namespaces that is neither a redirect nor a disambiguation page."""
    return (
        page.namespace in namespaces
        and not page.redirect
        and not _REDIRECT.match(page.wikitext)
        and not is_disambiguation(page.title, page.wikitext)
    )


def iter_pages(stream: IO[bytes], where: str) -> Iterator[Page | BadRecord]:
    """Parse `<page>` elements of a dump stream one at a time, clearing each; any export schema version."""
    with read_errors_as_source_error(where):
        context = ET.iterparse(stream, events=("start", "end"))
        root = None
        pages = 0
        for event, element in context:
            if root is None:
                root = element
                if _local(root.tag) != "mediawiki":
                    raise SourceError(f"{where}: not a MediaWiki XML dump (root element <{_local(root.tag)}>)")
            if event != "end" or _local(element.tag) != "page":
                continue
            pages += 1
            yield _page_of(element, where, pages)
            element.clear()
            root.clear()  # drop references to handled pages so memory stays flat
        if root is None:
            raise SourceError(f"{where}: empty file; fetch it again")


def _page_of(element: ET.Element, where: str, position: int) -> Page | BadRecord:
    """A Page from a `<page>` element, or a BadRecord when title, id or text is missing."""
    fields: dict[str, str] = {}
    redirect = False
    for child in element.iter():
        name = _local(child.tag)
        if name == "redirect":
            redirect = True
        elif name in ("title", "ns", "text") or (name == "id" and "id" not in fields):
            fields.setdefault(name, child.text or "")
    page_id = fields.get("id", "")
    label = f"{where}: page {page_id or f'#{position}'}"
    if not fields.get("title") or not page_id:
        return BadRecord(label, "page without <title> or <id>")
    if "text" not in fields:
        return BadRecord(label, "page without a <revision><text>")
    try:
        namespace = int(fields.get("ns", "0") or 0)
    except ValueError:
        return BadRecord(label, f"<ns> is not a number: {fields['ns']!r}")
    return Page(fields["title"], namespace, page_id, redirect, fields["text"])


def _local(tag: str) -> str:
    """An element's name without its XML namespace."""
    return tag.rsplit("}", 1)[-1]


def is_disambiguation(title: str, wikitext: str) -> bool:
    """A disambiguation page: '(disambiguation)' in the title or a disambiguation template anywhere."""
    return title.endswith("(disambiguation)") or _DISAMBIGUATION_TEMPLATE.search(wikitext) is not None


def split_sections(wikitext: str) -> list[tuple[int, str, str]]:
    """The page as (heading level, heading title, body) triples; the lead section has level 0 and title ''."""
    sections: list[tuple[int, str, str]] = []
    level, title, start = 0, "", 0
    for match in _HEADING_LINE.finditer(wikitext):
        sections.append((level, title, wikitext[start : match.start()]))
        level, title, start = len(match.group(1)), match.group(2), match.end()
    sections.append((level, title, wikitext[start:]))
    return sections


def render_plain_text(wikitext: str, drop_sections: Iterable[str] = DEFAULT_DROP_SECTIONS) -> str:
    """Plain text of a page's wikitext: running prose only, paragraphs separated by one blank line.

    Sections are parsed one at a time (unbalanced markup cannot spill over a heading); a section whose title is in
    `drop_sections` is left out with its subsections; headings themselves become paragraph breaks.
    """
    drop = frozenset(drop_sections)
    pieces: list[str] = []
    skip_level = 0  # inside a dropped section of this heading level (0 = not skipping)
    wikitext = _REF_OR_COMMENT.sub("", wikitext)  # refs first: a broken template inside one can hide its end
    for level, title, body in split_sections(wikitext):
        if skip_level and level > skip_level:
            continue
        skip_level = level if _heading_key(title) in drop else 0
        if not skip_level:
            pieces.append(_render(mwparserfromhell.parse(body)))
            pieces.append("\n\n")
    return _tidy("".join(pieces))


def _heading_key(title: str) -> str:
    """A heading title as compared with `drop_sections`: lowercase, without link and style markup."""
    return " ".join(_HEADING_MARKUP.sub("", title).lower().split())


def _render(code: Wikicode | None) -> str:
    return "" if code is None else "".join(_render_node(node) for node in code.nodes)


def _render_node(node: object) -> str:
    """Plain text of one node (recursing into tags and link texts)."""
    if isinstance(node, Text):
        return node.value
    if isinstance(node, (Template, Comment, Argument)):
        return ""
    if isinstance(node, HTMLEntity):
        return node.normalize()
    if isinstance(node, Wikilink):
        return _render_link(node)
    if isinstance(node, ExternalLink):
        return _render(node.title) if node.title is not None else ""
    if isinstance(node, Tag):
        return _render_tag(node)
    if isinstance(node, Heading):
        return "\n\n"
    return ""


def _render_link(link: Wikilink) -> str:
    title = str(link.title).strip()
    if title.startswith(":"):  # [[:Category:X]] links to the page, shown as text
        return _render(link.text) if link.text is not None else title[1:]
    namespace = title.split(":", 1)[0].strip().lower() if ":" in title else ""
    if namespace in DROPPED_LINK_NAMESPACES:
        return ""
    if namespace and link.text is None and _LANGUAGE_PREFIX.match(namespace):
        return ""
    if link.text is not None:
        return _render(link.text)
    return _render(link.title)


def _render_tag(tag: Tag) -> str:
    name = str(tag.tag).strip().lower()
    if name in DROPPED_TAGS:
        return ""
    if name in _LIST_MARKUP and tag.wiki_markup:
        return _LIST_MARK
    if name in ("br", "hr"):
        return "\n"
    if name == "p":
        return "\n\n" + _render(tag.contents) + "\n\n"
    return _render(tag.contents) if tag.contents is not None else ""


def _tidy(text: str) -> str:
    """Whitespace and leftovers of removed markup: one blank line between paragraphs, no list-of-links lines."""
    text = _LEFTOVER_TAG.sub("", _LEFTOVER_QUOTES.sub("", _BEHAVIOUR_SWITCH.sub("", text)))
    lines: list[str] = []
    for raw_line in text.split("\n"):
        is_list_item = raw_line.lstrip().startswith(_LIST_MARK)
        line = _SPACES.sub(" ", raw_line.replace(_LIST_MARK, " ")).strip()
        line = _EMPTY_BRACKETS.sub("", line)
        line = _BRACKET_CLOSE_PUNCT.sub(")", _BRACKET_OPEN_PUNCT.sub("(", line))
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", _EMPTY_BRACKETS.sub("", line)).strip()
        line = _SPACES.sub(" ", line)
        if line.startswith(("{|", "|}", "|", "!")):  # table rows the parser did not recognise
            line = ""
        if is_list_item and not _SENTENCE_END.search(line):
            line = ""
        lines.append(line)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return "\n\n".join(paragraphs)
