"""Import tracer for tests/test_envs.py (active only when NEUROTEXT_IMPORT_TRACE names a directory).

Put this directory on PYTHONPATH of a workflow run: every Snakemake job (a `script:` run in its own Python process)
then writes, when it exits, ``{NEUROTEXT_IMPORT_TRACE}/{rule}-{pid}.json`` with every top-level module the job had
imported by its end (`modules`: name -> source file or null), and which module first imported each
(`importers`: name -> importing module's name, e.g. pandas -> pyarrow.pandas_compat for a ``.to_pandas()`` call).
Processes that are not Snakemake jobs (the scheduler itself, worker processes) write nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

_TRACE_DIR = os.environ.get("NEUROTEXT_IMPORT_TRACE")


def _importer_name() -> str:
    """Name of the module whose code runs the import: the first frame outside the import machinery."""
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not (frame.f_code.co_filename.startswith("<frozen") or name.startswith(("importlib", "_frozen_importlib"))
                or name == __name__):  # fmt: skip
            return name
        frame = frame.f_back
    return "?"


class _FirstImports:
    """A meta path finder that finds nothing: it only notes who imports each top-level module first."""

    importers: dict[str, str] = {}

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> None:
        if "." not in name and name not in cls.importers:
            cls.importers[name] = _importer_name()
        return None


def _write_trace() -> None:
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    rule = getattr(job, "rule", None)
    if not rule:
        return
    modules = {}
    for name, module in list(sys.modules.items()):
        if "." not in name:
            modules[name] = getattr(module, "__file__", None)
    record = {"rule": rule, "pid": os.getpid(), "modules": modules, "importers": _FirstImports.importers}
    path = os.path.join(_TRACE_DIR, f"{rule}-{os.getpid()}.json")
    os.makedirs(_TRACE_DIR, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle, sort_keys=True)
    os.replace(path + ".tmp", path)


if _TRACE_DIR:
    sys.meta_path.insert(0, _FirstImports)  # type: ignore[arg-type]
    atexit.register(_write_trace)
