"""Text and JSON output of the `neurotext` command: terminal-safe sentences with the max token marked, numbers,
tables, and JSON without NaN."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

#: C0/C1 controls (terminal escape sequences) and bidirectional overrides/isolates (they reorder what follows).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\u2028": " ", "\u2029": " ", "\x85": " "})


def clean_text(text: str) -> str:
    """`text` on one line and inert in a terminal, same length: tabs and line breaks become spaces, other control
    characters (escape sequences included) and bidirectional overrides become U+FFFD."""
    return _CONTROL.sub("\ufffd", text.translate(_SPACES))


@dataclass(frozen=True)
class Marker:
    """How the max token is marked in text output: ANSI bold on a terminal, ``**token**`` otherwise."""

    open: str
    close: str

    @staticmethod
    def for_stream(stream: TextIO) -> Marker:
        if stream.isatty() and not os.environ.get("NO_COLOR"):
            return Marker("\x1b[1;4m", "\x1b[0m")
        return Marker("**", "**")


def mark_sentence(text: str, start: int, end: int, marker: Marker, width: int = 0) -> str:
    """`text` with characters [start, end) marked (an empty or out-of-range span marks nothing), on one line.

    `width` > 0 clips the text to about that many characters around the span, with ``…`` where text was cut.
    """
    n = len(text)
    if not 0 <= start < end <= n:
        start = end = -1
    lo, hi = 0, n
    if width > 0 and n > width:
        centre = (start + end) // 2 if start >= 0 else 0
        lo = max(0, min(centre - width // 2, n - width))
        hi = min(n, lo + width)
        if start >= 0:  # never cut the span itself
            lo, hi = min(lo, start), max(hi, end)
    head = ("…" if lo > 0 else "") + clean_text(text[lo : max(lo, start) if start >= 0 else hi])
    tail = clean_text(text[end:hi] if start >= 0 else "") + ("…" if hi < n else "")
    if start < 0:
        return head + tail
    return head + marker.open + clean_text(text[start:end]) + marker.close + tail


def number(value: Any, digits: int = 3) -> str:
    """A float for a table cell: `digits` significant digits, '-' for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"  # significant digits: q = 0.0018 stays 0.0018 (fixed decimals made it "0")
    return str(value)


def percent(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.0f}%"


def json_ready(value: Any) -> Any:
    """`value` with NaN/inf floats as None (JSON has no NaN) and tuples as lists, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def print_json(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(json_ready(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def table(rows: Sequence[Sequence[str]], header: Sequence[str], indent: str = "  ") -> list[str]:
    """Left-aligned text table (columns two spaces apart), header first."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append(indent + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def span_text(layers: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> '1-3,5'."""
    parts: list[str] = []
    for layer in sorted(layers):
        if parts and parts[-1].split("-")[-1] == str(layer - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{layer}"
        else:
            parts.append(str(layer))
    return ",".join(parts)
