"""Figures: the one way a figure is written (PNG + PDF, atomic, byte-deterministic), the headless backend, and the
arguments a figure rule passes to its entry function (`rule_arguments`; the stage's generic figure script
``workflow/scripts/{stage}_figure.py`` calls ``getattr(<stage figures module>, params.figure)(**rule_arguments(...))``).

docs/ARCHITECTURE.md, "How to add a figure".
"""

from __future__ import annotations

import os
from typing import Any

from neurotext.io import atomic_output

PathLike = str | os.PathLike[str]

#: PNG resolution (dots per inch) of every figure.
PNG_DPI = 150


def use_agg() -> None:
    """Switch matplotlib to the headless Agg backend (call before importing pyplot in a job)."""
    import matplotlib

    matplotlib.use("Agg", force=True)


def save_figure(fig, png: PathLike, pdf: PathLike) -> None:
    """Write `fig` as PNG (`PNG_DPI`) and PDF, atomically and without timestamps (same figure, same bytes)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "neurotext", "pdf.compression": 6}):
        with atomic_output(png) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI, metadata={"Software": None})
        with atomic_output(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None})


def rule_arguments(job: Any) -> dict[str, Any]:
    """A figure rule's keyword arguments from its Snakemake job object (`snakemake` in a script): every named input
    (a path, or a list of paths), every param but ``figure`` (the entry's name) and the ``png`` / ``pdf`` outputs."""
    arguments: dict[str, Any] = {}
    for name, value in job.input.items():
        arguments[name] = value if isinstance(value, str) else list(value)
    arguments.update({name: value for name, value in job.params.items() if name != "figure"})
    arguments["png"], arguments["pdf"] = job.output.png, job.output.pdf
    return arguments
