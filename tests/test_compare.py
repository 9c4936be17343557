"""Neurons against latents (neurotext.compare, rule neurons_vs_latents) on synthetic scores tables: a planted AUROC
difference shows up in the table, equal inputs give equal medians, the statistics match brute force, the outputs
are byte-deterministic, a missing neuron run is a clear error. Also the unit names of a feature run (L6.f12) in the
browser (meta + pages, in headless Chromium when installed), Table 2, and `neurotext show` / `search`."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.artifacts.compare import COMPARE_COLUMNS
from neurotext.artifacts.provenance import features_of, run_features
from neurotext.artifacts.scores import CONTROLS, KINDS, SCORES_SCHEMA
from neurotext.compare import (
    CompareSettings,
    UnitAurocs,
    comparison_rows,
    mannwhitney_p,
    neurons_vs_latents,
    p_higher,
)
from neurotext.config import ConfigError
from neurotext.ids import parse_neuron_name, unit_marker, unit_name
from neurotext.io import write_parquet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def write_scores(path: Path, aurocs: dict[str, np.ndarray]) -> Path:
    """A `SCORES_SCHEMA` file: one auroc row per (unit, predictor) of `aurocs` (plus an f1 row, ignored)."""
    rows = []
    for kind, values in aurocs.items():
        for unit, value in enumerate(values):
            rows.append({"neuron": unit, "kind": kind, "metric": "auroc", "value": float(value), "n_pos": 20,
                         "n_neg": 2000})  # fmt: skip
            rows.append({"neuron": unit, "kind": kind, "metric": "f1", "value": 0.1, "n_pos": 20, "n_neg": 2000})
    write_parquet(pa.Table.from_pylist(rows, schema=SCORES_SCHEMA), path)
    return path


def synthetic_aurocs(n: int, seed: int, shift: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """AUROCs of `n` units for every kind and control: kinds ~ U(0.55, 0.85), controls ~ U(0.45, 0.6); `shift`
    adds to a predictor's values (clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    out = {}
    for kind in (*KINDS, *CONTROLS):
        low, high = (0.55, 0.85) if kind in KINDS else (0.45, 0.6)
        out[kind] = np.clip(rng.uniform(low, high, n) + (shift or {}).get(kind, 0.0), 0, 1)
    return out


def by_kind(rows, layer=6):
    return {r.kind: r for r in rows if r.layer == layer}


# --- statistics ------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.7, 0.9, float("nan")]), min_size=0, max_size=12),
       st.lists(st.floats(0, 1, allow_nan=False), min_size=0, max_size=12))  # fmt: skip
def test_p_higher_is_the_pairwise_share(first, second):
    a = np.array(first, dtype=float)
    b = np.array(second + first[:3], dtype=float)  # shared values: ties
    a_def, b_def = a[~np.isnan(a)], b[~np.isnan(b)]
    got = p_higher(a, b)
    if not a_def.size or not b_def.size:
        assert np.isnan(got)
        return
    brute = np.mean([(y > x) + 0.5 * (y == x) for x in a_def for y in b_def])
    assert got == pytest.approx(brute, abs=1e-12)


def test_mannwhitney_p_agrees_with_the_definition_and_handles_degenerate_groups():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=30), rng.uniform(size=40) + 0.3
    assert mannwhitney_p(a, b) == pytest.approx(mannwhitneyu(a, b, method="asymptotic").pvalue)
    assert mannwhitney_p(a, b) < 1e-4 and mannwhitney_p(a, a) > 0.9
    assert np.isnan(mannwhitney_p(a, np.array([np.nan]))) and np.isnan(mannwhitney_p(np.full(3, 0.5), np.full(4, 0.5)))


# --- planted signal ---------------------------------------------------------------------------------------------------


def test_equal_inputs_give_equal_medians_and_no_difference():
    same = UnitAurocs.from_table(_table(synthetic_aurocs(200, seed=3)))
    rows = by_kind(comparison_rows({6: same}, {6: same}))
    assert list(rows) == [*KINDS, *CONTROLS]
    for row in rows.values():
        assert np.array_equal(astuple(row.neurons), astuple(row.latents), equal_nan=True)
        assert row.median_difference == 0 and row.p_latent_higher == pytest.approx(0.5)
        assert row.mannwhitney_p == pytest.approx(1.0)


