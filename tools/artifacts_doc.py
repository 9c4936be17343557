"""Print (or with --write, refresh in docs/ARCHITECTURE.md) the generated artifact list of the "Artifacts" section,
from `neurotext.artifacts.catalog`. tests/test_architecture.py fails when the document is out of date."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neurotext.artifacts.catalog import BEGIN, END, render_markdown  # noqa: E402

DOC = REPO / "docs" / "ARCHITECTURE.md"


def refreshed(text: str) -> str:
    """`text` with the block between the markers replaced by the current `render_markdown()`."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render_markdown() + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite the block in {DOC.relative_to(REPO)}")
    args = parser.parse_args()
    if args.write:
        DOC.write_text(refreshed(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(render_markdown())


if __name__ == "__main__":
    main()
