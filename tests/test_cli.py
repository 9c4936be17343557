"""The `neurotext` command: `runs`, `show`, `search` on a small synthetic run written with the artifacts schemas
(text and JSON output, the max-token mark, errors for a missing run / layer / neuron / stage, `--help` everywhere,
the installed console script, and a start-up that does not import pyarrow)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurotext import cli
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.artifacts.patterns import MERGED_SCHEMA, METADATA_SCHEMA, profile_schema
from neurotext.artifacts.scores import SCORES_SCHEMA, SUMMARY_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.config import config_hash
from neurotext.hashing import stage_hash
from neurotext.io import write_parquet

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"run": "demo", "model": {"path": "tiny"}, "scan": {"k": 3}, "browser": {"top_sentences": 2}}
HASH = config_hash(CONFIG)  # what most stages stamp
TOPK_HASH = stage_hash(CONFIG, "topk")  # what the top-K merge stamps: its own subset of the config
ESCAPE = "\x1b[31mred\x1b[0m text with an escape sequence and a \u202eright-to-left override"
TEXTS = {
    "books": ["The athletes competed in the Olympics.", "She walked along the river at dawn.", ESCAPE],
    "tweets": ["I love festive parties so much", "Parties again tonight!", "Rain is expected all week."],
}
CODES = {"books": 1, "tweets": 3}
N_NEURONS = 4
EMPTY = 3  # neuron 3: no top sentences, empty profile


def sid(dataset: str, row: int) -> int:
    return (CODES[dataset] << 27) | row


def span(text: str, word: str) -> tuple[int, int]:
    start = text.index(word)
    return start, start + len(word)


def write_run(root: Path, layers: tuple[int, ...] = (1, 2), scores_layers: tuple[int, ...] = (1,),
              patterns: bool = True) -> None:  # fmt: skip
    """A run folder: two datasets, `layers` of `N_NEURONS` neurons; L{l}.0 peaks on "parties"/"Parties", L{l}.1
    holds the pattern "competed Olympics", L{l}.2 peaks on the subword "expect" of "expected"; scores only for
    `scores_layers`."""
    rows = [{"sentence_id": sid(d, r), "dataset": d, "doc_id": f"{d}{r}", "text": t,
             "domain": "book" if d == "books" else "twitter"}
            for d, texts in TEXTS.items() for r, t in enumerate(texts)]  # fmt: skip
    for dataset in TEXTS:
        part = [r for r in rows if r["dataset"] == dataset]
        write_parquet(pa.Table.from_pylist(part, schema=CORPUS_SCHEMA), root / f"corpus/{dataset}.parquet", HASH)
    top = {0: [(sid("tweets", 0), "parties"), (sid("tweets", 1), "Parties"), (sid("books", 2), "red")],
           1: [(sid("books", 0), "Olympics"), (sid("books", 1), "river")],
           2: [(sid("tweets", 2), "expect")]}  # fmt: skip
    texts = {r["sentence_id"]: r["text"] for r in rows}
    for layer in layers:
        topk = []
        for neuron, picks in top.items():
            for rank, (i, word) in enumerate(picks):
                start, end = span(texts[i], word)
                topk.append({"neuron": neuron, "rank": rank, "sentence_id": i, "activation": 3.0 - rank - 0.5 * neuron,
                             "token_index": 1, "char_start": start, "char_end": end})  # fmt: skip
        write_parquet(
            pa.Table.from_pylist(topk, schema=TOPK_SCHEMA), root / f"topk/base/layer{layer}.parquet", TOPK_HASH
        )
        if not patterns:
            continue
        kept = [
            ("words", 0, "noun:parties", 4.0),
            ("skipgrams", 1, "competed Olympics", 3.5),
            ("words", 1, "noun:Olympics", 2.5),
            ("posgrams", 1, "DT NN", 1.5),
            ("subtrees", 2, "(VBZ (NN))", 1.0),
        ]
        prows = [{"kind": k, "neuron": n, "pattern": p, "support_top": 2, "support_bg": 1, "occurrences": 3, "z": z,
                  "lift": 2.0, "p": 0.001, "q": 0.01} for k, n, p, z in kept]  # fmt: skip
        write_parquet(pa.Table.from_pylist(prows, schema=MERGED_SCHEMA), root / f"patterns/layer{layer}.parquet", HASH)
        schema = profile_schema(["noun"])
        profiles = []
        for n in range(N_NEURONS):
            row = {f.name: 0 for f in schema}
            row.update(neuron=n, status="ok" if n != EMPTY else "too_few_top_sentences",
                       summary={0: "twitter 67% · parties", 1: 'book 100% · "competed Olympics"'}.get(n, ""),
                       dominant_domain=None, dominant_domain_share=float("nan"), noun_share=0.5,
                       dominant_domain_corpus_share=float("nan"), noun_share_background=0.25)  # fmt: skip
            profiles.append(row)
        write_parquet(pa.Table.from_pylist(profiles, schema=schema), root / f"profiles/layer{layer}.parquet", HASH)
        meta = [{"neuron": 0, "field": "domain", "value": v, "count_top": c, "n_top": 3, "share_top": c / 3,
                 "count_corpus": 3, "n_corpus": 6, "share_corpus": 0.5, "z": 1.0, "lift": 1.0, "p": 0.5, "q": 0.5,
                 "dominant": v == "twitter"} for v, c in (("twitter", 2), ("book", 1))]  # fmt: skip
        write_parquet(pa.Table.from_pylist(meta, schema=METADATA_SCHEMA),
                      root / f"profiles/metadata/layer{layer}.parquet", HASH)  # fmt: skip
    for layer in scores_layers:
        scores = [{"neuron": 0, "kind": kind, "metric": metric, "value": value, "n_pos": 3, "n_neg": 50}
                  for kind, metric, value in (("words", "auroc", 0.91), ("words", "f1", 0.5), ("all", "auroc", 0.87),
                                              ("length", "auroc", 0.52))]  # fmt: skip
        scores.append({"neuron": 1, "kind": "skipgrams", "metric": "auroc", "value": float("nan"), "n_pos": 2,
                       "n_neg": 50})  # fmt: skip
        write_parquet(pa.Table.from_pylist(scores, schema=SCORES_SCHEMA), root / f"scores/layer{layer}.parquet", HASH)
        summary = [{"neuron": 0, "best_kind": "words", "best_auroc": 0.91, "control_auroc": 0.52, "explained": True,
                    "summary": "parties (AUROC 0.91 words, controls 0.52)"}]  # fmt: skip
        write_parquet(pa.Table.from_pylist(summary, schema=SUMMARY_SCHEMA),
                      root / f"scores/summary/layer{layer}.parquet", HASH)  # fmt: skip
    (root / "provenance.json").write_text(json.dumps({"config_hash": HASH, "config": CONFIG}))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("results")
    write_run(base / "demo")
    write_run(base / "partial", layers=(1,), scores_layers=(), patterns=False)
    return base


def run_cli(*argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `neurotext argv...` run in-process."""
    out, err = io.StringIO(), io.StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        status = cli.main(list(argv), out=out)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    finally:
        sys.stderr = old
    return status, out.getvalue(), err.getvalue()