def test_a_planted_difference_shows_up_in_its_kind_only():
    neurons = UnitAurocs.from_table(_table(synthetic_aurocs(384, seed=4)))
    latents = UnitAurocs.from_table(_table(synthetic_aurocs(1536, seed=5, shift={"words": 0.12, "all": 0.12})))
    rows = by_kind(comparison_rows({6: neurons}, {6: latents}))
    for kind in ("words", "all"):
        assert rows[kind].median_difference == pytest.approx(0.12, abs=0.02)
        assert rows[kind].p_latent_higher > 0.75 and rows[kind].mannwhitney_p < 1e-10
    for kind in ("skipgrams", "posgrams", "subtrees", "metadata", *CONTROLS):
        assert abs(rows[kind].median_difference) < 0.03 and 0.4 < rows[kind].p_latent_higher < 0.6, kind
    assert rows["words"].latents.n == 1536 and rows["words"].neurons.n == 384


def test_share_above_the_controls_counts_each_unit_against_its_own():
    # units 0-1 beat max(0.5, derangement, length); unit 2 is below its derangement; unit 3 has no AUROC (left out)
    aurocs = {"words": np.array([0.8, 0.6, 0.7, np.nan]), "derangement": np.array([0.5, 0.55, 0.75, 0.5]),
              "length": np.array([0.6, 0.4, 0.5, 0.5])}  # fmt: skip
    units = UnitAurocs.from_table(_table(aurocs))
    row = by_kind(comparison_rows({6: units}, {6: units}))["words"]
    assert row.neurons.n == 3 and row.neurons.above_controls == pytest.approx(2 / 3)
    assert np.isnan(by_kind(comparison_rows({6: units}, {6: units}))["length"].neurons.above_controls)


def _table(aurocs: dict[str, np.ndarray]) -> pa.Table:
    rows = [{"neuron": u, "kind": k, "metric": "auroc", "value": float(v), "n_pos": 1, "n_neg": 1}
            for k, values in aurocs.items() for u, v in enumerate(values)]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCORES_SCHEMA)


# --- the rule's entry: files, bytes, errors -----------------------------------------------------------------------


@pytest.fixture()
def two_runs(tmp_path):
    demo, sae = tmp_path / "results" / "demo", tmp_path / "results" / "sae"
    write_scores(demo / "scores" / "layer6.parquet", synthetic_aurocs(48, seed=6))
    write_scores(demo / "scores" / "layer5.parquet", synthetic_aurocs(48, seed=7))  # a layer the sae run lacks
    write_scores(sae / "scores" / "layer6.parquet", synthetic_aurocs(96, seed=8, shift={"all": -0.2}))
    return demo, sae


def _outputs(root: Path, name: str) -> dict[str, Path]:
    return {"md": root / name / "t.md", "csv_out": root / name / "t.csv", "png": root / name / "f.png",
            "pdf": root / name / "f.pdf"}  # fmt: skip


