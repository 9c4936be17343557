"""The one config validator: the JSON schema (strict, with defaults) plus the checks a schema cannot express.

`check_config(config, schema_path)` fills the schema's defaults into `config` (in place, the way Snakemake's
``validate(set_default=True)`` does), then collects every problem at once and raises one `ConfigError` that lists
them, each naming the key and the fix:

- unknown keys at any level, with a "did you mean" hint (difflib, or the same key name elsewhere in the schema);
- wrong types, ranges and choices (jsonschema's own message, prefixed with the key);
- cross-key checks: unique dataset codes, a known loader `format`, datasets named by other blocks exist,
  `model.max_length` within the model's positions, neuron and layer numbers within the model's dimensions (these
  read the model's config.json and are skipped when the model is not there yet, so the corpus builds without it).

It returns warnings (things that run but are likely not meant, e.g. `scan.k` above the corpus's sentence cap), which
the Snakefile prints before any job runs.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from neurotext.config import ConfigError, resolve_model_path

NEURON_NAME = re.compile(r"^[Ll](\d+)\.(\d+)$")


@dataclass(frozen=True)
class ModelLimits:
    """What a model allows: layers 1..n_layers, neurons 0..n_neurons-1 per layer, at most `max_positions` tokens."""

    n_layers: int
    n_neurons: int
    max_positions: int | None


def load_schema(path: str | Path) -> dict[str, Any]:
    """The schema file (YAML or JSON) as a dict."""
    return yaml.safe_load(Path(path).read_text())


def _default_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator that sets each property's `default` before validating (Snakemake's rule)."""
    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, property_schema in properties.items():
                if isinstance(property_schema, dict) and "default" in property_schema:
                    instance.setdefault(name, property_schema["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def key_path(parts: Any) -> str:
    """A config key path as written in messages: ``datasets.books.shards``, ``table2.neurons[1]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _all_keys(schema: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path the schema names (dataset and source names as ``<name>``)."""
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        yield (*prefix, name)
        yield from _all_keys(sub, (*prefix, name))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _all_keys(extra, (*prefix, "<name>"))


def suggest(unknown: str, known: list[str], parent: str = "", elsewhere: list[tuple[str, ...]] = ()) -> str:
    """A "did you mean" hint for the unknown key `unknown` among its `known` siblings under `parent` (or the same
    name elsewhere in the schema)."""
    close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
    if not close:  # e.g. topk -> k, pooling_mode -> pooling: a sibling the unknown key starts or ends with
        close = sorted((k for k in known if unknown.startswith(k) or unknown.endswith(k)), key=len, reverse=True)[:1]
    if close:
        return f"did you mean `{parent + '.' if parent else ''}{close[0]}`?"
    homes = [key_path(path) for path in elsewhere if path[-1] == unknown]
    if homes:
        return f"did you mean `{homes[0]}` (the key belongs there)?"
    return "no close match"


def _schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Messages for every schema violation, unknown keys with a hint."""
    everywhere = list(_all_keys(schema))
    messages = []
    for error in sorted(_default_validator(schema).iter_errors(config), key=lambda e: list(map(str, e.path))):
        messages.extend(_explain(error, everywhere))
    return messages


def _explain(error: ValidationError, everywhere: list[tuple[str, ...]]) -> list[str]:
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = sorted((error.schema.get("properties") or {}).keys())
        unknown = sorted(set(error.instance) - set(known))
        return [
            f"unknown config key `{key_path([*error.absolute_path, key])}`: "
            f"{suggest(key, known, key_path(error.absolute_path) if error.absolute_path else '', everywhere)} "
            f"(keys allowed {'at the top level' if not error.absolute_path else 'under ' + where}: "
            f"{', '.join(known)})"
            for key in unknown
        ]
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else error.message
        return [f"config key `{key_path([*error.absolute_path, name])}` is required: add it to the config"]
    if error.validator == "enum":
        return [f"`{where}` = {error.instance!r}: use one of {', '.join(map(repr, error.validator_value))}"]
    if error.validator == "propertyNames":
        return [f"`{where}`: the name {error.instance!r} is not allowed ({error.message})"]
    return [f"`{where}` = {error.instance!r}: {error.message}; fix the value in the config"]


def model_limits(config: dict[str, Any]) -> ModelLimits | None:
    """The configured model's layers, neurons per layer (for `model.site`) and positions from its config.json;
    None when the model is not there yet (its own job then reports that) or its config is unreadable."""
    model = config.get("model") or {}
    try:
        model_dir = resolve_model_path(str(model.get("path", "")))
        cfg = json.loads((model_dir / "config.json").read_text())
    except (ConfigError, OSError, ValueError):
        return None
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    n_layers = text.get("num_hidden_layers", text.get("n_layer", text.get("n_layers")))
    hidden = text.get("hidden_size", text.get("n_embd", text.get("dim")))
    if not isinstance(n_layers, int) or not isinstance(hidden, int):
        return None
    inner = text.get("intermediate_size", text.get("n_inner", text.get("hidden_dim"))) or 4 * hidden
    n_neurons = inner if model.get("site") == "ffn" else hidden
    if model["features"] != "neurons":  # directions / SAE latents: their count (neurotext.features); filled by now
        from neurotext.config import model_dims

        try:
            n_neurons = model_dims(model_dir, str(model["site"]), model, config.get("sae")).n_neurons
        except ConfigError:
            return None
    positions = text.get("max_position_embeddings", text.get("n_positions"))
    if isinstance(positions, int) and "roberta" in str(text.get("model_type", "")):
        positions -= int(text.get("pad_token_id") or 1) + 1  # RoBERTa's positions start after the padding index
    return ModelLimits(n_layers, int(n_neurons), positions if isinstance(positions, int) else None)


def _dataset_errors(config: dict[str, Any]) -> list[str]:
    datasets = config.get("datasets") or {}
    messages = []
    by_code: dict[int, list[str]] = {}
    for name, block in datasets.items():
        if isinstance(block, dict) and isinstance(block.get("code"), int):
            by_code.setdefault(block["code"], []).append(name)
    for code, names in sorted(by_code.items()):
        if len(names) > 1:
            used = sorted(c for c in by_code)
            free = next((c for c in [*range(1, 32), 0] if c not in used), None)
            messages.append(
                f"datasets {', '.join(names)} share `code` {code}: sentence ids (code << 27 | row) would collide; "
                f"give each dataset its own code (e.g. datasets.{names[-1]}.code: {free})"
            )
    try:
        from neurotext.loaders import import_all
        from neurotext.loaders.base import LOADERS

        import_all()
    except ImportError:  # a broken loader module: the corpus job reports it with its traceback
        return messages
    for name, block in datasets.items():
        fmt = block.get("format") if isinstance(block, dict) else None
        if isinstance(fmt, str) and fmt not in LOADERS:
            hint = difflib.get_close_matches(fmt, sorted(LOADERS), n=1)
            messages.append(
                f"`datasets.{name}.format` = {fmt!r} is not a known format"
                f"{f' (did you mean {hint[0]!r}?)' if hint else ''}; use one of: {', '.join(sorted(LOADERS))}"
            )
    finetune = config.get("finetune") or {}
    for key, value in (("finetune.dataset", finetune.get("dataset")),
                       ("finetune.eval.out_of_domain", (finetune.get("eval") or {}).get("out_of_domain"))):  # fmt: skip
        if value is not None and value not in datasets:
            messages.append(f"`{key}` = {value!r} is not a dataset; use one of: {', '.join(datasets)}")
    if finetune and finetune.get("dataset") == (finetune.get("eval") or {}).get("out_of_domain"):
        messages.append("`finetune.eval.out_of_domain` must name a dataset other than `finetune.dataset`")
    return messages


def _model_errors(config: dict[str, Any], limits: ModelLimits) -> list[str]:
    model, messages = config.get("model") or {}, []
    max_length = model.get("max_length")
    if limits.max_positions is not None and isinstance(max_length, int) and max_length > limits.max_positions:
        messages.append(
            f"`model.max_length` = {max_length} exceeds the model's {limits.max_positions} positions "
            f"(max_position_embeddings in {model.get('path')}/config.json): set model.max_length <= "
            f"{limits.max_positions}"
        )
    for index, name in enumerate((config.get("table2") or {}).get("neurons") or []):
        match = NEURON_NAME.match(str(name))
        if match and not (1 <= int(match[1]) <= limits.n_layers and int(match[2]) < limits.n_neurons):
            messages.append(
                f"`table2.neurons[{index}]` = {name!r} is outside the model: layers are 1..{limits.n_layers}, "
                f"neurons 0..{limits.n_neurons - 1} (model.site = {model.get('site')!r})"
            )
    for key, layers in (("model.layers", model.get("layers")), ("sae.layers", (config.get("sae") or {}).get("layers"))):
        for index, layer in enumerate(layers or []):
            if isinstance(layer, int) and not 1 <= layer <= limits.n_layers:
                messages.append(f"`{key}[{index}]` = {layer} is outside the model: layers are 1..{limits.n_layers}")
    relations = config.get("relations") or {}
    for index, neuron in enumerate((relations.get("figure2") or {}).get("neurons") or []):
        if isinstance(neuron, int) and neuron >= limits.n_neurons:
            messages.append(
                f"`relations.figure2.neurons[{index}]` = {neuron} is outside the model: neurons are "
                f"0..{limits.n_neurons - 1}"
            )
    layer = (relations.get("figure4") or {}).get("layer")
    if isinstance(layer, int) and not 1 <= layer <= limits.n_layers:
        messages.append(f"`relations.figure4.layer` = {layer} is outside the model: layers are 1..{limits.n_layers}")
    return messages


def _range_errors(config: dict[str, Any]) -> list[str]:
    """Ranges given as two keys (minimum <= maximum)."""
    pairs = [("relations", "k_min", "k_max"), ("patterns.skipgrams", "min_len", "max_len"),
             ("patterns.posgrams", "min_len", "max_len"), ("patterns.subtrees", "min_nodes", "max_nodes")]  # fmt: skip
    messages = []
    for block_path, low, high in pairs:
        block: Any = config
        for part in block_path.split("."):
            block = block.get(part) if isinstance(block, dict) else None
        if isinstance(block, dict) and isinstance(block.get(low), int) and isinstance(block.get(high), int):
            if block[low] > block[high]:
                messages.append(f"`{block_path}.{low}` = {block[low]} exceeds `{block_path}.{high}` = {block[high]}")
    relations = config.get("relations") or {}
    if all(isinstance(relations.get(key), int) for key in ("k", "k_min", "k_max")):
        if not relations["k_min"] <= relations["k"] <= relations["k_max"]:
            messages.append(
                f"`relations.k` = {relations['k']} lies outside relations.k_min..k_max "
                f"({relations['k_min']}..{relations['k_max']}): the clusters come from the SSE sweep"
            )
    return messages


def _warnings(config: dict[str, Any]) -> list[str]:
    warnings = []
    cap = (config.get("corpus") or {}).get("max_sentences_per_dataset")
    k = (config.get("scan") or {}).get("k")
    n_datasets = len(config.get("datasets") or {})
    if isinstance(cap, int) and isinstance(k, int) and k > cap * n_datasets:
        warnings.append(
            f"`scan.k` = {k} exceeds the corpus's at most {cap * n_datasets} sentences "
            f"(corpus.max_sentences_per_dataset = {cap} x {n_datasets} datasets): every neuron keeps every sentence "
            "and the patterns find no contrast; lower scan.k or raise the cap"
        )
    return warnings


def check_config(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Validate `config` in place (schema defaults filled in) against the schema at `schema_path` and the cross-key
    rules; raise `ConfigError` listing every problem, else return the warnings (possibly none)."""
    problems = _schema_errors(config, load_schema(schema_path))
    if "model" in config:  # a config without `model` builds the corpus only
        problems += [f"config key `{key}` is required when `model` is set: add it (see config/config.yaml)"
                     for key in ("scan", "sample") if key not in config]  # fmt: skip
    if not problems:  # cross-key checks assume the types are right
        problems += _dataset_errors(config) + _range_errors(config)
        limits = model_limits(config)
        if limits is not None:
            problems += _model_errors(config, limits)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"the config has {len(problems)} problem(s):\n{lines}")
    return _warnings(config)


def warn_k_exceeds_corpus(k: int, n_sentences: int) -> str | None:
    """The warning merge_topk prints when `scan.k` is above the corpus's sentence count, else None."""
    if k <= n_sentences:
        return None
    return (
        f"scan.k = {k} exceeds the corpus's {n_sentences} sentences: every neuron keeps all of them, so the top-K "
        "lists are the whole corpus and the patterns find no contrast; lower scan.k"
    )


#: The config schema of the source checkout (the Snakefile passes the same file to `check_config`).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def fill_defaults(node: dict[str, Any], instance: Any) -> Any:
    """Fill `node`'s property defaults into `instance` in place, recursively (the same rule as `check_config`: a
    missing key gets its `default`, a present mapping is filled from its own properties); return `instance`."""
    if isinstance(instance, dict):
        for key, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            if key not in instance and "default" in prop:
                instance[key] = copy.deepcopy(prop["default"])
            if key in instance:
                fill_defaults(prop, instance[key])
    return instance


def with_defaults(block: str, partial: dict[str, Any] | None = None, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """The config block `block` (e.g. ``"patterns"``) as a validated config would hold it: a deep copy of `partial`
    (None = empty) with the schema's defaults filled in. The schema is the one home of the defaults; the typed
    settings' ``from_config`` read every key without a fallback, so code and tests that start from a partial
    block (not from a config that went through `check_config`) build it with this."""
    schema = load_schema(schema_path)["properties"][block]
    return fill_defaults(schema, copy.deepcopy(dict(partial or {})))
