"""Building the browser: every layer's data file, then ``data/index.js`` and ``data/meta.js``, then the static pages
copied from the package's ``browser_assets/`` (`build_browser`; the rule's entry point is `run_browser_job`)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from neurotext.artifacts.corpus import read_domains
from neurotext.artifacts.provenance import DEFAULT_FEATURES, features_of
from neurotext.browser.corpus import read_corpus
from neurotext.browser.inputs import BrowserInputs, clean_stale_layers
from neurotext.browser.jsdata import DATA_PRELUDE, js_assignment
from neurotext.browser.layers import INDEX_FIELDS, LayerTables, layer_data, layer_sections, read_layer_sources
from neurotext.browser.sentences import QUANT
from neurotext.browser.settings import BrowserSettings
from neurotext.browser.tables import INDEX_KINDS, read_finetune
from neurotext.ids import unit_marker
from neurotext.io import atomic_output, read_config_hash, write_text
from neurotext.logs import progress

log = logging.getLogger("neurotext.browser")

PathLike = str | os.PathLike[str]

#: Static files copied from the package's ``browser_assets/`` into the browser directory (source -> target).
ASSET_FILES: dict[str, str] = {
    "index.html": "index.html",
    "neuron.html": "neuron.html",
    "browser.js": "assets/browser.js",
    "style.css": "assets/style.css",
}


@dataclass(frozen=True)
class BuildStats:
    """What `build_browser` made: neurons, bytes per file kind, seconds."""

    n_neurons: int
    n_layers: int
    bytes_total: int
    bytes_by_file: dict[str, int]
    seconds: float


def read_provenance(path: PathLike | None, fallback_hash: str, run: str) -> dict[str, Any]:
    """The footer's provenance: run, config hash, model, date, git commit (from provenance.json when given)."""
    meta: dict[str, Any] = {"run": run, "config_hash": fallback_hash, "model": None, "created": None,
                            "git_commit": None, "git_dirty": None}  # fmt: skip
    if path is None:
        return meta
    try:
        prov = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read provenance ({error}); rerun the provenance rule") from error
    model = prov.get("model")
    meta.update(
        config_hash=prov.get("config_hash") or fallback_hash,
        model=(model.get("path") or model.get("directory")) if isinstance(model, dict) else model,
        model_sha256=model.get("sha256") if isinstance(model, dict) else None,
        created=prov.get("created"),
        git_commit=prov.get("git_commit"),
        git_dirty=prov.get("git_dirty"),
        device=prov.get("device"),
        dtype=prov.get("dtype"),
    )
    features = features_of(prov)
    if features != DEFAULT_FEATURES:  # directions / SAE latents: the pages name units L6.f12 (neurotext.ids.unit_name)
        meta.update(features=features, unit_marker=unit_marker(features))
    return meta


def _write_js(path: Path, text: str, sizes: dict[str, int], root: Path) -> None:
    write_text(path, text)
    path.chmod(0o644)  # readable by a web server too (the atomic writer's temporary file is private)
    sizes[path.relative_to(root).as_posix()] = len(text.encode("utf-8"))


def copy_assets(out_dir: Path, sizes: dict[str, int]) -> None:
    """Copy the static pages, script and style sheet from the package's ``browser_assets/``."""
    source = resources.files("neurotext").joinpath("browser_assets")
    for name, target in ASSET_FILES.items():
        data = source.joinpath(name).read_bytes()
        path = out_dir / target
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
        path.chmod(0o644)
        sizes[target] = len(data)


def build_browser(
    inputs: BrowserInputs,
    out_dir: PathLike,
    settings: BrowserSettings,
    run: str = "",
    config_hash: str = "",
) -> BuildStats:
    """Write the browser into `out_dir` (see the module docstring) and return its size and build time.

    Steps: each layer's top K, records and records histograms are read first; then the corpus once, for the texts
    of every shown sentence (and every sentence's domain when a layer has no profile metadata); then each layer's
    data file is assembled and written, one at a time, and the index and meta files last.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    sizes: dict[str, int] = {}
    layers = [read_layer_sources(layer, settings)
              for layer in progress(inputs.layers, desc="browser: top K, records", unit="layer")]  # fmt: skip
    wanted = np.unique(np.concatenate([src.sentences.sentence_ids() for src in layers] or [np.zeros(0, np.uint32)]))
    need_domains = any(src.inputs.profile_metadata is None for src in layers)
    domains = read_domains(inputs.corpus, null_as=None) if need_domains else None
    corpus = read_corpus(inputs.corpus, wanted)
    ft_fields, finetune = read_finetune(inputs.finetune) if inputs.finetune else ([], {})
    index_rows: list[list] = []
    kinds = {kind: i for i, kind in enumerate(INDEX_KINDS)}
    sections: dict[str, bool] = {}
    for src in progress(layers, desc="browser: layer pages", unit="layer"):
        tables = LayerTables.read(src.inputs, settings, domains)
        for name, present in layer_sections(src, tables, inputs.finetune is not None).items():
            sections[name] = sections.get(name, False) or present
        data, rows = layer_data(src, tables, corpus, finetune, settings, kinds)
        index_rows += rows
        layer = src.inputs.layer
        text = DATA_PRELUDE + js_assignment(f"window.NEUROTEXT.layers[{layer}]", data)
        _write_js(out / "data" / f"layer{layer}.js", text, sizes, out)
    meta = read_provenance(inputs.provenance, config_hash or read_config_hash(inputs.layers[0].topk), run)
    meta.update(layers=[src.inputs.layer for src in layers], n_neurons=len(index_rows), sections=sections,
                settings=settings.as_dict(), finetune_fields=ft_fields, quant=QUANT)  # fmt: skip
    _write_js(out / "data" / "meta.js", DATA_PRELUDE + js_assignment("window.NEUROTEXT.meta", meta), sizes, out)
    index = {"fields": list(INDEX_FIELDS), "kinds": list(kinds), "rows": index_rows}
    _write_js(out / "data" / "index.js", DATA_PRELUDE + js_assignment("window.NEUROTEXT.index", index), sizes, out)
    copy_assets(out, sizes)
    stats = BuildStats(len(index_rows), len(layers), sum(sizes.values()), dict(sorted(sizes.items())),
                       time.perf_counter() - started)  # fmt: skip
    log.info("browser: %d neurons in %d layers, %.1f MB, %.1f s", stats.n_neurons, stats.n_layers,
             stats.bytes_total / 1e6, stats.seconds)  # fmt: skip
    return stats


def run_browser_job(named_inputs: Mapping[str, Any], out_index: PathLike, browser_config: Mapping[str, Any] | None,
                    run: str, config_hash: str) -> BuildStats:  # fmt: skip
    """The rule's entry point: inputs by name (see `BrowserInputs.from_files`), the path of ``index.html``."""
    settings = BrowserSettings.from_config(browser_config)
    inputs = BrowserInputs.from_files(named_inputs)
    out_dir = Path(out_index).parent
    clean_stale_layers(out_dir, [layer.layer for layer in inputs.layers])
    return build_browser(inputs, out_dir, settings, run=run, config_hash=config_hash)