# --- runs ------------------------------------------------------------------------------------------------------------


def test_runs_lists_hash_layers_and_stages(results):
    status, out, _ = run_cli("runs", "--results", str(results))
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert set(lines) == {"demo", "partial"}
    assert HASH in lines["demo"] and " 1-2 " in lines["demo"]
    assert "patterns" in lines["demo"] and "scores[1]" in lines["demo"]
    assert "patterns" not in lines["partial"] and "topk" in lines["partial"]


def test_runs_json(results):
    status, out, _ = run_cli("--results", str(results), "runs", "--json")
    runs = {r["name"]: r for r in json.loads(out)["runs"]}
    assert status == 0 and runs["demo"]["config_hash"] == HASH
    assert runs["demo"]["layers"] == [1, 2] and runs["demo"]["stages"]["scores"] == [1]
    assert runs["demo"]["hashes"]["topk"] == [TOPK_HASH] and runs["demo"]["hashes"]["patterns"] == [HASH]
    assert runs["demo"]["stale"] == [] and runs["partial"]["layers"] == [1]


def test_runs_flags_stale_stages(tmp_path):
    write_run(tmp_path / "demo", layers=(1, 2))
    old = pa.Table.from_pylist([{"neuron": 0, "kind": "words", "metric": "auroc", "value": 0.5, "n_pos": 1,
                                 "n_neg": 1}], schema=SCORES_SCHEMA)  # fmt: skip
    write_parquet(old, tmp_path / "demo/scores/layer1.parquet", "0ldhash")  # made under another config
    status, out, _ = run_cli("runs", "--results", str(tmp_path))
    assert status == 0 and "stale" in out and "scores 0ldhash" in out and "topk" not in out.split("stale")[1]
    status, out, _ = run_cli("runs", "--results", str(tmp_path), "--json")
    assert json.loads(out)["runs"][0]["stale"] == ["scores"]
    (tmp_path / "demo/provenance.json").unlink()  # without the config: only files of one stage that disagree
    write_parquet(old, tmp_path / "demo/scores/layer2.parquet", HASH)
    status, out, _ = run_cli("runs", "--results", str(tmp_path), "--json")
    summary = json.loads(out)["runs"][0]
    assert summary["stale"] == ["scores"] and summary["config_hash"] == HASH
    assert summary["hashes"]["scores"] == sorted(["0ldhash", HASH])


