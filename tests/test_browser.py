"""Browser stage: data files, escaping, token highlights, histograms, optional sections, bad input, determinism, and
the rules (a dry run of `paper` and the browser). The real-browser test is in test_browser_chromium.py.

Every test builds a small synthetic run (`make_synthetic_run`) in a tmp dir: two datasets, two layers of six
neurons, every optional input, and the awkward sentences the browser must survive (markup, quote-breaking
attributes, U+2028, right-to-left and non-BMP text, a very long sentence, an empty one, one whose activation sits
on a special token) and one neuron with an empty profile and no top sentences (`EMPTY_NEURON`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotext.artifacts.finetune import NEURONS_SCHEMA
from neurotext.artifacts.records import HISTOGRAM_SCHEMA, RECORDS_SCHEMA
from neurotext.artifacts.scores import CONTROLS as SCORE_CONTROLS
from neurotext.artifacts.scores import KINDS as SCORE_KINDS
from neurotext.artifacts.scores import SCORES_SCHEMA, SUMMARY_SCHEMA
from neurotext.browser import (
    PAPER_FILES,
    BrowserInputs,
    BrowserSettings,
    browser_rule_inputs,
    build_browser,
    js_assignment,
    paper_targets,
    round_significant,
    run_browser_job,
)
from neurotext.config import ConfigError
from neurotext.validate import with_defaults
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.io import write_parquet

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "neurotext" / "browser_assets"

# --- the synthetic run ---------------------------------------------------------------------------------------------

HOSTILE = [
    "<script>window.__pwned = 1</script> tagged text",
    '<img src=x onerror="window.__pwned = 2"> an image',
    'quote " onmouseover="window.__pwned = 3" x=" breaks out',
    "</script><script>window.__pwned = 4</script> closes early",
    "entities &amp; &lt;b&gt; stay literal",
]
EMOJI = "I love 🎉 festive parties 😀 so much"  # non-BMP characters before the max token
RTL = "مرحبا بالعالم هذه جملة عربية طويلة"
HEBREW = "שלום עולם וזה משפט בעברית"
CJK = "東京は日本の首都です。とても大きい。"
SEPARATORS = "line\u2028separator and paragraph\u2029separator"
LONG = " ".join(f"word{i}" for i in range(1500))  # ~12k characters, one sentence
EMPTY_TEXT = ""
SPECIAL_ONLY = "[CLS] [SEP]"  # its activation sits on a special token: char span (0, 0)
PLAIN = [
    "The committee met on Tuesday to discuss the budget.",
    "She walked along the river at dawn.",
    "Prices rose sharply in the third quarter.",
    "What a wonderful and surprising film this was!",
    "The senator denied every charge against him.",
    "We are going to be late again.",
    "A quiet town in the hills.",
    "Rain is expected for most of the week.",
    "The old man and the sea is a short novel.",
    "Markets fell after the announcement.",
    "Is going to be a long day.",
    "The children played in the garden.",
]
AWKWARD = [*HOSTILE, RTL, LONG, SEPARATORS]
BOOKS = [*PLAIN[:6], *HOSTILE[:3], LONG, CJK, SPECIAL_ONLY]
TWEETS = [*PLAIN[6:], *HOSTILE[3:], EMOJI, RTL, HEBREW, SEPARATORS, EMPTY_TEXT]
LAYERS = (1, 2)
N_NEURONS = 6
K = 10
N_TOP_RECORDS = 9  # L1.0's top 9: the emoji sentence, then the eight awkward ones
EMPTY_NEURON = 5  # no top sentences, empty profile, no patterns
FESTIVE = "festive"  # a word only L1.0's summary holds (the search target)
SAMPLE_ROWS = 14
HIST_BINS = 40  # the records' histogram bins of the synthetic run


def sid(code: int, row: int) -> int:
    return (code << 27) | row


def corpus_rows() -> list[dict]:
    rows = []
    for code, dataset, domain, texts in ((1, "books", "book", BOOKS), (3, "tweets", "twitter", TWEETS)):
        for row, text in enumerate(texts):
            rows.append(
                {
                    "sentence_id": sid(code, row),
                    "dataset": dataset,
                    "doc_id": f"{dataset}{row // 4}",
                    "text": text,
                    "domain": domain,
                    "sentiment": ("pos", "neg")[row % 2] if code == 3 else None,
                    "genre": "news" if code == 1 else None,
                    "title": "A <b>title</b>" if code == 1 else None,
                }
            )
    return rows


def word_spans(text: str) -> list[tuple[int, int]]:
    """Whitespace tokens as code point offsets (Python str indices), like the tokenizer's offsets."""
    if text == SPECIAL_ONLY:
        return []
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def token_activations(layer: int, neuron: int, rows: list[dict]) -> dict[int, np.ndarray]:
    """Per sentence, the activations of its word tokens (float32); L1.0 is pushed onto the awkward sentences, with
    its maximum on 'parties' of the emoji sentence."""
    rng = np.random.default_rng(1000 * layer + neuron)
    acts = {}
    for row in rows:
        spans = word_spans(row["text"])
        values = rng.normal(0.0, 1.0, len(spans)).astype(np.float32)
        if (layer, neuron) == (1, 0):
            text = row["text"]
            if text == EMOJI:
                values[[text[s:e] for s, e in spans].index("parties")] = 9.0
            elif text in AWKWARD:
                values[0] = 5.0 + 0.01 * AWKWARD.index(text)
        acts[row["sentence_id"]] = values
    return acts


