"""The repository's structure holds what docs/ARCHITECTURE.md promises: schemas only in `neurotext.artifacts`,
every artifact path documented, the generated artifact list up to date, stage packages independent, and no
citation of files outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neurotext.artifacts.catalog import BEGIN, END, ENTRIES, render_markdown
from neurotext.artifacts.paths import PATHS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "neurotext"
DOC = REPO / "docs" / "ARCHITECTURE.md"

#: Stage packages and modules: they meet only through neurotext.artifacts and the shared ground (docs/ARCHITECTURE.md,
#: "Shared ground"). A tuple is one stage in several modules (the scan makes its own token shards).
STAGES: tuple[tuple[str, ...], ...] = (
    ("corpus",), ("sample",), ("scan", "shards"), ("sae",), ("records",), ("parse",), ("patterns",), ("scores",),
    ("relations",), ("finetune",), ("report",), ("browser",), ("cli",), ("fetch",), ("compare",),
)  # fmt: skip
STAGE_OF = {name: group for group in STAGES for name in group}


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_arrow_schema_is_defined_outside_artifacts():
    offenders = []
    for path in python_files(PACKAGE):
        if path.is_relative_to(PACKAGE / "artifacts"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "pa.schema(" in line or "pyarrow.schema(" in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "define Arrow schemas in src/neurotext/artifacts/ only:\n" + "\n".join(offenders)


def test_every_artifact_path_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{name}: {template}" for name, template in PATHS.items() if f"`{template}`" not in text]
    assert not missing, "docs/ARCHITECTURE.md does not list:\n" + "\n".join(missing)


def test_every_path_has_a_catalog_entry_and_back():
    assert sorted(PATHS) == sorted(ENTRIES)


def test_the_generated_artifact_list_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == render_markdown(), "run: python tools/artifacts_doc.py --write"


def test_the_doc_tool_prints_the_list():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "artifacts_doc.py")], capture_output=True,
                            text=True, timeout=120, check=True)  # fmt: skip
    assert result.stdout.strip() == render_markdown().strip()


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("stage", STAGES, ids="+".join)
def test_a_stage_never_imports_another_stage(stage):
    files = []
    for name in stage:
        root = PACKAGE / name
        files += python_files(root) if root.is_dir() else [PACKAGE / f"{name}.py"]
    offenders = []
    for path in files:
        for module in imported_modules(path):
            parts = module.split(".")
            other = STAGE_OF.get(parts[1]) if parts[0] == "neurotext" and len(parts) > 1 else None
            if other is not None and other != stage:
                offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, "stages meet only through neurotext.artifacts and the shared ground:\n" + "\n".join(offenders)


def test_nothing_cites_a_file_outside_the_repository():
    roots = [REPO / d for d in ("src", "workflow", "config", "tests", "benchmarks", "docs")] + [REPO / "README.md",
                                                                                                 REPO / "Snakefile"]
    pattern = re.compile(r"DESIGN(\.md|:| §| section)")
    offenders = []
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and p.suffix in
                                                (".py", ".smk", ".yaml", ".md", ".rst")]  # fmt: skip
        for path in files:
            if path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert not offenders, "cite docs/ARCHITECTURE.md instead:\n" + "\n".join(offenders)


def test_code_carries_no_tracker_numbers():
    pattern = re.compile(r"\bissues? ?#?\d+", re.IGNORECASE)
    files = [REPO / "Snakefile"] + [p for d in ("src", "workflow", "tests", "benchmarks", "tools")
                                    for p in (REPO / d).rglob("*") if p.suffix in (".py", ".smk")]  # fmt: skip
    offenders = [f"{path.relative_to(REPO)}:{number}" for path in files if path != Path(__file__)
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]  # fmt: skip
    assert not offenders, "say what the code does, not which tracker item asked for it:\n" + "\n".join(offenders)


def test_every_path_constant_of_the_artifacts_modules_is_in_paths():
    import importlib
    import pkgutil

    import neurotext.artifacts as package

    templates = set(PATHS.values())
    missing = []
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"neurotext.artifacts.{module_info.name}")
        for name, value in vars(module).items():
            if name.endswith("_PATH") and isinstance(value, str):
                values = [value]
            elif name.endswith("_PATHS") and isinstance(value, tuple):
                values = list(value)
            else:
                continue
            missing += [f"{module_info.name}.{name}: {v}" for v in values if v not in templates]
    assert not missing, "add these to neurotext.artifacts.paths.PATHS (and catalog.ENTRIES):\n" + "\n".join(missing)


#: Settings whose defaults live only in the config schema: ``from_config`` reads the validated block (every key
#: filled by neurotext.validate) and the dataclass has no field defaults, so nothing can drift.
SCHEMA_ONLY_DEFAULTS = {"patterns": ("neurotext.mining", "PatternSettings"),
                        "table2": ("neurotext.patterns", "Table2Settings"),
                        "records": ("neurotext.records", "RecordSettings"),
                        "relations": ("neurotext.relations", "RelationsSettings"),
                        "browser": ("neurotext.browser", "BrowserSettings"),
                        "model": ("neurotext.encoder", "ModelSettings"),
                        "scan": ("neurotext.encoder", "ScanSettings"),
                        "parse": ("neurotext.parse", "ParseConfig"),
                        "finetune": ("neurotext.finetune", "FinetuneSettings")}  # fmt: skip
#: The keys a block requires (no schema default), as the smallest valid partial block.
REQUIRED_KEYS = {"model": {"max_length": 64}, "scan": {"k": 10, "token_budget": 512},
                 "finetune": {"dataset": "books", "label": "genre", "eval": {"out_of_domain": "tweets"}}}  # fmt: skip
#: Blocks the schema gives no `default: {}` (a config may leave them out): with_defaults is checked on the shipped
#: block only.
NO_BLOCK_DEFAULT = {"browser", "model", "scan", "parse", "finetune"}


def _settings_class(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("block", sorted(SCHEMA_ONLY_DEFAULTS))
def test_schema_is_the_one_home_of_the_defaults(block):
    import dataclasses
    import importlib

    from neurotext.validate import with_defaults

    settings = _settings_class(*SCHEMA_ONLY_DEFAULTS[block])
    missing = dataclasses.MISSING
    classes, with_default = [settings], []
    while classes:  # the block's class and the dataclasses of its nested blocks
        cls = classes.pop()
        for f in dataclasses.fields(cls):
            if f.default is not missing or f.default_factory is not missing:
                with_default.append(f"{cls.__name__}.{f.name}")
            if isinstance(f.type, str) and f.type in vars(importlib.import_module(cls.__module__)):
                nested = getattr(importlib.import_module(cls.__module__), f.type)
                if dataclasses.is_dataclass(nested) and nested.__name__ != "FeatureSettings":
                    classes.append(nested)
    assert not with_default, f"{settings.__name__} repeats the schema's defaults: {with_default}"
    required = REQUIRED_KEYS.get(block, {})
    assert settings.from_config(with_defaults(block, required)) == settings.from_config(with_defaults(block, required))




@pytest.mark.parametrize("block", sorted(set(SCHEMA_ONLY_DEFAULTS) - {"browser"}))
def test_with_defaults_fills_a_block_as_validation_does(block):
    """`with_defaults` (tests, partial blocks) and `check_config` (every run) fill the same defaults: for the shipped
    block as written and for a config that leaves the block out (filled as an empty block)."""
    import copy

    import yaml

    from neurotext.validate import check_config, with_defaults

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    validated = copy.deepcopy(raw)
    check_config(validated, schema)
    assert with_defaults(block, raw[block]) == validated[block]
    if block in NO_BLOCK_DEFAULT:  # left out of a config, the block stays out (its settings fill it when needed)
        return
    without = copy.deepcopy(raw)
    del without[block], without["model"]  # no model: the defaults need not fit config/test.yaml's tiny model
    check_config(without, schema)
    assert with_defaults(block) == without[block]
    assert raw == yaml.safe_load((REPO / "config" / "test.yaml").read_text()), "with_defaults changed its input"