# --- show ------------------------------------------------------------------------------------------------------------


def test_show_text_marks_the_max_token_and_lists_everything(results):
    status, out, _ = run_cli("show", "L1.0", "--results", str(results))
    assert status == 0
    assert out.startswith("L1.0") and "summary: twitter 67% · parties" in out
    assert "explained by: parties (AUROC 0.91 words, controls 0.52)" in out  # the scores' summary, when present
    assert "I love festive **parties** so much" in out and "**Parties** again tonight!" in out
    assert "noun:parties" in out and "twitter 67% (50%)" in out
    scores = out[out.index("explanation scores") :].splitlines()
    assert "3 positives, 50 negatives" in scores[0] and scores[1].split() == ["kind", "auroc", "f1"]
    assert scores[2].split() == ["words", "0.91", "0.5"] and scores[3].split() == ["all", "0.87", "-"]
    assert "\x1b" not in out and "\u202e" not in out  # corpus escapes neutralised; no colour when not a terminal
    assert "\ufffd[31m**red**\ufffd[0m text" in out


def test_show_json(results):
    status, out, _ = run_cli("show", "L1.1", "--run", "demo", "--results", str(results), "--json", "-n", "1")
    view = json.loads(out)
    assert status == 0 and view["neuron"] == "L1.1" and view["config_hash"] == HASH
    assert view["n_top"] == 2 and len(view["top"]) == 1
    assert view["top"][0]["token"] == "Olympics" and view["top"][0]["dataset"] == "books"
    assert [p["pattern"] for p in view["patterns"]["skipgrams"]] == ["competed Olympics"]
    assert view["scores"] == [{"neuron": 1, "kind": "skipgrams", "metric": "auroc", "value": None, "n_pos": 2,
                               "n_neg": 50}]  # fmt: skip
    assert view["missing"] == [] and view["explained"] is None  # no summary row for this neuron