def sentence_activation(row: dict, values: np.ndarray) -> float:
    return float(values.max()) if len(values) else 0.25  # special-token-only sentence: a pooled value


def write_corpus_files(root: Path, rows: list[dict]) -> list[Path]:
    paths = []
    for dataset in ("books", "tweets"):
        part = [r for r in rows if r["dataset"] == dataset]
        columns = {f.name: [r.get(f.name) for r in part] for f in CORPUS_SCHEMA}
        table = pa.Table.from_pydict(columns, schema=CORPUS_SCHEMA)
        path = root / "corpus" / f"{dataset}.parquet"
        write_parquet(table, path, "cafe")
        paths.append(path)
    return paths


def corpus_histogram(neuron: int, values: np.ndarray) -> dict:
    """A `HISTOGRAM_SCHEMA` row as the records stage writes it: `HIST_BINS` equal bins over [min, max] widened by a
    tenth of the range each side (values below / at or above the edges counted under / over)."""
    low, high = float(values.min()), float(values.max())
    margin = 0.1 * (high - low)
    edges = np.linspace(low - margin, high + margin, HIST_BINS + 1).astype(np.float32)
    counts, _ = np.histogram(values, bins=edges.astype(np.float64))
    return {"neuron": neuron, "edges": edges.tolist(), "counts": counts.tolist(), "underflow": 0, "overflow": 0,
            "n": len(values), "min": low, "max": high}  # fmt: skip


def write_synthetic_scores(root: Path, layer: int) -> Path:
    """Explanation scores of the layer (`artifacts.scores`): neuron n's words AUROC 0.5 + 0.08 n, every other
    predictor 0.5; neurons 0-1 are not explained (summary 'nothing beats ...')."""
    rows, summary = [], []
    for neuron in range(N_NEURONS):
        for kind in (*SCORE_KINDS, *SCORE_CONTROLS):
            for metric in ("auroc", "spearman", "f1"):
                value = 0.5 + 0.08 * neuron if (kind, metric) == ("words", "auroc") else 0.5
                rows.append({"neuron": neuron, "kind": kind, "metric": metric, "value": value, "n_pos": 2, "n_neg": 9})
        explained = 2 <= neuron != EMPTY_NEURON  # the empty neuron has no test sentences: not scored
        summary.append({"neuron": neuron, "best_kind": None if neuron == EMPTY_NEURON else "words",
                        "best_auroc": 0.5 + 0.08 * neuron,
                        "control_auroc": 0.55, "explained": explained,
                        "summary": f"word{neuron} (AUROC)" if explained else "nothing beats the controls"})
    write_parquet(pa.Table.from_pylist(rows, schema=SCORES_SCHEMA), root / "scores" / f"layer{layer}.parquet")
    summary_path = root / "scores" / "summary" / f"layer{layer}.parquet"
    write_parquet(pa.Table.from_pylist(summary, schema=SUMMARY_SCHEMA), summary_path)
    return root / "scores" / f"layer{layer}.parquet"


