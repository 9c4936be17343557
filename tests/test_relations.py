"""Relations among neurons (paper section 4.3): k-means SSE and clusters, t-SNE, top-K overlap, Figures 2-4 and
the summary, on small synthetic inputs written in the schemas of docs/ARCHITECTURE.md, "Artifacts" (no Snakemake)."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb

from neurotext import relations as rel
from neurotext.config import ConfigError
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.io import read_config_hash, write_parquet
from neurotext.validate import with_defaults

N_LAYERS = 3
N_NEURONS = 60
N_SAMPLE = 40
K_TOP = 12
DOMAINS = {"books": (1, "book"), "tweets": (3, "twitter"), "movies": (4, "review")}
SENTENCES_PER_DATASET = 50
RELATIONS = with_defaults("relations", {  # the schema's defaults filled, as in a validated config
    "pooling": "cls",
    "standardize": "zscore",
    "k_min": 2,
    "k_max": 8,
    "k": 4,
    "n_init": 4,
    "seed": 0,
    "threads": 1,
    "tsne": {"backend": "sklearn", "perplexity": 10, "seed": 0, "max_iter": 300},
    "top_pairs": 5,
    "figure2": {"neurons": [10, 29]},
    "figure4": {"layer": 2},
})


# ---------------------------------------------------------------------------------------------------------------
# Synthetic inputs


def sentence_ids() -> dict[str, np.ndarray]:
    return {
        name: (np.uint32(code) << np.uint32(27)) | np.arange(SENTENCES_PER_DATASET, dtype=np.uint32)
        for name, (code, _) in DOMAINS.items()
    }


def write_corpus(root: Path) -> list[Path]:
    paths = []
    for name, ids in sentence_ids().items():
        domain = DOMAINS[name][1]
        rows = {
            "sentence_id": ids,
            "dataset": [name] * len(ids),
            "doc_id": [f"{name}-{i // 5}" for i in range(len(ids))],
            "text": [f"{name} sentence {i}" for i in range(len(ids))],
            "domain": [domain] * len(ids),
        }
        table = pa.table({f.name: rows.get(f.name, pa.nulls(len(ids), f.type)) for f in CORPUS_SCHEMA}, CORPUS_SCHEMA)
        path = root / "corpus" / f"{name}.parquet"
        write_parquet(table, path, "test")
        paths.append(path)
    return paths


def group_of(neuron: int) -> int:
    """Neurons fall into three groups of 20; group g prefers domain g's sentences in its top K."""
    return neuron % 3


def write_layer(root: Path, layer: int, rng: np.random.Generator, sample_rows: int = N_SAMPLE) -> tuple[Path, Path]:
    """Sample activations (three latent factors, one per neuron group, plus noise) and a top K per neuron whose
    sentences come from its group's domain with a probability that falls with depth (deeper = more mixed)."""
    factors = rng.normal(size=(sample_rows, 3))
    loadings = np.zeros((3, N_NEURONS))
    loadings[[group_of(n) for n in range(N_NEURONS)], range(N_NEURONS)] = rng.uniform(1.0, 2.0, N_NEURONS)
    acts = (factors @ loadings + 0.5 * rng.normal(size=(sample_rows, N_NEURONS))).astype(np.float32)
    sample = root / "sample" / f"layer{layer}.npy"
    sample.parent.mkdir(parents=True, exist_ok=True)
    np.save(sample, acts)

    ids = list(sentence_ids().values())
    all_ids = np.concatenate(ids)
    p_own = 0.9 - 0.25 * (layer - 1)
    rows = []
    for neuron in range(N_NEURONS):
        own = ids[group_of(neuron)]
        n_own = rng.binomial(K_TOP, p_own)
        chosen = np.concatenate([rng.choice(own, n_own, replace=False), rng.choice(all_ids, K_TOP, replace=False)])
        chosen = list(dict.fromkeys(chosen.tolist()))[:K_TOP]
        for rank, sid in enumerate(chosen):
            rows.append((neuron, rank, sid, float(K_TOP - rank), rank % 7, 0, 3))
    table = pa.table(dict(zip(TOPK_SCHEMA.names, map(list, zip(*rows)))), schema=TOPK_SCHEMA)
    topk = root / "topk" / f"layer{layer}.parquet"
    write_parquet(table, topk, "test")
    return sample, topk


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("relations_inputs")
    rng = np.random.default_rng(7)
    corpus = write_corpus(root)
    samples, topks = zip(*(write_layer(root, layer, rng) for layer in range(1, N_LAYERS + 1)))
    return {"root": root, "corpus": corpus, "sample": list(samples), "topk": list(topks)}


