"""The workflow's own hygiene: snakemake --lint and snakefmt are clean, configs validate, every rule has a log and
a conda env."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


def test_snakemake_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile"), "-d", str(REPO)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_snakefmt_check_is_clean():
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: p.name)
def test_configs_validate_against_the_schema(config_path):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(yaml.safe_load(config_path.read_text()))


def test_schema_rejects_a_wrong_value_naming_the_key():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["scan"]["k"] = "many"
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert errors and list(errors[0].absolute_path) == ["scan", "k"]


def test_every_rule_has_log_and_conda():
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    for path in sources:
        blocks = re.split(r"\n(?=(?:rule|checkpoint) )", path.read_text())
        for block in blocks[1:]:
            name = block.split(":", 1)[0].split()[1]
            if name in ("all",) or "input:" not in block or "output:" not in block:
                continue
            assert "\n    log:" in block, f"{path.name}: rule {name} has no log:"
            assert "\n    conda:" in block, f"{path.name}: rule {name} has no conda:"