def make_synthetic_run(root: Path) -> dict[str, object]:
    """Write a synthetic run under `root` and return the browser's named inputs (`BrowserInputs.from_files`)."""
    rows = corpus_rows()
    by_id = {r["sentence_id"]: r for r in rows}
    named: dict[str, object] = {"corpus": write_corpus_files(root, rows)}
    sample_ids = sorted(r["sentence_id"] for r in rows)[::2][:SAMPLE_ROWS]
    for key in ("topk", "records", "histograms", "patterns", "profiles", "profile_metadata", "clusters", "tsne",
                "overlap", "scores", "scores_summary"):  # fmt: skip
        named[key] = []
    finetune_rows = []
    for layer in LAYERS:
        topk_rows, record_rows, pattern_rows, profile_rows, meta_rows, hist_rows = [], [], [], [], [], []
        for neuron in range(N_NEURONS):
            acts = token_activations(layer, neuron, rows)
            sentence_act = {i: sentence_activation(by_id[i], v) for i, v in acts.items()}
            hist_rows.append(corpus_histogram(neuron, np.array(list(sentence_act.values()), np.float32)))
            ranked = sorted(sentence_act, key=lambda i: (-sentence_act[i], i))[:K]
            if neuron != EMPTY_NEURON:
                for rank, i in enumerate(ranked):
                    spans, values = word_spans(by_id[i]["text"]), acts[i]
                    best = int(np.argmax(values)) if len(values) else -1
                    start, end = spans[best] if best >= 0 else (0, 0)
                    topk_rows.append(
                        {
                            "neuron": neuron,
                            "rank": rank,
                            "sentence_id": i,
                            "activation": sentence_act[i],
                            "token_index": best + 1,
                            "char_start": start,
                            "char_end": end,
                        }
                    )
                    if rank < N_TOP_RECORDS:  # records carry a [CLS] entry (0, 0) the browser must drop
                        record_rows.append(
                            {
                                "neuron": neuron,
                                "kind": "top",
                                "band": None,
                                "rank": rank,
                                "quantile": None,
                                "sentence_id": i,
                                "activation": sentence_act[i],
                                "truncated": False,
                                "token_char_start": [0] + [s for s, _ in spans],
                                "token_char_end": [0] + [e for _, e in spans],
                                "token_activations": [99.0] + values.tolist(),
                            }
                        )
                for j, q in enumerate((0.5, 0.9)):
                    i = sample_ids[j]
                    spans = word_spans(by_id[i]["text"])
                    record_rows.append(
                        {
                            "neuron": neuron,
                            "kind": "quantile",
                            "band": j,
                            "rank": j,
                            "quantile": q,
                            "sentence_id": i,
                            "activation": sentence_act[i],
                            "truncated": False,
                            "token_char_start": [s for s, _ in spans],
                            "token_char_end": [e for _, e in spans],
                            "token_activations": acts[i].tolist(),
                        }
                    )
                patterns = [
                    ("words", "noun:committee"),
                    ("words", "noun:<b>bold</b>"),
                    ("words", "verb:walked"),
                    ("skipgrams", "going be"),
                    ("posgrams", "DT NN VBD"),
                    ("subtrees", "(VBD (NN) (NN))"),
                ]
                for rank, (kind, pattern) in enumerate(patterns):
                    pattern_rows.append(
                        {
                            "kind": kind,
                            "neuron": neuron,
                            "pattern": pattern,
                            "support_top": 6 - rank,
                            "support_bg": rank,
                            "occurrences": 7,
                            "z": 5.0 - rank,
                            "lift": 2.5,
                            "p": 0.001,
                            "q": 0.01 * (rank + 1),
                        }
                    )
                summary = (
                    f"{FESTIVE} parties and markup" if (layer, neuron) == (1, 0) else f"layer {layer} pattern {neuron}"
                )
                profile_rows.append(
                    {
                        "neuron": neuron,
                        "summary": summary,
                        "status": "ok",
                        "n_top": K,
                        "dominant_domain": "book" if neuron == 1 else "twitter",
                        "dominant_domain_share": 0.625,
                        "dominant_domain_corpus_share": 0.55,
                    }
                )
                for value, count in (("twitter", 5), ("book", 3)):
                    meta_rows.append(
                        {
                            "neuron": neuron,
                            "field": "domain",
                            "value": value,
                            "count_top": count,
                            "n_top": K,
                            "share_top": count / K,
                            "count_corpus": 10,
                            "n_corpus": 26,
                            "share_corpus": 10 / 26,
                            "z": 1.0,
                            "lift": 1.2,
                            "p": 0.3,
                            "q": 0.4,
                            "dominant": value == "twitter",
                        }
                    )
            else:
                profile_rows.append(
                    {
                        "neuron": neuron,
                        "summary": "",
                        "status": "too_few_top_sentences",
                        "n_top": 0,
                        "dominant_domain": None,
                        "dominant_domain_share": float("nan"),
                        "dominant_domain_corpus_share": float("nan"),
                    }
                )
            finetune_rows.append(
                {
                    **{f.name: 0.5 for f in NEURONS_SCHEMA if pa.types.is_floating(f.type)},
                    "layer": layer,
                    "neuron": neuron,
                    "name": f"L{layer}.{neuron}",
                    "mean_abs_change": 0.1 * neuron,
                    "jaccard": 1.0 - 0.1 * neuron,
                    "top_k": K,
                    "top_dataset_before": "tweets",
                    "top_dataset_after": "books",
                    "top_sentence_before": sid(3, 0),
                    "top_sentence_after": sid(1, 0),
                }
            )
        out = root / "topk" / "base" / f"layer{layer}.parquet"
        write_parquet(pa.Table.from_pylist(topk_rows, schema=TOPK_SCHEMA), out, "cafe")
        named["topk"].append(out)
        out = root / "records" / "base" / f"layer{layer}.parquet"
        write_parquet(pa.Table.from_pylist(record_rows, schema=RECORDS_SCHEMA), out, "cafe")
        named["records"].append(out)
        out = root / "records" / "base" / f"hist_layer{layer}.parquet"
        write_parquet(pa.Table.from_pylist(hist_rows, schema=HISTOGRAM_SCHEMA), out, "cafe")
        named["histograms"].append(out)
        for key, table_rows, path in (
            ("patterns", pattern_rows, f"patterns/layer{layer}.parquet"),
            ("profiles", profile_rows, f"profiles/layer{layer}.parquet"),
            ("profile_metadata", meta_rows, f"profiles/metadata/layer{layer}.parquet"),
        ):
            write_parquet(pa.Table.from_pylist(table_rows), root / path, "cafe")
            named[key].append(root / path)
        rel = root / "relations" / f"layer{layer}"
        clusters = pa.table(
            {
                "neuron": pa.array(range(N_NEURONS), pa.int32()),
                "cluster": pa.array([n % 2 for n in range(N_NEURONS)], pa.int32()),
                "distance": pa.array([float(N_NEURONS - n) for n in range(N_NEURONS)]),
                "constant": pa.array([False] * N_NEURONS),
            }
        )
        write_parquet(clusters, rel / "clusters_k2.parquet")
        tsne = pa.table(
            {
                "neuron": pa.array(range(N_NEURONS), pa.int32()),
                "x": pa.array(np.cos(np.arange(N_NEURONS)), pa.float32()),
                "y": pa.array(np.sin(np.arange(N_NEURONS)), pa.float32()),
            }
        )
        write_parquet(tsne, rel / "tsne.parquet")
        overlap = pa.table(
            {
                "neuron": pa.array([0, 0, 1], pa.int32()),
                "other_layer": pa.array([layer, layer, layer], pa.int32()),
                "other_neuron": pa.array([2, 1, 0], pa.int32()),
                "rank": pa.array([0, 1, 0], pa.int32()),
                "intersection": pa.array([4, 2, 2], pa.int32()),
                "jaccard": pa.array([0.33, 0.14, 0.14]),
            }
        )
        write_parquet(overlap, rel / "overlap.parquet")
        named["clusters"].append(rel / "clusters_k2.parquet")
        named["tsne"].append(rel / "tsne.parquet")
        named["overlap"].append(rel / "overlap.parquet")
        named["scores"].append(write_synthetic_scores(root, layer))
        named["scores_summary"].append(root / "scores" / "summary" / f"layer{layer}.parquet")
    write_parquet(pa.Table.from_pylist(finetune_rows, schema=NEURONS_SCHEMA), root / "finetune" / "neurons.parquet")
    named["finetune"] = root / "finetune" / "neurons.parquet"
    provenance = {
        "config_hash": "0123456789abcdef",
        "created": "2026-01-02T03:04:05+00:00",
        "git_commit": "f" * 40,
        "git_dirty": False,
        "model": {"path": "package:tiny/<model>", "sha256": "ab" * 32},
    }
    (root / "provenance.json").write_text(json.dumps(provenance))
    named["provenance"] = root / "provenance.json"
    return named