def test_show_without_scores_or_top_sentences(results):
    status, out, _ = run_cli("show", "L2.3", "--results", str(results), "--json")
    view = json.loads(out)
    assert status == 0 and view["top"] == [] and view["scores"] is None
    assert view["missing"] == ["scores/layer2.parquet"] and view["profile"]["status"] == "too_few_top_sentences"
    status, out, _ = run_cli("show", "L2.3", "--results", str(results))
    assert status == 0 and "no sentence in this neuron's top K" in out and "scores/layer2.parquet" in out


def test_show_a_run_without_patterns_yet(results):
    status, out, _ = run_cli("show", "L1.0", "--run", "partial", "--results", str(results))
    assert status == 0 and "**parties**" in out and "patterns not computed yet" in out
    assert "patterns/layer1.parquet" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["show", "L1.0", "--run", "nope"], "no run 'nope'"),
        (["show", "L9.0"], "no layer 9 (layers 1-2)"),
        (["show", "L1.99"], "layer 1 of run 'demo' has neurons 0..3"),
        (["show", "six.two"], "not a neuron name"),
        (["search", "parties", "--run", "partial"], "no patterns yet"),
        (["search", "parties", "--layer", "7"], "no layer 7"),
    ],
)
def test_errors_are_one_line_with_status_2(results, argv, expected):
    status, out, err = run_cli(*argv, "--results", str(results))
    assert status == 2 and out == "" and expected in err and err.count("\n") == 1, err


def test_an_unreadable_artifact_is_one_line_naming_the_file(tmp_path):
    write_run(tmp_path / "demo", layers=(1,))
    (tmp_path / "demo/scores/layer1.parquet").write_bytes(b"not parquet")
    status, out, err = run_cli("show", "L1.0", "--results", str(tmp_path))
    assert status == 1 and out == "" and err.count("\n") == 1 and "scores/layer1.parquet" in err, err


def test_counts_must_be_non_negative(results):
    status, _, err = run_cli("show", "L1.0", "-n", "-3", "--results", str(results))
    assert status == 2 and "is not a count" in err


def test_missing_results_dir_and_ambiguous_run(tmp_path):
    status, _, err = run_cli("runs", "--results", str(tmp_path / "none"))
    assert status == 2 and "no results directory" in err and "--results" in err
    write_run(tmp_path / "a", layers=(1,))
    write_run(tmp_path / "b", layers=(1,))
    status, _, err = run_cli("show", "L1.0", "--results", str(tmp_path))
    assert status == 2 and "--run" in err and "a, b" in err
    status, out, _ = run_cli("show", "L1.0", "--results", str(tmp_path), "--run", "b")
    assert status == 0 and "**parties**" in out


# --- search ----------------------------------------------------------------------------------------------------------


def test_search_finds_top_tokens_and_patterns(results):
    status, out, _ = run_cli("search", "PARTIES", "--results", str(results), "--json")
    found = json.loads(out)
    assert status == 0 and found["n_matches"] == 2
    first = found["matches"][0]
    assert first["neuron"] in ("L1.0", "L2.0") and first["token_hits"] == 2 and first["n_top"] == 3
    assert [p["pattern"] for p in first["patterns"]] == ["noun:parties"]
    status, out, _ = run_cli("search", "competed olympics", "--layer", "2", "--results", str(results))
    assert status == 0 and "L2.1" in out and "L1.1" not in out and "competed Olympics" in out


def test_search_finds_a_subword_max_token_by_its_word(results):
    for word in ("expect", "Expected"):  # the max token of L*.2 is "expect" inside "expected"
        status, out, _ = run_cli("search", word, "--results", str(results), "--json")
        found = json.loads(out)["matches"]
        assert status == 0 and [(m["neuron"], m["token_hits"]) for m in found] == [("L1.2", 1), ("L2.2", 1)], word