def run_stage(inputs: dict, out: Path, relations: dict = RELATIONS) -> dict[str, list[Path]]:
    """Every output of the stage, as the rules write them, under `out`."""
    settings = rel.RelationsSettings.from_config(relations)
    layers = list(range(1, N_LAYERS + 1))
    files: dict[str, list[Path]] = {"sse": [], "clusters": [], "tsne": [], "overlap": []}
    for layer in layers:
        directory = out / "relations" / f"layer{layer}"
        paths = {
            "sse": directory / "sse.csv",
            "clusters": directory / f"clusters_k{settings.layer.k}.parquet",
            "tsne": directory / "tsne.parquet",
            "overlap": directory / "overlap.parquet",
        }
        rel.relations_layer(
            sample=inputs["sample"][layer - 1],
            topk=inputs["topk"][layer - 1],
            topk_next=inputs["topk"][layer] if layer < N_LAYERS else None,
            layer=layer,
            relations=settings.layer_config(),
            threads=settings.threads,
            sse_out=paths["sse"],
            clusters_out=paths["clusters"],
            tsne_out=paths["tsne"],
            overlap_out=paths["overlap"],
            config_hash="abc123",
        )
        for name, path in paths.items():
            files[name].append(path)
    figures = out / "figures"
    rel.figure2(
        inputs["topk"], layers, inputs["corpus"], settings.figure2_neurons, figures / "fig2.png", figures / "fig2.pdf"
    )
    rel.figure3(files["sse"], layers, figures / "fig3.png", figures / "fig3.pdf")
    f4 = settings.figure4_layer - 1
    rel.figure4(
        files["tsne"][f4], files["clusters"][f4], settings.figure4_layer, figures / "fig4.png", figures / "fig4.pdf"
    )
    summary = out / "relations" / "summary.csv"
    rel.relations_summary(
        layers, inputs["topk"], files["clusters"], files["sse"], files["overlap"], inputs["corpus"], settings.layer.k, summary
    )
    files["figures"] = sorted(figures.iterdir())
    files["summary"] = [summary]
    return files


@pytest.fixture(scope="module")
def stage(inputs, tmp_path_factory) -> dict[str, list[Path]]:
    return run_stage(inputs, tmp_path_factory.mktemp("relations_run"))


def zscore(acts: np.ndarray) -> np.ndarray:
    """Independent z-scoring of each neuron (column) over the sample; rows of the result are neurons."""
    x = acts.astype(np.float64)
    return ((x - x.mean(axis=0)) / x.std(axis=0)).T


def topk_sets_python(path: Path) -> dict[int, set[int]]:
    table = pq.read_table(path).to_pandas()
    return {int(n): set(map(int, g["sentence_id"])) for n, g in table.groupby("neuron")}