# --- reading the data files back ------------------------------------------------------------------------------------


def load_js(path: Path) -> object:
    """The JSON value a data file assigns (the line after the prelude)."""
    text = path.read_text(encoding="utf-8")
    prelude, assignment = text.split("\n", 1)
    assert prelude.startswith("window.NEUROTEXT = window.NEUROTEXT ||")
    _, _, payload = assignment.partition(" = ")
    return json.loads(payload.rstrip().removesuffix(";"))


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory) -> dict[str, object]:
    return make_synthetic_run(tmp_path_factory.mktemp("run"))


def default_settings() -> BrowserSettings:
    """The browser settings of a config without a ``browser`` block (the schema's defaults, filled as validation
    fills them)."""
    return BrowserSettings.from_config(with_defaults("browser"))


@pytest.fixture(scope="module")
def built(run_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser")
    build_browser(BrowserInputs.from_files(run_inputs), out, default_settings(), run="synthetic")
    return out


def layer_data(built: Path, layer: int) -> dict:
    return load_js(built / "data" / f"layer{layer}.js")


def decode_tokens(flat: list[int], scale: float, quant: int = 127) -> list[tuple[int, int, float]]:
    """[gap, length, q, ...] (see `ShownSentence`) -> [(start, end, value), ...]."""
    out, end = [], 0
    for i in range(0, len(flat), 3):
        start = end + flat[i]
        end = start + flat[i + 1]
        out.append((start, end, flat[i + 2] * scale / quant))
    return out


# --- tests ----------------------------------------------------------------------------------------------------------


def test_every_file_and_every_neuron_is_written(built):
    for name in ("index.html", "neuron.html", "assets/browser.js", "assets/style.css", "data/meta.js",
                 "data/index.js", "data/layer1.js", "data/layer2.js"):  # fmt: skip
        assert (built / name).is_file(), name
    meta = load_js(built / "data" / "meta.js")
    assert meta["layers"] == list(LAYERS) and meta["n_neurons"] == len(LAYERS) * N_NEURONS
    assert meta["config_hash"] == "0123456789abcdef" and meta["created"].startswith("2026-01-02")
    assert meta["model"] == "package:tiny/<model>" and meta["run"] == "synthetic"
    assert all(meta["sections"].values()), meta["sections"]
    index = load_js(built / "data" / "index.js")
    names = [(r[0], r[1]) for r in index["rows"]]
    assert names == [(layer, n) for layer in LAYERS for n in range(N_NEURONS)]
    for layer in LAYERS:
        data = layer_data(built, layer)
        assert [e["neuron"] for e in data["neurons"]] == list(range(N_NEURONS))


def test_pages_hold_no_run_data_and_the_script_never_parses_html():
    """The HTML pages are static; browser.js builds the DOM only with text nodes and properties."""
    script = (ASSETS / "browser.js").read_text()
    code = re.sub(r"/\*.*?\*/", "", script, flags=re.S)  # the header comment names what is avoided
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "createContextualFragment", "DOMParser", "http://", "https://"):  # fmt: skip
        if forbidden == "http://":
            code = code.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace name, not a fetch
        assert forbidden not in code, forbidden
    for page in ("index.html", "neuron.html"):
        html = (ASSETS / page).read_text()
        assert "http://" not in html and "https://" not in html, page  # no CDN, no network
        assert "Content-Security-Policy" in html and "script-src 'self'" in html


