"""Loaders: one module per source format, each registering itself with `neurotext.loaders.base.register`.

`load_documents(dataset)` streams a dataset's documents in source order; every submodule of this package is
imported on first use so that formats register themselves.
"""

from __future__ import annotations

import importlib
import pkgutil

from neurotext.loaders.base import LOADERS, BadRecord, Document, SourceError, load_documents, register

__all__ = ["LOADERS", "BadRecord", "Document", "SourceError", "load_documents", "register", "import_all"]


def import_all() -> None:
    """Import every loader module so that all formats are registered."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