def brute_jaccard(a: set[int], b: set[int]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Determinism


def test_outputs_are_identical_across_reruns(inputs, stage, tmp_path):
    again = run_stage(inputs, tmp_path)
    first = [p for paths in stage.values() for p in paths]
    second = [p for paths in again.values() for p in paths]
    assert [p.name for p in first] == [p.name for p in second]
    assert {p.suffix for p in first} >= {".csv", ".parquet", ".png", ".pdf"}
    for a, b in zip(first, second):
        assert digest(a) == digest(b), f"{a.name} differs between reruns"


def test_parquet_outputs_carry_the_config_hash_and_schema(stage):
    for name, schema in (("clusters", rel.CLUSTERS_SCHEMA), ("tsne", rel.TSNE_SCHEMA), ("overlap", rel.OVERLAP_SCHEMA)):
        for path in stage[name]:
            assert read_config_hash(path) == "abc123"
            assert pq.read_schema(path).remove_metadata() == schema


def test_pdf_has_no_timestamps(stage):
    pdf = next(p for p in stage["figures"] if p.suffix == ".pdf").read_bytes()
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf


# ---------------------------------------------------------------------------------------------------------------
# k-means


def test_sse_decreases_with_k(inputs, stage):
    for layer, path in enumerate(stage["sse"], start=1):
        table = pd.read_csv(path)
        assert table.columns.tolist() == ["k", "sse", "sse_fraction", "n_iter"]
        assert table["k"].tolist() == list(range(RELATIONS["k_min"], RELATIONS["k_max"] + 1))
        assert (np.diff(table["sse"]) < 0).all(), table
        matrix = zscore(np.load(inputs["sample"][layer - 1]))
        total = ((matrix - matrix.mean(axis=0)) ** 2).sum()
        np.testing.assert_allclose(table["sse_fraction"], table["sse"] / total, rtol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sse_decreases_with_k_on_random_data(seed):
    points = rel.neuron_vectors(np.random.default_rng(seed).normal(size=(15, 50)))
    fits = rel.kmeans_sweep(points.vectors, range(1, 12), n_init=5, seed=seed)
    sse = [fits[k].sse for k in range(1, 12)]
    assert all(b < a for a, b in zip(sse, sse[1:])), sse
    # k = 1: SSE is the total sum of squares around the mean neuron
    assert sse[0] == pytest.approx(((points.vectors - points.vectors.mean(axis=0)) ** 2).sum(), rel=1e-12)


def test_cluster_assignments_match_a_direct_sklearn_call(inputs, stage):
    from sklearn.cluster import KMeans

    for layer in range(1, N_LAYERS + 1):
        matrix = zscore(np.load(inputs["sample"][layer - 1]))
        model = KMeans(n_clusters=RELATIONS["k"], n_init=RELATIONS["n_init"], random_state=RELATIONS["seed"])
        expected = model.fit_predict(matrix)
        clusters = pq.read_table(stage["clusters"][layer - 1]).to_pandas()
        assert clusters["neuron"].tolist() == list(range(N_NEURONS))
        np.testing.assert_array_equal(clusters["cluster"].to_numpy(), expected)
        np.testing.assert_allclose(
            clusters["distance"], np.linalg.norm(matrix - model.cluster_centers_[expected], axis=1), rtol=1e-9
        )
        sse = pd.read_csv(stage["sse"][layer - 1]).set_index("k")["sse"]
        assert sse[RELATIONS["k"]] == pytest.approx(model.inertia_, rel=1e-12)
        assert not clusters["constant"].any()


def test_the_synthetic_groups_are_recovered_at_k_3(inputs):
    acts = np.load(inputs["sample"][0])
    labels = rel.fit_kmeans(rel.neuron_vectors(acts).vectors, 3, n_init=4, seed=0).labels
    groups = np.array([group_of(n) for n in range(N_NEURONS)])
    assert rel.cluster_purity(labels, groups) == 1.0


# ---------------------------------------------------------------------------------------------------------------
# t-SNE


def test_tsne_has_one_point_per_neuron_and_separates_groups(inputs, stage):
    coords = pq.read_table(stage["tsne"][0]).to_pandas()
    assert coords["neuron"].tolist() == list(range(N_NEURONS))
    xy = coords[["x", "y"]].to_numpy()
    assert np.isfinite(xy).all() and xy.std(axis=0).min() > 0
    groups = np.array([group_of(n) for n in range(N_NEURONS)])
    within = np.mean([np.linalg.norm(xy[groups == g] - xy[groups == g].mean(0), axis=1).mean() for g in range(3)])
    between = np.linalg.norm(xy - xy.mean(0), axis=1).mean()
    assert within < 0.5 * between


def test_opentsne_backend_runs_or_names_the_missing_package():
    vectors = rel.neuron_vectors(np.random.default_rng(0).normal(size=(20, 40))).vectors
    settings = rel.TsneSettings(backend="opentsne", perplexity=5, seed=0, max_iter=300)
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="relations.tsne.backend"):
            rel.tsne_map(vectors, settings)
        return
    first, second = rel.tsne_map(vectors, settings), rel.tsne_map(vectors, settings)
    assert first.shape == (40, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


# ---------------------------------------------------------------------------------------------------------------
# Overlap


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.frozensets(st.integers(0, 30), max_size=8), min_size=1, max_size=6),
    st.lists(st.frozensets(st.integers(0, 30), max_size=8), min_size=1, max_size=6),
)
def test_jaccard_matrix_equals_brute_force(sets_a, sets_b):
    def pairs(sets):
        neuron = np.array([i for i, s in enumerate(sets) for _ in s], dtype=np.int32)
        sentence = np.array([x for s in sets for x in sorted(s)], dtype=np.uint32)
        return neuron, sentence

    n = max(len(sets_a), len(sets_b))
    a, b = rel.topk_sets([pairs(sets_a), pairs(sets_b)], n)
    intersections, jaccard = rel.jaccard_matrix(a, b)
    for i, j in itertools.product(range(n), range(n)):
        sa = sets_a[i] if i < len(sets_a) else frozenset()
        sb = sets_b[j] if j < len(sets_b) else frozenset()
        assert intersections[i, j] == len(sa & sb)
        assert jaccard[i, j] == brute_jaccard(sa, sb)