def test_search_matches_whole_words_not_word_classes(results):
    for word in ("noun", "part", "Olymp"):
        status, out, _ = run_cli("search", word, "--results", str(results), "--json")
        assert status == 0 and json.loads(out)["n_matches"] == 0, word
    status, out, _ = run_cli("search", "nothing-here", "--results", str(results))
    assert status == 0 and out.startswith("0 neuron(s)")


# --- help, console script, start-up ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["runs"], ["show"], ["search"]])
def test_help_everywhere_with_examples(command):
    status, out, _ = run_cli(*command, "--help")
    assert status == 0 and "examples:" in out and "usage: neurotext" in out


def test_installed_console_script(results):
    script = Path(sys.executable).parent / "neurotext"
    assert script.exists(), f"{script} missing: install the package (pip install --no-deps -e .)"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "show" in done.stdout
    done = subprocess.run([str(script), "show", "L1.0", "--results", str(results)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0 and "**parties**" in done.stdout
    done = subprocess.run([str(script), "show", "L1.0", "--run", "x", "--results", str(results)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("neurotext show: no run 'x'")


def test_help_does_not_import_pyarrow_or_torch():
    code = "\n".join(["import sys", "from neurotext import cli", "try:", "    cli.main(['show', '--help'])",
                      "except SystemExit:", "    pass",
                      "print(sorted(m for m in ('pyarrow', 'torch', 'numpy') if m in sys.modules))"])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


# --- the sentence mark -----------------------------------------------------------------------------------------------


@given(st.text(st.characters(blacklist_characters="…"), max_size=300), st.integers(-2, 310), st.integers(0, 40),
       st.integers(0, 80))  # fmt: skip
def test_mark_keeps_the_span_and_clips_around_it(text, start, length, width):
    """Against the contract: the marked span is exactly the token, the rest a window [lo, hi) of the cleaned text
    holding the span, '…' exactly where text was cut, no longer than `width` (or the span) when clipped."""
    end = start + length
    marked = cli.mark_sentence(text, start, end, cli.Marker("\x01", "\x02"), width)  # control chars: never in output
    plain = cli.clean_text(text)
    assert len(plain) == len(text) and "\n" not in marked
    valid = 0 <= start < end <= len(text)
    assert marked.count("\x01") == marked.count("\x02") == int(valid)
    if valid:
        assert marked.split("\x01")[1].split("\x02")[0] == plain[start:end]
    stripped = marked.replace("\x01", "").replace("\x02", "")
    cut_left = stripped.startswith("…")
    head = marked.split("\x01")[0] if valid else ""
    lo = start - (len(head) - int(cut_left)) if valid else 0  # unmarked text is clipped from its start
    core = stripped[int(cut_left) :].removesuffix("…") if len(stripped) > int(cut_left) else ""
    hi = lo + len(core)
    assert stripped == ("…" if lo > 0 else "") + plain[lo:hi] + ("…" if hi < len(plain) else "")
    if valid:
        assert lo <= start and hi >= end
    if width == 0 or len(text) <= width:
        assert stripped == plain
    else:
        assert hi - lo <= max(width, end - start + width)


def test_the_command_reads_only_through_the_artifacts_package():
    """No parquet reading, path templates or layer-number parsing of its own (those live in neurotext.artifacts)."""
    for path in sorted((REPO / "src" / "neurotext" / "cli").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for forbidden in ("pyarrow.parquet", "read_table", "np.load", "layer{", "/layer", ">> 27"):
            assert forbidden not in source, f"{path.name} uses {forbidden!r}"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9), st.integers(2, 4))
def test_table_numbers_keep_their_significant_digits(value, digits):
    """A table cell never rounds a nonzero value to 0 and keeps `digits` significant digits (relative error at most
    half a unit in the last place shown)."""
    from neurotext.cli.text import number

    shown = float(number(value, digits))
    if value == 0:
        assert shown == 0
        return
    assert shown != 0
    assert abs(shown - value) <= 0.5 * 10 ** (1 - digits) * abs(value) * 1.0000001