def test_corpus_strings_are_escaped_in_the_data_and_round_trip(built):
    texts = set()
    for layer in LAYERS:
        raw = (built / "data" / f"layer{layer}.js").read_text(encoding="utf-8")
        body = raw.split("\n", 1)[1]
        for bad in ("<", ">", "&", "\u2028", "\u2029"):
            assert bad not in body, (layer, bad)
        texts |= {row[0] for row in layer_data(built, layer)["sentences"]}
    for hostile in (*HOSTILE, SEPARATORS, EMOJI, RTL, LONG):
        assert hostile in texts  # the page gets back exactly the corpus string
    index_raw = (built / "data" / "index.js").read_text(encoding="utf-8").split("\n", 1)[1]
    assert "<" not in index_raw and ">" not in index_raw
    index = load_js(built / "data" / "index.js")
    assert any(index["kinds"][p[0]] == "words:noun" and p[1] == "<b>bold</b>" for r in index["rows"] for p in r[5])


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=12))  # fmt: skip
def test_js_assignment_is_inert_and_exact(value):
    text = js_assignment("window.X", value)
    assert text.startswith("window.X = ") and text.endswith(";\n")
    payload = text[len("window.X = ") : -2]
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in payload
    assert json.loads(payload) == value


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-1e300, 1e300) | st.sampled_from([float("nan"), float("inf"), -float("inf")]), max_size=30),
    st.integers(1, 6),
)
def test_round_significant_matches_decimal_formatting(values, digits):
    """Vectorized rounding agrees with Python's own %g formatting to one unit of the last kept digit (ties may fall
    either way), and gives a float that is exactly a `digits`-digit decimal."""
    got = round_significant(np.array(values, dtype=np.float64), digits)
    for value, rounded in zip(values, got, strict=True):
        if not np.isfinite(value):
            assert rounded is None
            continue
        want = float(f"{value:.{digits}g}")
        unit = 10.0 ** (np.floor(np.log10(abs(value))) - digits + 1) if value else 0.0
        assert abs(rounded - want) <= unit * 1.0001 + 1e-300
        assert float(f"{rounded:.{digits}g}") == rounded  # exactly a short decimal, so JSON writes it short


def test_js_assignment_refuses_nan():
    with pytest.raises(ValueError):
        js_assignment("window.X", {"x": float("nan")})


def test_token_highlights_are_the_records_tokens(built, run_inputs):
    """Top sentences carry every token of the records (special (0, 0) tokens dropped), quantized to 1/127 of the
    neuron's largest token activation."""
    data = layer_data(built, 1)
    entry = data["neurons"][0]
    rows = {r["sentence_id"]: r for r in corpus_rows()}
    texts = [s[0] for s in data["sentences"]]
    acts = token_activations(1, 0, list(rows.values()))
    assert len(entry["top"]) == N_TOP_RECORDS and data["token_level"]
    scale = entry["scale"]
    for ref, activation, flat in entry["top"]:
        text = texts[ref]
        (sentence_id,) = [i for i, r in rows.items() if r["text"] == text]
        expected = list(zip(word_spans(text), acts[sentence_id].tolist(), strict=True))
        got = decode_tokens(flat, scale)
        assert [(s, e) for s, e, _ in got] == [span for span, _ in expected]
        for (_, _, value), (_, want) in zip(got, expected, strict=True):
            assert abs(value - want) <= scale / 127 / 2 + 1e-6
        assert activation == pytest.approx(max(acts[sentence_id]), rel=1e-3)
    top_text = texts[entry["top"][0][0]]
    assert top_text == EMOJI and entry["top_tokens"][0][0] == "parties"
    spans = decode_tokens(entry["top"][0][2], scale)
    best = max(spans, key=lambda t: t[2])
    assert top_text[best[0] : best[1]] == "parties"  # code point offsets, past two non-BMP characters