def brute_top_pairs(sets: dict[int, set[int]], others: dict[int, set[int]], top: int, exclude_self: bool) -> list:
    rows = []
    for n in range(N_NEURONS):
        scored = [
            (-brute_jaccard(sets[n], others[m]), m, len(sets[n] & others[m]))
            for m in range(N_NEURONS)
            if not (exclude_self and m == n) and sets[n] & others[m]
        ]
        for rank, (neg, m, inter) in enumerate(sorted(scored)[:top]):
            rows.append((n, m, rank, inter, -neg))
    return rows


def test_overlap_file_equals_brute_force_top_pairs(inputs, stage):
    top = RELATIONS["top_pairs"]
    for layer in range(1, N_LAYERS + 1):
        table = pq.read_table(stage["overlap"][layer - 1]).to_pandas()
        sets = topk_sets_python(inputs["topk"][layer - 1])
        expected = {layer: brute_top_pairs(sets, sets, top, exclude_self=True)}
        if layer < N_LAYERS:
            expected[layer + 1] = brute_top_pairs(sets, topk_sets_python(inputs["topk"][layer]), top, False)
        assert sorted(table["other_layer"].unique()) == sorted(expected)
        for other_layer, rows in expected.items():
            got = table[table["other_layer"] == other_layer]
            got_rows = list(zip(got["neuron"], got["other_neuron"], got["rank"], got["intersection"], got["jaccard"]))
            assert got_rows == rows


def test_overlap_at_paper_scale_is_a_sparse_product():
    """768 neurons x K = 2,000 over 500k sentence ids (a fifth of the paper's K): seconds, not Python loops
    (benchmarks/README.md, Relations, times the paper's K = 10,000)."""
    import time

    rng = np.random.default_rng(0)
    k, n = 2_000, 768
    neuron = np.repeat(np.arange(n, dtype=np.int32), k)
    layers = [(neuron, rng.integers(0, 500_000, n * k).astype(np.uint32)) for _ in range(2)]
    start = time.perf_counter()
    a, b = rel.topk_sets(layers, n)
    intersections, jaccard = rel.jaccard_matrix(a, b)
    assert jaccard.shape == (n, n) and time.perf_counter() - start < 60
    i, j = 5, 17
    sa = set(layers[0][1][i * k : (i + 1) * k].tolist())
    sb = set(layers[1][1][j * k : (j + 1) * k].tolist())
    assert jaccard[i, j] == brute_jaccard(sa, sb)


# ---------------------------------------------------------------------------------------------------------------
# Dominant domains and the figures, checked from the data behind them


def brute_dominant(topk: Path, corpus: list[Path], neurons: range) -> list[tuple[str | None, float]]:
    domain = {}
    for path in corpus:
        t = pq.read_table(path, columns=["sentence_id", "domain"]).to_pydict()
        domain.update(zip(t["sentence_id"], t["domain"]))
    sets = pq.read_table(topk).to_pandas()
    result = []
    for n in neurons:
        counts = Counter(domain[s] for s in sets.loc[sets["neuron"] == n, "sentence_id"])
        if not counts:
            result.append((None, float("nan")))
            continue
        best = min(counts, key=lambda d: (-counts[d], d))
        result.append((best, counts[best] / sum(counts.values())))
    return result