def test_the_entry_writes_table_and_figure_deterministically(two_runs, tmp_path):
    demo, sae = two_runs
    first, second = _outputs(tmp_path, "a"), _outputs(tmp_path, "b")
    rows = neurons_vs_latents([sae / "scores" / "layer6.parquet"], [6], demo, latents_run="sae", **first)
    neurons_vs_latents([sae / "scores" / "layer6.parquet"], [6], demo, latents_run="sae", **second)
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes(), key
    assert first["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first["pdf"].read_bytes()[:5] == b"%PDF-"
    table = list(csv.reader(first["csv_out"].open()))
    assert tuple(table[0]) == COMPARE_COLUMNS
    assert [r[1] for r in table[1:]] == [*KINDS, *CONTROLS] and {r[0] for r in table[1:]} == {"6"}
    all_row = dict(zip(table[0], next(r for r in table[1:] if r[1] == "all"), strict=True))
    assert all_row["neurons"] == "48" and all_row["latents"] == "96"
    assert float(all_row["median_difference"]) == pytest.approx(rows[5].median_difference, rel=1e-5)
    assert rows[5].kind == "all" and rows[5].median_difference < -0.15
    md = first["md"].read_text()
    assert md.startswith("Layer 6: all patterns together detect the test top sentences of 96 latents")
    assert "| 6 | words | 48 | 96 |" in md and "P(latent > neuron)" in md


def test_a_missing_neuron_run_names_the_file_and_the_fix(two_runs, tmp_path):
    _, sae = two_runs
    with pytest.raises(FileNotFoundError, match=r"results/nothing/scores/layer6.parquet.*snakemake --cores 2"):
        neurons_vs_latents([sae / "scores" / "layer6.parquet"], [6], tmp_path / "results" / "nothing",
                           **_outputs(tmp_path, "c"))  # fmt: skip


def test_compare_settings():
    assert CompareSettings.from_config(None).neurons_run is None
    settings_ = CompareSettings.from_config({"neurons_run": "demo"})
    assert settings_.neurons_root() == Path("results/demo")
    assert CompareSettings.from_config({"neurons_run": "/x/results/demo"}).neurons_root() == Path("/x/results/demo")
    with pytest.raises(ConfigError, match="compare: unknown key"):
        CompareSettings.from_config({"neurons": "demo"})
    with pytest.raises(ConfigError, match="compare.neurons_run"):
        CompareSettings.from_config({"neurons_run": ""})


def test_sae_config_compares_with_the_default_run_and_the_default_dag_has_no_comparison(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    common = [str(snakemake), "-n", "--cores", "1", "--directory", str(tmp_path), "-s", str(REPO / "Snakefile")]
    sae = subprocess.run([*common, "results/sae/tables/neurons_vs_latents.md", "--configfile",
                          str(REPO / "config" / "sae.yaml")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert sae.returncode == 0, sae.stderr[-2000:] + sae.stdout[-2000:]
    assert "neurons_vs_latents" in sae.stdout and "results/demo/scores" not in sae.stdout  # read, never rebuilt
    default = subprocess.run([*common, "results/demo/tables/neurons_vs_latents.md", "--configfile",
                              str(REPO / "config" / "config.yaml")], capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert default.returncode != 0 and "No rule to produce" in default.stdout + default.stderr  # no compare block


# --- unit names of a feature run ---------------------------------------------------------------------------------


def test_unit_names_round_trip():
    assert unit_name(6, 12) == "L6.12" and unit_name(6, 12, "sae") == "L6.f12" and unit_name(6, 12, "directions")
    assert unit_marker("neurons") == "" and unit_marker("sae") == "f"
    assert parse_neuron_name(unit_name(6, 1234, "sae")) == (6, 1234)


def test_features_come_from_the_provenance(tmp_path):
    assert run_features(tmp_path) == "neurons"  # no provenance.json
    (tmp_path / "provenance.json").write_text(json.dumps({"config": {"model": {"features": "sae"}}}))
    assert run_features(tmp_path) == "sae" and features_of({}) == "neurons"
    (tmp_path / "provenance.json").write_text("{broken")
    with pytest.raises(ValueError, match="provenance.json: cannot read provenance.*rerun the provenance rule"):
        run_features(tmp_path)


def _feature_browser(tmp_path: Path) -> Path:
    from test_browser import make_synthetic_run

    from neurotext.browser import BrowserInputs, BrowserSettings
    from neurotext.browser.build import build_browser
    from neurotext.validate import with_defaults

    named = make_synthetic_run(tmp_path / "run")
    prov = json.loads(Path(named["provenance"]).read_text())
    prov["config"] = {"model": {"features": "sae"}}
    Path(named["provenance"]).write_text(json.dumps(prov))
    out = tmp_path / "browser"
    settings = BrowserSettings.from_config(with_defaults("browser"))
    build_browser(BrowserInputs.from_files(named), out, settings, run="sae")
    return out


def test_a_feature_run_browser_names_latents(tmp_path):
    from test_browser import load_js

    out = _feature_browser(tmp_path)
    meta = load_js(out / "data" / "meta.js")
    assert meta["features"] == "sae" and meta["unit_marker"] == "f"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium: the page check needs Debian's chromium (apt-get install -y chromium)")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", f"file://{out}/neuron.html?L1.f0"], capture_output=True, text=True,
                         timeout=120).stdout  # fmt: skip
    assert 'class="nname">L1.f0<' in dom and "neuron.html?L1.f1" in dom
    index = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                            "--dump-dom", f"file://{out}/index.html"], capture_output=True, text=True,
                           timeout=120).stdout  # fmt: skip
    assert ">L1.f0<" in index and ">L1.0<" not in index
    assert " latents in " in index and " neurons in " not in index  # the running text names the units too


def test_table2_names_latents(tmp_path):
    from test_cli import write_run

    from neurotext.patterns.table2 import write_table2

    write_run(tmp_path)
    rows = write_table2({1: tmp_path / "patterns/layer1.parquet"}, {1: tmp_path / "profiles/layer1.parquet"},
                        [(1, 0), (1, 1)], tmp_path / "t2.md", tmp_path / "t2.csv", features="sae")  # fmt: skip
    assert rows[0] == ["", "L1.f0", "L1.f1"]
    assert "| L1.f0 | L1.f1 |" in (tmp_path / "t2.md").read_text()


def test_show_and_search_on_a_feature_run(tmp_path):
    from test_cli import CONFIG, run_cli, write_run

    root = tmp_path / "results" / "sae"
    write_run(root)
    (root / "provenance.json").write_text(json.dumps({"config": {**CONFIG, "model": {"features": "sae"}}}))
    status, out, err = run_cli("show", "L1.f0", "--results", str(tmp_path / "results"))
    assert status == 0, err
    assert out.startswith("L1.f0") and "noun:parties" in out
    status, out, err = run_cli("show", "L1.f1", "--results", str(tmp_path / "results"), "--json")
    assert status == 0 and json.loads(out)["neuron"] == "L1.f1"
    status, out, _ = run_cli("search", "parties", "--results", str(tmp_path / "results"))
    assert status == 0 and "L1.f0" in out and "L1.0 " not in out


def write_topk(path: Path, activations: np.ndarray) -> Path:
    """A `TOPK_SCHEMA` file: unit u's rank r has activation ``activations[u, r]``."""
    from neurotext.artifacts.topk import TOPK_SCHEMA

    rows = [{"neuron": u, "rank": r, "sentence_id": r, "activation": float(a), "token_index": 0, "char_start": 0,
             "char_end": 1} for u, acts in enumerate(activations) for r, a in enumerate(acts)]  # fmt: skip
    write_parquet(pa.Table.from_pylist(rows, schema=TOPK_SCHEMA), path)
    return path


def test_latents_firing_on_fewer_than_k_sentences_are_left_out(tmp_path):
    from neurotext.compare.units import firing_units

    k, n = 10, 40
    acts = np.tile(np.linspace(2.0, 0.5, k), (n, 1))
    acts[:8, 6:] = 0.0  # latents 0-7 fire on only 6 sentences; latent 8 is dead
    acts[8] = 0.0
    topk = write_topk(tmp_path / "sae" / "topk" / "base" / "layer6.parquet", acts)
    assert firing_units(topk).tolist() == list(range(9, n))
    # the padded latents' "explanations" are artefacts (a dead latent's top K is the lowest sentence ids): planted
    # as a perfect metadata AUROC, which must not reach the comparison
    aurocs = synthetic_aurocs(n, seed=9)
    aurocs["metadata"][:9] = 1.0
    scores = write_scores(tmp_path / "sae" / "scores" / "layer6.parquet", aurocs)
    write_scores(tmp_path / "demo" / "scores" / "layer6.parquet", synthetic_aurocs(n, seed=9))
    rows = by_kind(neurons_vs_latents([scores], [6], tmp_path / "demo", topk=[topk], features="sae",
                                      **_outputs(tmp_path, "out")))  # fmt: skip
    assert rows["metadata"].latents.n == n - 9 and rows["metadata"].latents_left_out == 9
    assert rows["metadata"].neurons.n == n and rows["metadata"].neurons_left_out == 0
    assert rows["metadata"].latents.q75 < 0.9
    assert "Left out (firing on fewer than K sentences): 9 latents, 0 neurons." in (tmp_path / "out/t.md").read_text()
    kept = by_kind(neurons_vs_latents([scores], [6], tmp_path / "demo", topk=[topk], features="neurons",
                                      **_outputs(tmp_path, "out2")))  # fmt: skip
    assert kept["metadata"].latents.n == n and kept["metadata"].latents_left_out == 0


def test_the_sae_config_is_the_default_config_where_the_comparison_needs_it():
    """config/sae.yaml's neurons are compared with the default run's: every block that shapes the corpus, the sample,
    the parses, the patterns or the scores must equal config/config.yaml's (only run, the model's unit keys, the
    SAE, relations, fine-tuning, compare and job-size keys may differ)."""
    import yaml

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    sae = yaml.safe_load((REPO / "config" / "sae.yaml").read_text())
    allowed = {"run", "sae", "relations", "finetune", "compare"}
    for block in sorted((set(default) | set(sae)) - allowed):
        a, b = dict(default.get(block) or {}), dict(sae.get(block) or {})
        for key in {"model": ("layers", "features", "sae"), "scan": ("threads",),
                    "patterns": ("neurons_per_job",)}.get(block, ()):  # fmt: skip
            a.pop(key, None), b.pop(key, None)
        assert a == b, f"config/sae.yaml's {block} block differs from config/config.yaml's"
    assert sae["compare"]["neurons_run"] == default["run"]
