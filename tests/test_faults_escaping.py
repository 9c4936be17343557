"""Markdown and CSV outputs escape what comes from the corpus or its metadata (neurotext.markdown).

Before, `tables/table1.md` printed a domain ``"><svg onload=...>`` verbatim (live in any Markdown renderer), Table 2
and Table 3 cells carried raw tags, and CSV cells could start a spreadsheet formula. Each rendering test runs the
writer's real output through a CommonMark renderer (markdown-it-py) and looks for raw HTML.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from neurotext.markdown import csv_text, escape_markdown

HOSTILE = [
    '"><svg onload=alert(1)>',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "a | b | <b>c</b>",
    "`code` *bold* _em_ # title ~~x~~ \\<i>",
    "line one\n<iframe src=x>\r\nline two",
]
RAW_TAG = re.compile(r"<\s*/?\s*(script|svg|img|iframe|b|i|a)\b", re.IGNORECASE)
RENDERER = MarkdownIt("commonmark").enable("table")


def rendered_html(markdown: str) -> str:
    return RENDERER.render(markdown)


def raw_html_tokens(markdown: str, links: bool = True) -> list[str]:
    """Inline or block HTML tokens markdown-it finds in `markdown`, and links (all of them, or with `links=False`
    only script-running ones: javascript:, data:, vbscript:); none for escaped text."""
    found = []
    for token in RENDERER.parse(markdown):
        if token.type == "html_block":
            found.append(token.content)
        for child in token.children or []:
            href = str(child.attrGet("href") or "") if child.type == "link_open" else ""
            if child.type == "html_inline" or (child.type == "link_open" and (
                    links or href.lower().startswith(("javascript:", "data:", "vbscript:")))):  # fmt: skip
                found.append(child.content or f"link {href}")
    return found


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_without_html(text):
    markdown = f"| a | b |\n|---|---|\n| {escape_markdown(text)} | x |\n\nSentence: {escape_markdown(text)}\n"
    assert raw_html_tokens(markdown) == []
    assert not RAW_TAG.search(rendered_html(markdown))


@given(st.text(alphabet=st.sampled_from(list("<>\"'=/\\`*_[]()|#~!&;: \nabcs")), max_size=40))
def test_escaped_text_never_renders_html(text):
    markdown = f"| c |\n|---|\n| {escape_markdown(text)} |\n\n{escape_markdown(text)}\n"
    assert raw_html_tokens(markdown) == []


def test_escape_keeps_one_line():
    assert "\n" not in escape_markdown("a\nb\r\nc\rd") and "\r" not in escape_markdown("a\r\nb")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+cmd", "'+cmd"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
     ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("-", "-"), ("-0.5", "-0.5"), ("+3", "+3"), ("review", "review")],
)  # fmt: skip
def test_csv_text_guards_formulas(value, expected):
    assert csv_text(value) == expected


def test_table1_escapes_the_domain():
    from neurotext.corpus.stats import Table1Row, table1_csv, table1_markdown

    def row(name: str, domains: str) -> Table1Row:
        return Table1Row(name, 10, 2, domains, "domain, genre", 12.0, 2, 0, 0, 0)

    rows = [row("books", '"><svg onload=alert(1)>, <script>x</script>'), row("Total", '"><svg onload=alert(1)>')]
    markdown = table1_markdown(rows)
    assert raw_html_tokens(markdown) == [] and not RAW_TAG.search(rendered_html(markdown))
    assert "\\<svg onload=alert(1)\\>" in markdown
    cells = list(csv.reader(io.StringIO(table1_csv([row("books", "=cmd()")]))))
    assert cells[1][3] == "'=cmd()"


def test_table2_cells_are_escaped():
    from neurotext.patterns.table2 import _md_cell

    assert raw_html_tokens(f"| {_md_cell('<script>x</script> | y')} |\n|---|\n") == []


def test_table3_sentences_are_escaped():
    from neurotext.finetune.table import _clip

    cell = _clip("<img src=x onerror=alert(1)> and a | pipe " + "word " * 30)
    assert raw_html_tokens(f"| a |\n|---|\n| {cell} |\n") == [] and len(cell) < 120


def test_layer_page_escapes_sentences(tmp_path, write_corpus):
    """The per-layer page (already escaped before) keeps escaping, through the shared helper."""
    import pyarrow as pa

    from neurotext.io import write_parquet
    from neurotext.report import write_layer_page

    corpus = write_corpus(tmp_path / "corpus.parquet", ['"><svg onload=alert(1)> is a <script>x</script> test'])
    topk = pa.table({"neuron": pa.array([0], pa.int32()), "rank": pa.array([0], pa.int32()),
                     "sentence_id": pa.array([1 << 27], pa.uint32()),  # dataset code 1, row 0
                     "activation": pa.array([1.0], pa.float32()), "char_start": pa.array([0], pa.int32()),
                     "char_end": pa.array([6], pa.int32())})  # fmt: skip
    write_parquet(topk, tmp_path / "topk.parquet")
    write_layer_page(str(tmp_path / "topk.parquet"), [str(corpus)], 1, 3, str(tmp_path / "page.md"))
    page = (tmp_path / "page.md").read_text()
    assert "svg" in page and raw_html_tokens(page) == []


@pytest.mark.e2e
def test_run_outputs_render_without_raw_html(e2e_run):
    """Every Markdown page and table of the shared tiny run renders with no raw HTML, and no CSV text cell starts a
    formula."""
    results = e2e_run / "results" / "test"
    pages = sorted(results.glob("tables/*.md")) + sorted(results.glob("pages/*.md"))
    assert pages
    for page in pages:
        assert raw_html_tokens(page.read_text(), links=False) == [], page
    for table in sorted(results.glob("tables/*.csv")):
        for row in csv.reader(io.StringIO(Path(table).read_text())):
            assert not [cell for cell in row if csv_text(cell) != cell], (table, row)