def test_without_records_the_max_token_of_the_top_k_is_highlighted(run_inputs, tmp_path):
    named = {k: v for k, v in run_inputs.items() if k != "records"}
    build_browser(BrowserInputs.from_files(named), tmp_path,
                  BrowserSettings.from_config(with_defaults("browser", {"top_sentences": 3})))  # fmt: skip
    data = layer_data(tmp_path, 1)
    assert not data["token_level"]
    topk = pq.read_table(named["topk"][0]).to_pylist()
    for neuron in range(N_NEURONS):
        entry = data["neurons"][neuron]
        want = sorted((r for r in topk if r["neuron"] == neuron), key=lambda r: r["rank"])[:3]
        assert len(entry["top"]) == len(want)
        for (ref, activation, flat), row in zip(entry["top"], want, strict=True):
            if row["char_start"] == row["char_end"]:
                assert flat == []  # a special-token activation highlights nothing
                continue
            ((start, end, value),) = decode_tokens(flat, entry["scale"])
            assert (start, end) == (row["char_start"], row["char_end"])
            assert value == pytest.approx(row["activation"], abs=entry["scale"] / 254 + 1e-6)


def test_histogram_and_quantiles_come_from_the_records(built, run_inputs):
    """The histogram is the records stage's whole-corpus histogram, bins and counts exactly; the quantile samples are
    the records' quantile-band rows, labelled with their quantile."""
    hist_file = pq.read_table(run_inputs["histograms"][1]).to_pylist()
    data = layer_data(built, 2)
    for neuron in range(N_NEURONS):
        hist, want = data["neurons"][neuron]["hist"], hist_file[neuron]
        assert hist["counts"] == want["counts"] and len(hist["counts"]) == HIST_BINS
        assert hist["n"] == want["n"] == len(corpus_rows()) == sum(hist["counts"]) + hist["under"] + hist["over"]
        assert hist["lo"] == pytest.approx(want["edges"][0], rel=1e-3)
        assert hist["hi"] == pytest.approx(want["edges"][-1], rel=1e-3)
    assert [q[0] for q in data["neurons"][0]["quantiles"]] == ["q0.50", "q0.90"]
    records = pq.read_table(run_inputs["records"][1]).to_pylist()
    texts = [row[0] for row in data["sentences"]]
    by_id = {r["sentence_id"]: r["text"] for r in corpus_rows()}
    want = [by_id[r["sentence_id"]] for r in records if r["neuron"] == 0 and r["kind"] == "quantile"]
    assert [texts[q[1]] for q in data["neurons"][0]["quantiles"]] == want


def test_sections_from_profiles_patterns_relations_and_finetuning(built):
    entry = layer_data(built, 1)["neurons"][0]
    assert entry["profile"]["summary"].startswith(FESTIVE)
    kinds = [kind for kind, _ in entry["patterns"]]
    assert kinds == ["words:noun", "words:verb", "skipgrams", "posgrams", "subtrees"]
    assert entry["patterns"][0][1][0][:3] == ["committee", 6, 0]
    assert entry["metadata"] == [["domain", [["twitter", 5 / K, 0.3846, 5], ["book", 3 / K, 0.3846, 3]]]]
    assert entry["cluster"] == 0 and entry["mates"] == [4, 2] and entry["cluster_size"] == 3  # nearest centre first
    assert entry["overlap"] == [[1, 2, 0.33, 4], [1, 1, 0.14, 2]]
    assert entry["finetune"]["mean_abs_change"] == 0.0 and entry["finetune"]["jaccard"] == 1.0
    assert entry["finetune"]["top_dataset_before"] == "tweets" and entry["finetune"]["top_k"] == K
    meta = load_js(built / "data" / "meta.js")
    assert meta["finetune_fields"][:3] == ["mean_abs_change", "relative_change", "jaccard"]
    assert set(meta["finetune_fields"]) < set(NEURONS_SCHEMA.names)
    rows = load_js(built / "data" / "index.js")["rows"]
    assert [r[9] for r in rows if r[0] == 2] == [round(0.1 * n, 4) for n in range(N_NEURONS)]
    assert len(layer_data(built, 1)["tsne"]) == N_NEURONS


def test_explanation_scores_on_the_page_and_in_the_index(built):
    entry = layer_data(built, 1)["neurons"][3]
    scores = entry["scores"]
    assert scores["kinds"][:2] == ["words", "skipgrams"] and scores["auroc"][0] == 0.74
    assert scores["best"] == "words" and scores["explained"] and scores["summary"] == "word3 (AUROC)"
    index = load_js(built / "data" / "index.js")
    f = {name: i for i, name in enumerate(index["fields"])}
    rows = [r for r in index["rows"] if r[0] == 1]
    assert [r[f["score"]] for r in rows] == [round(0.5 + 0.08 * n, 3) for n in range(N_NEURONS)]
    assert [r[f["explained"]] for r in rows] == [2 <= n != EMPTY_NEURON for n in range(N_NEURONS)]
    assert rows[0][f["summary"]] == "nothing beats the controls"  # the scores' summary replaces the profile's