def test_figure2_grid_and_image_match_the_dominant_domains(inputs):
    first, last = RELATIONS["figure2"]["neurons"]
    lookup = rel.read_domains(inputs["corpus"])
    grid = rel.dominant_grid(dict(enumerate(inputs["topk"], start=1)), lookup, (first, last))
    assert grid.layers == (1, 2, 3) and grid.neurons == tuple(range(first, last + 1))
    fig = rel.plot_figure2(grid)
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    assert image.shape[:2] == (N_LAYERS, last - first + 1)
    colours = rel.domain_colours(grid.domains)
    present = set()
    for layer in range(1, N_LAYERS + 1):
        expected = brute_dominant(inputs["topk"][layer - 1], inputs["corpus"], range(first, last + 1))
        for col, (domain, share) in enumerate(expected):
            assert grid.domains[grid.dominant[layer - 1, col]] == domain
            assert grid.share[layer - 1, col] == pytest.approx(share)
            blend = 1 - share * (1 - np.array(to_rgb(colours[domain])))
            np.testing.assert_allclose(image[layer - 1, col], blend)  # origin='lower': row 0 = layer 1
            present.add(domain)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == sorted(present)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3"]
    assert ax.get_xlabel() == "neuron" and ax.get_ylabel() == "layer"
    assert ax.images[0].get_extent() == [first - 0.5, last + 0.5, 0.5, N_LAYERS + 0.5]


def test_figure3_has_one_line_per_layer_with_the_sse_values(stage):
    tables = {layer: pd.read_csv(path) for layer, path in enumerate(stage["sse"], start=1)}
    ax = rel.plot_figure3(tables).axes[0]
    assert [line.get_label() for line in ax.lines] == [f"layer {layer}" for layer in tables]
    for line, table in zip(ax.lines, tables.values()):
        np.testing.assert_array_equal(line.get_xdata(), table["k"])
        np.testing.assert_array_equal(line.get_ydata(), table["sse"])
    assert ax.get_xlabel().startswith("k") and ax.get_ylabel().startswith("SSE")


def test_figure4_has_one_series_per_cluster_at_the_tsne_coordinates(stage):
    layer = RELATIONS["figure4"]["layer"]
    coords = pq.read_table(stage["tsne"][layer - 1]).to_pandas()
    clusters = pq.read_table(stage["clusters"][layer - 1]).to_pandas()
    ax = rel.plot_figure4(coords, clusters, layer).axes[0]
    assert len(ax.collections) == RELATIONS["k"]
    for cluster, collection in enumerate(ax.collections):
        members = clusters.loc[clusters["cluster"] == cluster, "neuron"]
        expected = coords.set_index("neuron").loc[members, ["x", "y"]].to_numpy()
        np.testing.assert_array_equal(collection.get_offsets(), expected)
        assert collection.get_label() == f"cluster {cluster} ({len(members)})"
    assert f"Layer {layer}" in ax.get_title()


# ---------------------------------------------------------------------------------------------------------------
# Summary


