"""The one escaping rule for text from the corpus or its metadata written into Markdown or CSV outputs.

Every writer of a ``.md`` page or table and of a ``.csv``/``.tsv`` table imports from here:

- `escape_markdown(text)`: Markdown and HTML metacharacters backslash-escaped (CommonMark renders them literally,
  so ``<script>`` or ``"><svg onload=...>`` from a sentence or a domain shows as text, never as a live tag);
  newlines become spaces (a sentence stays on its line / in its table cell).
- `csv_text(value)`: a text cell guarded against spreadsheet formula injection: a value starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return gets a leading apostrophe (the OWASP rule). Use it for text from the corpus
  or metadata only, never for numbers (``-0.5`` stays a number).
"""

from __future__ import annotations

_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#~"})
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_markdown(text: str) -> str:
    """`text` with Markdown/HTML metacharacters (``\\`*_[]<>|#~``) backslash-escaped and newlines made spaces."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").translate(_MARKDOWN_SPECIAL)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_text(value: str) -> str:
    """`value` for a CSV/TSV text cell: prefixed with an apostrophe when a spreadsheet would read it as a formula
    (a lone ``-`` or a signed number such as ``-0.5`` is left alone)."""
    if not value.startswith(FORMULA_PREFIXES) or (value[0] in "+-" and (len(value) == 1 or _is_number(value))):
        return value
    return "'" + value