def test_empty_profile_and_special_tokens_still_render(built):
    data = layer_data(built, 1)
    empty = data["neurons"][EMPTY_NEURON]
    assert empty["top"] == [] and empty["k"] == 0 and empty["patterns"] == [] and empty["metadata"] == []
    assert empty["profile"]["status"] == "too_few_top_sentences" and empty["profile"]["summary"] == ""
    assert empty["max"] is None  # NaN never reaches the JSON
    index = load_js(built / "data" / "index.js")
    row = [r for r in index["rows"] if (r[0], r[1]) == (1, EMPTY_NEURON)][0]
    assert row[2] == "" and row[3] is None


def test_only_topk_and_corpus_is_enough(run_inputs, tmp_path):
    """Every other input is optional; the dominant domain then comes from the whole top K and the corpus."""
    named = {"topk": run_inputs["topk"], "corpus": run_inputs["corpus"]}
    stats = build_browser(BrowserInputs.from_files(named), tmp_path, default_settings())
    assert stats.n_neurons == len(LAYERS) * (N_NEURONS - 1)  # the empty neuron is in no top-K file
    meta = load_js(tmp_path / "data" / "meta.js")
    assert not any(v for k, v in meta["sections"].items()), meta["sections"]
    assert meta["config_hash"] == "cafe"  # from the top-K file's metadata
    rows = {r["sentence_id"]: r["domain"] for r in corpus_rows()}
    corpus_share = sum(d == "twitter" for d in rows.values()) / len(rows)
    topk = pq.read_table(run_inputs["topk"][0]).to_pylist()
    entry = layer_data(tmp_path, 1)["neurons"][0]
    domains = [rows[r["sentence_id"]] for r in topk if r["neuron"] == 0]
    best = max(set(domains), key=lambda d: (domains.count(d), d == min(domains)))
    ((field_name, values),) = entry["metadata"]
    assert field_name == "domain" and values[0][0] == best
    assert values[0][1] == pytest.approx(domains.count(best) / len(domains), rel=1e-3)
    share_of = {v[0]: v[2] for v in values}
    assert share_of["twitter"] == pytest.approx(corpus_share, rel=1e-3)
    assert "hist" not in entry and "patterns" not in entry and "cluster" not in entry