def test_summary_numbers_match_brute_force(inputs, stage):
    summary = pd.read_csv(stage["summary"][0])
    assert summary["layer"].tolist() == [1, 2, 3]
    for layer in range(1, N_LAYERS + 1):
        row = summary.iloc[layer - 1]
        dominant = brute_dominant(inputs["topk"][layer - 1], inputs["corpus"], range(N_NEURONS))
        names = [d for d, _ in dominant]
        assert row["n_neurons"] == N_NEURONS
        assert row["n_dominant_domains"] == len(set(names))
        assert row["mean_dominant_share"] == pytest.approx(np.mean([s for _, s in dominant]), abs=1e-6)
        assert row["top_domain"] == min(set(names), key=lambda d: (-names.count(d), d))
        sets = topk_sets_python(inputs["topk"][layer - 1])
        pairs = [brute_jaccard(sets[i], sets[j]) for i, j in itertools.combinations(range(N_NEURONS), 2)]
        assert row["mean_jaccard"] == pytest.approx(np.mean(pairs), abs=1e-6)
        best = [max(brute_jaccard(sets[i], sets[j]) for j in range(N_NEURONS) if j != i) for i in range(N_NEURONS)]
        assert row["mean_best_jaccard"] == pytest.approx(np.mean(best), abs=1e-6)
        partners = [
            max((j for j in range(N_NEURONS) if j != i), key=lambda j: (brute_jaccard(sets[i], sets[j]), -j))
            for i in range(N_NEURONS)
        ]
        assert row["partner_same_domain"] == pytest.approx(
            np.mean([names[i] == names[j] for i, j in enumerate(partners)]), abs=1e-6
        )
        assert row["partner_same_domain_chance"] == pytest.approx(
            sum((c / N_NEURONS) ** 2 for c in Counter(names).values()), abs=1e-6
        )
        sse = pd.read_csv(stage["sse"][layer - 1]).set_index("k").loc[RELATIONS["k"]]
        assert row["sse_k"] == pytest.approx(sse["sse"], abs=1e-6)
        assert row["sse_fraction_k"] == pytest.approx(sse["sse_fraction"], abs=1e-6)
        clusters = pq.read_table(stage["clusters"][layer - 1]).to_pandas()["cluster"]
        pure = sum(Counter(n for n, c in zip(names, clusters) if c == k).most_common(1)[0][1] for k in set(clusters))
        assert row["cluster_purity"] == pytest.approx(pure / N_NEURONS, abs=1e-6)
        assert 0 < row["purity_baseline"] <= 1
    assert np.isnan(summary.iloc[-1]["mean_best_jaccard_next"])
    # the synthetic data's design: top K more mixed with depth -> lower dominant share; groups = domains
    assert summary["mean_dominant_share"].is_monotonic_decreasing
    assert summary.iloc[0]["cluster_purity"] > summary.iloc[0]["purity_baseline"]
    assert summary.iloc[0]["partner_same_domain"] > summary.iloc[0]["partner_same_domain_chance"]


# ---------------------------------------------------------------------------------------------------------------
# Bad input


def test_constant_neurons_become_zero_vectors_and_are_flagged(tmp_path, inputs, caplog):
    acts = np.load(inputs["sample"][0]).copy()
    acts[:, [3, 7]] = 2.5
    points = rel.neuron_vectors(acts, "zscore")
    assert points.constant.tolist() == [n in (3, 7) for n in range(N_NEURONS)]
    assert not points.vectors[[3, 7]].any() and np.isfinite(points.vectors).all()
    sample = tmp_path / "sample.npy"
    np.save(sample, acts)
    out = {name: tmp_path / name for name in ("sse.csv", "c.parquet", "t.parquet", "o.parquet")}
    rel.relations_layer(sample, inputs["topk"][0], None, 1, RELATIONS, 1, *out.values())
    assert "2 constant neuron(s)" in caplog.text and "L1.3, L1.7" in caplog.text
    clusters = pq.read_table(out["c.parquet"]).to_pandas()
    assert clusters.loc[clusters["constant"], "neuron"].tolist() == [3, 7]
    assert clusters.loc[3, "cluster"] == clusters.loc[7, "cluster"]  # identical points share a cluster
    assert (
        pq.read_table(out["o.parquet"]).column("other_layer").to_pylist()
        == [1] * pq.read_metadata(out["o.parquet"]).num_rows
    )  # last-layer style: no next layer given


def test_k_above_the_number_of_neurons_names_the_config_key(tmp_path):
    sample = tmp_path / "few.npy"
    np.save(sample, np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32))
    with pytest.raises(ConfigError, match=r"relations\.k_max = 8.*only 6"):
        rel.relations_layer(sample, tmp_path / "none.parquet", None, 1, RELATIONS, 1, *[tmp_path / "x"] * 4)
    with pytest.raises(ConfigError, match=r"relations\.k = 4"):
        rel.check_points(rel.RelationsSettings.from_config({**RELATIONS, "k_max": 3, "k_min": 2}).layer, 3)
    with pytest.raises(ConfigError, match=r"relations\.tsne\.perplexity"):
        rel.check_points(rel.RelationsSettings.from_config({**RELATIONS, "k_max": 4}).layer, 8)


def test_a_sample_of_one_sentence_names_sample_size(tmp_path):
    sample = tmp_path / "one.npy"
    np.save(sample, np.ones((1, 60), np.float32))
    with pytest.raises(ConfigError, match=r"sample\.size"):
        rel.load_sample_activations(sample)


