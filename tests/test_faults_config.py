"""Faults caught before any job runs: the config checked completely (neurotext.validate).

Each test here failed before the validator existed: misspelled keys ran with defaults, duplicate dataset codes died
after the whole scan, a max_length beyond the model's positions failed inside PyTorch.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neurotext.config import ConfigError, config_hash
from neurotext.validate import check_config, suggest

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A model directory holding only a BERT config.json (2 layers, hidden 32, 512 positions): what the checks read."""
    path = tmp_path_factory.mktemp("model")
    config = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
              "max_position_embeddings": 512}  # fmt: skip
    (path / "config.json").write_text(json.dumps(config))
    return path


def problems(config: dict) -> str:
    """The ConfigError message check_config raises for `config` (fails the test when it raises none)."""
    with pytest.raises(ConfigError) as caught:
        check_config(config, SCHEMA)
    return str(caught.value)


def edited(**changes) -> dict:
    """A deep copy of config/test.yaml with `changes` applied: key paths joined by '__' -> value."""
    config = copy.deepcopy(TEST_CONFIG)
    for path, value in changes.items():
        *parents, last = path.split("__")
        block = config
        for part in parents:
            block = block.setdefault(part, {})
        block[last] = value
    return config


@pytest.mark.parametrize(
    ("changes", "unknown", "hint"),
    [
        ({"scna": {"k": 3}}, "`scna`", "did you mean `scan`?"),
        ({"scan__topk": 3}, "`scan.topk`", "did you mean `scan.k`?"),
        ({"model__pooling_mode": "max"}, "`model.pooling_mode`", "did you mean `model.pooling`?"),
        ({"datasets__books__shard": 2}, "`datasets.books.shard`", "did you mean `datasets.books.shards`?"),
        ({"corpus__clean__min_char": 3}, "`corpus.clean.min_char`", "did you mean `corpus.clean.min_chars`?"),
        ({"k": 3}, "`k`", "did you mean `scan.k` (the key belongs there)?"),
    ],
)
def test_unknown_keys_are_rejected_with_a_hint(changes, unknown, hint):
    message = problems(edited(**changes))
    assert f"unknown config key {unknown}: {hint}" in message


def test_every_unknown_key_is_reported_at_once():
    message = problems(edited(scna={}, scan__topk=3, model__pooling_mode="max", datasets__books__shard=2))
    assert "4 problem(s)" in message


def test_wrong_value_names_the_key():
    assert "`scan.k` = 'many'" in problems(edited(scan__k="many"))
    assert "`model.site` = 'mlp': use one of 'hidden', 'ffn'" in problems(edited(model__site="mlp"))


def test_duplicate_dataset_codes_are_rejected():
    message = problems(edited(datasets__movies__code=1))
    assert "datasets books, movies share `code` 1" in message and "datasets.movies.code: 2" in message


def test_unknown_format_is_rejected_with_a_hint():
    assert "`datasets.movies.format` = 'vadr' is not a known format (did you mean 'vader'?)" in problems(
        edited(datasets__movies__format="vadr")
    )


def test_finetune_datasets_must_exist():
    assert "`finetune.dataset` = 'tweet' is not a dataset" in problems(edited(finetune__dataset="tweet"))


def test_model_block_needs_scan_and_sample():
    config = copy.deepcopy(TEST_CONFIG)
    del config["scan"]
    assert "`scan` is required when `model` is set" in problems(config)


def test_corpus_only_config_is_valid():
    config = {key: copy.deepcopy(TEST_CONFIG[key]) for key in ("run", "datasets", "corpus")}
    assert check_config(config, SCHEMA) == []
    assert config["resources"] == {"gpu": 0, "threads": 2}  # schema defaults filled in


def test_max_length_beyond_the_model_positions_is_rejected(tiny_model_dir):
    config = edited(model__path=str(tiny_model_dir), model__max_length=1024)
    message = problems(config)
    assert "`model.max_length` = 1024 exceeds the model's 512 positions" in message
    assert "set model.max_length <= 512" in message


def test_neuron_ranges_are_checked_against_the_model(tiny_model_dir):
    config = edited(model__path=str(tiny_model_dir), table2__neurons=["L3.0", "L1.40", "L2.31"])
    config["relations"]["figure2"]["neurons"] = [0, 32]
    config["relations"]["figure4"]["layer"] = 3
    config["model"]["layers"] = [2, 5]
    message = problems(config)
    assert "`model.layers[1]` = 5 is outside the model: layers are 1..2" in message
    assert "`table2.neurons[0]` = 'L3.0' is outside the model: layers are 1..2" in message
    assert "`table2.neurons[1]` = 'L1.40' is outside the model" in message
    assert "table2.neurons[2]" not in message
    assert "`relations.figure2.neurons[1]` = 32 is outside the model" in message
    assert "`relations.figure4.layer` = 3 is outside the model" in message


def test_model_checks_wait_for_the_model():
    """Without a model directory the model checks are skipped (the corpus builds first)."""
    assert check_config(edited(model__path="resources/not-there", model__max_length=4096), SCHEMA) == []


def test_k_above_the_corpus_cap_warns():
    warnings = check_config(edited(scan__k=1000), SCHEMA)
    assert len(warnings) == 1 and "`scan.k` = 1000 exceeds the corpus's at most 450 sentences" in warnings[0]


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_with_snakemakes_defaults(config_path):
    """check_config fills the same defaults as Snakemake's validate(set_default=True): the config hash (stamped in
    every output) is unchanged."""
    from snakemake.utils import validate

    config = yaml.safe_load(config_path.read_text())
    ours, theirs = copy.deepcopy(config), copy.deepcopy(config)
    check_config(ours, SCHEMA)
    validate(theirs, str(SCHEMA))
    assert config_hash(ours) == config_hash(theirs)


def test_suggest_prefers_close_siblings():
    assert suggest("tokn_budget", ["k", "token_budget"], "scan") == "did you mean `scan.token_budget`?"
    assert suggest("zzz", ["k"]) == "no close match"


def test_snakefile_refuses_a_misspelled_config_before_any_job(tmp_path):
    config = edited(scna={"k": 3}, scan__topk=3)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
         str(tmp_path / "bad.yaml"), "-n", "--quiet", "rules"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "unknown config key `scna`: did you mean `scan`?" in output
    assert "unknown config key `scan.topk`: did you mean `scan.k`?" in output
    assert not (tmp_path / "results").exists()