def test_same_inputs_same_bytes(run_inputs, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_browser(BrowserInputs.from_files(run_inputs), a, default_settings())
    build_browser(BrowserInputs.from_files(run_inputs), b, default_settings())
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_bad_input_names_the_file_and_the_fix(run_inputs, tmp_path):
    bad_records = tmp_path / "records" / "layer1.parquet"
    write_parquet(pa.table({"neuron": [0], "sentence_id": pa.array([1], pa.uint32())}), bad_records)
    named = {**run_inputs, "records": [bad_records]}
    with pytest.raises(ValueError, match=r"records.*layer1\.parquet.*not a records file.*rerun records_layers"):
        build_browser(BrowserInputs.from_files(named), tmp_path / "out", default_settings())
    bad_hist = tmp_path / "records" / "hist_layer1.parquet"
    write_parquet(pa.table({"neuron": pa.array([0], pa.int32()), "counts": pa.array([[1, 2]])}), bad_hist)
    with pytest.raises(ValueError, match=r"hist_layer1\.parquet.*no column edges.*rerun records_histograms"):
        build_browser(BrowserInputs.from_files({**run_inputs, "histograms": [bad_hist]}), tmp_path / "out",
                      default_settings())  # fmt: skip
    with pytest.raises(ValueError, match=r"browser input sample_acts: not an input"):
        BrowserInputs.from_files({**run_inputs, "sample_acts": [bad_hist]})
    with pytest.raises(ValueError, match="layer 7, which has no top K"):
        BrowserInputs.from_files({**run_inputs, "patterns": [tmp_path / "patterns" / "layer7.parquet"]})
    with pytest.raises(ValueError, match="corpus"):
        BrowserInputs.from_files({"topk": run_inputs["topk"]})
    with pytest.raises(ConfigError, match="browser.top_sentence"):
        BrowserSettings.from_config({"top_sentence": 5})
    with pytest.raises(ConfigError, match=r"browser.quantiles: unknown key.*records.bands"):
        BrowserSettings.from_config({"quantiles": [0.5]})
    with pytest.raises(ConfigError, match=r"browser.top_sentences = -1"):
        BrowserSettings.from_config(with_defaults("browser", {"top_sentences": -1}))


def test_rule_entry_point_cleans_stale_layers(run_inputs, tmp_path):
    out = tmp_path / "browser"
    (out / "data").mkdir(parents=True)
    (out / "data" / "layer9.js").write_text("stale")
    stats = run_browser_job(run_inputs, out / "index.html", with_defaults("browser", {"top_sentences": 2}), "demo", "")
    assert not (out / "data" / "layer9.js").exists() and (out / "index.html").is_file()
    assert stats.bytes_total == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert all(len(e["top"]) <= 2 for e in layer_data(out, 1)["neurons"])


# --- the rules --------------------------------------------------------------------------------------------------


def test_rule_inputs_take_what_can_be_made(capsys):
    made = {"r/topk/base/layer1.parquet", "r/topk/base/layer2.parquet", "r/sample/base/max/layer1.npy",
            "r/records/base/hist_layer2.parquet", "r/records/finetuned/layer1.parquet",
            "r/relations/layer2/clusters_k4.parquet", "r/provenance.json", "r/tables/table1.md",
            "r/figures/fig3.png"}  # fmt: skip
    named = browser_rule_inputs("r", [1, 2], ["books", "tweets"], 4, made.__contains__)
    assert named == {"topk": ["r/topk/base/layer1.parquet", "r/topk/base/layer2.parquet"],
                     "histograms": ["r/records/base/hist_layer2.parquet"],
                     "clusters": ["r/relations/layer2/clusters_k4.parquet"],
                     "corpus": ["r/corpus/books.parquet", "r/corpus/tweets.parquet"],
                     "provenance": ["r/provenance.json"]}  # fmt: skip
    assert "clusters" not in browser_rule_inputs("r", [1, 2], ["books"], None, made.__contains__)
    assert paper_targets("r", made.__contains__) == ["r/tables/table1.md", "r/figures/fig3.png"]
    assert f"r/{PAPER_FILES[1]}" in capsys.readouterr().err  # what is left out is named


def _snakefile_with_browser(tmp_path: Path) -> Path:
    """The repository's Snakefile with absolute paths, plus browser.smk when it does not include it yet."""
    text = (REPO / "Snakefile").read_text()
    text = text.replace('"workflow/', f'"{REPO}/workflow/').replace('"config/', f'"{REPO}/config/')
    if "browser.smk" not in text:
        text = text.replace("\nrule all:", f'\ninclude: "{REPO}/workflow/rules/browser.smk"\n\n\nrule all:', 1)
    path = tmp_path / "Snakefile"
    path.write_text(text)
    return path


def _dry_run(tmp_path: Path, drop: tuple[str, ...] = ()) -> str:
    """`snakemake -n paper browser` on the test config without the config blocks in `drop`; its output (a dry run
    reads only the model's config.json, for its dimensions)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 32,
                                                   "intermediate_size": 64}))  # fmt: skip
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["model"]["path"] = str(model)
    for block in config["datasets"].values():
        block["path"] = str(REPO / block["path"])
    for name in drop:
        config.pop(name, None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-s", str(_snakefile_with_browser(tmp_path)), "-d", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "paper", "browser"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _browser_input(output: str) -> list[str]:
    return re.search(r"rule build_browser:\n\s+input: (.*)\n", output).group(1).split(", ")


def test_paper_and_browser_targets_dry_run(tmp_path):
    """The browser's inputs are the files of every stage the Snakefile plans; `paper` plans the tables' rules."""
    output = _dry_run(tmp_path)
    assert re.search(r"\bbuild_browser\b", output) and re.search(r"\bmerge_topk\b", output), output
    assert re.search(r"\bcorpus_stats\b", output), output  # table 1, which every Snakefile can make
    browser_input = _browser_input(output)
    assert "results/test/topk/base/layer1.parquet" in browser_input
    assert "results/test/records/base/layer2.parquet" in browser_input
    assert "results/test/records/base/hist_layer1.parquet" in browser_input  # the records' whole-corpus histogram
    assert not any("/sample/" in path for path in browser_input)  # no sampling of its own
    for rule, path in (("patterns_merge", "profiles/metadata/layer1.parquet"), ("relations_layer",
                       "relations/layer2/tsne.parquet"), ("finetune_neurons", "finetune/neurons.parquet")):  # fmt: skip
        planned = re.search(rf"\brule {rule}:", output) is not None
        assert (f"results/test/{path}" in browser_input) == planned, (rule, browser_input)


def test_without_finetuning_neither_the_browser_nor_the_paper_asks_for_it(tmp_path):
    """Fine-tuning off (no `finetune:` block) keeps its rules defined; the targets must not ask for their files."""
    output = _dry_run(tmp_path, drop=("finetune",))
    assert not re.search(r"\brule (finetune_\w+|table3):", output), output
    assert not any("finetune" in path for path in _browser_input(output))


def test_settings_defaults_agree_with_the_config_schema():
    """The schema holds the only copy of each default (BrowserSettings has none and reads every key of the filled
    block), and the browser block has no key of its own for what the records stage computes (bins, bands, samples)."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    block = schema["properties"]["browser"]["properties"]
    defaults = {name: spec["default"] for name, spec in block.items()}
    assert BrowserSettings.from_config(with_defaults("browser")).as_dict() == defaults
    with pytest.raises(ConfigError, match=r"browser\.top_tokens.*with_defaults"):  # unvalidated: no fallback
        BrowserSettings.from_config({name: value for name, value in defaults.items() if name != "top_tokens"})
    for config in sorted((REPO / "config").glob("*.yaml")):
        browser = yaml.safe_load(config.read_text()).get("browser") or {}
        assert set(browser) <= set(block), config.name