def test_non_finite_activations_name_the_file_and_position(tmp_path):
    acts = np.zeros((5, 4), np.float32)
    acts[2, 3] = np.nan
    sample = tmp_path / "nan.npy"
    np.save(sample, acts)
    with pytest.raises(ValueError, match=r"nan\.npy.*row 2, neuron 3"):
        rel.load_sample_activations(sample)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"figure2": {"neurons": [301, 350]}}, r"relations\.figure2\.neurons = \[301, 350\].*0\.\.59"),
        ({"figure2": {"neurons": [20, 10]}}, r"relations\.figure2\.neurons"),
        ({"figure2": {"neurons": [-1, 10]}}, r"relations\.figure2\.neurons"),
        ({"figure4": {"layer": 4}}, r"relations\.figure4\.layer = 4.*1\.\.3"),
        ({"figure4": {"layer": 0}}, r"relations\.figure4\.layer"),
        ({"pooling": "mean"}, r"relations\.pooling = 'mean'"),
        ({"k_min": 9}, r"relations\.k_min = 9 > relations\.k_max = 8"),
        ({"n_init": 0}, r"relations\.n_init"),
        ({"standardize": "minmax"}, r"relations\.standardize"),
        ({"tsne": {"backend": "umap"}}, r"relations\.tsne\.backend"),
    ],
)
def test_bad_config_names_the_key(change, key):
    with pytest.raises(ConfigError, match=key):
        rel.check_relations_config(with_defaults("relations", {**RELATIONS, **change}), N_LAYERS, N_NEURONS,
                                   ["cls", "max"])  # fmt: skip


def test_config_defaults_and_boolean_standardize():
    settings = rel.check_relations_config(with_defaults("relations"), 6, 384, ["cls", "max"])
    layer = settings.layer
    assert (layer.k_min, layer.k_max, layer.k, settings.figure2_neurons, settings.figure4_layer) == (
        2, 20, 10, (301, 350), 6,
    )  # fmt: skip
    for spelling, meaning in ((True, "zscore"), (False, "none")):
        block = with_defaults("relations", {"standardize": spelling})
        assert rel.RelationsSettings.from_config(block).layer.standardize == meaning
    assert rel.LayerRelationsSettings.from_config(settings.layer_config()) == layer
    unvalidated = with_defaults("relations")
    del unvalidated["figure4"]["layer"]
    with pytest.raises(ConfigError, match=r"relations\.figure4\.layer.*with_defaults"):  # no fallback in code
        rel.RelationsSettings.from_config(unvalidated)


def test_a_top_k_sentence_missing_from_the_corpus_names_the_file(tmp_path, inputs):
    table = pq.read_table(inputs["topk"][0])
    ids = table["sentence_id"].to_numpy().copy()
    ids[0] = 12345
    bad = tmp_path / "topk_bad.parquet"
    write_parquet(table.set_column(2, "sentence_id", pa.array(ids, pa.uint32())), bad)
    with pytest.raises(ValueError, match=r"topk_bad\.parquet: sentence_id 12345"):
        rel.dominant_grid({1: bad}, rel.read_domains(inputs["corpus"]), (0, 5))


def test_thread_count_does_not_change_the_outputs(inputs, stage, tmp_path):
    layer = 1
    settings = rel.RelationsSettings.from_config(RELATIONS)
    out = [tmp_path / name for name in ("sse.csv", "clusters.parquet", "tsne.parquet", "overlap.parquet")]
    rel.relations_layer(
        inputs["sample"][0], inputs["topk"][0], inputs["topk"][1], layer, settings.layer_config(), 2, *out, "abc123"
    )
    expected = [stage[name][layer - 1] for name in ("sse", "clusters", "tsne", "overlap")]
    for got, want in zip(out, expected):
        assert digest(got) == digest(want), f"{want.name} changes with 2 threads"


def test_a_top_k_neuron_outside_the_sample_names_the_file(tmp_path, inputs):
    sample = tmp_path / "narrow.npy"
    np.save(sample, np.load(inputs["sample"][0])[:, :30])  # 30 neurons; the top K lists 60
    out = [tmp_path / name for name in ("sse.csv", "c.parquet", "t.parquet", "o.parquet")]
    with pytest.raises(ValueError, match=r"layer1\.parquet: neuron 59 outside 0\.\.29"):
        rel.relations_layer(sample, inputs["topk"][0], None, 1, RELATIONS, 1, *out)
    assert not any(path.exists() for path in out)  # nothing half written
